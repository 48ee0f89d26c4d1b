//! A folder storage that counts what it serves: bytes read, reads and
//! listings, and staged writes per key.

use gridstore::storage::{ByteRange, FolderStorage, Storage, StorageError, StoreKey, WriterLock};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Every read a storage serves, counted, and every staged write per key.
#[derive(Debug)]
pub struct Counting {
    /// The storage counted.
    pub inner: FolderStorage,
    /// Bytes read.
    pub read: AtomicU64,
    /// Values (or parts of values) read.
    pub reads: AtomicU64,
    /// Listings.
    pub lists: AtomicU64,
    /// Stage calls per key.
    pub staged: Mutex<BTreeMap<String, u32>>,
}

impl Counting {
    /// Counts over a new folder storage at `path`.
    pub fn create(path: &Path) -> Self {
        Self::over(FolderStorage::create(path).unwrap())
    }

    /// Counts over the folder storage at `path`.
    pub fn open(path: &Path) -> Self {
        Self::over(FolderStorage::open(path).unwrap())
    }

    fn over(inner: FolderStorage) -> Self {
        Self {
            inner,
            read: AtomicU64::new(0),
            reads: AtomicU64::new(0),
            lists: AtomicU64::new(0),
            staged: Mutex::default(),
        }
    }

    fn count(&self, bytes: u64) {
        self.read.fetch_add(bytes, Ordering::SeqCst);
        self.reads.fetch_add(1, Ordering::SeqCst);
    }
}

impl Storage for Counting {
    fn get(&self, key: &StoreKey) -> Result<Option<Vec<u8>>, StorageError> {
        let got = self.inner.get(key)?;
        self.count(got.as_ref().map_or(0, |b| b.len() as u64));
        Ok(got)
    }
    fn get_range(
        &self,
        key: &StoreKey,
        range: ByteRange,
    ) -> Result<Option<(Vec<u8>, u64)>, StorageError> {
        let got = self.inner.get_range(key, range)?;
        self.count(got.as_ref().map_or(0, |(b, _)| b.len() as u64));
        Ok(got)
    }
    fn size(&self, key: &StoreKey) -> Result<Option<u64>, StorageError> {
        self.inner.size(key)
    }
    fn put(&self, key: &StoreKey, value: &[u8]) -> Result<(), StorageError> {
        self.inner.put(key, value)
    }
    fn delete(&self, key: &StoreKey) -> Result<(), StorageError> {
        self.inner.delete(key)
    }
    fn list(&self, prefix: &str) -> Result<Vec<(StoreKey, u64)>, StorageError> {
        self.lists.fetch_add(1, Ordering::SeqCst);
        self.inner.list(prefix)
    }
    fn stage(&self, key: &StoreKey, value: Option<&[u8]>) -> Result<(), StorageError> {
        *self
            .staged
            .lock()
            .unwrap()
            .entry(key.to_string())
            .or_default() += 1;
        self.inner.stage(key, value)
    }
    fn commit(&self, key: &StoreKey) -> Result<bool, StorageError> {
        self.inner.commit(key)
    }
    fn discard(&self, key: &StoreKey) -> Result<(), StorageError> {
        self.inner.discard(key)
    }
    fn lock_writer(&self) -> Result<Box<dyn WriterLock>, StorageError> {
        self.inner.lock_writer()
    }
    fn version(&self, key: &StoreKey) -> Result<Option<String>, StorageError> {
        self.inner.version(key)
    }
    fn location(&self) -> String {
        self.inner.location()
    }
    fn backend_name(&self) -> &'static str {
        "counting"
    }
}
