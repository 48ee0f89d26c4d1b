//! [`Storage`] for [`PackedStorage`]: every operation a record appended,
//! every read a checked view into a mapped pack.

use super::compact::CompactReport;
use super::index::{self, Staged};
use super::writer::{PackedLock, RESERVE_FILE};
use super::{PackedStorage, pack};
use crate::storage::memory::in_prefix;
use crate::storage::record::Kind;
use crate::storage::{Bytes, Storage, StorageError, StoreKey, WriterLock};
use std::collections::BTreeMap;
use std::fs;
use std::sync::PoisonError;

impl Storage for PackedStorage {
    fn get(&self, key: &StoreKey) -> Result<Option<Vec<u8>>, StorageError> {
        self.read_located(key.as_str(), |loc| self.read_value(key.as_str(), loc))
    }

    fn get_view(&self, key: &StoreKey) -> Result<Option<Bytes>, StorageError> {
        self.read_located(key.as_str(), |loc| {
            let (mapped, range) = self.value_range(key.as_str(), loc)?;
            Ok(Bytes::mapped(mapped, range))
        })
    }

    fn size(&self, key: &StoreKey) -> Result<Option<u64>, StorageError> {
        Ok(self.locate(key.as_str())?.map(|loc| loc.len))
    }

    fn version(&self, key: &StoreKey) -> Result<Option<String>, StorageError> {
        // Where the record lies, and the version of the pack file holding it
        // (a flipped byte moves the pack's change time; a copy has others).
        let Some(loc) = self.locate(key.as_str())? else {
            return Ok(None);
        };
        let pack = pack::pack_path(&self.packs_dir(), loc.pack);
        let file = crate::storage::file_version(&pack)?.unwrap_or_default();
        Ok(Some(format!(
            "{file}@{}:{}+{}#{:08x}",
            loc.pack, loc.value_at, loc.len, loc.crc
        )))
    }

    fn put(&self, key: &StoreKey, value: &[u8]) -> Result<(), StorageError> {
        self.with_writer(|w| {
            let (_, loc) = self.append(w, Kind::Put, key.as_str(), value)?;
            w.changes.live.insert(key.as_str().into(), Some(loc));
            Ok(())
        })
    }

    fn delete(&self, key: &StoreKey) -> Result<(), StorageError> {
        if self.locate(key.as_str())?.is_none() {
            return Ok(());
        }
        self.with_writer(|w| {
            self.append(w, Kind::Delete, key.as_str(), &[])?;
            w.changes.live.insert(key.as_str().into(), None);
            Ok(())
        })
    }

    fn list(&self, prefix: &str) -> Result<Vec<(StoreKey, u64)>, StorageError> {
        let index_path = self.index_path();
        let scan = prefix.trim_end_matches('/');
        let mut found: BTreeMap<String, u64> = BTreeMap::new();
        let writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(w) = writer.as_ref() else {
            drop(writer);
            if let Some(db) = self.reader()? {
                for (key, loc) in index::list_live(db.as_ref(), &index_path, scan)? {
                    if in_prefix(&key, prefix) {
                        found.insert(key, loc.len);
                    }
                }
            }
            return to_keys(found);
        };
        w.check_index(&index_path)?;
        for (key, loc) in index::list_live(&w.db, &index_path, scan)? {
            if in_prefix(&key, prefix) {
                found.insert(key, loc.len);
            }
        }
        {
            for (key, change) in w.changes.live.range(scan.to_string()..) {
                if !key.starts_with(scan) {
                    break;
                }
                if !in_prefix(key, prefix) {
                    continue;
                }
                match change {
                    Some(loc) => found.insert(key.clone(), loc.len),
                    None => found.remove(key),
                };
            }
        }
        to_keys(found)
    }

    fn stage(&self, key: &StoreKey, value: Option<&[u8]>) -> Result<(), StorageError> {
        self.with_writer(|w| {
            let (kind, bytes) = match value {
                Some(v) => (Kind::Stage, v),
                None => (Kind::StageRemoval, &[][..]),
            };
            let (sequence, loc) = self.append(w, kind, key.as_str(), bytes)?;
            w.changes.staged.insert(
                key.as_str().into(),
                Some(Staged {
                    sequence,
                    value: value.map(|_| loc),
                }),
            );
            Ok(())
        })
    }

    fn commit(&self, key: &StoreKey) -> Result<bool, StorageError> {
        self.with_writer(|w| {
            let Some(staged) = self.staged_entry(w, key.as_str())? else {
                return Ok(false);
            };
            self.append(
                w,
                Kind::Commit,
                key.as_str(),
                &staged.sequence.to_le_bytes(),
            )?;
            w.changes.live.insert(key.as_str().into(), staged.value);
            w.changes.staged.insert(key.as_str().into(), None);
            Ok(true)
        })
    }

    fn discard(&self, key: &StoreKey) -> Result<(), StorageError> {
        let discard = || {
            self.with_writer(|w| {
                let Some(staged) = self.staged_entry(w, key.as_str())? else {
                    return Ok(());
                };
                self.append(
                    w,
                    Kind::Discard,
                    key.as_str(),
                    &staged.sequence.to_le_bytes(),
                )?;
                w.changes.staged.insert(key.as_str().into(), None);
                Ok(())
            })
        };
        match discard() {
            // A rollback on a full disk: what the reserve is kept for.
            // (Trying again is safe: a discard already recorded finds
            // nothing staged.)
            Err(e) if e.is_disk_full() => {
                fs::remove_file(self.root.join(RESERVE_FILE)).ok();
                discard()
            }
            other => other,
        }
    }

    fn lock_writer(&self) -> Result<Box<dyn WriterLock>, StorageError> {
        self.with_writer(|_| Ok(()))?;
        Ok(Box::new(PackedLock))
    }

    fn sync(&self) -> Result<(), StorageError> {
        let index_path = self.index_path();
        let mut writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        match writer.as_mut() {
            Some(w) => w.flush(&index_path),
            None => Ok(()),
        }
    }

    fn compact(&self) -> Result<Option<CompactReport>, StorageError> {
        PackedStorage::compact(self).map(Some)
    }

    fn available_space(&self) -> Result<Option<u64>, StorageError> {
        crate::storage::free_space(&self.root).map(Some)
    }

    fn location(&self) -> String {
        self.root.display().to_string()
    }

    fn backend_name(&self) -> &'static str {
        "packed"
    }
}

fn to_keys(found: BTreeMap<String, u64>) -> Result<Vec<(StoreKey, u64)>, StorageError> {
    found
        .into_iter()
        .map(|(k, n)| StoreKey::new(k).map(|k| (k, n)).map_err(Into::into))
        .collect()
}
