//! The packed backend's index in redb: where each key's value lives, what
//! is staged, and how far into the packs the index has been brought.
//!
//! The packs are the log; the index is rebuilt from them by `repair` and
//! brought up to date from their tail when a writer opens the store.

use super::super::StorageError;
use redb::{ReadableDatabase, TableDefinition};
use std::collections::BTreeMap;
use std::path::Path;

const LIVE: TableDefinition<&str, &[u8]> = TableDefinition::new("live");
const STAGED: TableDefinition<&str, &[u8]> = TableDefinition::new("staged");
const STATE: TableDefinition<&str, u64> = TableDefinition::new("state");

/// Where a value lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    /// The pack number.
    pub pack: u32,
    /// Where the value starts in the pack.
    pub value_at: u64,
    /// Value bytes.
    pub len: u64,
    /// CRC-32 of key ‖ value.
    pub crc: u32,
}

impl Location {
    fn encode(self) -> [u8; 24] {
        let mut out = [0u8; 24];
        out[..4].copy_from_slice(&self.pack.to_le_bytes());
        out[4..12].copy_from_slice(&self.value_at.to_le_bytes());
        out[12..20].copy_from_slice(&self.len.to_le_bytes());
        out[20..].copy_from_slice(&self.crc.to_le_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        let bytes: &[u8; 24] = bytes.try_into().ok()?;
        Some(Self {
            pack: u32::from_le_bytes(bytes[..4].try_into().ok()?),
            value_at: u64::from_le_bytes(bytes[4..12].try_into().ok()?),
            len: u64::from_le_bytes(bytes[12..20].try_into().ok()?),
            crc: u32::from_le_bytes(bytes[20..].try_into().ok()?),
        })
    }
}

/// A staged change: the sequence of its record, and the value (`None`: a
/// staged removal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Staged {
    /// The stage record's sequence.
    pub sequence: u64,
    /// The staged value.
    pub value: Option<Location>,
}

impl Staged {
    fn encode(self) -> Vec<u8> {
        let mut out = self.sequence.to_le_bytes().to_vec();
        if let Some(loc) = self.value {
            out.extend_from_slice(&loc.encode());
        }
        out
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        let sequence = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?);
        let value = match bytes.len() {
            8 => None,
            32 => Some(Location::decode(&bytes[8..])?),
            _ => return None,
        };
        Some(Self { sequence, value })
    }
}

/// How far the index has taken the packs into account.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    /// The last record sequence applied.
    pub sequence: u64,
    /// The pack holding the next record to apply.
    pub pack: u32,
    /// Its offset there.
    pub offset: u64,
}

/// Changes not yet written to the index: `None` removes the entry.
#[derive(Debug, Default, Clone)]
pub struct Changes {
    /// Live entries.
    pub live: BTreeMap<String, Option<Location>>,
    /// Staged entries.
    pub staged: BTreeMap<String, Option<Staged>>,
}

impl Changes {
    /// Whether there is nothing to write.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.live.is_empty() && self.staged.is_empty()
    }
}

/// A redb failure as a storage error: its I/O errors stay I/O errors (a
/// full disk is told apart from damage), the rest name the index.
fn redb_error(path: &Path, e: impl Into<redb::Error>) -> StorageError {
    match e.into() {
        redb::Error::Io(error) => StorageError::io(path, error),
        other => StorageError::Corrupt {
            path: path.to_path_buf(),
            reason: format!("index: {other}"),
        },
    }
}

fn damaged(path: &Path, key: &str) -> StorageError {
    StorageError::Corrupt {
        path: path.to_path_buf(),
        reason: format!("index: entry of {key} is damaged"),
    }
}

/// Where `key`'s live value lives, read from either kind of database.
pub fn read_live(
    db: &dyn ReadableDatabase,
    path: &Path,
    key: &str,
) -> Result<Option<Location>, StorageError> {
    read_entry(db, path, LIVE, key, Location::decode)
}

/// The staged entry of `key`, if any.
pub fn read_staged(
    db: &dyn ReadableDatabase,
    path: &Path,
    key: &str,
) -> Result<Option<Staged>, StorageError> {
    read_entry(db, path, STAGED, key, Staged::decode)
}

/// `key`'s entry of `table`, decoded; a missing table holds nothing.
fn read_entry<T>(
    db: &dyn ReadableDatabase,
    path: &Path,
    table: TableDefinition<&str, &[u8]>,
    key: &str,
    decode: fn(&[u8]) -> Option<T>,
) -> Result<Option<T>, StorageError> {
    let txn = db.begin_read().map_err(|e| redb_error(path, e))?;
    let table = match txn.open_table(table) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(e) => return Err(redb_error(path, e)),
    };
    let found = table.get(key).map_err(|e| redb_error(path, e))?;
    match found {
        None => Ok(None),
        Some(v) => decode(v.value())
            .map(Some)
            .ok_or_else(|| damaged(path, key)),
    }
}

