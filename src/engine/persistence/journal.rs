//! Write transactions and the journal that makes them survive interruption.
//!
//! Every write runs as a [`WriteTxn`]: it records `{id, instant, t, window,
//! phase}` in `journal/.zattrs` (a Zarr group, so Zarr readers see nothing
//! odd) before touching a chunk, *stages* its chunks (invisible to readers)
//! up to level `staged_levels`, then commits them and recomputes the levels
//! above, and finally removes the record. Recovery, on the next
//! [`Store::open_writer`] or write:
//! - `staging`: discard the staged chunks: the store is exactly as before;
//! - `committing`: register the instant, commit the rest (roll forward),
//!   then as `aggregating`;
//! - `aggregating`: recompute the ancestors of the window, then the maps
//!   of the periods holding its instant (see `engine::periods`).
//!
//! One write runs at a time per store: a transaction holds the store's write
//! mutex (other processes are kept out by the storage's writer lock).

use crate::engine::error::EngineError;
use crate::engine::grid::{ChunkLoc, Window};
use crate::engine::job::{CancelToken, JobEvent, NoProgress, ProgressSink};
use crate::engine::pyramid::write::{ChunkCache, Schedule, Staged};
use crate::engine::{Element, Store};
use crate::storage::{StorageError, StoreKey};
use serde::{Deserialize, Serialize};
use std::sync::MutexGuard;

const JOURNAL_GROUP: &str = "journal/.zgroup";
pub(super) const JOURNAL: &str = "journal/.zattrs";

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
    /// The instant written, for stores with a time axis.
    pub instant: Option<i64>,
    /// Time index written.
    pub t: u32,
    /// Base cells written.
    pub window: Window,
    /// How far it got.
    pub phase: Phase,
    /// Levels `0..=staged_levels` are staged and committed together; the
    /// levels above are recomputed after the commit.
    pub staged_levels: u8,
    /// The contents token the store gets when the write goes through,
    /// drawn when it begins, so that what the write keeps beside its
    /// chunks (the data's window) can name the contents it describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_state: Option<String>,
    /// Whether the write keeps the statistics trees (see
    /// `persistence::statistics`): they were kept for the contents it
    /// started from, and none of their nodes was found damaged.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub statistics: bool,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub(super) struct Journal {
    pub(super) pending: Vec<PendingWrite>,
    /// A move of the arrays' origins under way (see `persistence::reshape`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) reshape: Option<super::reshape::Reshape>,
    /// A random token of the store's contents, new with every write that
    /// changes them (kept by a write that rolls back): cached results of
    /// the store are keyed by it. Absent in stores not written since it
    /// was introduced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) state: Option<String>,
    /// The contents token the statistics trees describe: they are kept
    /// while it equals `state`. A writer that does not keep them (an older
    /// gridstore) drops the field, and so retires them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) statistics: Option<String>,
}

impl Journal {
    /// Whether the statistics trees describe the contents now.
    fn statistics_kept(&self) -> bool {
        self.pending.is_empty() && self.state.is_some() && self.statistics == self.state
    }
}

/// The contents token in `storage`'s journal, if any.
///
/// # Errors
/// I/O. (A damaged journal has no token; opening names the damage.)
pub(crate) fn contents_state(
    storage: &dyn crate::storage::Storage,
) -> Result<Option<String>, EngineError> {
    let Some(bytes) = storage.get(&key(JOURNAL)?)? else {
        return Ok(None);
    };
    Ok(serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v["gridstore_journal"]["state"].as_str().map(String::from)))
}

/// A journal's bytes without its statistics token: the journal of a copy
/// whose statistics are not built yet. Bytes that are not a journal are
/// kept as they are (opening the copy names the damage).
pub(super) fn without_statistics(bytes: &[u8]) -> Vec<u8> {
    let Ok(mut doc) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return bytes.to_vec();
    };
    if let Some(journal) = doc
        .get_mut("gridstore_journal")
        .and_then(serde_json::Value::as_object_mut)
    {
        journal.remove("statistics");
    }
    serde_json::to_vec_pretty(&doc).unwrap_or_else(|_| bytes.to_vec())
}

