//! `gridstore convert`: copy a store to another backend or layout, value
//! for value, upgrading a store of an older format version to the current
//! one.

use super::args::LayoutArg;
use super::open_store;
use crate::engine::grid::period::TimeLevel;
use crate::engine::persistence::layout::Layout;
use crate::engine::persistence::zarr::FORMAT_VERSION;
use crate::storage::Backend;
use anyhow::{Context as _, bail};
use std::path::Path;

/// Copies every stored value of `src` into a new store at `dst` kept by
/// `backend`, its chunks in `layout` (default: as `src`'s; `shard` with
/// zarr3, default as `src`'s or 8), holding `src`'s writer lock so nothing
/// changes meanwhile, then reads every value back from `dst` and compares
/// it. With `time_levels`, the new store keeps those periods' maps,
/// built from the instants. Returns the layout, and the number of objects
/// and bytes copied.
///
/// # Errors
/// A store with interrupted writes (finish them with `gridstore repair`),
/// an existing `dst`, a bad layout, I/O, or a value that does not read
/// back equal.
pub fn convert(
    src: &Path,
    dst: &Path,
    backend: Backend,
    layout: Option<LayoutArg>,
    shard: Option<u32>,
    time_levels: Option<Vec<TimeLevel>>,
) -> anyhow::Result<(Layout, u64, u64)> {
    let store = open_store(src, true)?;
    if !store.pending_writes()?.is_empty() {
        bail!(
            "{} has interrupted writes; run `gridstore repair` first",
            src.display()
        );
    }
    let layout = match (layout, shard, store.layout()) {
        (None, None, current) => current,
        (None, Some(shard), Layout::Zarr3 { .. }) => Layout::Zarr3 { shard },
        (None, Some(_), Layout::Zarr2) => {
            bail!(
                "--shard goes with --layout zarr3 ({} is zarr2)",
                src.display()
            )
        }
        (Some(arg), shard, current) => arg
            .layout(shard.or(match current {
                Layout::Zarr3 { shard } if arg == LayoutArg::Zarr3 => Some(shard),
                _ => None,
            }))
            .map_err(anyhow::Error::msg)?,
    };
    layout
        .check(store.structure())
        .map_err(|e| anyhow::anyhow!("cannot convert {} to {layout}: {e}", src.display()))?;
    let from = store.storage();
    let to = crate::storage::create(dst, backend)
        .with_context(|| format!("cannot create store {}", dst.display()))?;
    let copied = (|| -> anyhow::Result<(u64, u64)> {
        let time_levels = time_levels.filter(|levels| levels != store.time_levels());
        if store.format_version() < FORMAT_VERSION
            || layout != store.layout()
            || time_levels.is_some()
        {
            return Ok(store.convert_into(to.clone(), layout, time_levels)?);
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
    let copied = copied.map(|(objects, bytes)| (layout, objects, bytes));
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
