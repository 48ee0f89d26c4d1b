//! The function cache end to end: repeated exports served from it until
//! the store changes, exports between two instants blended from cached
//! reads, and `gridstore cache list | clear`.
#![allow(clippy::unwrap_used)]

mod util;

use std::path::Path;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Runs gridstore with its own function cache in `cache`; stdout on
/// success, else the panic names stderr.
fn gs(cache: &Path, args: &[&str]) -> String {
    let out = util::command()
        .env("GRIDSTORE_CACHE_DIR", cache)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "gridstore {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The one-line error of a failing run.
fn gs_fails(cache: &Path, args: &[&str]) -> String {
    let out = util::command()
        .env("GRIDSTORE_CACHE_DIR", cache)
        .args(args)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "gridstore {args:?} should fail");
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    err
}

fn entries(cache: &Path) -> Vec<serde_json::Value> {
    serde_json::from_str::<serde_json::Value>(&gs(cache, &["cache", "list", "--json"]))
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn a_repeated_export_is_served_from_the_cache_until_the_store_changes() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let store = dir.path().join("s.gs");
    let src = util::data("terra_elev.tif");
    gs(
        &cache,
        &["create", s(&store), "--like", s(&src), "--chunk", "16"],
    );
    gs(&cache, &["ingest", s(&store), s(&src)]);
    for out in ["a.tif", "a.png", "a.nc"] {
        let out = dir.path().join(out);
        let first = gs(
            &cache,
            &["export", s(&store), "-o", s(&out), "--level", "1"],
        );
        assert!(!first.contains("from the cache"), "{first}");
        let bytes = std::fs::read(&out).unwrap();
        std::fs::remove_file(&out).unwrap();
        let world = out.with_extension("pgw");
        std::fs::remove_file(&world).ok();
        let again = gs(
            &cache,
            &["export", s(&store), "-o", s(&out), "--level", "1"],
        );
        assert!(again.contains("(from the cache)"), "{again}");
        assert_eq!(std::fs::read(&out).unwrap(), bytes, "{}", out.display());
        if out.extension().unwrap() == "png" {
            assert!(world.exists(), "the world file comes back too");
        }
    }
    assert_eq!(entries(&cache).len(), 3);
    // --no-cache never answers from it.
    let out = dir.path().join("a.tif");
    let plain = gs(
        &cache,
        &[
            "export",
            s(&store),
            "-o",
            s(&out),
            "--level",
            "1",
            "--no-cache",
        ],
    );
    assert!(!plain.contains("from the cache"), "{plain}");
    // Any write gives the store a new state: the next export reads it.
    let before = util::read(s(&out), None).bands;
    gs(
        &cache,
        &[
            "ingest",
            s(&store),
            s(&util::inverted("terra_elev.tif", dir.path())),
        ],
    );
    let after = gs(
        &cache,
        &["export", s(&store), "-o", s(&out), "--level", "1"],
    );
    assert!(!after.contains("from the cache"), "{after}");
    assert_ne!(util::read(s(&out), None).bands, before);
    // A failed write changes nothing, so the cached result still holds.
    let bad = dir.path().join("bad.tif");
    std::fs::write(&bad, b"not a raster").unwrap();
    gs_fails(&cache, &["ingest", s(&store), s(&bad)]);
    let kept = gs(
        &cache,
        &["export", s(&store), "-o", s(&out), "--level", "1"],
    );
    assert!(kept.contains("(from the cache)"), "{kept}");
}

