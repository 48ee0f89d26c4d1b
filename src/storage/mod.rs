//! Byte storage behind a narrow trait.
//!
//! The engine sees a store as a map from [`StoreKey`]s to byte strings. Each
//! backend guarantees that a `put` is atomic (a reader sees the old or the new
//! value, never a mix) and that an absent key reads as `Ok(None)`.

mod folder;
pub mod hdf5;
mod key;
pub(crate) mod lock;
mod memory;
pub mod packed;
pub mod record;
mod within;

pub use folder::FolderStorage;
pub use hdf5::Hdf5Storage;
pub use key::{KeyError, StoreKey};
pub use memory::MemoryStorage;
pub use packed::{CompactReport, PackedStorage};
pub use within::Within;

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
    /// Stored bytes that fail their checks (a pack, its header or a record,
    /// or the index).
    #[error("{path}: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A new store's folder already holds files.
    #[error("{path}: the folder exists and is not empty")]
    NotEmpty {
        /// The folder.
        path: PathBuf,
    },
    /// Too little free disk space to finish a write (checked before the
    /// write passes the point where it can no longer be rolled back).
    #[error(
        "not enough free disk space to finish the write: it needs up to {} more, {} are free: {path}",
        crate::format::human_bytes(*needed),
        crate::format::human_bytes(*available)
    )]
    Full {
        /// The store.
        path: PathBuf,
        /// Bytes the rest of the write needs, estimated from above.
        needed: u64,
        /// Bytes free.
        available: u64,
    },
    /// A store opened read-only for what it is (a raster gridstore did not
    /// write): nothing is ever written into it.
    #[error(
        "{path} is read-only: another tool wrote it, and gridstore does not write into it (ingest it into a store to change it)"
    )]
    ReadOnly {
        /// The file or folder.
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
    /// Whether this is the disk (or the user's quota, or the file size
    /// limit) running out of room.
    #[must_use]
    pub fn is_disk_full(&self) -> bool {
        use std::io::ErrorKind;
        match self {
            Self::Full { .. } => true,
            Self::Io { error, .. } => {
                matches!(
                    error.kind(),
                    ErrorKind::StorageFull | ErrorKind::QuotaExceeded | ErrorKind::FileTooLarge
                ) || error.raw_os_error() == Some(libc::ENOSPC)
            }
            _ => false,
        }
    }

    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            error: source,
        }
    }
}

/// A stored value's bytes: owned, or a view into a mapped file (no copy).
pub struct Bytes(BytesInner);

enum BytesInner {
    Owned(Vec<u8>),
    Mapped(Arc<dyn AsRef<[u8]> + Send + Sync>, std::ops::Range<usize>),
}

impl Bytes {
    /// Owned bytes.
    #[must_use]
    pub fn owned(bytes: Vec<u8>) -> Self {
        Self(BytesInner::Owned(bytes))
    }

    /// The bytes as a vector: owned ones moved, mapped ones copied.
    #[must_use]
    pub fn into_vec(self) -> Vec<u8> {
        match self.0 {
            BytesInner::Owned(v) => v,
            BytesInner::Mapped(map, range) => (*map).as_ref()[range].to_vec(),
        }
    }

    /// The bytes `range` of a shared mapping.
    #[must_use]
    pub fn mapped(map: Arc<dyn AsRef<[u8]> + Send + Sync>, range: std::ops::Range<usize>) -> Self {
        Self(BytesInner::Mapped(map, range))
    }
}

impl std::ops::Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match &self.0 {
            BytesInner::Owned(v) => v,
            BytesInner::Mapped(map, range) => &(**map).as_ref()[range.clone()],
        }
    }
}

/// A held writer lock; dropping it releases the lock.
pub trait WriterLock: Send + Sync + std::fmt::Debug {}

/// Which bytes of a value [`Storage::get_range`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// `len` bytes from `offset` on.
    Span {
        /// The first byte.
        offset: u64,
        /// How many bytes.
        len: u64,
    },
    /// The last `n` bytes.
    Suffix(u64),
}

