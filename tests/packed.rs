//! The packed backend end to end: the same values as the folder backend,
//! damage named in one line and never read as values, and `repair`
//! rebuilding a lost index from the packs.
#![allow(clippy::unwrap_used)]

mod util;

use std::os::unix::fs::FileExt as _;
use std::path::Path;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A store of `backend` holding the Meuse DEM.
fn store(dir: &Path, name: &str, backend: &str) -> std::path::PathBuf {
    let store = dir.join(name);
    let src = util::data("terra_meuse.tif");
    util::ok(&[
        "create",
        s(&store),
        "--like",
        s(&src),
        "--chunk",
        "16",
        "--backend",
        backend,
    ]);
    util::ok(&["ingest", s(&store), s(&src)]);
    store
}

fn export(store: &Path, out: &Path, level: u8) -> util::Grid {
    util::ok(&[
        "export",
        s(store),
        "-o",
        s(out),
        "--level",
        &level.to_string(),
    ]);
    util::read(s(out), None)
}

#[test]
fn a_packed_store_holds_what_a_folder_store_holds() {
    let dir = tempfile::tempdir().unwrap();
    let folder = store(dir.path(), "f.gs", "folder");
    let packed = store(dir.path(), "p.gs", "packed");
    assert!(util::ok(&["info", s(&packed)]).contains("packed backend"));
    assert!(util::ok(&["verify", s(&packed)]).starts_with("ok"));
    for level in [0, 1, 3] {
        let a = export(&folder, &dir.path().join(format!("f{level}.tif")), level);
        let b = export(&packed, &dir.path().join(format!("p{level}.tif")), level);
        assert_eq!(a.bands, b.bands, "level {level}");
    }
    let chunks = |p: &Path| util::ok(&["chunks", s(p), "--json"]);
    assert_eq!(chunks(&folder), chunks(&packed));
}

