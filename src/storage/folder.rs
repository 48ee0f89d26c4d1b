//! The folder backend: one file per key, laid out as a Zarr v2 hierarchy.
//!
//! A `put` writes `.<name>.<pid>-<n>.tmp` beside the target and renames it
//! over the target, so readers (in this or any other process) see the old or
//! the new file, never a torn one. Temporary names end in `.tmp` and never
//! appear in listings.

use super::memory::in_prefix;
use super::{Storage, StorageError, StoreKey, WriterLock};
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The writer lock: a small Zarr group (so Zarr readers see nothing odd)
/// whose `.zgroup` file is locked by the writer and whose `.zattrs` records
/// the writer's process id. Its keys are not part of the store's data and
/// never appear in listings.
pub const LOCK_GROUP: &str = "writer";

/// A store kept in a folder.
#[derive(Debug, Clone)]
pub struct FolderStorage {
    root: PathBuf,
    durable: bool,
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl FolderStorage {
    /// A backend rooted at `root`, which must be an existing folder.
    ///
    /// # Errors
    /// When `root` is missing or not a folder.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, StorageError> {
        let root = root.into();
        match fs::metadata(&root) {
            Ok(m) if m.is_dir() => Ok(Self {
                root,
                durable: false,
            }),
            Ok(_) => Err(StorageError::io(
                &root,
                std::io::Error::new(ErrorKind::InvalidInput, "not a folder"),
            )),
            Err(e) => Err(StorageError::io(&root, e)),
        }
    }

    /// Creates `root` (and its parents) if needed and opens it.
    ///
    /// # Errors
    /// When the folder cannot be created.
    pub fn create(root: impl Into<PathBuf>) -> Result<Self, StorageError> {
        let root = root.into();
        fs::create_dir_all(&root).map_err(|e| StorageError::io(&root, e))?;
        Self::open(root)
    }

