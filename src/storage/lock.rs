//! The single-writer lock of the on-disk backends: an OS lock (`flock`) on
//! one file, held as long as its handle lives, so a killed writer never
//! leaves a stale lock. A second writer is refused at once, with the
//! holder's process id when the backend recorded one.

use super::StorageError;
use std::fs::{File, TryLockError};
use std::path::Path;

/// Opens the file at `path`, creating it if needed, and takes its lock
/// (see [`take`]).
///
/// # Errors
/// As [`take`], or I/O opening the file.
pub fn take_at(
    path: &Path,
    store: &Path,
    holder: impl FnOnce() -> Option<String>,
) -> Result<File, StorageError> {
    let file = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| StorageError::io(path, e))?;
    take(file, path, store, holder)
}

/// Takes the OS lock on `file` (at `path`) for the store at `store`.
///
/// # Errors
/// [`StorageError::Locked`] naming the store and the holder `holder`
/// reads ("unknown" when it reads none) when another process holds it, or
/// I/O.
pub fn take(
    file: File,
    path: &Path,
    store: &Path,
    holder: impl FnOnce() -> Option<String>,
) -> Result<File, StorageError> {
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(StorageError::Locked {
            path: store.to_path_buf(),
            pid: holder().unwrap_or_else(|| "unknown".into()),
        }),
        Err(TryLockError::Error(e)) => Err(StorageError::io(path, e)),
    }
}
