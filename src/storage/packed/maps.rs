//! Packs mapped into memory for reading: values are checked against their
//! CRC-32 before they are handed out, and a pack a compaction deleted is
//! looked up again.

use super::index::Location;
use super::{PackedStorage, pack};
use crate::storage::StorageError;
use crate::storage::record;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError};

/// A pack opened for reading.
#[derive(Debug)]
pub(super) struct Mapped {
    pub(super) file: File,
    pub(super) map: memmap2::Mmap,
    pub(super) path: PathBuf,
}

impl AsRef<[u8]> for Mapped {
    fn as_ref(&self) -> &[u8] {
        &self.map
    }
}

impl PackedStorage {
    /// The pack mapped for reading.
    pub(super) fn mapped(&self, number: u32) -> Result<Arc<Mapped>, StorageError> {
        if let Some(m) = self
            .maps
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&number)
        {
            return Ok(m.clone());
        }
        let path = pack::pack_path(&self.packs_dir(), number);
        let file = File::open(&path).map_err(|e| StorageError::io(&path, e))?;
        let map = map_pack(&file, &path)?;
        let mapped = Arc::new(Mapped { file, map, path });
        let mut maps = self.maps.write().unwrap_or_else(PoisonError::into_inner);
        // Packs a compaction deleted keep their disk space while mapped.
        maps.retain(|_, m| {
            use std::os::unix::fs::MetadataExt as _;
            m.file.metadata().is_ok_and(|meta| meta.nlink() > 0)
        });
        maps.insert(number, mapped.clone());
        Ok(mapped)
    }

    /// Drops the map of pack `number` (it was deleted).
    pub(super) fn forget_map(&self, number: u32) {
        self.maps
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&number);
    }

    /// Runs `read` on where `key` lives; when its pack has vanished (a
    /// compaction in another process moved the value and deleted the
    /// pack between the lookup and the read), looks the key up again.
    pub(super) fn read_located<R>(
        &self,
        key: &str,
        read: impl Fn(Location) -> Result<R, StorageError>,
    ) -> Result<Option<R>, StorageError> {
        let Some(loc) = self.locate(key)? else {
            return Ok(None);
        };
        match read(loc) {
            Err(StorageError::Io { error, .. }) if error.kind() == std::io::ErrorKind::NotFound => {
                match self.locate(key)? {
                    Some(moved) => read(moved).map(Some),
                    None => Ok(None),
                }
            }
            other => other.map(Some),
        }
    }

    /// The checked bytes of `key`'s value at `loc`.
    pub(super) fn read_value(&self, key: &str, loc: Location) -> Result<Vec<u8>, StorageError> {
        let (mapped, range) = self.value_range(key, loc)?;
        let bytes = &mapped.map[range];
        if record::checksum(key, bytes) != loc.crc {
            return Err(StorageError::Corrupt {
                path: mapped.path.clone(),
                reason: format!("{key} fails its checksum"),
            });
        }
        Ok(bytes.to_vec())
    }

    /// The pack and byte range of `key`'s value at `loc`, checked against
    /// the pack's current length.
    pub(super) fn value_range(
        &self,
        key: &str,
        loc: Location,
    ) -> Result<(Arc<Mapped>, std::ops::Range<usize>), StorageError> {
        let mapped = self.mapped(loc.pack)?;
        let size = mapped
            .file
            .metadata()
            .map_err(|e| StorageError::io(&mapped.path, e))?
            .len();
        let end = loc.value_at.saturating_add(loc.len);
        // Checked against the file itself: a truncated pack is an error,
        // never a fault.
        if end > size || end > mapped.map.len() as u64 {
            return Err(StorageError::Corrupt {
                path: mapped.path.clone(),
                reason: format!(
                    "the index places {key} at bytes {}..{end}, past the end of the file ({size} bytes)",
                    loc.value_at
                ),
            });
        }
        Ok((mapped, loc.value_at as usize..end as usize))
    }
}

#[allow(unsafe_code)]
pub(super) fn map_pack(file: &File, path: &Path) -> Result<memmap2::Mmap, StorageError> {
    // SAFETY: gridstore only appends to a pack past its head and never
    // rewrites the bytes behind it, so mapped bytes do not change under a
    // reader; every read checks the file's current length before touching
    // the map (so a truncated pack is an error, not a fault) and checks
    // the bytes against their CRC-32 before returning them.
    unsafe { memmap2::Mmap::map(file) }.map_err(|e| StorageError::io(path, e))
}