    /// Creates a new store folder: `root` must not exist, or be an empty
    /// folder, so that nothing of a user's is written over.
    ///
    /// # Errors
    /// [`StorageError::NotEmpty`], or when the folder cannot be created.
    pub fn create_new(root: impl Into<PathBuf>) -> Result<Self, StorageError> {
        let root = root.into();
        match fs::read_dir(&root) {
            Ok(mut entries) => {
                if entries.next().is_some() {
                    return Err(StorageError::NotEmpty { path: root });
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(StorageError::io(&root, e)),
        }
        Self::create(root)
    }

    /// Removes the temporary files killed writers left behind
    /// (`.<name>.<pid>-<n>.tmp`), never staged values or removals (those
    /// belong to the write journal). Returns how many were removed. Call
    /// it holding the writer lock.
    ///
    /// # Errors
    /// I/O.
    pub fn remove_leftovers(&self) -> Result<u64, StorageError> {
        let mut removed = 0;
        let mut folders = vec![self.root.clone()];
        while let Some(folder) = folders.pop() {
            for entry in fs::read_dir(&folder).map_err(|e| StorageError::io(&folder, e))? {
                let entry = entry.map_err(|e| StorageError::io(&folder, e))?;
                let path = entry.path();
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    folders.push(path);
                    continue;
                }
                let name = entry.file_name().to_string_lossy().into_owned();
                let leftover = name.starts_with('.')
                    && name.ends_with(".tmp")
                    && !name.ends_with(".staged.tmp")
                    && !name.ends_with(".removed.tmp");
                if leftover {
                    fs::remove_file(&path).map_err(|e| StorageError::io(&path, e))?;
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }

    /// Whether every `put` is flushed to disk (`fsync`) before its rename.
    /// Off by default: atomic renames already protect against a killed
    /// process; turn it on to survive power loss as well.
    #[must_use]
    pub fn durable(mut self, durable: bool) -> Self {
        self.durable = durable;
        self
    }

    /// The store folder.
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, key: &StoreKey) -> PathBuf {
        self.root.join(key.as_str())
    }

    /// Where a staged value (`removal` false) or staged removal waits.
    fn staged_path(&self, key: &StoreKey, removal: bool) -> PathBuf {
        let path = self.path(key);
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("value")
            .to_string();
        let suffix = if removal { "removed" } else { "staged" };
        path.with_file_name(format!(".{name}.{suffix}.tmp"))
    }

    /// Writes `value` to `target` through a temporary file and a rename.
    fn replace(&self, target: &Path, value: &[u8]) -> Result<(), StorageError> {
        let dir = target.parent().unwrap_or(&self.root);
        let name = target
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("value");
        let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!(".{name}.{}-{n}.tmp", std::process::id()));
        let mut result = self.write_tmp(&tmp, value);
        if let Err(e) = &result
            && e.kind() == ErrorKind::NotFound
        {
            fs::create_dir_all(dir).map_err(|e| StorageError::io(dir, e))?;
            result = self.write_tmp(&tmp, value);
        }
        let result = result.and_then(|()| fs::rename(&tmp, target));
        if let Err(e) = result {
            // Best effort: the temporary file is invisible to readers anyway.
            fs::remove_file(&tmp).ok();
            return Err(StorageError::io(target, e));
        }
        Ok(())
    }

    fn write_tmp(&self, tmp: &Path, value: &[u8]) -> std::io::Result<()> {
        let mut file = OpenOptions::new().write(true).create_new(true).open(tmp)?;
        file.write_all(value)?;
        if self.durable {
            file.sync_data()?;
        }
        Ok(())
    }

    fn walk(&self, dir: &Path, out: &mut Vec<(StoreKey, u64)>) -> Result<(), StorageError> {
        let entries = match fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(StorageError::io(dir, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| StorageError::io(dir, e))?;
            let path = entry.path();
            let kind = entry.file_type().map_err(|e| StorageError::io(&path, e))?;
            if kind.is_dir() {
                self.walk(&path, out)?;
            } else if kind.is_file() {
                let Some(rel) = path.strip_prefix(&self.root).ok().and_then(Path::to_str) else {
                    continue;
                };
                if rel.ends_with(".tmp") || rel.starts_with(&format!("{LOCK_GROUP}/")) {
                    continue;
                }
                let size = entry
                    .metadata()
                    .map_err(|e| StorageError::io(&path, e))?
                    .len();
                if let Ok(key) = StoreKey::new(rel.replace(std::path::MAIN_SEPARATOR, "/")) {
                    out.push((key, size));
                }
            }
        }
        Ok(())
    }
}

fn remove_if_present(path: &Path) -> Result<(), StorageError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StorageError::io(path, e)),
    }
}

#[derive(Debug)]
struct FolderLock {
    // Held open: the OS lock lives as long as the handle.
    _file: File,
    /// The file naming the holder, removed on release so that a store
    /// looks exactly as before once its writer is gone.
    pid_file: PathBuf,
}

impl WriterLock for FolderLock {}

impl Drop for FolderLock {
    fn drop(&mut self) {
        // Best effort: a stale pid file is overwritten by the next writer.
        fs::remove_file(&self.pid_file).ok();
    }
}