#[test]
fn an_export_between_two_instants_blends_them_from_cached_reads() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let store = dir.path().join("t.gs");
    let src = util::data("terra_elev.tif");
    gs(
        &cache,
        &[
            "create",
            s(&store),
            "--like",
            s(&src),
            "--chunk",
            "16",
            "--time",
            "irregular",
        ],
    );
    gs(
        &cache,
        &["ingest", s(&store), s(&src), "--time", "2024-01-01T00:00"],
    );
    let other = util::inverted("terra_elev.tif", dir.path());
    gs(
        &cache,
        &["ingest", s(&store), s(&other), "--time", "2024-01-01T12:00"],
    );
    let export = |time: &str, out: &str, interpolate: bool| {
        let out = dir.path().join(out);
        let mut args = vec!["export", s(&store), "-o", s(&out), "--time", time];
        if interpolate {
            args.push("--interpolate");
        }
        let text = gs(&cache, &args);
        (util::read(s(&out), None), text)
    };
    let (a, _) = export("2024-01-01T00:00", "a.tif", false);
    let (b, _) = export("2024-01-01T12:00", "b.tif", false);
    let (q, text) = export("2024-01-01T03:00", "q.tif", true);
    assert!(
        text.contains("75 % of 2024-01-01T00:00:00Z blended with 25 % of 2024-01-01T12:00:00Z"),
        "{text}"
    );
    // The blend is of the instant asked for, and its file says so.
    let meta = std::process::Command::new("gdalinfo")
        .arg(dir.path().join("q.tif"))
        .output()
        .unwrap();
    let meta = String::from_utf8_lossy(&meta.stdout);
    assert!(
        meta.contains("TIFFTAG_DATETIME=2024:01:01 03:00:00"),
        "{meta}"
    );
    let nodata = a.nodata.unwrap();
    let mut blended = 0;
    for ((va, vb), vq) in a.bands[0].iter().zip(&b.bands[0]).zip(&q.bands[0]) {
        if *va == nodata || *vb == nodata {
            assert_eq!(*vq, nodata);
        } else {
            assert_eq!(*vq, (0.75 * va + 0.25 * vb).round(), "{va} {vb}");
            blended += 1;
        }
    }
    assert!(blended > 1000, "{blended} cells blended");
    let reads = |cache: &Path| {
        entries(cache)
            .iter()
            .filter(|e| e["function"] == "extent")
            .count()
    };
    assert_eq!(reads(&cache), 2, "the two instants' reads are kept");
    // Another instant between the same two: blended from the kept reads.
    let (h, _) = export("2024-01-01T06:00", "h.tif", true);
    assert_eq!(reads(&cache), 2, "no new read");
    let (va, vb, vh) = (a.bands[0][4000], b.bands[0][4000], h.bands[0][4000]);
    assert!(va != nodata && vb != nodata);
    assert_eq!(vh, (0.5 * va + 0.5 * vb).round());

    // Bad requests, each one line naming the store.
    let out = dir.path().join("x.tif");
    let err = gs_fails(
        &cache,
        &[
            "export",
            s(&store),
            "-o",
            s(&out),
            "--time",
            "2024-01-02T00:00",
            "--interpolate",
        ],
    );
    assert!(err.contains("outside the stored instants"), "{err}");
    let err = gs_fails(
        &cache,
        &[
            "export",
            s(&store),
            "-o",
            s(&out),
            "--time",
            "2024-01-01T03:00",
        ],
    );
    assert!(err.contains("no data at 2024-01-01T03:00"), "{err}");
    // The instants around it, and how to blend them.
    assert!(
        err.contains("the nearest stored instants are 2024-01-01T00:00"),
        "{err}"
    );
    assert!(err.contains("--interpolate blends them"), "{err}");
    let classes = dir.path().join("c.gs");
    gs(
        &cache,
        &[
            "create",
            s(&classes),
            "--like",
            s(&src),
            "--time",
            "irregular",
            "--aggregate",
            "mode",
        ],
    );
    gs(
        &cache,
        &["ingest", s(&classes), s(&src), "--time", "2024-01-01"],
    );
    gs(
        &cache,
        &["ingest", s(&classes), s(&src), "--time", "2024-01-03"],
    );
    let err = gs_fails(
        &cache,
        &[
            "export",
            s(&classes),
            "-o",
            s(&out),
            "--time",
            "2024-01-02",
            "--interpolate",
        ],
    );
    assert!(err.contains("categories") && err.contains("c.gs"), "{err}");
}

