//! Reshaping: growing the level arrays to a new footprint, moving their
//! origins when the data reaches west or north of them.
//!
//! Growing east or south only rewrites the metadata. Growing west or north
//! moves an array's origin, so every stored chunk of that level gets a new
//! key. The move is journaled and goes in three steps, each of which a
//! killed process's successor finishes (or, in the first, undoes):
//! 1. `copying`: the chunks to move are listed in `journal/moving`, and each
//!    is staged under its new key (invisible; the store is as before);
//! 2. `removing`: the chunks are removed from their old keys;
//! 3. `committing`: the metadata takes the new footprint and the staged
//!    chunks are committed under their new keys.
//!
//! Its cost is one read and one write of every chunk of the moved levels
//! (on object storage, where nothing can be renamed, a copy is all there
//! is). Between steps 2 and 3 a reader in another process sees the moved
//! levels empty: each chunk is atomic, a level is not. A reader never
//! takes one chunk for another: it reads a chunk again when the footprint
//! moved while it read (`Store::with_chunk_key`).

use crate::engine::Store;
use crate::engine::error::EngineError;
use crate::engine::grid::{ChunkLoc, Window};
use crate::engine::persistence::footprint::Footprint;
use crate::engine::persistence::journal::key;
use crate::engine::store::MetadataChange;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Where the list of chunks being moved is kept.
const MOVING: &str = "journal/moving";

/// How far a reshape got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum ReshapePhase {
    /// Chunks are staged under their new keys; nothing is visible yet.
    Copying,
    /// Chunks are being removed from their old keys.
    Removing,
    /// The new footprint is being written and the staged chunks committed.
    Committing,
}

/// A reshape under way, as the journal records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Reshape {
    /// The base extent (chunk units) before.
    from: Option<Window>,
    /// The base extent after.
    to: Option<Window>,
    phase: ReshapePhase,
}

impl Reshape {
    /// The record of a reshape from `from` to `to` at `phase`.
    fn between(from: Footprint, to: Footprint, phase: ReshapePhase) -> Self {
        Self {
            from: from.base(),
            to: to.base(),
            phase,
        }
    }
}

/// The chunks a reshape moves: `[t, level, row, col]` in domain indices.
type Moving = Vec<[u64; 4]>;

fn chunk(entry: &[u64; 4]) -> Option<(u32, ChunkLoc)> {
    Some((
        u32::try_from(entry[0]).ok()?,
        ChunkLoc::new(
            u8::try_from(entry[1]).ok()?,
            u32::try_from(entry[2]).ok()?,
            u32::try_from(entry[3]).ok()?,
        ),
    ))
}

impl Store {
    /// Gives the level arrays the footprint `to`, moving the chunks of every
    /// level whose origin moves. A failure before the chunks leave their
    /// old keys leaves the store as it was.
    ///
    /// # Errors
    /// I/O, or a chunk that vanished meanwhile.
    pub(crate) fn reshape(&self, to: Footprint) -> Result<(), EngineError> {
        let from = self.footprint();
        // A version-1 store spans its whole domain: nothing to grow.
        if from == to || from == Footprint::Domain || to == Footprint::Domain {
            return Ok(());
        }
        let moving = self.chunks_to_move(from, to)?;
        if moving.is_empty() {
            // The view moves only once the metadata says so.
            self.write_metadata(&self.time_state(), &to, MetadataChange::All)?;
            self.set_footprint(to);
            return Ok(());
        }
        self.storage().put(
            &key(MOVING)?,
            &serde_json::to_vec(&moving).unwrap_or_default(),
        )?;
        self.reshape_phase(Some(Reshape::between(from, to, ReshapePhase::Copying)))?;
        let copied = moving.par_iter().try_for_each(|entry| {
            let (t, loc) = chunk(entry).ok_or_else(|| self.damaged_moving())?;
            let (Some(old), Some(new)) = (
                self.chunk_key_in(&from, t, loc),
                self.chunk_key_in(&to, t, loc),
            ) else {
                return Err(self.damaged_moving());
            };
            let bytes = self
                .storage()
                .get(&old)?
                .ok_or_else(|| EngineError::Misplaced {
                    key: old.to_string(),
                    store: self.location(),
                    reason: "the chunk vanished while the arrays grew".into(),
                })?;
            self.storage().stage(&new, Some(&bytes))?;
            Ok(())
        });
        if let Err(e) = copied {
            // The cause is what to report; a failed undo is finished by
            // the next writer.
            self.undo_copying(&to, &moving).ok();
            return Err(e);
        }
        self.finish_reshape(from, to, &moving, ReshapePhase::Removing)
    }

