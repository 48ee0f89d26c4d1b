//! The packed backend (after 003's structchunk, done right): values are
//! appended to large sparse pack files and found through an index in redb;
//! reads go through memory maps.
//!
//! Every write is a record in a pack carrying its key, kind, sequence and
//! checksum, so the packs are a complete log: the index is brought up to
//! date from their tail when a writer opens the store, and `repair`
//! rebuilds it from scratch. Index changes are buffered and written in one
//! durable transaction at [`Storage::sync`], every few thousand changes, and
//! when the storage is dropped; readers in other processes see the store as
//! of the last such transaction. docs/FORMAT.md gives the layout.

mod compact;
mod index;
pub mod pack;
mod repair;

pub use compact::CompactReport;
pub use repair::{RepairReport, repair};

use super::memory::in_prefix;
use super::{Bytes, Storage, StorageError, StoreKey, WriterLock};
use index::{Applied, Changes, Location, Staged};
use pack::Kind;
use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

/// The file that marks a folder as a packed store.
pub const BACKEND_FILE: &str = "gridstore-backend.json";
const BACKEND_JSON: &str = r#"{"backend": "packed", "version": 1}"#;
const INDEX_FILE: &str = "index.redb";
const PACKS_DIR: &str = "packs";
const LOCK_FILE: &str = "writer.lock";
/// Disk space the store holds in reserve, so that a write failing on a full
/// disk can still record its own rollback (see [`reserve`]).
const RESERVE_FILE: &str = "reserve";
/// Bytes of the reserve: the rollback records of about 100,000 staged
/// chunks, and the index transaction that writes them down.
const RESERVE_BYTES: usize = 8 << 20;
/// Capacity of a new pack (a sparse file: only written bytes use disk).
pub const PACK_CAPACITY: u64 = 1 << 30;
/// Buffered index changes beyond which they are written out.
const FLUSH_CHANGES: usize = 8192;
/// Age of buffered index changes beyond which they are written out.
const FLUSH_AGE: Duration = Duration::from_secs(2);

/// A store kept in pack files with a redb index.
pub struct PackedStorage {
    root: PathBuf,
    capacity: u64,
    reader: Mutex<Option<Arc<redb::ReadOnlyDatabase>>>,
    writer: Mutex<Option<Writer>>,
    maps: RwLock<HashMap<u32, Arc<Mapped>>>,
}

impl std::fmt::Debug for PackedStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PackedStorage")
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

/// A pack opened for reading.
#[derive(Debug)]
pub(crate) struct Mapped {
    file: File,
    map: memmap2::Mmap,
    path: PathBuf,
}

/// The state of the one writer of this store in this process.
struct Writer {
    db: redb::Database,
    /// Held open: the OS lock lives as long as the handle.
    _lock: File,
    pack: u32,
    file: File,
    head: u64,
    capacity: u64,
    next_sequence: u64,
    changes: Changes,
    last_flush: Instant,
    /// Set while `db` is a stand-in because the index file could not be
    /// opened again after a failed transaction: every use fails until the
    /// index opens again.
    index_lost: Option<String>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("pack", &self.pack)
            .field("head", &self.head)
            .field("next_sequence", &self.next_sequence)
            .finish_non_exhaustive()
    }
}

/// The lock `lock_writer` hands out: the writer itself lives as long as the
/// storage, so dropping the lock only writes out buffered index changes.
#[derive(Debug)]
struct PackedLock;

impl WriterLock for PackedLock {}

impl PackedStorage {
    /// Creates a packed store's folder: `root` must not exist, or be empty.
    ///
    /// # Errors
    /// [`StorageError::NotEmpty`], or I/O.
    pub fn create(root: impl Into<PathBuf>) -> Result<Self, StorageError> {
        Self::create_with_capacity(root, PACK_CAPACITY)
    }