/// Every live key starting with `prefix`, with its location, sorted.
pub fn list_live(
    db: &dyn ReadableDatabase,
    path: &Path,
    prefix: &str,
) -> Result<Vec<(String, Location)>, StorageError> {
    let txn = db.begin_read().map_err(|e| redb_error(path, e))?;
    let table = match txn.open_table(LIVE) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
        Err(e) => return Err(redb_error(path, e)),
    };
    let mut out = Vec::new();
    for entry in table.range(prefix..).map_err(|e| redb_error(path, e))? {
        let (k, v) = entry.map_err(|e| redb_error(path, e))?;
        let key = k.value();
        if !key.starts_with(prefix) {
            break;
        }
        let loc = Location::decode(v.value()).ok_or_else(|| damaged(path, key))?;
        out.push((key.to_string(), loc));
    }
    Ok(out)
}

/// How far the index has applied the packs.
pub fn read_applied(db: &dyn ReadableDatabase, path: &Path) -> Result<Applied, StorageError> {
    let txn = db.begin_read().map_err(|e| redb_error(path, e))?;
    let table = match txn.open_table(STATE) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Applied::default()),
        Err(e) => return Err(redb_error(path, e)),
    };
    let get = |name: &str| -> Result<u64, StorageError> {
        Ok(table
            .get(name)
            .map_err(|e| redb_error(path, e))?
            .map_or(0, |v| v.value()))
    };
    Ok(Applied {
        sequence: get("sequence")?,
        pack: u32::try_from(get("pack")?).unwrap_or(0),
        offset: get("offset")?,
    })
}

/// Writes `changes` and the new `applied` position in one durable
/// transaction.
pub fn apply(
    db: &redb::Database,
    path: &Path,
    changes: &Changes,
    applied: Applied,
) -> Result<(), StorageError> {
    let txn = db.begin_write().map_err(|e| redb_error(path, e))?;
    {
        let mut live = txn.open_table(LIVE).map_err(|e| redb_error(path, e))?;
        for (key, loc) in &changes.live {
            match loc {
                Some(loc) => {
                    live.insert(key.as_str(), &loc.encode()[..])
                        .map_err(|e| redb_error(path, e))?;
                }
                None => {
                    live.remove(key.as_str()).map_err(|e| redb_error(path, e))?;
                }
            }
        }
        let mut staged = txn.open_table(STAGED).map_err(|e| redb_error(path, e))?;
        for (key, entry) in &changes.staged {
            match entry {
                Some(entry) => {
                    staged
                        .insert(key.as_str(), &entry.encode()[..])
                        .map_err(|e| redb_error(path, e))?;
                }
                None => {
                    staged
                        .remove(key.as_str())
                        .map_err(|e| redb_error(path, e))?;
                }
            }
        }
        let mut state = txn.open_table(STATE).map_err(|e| redb_error(path, e))?;
        for (name, value) in [
            ("sequence", applied.sequence),
            ("pack", u64::from(applied.pack)),
            ("offset", applied.offset),
        ] {
            state.insert(name, value).map_err(|e| redb_error(path, e))?;
        }
    }
    txn.commit().map_err(|e| redb_error(path, e))
}

/// An empty in-memory database, to stand in while the index file is closed
/// and opened again.
pub fn placeholder() -> Result<redb::Database, StorageError> {
    redb::Database::builder()
        .create_with_backend(redb::backends::InMemoryBackend::new())
        .map_err(|e| redb_error(Path::new("memory"), e))
}

/// Opens the index for writing (one writing process; readers may share it).
pub fn open_writable(path: &Path) -> Result<redb::Database, StorageError> {
    redb::Database::builder()
        .set_concurrency_mode(redb::ConcurrencyMode::SingleWriter)
        .create(path)
        .map_err(|e| redb_error(path, e))
}

/// Opens the index for reading, beside any writer. `Ok(None)` when the
/// index needs the repair only a writer can do (its last writer died).
pub fn open_read_only(path: &Path) -> Result<Option<redb::ReadOnlyDatabase>, StorageError> {
    match redb::Database::builder()
        .set_concurrency_mode(redb::ConcurrencyMode::SingleWriter)
        .open_read_only(path)
    {
        Ok(db) => Ok(Some(db)),
        Err(redb::DatabaseError::RepairAborted) => Ok(None),
        Err(e) => Err(redb_error(path, e)),
    }
}
