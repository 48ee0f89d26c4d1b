//! Errors of GDAL ingest and export. Each names the file it is about.

use crate::engine::EngineError;
use std::path::PathBuf;

/// An ingest or export failure.
#[derive(Debug, thiserror::Error)]
pub enum IoError {
    /// GDAL cannot open the file as a raster.
    #[error("{path}: not a raster GDAL can read ({reason})")]
    NotARaster {
        /// The file.
        path: PathBuf,
        /// GDAL's message.
        reason: String,
    },
    /// The raster has no geotransform or no CRS.
    #[error("{path}: no georeferencing ({what})")]
    NoGeoreference {
        /// The file.
        path: PathBuf,
        /// What is missing.
        what: &'static str,
    },
    /// The raster does not fit the store (bands, type, extent).
    #[error("{path}: {reason}")]
    Mismatch {
        /// The file.
        path: PathBuf,
        /// Why it does not fit.
        reason: String,
    },
    /// Reading the raster failed part-way (truncated or corrupt file).
    #[error("{path}: read failed ({reason})")]
    Read {
        /// The file.
        path: PathBuf,
        /// GDAL's message.
        reason: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// What the file system said.
        source: std::io::Error,
    },
    /// Writing an output failed.
    #[error("{path}: cannot write ({reason})")]
    Write {
        /// The output.
        path: PathBuf,
        /// Why.
        reason: OutputError,
    },
    /// Source cells with data hold the store's nodata value: ingested, they
    /// would read as nodata. Nothing was written.
    #[error(
        "{path}: {cells} data cells hold {nodata}, the store's nodata value, and would read as nodata; nothing was written (add --allow-nodata-loss to ingest anyway)"
    )]
    NodataCollision {
        /// The source.
        path: PathBuf,
        /// How many cells.
        cells: u64,
        /// The store's nodata value, as written.
        nodata: String,
    },
    /// Cells without data (the source's nodata value, its mask, or no
    /// coverage after a warp) going into a store without nodata, where
    /// they would read as 0.
    #[error(
        "{path}: {cells} cells hold no data (the file's nodata value, its mask, or outside its coverage), and the store has no nodata to mark them: where it holds nothing they would read as 0, which is data; nothing was written (create the store with a nodata value, or add --allow-nodata-loss to ingest anyway: what the store holds there stays)"
    )]
    NoNodataToMark {
        /// The source.
        path: PathBuf,
        /// How many cells.
        cells: u64,
    },
    /// The engine refused or failed. (Not a `#[source]`: the message already
    /// includes it, and a chain would print it twice; nor is the path, when
    /// the engine's message names it already.)
    #[error("{}", naming_once(path, error))]
    Engine {
        /// The file being processed.
        path: PathBuf,
        /// The engine's error.
        error: EngineError,
    },
}

/// Why writing an export's files failed (the export names the output).
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// GDAL failed.
    #[error("{}", super::source::gdal_reason(.0))]
    Gdal(#[from] gdal::errors::GdalError),
    /// GDAL's warp failed, with GDAL's message.
    #[error("{0}")]
    Warp(String),
    /// The file system failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// Reading the store failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The PNG encoder failed.
    #[error(transparent)]
    Image(#[from] image::ImageError),
    /// Cells of another shape than the output's.
    #[error(transparent)]
    Shape(#[from] ndarray::ShapeError),
    /// What was written or asked for does not fit the format: a TIFF laid
    /// out otherwise than the tile copy needs, a classic TIFF past 4 GB, a
    /// cut-off name, a missing folder.
    #[error("{0}")]
    Format(String),
}

/// `path: error`, or just the error when it names `path` already.
fn naming_once(path: &std::path::Path, error: &EngineError) -> String {
    let (path, text) = (path.display().to_string(), error.to_string());
    if text.contains(&path) {
        text
    } else {
        format!("{path}: {text}")
    }
}

impl IoError {
    /// Wraps an engine error with the file it happened on.
    pub fn engine(path: impl Into<PathBuf>, source: EngineError) -> Self {
        Self::Engine {
            path: path.into(),
            error: source,
        }
    }

    /// Whether this is a cancellation rather than a failure.
    #[must_use]
    pub fn is_cancelled(&self) -> bool {
        matches!(
            self,
            Self::Engine {
                error: EngineError::Cancelled,
                ..
            }
        )
    }
}
