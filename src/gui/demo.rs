//! The demo store the explorer opens when no store is given.

use crate::engine::{CancelToken, NoProgress, Store};
use crate::gdal_io::{IngestOptions, ingest, structure_like};
use crate::storage::FolderStorage;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The sample raster the demo is built from.
#[must_use]
pub fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/olinda_dem_utm25s.tif")
}

/// The demo store (in the temporary folder), built on first use.
///
/// # Errors
/// The sample cannot be read or the store cannot be written.
pub fn demo_store() -> Result<PathBuf, String> {
    let path = std::env::temp_dir().join("gridstore-demo.gs");
    if path.join(".zattrs").exists() {
        return Ok(path);
    }
    std::fs::remove_dir_all(&path).ok();
    let sample = sample();
    let mut structure = structure_like(&sample).map_err(|e| e.to_string())?;
    structure.chunk = [32, 32];
    structure.domain_levels = 8;
    let storage = FolderStorage::create(&path).map_err(|e| e.to_string())?;
    let store = Store::create(Arc::new(storage), structure).map_err(|e| e.to_string())?;
    ingest(
        &store,
        &sample,
        &IngestOptions::default(),
        &NoProgress,
        &CancelToken::new(),
    )
    .map_err(|e| e.to_string())?;
    Ok(path)
}
