//! The packed backend: values are
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
mod maps;
pub mod pack;
mod repair;
mod replay;
mod storage;
mod writer;

pub use compact::CompactReport;
pub use repair::{RepairReport, repair};

use super::StorageError;
use index::{Location, Staged};
use maps::{Mapped, map_pack};
use replay::replay;
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use writer::{Writer, take_writer_lock};

/// The file that marks a folder as a packed store.
pub const BACKEND_FILE: &str = "gridstore-backend.json";
const BACKEND_JSON: &str = r#"{"backend": "packed", "version": 1}"#;
const INDEX_FILE: &str = "index.redb";
const PACKS_DIR: &str = "packs";
/// Capacity of a new pack (a sparse file: only written bytes use disk).
pub const PACK_CAPACITY: u64 = 1 << 30;

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

    fn staged_entry(&self, w: &Writer, key: &str) -> Result<Option<Staged>, StorageError> {
        match w.changes.staged.get(key) {
            Some(change) => Ok(*change),
            None => index::read_staged(&w.db, &self.index_path(), key),
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::record::Walk;
    use crate::storage::{Storage as _, StoreKey};
    use std::collections::BTreeMap;
    use std::fs::File;

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
        let target = Walk::new(&bytes, pack::HEADER_LEN, bytes.len() as u64)
            .map(Result::unwrap)
            .find(|record| record.key == "0/data/0/2")
            .unwrap();
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