#[test]
fn cached_results_are_listed_and_cleared_by_function_arguments_and_age() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let store = dir.path().join("s.gs");
    let src = util::data("terra_meuse.tif");
    gs(&cache, &["create", s(&store), "--like", s(&src)]);
    gs(&cache, &["ingest", s(&store), s(&src)]);
    for (out, level) in [("a.tif", "0"), ("b.tif", "1"), ("c.png", "1")] {
        let out = dir.path().join(out);
        gs(
            &cache,
            &["export", s(&store), "-o", s(&out), "--level", level],
        );
    }
    let listing = gs(&cache, &["cache", "list"]);
    assert!(listing.contains("3 entries"), "{listing}");
    let cleared = |args: &[&str]| -> String {
        let mut all = vec!["cache", "clear"];
        all.extend(args);
        gs(&cache, &all)
    };
    assert!(cleared(&["--older-than", "1d"]).contains("removed 0"));
    assert!(cleared(&["--args", r#"{"format": "png"}"#]).contains("removed 1"));
    assert!(cleared(&["--function", "quicklook"]).contains("removed 0"));
    assert!(cleared(&["--args", r#"{"resolution": {"level": 1}}"#]).contains("removed 1"));
    assert_eq!(entries(&cache).len(), 1);
    assert!(cleared(&[]).contains("removed 1"));
    assert!(entries(&cache).is_empty());
    // Bad options: one line each.
    let err = gs_fails(&cache, &["cache", "clear", "--args", "[1]"]);
    assert!(err.contains("not a JSON object"), "{err}");
    let err = gs_fails(&cache, &["cache", "clear", "--older-than", "3 parsecs"]);
    assert!(err.contains("3 parsecs"), "{err}");
}

/// The first base chunk file of a folder store (one that holds data).
fn a_base_chunk(store: &Path) -> std::path::PathBuf {
    let mut stack = vec![store.join("0/data")];
    while let Some(dir) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else {
                return path;
            }
        }
    }
    panic!("no base chunk in {}", store.display());
}

/// Flips one byte in the middle of a file, in place.
fn flip_a_byte(file: &Path) {
    use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(file)
        .unwrap();
    let middle = f.metadata().unwrap().len() / 2;
    let mut byte = [0u8];
    f.seek(SeekFrom::Start(middle)).unwrap();
    f.read_exact(&mut byte).unwrap();
    f.seek(SeekFrom::Start(middle)).unwrap();
    f.write_all(&[byte[0] ^ 0x10]).unwrap();
}

fn cp_a(from: &Path, to: &Path) {
    let status = std::process::Command::new("cp")
        .args(["-a", s(from), s(to)])
        .status()
        .unwrap();
    assert!(status.success());
}

/// A store with data, its cache, and a cached whole-store export.
fn cached_store(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let cache = dir.join("cache");
    let store = dir.join("s.gs");
    let src = util::data("terra_elev.tif");
    gs(
        &cache,
        &["create", s(&store), "--like", s(&src), "--chunk", "16"],
    );
    gs(&cache, &["ingest", s(&store), s(&src)]);
    let first = gs(
        &cache,
        &["export", s(&store), "-o", s(&dir.join("first.tif"))],
    );
    assert!(!first.contains("from the cache"), "{first}");
    (store, cache)
}

/// The chunk named in an error, relative to its store.
fn names_the_chunk(err: &str, chunk: &Path, store: &Path) {
    let key = chunk
        .strip_prefix(store)
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(
        err.contains(&key) && err.contains("corrupt"),
        "names chunk {key}: {err}"
    );
}

/// Issue 9, point 2: a copy with a damaged chunk is not its original.
#[test]
fn a_damaged_copy_is_never_served_its_originals_results() {
    let dir = tempfile::tempdir().unwrap();
    let (store, cache) = cached_store(dir.path());
    let copy = dir.path().join("copy.gs");
    cp_a(&store, &copy);
    let chunk = a_base_chunk(&copy);
    flip_a_byte(&chunk);
    let err = gs_fails(
        &cache,
        &["export", s(&copy), "-o", s(&dir.path().join("c.tif"))],
    );
    names_the_chunk(&err, &chunk, &copy);
    // The original still answers from the cache.
    let again = gs(
        &cache,
        &["export", s(&store), "-o", s(&dir.path().join("o.tif"))],
    );
    assert!(again.contains("(from the cache)"), "{again}");
}

/// Another Zarr writer's change is seen: the cached export is not served,
/// and the export says what the store holds now (here, a chunk gridstore
/// cannot check, named), as it does without the cache.
#[test]
fn a_chunk_changed_by_another_zarr_writer_is_not_served_from_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let (store, cache) = cached_store(dir.path());
    // Write one chunk of level 0 where the data is, through zarr-python.
    let chunk = a_base_chunk(&store);
    let rel: Vec<String> = chunk
        .strip_prefix(store.join("0/data"))
        .unwrap()
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let (row, col) = (&rel[rel.len() - 2], &rel[rel.len() - 1]);
    let python = format!(
        "import zarr, numpy as np\n\
         a = zarr.open_array('{}', mode='r+')\n\
         r, c = {row} * 16, {col} * 16\n\
         a[r:r + 16, c:c + 16] = np.full((16, 16), 123, dtype=a.dtype)\n",
        store.join("0/data").display()
    );
    let out = std::process::Command::new("python3")
        .args(["-c", &python])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let target = dir.path().join("after.tif");
    let uncached = util::command()
        .env("GRIDSTORE_CACHE_DIR", &cache)
        .args(["export", s(&store), "-o", s(&target), "--no-cache"])
        .output()
        .unwrap();
    let cached = util::command()
        .env("GRIDSTORE_CACHE_DIR", &cache)
        .args(["export", s(&store), "-o", s(&target)])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&cached.stdout);
    assert!(!stdout.contains("from the cache"), "{stdout}");
    assert_eq!(cached.status.code(), uncached.status.code());
    assert_eq!(
        String::from_utf8_lossy(&cached.stderr),
        String::from_utf8_lossy(&uncached.stderr),
        "the cache changes nothing the export says"
    );
}

/// A backup restored over a store, in place (same files, older bytes): its
/// damage is found, not hidden behind results cached before.
#[test]
fn a_backup_restored_over_a_store_is_read_again() {
    let dir = tempfile::tempdir().unwrap();
    let (store, cache) = cached_store(dir.path());
    let backup = dir.path().join("backup.gs");
    cp_a(&store, &backup);
    let chunk = a_base_chunk(&backup);
    flip_a_byte(&chunk);
    // Restore over the store's own files (cp overwrites them in place).
    let status = std::process::Command::new("cp")
        .args(["-a", &format!("{}/.", s(&backup)), s(&store)])
        .status()
        .unwrap();
    assert!(status.success());
    let err = gs_fails(
        &cache,
        &["export", s(&store), "-o", s(&dir.path().join("r.tif"))],
    );
    let restored = store.join(chunk.strip_prefix(&backup).unwrap());
    names_the_chunk(&err, &restored, &store);
}

/// Two copies of one store that diverge (one changed by another Zarr
/// writer) answer each for itself, and both stay cached.
#[test]
fn two_copies_that_diverge_answer_each_for_itself() {
    let dir = tempfile::tempdir().unwrap();
    let (store, cache) = cached_store(dir.path());
    let twin = dir.path().join("twin.gs");
    cp_a(&store, &twin);
    // The twin, untouched, holds the same bytes: its own export is
    // computed (other files), then served from the cache.
    let export = |from: &Path, name: &str| {
        gs(
            &cache,
            &["export", s(from), "-o", s(&dir.path().join(name))],
        )
    };
    assert!(!export(&twin, "t1.tif").contains("from the cache"));
    assert!(export(&twin, "t2.tif").contains("(from the cache)"));
    assert_eq!(
        std::fs::read(dir.path().join("t1.tif")).unwrap(),
        std::fs::read(dir.path().join("first.tif")).unwrap()
    );
    // The twin diverges: its next export reads again and fails on the
    // damage; the original is still served.
    let chunk = a_base_chunk(&twin);
    flip_a_byte(&chunk);
    let err = gs_fails(
        &cache,
        &["export", s(&twin), "-o", s(&dir.path().join("t3.tif"))],
    );
    names_the_chunk(&err, &chunk, &twin);
    assert!(export(&store, "s2.tif").contains("(from the cache)"));
}
