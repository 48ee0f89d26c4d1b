//! gridstore: chunked, multi-resolution gridded datastores with a
//! self-maintaining aggregation pyramid.
//!
//! - [`engine`]: structure, grid math, aggregation, reads and writes;
//! - [`storage`]: byte storage backends behind one trait;
//! - [`gdal_io`]: GDAL ingest and export (the only module that uses GDAL);
//! - [`cli`]: the `gridstore` command line.
//!
//! ```
//! use gridstore::engine::{Aggregator, Codec, Crs, DType, Resampling, Store, Structure, Window};
//! use gridstore::storage::MemoryStorage;
//! use std::sync::Arc;
//!
//! let structure = Structure {
//!     crs: Crs { wkt: "LOCAL_CS[\"example\"]".into(), epsg: None, name: "example".into() },
//!     anchor: [0.0, 0.0],
//!     cell_size: [1.0, 1.0],
//!     chunk: [4, 4],
//!     domain_levels: 3,
//!     dtype: DType::F32,
//!     nodata: Some(-9999.0),
//!     codec: Codec::default(),
//!     aggregate: Aggregator::Mean,
//!     resampling: Resampling::Average,
//!     bands: None,
//!     time: None,
//!     time_levels: Vec::new(),
//! };
//! let store = Store::create(Arc::new(MemoryStorage::new()), structure)?;
//! // The anchor sits at the domain centre: base cell (16, 16).
//! let window = Window { row: 16, col: 16, rows: 2, cols: 2 };
//! let data = ndarray::Array3::from_shape_vec((1, 2, 2), vec![1.0f32, 2.0, 3.0, 6.0])?;
//! store.write(None, window, data.view())?;
//! // One level up, the 2x2 block is one cell holding its mean.
//! let up = store.read_window::<f32>(0, 1, &Window { row: 8, col: 8, rows: 1, cols: 1 })?;
//! assert_eq!(up[[0, 0, 0]], 3.0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod cli;
pub mod engine;
pub mod foreign;
pub mod format;
pub mod gdal_io;
pub mod gui;
pub mod quicklook;
pub mod relief;
pub mod render;
pub mod storage;