    /// [`PackedStorage::create`] with packs of `capacity` bytes (tests use
    /// small ones to exercise pack rollover).
    ///
    /// # Errors
    /// [`StorageError::NotEmpty`], or I/O.
    pub fn create_with_capacity(
        root: impl Into<PathBuf>,
        capacity: u64,
    ) -> Result<Self, StorageError> {
        let root = root.into();
        if fs::read_dir(&root).is_ok_and(|mut d| d.next().is_some()) {
            return Err(StorageError::NotEmpty { path: root });
        }
        fs::create_dir_all(root.join(PACKS_DIR)).map_err(|e| StorageError::io(&root, e))?;
        let marker = root.join(BACKEND_FILE);
        fs::write(&marker, BACKEND_JSON).map_err(|e| StorageError::io(&marker, e))?;
        let storage = Self::at(root, capacity);
        storage.with_writer(|_| Ok(()))?;
        Ok(storage)
    }

    /// Opens a packed store.
    ///
    /// # Errors
    /// A folder that is not a packed store.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, StorageError> {
        let root = root.into();
        let marker = root.join(BACKEND_FILE);
        let text = fs::read_to_string(&marker).map_err(|e| StorageError::io(&marker, e))?;
        let json: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| StorageError::Corrupt {
                path: marker.clone(),
                reason: e.to_string(),
            })?;
        if json["backend"] != "packed" || json["version"] != 1 {
            return Err(StorageError::Corrupt {
                path: marker,
                reason: format!("not a packed store of version 1: {text}"),
            });
        }
        let index = root.join(INDEX_FILE);
        if !index.exists() {
            // Created with the store: without it the packs are unreadable
            // until it is rebuilt.
            return Err(StorageError::Corrupt {
                path: index,
                reason: "missing; `gridstore repair` rebuilds it from the packs".into(),
            });
        }
        Ok(Self::at(root, PACK_CAPACITY))
    }

    fn at(root: PathBuf, capacity: u64) -> Self {
        Self {
            root,
            capacity,
            reader: Mutex::new(None),
            writer: Mutex::new(None),
            maps: RwLock::new(HashMap::new()),
        }
    }

    fn index_path(&self) -> PathBuf {
        self.root.join(INDEX_FILE)
    }

    fn packs_dir(&self) -> PathBuf {
        self.root.join(PACKS_DIR)
    }

    /// Runs `f` on the writer, opening it (taking the lock) first if needed.
    fn with_writer<R>(
        &self,
        f: impl FnOnce(&mut Writer) -> Result<R, StorageError>,
    ) -> Result<R, StorageError> {
        let mut slot = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.is_none() {
            *slot = Some(self.open_writer()?);
        }
        let writer = slot.as_mut().ok_or_else(|| StorageError::Corrupt {
            path: self.root.clone(),
            reason: "no writer".into(),
        })?;
        let index_path = self.index_path();
        writer.recover_index(&index_path)?;
        let result = f(writer)?;
        if writer.changes.live.len() + writer.changes.staged.len() >= FLUSH_CHANGES
            || writer.last_flush.elapsed() > FLUSH_AGE
        {
            writer.flush(&index_path)?;
        }
        Ok(result)
    }

    fn open_writer(&self) -> Result<Writer, StorageError> {
        let lock = take_writer_lock(&self.root)?;
        let index_path = self.index_path();
        let db = index::open_writable(&index_path)?;
        let applied = index::read_applied(&db, &index_path)?;
        let mut packs = pack_numbers(&self.packs_dir())?;
        if packs.is_empty() {
            let path = pack::pack_path(&self.packs_dir(), 1);
            pack::create(&path, 1, self.capacity)?;
            packs.push(1);
        }
        let mut changes = Changes::default();
        let mut last_sequence = applied.sequence;
        // Bring the index up to the packs: records after the last durable
        // index transaction (a writer was killed, or never flushed).
        for &number in packs.iter().filter(|n| **n >= applied.pack) {
            let mapped = self.mapped(number)?;
            let head = pack::read_head(&mapped.file, &mapped.path)?;
            let start = if number == applied.pack && applied.offset >= pack::HEADER_LEN {
                applied.offset
            } else {
                pack::HEADER_LEN
            };
            let bytes = mapped.map.get(..head.head as usize).unwrap_or(&[]);
            let mut at = start;
            while at < head.head {
                let record = pack::parse(bytes, at).map_err(|reason| StorageError::Corrupt {
                    path: mapped.path.clone(),
                    reason: format!("{reason}; run `gridstore repair`"),
                })?;
                if record.sequence > applied.sequence {
                    let value = &bytes
                        [record.value_at as usize..(record.value_at + record.value_len) as usize];
                    replay(&mut changes, &db, &index_path, number, &record, value)?;
                    last_sequence = last_sequence.max(record.sequence);
                }
                at = record.next;
            }
            last_sequence = last_sequence.max(head.last_sequence);
        }
        let current = *packs.last().unwrap_or(&1);
        let path = pack::pack_path(&self.packs_dir(), current);
        let file = File::options()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| StorageError::io(&path, e))?;
        let head = pack::read_head(&file, &path)?;
        let mut writer = Writer {
            db,
            _lock: lock,
            pack: current,
            file,
            head: head.head,
            capacity: head.capacity,
            next_sequence: last_sequence + 1,
            changes,
            last_flush: Instant::now(),
            index_lost: None,
        };
        // Durable at once, so readers see what the replay recovered.
        writer.flush_always(&index_path)?;
        // Best effort: on a disk too full for it, writes go on without.
        reserve(&self.root.join(RESERVE_FILE)).ok();
        Ok(writer)
    }

    /// The pack mapped for reading.
    fn mapped(&self, number: u32) -> Result<Arc<Mapped>, StorageError> {
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
    fn forget_map(&self, number: u32) {
        self.maps
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&number);
    }

    /// Runs `read` on where `key` lives; when its pack has vanished (a
    /// compaction in another process moved the value and deleted the
    /// pack between the lookup and the read), looks the key up again.
    fn read_located<R>(
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

    /// Where `key`'s value lives, as this process sees it.
    fn locate(&self, key: &str) -> Result<Option<Location>, StorageError> {
        let index_path = self.index_path();
        {
            let writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(w) = writer.as_ref() {
                if let Some(change) = w.changes.live.get(key) {
                    return Ok(*change);
                }
                w.check_index(&index_path)?;
                return index::read_live(&w.db, &index_path, key);
            }
        }
        match self.reader()? {
            Some(db) => index::read_live(db.as_ref(), &index_path, key),
            None => Ok(None),
        }
    }

    /// The read-only index (`None` while the store has no index yet).
    fn reader(&self) -> Result<Option<Arc<redb::ReadOnlyDatabase>>, StorageError> {
        let mut slot = self.reader.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.is_none() {
            let path = self.index_path();
            if !path.exists() {
                return Ok(None);
            }
            let db = match index::open_read_only(&path)? {
                Some(db) => db,
                None => {
                    // The last writer was killed: recover as the next
                    // writer would (replaying the packs' tail), then read.
                    drop(slot);
                    self.recover()?;
                    slot = self.reader.lock().unwrap_or_else(PoisonError::into_inner);
                    index::open_read_only(&path)?.ok_or_else(|| StorageError::Corrupt {
                        path: path.clone(),
                        reason: "the index cannot be recovered; run `gridstore repair`".into(),
                    })?
                }
            };
            *slot = Some(Arc::new(db));
        }
        Ok(slot.clone())
    }

    /// Opens the writer (which repairs the index and replays the packs'
    /// tail) and closes it again, unless this storage is the writer.
    fn recover(&self) -> Result<(), StorageError> {
        let slot = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.is_none() {
            // Opening writes the recovered index out; dropping closes it
            // and releases the lock.
            drop(self.open_writer()?);
        }
        Ok(())
    }

    /// The checked bytes of `key`'s value at `loc`.
    fn read_value(&self, key: &str, loc: Location) -> Result<Vec<u8>, StorageError> {
        let (mapped, range) = self.value_range(key, loc)?;
        let bytes = &mapped.map[range];
        if pack::checksum(key, bytes) != loc.crc {
            return Err(StorageError::Corrupt {
                path: mapped.path.clone(),
                reason: format!("{key} fails its checksum"),
            });
        }
        Ok(bytes.to_vec())
    }

    /// The pack and byte range of `key`'s value at `loc`, checked against
    /// the pack's current length.
    fn value_range(
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

    fn staged_entry(&self, w: &Writer, key: &str) -> Result<Option<Staged>, StorageError> {
        match w.changes.staged.get(key) {
            Some(change) => Ok(*change),
            None => index::read_staged(&w.db, &self.index_path(), key),
        }
    }

    /// Makes a new pack, with room for a record of `need` bytes at least,
    /// the one the writer appends to. Returns its number.
    fn start_pack(&self, w: &mut Writer, need: u64) -> Result<u32, StorageError> {
        let number = w.pack + 1;
        let capacity = self.capacity.max(need + pack::HEADER_LEN);
        let path = pack::pack_path(&self.packs_dir(), number);
        w.file = pack::create(&path, number, capacity)?;
        w.pack = number;
        w.head = pack::HEADER_LEN;
        w.capacity = capacity;
        Ok(number)
    }

    fn append(
        &self,
        w: &mut Writer,
        kind: Kind,
        key: &str,
        value: &[u8],
    ) -> Result<(u64, Location), StorageError> {
        let need = pack::record_len(key.len(), value.len());
        if w.head + need > w.capacity {
            self.start_pack(w, need)?;
        }
        let sequence = w.next_sequence;
        let crc = pack::checksum(key, value);
        let path = pack::pack_path(&self.packs_dir(), w.pack);
        let value_at = pack::append(&w.file, &path, w.head, kind, sequence, key, value, crc)?;
        w.head += need;
        w.next_sequence += 1;
        Ok((
            sequence,
            Location {
                pack: w.pack,
                value_at,
                len: value.len() as u64,
                crc,
            },
        ))
    }
}

impl Writer {
    fn flush(&mut self, index_path: &Path) -> Result<(), StorageError> {
        if self.changes.is_empty() {
            self.last_flush = Instant::now();
            return Ok(());
        }
        self.flush_always(index_path)
    }

    fn flush_always(&mut self, index_path: &Path) -> Result<(), StorageError> {
        self.recover_index(index_path)?;
        let applied = Applied {
            sequence: self.next_sequence - 1,
            pack: self.pack,
            offset: self.head,
        };
        if let Err(e) = index::apply(&self.db, index_path, &self.changes, applied) {
            // A failed transaction leaves redb refusing all further work.
            // Its last durable state is intact and the changes are still
            // buffered here: open it again and the next flush writes them.
            self.index_lost = Some(e.to_string());
            self.recover_index(index_path).ok();
            return Err(e);
        }
        self.changes = Changes::default();
        self.last_flush = Instant::now();
        Ok(())
    }

    /// Fails while the index is a stand-in (reads would find nothing).
    fn check_index(&self, index_path: &Path) -> Result<(), StorageError> {
        match &self.index_lost {
            None => Ok(()),
            Some(reason) => Err(StorageError::Corrupt {
                path: index_path.to_path_buf(),
                reason: format!("unusable after a failed write ({reason})"),
            }),
        }
    }

    /// Opens the index again after a failed transaction.
    fn recover_index(&mut self, index_path: &Path) -> Result<(), StorageError> {
        let Some(reason) = &self.index_lost else {
            return Ok(());
        };
        let reason = reason.clone();
        // Closed before it is opened again.
        drop(std::mem::replace(&mut self.db, index::placeholder()?));
        match index::open_writable(index_path) {
            Ok(db) => {
                self.db = db;
                self.index_lost = None;
                Ok(())
            }
            // A full disk stays a full disk: a rollback frees the reserve
            // and tries again.
            Err(e) if e.is_disk_full() => Err(e),
            Err(e) => Err(StorageError::Corrupt {
                path: index_path.to_path_buf(),
                reason: format!("cannot be opened again after a failed write ({reason}): {e}"),
            }),
        }
    }
}

/// Fills `path` with `RESERVE_BYTES` of incompressible bytes (so that even a
/// compressing file system allocates them), unless it is there already.
fn reserve(path: &Path) -> std::io::Result<()> {
    if fs::metadata(path).is_ok_and(|m| m.len() == RESERVE_BYTES as u64) {
        return Ok(());
    }
    let mut bytes = vec![0u8; RESERVE_BYTES];
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    for word in bytes.chunks_exact_mut(8) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        word.copy_from_slice(&state.to_le_bytes());
    }
    let result = fs::write(path, &bytes);
    if result.is_err() {
        fs::remove_file(path).ok();
    }
    result
}

