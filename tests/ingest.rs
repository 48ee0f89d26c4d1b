//! Ingest through the library: progress events, cancellation, and resuming.
#![allow(clippy::unwrap_used)]

mod util;

use gridstore::engine::persistence::layout::Layout;
use gridstore::engine::{CancelToken, JobEvent, NoProgress, Store};
use gridstore::gdal_io::{IngestOptions, LikeOverrides, ingest, structure_like};
use gridstore::storage::{Backend, FolderStorage};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// A 1024 x 768 f32 GeoTIFF with a smooth surface and a nodata hole.
fn synthetic(dir: &Path) -> PathBuf {
    let path = dir.join("synthetic.tif");
    let driver = gdal::DriverManager::get_driver_by_name("GTiff").unwrap();
    let (w, h) = (1024usize, 768usize);
    let mut ds = driver
        .create_with_band_type::<f32, _>(&path, w, h, 1)
        .unwrap();
    ds.set_geo_transform(&[100_000.0, 10.0, 0.0, 500_000.0, 0.0, -10.0])
        .unwrap();
    ds.set_spatial_ref(&gdal::spatial_ref::SpatialRef::from_epsg(32631).unwrap())
        .unwrap();
    let values: Vec<f32> = (0..w * h)
        .map(|i| {
            let (x, y) = ((i % w) as f32, (i / w) as f32);
            if (x - 500.0).hypot(y - 300.0) < 40.0 {
                -9999.0
            } else {
                (x * 0.01).sin() * 100.0 + y * 0.5
            }
        })
        .collect();
    let mut band = ds.rasterband(1).unwrap();
    band.set_no_data_value(Some(-9999.0)).unwrap();
    band.write(
        (0, 0),
        (w, h),
        &mut gdal::raster::Buffer::new((w, h), values),
    )
    .unwrap();
    path
}

/// Ingests with default options, no progress and no cancel.
fn ingest_plain(
    store: &Store,
    src: &Path,
) -> Result<gridstore::gdal_io::IngestReport, gridstore::gdal_io::IoError> {
    ingest(
        store,
        src,
        &IngestOptions::default(),
        &NoProgress,
        &CancelToken::new(),
    )
}

fn new_store(dir: &Path, name: &str, like: &Path) -> Store {
    new_store_on(dir, name, like, Backend::Folder)
}

fn new_store_on(dir: &Path, name: &str, like: &Path, backend: Backend) -> Store {
    new_store_laid(dir, name, like, backend, Layout::Zarr2)
}

fn new_store_laid(dir: &Path, name: &str, like: &Path, backend: Backend, layout: Layout) -> Store {
    let mut structure = structure_like(like, &LikeOverrides::default())
        .unwrap()
        .structure;
    structure.chunk = [32, 32];
    structure.domain_levels = 8;
    let storage = gridstore::storage::create(&dir.join(name), backend).unwrap();
    Store::create_with_layout(storage, structure, layout).unwrap()
}

/// Every file of the store but its history (`meta/`), whose records carry
/// times and durations.
fn chunk_files(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    util::snapshot(root)
        .into_iter()
        .map(|(p, b)| (p.strip_prefix(root).unwrap().to_path_buf(), b))
        .filter(|(p, _)| !p.starts_with("meta"))
        .map(|(p, b)| {
            let b = util::comparable(p.to_str().unwrap(), b);
            (p, b)
        })
        .collect()
}

#[test]
fn progress_reports_phases_and_reaches_the_total() {
    let dir = tempfile::tempdir().unwrap();
    let src = synthetic(dir.path());
    let store = new_store(dir.path(), "p.gs", &src);
    let events = Mutex::new(Vec::new());
    let sink = |e: JobEvent| events.lock().unwrap().push(e);
    let report = ingest(
        &store,
        &src,
        &IngestOptions::default(),
        &sink,
        &CancelToken::new(),
    )
    .unwrap();
    assert_eq!((report.window.cols, report.window.rows), (1024, 768));
    let events = events.into_inner().unwrap();
    let phases: Vec<&str> = events
        .iter()
        .filter_map(|e| {
            if let JobEvent::Phase { name, .. } = e {
                Some(*name)
            } else {
                None
            }
        })
        .collect();
    assert_eq!(phases.first(), Some(&"ingest"));
    assert!(phases.contains(&"pyramid"));
    let last_ingest = events.iter().rev().find_map(|e| match e {
        JobEvent::Progress {
            done, total, bytes, ..
        } if *total == 12 => Some((*done, *bytes)),
        _ => None,
    });
    // 1024 x 768 cells in blocks of 8x8 chunks of 32 = 256 cells: 4 x 3 blocks.
    assert_eq!(last_ingest, Some((12, 1024 * 768 * 4)));
    // Which chunks change, and when: announced before the first block is
    // read, the staged levels on commit, the levels above once aggregated.
    let chunks: Vec<(usize, [u8; 2], bool)> = events
        .iter()
        .enumerate()
        .filter_map(|(i, e)| match e {
            JobEvent::Chunks {
                t,
                window,
                levels,
                done,
            } => {
                assert_eq!((*t, *window), (0, report.window));
                Some((i, *levels, *done))
            }
            _ => None,
        })
        .collect();
    let top = store.grid().top_level();
    let block_level = 3;
    assert_eq!(
        chunks.iter().map(|c| (c.1, c.2)).collect::<Vec<_>>(),
        [
            ([0, top], false),
            ([0, block_level], true),
            ([block_level + 1, top], true)
        ]
    );
    let first_progress = events
        .iter()
        .position(|e| matches!(e, JobEvent::Progress { .. }))
        .unwrap();
    assert!(chunks[0].0 < first_progress);
}

