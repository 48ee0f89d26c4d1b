//! The one writer of a packed store in this process: it takes the lock,
//! brings the index up to the packs' tail, appends records to the current
//! pack (starting a new one when it is full), and buffers index changes,
//! writing them in one durable transaction every few thousand changes,
//! every few seconds, at `sync` and when dropped.

use super::index::{self, Applied, Changes, Location};
use super::{PackedStorage, pack, pack_numbers, replay};
use crate::storage::record::{self, Kind, Walk};
use crate::storage::{StorageError, WriterLock};
use std::fs::{self, File};
use std::io::Write as _;
use std::path::Path;
use std::sync::PoisonError;
use std::time::{Duration, Instant};

pub(super) const LOCK_FILE: &str = "writer.lock";
/// Disk space the store holds in reserve, so that a write failing on a full
/// disk can still record its own rollback (see [`reserve`]).
pub(super) const RESERVE_FILE: &str = "reserve";
/// Bytes of the reserve: the rollback records of about 100,000 staged
/// chunks, and the index transaction that writes them down.
pub(super) const RESERVE_BYTES: usize = 8 << 20;
/// Buffered index changes beyond which they are written out.
pub(super) const FLUSH_CHANGES: usize = 8192;
/// Age of buffered index changes beyond which they are written out.
pub(super) const FLUSH_AGE: Duration = Duration::from_secs(2);

/// The state of the one writer of this store in this process.
pub(super) struct Writer {
    pub(super) db: redb::Database,
    /// Held open: the OS lock lives as long as the handle.
    pub(super) _lock: File,
    pub(super) pack: u32,
    pub(super) file: File,
    pub(super) head: u64,
    pub(super) capacity: u64,
    pub(super) next_sequence: u64,
    pub(super) changes: Changes,
    pub(super) last_flush: Instant,
    /// Set while `db` is a stand-in because the index file could not be
    /// opened again after a failed transaction: every use fails until the
    /// index opens again.
    pub(super) index_lost: Option<String>,
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
pub(super) struct PackedLock;

impl WriterLock for PackedLock {}

impl PackedStorage {
    /// Runs `f` on the writer, opening it (taking the lock) first if needed.
    pub(super) fn with_writer<R>(
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

    pub(super) fn open_writer(&self) -> Result<Writer, StorageError> {
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
            for record in Walk::new(bytes, start, head.head) {
                let record = record.map_err(|reason| StorageError::Corrupt {
                    path: mapped.path.clone(),
                    reason: format!("{reason}; run `gridstore repair`"),
                })?;
                if record.sequence > applied.sequence {
                    let value = &bytes
                        [record.value_at as usize..(record.value_at + record.value_len) as usize];
                    replay(&mut changes, &db, &index_path, number, &record, value)?;
                    last_sequence = last_sequence.max(record.sequence);
                }
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

    /// Makes a new pack, with room for a record of `need` bytes at least,
    /// the one the writer appends to. Returns its number.
    pub(super) fn start_pack(&self, w: &mut Writer, need: u64) -> Result<u32, StorageError> {
        let number = w.pack + 1;
        let capacity = self.capacity.max(need + pack::HEADER_LEN);
        let path = pack::pack_path(&self.packs_dir(), number);
        w.file = pack::create(&path, number, capacity)?;
        w.pack = number;
        w.head = pack::HEADER_LEN;
        w.capacity = capacity;
        Ok(number)
    }

    pub(super) fn append(
        &self,
        w: &mut Writer,
        kind: Kind,
        key: &str,
        value: &[u8],
    ) -> Result<(u64, Location), StorageError> {
        let need = record::record_len(key.len(), value.len());
        if w.head + need > w.capacity {
            self.start_pack(w, need)?;
        }
        let sequence = w.next_sequence;
        let crc = record::checksum(key, value);
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
    pub(super) fn flush(&mut self, index_path: &Path) -> Result<(), StorageError> {
        if self.changes.is_empty() {
            self.last_flush = Instant::now();
            return Ok(());
        }
        self.flush_always(index_path)
    }

    pub(super) fn flush_always(&mut self, index_path: &Path) -> Result<(), StorageError> {
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
    pub(super) fn check_index(&self, index_path: &Path) -> Result<(), StorageError> {
        match &self.index_lost {
            None => Ok(()),
            Some(reason) => Err(StorageError::Corrupt {
                path: index_path.to_path_buf(),
                reason: format!("unusable after a failed write ({reason})"),
            }),
        }
    }

    /// Opens the index again after a failed transaction.
    pub(super) fn recover_index(&mut self, index_path: &Path) -> Result<(), StorageError> {
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
pub(super) fn reserve(path: &Path) -> std::io::Result<()> {
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

/// Takes the store's single-writer lock (an OS lock on `writer.lock`, which
/// then names this process), failing at once if another process holds it.
pub(super) fn take_writer_lock(root: &Path) -> Result<File, StorageError> {
    let lock_path = root.join(LOCK_FILE);
    let holder = || {
        fs::read_to_string(&lock_path)
            .ok()
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
    };
    let mut lock = crate::storage::lock::take_at(&lock_path, root, holder)?;
    lock.set_len(0)
        .map_err(|e| StorageError::io(&lock_path, e))?;
    write!(lock, "{}", std::process::id()).map_err(|e| StorageError::io(&lock_path, e))?;
    Ok(lock)
}
