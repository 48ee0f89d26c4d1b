//! Upgrading a store of an older format version into a new store of the
//! current one (`gridstore convert`).

use crate::engine::Store;
use crate::engine::error::EngineError;
use crate::engine::grid::Window;
use crate::engine::store::MetadataChange;
use crate::storage::DynStorage;

impl Store {
    /// Copies this store into empty `to` in the current format: the same
    /// structure, instants and chunks (their bytes unchanged, under the
    /// keys of the new layout), and every other object (history, notes,
    /// cache, colour table, contents token) as it is. Then reads every
    /// chunk back and compares its bytes. Returns the objects and bytes
    /// copied.
    ///
    /// # Errors
    /// I/O, a chunk that does not read back equal, or `to` not empty.
    pub fn upgrade_into(&self, to: DynStorage) -> Result<(u64, u64), EngineError> {
        let upgraded = Store::create(to, self.structure().clone())?;
        let grid = *self.grid();
        let [w, h] = grid.chunk_shape();
        let base = self
            .list_chunks(0)?
            .iter()
            .fold(None::<Window>, |acc, (_, loc, _)| {
                let cells = grid.chunk_window(*loc);
                debug_assert_eq!((cells.rows, cells.cols), (u64::from(h), u64::from(w)));
                Some(acc.map_or(cells, |a| a.union(&cells)))
            });
        if let Some(cells) = base {
            let grown = upgraded.footprint().grown(&grid, &cells);
            upgraded.reshape(grown)?;
        }
        let time = self.time_state();
        upgraded.set_time_state(time.clone());
        upgraded.write_metadata(&time, &upgraded.footprint(), MetadataChange::All)?;
        let (mut objects, mut bytes) = (0u64, 0u64);
        let mut chunks = Vec::new();
        for level in 0..=grid.top_level() {
            for (t, loc, _) in self.list_chunks(level)? {
                let value = self
                    .stored_chunk(t, loc)?
                    .ok_or_else(|| vanished(self, &self.chunk_name(t, loc)))?;
                let key = upgraded
                    .chunk_key(t, loc)
                    .ok_or_else(|| EngineError::Misplaced {
                        key: self.chunk_name(t, loc),
                        store: self.location(),
                        reason: "the chunk lies outside the data of level 0".into(),
                    })?;
                upgraded.storage().put(&key, &value)?;
                objects += 1;
                bytes += value.len() as u64;
                chunks.push((t, loc, value));
            }
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
            let metadata = [".zattrs", ".zgroup", ".zmetadata"].contains(&k);
            if level_object || metadata || k.starts_with("writer/") {
                continue;
            }
            let value = from.get(&key)?.ok_or_else(|| vanished(self, k))?;
            upgraded.storage().put(&key, &value)?;
            objects += 1;
            bytes += value.len() as u64;
        }
        upgraded.storage().sync()?;
        for (t, loc, value) in &chunks {
            if upgraded.stored_chunk(*t, *loc)?.as_ref() != Some(value) {
                return Err(EngineError::Misplaced {
                    key: upgraded.chunk_name(*t, *loc),
                    store: upgraded.location(),
                    reason: "the copy does not read back equal".into(),
                });
            }
        }
        Ok((objects, bytes))
    }
}

fn vanished(store: &Store, key: &str) -> EngineError {
    EngineError::Misplaced {
        key: key.to_string(),
        store: store.location(),
        reason: "it vanished during the copy".into(),
    }
}