#[test]
fn a_cancelled_ingest_resumes_to_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let src = synthetic(dir.path());
    let clean = new_store(dir.path(), "clean.gs", &src);
    ingest_plain(&clean, &src).unwrap();

    let store = new_store(dir.path(), "resumed.gs", &src);
    let cancel = CancelToken::new();
    let trigger = cancel.clone();
    let landed = Mutex::new(Vec::new());
    let sink = |e: JobEvent| {
        if let JobEvent::Progress { done, .. } = e
            && done >= 2
        {
            trigger.cancel();
        }
        if let JobEvent::Chunks { done: true, .. } = e {
            landed.lock().unwrap().push(e);
        }
    };
    let before = chunk_files(&dir.path().join("resumed.gs"));
    let err = ingest(&store, &src, &IngestOptions::default(), &sink, &cancel).unwrap_err();
    assert!(err.is_cancelled(), "{err}");
    assert!(landed.into_inner().unwrap().is_empty(), "nothing landed");
    assert_eq!(
        chunk_files(&dir.path().join("resumed.gs")),
        before,
        "a cancelled ingest leaves the store exactly as it was"
    );
    assert!(
        store.ingest_history().unwrap().is_empty(),
        "nothing recorded"
    );
    ingest_plain(&store, &src).unwrap();
    // One ingest each: the cancelled one left no record.
    assert_eq!(store.ingest_history().unwrap().len(), 1);
    assert_eq!(clean.ingest_history().unwrap().len(), 1);
    drop((store, clean));
    assert_eq!(
        chunk_files(&dir.path().join("resumed.gs")),
        chunk_files(&dir.path().join("clean.gs"))
    );
}

#[test]
fn nodata_in_a_later_source_never_overwrites_data() {
    let dir = tempfile::tempdir().unwrap();
    let src = synthetic(dir.path());
    let store = new_store(dir.path(), "o.gs", &src);
    ingest_plain(&store, &src).unwrap();
    // A second source over the same grid: constant 7 with its own hole elsewhere.
    let second = dir.path().join("second.tif");
    std::fs::copy(&src, &second).unwrap();
    {
        let ds = gdal::Dataset::open_ex(
            &second,
            gdal::DatasetOptions {
                open_flags: gdal::GdalOpenFlags::GDAL_OF_UPDATE,
                ..Default::default()
            },
        )
        .unwrap();
        let mut band = ds.rasterband(1).unwrap();
        let (w, h) = band.size();
        let values: Vec<f32> = band
            .read_as::<f32>((0, 0), (w, h), (w, h), None)
            .unwrap()
            .data()
            .iter()
            .map(|v| if *v > 90.0 { -9999.0 } else { 7.0 })
            .collect();
        band.write(
            (0, 0),
            (w, h),
            &mut gdal::raster::Buffer::new((w, h), values),
        )
        .unwrap();
    }
    ingest_plain(&store, &second).unwrap();
    let first = util::read(src.to_str().unwrap(), None);
    let later = util::read(second.to_str().unwrap(), None);
    let window = store.data_window::<f32>(0).unwrap().unwrap();
    let got = store.read_window::<f32>(0, 0, &window).unwrap();
    for (i, v) in got.iter().enumerate() {
        let (a, b) = (first.bands[0][i], later.bands[0][i]);
        let expected = if b != -9999.0 { b } else { a };
        assert!(
            util::same(f64::from(*v), expected),
            "cell {i}: {v} vs {expected}"
        );
    }
}

/// Another process reading chunks while `gridstore ingest` writes them never
/// sees a torn or corrupt chunk.
#[test]
fn readers_in_another_process_never_see_torn_chunks() {
    for layout in [Layout::Zarr2, Layout::Zarr3 { shard: 4 }] {
        readers_never_see_torn_chunks(layout);
    }
}

