//! An in-memory backend, for tests and scratch stores.

use super::{Storage, StorageError, StoreKey, WriterLock};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

/// Staged values by key; `None` stages a removal.
type StagedMap = BTreeMap<StoreKey, Option<Arc<[u8]>>>;

/// A store held in a sorted map. Cloning shares the same data.
#[derive(Debug, Clone, Default)]
pub struct MemoryStorage {
    map: Arc<RwLock<BTreeMap<StoreKey, Arc<[u8]>>>>,
    /// Staged values; `None` stages a removal.
    staged: Arc<RwLock<StagedMap>>,
    writer: Arc<AtomicBool>,
}

impl MemoryStorage {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<StoreKey, Arc<[u8]>>> {
        // A poisoned lock only means another thread panicked mid-operation;
        // every operation replaces whole values, so the map is consistent.
        self.map
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<StoreKey, Arc<[u8]>>> {
        self.map
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[derive(Debug)]
struct MemoryLock(Arc<AtomicBool>);

impl WriterLock for MemoryLock {}

impl Drop for MemoryLock {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl Storage for MemoryStorage {
    fn get(&self, key: &StoreKey) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.read().get(key).map(|v| v.to_vec()))
    }

    fn get_range(
        &self,
        key: &StoreKey,
        range: super::ByteRange,
    ) -> Result<Option<(Vec<u8>, u64)>, StorageError> {
        Ok(self.read().get(key).map(|v| {
            let len = v.len() as u64;
            (v[range.within(len)].to_vec(), len)
        }))
    }

    fn version(&self, key: &StoreKey) -> Result<Option<String>, StorageError> {
        // This storage (its map's address) and the value's own bytes.
        let map = Arc::as_ptr(&self.map) as usize;
        Ok(self
            .read()
            .get(key)
            .map(|v| format!("m{map:x}:{}:{:08x}", v.len(), crc32fast::hash(v))))
    }

    fn size(&self, key: &StoreKey) -> Result<Option<u64>, StorageError> {
        Ok(self.read().get(key).map(|v| v.len() as u64))
    }

    fn put(&self, key: &StoreKey, value: &[u8]) -> Result<(), StorageError> {
        self.write().insert(key.clone(), value.into());
        Ok(())
    }

    fn delete(&self, key: &StoreKey) -> Result<(), StorageError> {
        self.write().remove(key);
        Ok(())
    }

    fn list(&self, prefix: &str) -> Result<Vec<(StoreKey, u64)>, StorageError> {
        let map = self.read();
        Ok(map
            .iter()
            .filter(|(k, _)| in_prefix(k.as_str(), prefix))
            .map(|(k, v)| (k.clone(), v.len() as u64))
            .collect())
    }

    fn stage(&self, key: &StoreKey, value: Option<&[u8]>) -> Result<(), StorageError> {
        let mut staged = self
            .staged
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        staged.insert(key.clone(), value.map(Into::into));
        Ok(())
    }

    fn commit(&self, key: &StoreKey) -> Result<bool, StorageError> {
        let staged = self
            .staged
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(key);
        match staged {
            Some(Some(value)) => {
                self.write().insert(key.clone(), value);
                Ok(true)
            }
            Some(None) => {
                self.write().remove(key);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn discard(&self, key: &StoreKey) -> Result<(), StorageError> {
        self.staged
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(key);
        Ok(())
    }

    fn lock_writer(&self) -> Result<Box<dyn WriterLock>, StorageError> {
        if self.writer.swap(true, Ordering::AcqRel) {
            return Err(StorageError::Locked {
                path: "memory".into(),
                pid: std::process::id().to_string(),
            });
        }
        Ok(Box::new(MemoryLock(self.writer.clone())))
    }

    fn location(&self) -> String {
        "memory".into()
    }

    fn backend_name(&self) -> &'static str {
        "memory"
    }
}

/// Whether `key` lies below the folder-like `prefix` ("" holds everything).
pub(super) fn in_prefix(key: &str, prefix: &str) -> bool {
    let prefix = prefix.trim_end_matches('/');
    prefix.is_empty()
        || key
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_the_conformance_suite() {
        super::super::conformance::run_all(&|| Box::new(MemoryStorage::new()));
    }
}
