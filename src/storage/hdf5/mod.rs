//! The `hdf5` backend: the whole store in one
//! HDF5 file, through the hdf5 crate on the system's libhdf5.
//!
//! Why HDF5 rather than NetCDF-4: NetCDF-4 is HDF5 underneath and its
//! library adds nothing gridstore needs, while it hides the one HDF5
//! feature that makes a single file safe to write and read at once:
//! single-writer/multiple-reader (SWMR) mode, whose on-disk state is
//! consistent at every moment. SWMR lets a writer only write and extend
//! datasets made beforehand, so the store is laid out as the packed
//! backend is, inside the file: records appended to `/log` (the same
//! records as in packs, each with its key, kind, sequence and CRC-32), and
//! an index in `/table_a` or `/table_b` (see [`table`]). Opening reads the
//! small `/state` vector only, whatever the number of chunks.
//!
//! Records are buffered and written at each [`Storage::sync`], every few
//! thousand changes, every 2 s and on close; then `/state` takes the new
//! head, then the index takes the changes, then `/state` says they are
//! applied. A killed writer loses nothing written before its last flush of
//! the log: the next writer replays the records past "applied". Other
//! processes read (SWMR read) what was last flushed.

mod file;
mod log;
mod read;
mod state;
mod table;
mod writer;

use super::{Storage, StorageError, StoreKey, WriterLock};
use crate::storage::record::Kind;
use log::{Changes, Target};
use read::{Lookup, Reader};
use state::State;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Instant;
use table::Side;
use writer::Writer;

pub use file::{SIGNATURE, is_hdf5};

