//! Time levels: the cost of reading a stored month of 744 hourly instants
//! against reading one instant, and of ingesting one more hour (a GeoTIFF,
//! as `gridstore ingest` does; and the engine's write alone) into a store
//! with day, month and year levels against one without. Both stores hold
//! the same hours of 512 × 512 f32 rain (256² chunks, zstd, a folder
//! store); each run writes or reads the same thing in each, one after the
//! other, and the ratio of the medians is printed. Then the same ingest
//! into a pair of `mean` stores (a temperature's daily mean), whose maps
//! step through their periods' sums.
//! `cargo bench --bench periods`.
#![allow(clippy::unwrap_used)]

use gridstore::engine::grid::period::TimeLevel;
use gridstore::engine::grid::time::parse_instant;
use gridstore::engine::persistence::layout::Layout;
use gridstore::engine::{
    Aggregator, CancelToken, Codec, Crs, DType, NoProgress, Resampling, Store, Structure, TimeAxis,
    Window,
};
use gridstore::storage::FolderStorage;
use ndarray::Array3;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

const SIDE: u64 = 512;
const HOUR: i64 = 3600;

fn structure(aggregate: Aggregator, time_levels: Vec<TimeLevel>) -> Structure {
    Structure {
        crs: Crs {
            wkt: utm().to_wkt().unwrap(),
            epsg: Some(32631),
            name: "WGS 84 / UTM zone 31N".into(),
        },
        anchor: [0.0, 0.0],
        cell_size: [100.0, 100.0],
        chunk: [256, 256],
        domain_levels: 6,
        dtype: DType::F32,
        nodata: Some(f64::NAN),
        codec: Codec::default(),
        aggregate,
        resampling: Resampling::Average,
        bands: None,
        time: Some(TimeAxis::Regular {
            origin: parse_instant("2024-01-01").unwrap(),
            step: HOUR,
        }),
        time_levels,
    }
}

fn utm() -> gdal::spatial_ref::SpatialRef {
    gdal::spatial_ref::SpatialRef::from_epsg(32631).unwrap()
}

/// The hour's rain as a GeoTIFF on the store's cells (read, not warped).
fn geotiff(dir: &Path, hour: i64) -> std::path::PathBuf {
    let path = dir.join(format!("rain_{hour}.tif"));
    let driver = gdal::DriverManager::get_driver_by_name("GTiff").unwrap();
    let side = SIDE as usize;
    let mut dataset = driver
        .create_with_band_type::<f32, _>(&path, side, side, 1)
        .unwrap();
    // The window's top-left cell is the anchor's (0, 0).
    dataset
        .set_geo_transform(&[0.0, 100.0, 0.0, 0.0, 0.0, -100.0])
        .unwrap();
    dataset.set_spatial_ref(&utm()).unwrap();
    let mut band = dataset.rasterband(1).unwrap();
    band.set_no_data_value(Some(f64::NAN)).unwrap();
    let cells = rain(hour).into_raw_vec_and_offset().0;
    let mut buffer = gdal::raster::Buffer::new((side, side), cells);
    band.write((0, 0), (side, side), &mut buffer).unwrap();
    path
}

fn ingest(store: &Store, hour: i64, file: &Path) -> f64 {
    let at = parse_instant("2024-01-01").unwrap() + hour * HOUR;
    let options = gridstore::gdal_io::IngestOptions {
        instant: Some(at),
        ..Default::default()
    };
    let start = Instant::now();
    gridstore::gdal_io::ingest(store, file, &options, &NoProgress, &CancelToken::new()).unwrap();
    start.elapsed().as_secs_f64()
}

/// The data's window: a square from the anchor's cell.
fn window() -> Window {
    let half = 256 << 5;
    Window {
        row: half,
        col: half,
        rows: SIDE,
        cols: SIDE,
    }
}

/// An hour of rain: showers over dry ground (NaN where no gauge reached).
fn rain(hour: i64) -> Array3<f32> {
    let mut state = hour as u64 * 6_364_136_223_846_793_005 + 7;
    Array3::from_shape_fn((1, SIDE as usize, SIDE as usize), |(_, r, c)| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let noise = (state >> 40) as f32 / (1u64 << 24) as f32;
        if noise < 0.05 {
            f32::NAN
        } else {
            let shower =
                ((r as f32 * 0.02 + hour as f32 * 0.3).sin() * (c as f32 * 0.03).cos()).max(0.0);
            (shower * 8.0 + noise).round() / 4.0
        }
    })
}