/// A new random contents token: 128 bits from the standard library's
/// per-process random hash keys, the clock and a counter.
fn new_state() -> String {
    use std::hash::{BuildHasher as _, Hasher as _};
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let half = |salt: u64| {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(nanos);
        h.write_u64(n ^ salt);
        h.write_u32(std::process::id());
        h.finish()
    };
    format!("{:016x}{:016x}", half(1), half(2))
}

pub(super) fn key(text: &str) -> Result<StoreKey, EngineError> {
    StoreKey::new(text).map_err(|e| EngineError::Storage(StorageError::from(e)))
}

/// A write in progress. Finish it with [`WriteTxn::commit`] or
/// [`WriteTxn::abort`]; dropped otherwise (a crash, a panic), its record
/// stays and the next writer recovers it.
pub(crate) struct WriteTxn<'a> {
    store: &'a Store,
    record: PendingWrite,
    /// The footprint before the write grew it, if it did.
    grown_from: Option<crate::engine::persistence::footprint::Footprint>,
    _serial: MutexGuard<'a, ()>,
}

impl WriteTxn<'_> {
    /// The time index the write goes to.
    #[must_use]
    pub(crate) fn t(&self) -> u32 {
        self.record.t
    }

    /// The contents token the store gets when this write goes through.
    pub(crate) fn planned_state(&self) -> Option<String> {
        self.record.next_state.clone()
    }

    /// Makes the staged chunks visible, recomputes the levels above them and
    /// ends the record. Returns the number of aggregates recomputed.
    ///
    /// # Errors
    /// I/O or corrupt chunks (a cancel no longer stops a write past its
    /// commit point); the record then stays and the
    /// next writer completes the commit.
    pub(crate) fn commit<T: Element>(
        self,
        staged: Staged<T>,
        fresh: bool,
        progress: &dyn ProgressSink,
    ) -> Result<u64, EngineError> {
        let store = self.store;
        let statistics = match store.stage_statistics(&self.record) {
            Ok(kept) => kept,
            Err(e) => {
                self.abort().ok();
                return Err(e);
            }
        };
        // Past the commit point there is no way back: go there only with
        // room for the rest.
        let ready = store.check_room(&self.record).and_then(|()| {
            store.update_pending(self.record.id, |p| {
                p.phase = Phase::Committing;
                p.statistics = statistics;
            })
        });
        if let Err(e) = ready {
            // Roll back only while the journal still says `staging`: a
            // record that reached `committing` must roll forward, and the
            // next writer does that.
            let staging = store
                .pending_writes()?
                .iter()
                .any(|p| p.id == self.record.id && p.phase == Phase::Staging);
            if staging {
                // The cause is what to report: an abort that fails leaves
                // the record, and the next writer rolls it back.
                self.abort().ok();
            }
            return Err(e);
        }
        let record = PendingWrite {
            statistics,
            ..self.record.clone()
        };
        store.finish_commit::<T>(&record, Some(staged), fresh, progress)
    }

    /// Tells `progress` which chunks this write will replace (every level
    /// above its window), before any of them changes.
    pub(crate) fn announce(&self, progress: &dyn ProgressSink) {
        progress.event(JobEvent::Chunks {
            t: self.record.t,
            window: self.record.window,
            levels: [0, self.store.grid().top_level()],
            done: false,
        });
    }

    /// Drops everything staged and ends the record: the store is as before.
    ///
    /// # Errors
    /// I/O.
    pub(crate) fn abort(self) -> Result<(), EngineError> {
        self.store.discard_staged(&self.record)?;
        self.store.journal_end(self.record.id, false, false)?;
        match self.grown_from {
            Some(before) => self.store.reshape(before),
            None => Ok(()),
        }
    }
}

