//! The ingest history and notes, kept in the store's tree: one record per
//! successful ingest, nothing for a failed one, notes attached from the
//! command line, and refusals in one line.
#![allow(clippy::unwrap_used)]

mod util;

use std::path::Path;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn each_ingest_is_recorded_with_its_source_and_notes_attach() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("h.gs");
    let src = util::data("terra_meuse.tif");
    util::ok(&["create", s(&store), "--like", s(&src), "--chunk", "32"]);
    assert!(util::ok(&["history", s(&store)]).contains("no ingests recorded"));

    util::ok(&["ingest", s(&store), s(&src)]);
    // A failed ingest leaves no record.
    let junk = dir.path().join("junk.tif");
    std::fs::write(&junk, "not a raster").unwrap();
    assert_eq!(
        util::gridstore(&["ingest", s(&store), s(&junk)])
            .status
            .code(),
        Some(2)
    );
    util::ok(&["ingest", s(&store), s(&src)]);
    util::ok(&[
        "history",
        s(&store),
        "--note",
        "levelling survey of 1994",
        "--ingest",
        "1",
    ]);
    util::ok(&["history", s(&store), "--note", "Meuse floodplain"]);

    let doc: serde_json::Value =
        serde_json::from_str(&util::ok(&["history", s(&store), "--json"])).unwrap();
    let ingests = doc["ingests"].as_array().unwrap();
    assert_eq!(ingests.len(), 2);
    let bytes = std::fs::read(&src).unwrap();
    let first = &ingests[0];
    assert_eq!(
        first["source"],
        std::path::absolute(&src).unwrap().display().to_string()
    );
    assert_eq!(first["bytes"], bytes.len() as u64);
    assert_eq!(
        first["checksum"],
        format!("crc32:{:08x}", crc32fast::hash(&bytes))
    );
    assert_eq!(first["cells"], 80 * 115);
    assert!(first["base_chunks"].as_u64().unwrap() > 0);
    assert!(first["seconds"].as_f64().unwrap() >= 0.0);
    // The extent is the raster's, in the store's CRS.
    let g = util::read(s(&src), None);
    let extent: Vec<f64> = serde_json::from_value(first["extent"].clone()).unwrap();
    let expected = g.bounds();
    for (a, b) in extent.iter().zip(expected) {
        assert!((a - b).abs() < 1e-6, "{extent:?} vs {expected:?}");
    }
    let notes = doc["notes"].as_array().unwrap();
    assert_eq!(notes.len(), 2);
    assert_eq!(notes[0]["ingest"], 1);
    assert_eq!(notes[0]["text"], "levelling survey of 1994");
    assert!(notes[1]["ingest"].is_null());

    let text = util::ok(&["history", s(&store)]);
    assert!(text.contains("#1") && text.contains("#2"), "{text}");
    assert!(text.contains("levelling survey of 1994"), "{text}");

    // A note about an ingest that is not there is refused in one line.
    let out = util::gridstore(&["history", s(&store), "--note", "x", "--ingest", "3"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("there is no ingest 3"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[test]
fn a_damaged_history_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("h.gs");
    let src = util::data("terra_meuse.tif");
    util::ok(&["create", s(&store), "--like", s(&src)]);
    util::ok(&["ingest", s(&store), s(&src)]);
    let entry = store.join("meta/history/ingests/0");
    let mut bytes = std::fs::read(&entry).unwrap();
    let last = bytes.len() - 2;
    bytes[last] ^= 0x01;
    std::fs::write(&entry, bytes).unwrap();
    let out = util::gridstore(&["history", s(&store)]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("meta/history/ingests/0") && err.contains("checksum"),
        "{err}"
    );
    // verify names it too (the chunks themselves are fine).
    let out = util::gridstore(&["verify", s(&store)]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("damaged meta/history/ingests/0: checksum mismatch"),
        "{text}"
    );
}
