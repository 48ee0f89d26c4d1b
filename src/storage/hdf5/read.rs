//! Reading an hdf5 store's records, as its writer or a reader sees them.

use super::super::StorageError;
use super::file::{Handles, h5_error};
use super::log::{Changes, Read, read_record, replay};
use super::state::State;
use super::table::{Side, Table, hash};
use super::writer::Writer;
use std::collections::BTreeMap;
use std::path::Path;

/// A reader's handles, with the state they were last refreshed at and the
/// effect of the records the writer has made durable but not yet applied
/// to the index (between "applied" and "head"), so that a reader sees the
/// store exactly as of the head, never a half-applied index.
pub struct Reader {
    pub h: Handles,
    pub seen: State,
    pub overlay: Changes,
}

impl Reader {
    /// Opens read handles on the store file at `path`.
    ///
    /// # Errors
    /// A file that is not a store, or HDF5 failures.
    pub fn open(h: Handles, path: &Path) -> Result<Self, StorageError> {
        let mut reader = Self {
            seen: State::read(&h, path)?,
            h,
            overlay: Changes::default(),
        };
        reader.replay_tail(path)?;
        Ok(reader)
    }

    /// Brings the handles up to what the writer last wrote (`always`: even
    /// when `/state` did not change).
    ///
    /// # Errors
    /// HDF5 failures, or damaged records.
    pub fn refresh(&mut self, path: &Path, always: bool) -> Result<(), StorageError> {
        let err = |e: hdf5::Error| h5_error(path, &e);
        self.h.state.refresh().map_err(err)?;
        let now = State::read(&self.h, path)?;
        if now != self.seen || always {
            for ds in [&self.h.log, &self.h.tables[0], &self.h.tables[1]] {
                ds.refresh().map_err(err)?;
            }
            self.seen = now;
            self.replay_tail(path)?;
        }
        Ok(())
    }

    fn replay_tail(&mut self, path: &Path) -> Result<(), StorageError> {
        self.overlay = Changes::default();
        let mut at = self.seen.applied;
        while at < self.seen.head {
            let record = read_record(&self.h, &[], self.seen.head, at, true, path)?;
            replay(&mut self.overlay, at, &record);
            at += record.head.record_len();
        }
        Ok(())
    }
}

/// Finding and reading records, as a writer or a reader sees them.
pub enum Lookup<'a> {
    Writer(&'a Writer, &'a Path),
    Reader(&'a Reader, &'a Path),
}

impl Lookup<'_> {
    /// Where `key`'s `side` entry is.
    pub fn locate(&self, side: Side, key: &str) -> Result<Option<u64>, StorageError> {
        match self {
            Self::Writer(w, path) => w.locate(side, key, path),
            Self::Reader(r, path) => {
                let overlay = match side {
                    Side::Live => r.overlay.live.get(key),
                    Side::Staged => r.overlay.staged.get(key),
                };
                if let Some(change) = overlay {
                    return Ok(*change);
                }
                let table = Table {
                    dataset: &r.h.tables[usize::from(r.seen.active == 1)],
                    capacity: r.seen.capacity,
                    path,
                };
                let key_of = |offset| self.read(offset, false).map(|r| r.key);
                Ok(table.find(hash(side, key), key, &key_of)?.map(|(_, o)| o))
            }
        }
    }

    /// The record at `offset`, with its value when asked.
    pub fn read(&self, offset: u64, with_value: bool) -> Result<Read, StorageError> {
        match self {
            Self::Writer(w, path) => w.read(offset, with_value, path),
            Self::Reader(r, path) => read_record(&r.h, &[], r.seen.head, offset, with_value, path),
        }
    }

    /// The bytes `range` names of the value of the record at `offset`,
    /// and the value's length (see [`super::log::read_value_range`]).
    pub fn read_range(
        &self,
        offset: u64,
        range: crate::storage::ByteRange,
    ) -> Result<(Vec<u8>, u64), StorageError> {
        match self {
            Self::Writer(w, path) => {
                super::log::read_value_range(&w.h, &w.buffer, w.log_len, offset, range, path)
            }
            Self::Reader(r, path) => {
                super::log::read_value_range(&r.h, &[], r.seen.head, offset, range, path)
            }
        }
    }

    /// Every live key starting with `prefix` (as [`Storage::list`]) and its
    /// value's length.
    pub fn list(&self, prefix: &str) -> Result<BTreeMap<String, u64>, StorageError> {
        let (h, state, path) = match self {
            Self::Writer(w, path) => (&w.h, &w.state, *path),
            Self::Reader(r, path) => (&r.h, &r.seen, *path),
        };
        let in_prefix = |key: &str| crate::storage::memory::in_prefix(key, prefix);
        let table = Table {
            dataset: &h.tables[usize::from(state.active == 1)],
            capacity: state.capacity,
            path,
        };
        let mut found = BTreeMap::new();
        for (slot_hash, offset) in table.entries()? {
            let record = self.read(offset, false)?;
            if slot_hash == hash(Side::Live, &record.key) && in_prefix(&record.key) {
                found.insert(record.key, record.head.value_len);
            }
        }
        let changes = match self {
            Self::Writer(w, _) => &w.changes,
            Self::Reader(r, _) => &r.overlay,
        };
        {
            for (key, change) in changes.live.iter().filter(|(k, _)| in_prefix(k)) {
                match change {
                    Some(offset) => {
                        found.insert(key.clone(), self.read(*offset, false)?.head.value_len)
                    }
                    None => found.remove(key),
                };
            }
        }
        Ok(found)
    }
}