/// Stops the HDF5 library printing its error stack on this thread (its
/// "HDF5-DIAG" blocks, which GDAL's netCDF driver triggers while probing a
/// netCDF-4 file on a thread the netCDF library did not set up). Errors
/// still come back as values. Once per thread; the setting is the
/// thread's own.
pub fn quiet_thread() {
    thread_local! {
        static QUIET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
    QUIET.with(|quiet| {
        if !quiet.replace(true) {
            hdf5::silence_errors(true);
        }
    });
}

/// A store kept in one HDF5 file.
///
/// HDF5 opens a file once per process, so every `Hdf5Storage` of one file
/// in a process shares its handles (see [`shared`]): read handles while
/// nobody writes, the writer's once one of them writes.
pub struct Hdf5Storage {
    path: PathBuf,
    /// Tells this storage apart from others of the same file.
    id: u64,
    open: Arc<Mutex<Open>>,
}

/// How this process has a store's file open.
enum Open {
    Closed,
    Reading(Reader),
    /// Writing, by the storage with this id.
    Writing(Writer, u64),
}

/// The handles of every store file open in this process.
fn shared(path: &Path) -> Arc<Mutex<Open>> {
    static OPEN: Mutex<BTreeMap<PathBuf, Weak<Mutex<Open>>>> = Mutex::new(BTreeMap::new());
    let canonical = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let mut open = OPEN.lock().unwrap_or_else(PoisonError::into_inner);
    open.retain(|_, w| w.strong_count() > 0);
    if let Some(existing) = open.get(&canonical).and_then(Weak::upgrade) {
        return existing;
    }
    let fresh = Arc::new(Mutex::new(Open::Closed));
    open.insert(canonical, Arc::downgrade(&fresh));
    fresh
}

impl std::fmt::Debug for Hdf5Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hdf5Storage")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct Hdf5Lock;

impl WriterLock for Hdf5Lock {}

impl Hdf5Storage {
    /// Creates a new store file at `path` (which must not exist).
    ///
    /// # Errors
    /// An existing file, or HDF5 failures.
    pub fn create(path: impl Into<PathBuf>) -> Result<Self, StorageError> {
        let path = path.into();
        file::create(&path)?;
        let storage = Self::at(path);
        storage.with_writer(|_, _| Ok(()))?;
        Ok(storage)
    }

    /// Opens the store file at `path`.
    ///
    /// # Errors
    /// A file that is not an HDF5 file or not a store.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, StorageError> {
        let storage = Self::at(path.into());
        // Checked at once, so a wrong file is named before any use.
        storage.read_side(|_| Ok(()))?;
        Ok(storage)
    }

    fn at(path: PathBuf) -> Self {
        static IDS: AtomicU64 = AtomicU64::new(1);
        Self {
            open: shared(&path),
            id: IDS.fetch_add(1, Ordering::Relaxed),
            path,
        }
    }

    /// The error for the file found closed just after it was opened (not
    /// expected to happen: every caller opens it first).
    fn not_open(&self) -> StorageError {
        StorageError::Corrupt {
            path: self.path.clone(),
            reason: "the file is not open".into(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn with_writer<R>(
        &self,
        f: impl FnOnce(&mut Writer, &Path) -> Result<R, StorageError>,
    ) -> Result<R, StorageError> {
        let mut open = self.lock();
        match &*open {
            Open::Writing(_, owner) if *owner != self.id => {
                return Err(StorageError::Locked {
                    path: self.path.clone(),
                    pid: std::process::id().to_string(),
                });
            }
            Open::Writing(..) => {}
            Open::Closed | Open::Reading(_) => {
                // HDF5 will not open the file for writing while it is open
                // for reading in this process.
                *open = Open::Closed;
                *open = Open::Writing(self.open_writer()?, self.id);
            }
        }
        let Open::Writing(writer, _) = &mut *open else {
            return Err(self.not_open());
        };
        let result = f(writer, &self.path)?;
        if writer.due() {
            writer.flush(&self.path)?;
        }
        Ok(result)
    }

    fn open_writer(&self) -> Result<Writer, StorageError> {
        let lock = take_lock(&self.path)?;
        let h = file::open_write(&self.path)?;
        let mut state = State::read(&h, &self.path)?;
        let log_len = h.log.size() as u64;
        if state.head > log_len {
            return Err(StorageError::Corrupt {
                path: self.path.clone(),
                reason: format!(
                    "/state places the log's head at {} but /log holds {log_len} bytes",
                    state.head
                ),
            });
        }
        state.pid = u64::from(std::process::id());
        let mut writer = Writer {
            h,
            _lock: lock,
            state,
            // Bytes past the head are a killed writer's unfinished records:
            // written over.
            log_len: state.head,
            buffer: Vec::new(),
            next_sequence: state.last_sequence + 1,
            changes: Changes::default(),
            last_flush: Instant::now(),
        };
        let mut at = state.applied;
        while at < state.head {
            let record = writer.read(at, true, &self.path)?;
            writer.replay(at, &record);
            at += record.head.record_len();
        }
        writer.state.write(&writer.h, &self.path)?;
        writer.flush(&self.path)?;
        Ok(writer)
    }

    /// Opens and closes the file as a writer would, which clears a killed
    /// writer's marks so readers can open it; unless a writer lives (it
    /// holds the lock, and its file is readable).
    fn recover(&self) -> Result<(), StorageError> {
        let lock = take_lock(&self.path)?;
        let h = file::open_write(&self.path)?;
        drop(h);
        drop(lock);
        Ok(())
    }

    /// Runs `f` with a way to locate and read records: through this
    /// process's writer when one of its storages writes the store, else
    /// through read handles refreshed to what the writer last flushed.
    fn read_side<R>(
        &self,
        f: impl Fn(&Lookup<'_>) -> Result<R, StorageError>,
    ) -> Result<R, StorageError> {
        let mut open = self.lock();
        if matches!(*open, Open::Closed) {
            let h = match file::open_read(&self.path) {
                Err(StorageError::Corrupt { reason, .. })
                    if file::left_by_a_killed_writer(&reason) =>
                {
                    self.recover()?;
                    file::open_read(&self.path)?
                }
                other => other?,
            };
            *open = Open::Reading(Reader::open(h, &self.path)?);
        }
        match &mut *open {
            Open::Writing(w, _) => f(&Lookup::Writer(w, &self.path)),
            Open::Reading(reader) => {
                reader.refresh(&self.path, false)?;
                match f(&Lookup::Reader(reader, &self.path)) {
                    // The writer moved on between our look at /state and
                    // at the index: look again, from its new state.
                    Err(StorageError::Corrupt { reason, .. })
                        if reason.contains("past the end of the log") =>
                    {
                        reader.refresh(&self.path, true)?;
                        f(&Lookup::Reader(reader, &self.path))
                    }
                    other => other,
                }
            }
            Open::Closed => Err(self.not_open()),
        }
    }
}

/// Takes the store's single-writer lock: an OS lock on the file itself
/// (HDF5's own locking is off, so readers never wait).
fn take_lock(path: &Path) -> Result<fs::File, StorageError> {
    let lock = fs::File::options()
        .read(true)
        .open(path)
        .map_err(|e| StorageError::io(path, e))?;
    let holder = || {
        file::open_read(path)
            .and_then(|h| State::read(&h, path))
            .ok()
            .map(|s| s.pid.to_string())
    };
    super::lock::take(lock, path, path, holder)
}

impl Drop for Hdf5Storage {
    fn drop(&mut self) {
        let mut open = self.lock();
        if let Open::Writing(w, owner) = &mut *open
            && *owner == self.id
        {
            // Best effort: what is not written out is lost, as with a
            // kill; what reached the log is replayed by the next writer.
            w.flush(&self.path).ok();
            *open = Open::Closed;
        }
    }
}

impl Storage for Hdf5Storage {
    fn get(&self, key: &StoreKey) -> Result<Option<Vec<u8>>, StorageError> {
        self.read_side(|look| match look.locate(Side::Live, key.as_str())? {
            Some(offset) => Ok(look.read(offset, true)?.value),
            None => Ok(None),
        })
    }

    fn get_range(
        &self,
        key: &StoreKey,
        range: super::ByteRange,
    ) -> Result<Option<(Vec<u8>, u64)>, StorageError> {
        self.read_side(|look| match look.locate(Side::Live, key.as_str())? {
            Some(offset) => Ok(Some(look.read_range(offset, range)?)),
            None => Ok(None),
        })
    }

    fn version(&self, key: &StoreKey) -> Result<Option<String>, StorageError> {
        // Where the record lies in the log, and the file's version.
        let Some(offset) = self.read_side(|look| look.locate(Side::Live, key.as_str()))? else {
            return Ok(None);
        };
        let file = super::file_version(&self.path)?.unwrap_or_default();
        Ok(Some(format!("{file}@{offset}")))
    }

    fn size(&self, key: &StoreKey) -> Result<Option<u64>, StorageError> {
        self.read_side(|look| match look.locate(Side::Live, key.as_str())? {
            Some(offset) => Ok(Some(look.read(offset, false)?.head.value_len)),
            None => Ok(None),
        })
    }

    fn put(&self, key: &StoreKey, value: &[u8]) -> Result<(), StorageError> {
        self.with_writer(|w, _| {
            let offset = w.append(Kind::Put, key.as_str(), value);
            w.changes.live.insert(key.as_str().into(), Some(offset));
            Ok(())
        })
    }

    fn delete(&self, key: &StoreKey) -> Result<(), StorageError> {
        self.with_writer(|w, path| {
            if w.locate(Side::Live, key.as_str(), path)?.is_some() {
                w.append(Kind::Delete, key.as_str(), &[]);
                w.changes.live.insert(key.as_str().into(), None);
            }
            Ok(())
        })
    }

    fn list(&self, prefix: &str) -> Result<Vec<(StoreKey, u64)>, StorageError> {
        to_keys(self.read_side(|look| look.list(prefix))?)
    }

    fn stage(&self, key: &StoreKey, value: Option<&[u8]>) -> Result<(), StorageError> {
        self.with_writer(|w, _| {
            let offset = match value {
                Some(v) => w.append(Kind::Stage, key.as_str(), v),
                None => w.append(Kind::StageRemoval, key.as_str(), &[]),
            };
            w.changes.staged.insert(key.as_str().into(), Some(offset));
            Ok(())
        })
    }

    fn commit(&self, key: &StoreKey) -> Result<bool, StorageError> {
        self.with_writer(|w, path| {
            let Some(staged) = w.locate(Side::Staged, key.as_str(), path)? else {
                return Ok(false);
            };
            let stage = w.read(staged, false, path)?;
            let target = Target {
                sequence: stage.head.sequence,
                offset: staged,
                removal: stage.head.kind == Kind::StageRemoval,
            };
            w.append(Kind::Commit, key.as_str(), &target.encode());
            let live = (stage.head.kind == Kind::Stage).then_some(staged);
            w.changes.live.insert(key.as_str().into(), live);
            w.changes.staged.insert(key.as_str().into(), None);
            Ok(true)
        })
    }

    fn discard(&self, key: &StoreKey) -> Result<(), StorageError> {
        self.with_writer(|w, path| {
            let Some(staged) = w.locate(Side::Staged, key.as_str(), path)? else {
                return Ok(());
            };
            let stage = w.read(staged, false, path)?;
            let target = Target {
                sequence: stage.head.sequence,
                offset: staged,
                removal: stage.head.kind == Kind::StageRemoval,
            };
            w.append(Kind::Discard, key.as_str(), &target.encode());
            w.changes.staged.insert(key.as_str().into(), None);
            Ok(())
        })
    }

    fn lock_writer(&self) -> Result<Box<dyn WriterLock>, StorageError> {
        self.with_writer(|_, _| Ok(()))?;
        Ok(Box::new(Hdf5Lock))
    }

    fn sync(&self) -> Result<(), StorageError> {
        match &mut *self.lock() {
            Open::Writing(w, owner) if *owner == self.id => w.flush(&self.path),
            _ => Ok(()),
        }
    }

    fn available_space(&self) -> Result<Option<u64>, StorageError> {
        let dir = self
            .path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let free = super::free_space(dir)?;
        // Records still buffered will take their room too, and so may the
        // next rebuild of the index: up to twice as many slots (16 bytes
        // each) as the active table has.
        let held = match &*self.lock() {
            Open::Writing(w, _) => w.buffer.len() as u64 + 32 * w.state.capacity,
            _ => 0,
        };
        Ok(Some(free.saturating_sub(held)))
    }

    fn location(&self) -> String {
        self.path.display().to_string()
    }

    fn backend_name(&self) -> &'static str {
        "hdf5"
    }
}

fn to_keys(found: BTreeMap<String, u64>) -> Result<Vec<(StoreKey, u64)>, StorageError> {
    found
        .into_iter()
        .map(|(k, n)| StoreKey::new(k).map(|k| (k, n)).map_err(Into::into))
        .collect()
}

#[cfg(test)]
mod tests;