impl Storage for FolderStorage {
    fn get(&self, key: &StoreKey) -> Result<Option<Vec<u8>>, StorageError> {
        let path = self.path(key);
        match fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StorageError::io(path, e)),
        }
    }

    fn version(&self, key: &StoreKey) -> Result<Option<String>, StorageError> {
        super::file_version(&self.path(key))
    }

    fn get_range(
        &self,
        key: &StoreKey,
        range: super::ByteRange,
    ) -> Result<Option<(Vec<u8>, u64)>, StorageError> {
        use std::os::unix::fs::FileExt as _;
        let path = self.path(key);
        let file = match fs::File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StorageError::io(path, e)),
        };
        let total = file
            .metadata()
            .map_err(|e| StorageError::io(&path, e))?
            .len();
        let span = range.within(total);
        let mut bytes = vec![0; span.len()];
        file.read_exact_at(&mut bytes, span.start as u64)
            .map_err(|e| StorageError::io(&path, e))?;
        Ok(Some((bytes, total)))
    }

    fn size(&self, key: &StoreKey) -> Result<Option<u64>, StorageError> {
        let path = self.path(key);
        match fs::metadata(&path) {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StorageError::io(path, e)),
        }
    }

    fn put(&self, key: &StoreKey, value: &[u8]) -> Result<(), StorageError> {
        self.replace(&self.path(key), value)
    }

    fn stage(&self, key: &StoreKey, value: Option<&[u8]>) -> Result<(), StorageError> {
        let (keep, drop) = (
            self.staged_path(key, value.is_none()),
            self.staged_path(key, value.is_some()),
        );
        remove_if_present(&drop)?;
        self.replace(&keep, value.unwrap_or_default())
    }

    fn commit(&self, key: &StoreKey) -> Result<bool, StorageError> {
        let target = self.path(key);
        let staged = self.staged_path(key, false);
        match fs::rename(&staged, &target) {
            Ok(()) => return Ok(true),
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(StorageError::io(staged, e)),
        }
        let removal = self.staged_path(key, true);
        if fs::metadata(&removal).is_err() {
            return Ok(false);
        }
        remove_if_present(&target)?;
        remove_if_present(&removal)?;
        Ok(true)
    }

    fn discard(&self, key: &StoreKey) -> Result<(), StorageError> {
        remove_if_present(&self.staged_path(key, false))?;
        remove_if_present(&self.staged_path(key, true))
    }

    fn delete(&self, key: &StoreKey) -> Result<(), StorageError> {
        let path = self.path(key);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StorageError::io(path, e)),
        }
    }

    fn list(&self, prefix: &str) -> Result<Vec<(StoreKey, u64)>, StorageError> {
        let mut out = Vec::new();
        let start = prefix.trim_end_matches('/');
        self.walk(&self.root.join(start), &mut out)?;
        out.retain(|(k, _)| in_prefix(k.as_str(), prefix));
        out.sort();
        Ok(out)
    }

    fn lock_writer(&self) -> Result<Box<dyn WriterLock>, StorageError> {
        let dir = self.root.join(LOCK_GROUP);
        fs::create_dir_all(&dir).map_err(|e| StorageError::io(&dir, e))?;
        let path = dir.join(".zgroup");
        let pid_key = StoreKey::new(format!("{LOCK_GROUP}/.zattrs"))?;
        let holder = || {
            let bytes = self.get(&pid_key).ok().flatten()?;
            let v = serde_json::from_slice::<serde_json::Value>(&bytes).ok()?;
            v.get("pid")
                .and_then(serde_json::Value::as_u64)
                .map(|p| p.to_string())
        };
        let mut file = super::lock::take_at(&path, &self.root, holder)?;
        if file.metadata().map(|m| m.len()).unwrap_or(0) == 0 {
            file.write_all(br#"{"zarr_format": 2}"#)
                .map_err(|e| StorageError::io(&path, e))?;
        }
        let pid = format!(r#"{{"pid": {}}}"#, std::process::id());
        self.put(&pid_key, pid.as_bytes())?;
        Ok(Box::new(FolderLock {
            _file: file,
            pid_file: self.path(&pid_key),
        }))
    }

    fn available_space(&self) -> Result<Option<u64>, StorageError> {
        super::free_space(&self.root).map(Some)
    }

    fn location(&self) -> String {
        self.root.display().to_string()
    }

    fn backend_name(&self) -> &'static str {
        "folder"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_the_conformance_suite() {
        super::super::conformance::run_all(&|| {
            let dir = tempfile::tempdir().unwrap();
            let storage = FolderStorage::open(dir.path()).unwrap();
            // Keep the folder alive for the test's duration.
            std::mem::forget(dir);
            Box::new(storage)
        });
    }

    #[test]
    fn failed_put_leaves_the_old_value() {
        let dir = tempfile::tempdir().unwrap();
        let storage = FolderStorage::open(dir.path()).unwrap();
        let key = StoreKey::new("a/b").unwrap();
        storage.put(&key, b"old").unwrap();
        // A folder where the value's parent should be makes the write fail.
        let blocked = StoreKey::new("a/b/c").unwrap();
        assert!(storage.put(&blocked, b"x").is_err());
        assert_eq!(storage.get(&key).unwrap().unwrap(), b"old");
        assert_eq!(
            storage.list("").unwrap().len(),
            1,
            "no temporary file is left behind"
        );
    }
}
