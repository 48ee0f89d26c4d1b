//! A full disk, for real: each backend's store is put on a small tmpfs
//! (mounted in a private mount namespace, so no privileges outside the
//! test are needed), the disk is filled to leave 0, 8, 16, … KB free, and a
//! raster with other values is ingested. Where the ingest fails, it fails
//! with one line naming the cause and the file, and the store is exactly
//! as before (values, listing, history, verify clean, no pending write);
//! once space is freed the same ingest completes.
#![allow(clippy::unwrap_used)]

mod util;

use std::path::{Path, PathBuf};
use std::process::Command;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Free space left on the tmpfs, in KB, for each attempt.
const FREE_KB: [u32; 12] = [0, 8, 16, 24, 32, 40, 48, 64, 96, 128, 256, 1024];

/// What the store holds, as users see it: its chunk listing and two
/// levels' values (as a digest, to keep failure messages short), and how
/// many ingests its history records.
#[derive(Debug, PartialEq)]
struct Seen {
    data: u64,
    history: usize,
}

fn seen(store: &Path, scratch: &Path) -> Seen {
    let export = |level: u8| {
        let out = scratch.join(format!("seen{level}.tif"));
        util::ok(&[
            "export",
            s(store),
            "-o",
            s(&out),
            "--level",
            &level.to_string(),
        ]);
        let grid = util::read(s(&out), None);
        std::fs::remove_file(&out).unwrap();
        grid.bands
    };
    let history: serde_json::Value =
        serde_json::from_str(&util::ok(&["history", s(store), "--json"])).unwrap();
    let mut digest = std::hash::DefaultHasher::new();
    std::hash::Hash::hash(&util::ok(&["chunks", s(store), "--json"]), &mut digest);
    for level in [0, 2] {
        for band in export(level) {
            for v in band {
                std::hash::Hash::hash(&v.to_bits(), &mut digest);
            }
        }
    }
    Seen {
        data: std::hash::Hasher::finish(&digest),
        history: history["ingests"].as_array().map_or(0, Vec::len),
    }
}

/// The files of a folder store, but for the writer group (it names the
/// last writer's process).
fn files(store: &Path) -> std::collections::BTreeMap<PathBuf, Vec<u8>> {
    util::snapshot(store)
        .into_iter()
        .map(|(f, b)| (f.strip_prefix(store).unwrap().to_path_buf(), b))
        .filter(|(f, _)| !f.starts_with("writer"))
        .collect()
}

