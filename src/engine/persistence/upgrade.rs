//! Copying a store into a new one of the current format version, in either
//! layout (`gridstore convert`): an older format version upgraded, or
//! chunks moved between one object each (`zarr2`) and shards (`zarr3`).

use crate::engine::Store;
use crate::engine::error::EngineError;
use crate::engine::grid::period::TimeLevel;
use crate::engine::grid::{ChunkLoc, Window};
use crate::engine::persistence::layout::Layout;
use crate::engine::persistence::sharded::Place;
use crate::engine::store::MetadataChange;
use crate::storage::{DynStorage, StoreKey};
use rayon::prelude::*;
use std::collections::BTreeMap;

impl Store {
    /// Copies this store into empty `to`, a new store of the current
    /// format version in `layout` (keeping `time_levels`' period maps,
    /// built from the instants, when given): the same structure, instants and chunks
    /// (their encoded bytes unchanged, in the new layout's objects: each
    /// object written once, whole), and every other object (history, notes,
    /// cache, colour table, contents token) as it is. Each object's chunks
    /// are read back and compared as it is written; the statistics are
    /// built anew for the new layout's bytes. Returns the chunks and
    /// other objects copied, and their bytes.
    ///
    /// # Errors
    /// I/O, a damaged chunk, a chunk that does not read back equal, a
    /// layout the structure cannot take, or `to` not empty.
    pub fn convert_into(
        &self,
        to: DynStorage,
        layout: Layout,
        time_levels: Option<Vec<TimeLevel>>,
    ) -> Result<(u64, u64), EngineError> {
        let mut structure = self.structure().clone();
        if let Some(levels) = time_levels {
            structure.time_levels = levels;
        }
        let converted = Store::create_with_layout(to, structure, layout)?;
        // Chunks are copied without their statistics: none are kept until
        // they are built at the end (a copy killed before has none).
        converted.set_statistics_token(false)?;
        let grid = *self.grid();
        let base = self
            .list_chunks(0)?
            .iter()
            .fold(None::<Window>, |acc, (_, loc, _)| {
                let cells = grid.chunk_window(*loc);
                Some(acc.map_or(cells, |a| a.union(&cells)))
            });
        if let Some(cells) = base {
            let grown = converted.footprint().grown(&grid, &cells);
            converted.reshape(grown)?;
        }
        let time = self.time_state();
        converted.set_time_state(time.clone());
        converted.write_metadata(&time, &converted.footprint(), MetadataChange::All)?;
        let (mut objects, mut bytes) = (0u64, 0u64);
        for level in 0..=grid.top_level() {
            // The chunks of each object of the new layout, together.
            let mut by_object: BTreeMap<StoreKey, Vec<(u32, ChunkLoc, Place)>> = BTreeMap::new();
            for (t, loc, _) in self.list_chunks(level)? {
                let place = converted
                    .place_in(&converted.footprint(), t, loc)
                    .ok_or_else(|| EngineError::Misplaced {
                        key: self.chunk_name(t, loc),
                        store: self.location(),
                        reason: "the chunk lies outside the data of level 0".into(),
                    })?;
                by_object
                    .entry(place.key.clone())
                    .or_default()
                    .push((t, loc, place));
            }
            let copied = by_object
                .into_par_iter()
                .map(|(_, chunks)| self.copy_object(&converted, &chunks))
                .collect::<Result<Vec<u64>, EngineError>>()?;
            objects += copied.len() as u64;
            bytes += copied.iter().sum::<u64>();
        }
        // Everything that is not the levels' metadata or chunks, nor the
        // writer's lock, is copied as it is.
        let from = self.storage();
        for (key, _) in from.list("")? {
            let k = key.as_str();
            let level_object = k
                .split('/')
                .next()
                .is_some_and(|first| first.parse::<u8>().is_ok());
            // Metadata is the new layout's own (a consolidated `.zmetadata`
            // of the old arrays would describe them wrongly).
            let metadata = [".zattrs", ".zgroup", ".zmetadata", "zarr.json"].contains(&k);
            // Statistics count the new layout's bytes: rebuilt below.
            let statistics = k.starts_with(super::statistics::PREFIX);
            // Period maps are built anew below, for the new time levels.
            let periods = k.starts_with(crate::engine::periods::PREFIX);
            if level_object || metadata || statistics || periods || k.starts_with("writer/") {
                continue;
            }
            let mut value = from.get(&key)?.ok_or_else(|| vanished(self, k))?;
            if k == super::journal::JOURNAL {
                value = super::journal::without_statistics(&value);
            }
            converted.storage().put(&key, &value)?;
            objects += 1;
            bytes += value.len() as u64;
        }
        // After the journal's copy: the window names the copied contents.
        if self.structure().time.is_none()
            && let Some(state) = converted.settled_state()?
        {
            let data = crate::with_dtype!(self.structure().dtype, T => self.data_window::<T>(0))?;
            converted.keep_data_window(data, &state)?;
        }
        crate::with_dtype!(self.structure().dtype, T => converted.rebuild_statistics::<T>())?;
        crate::with_dtype!(self.structure().dtype, T => converted.rebuild_periods::<T>(&crate::engine::NoProgress))?;
        converted.storage().sync()?;
        Ok((objects, bytes))
    }

    /// Copies the chunks of one object of `converted` (one chunk, or the
    /// chunks of one shard), writing it once, then reads each chunk back
    /// and compares it. Returns the bytes copied.
    fn copy_object(
        &self,
        converted: &Store,
        chunks: &[(u32, ChunkLoc, Place)],
    ) -> Result<u64, EngineError> {
        let mut copied = Vec::with_capacity(chunks.len());
        for (t, loc, place) in chunks {
            let value = self
                .stored_chunk(*t, *loc)?
                .ok_or_else(|| vanished(self, &self.chunk_name(*t, *loc)))?;
            converted.store_encoded(place, Some(&value), true)?;
            copied.push(value);
        }
        let key = chunks.first().map(|(_, _, place)| place.key.clone());
        if let Some(key) = key {
            converted.flush_shards([key.clone()])?;
            converted.storage().commit(&key)?;
        }
        let mut bytes = 0;
        for ((t, loc, _), value) in chunks.iter().zip(&copied) {
            if converted.stored_chunk(*t, *loc)?.as_ref() != Some(value) {
                return Err(EngineError::Misplaced {
                    key: converted.chunk_name(*t, *loc),
                    store: converted.location(),
                    reason: "the copy does not read back equal".into(),
                });
            }
            bytes += value.len() as u64;
        }
        Ok(bytes)
    }
}

fn vanished(store: &Store, key: &str) -> EngineError {
    EngineError::Misplaced {
        key: key.to_string(),
        store: store.location(),
        reason: "it vanished during the copy".into(),
    }
}
