//! A small UTM store whose every base cell holds its own value, for the
//! tests of how other tools see the layouts.

use gridstore::engine::persistence::layout::Layout;
use gridstore::engine::{Aggregator, Codec, Crs, DType, Resampling, Store, Structure, Window};
use gridstore::storage::FolderStorage;
use std::path::Path;
use std::sync::Arc;

/// Base cells 10 m wide, chunks of 16, 64 chunks per side at level 0.
pub fn structure() -> Structure {
    let srs = gdal::spatial_ref::SpatialRef::from_epsg(32631).unwrap();
    Structure {
        crs: Crs {
            wkt: srs.to_wkt().unwrap(),
            epsg: Some(32631),
            name: "WGS 84 / UTM zone 31N".into(),
        },
        anchor: [500_000.0, 5_000_000.0],
        cell_size: [10.0, 10.0],
        chunk: [16, 16],
        domain_levels: 6,
        dtype: DType::F32,
        nodata: Some(-9999.0),
        codec: Codec::default(),
        aggregate: Aggregator::Mean,
        resampling: Resampling::Average,
        bands: None,
        time: None,
        time_levels: Vec::new(),
    }
}

/// A value no two base cells share.
#[allow(clippy::cast_precision_loss)]
pub fn value(row: u64, col: u64) -> f32 {
    (row * 1024 + col) as f32 / 4.0
}

/// Writes each base cell of `window` its [`value`].
pub fn write(store: &Store, window: Window) {
    let data = ndarray::Array3::from_shape_fn(
        (1, window.rows as usize, window.cols as usize),
        |(_, r, c)| value(window.row + r as u64, window.col + c as u64),
    );
    store.write(None, window, data.view()).unwrap();
}

/// A new folder store of [`structure`] at `path` in `layout`.
pub fn create(path: &Path, layout: Layout) -> Store {
    Store::create_with_layout(
        Arc::new(FolderStorage::create(path).unwrap()),
        structure(),
        layout,
    )
    .unwrap()
}
