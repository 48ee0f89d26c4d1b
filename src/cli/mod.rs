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

pub use args::{Cli, Command, with_store_shorthand};
pub use run::run;

use crate::engine::{EngineError, Store};
use anyhow::Context as _;
use std::path::Path;

/// Opens a store folder, read-only or as the single writer.
///
/// # Errors
/// A missing or unreadable folder, a folder that is not a store, or a lock
/// held by another process.
pub fn open_store(path: &Path, writer: bool) -> anyhow::Result<Store> {
    let hdf5 = path.is_file() && crate::storage::hdf5::is_hdf5(path);
    if !path.is_dir() && !hdf5 {
        let what = if path.exists() {
            "not a folder or an HDF5 file"
        } else {
            "no such folder or file"
        };
        anyhow::bail!("cannot open store {}: {what}", path.display());
    }
    let storage = crate::storage::open(path)
        .with_context(|| format!("cannot open store {}", path.display()))?;
    let store = if writer {
        Store::open_writer(storage)
    } else {
        Store::open(storage)
    };
    store.map_err(|e| match e {
        EngineError::Storage(s) => anyhow::anyhow!(s),
        other => anyhow::anyhow!(other),
    })
}

/// Parses an instant given on the command line.
///
/// # Errors
/// A message naming the text.
pub fn parse_time(text: Option<&str>) -> anyhow::Result<Option<i64>> {
    text.map(|t| crate::engine::grid::time::parse_instant(t).map_err(anyhow::Error::msg))
        .transpose()
}
