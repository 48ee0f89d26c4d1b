//! The write journal: which base windows a write is changing, and how far
//! it got, so that an interrupted write (a killed process, a cancelled job,
//! a failed disk) is rolled back or completed, never half-applied.
//!
//! A write records `{id, t, window, phase}` in `journal/.zattrs` (a Zarr
//! group, so Zarr readers see nothing odd) before it touches a chunk, and
//! removes the record when every ancestor is recomputed. An ingest *stages*
//! its chunks (invisible to readers) up to level `staged_levels`, then
//! commits them, then recomputes the levels above. Recovery, on the next
//! [`Store::open_writer`]:
//! - `staging`: discard the staged chunks: the store is exactly as before;
//! - `committing`: commit the rest (roll forward), then as `aggregating`;
//! - `aggregating`: recompute the ancestors of the window.

use super::error::EngineError;
use super::grid::{ChunkLoc, Window};
use super::job::{CancelToken, ProgressSink};
use super::write::{ChunkCache, Schedule};
use super::{Element, Store};
use crate::storage::{StorageError, StoreKey};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

const JOURNAL_GROUP: &str = "journal/.zgroup";
const JOURNAL: &str = "journal/.zattrs";

/// How far an unfinished write got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Chunks are being staged; nothing is visible yet.
    Staging,
    /// Staged chunks are being made visible.
    Committing,
    /// The base is written; ancestors are being recomputed.
    Aggregating,
}

/// A write that started and has not finished.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingWrite {
    /// Identifies the record.
    pub id: u64,
    /// Time index written.
    pub t: u32,
    /// Base cells written.
    pub window: Window,
    /// How far it got.
    pub phase: Phase,
    /// Levels `0..=staged_levels` are staged and committed together; the
    /// levels above are recomputed after the commit.
    pub staged_levels: u8,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Journal {
    pending: Vec<PendingWrite>,
}

fn key(text: &str) -> Result<StoreKey, EngineError> {
    StoreKey::new(text).map_err(|e| EngineError::Storage(StorageError::from(e)))
}

impl Store {
    /// Writes that have not finished (interrupted, or still running in the
    /// writer process).
    ///
    /// # Errors
    /// I/O, or a journal that is not valid JSON.
    pub fn pending_writes(&self) -> Result<Vec<PendingWrite>, EngineError> {
        Ok(self.read_journal()?.pending)
    }

