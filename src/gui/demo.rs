//! The demo store the explorer opens when no store is given.

use crate::engine::{CancelToken, NoProgress, Store};
use crate::gdal_io::{IngestOptions, LikeOverrides, ingest, structure_like};
use crate::storage::FolderStorage;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The sample raster the demo is built from.
#[must_use]
pub fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/olinda_dem_utm25s.tif")
}

/// The demo store (in the temporary folder), built on first use. It is
/// built beside its place and renamed into it once complete, so a build
/// that is interrupted, or two at once, never leave a partial demo.
///
/// # Errors
/// The sample cannot be read or the store cannot be written.
pub fn demo_store() -> Result<PathBuf, String> {
    let path = std::env::temp_dir().join("gridstore-demo.gs");
    if path.exists() {
        return Ok(path);
    }
    let building =
        std::env::temp_dir().join(format!("gridstore-demo.gs.{}.tmp", std::process::id()));
    std::fs::remove_dir_all(&building).ok();
    build(&building).inspect_err(|_| {
        std::fs::remove_dir_all(&building).ok();
    })?;
    if std::fs::rename(&building, &path).is_err() {
        // Another process finished first: use its demo.
        std::fs::remove_dir_all(&building).ok();
    }
    if path.exists() {
        Ok(path)
    } else {
        Err(format!("cannot create the demo store {}", path.display()))
    }
}

fn build(path: &Path) -> Result<(), String> {
    let sample = sample();
    let mut structure = structure_like(&sample, &LikeOverrides::default())
        .map_err(|e| e.to_string())?
        .structure;
    structure.chunk = [32, 32];
    structure.domain_levels = 8;
    let storage = FolderStorage::create(path).map_err(|e| e.to_string())?;
    let store = Store::create(Arc::new(storage), structure).map_err(|e| e.to_string())?;
    ingest(
        &store,
        &sample,
        &IngestOptions::default(),
        &NoProgress,
        &CancelToken::new(),
    )
    .map_err(|e| e.to_string())?;
    Ok(())
}