impl Drop for PackedStorage {
    fn drop(&mut self) {
        let index_path = self.index_path();
        if let Some(w) = self
            .writer
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .as_mut()
        {
            // Best effort: what is not written out is replayed from the
            // packs by the next writer.
            w.flush(&index_path).ok();
        }
    }
}

/// Takes the store's single-writer lock (an OS lock on `writer.lock`, which
/// then names this process), failing at once if another process holds it.
fn take_writer_lock(root: &Path) -> Result<File, StorageError> {
    let lock_path = root.join(LOCK_FILE);
    let mut lock = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .map_err(|e| StorageError::io(&lock_path, e))?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => {
            let pid = fs::read_to_string(&lock_path)
                .ok()
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty())
                .unwrap_or_else(|| "unknown".into());
            return Err(StorageError::Locked {
                path: root.to_path_buf(),
                pid,
            });
        }
        Err(fs::TryLockError::Error(e)) => return Err(StorageError::io(&lock_path, e)),
    }
    lock.set_len(0)
        .map_err(|e| StorageError::io(&lock_path, e))?;
    write!(lock, "{}", std::process::id()).map_err(|e| StorageError::io(&lock_path, e))?;
    Ok(lock)
}

/// Applies one record to buffered changes, as the writer did when it wrote it.
fn replay(
    changes: &mut Changes,
    db: &redb::Database,
    index_path: &Path,
    pack: u32,
    record: &pack::Record,
    value: &[u8],
) -> Result<(), StorageError> {
    let loc = Location {
        pack,
        value_at: record.value_at,
        len: record.value_len,
        crc: record.crc,
    };
    let key = record.key.clone();
    match record.kind {
        Kind::Put => {
            changes.live.insert(key, Some(loc));
        }
        Kind::Delete => {
            changes.live.insert(key, None);
        }
        Kind::Stage => {
            changes.staged.insert(
                key,
                Some(Staged {
                    sequence: record.sequence,
                    value: Some(loc),
                }),
            );
        }
        Kind::StageRemoval => {
            changes.staged.insert(
                key,
                Some(Staged {
                    sequence: record.sequence,
                    value: None,
                }),
            );
        }
        Kind::Commit | Kind::Discard => {
            let target = u64::from_le_bytes(value.try_into().unwrap_or([0; 8]));
            let staged = match changes.staged.get(&key) {
                Some(s) => *s,
                None => index::read_staged(db, index_path, &key)?,
            };
            if let Some(s) = staged.filter(|s| s.sequence == target) {
                if record.kind == Kind::Commit {
                    changes.live.insert(key.clone(), s.value);
                }
                changes.staged.insert(key, None);
            }
        }
    }
    Ok(())
}

