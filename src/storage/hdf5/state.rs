//! `/state`: the few numbers an hdf5 store's writer and readers start from.

use super::super::StorageError;
use super::file::{Handles, h5_error};
use std::path::Path;

/// `/state`, as read and written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct State {
    /// Bytes of `/log` holding whole records.
    pub head: u64,
    pub last_sequence: u64,
    /// How far into the log the index has been brought.
    pub applied: u64,
    /// The active table: 0 (`table_a`) or 1 (`table_b`).
    pub active: u64,
    pub capacity: u64,
    /// Slots of the active table taken (tombstones included).
    pub used: u64,
    /// The process writing the store.
    pub pid: u64,
}

impl State {
    /// Reads and checks `/state`.
    pub fn read(h: &Handles, path: &Path) -> Result<Self, StorageError> {
        let v = h.state.read_raw::<u64>().map_err(|e| h5_error(path, &e))?;
        if v.len() != 8 {
            return Err(StorageError::Corrupt {
                path: path.to_path_buf(),
                reason: format!("/state holds {} numbers, not 8", v.len()),
            });
        }
        let state = Self {
            head: v[0],
            last_sequence: v[1],
            applied: v[2],
            active: v[3],
            capacity: v[4],
            used: v[5],
            pid: v[6],
        };
        if state.active > 1 || !state.capacity.is_power_of_two() || state.applied > state.head {
            return Err(StorageError::Corrupt {
                path: path.to_path_buf(),
                reason: format!("/state is damaged: {v:?}"),
            });
        }
        Ok(state)
    }

    /// Writes `/state` and flushes it.
    pub fn write(&self, h: &Handles, path: &Path) -> Result<(), StorageError> {
        let Self {
            head,
            last_sequence,
            applied,
            active,
            capacity,
            used,
            pid,
        } = *self;
        let err = |e: hdf5::Error| h5_error(path, &e);
        h.state
            .write(&[head, last_sequence, applied, active, capacity, used, pid, 0])
            .map_err(err)?;
        h.state.flush().map_err(err)
    }
}