impl Store {
    /// Starts a write of `window` at `instant`, staging levels
    /// `0..=staged_levels`. Waits for any other write of this store in this
    /// process, and first recovers writes a dead process left unfinished.
    /// With `grow`, the arrays first grow to span the window (an abort
    /// shrinks them back).
    ///
    /// # Errors
    /// Read-only store, a time error, I/O, or a failed recovery.
    pub(crate) fn begin_write(
        &self,
        instant: Option<i64>,
        window: Window,
        staged_levels: u8,
        grow: bool,
    ) -> Result<WriteTxn<'_>, EngineError> {
        self.check_writable()?;
        let serial = self.write_serial();
        crate::with_dtype!(self.structure().dtype, T => self.repair_pending::<T>(&NoProgress))?;
        let t = self.planned_time_index(instant)?;
        let before = self.footprint();
        let grown_from = if grow {
            let grown = before.grown(self.grid(), &window);
            self.reshape(grown)?;
            (grown != before).then_some(before)
        } else {
            None
        };
        let mut journal = self.read_journal()?;
        let id = journal.pending.iter().map(|p| p.id + 1).max().unwrap_or(1);
        let record = PendingWrite {
            id,
            instant,
            t,
            window,
            phase: Phase::Staging,
            staged_levels,
            next_state: Some(new_state()),
            statistics: journal.statistics_kept(),
        };
        self.drop_summary_edits();
        journal.pending.push(record.clone());
        self.write_journal(&journal)?;
        Ok(WriteTxn {
            store: self,
            record,
            grown_from,
            _serial: serial,
        })
    }

    /// Writes that have not finished (interrupted, or still running in the
    /// writer process).
    ///
    /// # Errors
    /// I/O, or a damaged journal.
    pub fn pending_writes(&self) -> Result<Vec<PendingWrite>, EngineError> {
        Ok(self.read_journal()?.pending)
    }

    pub(super) fn read_journal(&self) -> Result<Journal, EngineError> {
        let damaged = |why: &str| EngineError::NotAStore {
            location: self.location(),
            reason: format!("damaged journal/.zattrs ({why})"),
        };
        let Some(bytes) = self.storage().get(&key(JOURNAL)?)? else {
            return Ok(Journal::default());
        };
        let journal: Journal = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| serde_json::from_value(v.get("gridstore_journal")?.clone()).ok())
            .ok_or_else(|| damaged("not a journal"))?;
        let domain = self.grid().full_window(0);
        if journal.pending.iter().any(|p| {
            p.window.intersect(&domain) != Some(p.window)
                || p.staged_levels > self.grid().top_level()
        }) {
            return Err(damaged("a window outside the domain"));
        }
        Ok(journal)
    }

    /// Writes the empty journal of a new store, so that a write that rolls
    /// back leaves every file exactly as it was.
    pub(crate) fn init_journal(&self) -> Result<(), EngineError> {
        let state = new_state();
        self.write_journal(&Journal {
            pending: Vec::new(),
            reshape: None,
            state: Some(state.clone()),
            // No chunks, no nodes: the statistics hold.
            statistics: Some(state),
        })
    }

    /// A token of the store's contents as this `Store` sees them, for
    /// keying results computed through it (see
    /// [`crate::engine::FunctionCache`]): it changes with every write.
    /// `None` while a write is under way, in a store not written since
    /// tokens were introduced, and when another writer changed the store
    /// since this `Store` read its metadata (its view is then out of date:
    /// open the store again). Read it before computing a result and again
    /// before keeping it: keep it only if the two agree.
    ///
    /// # Errors
    /// I/O, or a damaged journal.
    pub fn state_token(&self) -> Result<Option<String>, EngineError> {
        let journal = self.read_journal()?;
        let known = self
            .known_state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        Ok(journal
            .state
            .filter(|s| journal.pending.is_empty() && known.as_ref() == Some(s)))
    }

    /// Records that the contents changed outside a write transaction (the
    /// colour table), under the store's write mutex.
    pub(crate) fn contents_changed(&self) -> Result<(), EngineError> {
        let _serial = self.write_serial();
        let mut journal = self.read_journal()?;
        let next = new_state();
        // The data did not change: its kept window names the new token
        // (first: a crash before the journal's write leaves it naming
        // another, and readers find the window from the chunks).
        if let Some(window) = self.valid_data_window(journal.state.as_deref()) {
            self.keep_data_window(Some(window), &next)?;
        }
        if journal.statistics_kept() {
            journal.statistics = Some(next.clone());
        }
        journal.state = Some(next);
        self.write_journal(&journal)
    }

    /// Whether the statistics trees describe the store's contents now (see
    /// [`Store::level_statistics`]).
    ///
    /// # Errors
    /// I/O, or a damaged journal.
    pub(crate) fn statistics_kept(&self) -> Result<bool, EngineError> {
        Ok(self.statistics_state()?.is_some())
    }

    /// The contents token the statistics trees describe, if they describe
    /// the contents now.
    pub(crate) fn statistics_state(&self) -> Result<Option<String>, EngineError> {
        let journal = self.read_journal()?;
        Ok(journal
            .statistics_kept()
            .then_some(journal.statistics)
            .flatten())
    }

    /// Marks the statistics trees as describing the contents now (`true`,
    /// after a rebuild) or not (`false`, before one).
    pub(crate) fn set_statistics_token(&self, kept: bool) -> Result<(), EngineError> {
        let mut journal = self.read_journal()?;
        journal.statistics = if kept {
            Some(journal.state.get_or_insert_with(new_state).clone())
        } else {
            None
        };
        self.write_journal(&journal)
    }

    /// Stages the statistics of the chunks `record` staged, with them.
    /// Returns whether the write keeps the statistics: not when they were
    /// not kept before it, nor when a node is damaged (its staged nodes
    /// are then dropped, and the statistics are no longer kept).
    fn stage_statistics(&self, record: &PendingWrite) -> Result<bool, EngineError> {
        let kept = self.keep_statistics(record, crate::engine::Visibility::Staged)?;
        if record.statistics && !kept {
            for key in self.statistics_keys(record) {
                self.storage().discard(&key)?;
            }
        }
        Ok(kept)
    }

    /// Puts the summaries the write noted into the trees, `visibility` as
    /// its chunks, if `record` keeps the statistics (else forgets them).
    /// Returns whether it still keeps them: not after finding a node
    /// damaged.
    fn keep_statistics(
        &self,
        record: &PendingWrite,
        visibility: crate::engine::Visibility,
    ) -> Result<bool, EngineError> {
        if !record.statistics {
            self.drop_summary_edits();
            return Ok(false);
        }
        match self.flush_statistics(visibility) {
            Ok(()) => Ok(true),
            Err(EngineError::Corrupt { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The statistics nodes over the chunks a write stages.
    fn statistics_keys(&self, pending: &PendingWrite) -> std::collections::BTreeSet<StoreKey> {
        let trees = self.trees();
        (0..=pending.staged_levels)
            .flat_map(|level| self.chunks_over(level, &pending.window))
            .flat_map(|loc| trees.path(pending.t, loc))
            .collect()
    }

    pub(super) fn write_journal(&self, journal: &Journal) -> Result<(), EngineError> {
        let group = key(JOURNAL_GROUP)?;
        if self.storage().size(&group)?.is_none() {
            self.storage().put(&group, br#"{"zarr_format": 2}"#)?;
        }
        let value = serde_json::json!({ "gridstore_journal": journal });
        self.storage().put(
            &key(JOURNAL)?,
            &serde_json::to_vec_pretty(&value).unwrap_or_default(),
        )?;
        // This store's own writes keep its view current.
        self.known_state
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone_from(&journal.state);
        // Each phase of a write is where other processes may look in.
        self.storage().sync()?;
        Ok(())
    }

    fn journal_phase(&self, id: u64, phase: Phase) -> Result<(), EngineError> {
        self.update_pending(id, |p| p.phase = phase)
    }

    fn update_pending(
        &self,
        id: u64,
        change: impl Fn(&mut PendingWrite),
    ) -> Result<(), EngineError> {
        let mut journal = self.read_journal()?;
        journal
            .pending
            .iter_mut()
            .filter(|p| p.id == id)
            .for_each(change);
        self.write_journal(&journal)
    }

    /// Ends the record `id`; `changed`: the write went through (the
    /// contents get a new token), rather than being rolled back;
    /// `statistics`: it kept the statistics trees up to date.
    fn journal_end(&self, id: u64, changed: bool, statistics: bool) -> Result<(), EngineError> {
        let mut journal = self.read_journal()?;
        let planned = journal
            .pending
            .iter()
            .find(|p| p.id == id)
            .and_then(|p| p.next_state.clone());
        journal.pending.retain(|p| p.id != id);
        if changed {
            let next = planned.unwrap_or_else(new_state);
            if statistics && journal.statistics == journal.state {
                journal.statistics = Some(next.clone());
            }
            journal.state = Some(next);
        }
        self.write_journal(&journal)
    }

    /// The store's contents token as the journal has it now, `None` while
    /// a write is under way (or in a store without one).
    pub(crate) fn settled_state(&self) -> Result<Option<String>, EngineError> {
        let journal = self.read_journal()?;
        Ok(journal.state.filter(|_| journal.pending.is_empty()))
    }

    /// The chunks of `level` that a base window touches.
    pub(crate) fn chunks_over(&self, level: u8, window: &Window) -> Vec<ChunkLoc> {
        self.grid()
            .chunks_in(level, &window.coarsened(level))
            .collect()
    }

    /// Fails with [`StorageError::Full`] when the disk lacks room for what
    /// finishing `pending` writes after its commit point: a commit record
    /// and index entry per staged chunk, every recomputed chunk above the
    /// staged levels at its largest, and the journal, all from above.
    fn check_room(&self, pending: &PendingWrite) -> Result<(), EngineError> {
        let Some(available) = self.storage().available_space()? else {
            return Ok(());
        };
        /// Commit record plus index entry of one staged chunk.
        const PER_STAGED: u64 = 256;
        /// A file system block: the least a small file takes.
        const BLOCK: u64 = 4096;
        let count = |levels: std::ops::RangeInclusive<u8>| -> u64 {
            levels
                .map(|level| self.chunks_over(level, &pending.window).len() as u64)
                .sum()
        };
        let top = self.grid().top_level();
        let staged = count(0..=pending.staged_levels);
        let above = if pending.staged_levels < top {
            count(pending.staged_levels + 1..=top)
        } else {
            0
        };
        // A chunk's codec may grow incompressible cells a little (zstd by
        // up to 1/128, lz4 by 1/255, plus its framing).
        let raw = self.chunk_bytes() as u64;
        let largest = (raw + raw / 64 + 64).next_multiple_of(BLOCK);
        let needed = staged * PER_STAGED + above * largest + 4 * BLOCK;
        if available < needed {
            return Err(StorageError::Full {
                path: self.location().into(),
                needed,
                available,
            }
            .into());
        }
        Ok(())
    }

    fn discard_staged(&self, pending: &PendingWrite) -> Result<(), EngineError> {
        self.drop_shard_edits();
        self.drop_summary_edits();
        for key in self.staged_keys(pending) {
            self.storage().discard(&key)?;
        }
        Ok(())
    }

    /// The objects a write stages: the chunks (or shards) of its window at
    /// the staged levels, and their statistics nodes if it keeps them,
    /// each once.
    fn staged_keys(&self, pending: &PendingWrite) -> std::collections::BTreeSet<StoreKey> {
        let mut keys: std::collections::BTreeSet<StoreKey> = (0..=pending.staged_levels)
            .flat_map(|level| self.chunks_over(level, &pending.window))
            .filter_map(|loc| self.chunk_key(pending.t, loc))
            .collect();
        if pending.statistics {
            keys.extend(self.statistics_keys(pending));
        }
        keys
    }

    /// From `committing` on: register the instant, commit what is staged,
    /// recompute the levels above, end the record.
    ///
    /// `staged` is what this process staged, when it did (not when it
    /// recovers another's write): the levels above start from the blocks
    /// that changed, from their top chunks in memory where kept, and a
    /// write that changed nothing keeps the contents token.
    fn finish_commit<T: Element>(
        &self,
        pending: &PendingWrite,
        staged: Option<Staged<T>>,
        fresh: bool,
        progress: &dyn ProgressSink,
    ) -> Result<u64, EngineError> {
        let instants = self.time_state().length;
        let t = self.time_index(pending.instant, true)?;
        // A new instant changes the contents even when no chunk does.
        let registered = self.time_state().length != instants;
        if t != pending.t {
            return Err(EngineError::Time(format!(
                "the write was planned for time index {} but got {t}",
                pending.t
            )));
        }
        for key in self.staged_keys(pending) {
            self.storage().commit(&key)?;
        }
        let landed = |levels| JobEvent::Chunks {
            t: pending.t,
            window: pending.window,
            levels,
            done: true,
        };
        progress.event(landed([0, pending.staged_levels]));
        self.journal_phase(pending.id, Phase::Aggregating)?;
        let changed = registered || staged.as_ref().is_none_or(|s| s.base_chunks > 0);
        let done = self.aggregate_pending::<T>(pending, staged, progress)?;
        self.update_periods::<T>(pending.instant, pending.window, fresh, progress)?;
        let top = self.grid().top_level();
        if pending.staged_levels < top {
            progress.event(landed([pending.staged_levels + 1, top]));
        }
        // The statistics of the chunks recomputed above the staged levels.
        let statistics = self.keep_statistics(pending, crate::engine::Visibility::Live)?;
        self.journal_end(pending.id, changed, statistics)?;
        Ok(done)
    }

    /// Recomputes the levels above `pending`'s committed levels: above
    /// the blocks `staged` names as changed (their top chunks taken from
    /// it where kept), or without it above every block of the window.
    fn aggregate_pending<T: Element>(
        &self,
        pending: &PendingWrite,
        staged: Option<Staged<T>>,
        progress: &dyn ProgressSink,
    ) -> Result<u64, EngineError> {
        let (from, tops) = match staged {
            Some(staged) => (staged.changed_tops, staged.tops),
            None => {
                // Recovering: only what this recomputes goes into the trees.
                self.drop_summary_edits();
                (
                    self.chunks_over(pending.staged_levels, &pending.window)
                        .into_iter()
                        .collect(),
                    ChunkCache::new(),
                )
            }
        };
        let top = self.grid().top_level();
        // Past the commit point a write is finished, not cancelled.
        self.aggregate_up::<T>(
            pending.t,
            from,
            tops,
            top,
            Schedule::LIVE,
            progress,
            &CancelToken::new(),
        )
        .map(|(done, _)| done)
    }

    /// Rolls every unfinished write back (staging) or forward (committing,
    /// aggregating). A write whose aggregates cannot be recomputed because a
    /// chunk is corrupt keeps its record (verify names the chunk) and does
    /// not block the others. Returns how many were repaired.
    ///
    /// # Errors
    /// Read-only store, or I/O.
    pub fn repair_pending<T: Element>(
        &self,
        progress: &dyn ProgressSink,
    ) -> Result<usize, EngineError> {
        self.check_writable()?;
        self.recover_reshape()?;
        let mut repaired = 0;
        for p in self.pending_writes()? {
            let result = match p.phase {
                Phase::Staging => self
                    .discard_staged(&p)
                    .and_then(|()| self.journal_end(p.id, false, false)),
                Phase::Committing => self.finish_commit::<T>(&p, None, false, progress).map(drop),
                Phase::Aggregating => self
                    .aggregate_pending::<T>(&p, None, progress)
                    .and_then(|_| self.update_periods::<T>(p.instant, p.window, false, progress))
                    .and_then(|()| self.keep_statistics(&p, crate::engine::Visibility::Live))
                    .and_then(|statistics| self.journal_end(p.id, true, statistics)),
            };
            match result {
                Ok(()) => repaired += 1,
                Err(EngineError::Corrupt { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(repaired)
    }
}