impl ByteRange {
    /// The bytes named, within a value of `total` bytes.
    #[must_use]
    pub fn within(self, total: u64) -> std::ops::Range<usize> {
        let (start, end) = match self {
            Self::Span { offset, len } => {
                (offset.min(total), offset.saturating_add(len).min(total))
            }
            Self::Suffix(n) => (total.saturating_sub(n), total),
        };
        usize::try_from(start).unwrap_or(usize::MAX)..usize::try_from(end).unwrap_or(usize::MAX)
    }
}

/// The operations every backend provides.
pub trait Storage: Send + Sync + std::fmt::Debug {
    /// Reads a value; `Ok(None)` when the key is absent.
    ///
    /// # Errors
    /// I/O failures.
    fn get(&self, key: &StoreKey) -> Result<Option<Vec<u8>>, StorageError>;

    /// Reads a value without copying it where the backend can (a view into
    /// a mapped pack), and without the backend's own checksum check: for
    /// values that carry their own (chunks, whose codecs check them).
    ///
    /// # Errors
    /// I/O failures, or a value that lies past the end of its file.
    fn get_view(&self, key: &StoreKey) -> Result<Option<Bytes>, StorageError> {
        Ok(self.get(key)?.map(Bytes::owned))
    }

    /// Reads part of a value, without the backend's own checksum check
    /// (as [`Storage::get_view`]): the bytes `range` names, cut at the
    /// value's end, and the value's whole length; `Ok(None)` when absent.
    /// Backends read only those bytes where they can (a file, a mapped
    /// pack; an object store's range request).
    ///
    /// # Errors
    /// I/O failures.
    fn get_range(
        &self,
        key: &StoreKey,
        range: ByteRange,
    ) -> Result<Option<(Vec<u8>, u64)>, StorageError> {
        let Some(all) = self.get_view(key)? else {
            return Ok(None);
        };
        let len = all.len() as u64;
        Ok(Some((all[range.within(len)].to_vec(), len)))
    }

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

    /// Makes everything written so far visible to other processes and
    /// durable (backends that buffer their index write it out here).
    ///
    /// # Errors
    /// I/O failures.
    fn sync(&self) -> Result<(), StorageError> {
        Ok(())
    }

    /// Reclaims the space of overwritten and removed values, for backends
    /// that keep them until told (packed). `Ok(None)`: this backend does
    /// not compact in place (folder stores free that space as they write;
    /// an hdf5 store's file keeps it until copied by `convert`).
    ///
    /// # Errors
    /// I/O, or damage that needs a repair first; the store keeps every
    /// value either way.
    fn compact(&self) -> Result<Option<CompactReport>, StorageError> {
        Ok(None)
    }

    /// Bytes free for this store's files on their file system; `Ok(None)`
    /// for backends that keep nothing on disk.
    ///
    /// # Errors
    /// I/O.
    fn available_space(&self) -> Result<Option<u64>, StorageError> {
        Ok(None)
    }

    /// A version of the value under `key` (`Ok(None)` when absent): it
    /// changes whenever other bytes are stored there, whoever stores them
    /// (this process, another Zarr writer, a byte flipped on disk, a backup
    /// restored over it), and differs between copies of the store. Cached
    /// results are served only while the versions of what they were
    /// computed from hold. Cheap: for files, one `stat`.
    ///
    /// # Errors
    /// I/O failures.
    fn version(&self, key: &StoreKey) -> Result<Option<String>, StorageError>;

    /// Where the data lives, for messages (a path, or "memory").
    fn location(&self) -> String;

    /// The backend's name: "memory", "folder", "packed" or "hdf5".
    fn backend_name(&self) -> &'static str;
}

/// A shared backend.
pub type DynStorage = Arc<dyn Storage>;