fn write(store: &Store, hour: i64) -> f64 {
    let at = parse_instant("2024-01-01").unwrap() + hour * HOUR;
    let cells = rain(hour);
    let start = Instant::now();
    store.write(Some(at), window(), cells.view()).unwrap();
    start.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// January up to its last day's 14:00 (`hours`) in a store of
/// `aggregate` without time levels and in one with day, month and year
/// levels (built from it at once, as `convert --time-levels` does), both
/// opened for writing.
fn stores(dir: &Path, aggregate: Aggregator, hours: i64) -> (Store, Store) {
    let (plain, kept) = (
        dir.join(format!("plain-{aggregate}.gs")),
        dir.join(format!("kept-{aggregate}.gs")),
    );
    let store = Store::create_with_layout(
        Arc::new(FolderStorage::create(&plain).unwrap()),
        structure(aggregate, Vec::new()),
        Layout::Zarr2,
    )
    .unwrap();
    let setup = Instant::now();
    for hour in 0..hours {
        write(&store, hour);
    }
    let levels = vec![TimeLevel::Day, TimeLevel::Month, TimeLevel::Year];
    store
        .convert_into(
            Arc::new(FolderStorage::create(&kept).unwrap()),
            Layout::Zarr2,
            Some(levels),
        )
        .unwrap();
    drop(store);
    eprintln!(
        "{aggregate}: {hours} hours of {SIDE}² cells written and their periods built in {:.0} s",
        setup.elapsed().as_secs_f64()
    );
    let open =
        |path: &Path| Store::open_writer(Arc::new(FolderStorage::open(path).unwrap())).unwrap();
    (open(&plain), open(&kept))
}

/// Ingests the GeoTIFFs of the hours from `hours` on into both stores, one
/// after the other; the medians and their ratio.
fn one_more_hour(plain: &Store, kept: &Store, hours: i64, files: &[std::path::PathBuf]) -> String {
    let (mut without, mut with) = (Vec::new(), Vec::new());
    for (hour, file) in (hours..).zip(files) {
        without.push(ingest(plain, hour, file));
        with.push(ingest(kept, hour, file));
    }
    let (a, b) = (median(without), median(with));
    format!(
        "{:.0} ms without time levels, {:.0} ms with day, month and year: {:.2}x",
        a * 1e3,
        b * 1e3,
        b / a
    )
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let hours: i64 = 30 * 24 + 14;
    let (plain, kept) = stores(dir.path(), Aggregator::Sum, hours);
    // One more hour each, the last ten of January (a day of 15 to 24
    // hours, a month of 31 days, a year of one month): the first six
    // ingested from GeoTIFFs, the last four written by the engine alone.
    let files: Vec<_> = (hours..hours + 6).map(|h| geotiff(dir.path(), h)).collect();
    println!(
        "ingest one more hour (sum): {}",
        one_more_hour(&plain, &kept, hours, &files)
    );
    let (mut without, mut with) = (Vec::new(), Vec::new());
    for hour in hours + 6..hours + 10 {
        without.push(write(&plain, hour));
        with.push(write(&kept, hour));
    }
    let (a, b) = (median(without), median(with));
    println!(
        "engine write of one more hour: {:.0} ms without, {:.0} ms with: {:.2}x",
        a * 1e3,
        b * 1e3,
        b / a
    );
    // Reading January's month map against reading one of its hours.
    let month = kept.period_maps(TimeLevel::Month).unwrap();
    let t_month = month
        .time_index(Some(parse_instant("2024-01-01").unwrap()), false)
        .unwrap();
    let t_hour = plain
        .time_index(Some(parse_instant("2024-01-15T12:00").unwrap()), false)
        .unwrap();
    let (mut instant, mut period) = (Vec::new(), Vec::new());
    for _ in 0..7 {
        let start = Instant::now();
        let one = plain.read_window::<f32>(t_hour, 0, &window()).unwrap();
        instant.push(start.elapsed().as_secs_f64());
        let start = Instant::now();
        let all = month.read_window::<f32>(t_month, 0, &window()).unwrap();
        period.push(start.elapsed().as_secs_f64());
        assert_eq!(one.dim(), all.dim());
    }
    let (a, b) = (median(instant), median(period));
    println!(
        "read a stored month of 744 hours: {:.1} ms, one hour: {:.1} ms: {:.2}x",
        b * 1e3,
        a * 1e3,
        b / a
    );
    let report = kept.verify::<f32>(&NoProgress, &CancelToken::new());
    assert!(report.unwrap().damage.is_empty(), "the periods verify");
    drop((plain, kept));
    // A mean: its maps step through their sums.
    let (plain, kept) = stores(dir.path(), Aggregator::Mean, hours);
    println!(
        "ingest one more hour (mean): {}",
        one_more_hour(&plain, &kept, hours, &files)
    );
    let report = kept.verify::<f32>(&NoProgress, &CancelToken::new());
    assert!(
        report.unwrap().damage.is_empty(),
        "the mean's periods verify"
    );
}