    fn read_journal(&self) -> Result<Journal, EngineError> {
        let Some(bytes) = self.storage().get(&key(JOURNAL)?)? else {
            return Ok(Journal::default());
        };
        serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| serde_json::from_value(v.get("gridstore_journal")?.clone()).ok())
            .ok_or_else(|| EngineError::NotAStore {
                location: self.location(),
                reason: "damaged journal/.zattrs".into(),
            })
    }

    /// Writes the empty journal of a new store, so that a write that fails
    /// and rolls back leaves every file exactly as it was.
    pub(crate) fn init_journal(&self) -> Result<(), EngineError> {
        self.write_journal(&Journal::default())
    }

    fn write_journal(&self, journal: &Journal) -> Result<(), EngineError> {
        let group = key(JOURNAL_GROUP)?;
        if self.storage().size(&group)?.is_none() {
            self.storage().put(&group, br#"{"zarr_format": 2}"#)?;
        }
        let value = serde_json::json!({ "gridstore_journal": journal });
        self.storage().put(
            &key(JOURNAL)?,
            &serde_json::to_vec_pretty(&value).unwrap_or_default(),
        )?;
        Ok(())
    }

    /// Records that a write of `window` at time index `t` begins in `phase`.
    ///
    /// # Errors
    /// Read-only store or I/O.
    pub fn journal_begin(
        &self,
        t: u32,
        window: Window,
        phase: Phase,
        staged_levels: u8,
    ) -> Result<u64, EngineError> {
        self.check_writable()?;
        let mut journal = self.read_journal()?;
        let id = journal.pending.iter().map(|p| p.id + 1).max().unwrap_or(1);
        journal.pending.push(PendingWrite {
            id,
            t,
            window,
            phase,
            staged_levels,
        });
        self.write_journal(&journal)?;
        Ok(id)
    }

    /// Moves write `id` to `phase`.
    ///
    /// # Errors
    /// Read-only store or I/O.
    pub fn journal_phase(&self, id: u64, phase: Phase) -> Result<(), EngineError> {
        self.check_writable()?;
        let mut journal = self.read_journal()?;
        journal
            .pending
            .iter_mut()
            .filter(|p| p.id == id)
            .for_each(|p| p.phase = phase);
        self.write_journal(&journal)
    }

    /// Records that write `id` finished, pyramid included.
    ///
    /// # Errors
    /// Read-only store or I/O.
    pub fn journal_end(&self, id: u64) -> Result<(), EngineError> {
        self.check_writable()?;
        let mut journal = self.read_journal()?;
        journal.pending.retain(|p| p.id != id);
        self.write_journal(&journal)
    }

    /// The chunks of `level` that a base window touches.
    fn chunks_over(&self, level: u8, window: &Window) -> Vec<ChunkLoc> {
        let f = 1u64 << level;
        let scaled = Window {
            row: window.row / f,
            col: window.col / f,
            rows: (window.row + window.rows).div_ceil(f) - window.row / f,
            cols: (window.col + window.cols).div_ceil(f) - window.col / f,
        };
        self.grid().chunks_in(level, &scaled).collect()
    }

    /// Drops every chunk staged for `pending` (levels `0..=staged_levels`).
    ///
    /// # Errors
    /// I/O.
    pub fn discard_staged(&self, pending: &PendingWrite) -> Result<(), EngineError> {
        for level in 0..=pending.staged_levels {
            for loc in self.chunks_over(level, &pending.window) {
                self.storage().discard(&self.chunk_key(pending.t, loc))?;
            }
        }
        Ok(())
    }

    /// Makes every chunk staged for `pending` visible.
    ///
    /// # Errors
    /// I/O.
    pub fn commit_staged(&self, pending: &PendingWrite) -> Result<(), EngineError> {
        for level in 0..=pending.staged_levels {
            for loc in self.chunks_over(level, &pending.window) {
                self.storage().commit(&self.chunk_key(pending.t, loc))?;
            }
        }
        Ok(())
    }

    /// Recomputes the levels above `pending`'s committed levels.
    ///
    /// # Errors
    /// Corrupt chunks, I/O or cancellation.
    pub fn aggregate_pending<T: Element>(
        &self,
        pending: &PendingWrite,
        progress: &dyn ProgressSink,
        cancel: &CancelToken,
    ) -> Result<u64, EngineError> {
        let from: BTreeSet<ChunkLoc> = self
            .chunks_over(pending.staged_levels, &pending.window)
            .into_iter()
            .collect();
        let top = self.grid().top_level();
        self.aggregate_up::<T>(
            pending.t,
            from,
            ChunkCache::new(),
            top,
            Schedule::LIVE,
            progress,
            cancel,
        )
    }

    /// Rolls every unfinished write back (staging) or forward (committing,
    /// aggregating) and clears its record. Returns how many were repaired.
    ///
    /// # Errors
    /// Read-only store, corrupt chunks, I/O or cancellation.
    pub fn repair_pending<T: Element>(
        &self,
        progress: &dyn ProgressSink,
        cancel: &CancelToken,
    ) -> Result<usize, EngineError> {
        let pending = self.pending_writes()?;
        for p in &pending {
            match p.phase {
                Phase::Staging => self.discard_staged(p)?,
                Phase::Committing => {
                    self.commit_staged(p)?;
                    self.aggregate_pending::<T>(p, progress, cancel)?;
                }
                Phase::Aggregating => {
                    self.aggregate_pending::<T>(p, progress, cancel)?;
                }
            }
            self.journal_end(p.id)?;
        }
        Ok(pending.len())
    }
}