    /// Finishes a reshape from `phase` on (removing or committing).
    fn finish_reshape(
        &self,
        from: Footprint,
        to: Footprint,
        moving: &Moving,
        phase: ReshapePhase,
    ) -> Result<(), EngineError> {
        let record = |phase| Some(Reshape::between(from, to, phase));
        if phase == ReshapePhase::Removing {
            self.reshape_phase(record(ReshapePhase::Removing))?;
            moving.par_iter().try_for_each(|entry| {
                let (t, loc) = chunk(entry).ok_or_else(|| self.damaged_moving())?;
                if let Some(old) = self.chunk_key_in(&from, t, loc) {
                    self.storage().delete(&old)?;
                }
                Ok::<_, EngineError>(())
            })?;
        }
        self.reshape_phase(record(ReshapePhase::Committing))?;
        self.write_metadata(&self.time_state(), &to, MetadataChange::All)?;
        self.set_footprint(to);
        moving.par_iter().try_for_each(|entry| {
            let (t, loc) = chunk(entry).ok_or_else(|| self.damaged_moving())?;
            if let Some(new) = self.chunk_key_in(&to, t, loc) {
                self.storage().commit(&new)?;
            }
            Ok::<_, EngineError>(())
        })?;
        self.reshape_phase(None)?;
        self.storage().delete(&key(MOVING)?)?;
        Ok(())
    }

    /// Every stored object (chunk, or shard by its first chunk) of the
    /// levels whose origin differs between `from` and `to`. Origins move in
    /// whole shards, so a shard moves as it is.
    fn chunks_to_move(&self, from: Footprint, to: Footprint) -> Result<Moving, EngineError> {
        let mut moving = Vec::new();
        for level in from.moved_levels(&to, self.grid()) {
            for (t, loc) in self.list_objects(level)? {
                moving.push([
                    u64::from(t),
                    u64::from(loc.level),
                    u64::from(loc.row),
                    u64::from(loc.col),
                ]);
            }
        }
        Ok(moving)
    }

    /// Drops the staged copies of a reshape still copying: the store is as
    /// before it.
    fn undo_copying(&self, to: &Footprint, moving: &Moving) -> Result<(), EngineError> {
        for entry in moving {
            if let Some((t, loc)) = chunk(entry)
                && let Some(new) = self.chunk_key_in(to, t, loc)
            {
                self.storage().discard(&new)?;
            }
        }
        self.reshape_phase(None)?;
        self.storage().delete(&key(MOVING)?)?;
        Ok(())
    }

    /// Finishes (or, while it was copying, undoes) a reshape that a killed
    /// process left.
    pub(crate) fn recover_reshape(&self) -> Result<(), EngineError> {
        let Some(reshape) = self.read_journal()?.reshape else {
            return Ok(());
        };
        let moving: Moving = match self.storage().get(&key(MOVING)?)? {
            Some(bytes) => serde_json::from_slice(&bytes).map_err(|_| self.damaged_moving())?,
            None if reshape.phase == ReshapePhase::Copying => Vec::new(),
            None => return Err(self.damaged_moving()),
        };
        let Footprint::Data { shard, .. } = self.footprint() else {
            return Ok(());
        };
        let footprint = |base| Footprint::Data { shard, base };
        let (from, to) = (footprint(reshape.from), footprint(reshape.to));
        match reshape.phase {
            ReshapePhase::Copying => self.undo_copying(&to, &moving),
            phase => self.finish_reshape(from, to, &moving, phase),
        }
    }

    /// Whether a move of the arrays' origins was interrupted (the next
    /// writer, or `gridstore repair`, finishes or undoes it).
    ///
    /// # Errors
    /// I/O, or a damaged journal.
    pub fn interrupted_move(&self) -> Result<bool, EngineError> {
        Ok(self.read_journal()?.reshape.is_some())
    }

    fn reshape_phase(&self, reshape: Option<Reshape>) -> Result<(), EngineError> {
        let mut journal = self.read_journal()?;
        journal.reshape = reshape;
        self.write_journal(&journal)
    }