fn to_keys(found: BTreeMap<String, u64>) -> Result<Vec<(StoreKey, u64)>, StorageError> {
    found
        .into_iter()
        .map(|(k, n)| StoreKey::new(k).map(|k| (k, n)).map_err(Into::into))
        .collect()
}

impl AsRef<[u8]> for Mapped {
    fn as_ref(&self) -> &[u8] {
        &self.map
    }
}

/// The pack numbers in `dir`, ascending.
fn pack_numbers(dir: &Path) -> Result<Vec<u32>, StorageError> {
    let mut numbers: Vec<u32> = fs::read_dir(dir)
        .map_err(|e| StorageError::io(dir, e))?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.strip_suffix(".pack")?.parse().ok())
        .collect();
    numbers.sort_unstable();
    Ok(numbers)
}

#[allow(unsafe_code)]
fn map_pack(file: &File, path: &Path) -> Result<memmap2::Mmap, StorageError> {
    // SAFETY: gridstore only appends to a pack past its head and never
    // rewrites the bytes behind it, so mapped bytes do not change under a
    // reader; every read checks the file's current length before touching
    // the map (so a truncated pack is an error, not a fault) and checks
    // the bytes against their CRC-32 before returning them.
    unsafe { memmap2::Mmap::map(file) }.map_err(|e| StorageError::io(path, e))
}

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
        let file = super::file_version(&pack)?.unwrap_or_default();
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

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> StoreKey {
        StoreKey::new(s).unwrap()
    }

    #[test]
    fn a_writer_killed_before_its_index_was_written_loses_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("p");
        let s = PackedStorage::create_with_capacity(&root, 4096).unwrap();
        s.put(&key("a/1"), b"one").unwrap();
        s.sync().unwrap();
        s.put(&key("a/1"), b"uno").unwrap();
        s.put(&key("a/2"), &[9u8; 5000]).unwrap();
        s.stage(&key("a/3"), Some(b"three")).unwrap();
        s.commit(&key("a/3")).unwrap();
        s.stage(&key("a/4"), Some(b"never")).unwrap();
        s.delete(&key("a/1")).unwrap();
        s.put(&key("a/1"), b"eins").unwrap();
        // Killed: the writer goes without writing its buffered index changes.
        drop(s.writer.lock().unwrap().take());
        drop(s);
        // A reader in another process sees the last durable index: the
        // first value only.
        let reader = PackedStorage::open(&root).unwrap();
        assert_eq!(reader.get(&key("a/1")).unwrap().unwrap(), b"one");
        assert!(reader.get(&key("a/2")).unwrap().is_none());
        drop(reader);
        // The next writer replays the packs' tail.
        let s = PackedStorage::open(&root).unwrap();
        s.lock_writer().unwrap();
        assert_eq!(s.get(&key("a/1")).unwrap().unwrap(), b"eins");
        assert_eq!(s.get(&key("a/2")).unwrap().unwrap(), vec![9u8; 5000]);
        assert_eq!(s.get(&key("a/3")).unwrap().unwrap(), b"three");
        assert!(
            s.get(&key("a/4")).unwrap().is_none(),
            "staged, never committed"
        );
        assert!(s.commit(&key("a/4")).unwrap(), "still staged");
        assert_eq!(s.get(&key("a/4")).unwrap().unwrap(), b"never");
        assert!(
            pack_numbers(&root.join(PACKS_DIR)).unwrap().len() > 1,
            "rolled over"
        );
    }

    fn everything(root: &Path) -> BTreeMap<String, Vec<u8>> {
        let s = PackedStorage::open(root).unwrap();
        s.list("")
            .unwrap()
            .into_iter()
            .map(|(k, _)| {
                let v = s.get(&k).unwrap().unwrap();
                (k.to_string(), v)
            })
            .collect()
    }

    #[test]
    fn repair_rebuilds_a_lost_or_damaged_index_from_the_packs() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("p");
        let s = PackedStorage::create_with_capacity(&root, 8192).unwrap();
        for i in 0..40u32 {
            let value = vec![u8::try_from(i).unwrap(); 100 + i as usize * 37];
            s.put(&key(&format!("0/data/{}/{}", i / 8, i % 8)), &value)
                .unwrap();
        }
        s.put(&key("0/data/0/0"), b"rewritten").unwrap();
        s.delete(&key("0/data/0/1")).unwrap();
        s.stage(&key("1/data/0/0"), Some(b"committed")).unwrap();
        s.commit(&key("1/data/0/0")).unwrap();
        s.stage(&key("1/data/0/1"), Some(b"discarded")).unwrap();
        s.discard(&key("1/data/0/1")).unwrap();
        s.stage(&key("1/data/0/2"), Some(b"pending")).unwrap();
        drop(s);
        let before = everything(&root);
        assert_eq!(before["0/data/0/0"], b"rewritten");
        assert!(!before.contains_key("0/data/0/1") && !before.contains_key("1/data/0/1"));

        // Lost index.
        fs::remove_file(root.join(INDEX_FILE)).unwrap();
        let report = repair(&root).unwrap();
        assert!(report.packs > 1 && report.damaged.is_empty(), "{report:?}");
        assert_eq!(report.live_keys, before.len() as u64);
        assert_eq!(everything(&root), before);
        // The staged value survived the rebuild too.
        let s = PackedStorage::open(&root).unwrap();
        assert!(s.commit(&key("1/data/0/2")).unwrap());
        assert_eq!(s.get(&key("1/data/0/2")).unwrap().unwrap(), b"pending");
        drop(s);
        let before = everything(&root);

        // Garbage index: opening names it; repair brings the data back.
        fs::write(root.join(INDEX_FILE), vec![0xAB; 10_000]).unwrap();
        let err = PackedStorage::open(&root)
            .and_then(|s| s.get(&key("0/data/0/0")))
            .unwrap_err()
            .to_string();
        assert!(err.contains("index.redb"), "{err}");
        repair(&root).unwrap();
        assert_eq!(everything(&root), before);

        // A damaged record is skipped and named; the rest is recovered.
        let pack = pack::pack_path(&root.join(PACKS_DIR), 1);
        let file = File::options().read(true).write(true).open(&pack).unwrap();
        let mut bytes = vec![0u8; 8192];
        std::os::unix::fs::FileExt::read_exact_at(&file, &mut bytes, 0).unwrap();
        let mut at = pack::HEADER_LEN;
        let target = loop {
            let record = pack::parse(&bytes, at).unwrap();
            if record.key == "0/data/0/2" {
                break record;
            }
            at = record.next;
        };
        std::os::unix::fs::FileExt::write_all_at(&file, b"X", target.value_at).unwrap();
        drop(file);
        let report = repair(&root).unwrap();
        assert_eq!(report.damaged.len(), 1, "{report:?}");
        assert!(
            report.damaged[0].contains("00000001.pack") && report.damaged[0].contains("checksum"),
            "{report:?}"
        );
        let mut expected = before.clone();
        expected.remove("0/data/0/2");
        assert_eq!(everything(&root), expected, "only the damaged key is gone");
    }

    #[test]
    fn damaged_and_truncated_packs_are_named_never_read() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("p");
        let s = PackedStorage::create(&root).unwrap();
        s.put(&key("0/data/0/0"), &[5u8; 1000]).unwrap();
        s.sync().unwrap();
        drop(s);
        let pack = pack::pack_path(&root.join(PACKS_DIR), 1);
        // The pack is a 1 GiB sparse file: touch only its written start.
        let file = File::options().read(true).write(true).open(&pack).unwrap();
        let mut start = vec![0u8; 4096];
        std::os::unix::fs::FileExt::read_exact_at(&file, &mut start, 0).unwrap();
        let at = start.windows(4).rposition(|w| w == [5, 5, 5, 5]).unwrap();
        std::os::unix::fs::FileExt::write_all_at(&file, &[6], at as u64).unwrap();
        drop(file);
        let s = PackedStorage::open(&root).unwrap();
        let err = s.get(&key("0/data/0/0")).unwrap_err().to_string();
        assert!(
            err.contains("00000001.pack") && err.contains("fails its checksum"),
            "{err}"
        );
        drop(s);
        let file = File::options().write(true).open(&pack).unwrap();
        file.set_len(200).unwrap();
        let s = PackedStorage::open(&root).unwrap();
        let err = s.get(&key("0/data/0/0")).unwrap_err().to_string();
        assert!(err.contains("past the end of the file"), "{err}");
    }

    #[test]
    fn passes_the_conformance_suite() {
        let dir = tempfile::tempdir().unwrap();
        let n = std::sync::atomic::AtomicU32::new(0);
        crate::storage::conformance::run_all(&|| {
            let i = n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            // Small packs: the suite also crosses pack boundaries.
            Box::new(
                PackedStorage::create_with_capacity(dir.path().join(format!("p{i}")), 4096)
                    .unwrap(),
            )
        });
    }
}
