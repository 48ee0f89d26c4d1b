//! Byte storage behind a narrow trait.
//!
//! The engine sees a store as a map from [`StoreKey`]s to byte strings. Each
//! backend guarantees that a `put` is atomic (a reader sees the old or the new
//! value, never a mix) and that an absent key reads as `Ok(None)`.

mod folder;
mod key;
mod memory;

pub use folder::FolderStorage;
pub use key::{KeyError, StoreKey};
pub use memory::MemoryStorage;

use std::path::PathBuf;
use std::sync::Arc;

/// Errors from a storage backend.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// An I/O error, with the path it happened on. (Not a `#[source]`: the
    /// message already includes it.)
    #[error("{error}: {path}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        error: std::io::Error,
    },
    /// A key that is not a valid store key.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A new store's folder already holds files.
    #[error("{path}: the folder exists and is not empty")]
    NotEmpty {
        /// The folder.
        path: PathBuf,
    },
    /// Another process holds the writer lock.
    #[error("store {path} is locked by process {pid}")]
    Locked {
        /// The store.
        path: PathBuf,
        /// The process holding the lock, as it recorded itself.
        pid: String,
    },
}

impl StorageError {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            error: source,
        }
    }
}

/// A held writer lock; dropping it releases the lock.
pub trait WriterLock: Send + Sync + std::fmt::Debug {}

/// The operations every backend provides.
pub trait Storage: Send + Sync + std::fmt::Debug {
    /// Reads a value; `Ok(None)` when the key is absent.
    ///
    /// # Errors
    /// I/O failures.
    fn get(&self, key: &StoreKey) -> Result<Option<Vec<u8>>, StorageError>;

    /// The stored size of a value in bytes; `Ok(None)` when absent.
    ///
    /// # Errors
    /// I/O failures.
    fn size(&self, key: &StoreKey) -> Result<Option<u64>, StorageError>;

    /// Writes a value atomically, replacing any old one.
    ///
    /// # Errors
    /// I/O failures; the old value is then still in place.
    fn put(&self, key: &StoreKey, value: &[u8]) -> Result<(), StorageError>;

    /// Removes a value; removing an absent key succeeds.
    ///
    /// # Errors
    /// I/O failures.
    fn delete(&self, key: &StoreKey) -> Result<(), StorageError>;

    /// Every key below `prefix` (a folder-like key, or empty for all) with its
    /// stored size, sorted by key.
    ///
    /// # Errors
    /// I/O failures.
    fn list(&self, prefix: &str) -> Result<Vec<(StoreKey, u64)>, StorageError>;

    /// Writes a value (or, with `None`, a removal) where readers cannot see
    /// it until [`Storage::commit`]. Staging again replaces the staged value.
    ///
    /// # Errors
    /// I/O failures; the visible value is untouched either way.
    fn stage(&self, key: &StoreKey, value: Option<&[u8]>) -> Result<(), StorageError>;

    /// Makes what is staged under `key` visible, atomically for that key.
    /// Without anything staged it does nothing. Returns whether it did.
    ///
    /// # Errors
    /// I/O failures.
    fn commit(&self, key: &StoreKey) -> Result<bool, StorageError>;

    /// Drops what is staged under `key`, if anything.
    ///
    /// # Errors
    /// I/O failures.
    fn discard(&self, key: &StoreKey) -> Result<(), StorageError>;

    /// Takes the single-writer lock, failing at once if another writer holds it.
    ///
    /// # Errors
    /// [`StorageError::Locked`] naming the holder.
    fn lock_writer(&self) -> Result<Box<dyn WriterLock>, StorageError>;

    /// Where the data lives, for messages (a path, or "memory").
    fn location(&self) -> String;
}

/// A shared backend.
pub type DynStorage = Arc<dyn Storage>;

#[cfg(test)]
pub(crate) mod conformance;
