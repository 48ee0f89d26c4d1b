//! The `gridstore` command line: parses arguments, runs the engine, prints.
//!
//! Exit codes: 0 on success, 1 when `verify` finds damage, 2 for errors.

mod args;
mod cache;
mod convert;
mod create;
mod history;
mod info;
mod progress;
mod run;
mod series;

pub use args::{Cli, Command, with_store_shorthand};
pub use run::run;

use crate::engine::Store;
use std::path::Path;

/// Opens a store, read-only or as the single writer; a raster gridstore
/// did not write opens read-only (see [`crate::foreign::open_store_or_raster`]).
///
/// # Errors
/// A missing or unreadable folder, a folder that is not a store, or a lock
/// held by another process.
pub fn open_store(path: &Path, writer: bool) -> anyhow::Result<Store> {
    crate::foreign::open_store_or_raster(path, writer).map_err(anyhow::Error::msg)
}

/// Parses an instant given on the command line.
///
/// # Errors
/// A message naming the text.
pub fn parse_time(text: Option<&str>) -> anyhow::Result<Option<i64>> {
    text.map(|t| crate::engine::grid::time::parse_instant(t).map_err(anyhow::Error::msg))
        .transpose()
}
