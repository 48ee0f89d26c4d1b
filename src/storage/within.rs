//! A part of another storage: every key under one folder-like prefix, seen
//! as a storage of its own. A store keeps its period maps as stores of
//! their own under `periods/<level>/` this way (see `engine::periods`).

use super::{
    ByteRange, Bytes, CompactReport, DynStorage, Storage, StorageError, StoreKey, WriterLock,
};

/// The keys of `inner` under `prefix` (which ends in `/`), without it.
#[derive(Debug, Clone)]
pub struct Within {
    inner: DynStorage,
    prefix: String,
}

/// The writer lock of a part: its whole's, which the whole's writer holds.
#[derive(Debug)]
struct HeldByTheWhole;

impl WriterLock for HeldByTheWhole {}

impl Within {
    /// The keys of `inner` under `folder` (a key such as `periods/day`).
    ///
    /// # Errors
    /// A folder that is not a valid key.
    pub fn new(inner: DynStorage, folder: &str) -> Result<Self, StorageError> {
        StoreKey::new(folder)?;
        Ok(Self {
            inner,
            prefix: format!("{}/", folder.trim_end_matches('/')),
        })
    }

    fn outer(&self, key: &StoreKey) -> Result<StoreKey, StorageError> {
        Ok(StoreKey::new(format!("{}{}", self.prefix, key.as_str()))?)
    }
}

impl Storage for Within {
    fn get(&self, key: &StoreKey) -> Result<Option<Vec<u8>>, StorageError> {
        self.inner.get(&self.outer(key)?)
    }

    fn get_view(&self, key: &StoreKey) -> Result<Option<Bytes>, StorageError> {
        self.inner.get_view(&self.outer(key)?)
    }

    fn get_range(
        &self,
        key: &StoreKey,
        range: ByteRange,
    ) -> Result<Option<(Vec<u8>, u64)>, StorageError> {
        self.inner.get_range(&self.outer(key)?, range)
    }

    fn size(&self, key: &StoreKey) -> Result<Option<u64>, StorageError> {
        self.inner.size(&self.outer(key)?)
    }

    fn put(&self, key: &StoreKey, value: &[u8]) -> Result<(), StorageError> {
        self.inner.put(&self.outer(key)?, value)
    }

    fn delete(&self, key: &StoreKey) -> Result<(), StorageError> {
        self.inner.delete(&self.outer(key)?)
    }

    fn list(&self, prefix: &str) -> Result<Vec<(StoreKey, u64)>, StorageError> {
        let listed = self.inner.list(&format!("{}{prefix}", self.prefix))?;
        listed
            .into_iter()
            .filter_map(|(key, size)| {
                let inside = key.as_str().strip_prefix(&self.prefix)?;
                Some(StoreKey::new(inside).map(|k| (k, size)).map_err(Into::into))
            })
            .collect()
    }

    fn stage(&self, key: &StoreKey, value: Option<&[u8]>) -> Result<(), StorageError> {
        self.inner.stage(&self.outer(key)?, value)
    }

    fn commit(&self, key: &StoreKey) -> Result<bool, StorageError> {
        self.inner.commit(&self.outer(key)?)
    }

    fn discard(&self, key: &StoreKey) -> Result<(), StorageError> {
        self.inner.discard(&self.outer(key)?)
    }

    /// A part is written only by its whole's writer, under the whole's
    /// lock: taking it again would fail (or deadlock) in backends that
    /// lock the whole file.
    fn lock_writer(&self) -> Result<Box<dyn WriterLock>, StorageError> {
        Ok(Box::new(HeldByTheWhole))
    }

    fn sync(&self) -> Result<(), StorageError> {
        self.inner.sync()
    }

    fn compact(&self) -> Result<Option<CompactReport>, StorageError> {
        Ok(None)
    }

    fn available_space(&self) -> Result<Option<u64>, StorageError> {
        self.inner.available_space()
    }

    fn version(&self, key: &StoreKey) -> Result<Option<String>, StorageError> {
        self.inner.version(&self.outer(key)?)
    }

    fn location(&self) -> String {
        format!(
            "{}/{}",
            self.inner.location(),
            self.prefix.trim_end_matches('/')
        )
    }

    fn backend_name(&self) -> &'static str {
        self.inner.backend_name()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemoryStorage;
    use std::sync::Arc;

    /// A part of each backend that keeps nothing on disk passes the suite
    /// (the lock aside: it is the whole's); the folder backend's part too.
    #[test]
    fn conformance() {
        crate::storage::conformance::run_all_but_the_lock(&|| {
            let whole: DynStorage = Arc::new(MemoryStorage::new());
            whole.put(&StoreKey::new("outside").unwrap(), b"x").unwrap();
            Box::new(Within::new(whole, "periods/day").unwrap())
        });
        let dir = tempfile::tempdir().unwrap();
        let n = std::sync::atomic::AtomicUsize::new(0);
        crate::storage::conformance::run_all_but_the_lock(&|| {
            let i = n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let whole: DynStorage = Arc::new(
                crate::storage::FolderStorage::create(dir.path().join(i.to_string())).unwrap(),
            );
            Box::new(Within::new(whole, "periods/month").unwrap())
        });
    }

    #[test]
    fn a_part_sees_only_its_keys() {
        let whole: DynStorage = Arc::new(MemoryStorage::new());
        let key = |k: &str| StoreKey::new(k).unwrap();
        whole.put(&key("0/data/0"), b"whole").unwrap();
        let part = Within::new(whole.clone(), "periods/day").unwrap();
        assert!(part.list("").unwrap().is_empty());
        part.put(&key("0/data/0"), b"part").unwrap();
        assert_eq!(whole.get(&key("0/data/0")).unwrap().unwrap(), b"whole");
        assert_eq!(
            whole.get(&key("periods/day/0/data/0")).unwrap().unwrap(),
            b"part"
        );
        let listed: Vec<String> = part
            .list("0")
            .unwrap()
            .into_iter()
            .map(|(k, _)| k.as_str().to_string())
            .collect();
        assert_eq!(listed, ["0/data/0"]);
        part.stage(&key("x"), Some(b"staged")).unwrap();
        assert!(part.get(&key("x")).unwrap().is_none());
        assert!(part.commit(&key("x")).unwrap());
        assert_eq!(
            whole.get(&key("periods/day/x")).unwrap().unwrap(),
            b"staged"
        );
        assert!(part.location().ends_with("/periods/day"));
    }
}