/// Runs `script` with its arguments in a private mount namespace.
fn in_namespace(script: &str, args: &[&str]) -> std::process::Output {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    let mut unshare = Command::new("unshare");
    if root {
        unshare.args(["--mount", "--propagation", "private"]);
    } else {
        unshare.args(["--user", "--map-root-user", "--mount"]);
    }
    let out = unshare
        .args(["bash", "-c", script, "full-disk"])
        .args(args)
        .output()
        .expect("unshare (util-linux) runs the full-disk test");
    assert!(
        out.status.success(),
        "the full-disk script failed (mount namespaces and tmpfs are needed): {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// For each free-space level: copy the store onto the tmpfs, fill it,
/// ingest (keeping the exit code, stderr and the store as it is then),
/// free the space, ingest again (keeping that store too).
const SCRIPT: &str = r#"
set -eu
bin=$1; src=$2; store=$3; out=$4; shift 4
disk=$(mktemp -d)
mount -t tmpfs -o size=48m tmpfs "$disk"
for free in "$@"; do
  cp -a "$store" "$disk/s.gs"
  dd if=/dev/zero of="$disk/filler" bs=4k 2>/dev/null || true
  truncate -s "-${free}K" "$disk/filler"
  rc=0; "$bin" ingest "$disk/s.gs" "$src" >/dev/null 2>"$out/$free.err" || rc=$?
  echo $rc >"$out/$free.rc"
  cp -a "$disk/s.gs" "$out/$free.after"
  rm "$disk/filler"
  rc=0; "$bin" ingest "$disk/s.gs" "$src" >/dev/null 2>>"$out/$free.err" || rc=$?
  echo $rc >"$out/$free.retry.rc"
  cp -a "$disk/s.gs" "$out/$free.retry"
  rm -rf "$disk/s.gs"
done
umount "$disk"
"#;

fn full_disk(backend: &str) {
    let dir = tempfile::tempdir().unwrap();
    let src = util::data("terra_elev.tif");
    // The same grid with other values: a partial write would show.
    let other = util::inverted("terra_elev.tif", dir.path());
    let store = dir.path().join("s.gs");
    util::ok(&[
        "create",
        s(&store),
        "--like",
        s(&src),
        "--chunk",
        "8",
        "--backend",
        backend,
    ]);
    util::ok(&["ingest", s(&store), s(&src)]);
    let before = seen(&store, dir.path());
    let before_files = (backend == "folder").then(|| files(&store));
    // What the ingest makes of the store when the disk has room.
    let reference = dir.path().join("ref.gs");
    util::ok(&["convert", s(&store), s(&reference), "--backend", backend]);
    util::ok(&["ingest", s(&reference), s(&other)]);
    let expected = seen(&reference, dir.path());
    assert_ne!(expected.data, before.data);
    assert_eq!((before.history, expected.history), (1, 2));

    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let free: Vec<String> = FREE_KB.iter().map(u32::to_string).collect();
    let mut args = vec![
        env!("CARGO_BIN_EXE_gridstore"),
        s(&other),
        s(&store),
        s(&out),
    ];
    args.extend(free.iter().map(String::as_str));
    in_namespace(SCRIPT, &args);

    let (mut failed, mut succeeded, mut causes) = (0, 0, Vec::new());
    for kb in &free {
        let read = |name: &str| std::fs::read_to_string(out.join(name)).unwrap();
        let rc: i32 = read(&format!("{kb}.rc")).trim().parse().unwrap();
        let err = read(&format!("{kb}.err"));
        let after = out.join(format!("{kb}.after"));
        let verified = util::ok(&["verify", s(&after)]);
        assert!(
            verified.starts_with("ok") && !verified.contains("pending"),
            "{kb} KB free: {verified}"
        );
        if rc == 0 {
            succeeded += 1;
            assert_eq!(seen(&after, dir.path()), expected, "{kb} KB free");
        } else {
            failed += 1;
            assert_eq!(rc, 2, "{kb} KB free: {err}");
            let line = err.lines().next().unwrap_or_default();
            assert!(
                line.contains("No space left on device")
                    || line.contains("not enough free disk space"),
                "{kb} KB free: {err}"
            );
            assert!(line.contains("/s.gs"), "names the store's file: {line}");
            causes.push(line.rsplit(": ").next().unwrap().to_string());
            assert_eq!(seen(&after, dir.path()), before, "{kb} KB free: {line}");
            if let Some(before_files) = &before_files {
                assert_eq!(&files(&after), before_files, "{kb} KB free: {line}");
            }
        }
        // With room again, the same ingest completes.
        assert_eq!(
            read(&format!("{kb}.retry.rc")).trim(),
            "0",
            "{kb} KB: {err}"
        );
        let retry = out.join(format!("{kb}.retry"));
        assert!(util::ok(&["verify", s(&retry)]).starts_with("ok"));
        let again = seen(&retry, dir.path());
        assert_eq!(again.data, expected.data, "{kb} KB free, retried");
        let ingests = if rc == 0 { 3 } else { 2 };
        assert_eq!(again.history, ingests, "{kb} KB free, retried");
    }
    assert!(
        failed >= 3 && succeeded >= 1,
        "the sweep spans failure and success: {failed} failed, {succeeded} succeeded"
    );
    causes.dedup();
    // An hdf5 store buffers its records until the commit point, where the
    // room check catches every shortage; the others write as they stage.
    let steps = if backend == "hdf5" { 1 } else { 2 };
    assert!(
        causes.len() >= steps,
        "failures at {steps} or more steps of the write: {causes:?}"
    );
}

#[test]
fn a_full_disk_fails_a_folder_ingest_cleanly() {
    full_disk("folder");
}

#[test]
fn a_full_disk_fails_a_packed_ingest_cleanly() {
    full_disk("packed");
}

#[test]
fn a_full_disk_fails_an_hdf5_ingest_cleanly() {
    full_disk("hdf5");
}
