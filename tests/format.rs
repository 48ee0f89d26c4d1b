//! Stores written by earlier gridstore versions keep opening, verifying and
//! exporting the same values. `tests/data/format-v1.gs` was written by the
//! gridstore of format version 1 before the write protocol moved into the
//! engine (commit e7369d2): `create --like terra_elev.tif --chunk 16`, an
//! ingest of terra_elev.tif and a note.
#![allow(clippy::unwrap_used)]

mod util;

use std::path::Path;
use util::{data, ok, read, same};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A copy of a kept store (tests never write into tests/data).
fn copy_of(name: &str, dir: &Path) -> std::path::PathBuf {
    let to = dir.join(name);
    let status = std::process::Command::new("cp")
        .args(["-a", s(&data(name)), s(&to)])
        .status()
        .unwrap();
    assert!(status.success());
    to
}

#[test]
fn a_format_1_store_opens_verifies_and_exports_the_same_values() {
    let dir = tempfile::tempdir().unwrap();
    let store = copy_of("format-v1.gs", dir.path());
    let info: serde_json::Value =
        serde_json::from_str(&ok(&["info", s(&store), "--json"])).unwrap();
    assert_eq!(info["format_version"], 1);
    // As the writing version reported it.
    assert_eq!(info["data_size"], serde_json::json!([93, 88]));
    assert!(ok(&["verify", s(&store)]).starts_with("ok:"));
    let history = ok(&["history", s(&store)]);
    assert!(history.contains("terra_elev.tif") && history.contains("written by gridstore"));
    // The base level over the source's extent equals the source, cell for
    // cell.
    let source = read(s(&data("terra_elev.tif")), None);
    let gt = source.geotransform;
    let bounds = source.bbox();
    let out = dir.path().join("base.tif");
    ok(&[
        "export",
        s(&store),
        "-o",
        s(&out),
        "--bbox",
        &bounds,
        "--no-cache",
    ]);
    let ours = read(s(&out), None);
    assert_eq!((ours.cols, ours.rows), (source.cols, source.rows));
    assert!(
        ours.bands[0]
            .iter()
            .zip(&source.bands[0])
            .all(|(a, b)| same(*a, *b) || (source.nodata == Some(*b) && a.is_nan())),
        "the values are the source's"
    );
    // And today's code writes into it: a clear, then verify.
    let bbox = format!(
        "{},{},{},{}",
        gt[0],
        gt[3] + 10.0 * gt[5],
        gt[0] + 10.0 * gt[1],
        gt[3]
    );
    ok(&["clear", s(&store), "--bbox", &bbox]);
    assert!(ok(&["verify", s(&store)]).starts_with("ok:"));
}