/// A file's version (see [`Storage::version`]): its identity (device,
/// inode) and its last change (size, modification and status-change times
/// in nanoseconds). Any write moves the status-change time, which no user
/// can set back, and a copy is another inode. `Ok(None)` when absent.
///
/// # Errors
/// I/O failures other than absence.
pub fn file_version(path: &std::path::Path) -> Result<Option<String>, StorageError> {
    use std::os::unix::fs::MetadataExt as _;
    match std::fs::metadata(path) {
        Ok(m) => Ok(Some(format!(
            "{:x}:{:x}:{}:{}.{}:{}.{}",
            m.dev(),
            m.ino(),
            m.size(),
            m.mtime(),
            m.mtime_nsec(),
            m.ctime(),
            m.ctime_nsec()
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StorageError::io(path, e)),
    }
}

/// The backends a store on disk can be kept in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backend {
    /// One file per chunk, readable by Zarr tools (the default).
    #[default]
    Folder,
    /// Pack files with a redb index.
    Packed,
    /// One HDF5 file.
    Hdf5,
}

impl Backend {
    /// The backend's name on the command line.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Folder => "folder",
            Self::Packed => "packed",
            Self::Hdf5 => "hdf5",
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Backend {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "folder" => Ok(Self::Folder),
            "packed" => Ok(Self::Packed),
            "hdf5" => Ok(Self::Hdf5),
            _ => Err(format!("unknown backend '{s}' (folder, packed or hdf5)")),
        }
    }
}

/// The backend of the store at `path`: an HDF5 file is an `hdf5` store, a
/// folder with the packed marker file a packed one, any other a folder.
#[must_use]
pub fn backend_of(path: &std::path::Path) -> Backend {
    if path.is_file() && hdf5::is_hdf5(path) {
        Backend::Hdf5
    } else if path.join(packed::BACKEND_FILE).exists() {
        Backend::Packed
    } else {
        Backend::Folder
    }
}

/// Opens the storage of the store at `path`, whichever backend keeps it.
///
/// # Errors
/// A missing folder, or a damaged backend marker.
pub fn open(path: &std::path::Path) -> Result<DynStorage, StorageError> {
    Ok(match backend_of(path) {
        Backend::Folder => Arc::new(FolderStorage::open(path)?),
        Backend::Packed => Arc::new(PackedStorage::open(path)?),
        Backend::Hdf5 => Arc::new(Hdf5Storage::open(path)?),
    })
}

/// Creates the storage of a new store at `path`, which must not exist or be
/// an empty folder (an `hdf5` store is a file: it must not exist).
///
/// # Errors
/// [`StorageError::NotEmpty`], or I/O.
pub fn create(path: &std::path::Path, backend: Backend) -> Result<DynStorage, StorageError> {
    Ok(match backend {
        Backend::Folder => Arc::new(FolderStorage::create_new(path)?),
        Backend::Packed => Arc::new(PackedStorage::create(path)?),
        Backend::Hdf5 => Arc::new(Hdf5Storage::create(path)?),
    })
}

#[cfg(test)]
pub(crate) mod conformance;

/// Bytes free to unprivileged users on the file system holding `path`.
///
/// # Errors
/// I/O (`path` missing, say).
#[allow(unsafe_code)]
pub(crate) fn free_space(path: &std::path::Path) -> Result<u64, StorageError> {
    use std::os::unix::ffi::OsStrExt as _;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|e| {
        StorageError::io(
            path,
            std::io::Error::new(std::io::ErrorKind::InvalidInput, e),
        )
    })?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c_path` is a NUL-terminated string that outlives the call,
    // and `stat` points to writable memory of the struct statvfs fills.
    let rc = unsafe { libc::statvfs(c_path.as_ptr(), stat.as_mut_ptr()) };
    if rc != 0 {
        return Err(StorageError::io(path, std::io::Error::last_os_error()));
    }
    // SAFETY: statvfs returned 0, so it filled every field of `stat`.
    let stat = unsafe { stat.assume_init() };
    Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
}
