//! The index of an `hdf5` store: an open-addressing hash table of
//! (hash, record offset) slots in a dataset, probed linearly. Live values
//! and staged changes share it under different hashes of their key; a
//! slot's record carries the key, so a hash collision is never a wrong
//! answer. A removed entry leaves a tombstone (offset `u64::MAX`) that
//! probes go past; the table is rebuilt into the other dataset, twice as
//! large or more, when used slots pass half.

use super::super::StorageError;
use super::file::h5_error;
use hdf5::Dataset;
use std::path::Path;

/// The offset of a removed entry's slot.
pub const TOMBSTONE: u64 = u64::MAX;

/// Whose entry a hash is: a key's live value, or its staged change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The visible value.
    Live,
    /// The staged change.
    Staged,
}

/// The slot hash of `key` on `side` (never 0, which marks an empty slot):
/// FNV-1a, stable across builds, as the file's layout needs.
#[must_use]
pub fn hash(side: Side, key: &str) -> u64 {
    let tag: &[u8] = match side {
        Side::Live => b"L",
        Side::Staged => b"S",
    };
    let h = tag
        .iter()
        .chain(key.as_bytes())
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
        });
    h.max(1)
}

/// One table dataset of `capacity` slots (a power of two).
pub struct Table<'a> {
    /// The dataset.
    pub dataset: &'a Dataset,
    /// Slots.
    pub capacity: u64,
    /// The store file, for messages.
    pub path: &'a Path,
}

impl Table<'_> {
    fn home(&self, h: u64) -> u64 {
        // Fibonacci hashing: the hash's high bits pick the slot.
        let bits = self.capacity.trailing_zeros();
        if bits == 0 {
            0
        } else {
            h.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - bits)
        }
    }

    fn slot(&self, i: u64) -> Result<(u64, u64), StorageError> {
        let at = usize::try_from(2 * i).unwrap_or(usize::MAX);
        let pair = self
            .dataset
            .read_slice_1d::<u64, _>(at..at + 2)
            .map_err(|e| h5_error(self.path, &e))?;
        Ok((pair[0], pair[1]))
    }

    fn set_slot(&self, i: u64, h: u64, offset: u64) -> Result<(), StorageError> {
        let at = usize::try_from(2 * i).unwrap_or(usize::MAX);
        self.dataset
            .write_slice(&[h, offset], at..at + 2)
            .map_err(|e| h5_error(self.path, &e))
    }

    /// The slot and record offset of the entry with hash `h` whose record's
    /// key is `key` (`key_of` reads it), if any.
    ///
    /// # Errors
    /// HDF5 failures, or a table with no empty slot.
    pub fn find(
        &self,
        h: u64,
        key: &str,
        key_of: &dyn Fn(u64) -> Result<String, StorageError>,
    ) -> Result<Option<(u64, u64)>, StorageError> {
        let mut i = self.home(h);
        for _ in 0..self.capacity {
            let (slot_hash, offset) = self.slot(i)?;
            if slot_hash == 0 {
                return Ok(None);
            }
            if slot_hash == h && offset != TOMBSTONE && key_of(offset)? == key {
                return Ok(Some((i, offset)));
            }
            i = (i + 1) & (self.capacity - 1);
        }
        Err(self.full())
    }

    /// Points `key`'s entry with hash `h` at `offset` (`None`: removes it).
    /// Returns whether it took a new slot.
    ///
    /// # Errors
    /// HDF5 failures, or a table with no empty slot.
    pub fn set(
        &self,
        h: u64,
        key: &str,
        offset: Option<u64>,
        key_of: &dyn Fn(u64) -> Result<String, StorageError>,
    ) -> Result<bool, StorageError> {
        if let Some((i, _)) = self.find(h, key, key_of)? {
            self.set_slot(i, h, offset.unwrap_or(TOMBSTONE))?;
            return Ok(false);
        }
        let Some(offset) = offset else {
            return Ok(false);
        };
        let mut i = self.home(h);
        for _ in 0..self.capacity {
            if self.slot(i)?.0 == 0 {
                self.set_slot(i, h, offset)?;
                return Ok(true);
            }
            i = (i + 1) & (self.capacity - 1);
        }
        Err(self.full())
    }

    /// Puts an entry known to be absent into the first empty slot.
    ///
    /// # Errors
    /// HDF5 failures, or a table with no empty slot.
    pub fn insert_new(&self, h: u64, offset: u64) -> Result<(), StorageError> {
        // Straight to the first empty slot: two keys may share a hash.
        let mut i = self.home(h);
        for _ in 0..self.capacity {
            if self.slot(i)?.0 == 0 {
                return self.set_slot(i, h, offset);
            }
            i = (i + 1) & (self.capacity - 1);
        }
        Err(self.full())
    }

    /// Every slot holding an entry, as (hash, record offset).
    ///
    /// # Errors
    /// HDF5 failures.
    pub fn entries(&self) -> Result<Vec<(u64, u64)>, StorageError> {
        let slots = self
            .dataset
            .read_raw::<u64>()
            .map_err(|e| h5_error(self.path, &e))?;
        Ok(slots
            .chunks_exact(2)
            .filter(|s| s[0] != 0 && s[1] != TOMBSTONE)
            .map(|s| (s[0], s[1]))
            .collect())
    }

    /// Makes the dataset an empty table of `capacity` slots.
    ///
    /// # Errors
    /// HDF5 failures.
    pub fn reset(dataset: &Dataset, capacity: u64, path: &Path) -> Result<(), StorageError> {
        let len = usize::try_from(2 * capacity).unwrap_or(usize::MAX);
        let err = |e: hdf5::Error| h5_error(path, &e);
        dataset.resize(len).map_err(err)?;
        let zeros = vec![0u64; len.min(1 << 20)];
        let mut at = 0;
        while at < len {
            let n = zeros.len().min(len - at);
            dataset.write_slice(&zeros[..n], at..at + n).map_err(err)?;
            at += n;
        }
        Ok(())
    }

    fn full(&self) -> StorageError {
        StorageError::Corrupt {
            path: self.path.to_path_buf(),
            reason: format!(
                "the index table ({} slots) has no empty slot",
                self.capacity
            ),
        }
    }
}