    fn damaged_moving(&self) -> EngineError {
        EngineError::NotAStore {
            location: self.location(),
            reason: format!("damaged {MOVING} (the chunks of an interrupted move of the arrays)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::grid::structure::tests::sample;
    use crate::engine::{CancelToken, NoProgress};
    use crate::storage::{DynStorage, MemoryStorage};
    use ndarray::Array3;
    use std::sync::Arc;

    /// Every cell of every level.
    fn cells(store: &Store) -> Vec<Array3<f32>> {
        let grid = *store.grid();
        (0..=grid.top_level())
            .map(|level| {
                store
                    .read_window::<f32>(0, level, &grid.full_window(level))
                    .unwrap()
            })
            .collect()
    }

    /// A store with data in the middle of its domain, and the footprint a
    /// write to its west and north would grow it to.
    fn store(storage: &DynStorage) -> (Store, Footprint) {
        let store = Store::create(storage.clone(), sample()).unwrap();
        let w = Window {
            row: 30,
            col: 30,
            rows: 9,
            cols: 7,
        };
        let data = Array3::from_shape_fn((1, 9, 7), |(_, r, c)| (r * 7 + c) as f32);
        store.write(None, w, data.view()).unwrap();
        let west = Window {
            row: 5,
            col: 2,
            rows: 1,
            cols: 1,
        };
        let to = store.footprint().grown(store.grid(), &west);
        (store, to)
    }

    /// Runs a move of the arrays' origins up to `phase`, doing `done` of its
    /// chunks there, and stops as a killed process would.
    fn killed_in(store: &Store, to: Footprint, phase: ReshapePhase, done: usize) -> usize {
        let from = store.footprint();
        let moving = store.chunks_to_move(from, to).unwrap();
        let record = |phase| Reshape::between(from, to, phase);
        let storage = store.storage();
        storage
            .put(&key(MOVING).unwrap(), &serde_json::to_vec(&moving).unwrap())
            .unwrap();
        store
            .reshape_phase(Some(record(ReshapePhase::Copying)))
            .unwrap();
        let copies = if phase == ReshapePhase::Copying {
            done
        } else {
            moving.len()
        };
        for entry in &moving[..copies] {
            let (t, loc) = chunk(entry).unwrap();
            let bytes = storage
                .get(&store.chunk_key_in(&from, t, loc).unwrap())
                .unwrap();
            storage
                .stage(&store.chunk_key_in(&to, t, loc).unwrap(), bytes.as_deref())
                .unwrap();
        }
        if phase == ReshapePhase::Copying {
            return moving.len();
        }
        store
            .reshape_phase(Some(record(ReshapePhase::Removing)))
            .unwrap();
        let removed = if phase == ReshapePhase::Removing {
            done
        } else {
            moving.len()
        };
        for entry in &moving[..removed] {
            let (t, loc) = chunk(entry).unwrap();
            storage
                .delete(&store.chunk_key_in(&from, t, loc).unwrap())
                .unwrap();
        }
        if phase == ReshapePhase::Removing {
            return moving.len();
        }
        store
            .reshape_phase(Some(record(ReshapePhase::Committing)))
            .unwrap();
        store
            .write_metadata(&store.time_state(), &to, MetadataChange::All)
            .unwrap();
        for entry in &moving[..done] {
            let (t, loc) = chunk(entry).unwrap();
            storage
                .commit(&store.chunk_key_in(&to, t, loc).unwrap())
                .unwrap();
        }
        moving.len()
    }

    /// Wherever a move is killed, the next writer undoes it (while it
    /// copies) or finishes it (after), and every level reads as before.
    #[test]
    fn a_move_killed_in_any_phase_is_undone_or_finished() {
        for phase in [
            ReshapePhase::Copying,
            ReshapePhase::Removing,
            ReshapePhase::Committing,
        ] {
            for done in [0, 1, 5] {
                let storage: DynStorage = Arc::new(MemoryStorage::new());
                let (store, to) = store(&storage);
                let from = store.footprint();
                let before = cells(&store);
                let moving = killed_in(&store, to, phase, done);
                assert!(moving > 5, "the move has chunks in every level it moves");
                drop(store);
                // Before anyone finishes it, verify says a move is under
                // way and finds no damage in what is there.
                let reader = Store::open(storage.clone()).unwrap();
                let report = reader
                    .verify::<f32>(&NoProgress, &CancelToken::new())
                    .unwrap();
                assert!(report.moving, "{phase:?} {done}");
                assert!(
                    report.damage.is_empty(),
                    "{phase:?} {done}: {:?}",
                    report.damage
                );
                drop(reader);
                let store = Store::open_writer(storage.clone()).unwrap();
                let expected = if phase == ReshapePhase::Copying {
                    from
                } else {
                    to
                };
                assert_eq!(store.footprint(), expected, "{phase:?} {done}");
                assert_eq!(cells(&store), before, "{phase:?} {done}");
                assert!(store.read_journal().unwrap().reshape.is_none());
                assert!(storage.get(&key(MOVING).unwrap()).unwrap().is_none());
                let report = store
                    .verify::<f32>(&NoProgress, &CancelToken::new())
                    .unwrap();
                assert!(
                    report.damage.is_empty(),
                    "{phase:?} {done}: {:?}",
                    report.damage
                );
                // Reopened read-only, the store says the same.
                drop(store);
                let reader = Store::open(storage).unwrap();
                assert_eq!(reader.footprint(), expected);
                assert_eq!(cells(&reader), before);
            }
        }
    }
}
