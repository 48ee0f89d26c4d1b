//! `gridstore convert`: copy a store to another backend, value for value,
//! upgrading a store of an older format version to the current one.

use super::open_store;
use crate::engine::persistence::zarr::FORMAT_VERSION;
use crate::storage::Backend;
use anyhow::{Context as _, bail};
use std::path::Path;

/// Copies every stored value of `src` into a new store at `dst` kept by
/// `backend`, holding `src`'s writer lock so nothing changes meanwhile, then
/// reads every value back from `dst` and compares it. Returns the number of
/// values and bytes copied.
///
/// # Errors
/// A store with interrupted writes (finish them with `gridstore repair`),
/// an existing `dst`, I/O, or a value that does not read back equal.
pub fn convert(src: &Path, dst: &Path, backend: Backend) -> anyhow::Result<(u64, u64)> {
    let store = open_store(src, true)?;
    if !store.pending_writes()?.is_empty() {
        bail!(
            "{} has interrupted writes; run `gridstore repair` first",
            src.display()
        );
    }
    let from = store.storage();
    let to = crate::storage::create(dst, backend)
        .with_context(|| format!("cannot create store {}", dst.display()))?;
    let copied = (|| -> anyhow::Result<(u64, u64)> {
        if store.format_version() < FORMAT_VERSION {
            return Ok(store.upgrade_into(to.clone())?);
        }
        let keys = from.list("")?;
        let mut bytes = 0;
        for (key, _) in &keys {
            // The writer group names a live writer: not part of the data.
            if key.as_str().starts_with("writer/") {
                continue;
            }
            let value = from
                .get(key)?
                .with_context(|| format!("{key} vanished during the copy"))?;
            bytes += value.len() as u64;
            to.put(key, &value)?;
        }
        to.sync()?;
        for (key, _) in &keys {
            if key.as_str().starts_with("writer/") {
                continue;
            }
            if to.get(key)? != from.get(key)? {
                bail!("{key} does not read back equal from {}", dst.display());
            }
        }
        Ok((keys.len() as u64, bytes))
    })();
    if copied.is_err() {
        // Leave nothing half-made behind.
        drop(to);
        if dst.is_file() {
            std::fs::remove_file(dst).ok();
        } else {
            std::fs::remove_dir_all(dst).ok();
        }
    }
    copied
}