fn readers_never_see_torn_chunks(layout: Layout) {
    let dir = tempfile::tempdir().unwrap();
    let src = synthetic(dir.path());
    let store = new_store_laid(dir.path(), "r.gs", &src, Backend::Folder, layout);
    let path = dir.path().join("r.gs");
    drop(store);
    let mut child = util::command()
        .args(["ingest", path.to_str().unwrap(), src.to_str().unwrap()])
        .spawn()
        .unwrap();
    let reader = Store::open(Arc::new(FolderStorage::open(&path).unwrap())).unwrap();
    let mut reads = 0;
    loop {
        let finished = child.try_wait().unwrap().is_some();
        for level in 0..=3 {
            for (t, loc, _) in reader.list_chunks(level).unwrap() {
                // A chunk may vanish between listing and reading; it must never be torn.
                reader.read_chunk::<f32>(t, loc).unwrap();
                reads += 1;
            }
        }
        if finished {
            break;
        }
    }
    assert!(child.wait().unwrap().success());
    assert!(reads > 0);
}

/// A source that fails part-way (truncated after its first blocks) leaves
/// the store byte-for-byte as it was.
#[test]
fn a_source_failing_part_way_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let src = synthetic(dir.path());
    let store = new_store(dir.path(), "f.gs", &src);
    // A first ingest, so there is data to protect.
    ingest_plain(&store, &src).unwrap();
    let before = chunk_files(&dir.path().join("f.gs"));
    let bytes = std::fs::read(&src).unwrap();
    let truncated = dir.path().join("truncated.tif");
    std::fs::write(&truncated, &bytes[..bytes.len() * 7 / 10]).unwrap();
    let err = ingest_plain(&store, &truncated).unwrap_err();
    assert!(
        err.to_string().contains("truncated.tif: read failed"),
        "{err}"
    );
    assert_eq!(chunk_files(&dir.path().join("f.gs")), before);
}

/// SIGKILL at random moments of `gridstore ingest`: every time the store
/// opens and verifies, and a final re-run gives the bytes of a clean run.
/// Every stored value but the history and the writer's pid, through the
/// store's own backend: what a reader sees, whatever the files look like.
fn stored(path: &Path) -> BTreeMap<String, Vec<u8>> {
    let storage = gridstore::storage::open(path).unwrap();
    storage
        .list("")
        .unwrap()
        .into_iter()
        .filter(|(k, _)| !k.as_str().starts_with("meta/") && !k.as_str().starts_with("writer/"))
        .map(|(k, _)| {
            let bytes = storage.get(&k).unwrap().unwrap();
            (k.to_string(), util::comparable(k.as_str(), bytes))
        })
        .collect()
}

/// SIGKILLs per backend: 50, or `GRIDSTORE_KILLS` for longer runs.
fn kills() -> u64 {
    std::env::var("GRIDSTORE_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50)
}

/// SIGKILLs `kills` ingests at moments spread over their run; after each
/// the store opens and verifies (every chunk old or new, never torn, the
/// index never pointing past its bytes), and a last ingest leaves exactly
/// what an uninterrupted one does.
fn killed_ingests_verify_and_resume(backend: Backend, layout: Layout, kills: u64) {
    let dir = tempfile::tempdir().unwrap();
    let src = synthetic(dir.path());
    let clean = new_store_laid(dir.path(), "clean.gs", &src, backend, layout);
    ingest_plain(&clean, &src).unwrap();
    drop(clean);
    let path = dir.path().join("killed.gs");
    drop(new_store_laid(
        dir.path(),
        "killed.gs",
        &src,
        backend,
        layout,
    ));
    let gs = env!("CARGO_BIN_EXE_gridstore");
    let run_gs = |args: &[&str]| std::process::Command::new(gs).args(args).output().unwrap();
    for i in 0..kills {
        let mut child = std::process::Command::new(gs)
            .args(["ingest", path.to_str().unwrap(), src.to_str().unwrap()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20 + i * 37 % 400));
        child.kill().ok();
        child.wait().unwrap();
        let out = run_gs(&["verify", path.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "{backend} kill {i}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = run_gs(&["ingest", path.to_str().unwrap(), src.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stored(&path), stored(&dir.path().join("clean.gs")));
    if backend == Backend::Folder {
        // The files themselves too: nothing stray but leftovers of killed
        // writers' temporary files.
        let visible = |root: &Path| -> BTreeMap<PathBuf, Vec<u8>> {
            chunk_files(root)
                .into_iter()
                .filter(|(p, _)| !p.to_string_lossy().ends_with(".tmp"))
                .collect()
        };
        assert_eq!(visible(&path), visible(&dir.path().join("clean.gs")));
    }
}

#[test]
fn killed_ingests_leave_a_folder_store_that_verifies_and_resumes() {
    killed_ingests_verify_and_resume(Backend::Folder, Layout::Zarr2, kills());
}

#[test]
fn killed_ingests_leave_a_zarr3_folder_store_that_verifies_and_resumes() {
    killed_ingests_verify_and_resume(Backend::Folder, Layout::Zarr3 { shard: 4 }, kills());
}

#[test]
fn killed_ingests_leave_a_packed_store_that_verifies_and_resumes() {
    killed_ingests_verify_and_resume(Backend::Packed, Layout::Zarr2, kills());
}

#[test]
fn killed_ingests_leave_an_hdf5_store_that_verifies_and_resumes() {
    killed_ingests_verify_and_resume(Backend::Hdf5, Layout::Zarr2, kills());
}
