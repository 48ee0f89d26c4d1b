//! The writer of an hdf5 store: records buffered and appended to `/log`,
//! index changes applied to the active table after the log's head is
//! durable, the table rebuilt larger when it fills, and a killed writer's
//! records replayed.

use super::super::StorageError;
use super::file::{Handles, h5_error};
use super::log::{Changes, Read, read_record, replay};
use super::state::State;
use super::table::{Side, Table, hash};
use crate::storage::record::{self, Kind};
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

/// Buffered changes beyond which they are written out.
const FLUSH_CHANGES: usize = 8192;
/// Buffered record bytes beyond which they are written out.
const FLUSH_BYTES: usize = 16 << 20;
/// Age of buffered changes beyond which they are written out.
const FLUSH_AGE: Duration = Duration::from_secs(2);

/// The one writer of this store in this process.
pub struct Writer {
    pub h: Handles,
    /// Held open: the OS lock lives as long as the handle.
    pub _lock: fs::File,
    pub state: State,
    /// Bytes written to `/log`.
    pub log_len: u64,
    /// Records appended since, at offsets from `log_len` on.
    pub buffer: Vec<u8>,
    pub next_sequence: u64,
    pub changes: Changes,
    pub last_flush: Instant,
}

impl Writer {
    pub fn read(&self, offset: u64, with_value: bool, path: &Path) -> Result<Read, StorageError> {
        read_record(
            &self.h,
            &self.buffer,
            self.log_len,
            offset,
            with_value,
            path,
        )
    }

    /// Where the index (then the buffer) says `key`'s `side` entry is.
    pub fn locate(&self, side: Side, key: &str, path: &Path) -> Result<Option<u64>, StorageError> {
        let change = match side {
            Side::Live => self.changes.live.get(key),
            Side::Staged => self.changes.staged.get(key),
        };
        if let Some(change) = change {
            return Ok(*change);
        }
        let table = Table {
            dataset: &self.h.tables[usize::from(self.state.active == 1)],
            capacity: self.state.capacity,
            path,
        };
        let key_of = |offset| self.read(offset, false, path).map(|r| r.key);
        Ok(table.find(hash(side, key), key, &key_of)?.map(|(_, o)| o))
    }

    pub fn append(&mut self, kind: Kind, key: &str, value: &[u8]) -> u64 {
        let offset = self.log_len + self.buffer.len() as u64;
        let crc = record::checksum(key, value);
        self.buffer
            .extend_from_slice(&record::encode(kind, self.next_sequence, key, value, crc));
        self.next_sequence += 1;
        offset
    }

    pub fn pending(&self) -> usize {
        self.changes.live.len() + self.changes.staged.len()
    }

    /// Whether enough is buffered, or for long enough, to write it out.
    pub fn due(&self) -> bool {
        self.pending() >= FLUSH_CHANGES
            || self.buffer.len() >= FLUSH_BYTES
            || self.last_flush.elapsed() > FLUSH_AGE
    }

    /// Writes the buffered records, then the head, then the index changes,
    /// then that they are applied.
    pub fn flush(&mut self, path: &Path) -> Result<(), StorageError> {
        let err = |e: hdf5::Error| h5_error(path, &e);
        if !self.buffer.is_empty() {
            let start = usize::try_from(self.log_len).unwrap_or(usize::MAX);
            let end = start + self.buffer.len();
            // Never shrunk (a killed writer's tail past the head is written
            // over, not cut off).
            if end > self.h.log.size() {
                self.h.log.resize(end).map_err(err)?;
            }
            self.h
                .log
                .write_slice(&self.buffer, start..end)
                .map_err(err)?;
            self.h.log.flush().map_err(err)?;
            self.log_len = end as u64;
            self.buffer.clear();
        }
        if self.state.head != self.log_len {
            self.set_state(
                State {
                    head: self.log_len,
                    last_sequence: self.next_sequence - 1,
                    ..self.state
                },
                path,
            )?;
        }
        if !self.changes.live.is_empty() || !self.changes.staged.is_empty() {
            self.grow_for(self.pending() as u64, path)?;
            let changes = std::mem::take(&mut self.changes);
            let applied = self.apply(&changes, path);
            if let Err(e) = applied {
                // Still to apply: the next flush (or writer) tries again.
                self.changes = changes;
                return Err(e);
            }
        }
        if self.state.applied != self.state.head {
            self.set_state(
                State {
                    applied: self.state.head,
                    ..self.state
                },
                path,
            )?;
        }
        self.last_flush = Instant::now();
        Ok(())
    }

    /// Writes `next` to `/state`, and takes it as the state once written.
    fn set_state(&mut self, next: State, path: &Path) -> Result<(), StorageError> {
        next.write(&self.h, path)?;
        self.state = next;
        Ok(())
    }

    fn apply(&mut self, changes: &Changes, path: &Path) -> Result<(), StorageError> {
        let active = usize::from(self.state.active == 1);
        let table = Table {
            dataset: &self.h.tables[active],
            capacity: self.state.capacity,
            path,
        };
        let key_of =
            |offset| read_record(&self.h, &[], self.log_len, offset, false, path).map(|r| r.key);
        let mut added = 0;
        for (side, map) in [(Side::Live, &changes.live), (Side::Staged, &changes.staged)] {
            for (key, offset) in map {
                added += u64::from(table.set(hash(side, key), key, *offset, &key_of)?);
            }
        }
        self.h.tables[active]
            .flush()
            .map_err(|e| h5_error(path, &e))?;
        // Counted in memory; written with the next /state.
        self.state.used += added;
        Ok(())
    }

    /// Rebuilds the index into the other table when `more` entries would
    /// fill more than half of the active one.
    fn grow_for(&mut self, more: u64, path: &Path) -> Result<(), StorageError> {
        if (self.state.used + more) * 2 <= self.state.capacity {
            return Ok(());
        }
        let active = usize::from(self.state.active == 1);
        let entries = Table {
            dataset: &self.h.tables[active],
            capacity: self.state.capacity,
            path,
        }
        .entries()?;
        // Never smaller than now: the other table then only ever grows
        // (a rebuild for tombstones keeps the size).
        let capacity = ((entries.len() as u64 + more) * 4)
            .next_power_of_two()
            .max(self.state.capacity);
        let other = 1 - active;
        Table::reset(&self.h.tables[other], capacity, path)?;
        let fresh = Table {
            dataset: &self.h.tables[other],
            capacity,
            path,
        };
        for (h, offset) in &entries {
            fresh.insert_new(*h, *offset)?;
        }
        self.h.tables[other]
            .flush()
            .map_err(|e| h5_error(path, &e))?;
        self.set_state(
            State {
                active: other as u64,
                capacity,
                used: entries.len() as u64,
                ..self.state
            },
            path,
        )
    }

    /// Applies a record found past "applied" to the buffered changes, as
    /// its writer did.
    pub fn replay(&mut self, offset: u64, record: &Read) {
        replay(&mut self.changes, offset, record);
    }
}
