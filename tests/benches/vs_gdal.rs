//! gridstore against GDAL on the same data, in one run; prints the ratios.
//!
//! `cargo bench --bench vs_gdal` generates (once, not committed) a synthetic
//! 16384 x 16384 f32 DEM as a tiled DEFLATE GeoTIFF under target/bench/, then:
//! 1. ingest with the full pyramid vs `gdal_translate -of COG` (zstd, average
//!    overviews, all CPUs), both with a 64 MB GDAL block cache, the median
//!    of three rounds;
//! 2. a 4096 x 4096 window export vs `gdal_translate -srcwin` from that COG;
//! 3. the same ingest into the zarr3 layout, its file count, and the window
//!    export from it;
//! 4. the whole extent at 1/16 resolution (`--size 1024x1024`) from both
//!    layouts vs `gdal_translate -outsize 1024 1024 -r average` from the
//!    COG's overviews, both to tiled ZSTD-3 GeoTIFF;
//! 5. opening a store of 100,000 chunks.
//!
//! Set `GRIDSTORE_BENCH_SIZE` for a smaller DEM (e.g. 4096) to try it quickly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::cast_precision_loss)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const GDAL_CACHEMAX_MB: &str = "64";

fn main() {
    // `cargo bench` passes "--bench"; `cargo test --benches` passes nothing useful either.
    let size: usize = std::env::var("GRIDSTORE_BENCH_SIZE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(16384);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench");
    std::fs::create_dir_all(&dir).unwrap();
    let dem = dir.join(format!("dem{size}.tif"));
    if !dem.exists() {
        eprintln!("generating {} ...", dem.display());
        generate_dem(&dem, size);
    }
    let raw_mb = (size * size * 4) as f64 / 1e6;
    println!(
        "source: {} ({size} x {size} f32, {raw_mb:.0} MB raw)",
        dem.display()
    );

    let store = dir.join("store.gs");
    let store3 = dir.join("store3.gs");
    let cog = dir.join("gdal_cog.tif");
    let gs = env!("CARGO_BIN_EXE_gridstore");
    // A new store in `layout`, the DEM ingested into it: wall s, peak MB.
    let ingest_into = |store: &Path, layout: &str| {
        std::fs::remove_dir_all(store).ok();
        run(
            gs,
            &["create", s(store), "--like", s(&dem), "--layout", layout],
        );
        timed(gs, &["ingest", s(store), s(&dem)])
    };
    let build_cog = || {
        std::fs::remove_file(&cog).ok();
        timed(
            "gdal_translate",
            &[
                "-q",
                "-of",
                "COG",
                "-co",
                "COMPRESS=ZSTD",
                "-co",
                "OVERVIEW_RESAMPLING=AVERAGE",
                "-co",
                "NUM_THREADS=ALL_CPUS",
                s(&dem),
                s(&cog),
            ],
        )
    };
    // Three rounds, the three builds in turn, so that a drift of the
    // machine's speed touches all three; each figure is a median.
    let rounds: Vec<[(f64, f64); 3]> = (0..3)
        .map(|_| {
            [
                ingest_into(&store, "zarr2"),
                build_cog(),
                ingest_into(&store3, "zarr3"),
            ]
        })
        .collect();
    let median = |i: usize| {
        let mut runs: Vec<(f64, f64)> = rounds.iter().map(|r| r[i]).collect();
        runs.sort_by(|a, b| a.0.total_cmp(&b.0));
        runs[runs.len() / 2]
    };
    let ((ours, our_rss), (theirs, their_rss), (ours3, rss3)) = (median(0), median(1), median(2));
    let ours_ingest = ours;
    let theirs_ingest = theirs;
    println!(
        "ingest + pyramid, median of 3  gridstore {ours:7.2} s  {our_rss:6.0} MB peak | gdal_translate COG {theirs:7.2} s  {their_rss:6.0} MB peak | speed-up {:.2}x, RSS {:.1}% of raw input",
        theirs / ours,
        100.0 * our_rss / raw_mb
    );

    let win = 4096.min(size / 2);
    let (c0, r0) = (size / 4, size / 4);
    let info = Command::new("gdalinfo").arg(s(&dem)).output().unwrap();
    let text = String::from_utf8_lossy(&info.stdout);
    let origin = parse_pair(&text, "Origin = (");
    let cell = parse_pair(&text, "Pixel Size = (");
    let bbox = format!(
        "{},{},{},{}",
        origin.0 + c0 as f64 * cell.0,
        origin.1 + (r0 + win) as f64 * cell.1,
        origin.0 + (c0 + win) as f64 * cell.0,
        origin.1 + r0 as f64 * cell.1
    );
    let ours_out = dir.join("window_gridstore.tif");
    let theirs_out = dir.join("window_gdal.tif");
    // The export itself (the function cache would answer a repeat; that
    // is timed below).
    let cache = dir.join("function-cache");
    std::fs::remove_dir_all(&cache).ok();
    let export = |extra: &[&str]| {
        let mut args = vec!["export", s(&store), "-o", s(&ours_out), "--bbox", &bbox];
        args.extend(extra);
        // The cache lives in the bench's own folder.
        timed_env(gs, &args, ("GRIDSTORE_CACHE_DIR", s(&cache)))
    };
    let (ours, _) = export(&["--no-cache"]);
    let (theirs, _) = timed(
        "gdal_translate",
        &[
            "-q",
            "-srcwin",
            &c0.to_string(),
            &r0.to_string(),
            &win.to_string(),
            &win.to_string(),
            // The same output settings as gridstore's export.
            "-co",
            "TILED=YES",
            "-co",
            "COMPRESS=ZSTD",
            "-co",
            "ZSTD_LEVEL=3",
            "-co",
            "NUM_THREADS=ALL_CPUS",
            s(&cog),
            s(&theirs_out),
        ],
    );
    assert_eq!(
        checksum(&ours_out),
        checksum(&theirs_out),
        "the exported windows hold the same values"
    );
    let plain_out = dir.join("window_gdal_plain.tif");
    let (plain, _) = timed(
        "gdal_translate",
        &[
            "-q",
            "-srcwin",
            &c0.to_string(),
            &r0.to_string(),
            &win.to_string(),
            &win.to_string(),
            s(&cog),
            s(&plain_out),
        ],
    );
    println!(
        "window export {win}^2  gridstore {ours:7.2} s | gdal_translate -srcwin, same tiled zstd output {theirs:7.2} s: speed-up {:.2}x | plain (uncompressed) {plain:7.2} s: speed-up {:.2}x",
        theirs / ours,
        plain / ours
    );
    // The same request twice through the cache: the first keeps the file,
    // the second copies it back.
    let (first, _) = export(&[]);
    let (repeat, _) = export(&[]);
    assert_eq!(checksum(&ours_out), checksum(&theirs_out));
    println!(
        "repeated window export  first {first:7.2} s (kept in the cache) | repeat {repeat:7.2} s from the cache | gdal_translate {theirs:7.2} s: speed-up {:.2}x",
        theirs / repeat
    );

    // The zarr3 layout: the same ingest (above), the same window.
    let files = |p: &Path| {
        walk(p)
            .iter()
            .filter(|f| !f.to_string_lossy().contains("/meta/"))
            .count()
    };
    let (files2, files3) = (files(&store), files(&store3));
    let ingest2 = ours_ingest;
    println!(
        "zarr3 ingest + pyramid  {ours3:7.2} s  {rss3:6.0} MB peak | zarr2 {ingest2:7.2} s: {:.2}x zarr2's speed | COG {theirs_ingest:7.2} s: speed-up {:.2}x | files: zarr2 {files2}, zarr3 {files3} ({:.1}x fewer)",
        ingest2 / ours3,
        theirs_ingest / ours3,
        files2 as f64 / files3 as f64
    );
    let window3 = dir.join("window_zarr3.tif");
    // The median of 5 uncached exports of `store` to `out`, with `what`
    // saying which cells.
    let export_from = |store: &Path, out: &Path, what: [&str; 2]| {
        let args = [
            "export",
            s(store),
            "-o",
            s(out),
            what[0],
            what[1],
            "--no-cache",
        ];
        median_of(5, || wall(gs, &args))
    };
    let window_args = ["--bbox", bbox.as_str()];
    let (w2, w3) = (
        export_from(&store, &ours_out, window_args),
        export_from(&store3, &window3, window_args),
    );
    assert_eq!(checksum(&window3), checksum(&theirs_out));
    println!(
        "window export {win}^2, median of 5  zarr2 {w2:7.3} s | zarr3 {w3:7.3} s: {:.2}x zarr2's speed",
        w2 / w3
    );
    // The whole extent at 1/16 resolution.
    let side = (size / 16).to_string();
    let size_arg = format!("{side}x{side}");
    let overview_args = ["--size", size_arg.as_str()];
    let (o2, o3) = (
        export_from(&store, &dir.join("overview_zarr2.tif"), overview_args),
        export_from(&store3, &dir.join("overview_zarr3.tif"), overview_args),
    );
    let gdal_overview = dir.join("overview_gdal.tif");
    let og = median_of(5, || {
        wall(
            "gdal_translate",
            &[
                "-q",
                "-outsize",
                &side,
                &side,
                "-r",
                "average",
                "-co",
                "TILED=YES",
                "-co",
                "COMPRESS=ZSTD",
                "-co",
                "ZSTD_LEVEL=3",
                "-co",
                "NUM_THREADS=ALL_CPUS",
                s(&cog),
                s(&gdal_overview),
            ],
        )
    });
    println!(
        "overview export {side}^2 of the whole extent, median of 5  zarr2 {o2:7.3} s | zarr3 {o3:7.3} s | gdal_translate -outsize -r average from the COG {og:7.3} s: speed-up {:.2}x (zarr2), {:.2}x (zarr3)",
        og / o2,
        og / o3
    );

    let many = dir.join("many100k.gs");
    if !many.join(".zattrs").exists() {
        make_store_with_chunks(&many, 100_000);
    }
    let mut times: Vec<f64> = (0..21)
        .map(|_| {
            let start = Instant::now();
            let storage = gridstore::storage::FolderStorage::open(&many).unwrap();
            let store = gridstore::engine::Store::open(std::sync::Arc::new(storage)).unwrap();
            store.master_chunk(0).unwrap();
            start.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    times.sort_by(f64::total_cmp);
    println!(
        "open a store of 100,000 chunks (+ find its master chunk): median {:.2} ms, max {:.2} ms",
        times[10], times[20]
    );
}

/// The median of `n` runs of `f`.
fn median_of(n: usize, mut f: impl FnMut() -> f64) -> f64 {
    let mut times: Vec<f64> = (0..n).map(|_| f()).collect();
    times.sort_by(f64::total_cmp);
    times[n / 2]
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn run(cmd: &str, args: &[&str]) {
    let st = Command::new(cmd)
        .args(args)
        .env("GDAL_CACHEMAX", GDAL_CACHEMAX_MB)
        .status()
        .unwrap();
    assert!(st.success(), "{cmd} {args:?}");
}

/// Wall seconds of one run, the command spawned directly (the figures
/// of short exports, where GNU time's own start would blur the ratio).
fn wall(cmd: &str, args: &[&str]) -> f64 {
    let start = Instant::now();
    let out = Command::new(cmd)
        .args(args)
        .env("GDAL_CACHEMAX", GDAL_CACHEMAX_MB)
        .output()
        .unwrap();
    let secs = start.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    secs
}

/// Wall seconds and peak RSS in MB, through GNU time.
fn timed(cmd: &str, args: &[&str]) -> (f64, f64) {
    timed_env(cmd, args, ("GDAL_CACHEMAX", GDAL_CACHEMAX_MB))
}

/// [`timed`] with one more environment variable.
fn timed_env(cmd: &str, args: &[&str], var: (&str, &str)) -> (f64, f64) {
    // Wall time to the microsecond here (time's own is in hundredths,
    // too coarse for exports of tens of milliseconds); its peak RSS.
    let start = Instant::now();
    let out = Command::new("/usr/bin/time")
        .args(["-f", "%e %M", cmd])
        .args(args)
        .env("GDAL_CACHEMAX", GDAL_CACHEMAX_MB)
        .env(var.0, var.1)
        .output()
        .unwrap();
    let wall = start.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    let last = err.lines().last().unwrap_or_default();
    let kb: f64 = last
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN);
    (wall, kb / 1000.0)
}

/// GDAL's checksum of band 1.
fn checksum(path: &Path) -> String {
    let out = Command::new("gdalinfo")
        .args(["-checksum", s(path)])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find(|l| l.contains("Checksum="))
        .unwrap_or_default()
        .trim()
        .to_string()
}

fn parse_pair(text: &str, prefix: &str) -> (f64, f64) {
    let line = text.lines().find(|l| l.starts_with(prefix)).unwrap();
    let inner = line.trim_start_matches(prefix).trim_end_matches(')');
    let (a, b) = inner.split_once(',').unwrap();
    (a.trim().parse().unwrap(), b.trim().parse().unwrap())
}

/// A smooth synthetic terrain rounded to centimetres, tiled DEFLATE.
fn generate_dem(path: &PathBuf, size: usize) {
    let driver = gdal::DriverManager::get_driver_by_name("GTiff").unwrap();
    let options = gdal::raster::RasterCreationOptions::from_iter([
        "TILED=YES",
        "COMPRESS=DEFLATE",
        "BIGTIFF=YES",
    ]);
    let mut ds = driver
        .create_with_band_type_with_options::<f32, _>(path, size, size, 1, &options)
        .unwrap();
    ds.set_geo_transform(&[100_000.0, 1.0, 0.0, 500_000.0, 0.0, -1.0])
        .unwrap();
    ds.set_spatial_ref(&gdal::spatial_ref::SpatialRef::from_epsg(28992).unwrap())
        .unwrap();
    let mut band = ds.rasterband(1).unwrap();
    band.set_no_data_value(Some(-9999.0)).unwrap();
    let rows = 512;
    for r0 in (0..size).step_by(rows) {
        let values: Vec<f32> = (0..rows * size)
            .map(|i| {
                let (x, y) = ((i % size) as f32, (r0 + i / size) as f32);
                let h = 50.0 * (x / 900.0).sin() * (y / 1300.0).cos()
                    + 20.0 * (x / 170.0 + y / 230.0).sin()
                    + 0.002 * (x + y);
                (h * 100.0).round() / 100.0
            })
            .collect();
        band.write(
            (0, r0 as isize),
            (size, rows),
            &mut gdal::raster::Buffer::new((size, rows), values),
        )
        .unwrap();
    }
}

/// A store of at least `n` base chunks (2 x 2 cells each) with its full
/// pyramid above them.
fn make_store_with_chunks(path: &Path, n: u32) {
    use gridstore::engine::{Aggregator, Codec, Crs, DType, Resampling, Store, Structure, Window};
    let structure = Structure {
        crs: Crs {
            wkt: "LOCAL_CS[\"bench\"]".into(),
            epsg: None,
            name: "bench".into(),
        },
        anchor: [0.0, 0.0],
        cell_size: [1.0, 1.0],
        chunk: [2, 2],
        domain_levels: 10,
        dtype: DType::U8,
        nodata: Some(0.0),
        codec: Codec::default(),
        aggregate: Aggregator::Max,
        resampling: Resampling::Nearest,
        bands: None,
        time: None,
        time_levels: Vec::new(),
    };
    let storage = gridstore::storage::FolderStorage::create(path).unwrap();
    let store = Store::create(std::sync::Arc::new(storage), structure).unwrap();
    let side = (f64::from(n).sqrt().ceil() as u64) * 2;
    let data = ndarray::Array3::from_shape_fn((1, side as usize, side as usize), |(_, r, c)| {
        (1 + (r * 7 + c) % 250) as u8
    });
    store
        .write(
            None,
            Window {
                row: 0,
                col: 0,
                rows: side,
                cols: side,
            },
            data.view(),
        )
        .unwrap();
}