#[test]
fn damage_in_a_pack_is_named_and_never_read() {
    let dir = tempfile::tempdir().unwrap();
    let packed = store(dir.path(), "p.gs", "packed");
    let pack = packed.join("packs/00000001.pack");
    let file = std::fs::File::options()
        .read(true)
        .write(true)
        .open(&pack)
        .unwrap();
    let mut head = [0u8; 8];
    file.read_exact_at(&mut head, 16).unwrap();
    let written = u64::from_le_bytes(head);

    // A flipped byte in the last record of a base chunk (its live version).
    let mut bytes = vec![0u8; written as usize];
    file.read_exact_at(&mut bytes, 0).unwrap();
    let (mut at, mut chunk_value) = (64usize, None);
    while at + 32 <= bytes.len() && &bytes[at..at + 4] == b"GSRC" {
        let key_len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        let value_len = u64::from_le_bytes(bytes[at + 8..at + 16].try_into().unwrap()) as usize;
        let key = std::str::from_utf8(&bytes[at + 32..at + 32 + key_len]).unwrap();
        let value_at = at + 32 + key_len.div_ceil(16) * 16;
        let chunk = key.starts_with("0/data/")
            && key
                .rsplit('/')
                .next()
                .unwrap()
                .bytes()
                .all(|b| b.is_ascii_digit());
        // Kinds 1 (put) and 3 (stage) carry values; 5 (commit) a sequence.
        let kind = u32::from_le_bytes(bytes[at + 20..at + 24].try_into().unwrap());
        if chunk && matches!(kind, 1 | 3) && value_len > 0 {
            chunk_value = Some(value_at + value_len / 2);
        }
        at = value_at + value_len.div_ceil(16) * 16;
    }
    let at = chunk_value.unwrap() as u64;
    let mut byte = [0u8; 1];
    file.read_exact_at(&mut byte, at).unwrap();
    file.write_all_at(&[byte[0] ^ 0x40], at).unwrap();
    let out = util::gridstore(&["verify", s(&packed)]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("00000001.pack") && text.contains("fails its checksum"),
        "{text}"
    );
    file.write_all_at(&byte, at).unwrap();
    util::ok(&["verify", s(&packed)]);

    // A truncated pack: the index points past its end (here even the
    // root attributes: the store cannot open, and says why in one line).
    file.set_len(written / 2).unwrap();
    let out = util::gridstore(&["verify", s(&packed)]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("00000001.pack") && err.contains("past the end of the file"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let out = util::gridstore(&["export", s(&packed), "-o", s(&dir.path().join("x.tif"))]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("00000001.pack"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[test]
fn repair_rebuilds_a_lost_index_and_the_store_reads_as_before() {
    let dir = tempfile::tempdir().unwrap();
    let packed = store(dir.path(), "p.gs", "packed");
    let before = export(&packed, &dir.path().join("before.tif"), 0);
    std::fs::remove_file(packed.join("index.redb")).unwrap();
    let out = util::gridstore(&["info", s(&packed)]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("index.redb") && err.contains("gridstore repair"),
        "{err}"
    );
    let text = util::ok(&["repair", s(&packed)]);
    assert!(text.contains("index rebuilt from"), "{text}");
    util::ok(&["verify", s(&packed)]);
    let after = export(&packed, &dir.path().join("after.tif"), 0);
    assert_eq!(before.bands, after.bands);
    // The history came back with everything else.
    assert!(util::ok(&["history", s(&packed)]).contains("#1"));
}

#[test]
fn a_closed_pipe_ends_the_command_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let packed = store(dir.path(), "p.gs", "packed");
    let mut child = util::command()
        .args(["chunks", s(&packed)])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Close the reading end before the command writes.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn convert_copies_a_store_between_backends_losslessly() {
    let dir = tempfile::tempdir().unwrap();
    let folder = store(dir.path(), "f.gs", "folder");
    util::ok(&["history", s(&folder), "--note", "round trip"]);
    let packed = dir.path().join("p.gs");
    let hdf5 = dir.path().join("h.h5");
    let back = dir.path().join("back.gs");
    let text = util::ok(&["convert", s(&folder), s(&packed), "--backend", "packed"]);
    assert!(text.contains("all read back equal"), "{text}");
    util::ok(&["convert", s(&packed), s(&hdf5), "--backend", "hdf5"]);
    util::ok(&["convert", s(&hdf5), s(&back), "--backend", "folder"]);
    for p in [&packed, &hdf5, &back] {
        util::ok(&["verify", s(p)]);
    }
    assert!(util::ok(&["info", s(&hdf5)]).contains("hdf5 backend"));
    // Equal info but for where and how the store is kept.
    let info = |p: &Path| {
        let mut v: serde_json::Value =
            serde_json::from_str(&util::ok(&["info", s(p), "--json"])).unwrap();
        v.as_object_mut().unwrap().remove("store");
        v.as_object_mut().unwrap().remove("backend");
        v
    };
    assert_eq!(info(&folder), info(&packed));
    assert_eq!(info(&folder), info(&hdf5));
    assert_eq!(info(&folder), info(&back));
    for p in [&packed, &hdf5] {
        assert_eq!(
            util::ok(&["history", s(&folder), "--json"]),
            util::ok(&["history", s(p), "--json"])
        );
    }
    // Back in a folder, every file is the original's, byte for byte.
    let files = |p: &Path| -> std::collections::BTreeMap<_, _> {
        util::snapshot(p)
            .into_iter()
            .map(|(f, b)| (f.strip_prefix(p).unwrap().to_path_buf(), b))
            .filter(|(f, _)| !f.starts_with("writer"))
            .collect()
    };
    assert_eq!(files(&folder), files(&back));
    // An existing destination is refused and left alone.
    let out = util::gridstore(&["convert", s(&folder), s(&packed), "--backend", "packed"]);
    assert_eq!(out.status.code(), Some(2));
    util::ok(&["verify", s(&packed)]);
}

#[test]
fn compact_reclaims_the_space_of_rewritten_chunks_and_changes_no_value() {
    let dir = tempfile::tempdir().unwrap();
    let packed = store(dir.path(), "p.gs", "packed");
    // The same grid with other values rewrites every chunk it covers.
    let other = util::inverted("terra_meuse.tif", dir.path());
    util::ok(&["ingest", s(&packed), s(&other)]);
    let before = export(&packed, &dir.path().join("before.tif"), 0);
    let chunks = util::ok(&["chunks", s(&packed), "--json"]);
    let text = util::ok(&["compact", s(&packed)]);
    assert!(text.contains("1 of 1 packs rewritten"), "{text}");
    // "... values moved, 250 kB -> 135 kB on disk (...)"
    let sizes: Vec<f64> = text
        .split(" values moved, ")
        .nth(1)
        .unwrap()
        .split(" on disk")
        .next()
        .unwrap()
        .split(" -> ")
        .map(|t| {
            let (n, unit) = t.split_once(' ').unwrap();
            let scale = match unit {
                "B" => 1.0,
                "kB" => 1e3,
                "MB" => 1e6,
                _ => panic!("{text}"),
            };
            n.parse::<f64>().unwrap() * scale
        })
        .collect();
    assert!(
        sizes[1] < sizes[0] * 0.75,
        "two ingests' records down to one's: {text}"
    );
    assert!(util::ok(&["verify", s(&packed)]).starts_with("ok"));
    assert_eq!(util::ok(&["chunks", s(&packed), "--json"]), chunks);
    let after = export(&packed, &dir.path().join("after.tif"), 0);
    assert_eq!(before.bands, after.bands);
    assert!(util::ok(&["history", s(&packed)]).contains("#2"));
    // A folder store has nothing to compact, and says so.
    let folder = store(dir.path(), "f.gs", "folder");
    assert!(util::ok(&["compact", s(&folder)]).contains("nothing to compact"));
}
