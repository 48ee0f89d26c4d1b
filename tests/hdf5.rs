//! The hdf5 backend end to end: the same values as the folder backend in
//! one .h5 file, damage named in one line and never read as values, other
//! processes reading while a writer writes, and HDF5 files that are not
//! stores refused in words.
#![allow(clippy::unwrap_used)]

mod util;

use std::path::{Path, PathBuf};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn store(dir: &Path, name: &str, backend: &str, src: &Path) -> PathBuf {
    let store = dir.join(name);
    util::ok(&[
        "create",
        s(&store),
        "--like",
        s(src),
        "--chunk",
        "16",
        "--backend",
        backend,
    ]);
    util::ok(&["ingest", s(&store), s(src)]);
    store
}

#[test]
fn an_hdf5_store_holds_what_a_folder_store_holds_in_one_file() {
    let dir = tempfile::tempdir().unwrap();
    let src = util::data("terra_meuse.tif");
    let folder = store(dir.path(), "f.gs", "folder", &src);
    let hdf5 = store(dir.path(), "h.h5", "hdf5", &src);
    assert!(hdf5.is_file());
    assert!(util::ok(&["info", s(&hdf5)]).contains("hdf5 backend"));
    assert!(util::ok(&["verify", s(&hdf5)]).starts_with("ok"));
    for level in [0, 1, 3] {
        let export = |store: &Path, name: &str| {
            let out = dir.path().join(format!("{name}{level}.tif"));
            util::ok(&[
                "export",
                s(store),
                "-o",
                s(&out),
                "--level",
                &level.to_string(),
                "--no-cache",
            ]);
            util::read(s(&out), None).bands
        };
        assert_eq!(export(&folder, "f"), export(&hdf5, "h"), "level {level}");
    }
    let chunks = |p: &Path| util::ok(&["chunks", s(p), "--json"]);
    assert_eq!(chunks(&folder), chunks(&hdf5));
    // A new store over an existing file is refused, the file left alone.
    let before = std::fs::read(&hdf5).unwrap();
    let out = util::gridstore(&["create", s(&hdf5), "--like", s(&src), "--backend", "hdf5"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(std::fs::read(&hdf5).unwrap(), before);
}

#[test]
fn damage_in_the_file_is_named_and_never_read() {
    let dir = tempfile::tempdir().unwrap();
    let src = util::data("terra_meuse.tif");
    let hdf5 = store(dir.path(), "h.h5", "hdf5", &src);
    let mut bytes = std::fs::read(&hdf5).unwrap();
    // The last record holding a base chunk's value (kinds 1, put, and 3,
    // stage): flip a byte of its value.
    let key = b"0/data/";
    let kind = |i: usize| u32::from_le_bytes(bytes[i + 20..i + 24].try_into().unwrap());
    let at = bytes
        .windows(4)
        .enumerate()
        .filter(|(i, w)| {
            *w == b"GSRC" && bytes[i + 32..].starts_with(key) && matches!(kind(*i), 1 | 3)
        })
        .map(|(i, _)| i)
        .next_back()
        .unwrap();
    let key_len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
    let value_len = u64::from_le_bytes(bytes[at + 8..at + 16].try_into().unwrap()) as usize;
    let value_at = at + 32 + key_len.div_ceil(16) * 16;
    bytes[value_at + value_len / 2] ^= 0x20;
    std::fs::write(&hdf5, &bytes).unwrap();
    let out = util::gridstore(&["verify", s(&hdf5)]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("h.h5") && text.contains("fails its checksum"),
        "{text}"
    );
    let out = util::gridstore(&[
        "export",
        s(&hdf5),
        "-o",
        s(&dir.path().join("x.tif")),
        "--no-cache",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("h.h5") && err.contains("checksum"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[test]
fn hdf5_files_that_are_not_stores_are_refused_in_words() {
    let dir = tempfile::tempdir().unwrap();
    // NetCDF-4 is HDF5 underneath: a real HDF5 file, not a store.
    let nc = dir.path().join("dem.nc");
    util::tool(
        "gdal_translate",
        &[
            "-q",
            "-of",
            "netCDF",
            "-co",
            "FORMAT=NC4",
            s(&util::data("terra_meuse.tif")),
            s(&nc),
        ],
    );
    let before = std::fs::read(&nc).unwrap();
    // It opens read-only as the raster it is (tests/foreign.rs), and
    // what only a store has is refused in one line naming it.
    let info = util::ok(&["info", s(&nc)]);
    assert!(info.contains("read-only"), "{info}");
    for args in [vec!["verify"], vec!["repair"], vec!["ingest", s(&nc)]] {
        let command = args[0];
        let mut full = args.clone();
        full.insert(1, s(&nc));
        let out = util::gridstore(&full);
        assert_eq!(out.status.code(), Some(2), "{command}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("dem.nc"), "{command}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
    assert_eq!(std::fs::read(&nc).unwrap(), before, "the file is unchanged");
    // Neither an HDF5 file nor a folder.
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "hello").unwrap();
    let out = util::gridstore(&["info", s(&text)]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("notes.txt"), "{err}");
}

#[test]
fn other_processes_read_while_a_writer_writes() {
    let dir = tempfile::tempdir().unwrap();
    let small = util::data("stars_olinda_dem_utm25s.tif");
    let hdf5 = store(dir.path(), "h.h5", "hdf5", &small);
    let big = dir.path().join("big.tif");
    // The same grid, 4x as fine: an ingest long enough to read beside.
    util::tool(
        "gdal_translate",
        &[
            "-q",
            "-outsize",
            "400%",
            "400%",
            "-r",
            "near",
            s(&small),
            s(&big),
        ],
    );
    let bigger = dir.path().join("b.h5");
    util::ok(&[
        "create",
        s(&bigger),
        "--like",
        s(&big),
        "--chunk",
        "16",
        "--backend",
        "hdf5",
    ]);
    let mut writer = util::command()
        .args(["ingest", s(&bigger), s(&big)])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut reads = 0;
    loop {
        let done = writer.try_wait().unwrap().is_some();
        let out = util::gridstore(&["chunks", s(&bigger)]);
        assert!(
            out.status.success(),
            "a reader beside the writer: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        reads += 1;
        if done {
            break;
        }
    }
    assert!(writer.wait().unwrap().success());
    assert!(reads > 1, "read {reads} times");
    assert!(util::ok(&["verify", s(&bigger)]).starts_with("ok"));
    // A second writer is refused, naming the first, while it holds the file.
    let holder = gridstore::storage::Hdf5Storage::open(&hdf5).unwrap();
    let lock = gridstore::storage::Storage::lock_writer(&holder).unwrap();
    let out = util::gridstore(&["ingest", s(&hdf5), s(&small)]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("locked by process {}", std::process::id())),
        "{err}"
    );
    drop((lock, holder));
    util::ok(&["ingest", s(&hdf5), s(&small)]);
}
