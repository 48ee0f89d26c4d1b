//! A function cache over any storage backend.
//!
//! A result is kept under the function's name and the canonical JSON of its
//! arguments (object keys sorted, no spaces), so the same call answers from
//! storage — also after a restart, when the backend is on disk. Callers
//! put in the arguments everything the result depends on. A result
//! computed from stored data also keeps its *sources*: what it read, as its
//! [`Provenance`] (a [`crate::engine::Store`]) recorded it, with the version of
//! each stored value. It is served only while the provenance says they all
//! still hold, so no result is ever stale, whoever changed the data.
//!
//! Each entry is two values: `cache/<function>/<hash>.bin`, the result's
//! array bytes, then `cache/<function>/<hash>.json`, a header with the
//! arguments, the creation time, the array's type and shape, the result's
//! JSON, and a CRC-32 of both. The header is written last and removed
//! first, so a reader sees a whole entry or none; a damaged or mismatched
//! entry is a miss. Entries are cleared by age, function or arguments, and
//! the oldest go first when the cache outgrows its limit.

use crate::engine::Array;
use crate::engine::DType;
use crate::engine::catalogue::storable::Storable;
use crate::storage::{DynStorage, StorageError, StoreKey};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where entries live in the cache's storage.
pub const CACHE_PREFIX: &str = "cache";

/// Why the cache could not read or keep an entry.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// An entry that fails its checks.
    #[error("{key}: damaged cache entry ({reason})")]
    Damaged {
        /// The storage key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// A function name that cannot be a key.
    #[error("'{function}': not a function name (use letters, digits, '_', '-', '.')")]
    BadName {
        /// The name given.
        function: String,
    },
}

/// Where a cached result's inputs come from: it records what a
/// computation reads and later tells whether all of that still holds.
pub trait Provenance: Sync {
    /// Starts recording what is read, until the recording ends.
    fn begin(&self) -> Box<dyn Recording + '_>;

    /// Whether the inputs that `sources` (from [`Recording::end`])
    /// describes are still what they were.
    fn holds(&self, sources: &Json) -> bool;
}

/// A recording started by [`Provenance::begin`]; dropped without
/// [`Recording::end`], it just stops.
pub trait Recording {
    /// Stops recording and describes what was read, or `None` when the
    /// result must not be kept (its inputs changed while it was computed).
    fn end(self: Box<Self>) -> Option<Json>;
}

/// Inputs that never change (everything is in the arguments): results are
/// kept and served unconditionally.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unconditional;

impl Provenance for Unconditional {
    fn begin(&self) -> Box<dyn Recording + '_> {
        Box::new(Unconditional)
    }

    fn holds(&self, _sources: &Json) -> bool {
        true
    }
}

impl Recording for Unconditional {
    fn end(self: Box<Self>) -> Option<Json> {
        Some(Json::Null)
    }
}

/// A cache entry's header.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Header {
    function: String,
    args: Json,
    /// What the result was computed from (see [`Provenance`]); `null` for
    /// results that depend on their arguments alone.
    #[serde(default)]
    sources: Json,
    /// Seconds since 1970.
    created: f64,
    dtype: DType,
    shape: Vec<usize>,
    extra: Json,
    /// CRC-32 of the canonical arguments and the array bytes.
    crc32: u32,
}

/// One entry, as [`FunctionCache::entries`] lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EntryInfo {
    /// The function.
    pub function: String,
    /// Its arguments.
    pub args: Json,
    /// When it was computed, in seconds since 1970.
    pub created: f64,
    /// Bytes stored.
    pub bytes: u64,
    #[serde(skip)]
    key: String,
}

/// A result with where it came from.
#[derive(Debug)]
pub struct Cached<T> {
    /// The result.
    pub value: T,
    /// Whether it came from the cache.
    pub hit: bool,
    /// What went wrong with the cache itself (a damaged entry, a failed
    /// write); the value is right either way.
    pub problem: Option<CacheError>,
}

/// Which entries [`FunctionCache::clear`] removes: those meeting every
/// condition given (no condition: all).
#[derive(Debug, Clone, Default)]
pub struct ClearFilter {
    /// Only this function's.
    pub function: Option<String>,
    /// Only those computed longer ago than this.
    pub older_than: Option<Duration>,
    /// Only those whose arguments hold these (a JSON object whose members
    /// must all be in the arguments, recursively).
    pub args: Option<Json>,
}

/// A function cache kept in a storage backend.
#[derive(Debug, Clone)]
pub struct FunctionCache {
    storage: DynStorage,
    limit: Option<u64>,
}

impl FunctionCache {
    /// A cache kept in `storage`, without a size limit.
    #[must_use]
    pub fn new(storage: DynStorage) -> Self {
        Self {
            storage,
            limit: None,
        }
    }

    /// The same cache, keeping at most `bytes`: after each new entry the
    /// oldest are removed until the rest fit.
    #[must_use]
    pub fn with_limit(mut self, bytes: u64) -> Self {
        self.limit = Some(bytes);
        self
    }

    /// The cache gridstore keeps for its user, in a folder store (safe for
    /// several processes at once): `$GRIDSTORE_CACHE_DIR`, else
    /// `$XDG_CACHE_HOME/gridstore/functions`, else
    /// `~/.cache/gridstore/functions`; at most `$GRIDSTORE_CACHE_MB`
    /// megabytes (default 1024).
    ///
    /// # Errors
    /// No home folder to put it in, or one that cannot be created.
    pub fn open_default() -> Result<Self, CacheError> {
        let dir = default_dir().ok_or_else(|| {
            CacheError::Storage(StorageError::io(
                "~/.cache",
                std::io::Error::new(std::io::ErrorKind::NotFound, "no home folder"),
            ))
        })?;
        let storage = crate::storage::FolderStorage::create(dir)?;
        let megabytes = std::env::var("GRIDSTORE_CACHE_MB")
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(1024);
        Ok(Self::new(std::sync::Arc::new(storage)).with_limit(megabytes << 20))
    }

    /// The storage the cache is kept in.
    #[must_use]
    pub fn storage(&self) -> &DynStorage {
        &self.storage
    }

    /// The result of `function` for `args`: from the cache when it holds
    /// it, else from `compute`, which is then kept. For results that depend
    /// on their arguments alone.
    ///
    /// # Errors
    /// Only `compute`'s: the cache's own failures are in
    /// [`Cached::problem`].
    pub fn call<T: Storable, E>(
        &self,
        function: &str,
        args: &Json,
        compute: impl FnOnce() -> Result<T, E>,
    ) -> Result<Cached<T>, E> {
        self.call_from(function, args, compute, &Unconditional)
    }

    /// [`FunctionCache::call`] for a result computed from data that
    /// `provenance` watches: served only while what it was computed from
    /// holds, and kept with its sources when computed.
    ///
    /// # Errors
    /// Only `compute`'s.
    pub fn call_from<T: Storable, E>(
        &self,
        function: &str,
        args: &Json,
        compute: impl FnOnce() -> Result<T, E>,
        provenance: &dyn Provenance,
    ) -> Result<Cached<T>, E> {
        let mut problem = None;
        match self.get_from::<T>(function, args, provenance) {
            Ok(Some(value)) => {
                return Ok(Cached {
                    value,
                    hit: true,
                    problem: None,
                });
            }
            Ok(None) => {}
            Err(e) => problem = Some(e),
        }
        let recording = provenance.begin();
        let value = compute()?;
        if let Some(sources) = recording.end()
            && let Err(e) = self.put_from(function, args, &value, &sources)
        {
            problem.get_or_insert(e);
        }
        Ok(Cached {
            value,
            hit: false,
            problem,
        })
    }

    /// The cached result of `function` for `args`, if any, for results
    /// that depend on their arguments alone.
    ///
    /// # Errors
    /// Storage failures, a damaged entry, or one that is not a `T`.
    pub fn get<T: Storable>(&self, function: &str, args: &Json) -> Result<Option<T>, CacheError> {
        self.get_from(function, args, &Unconditional)
    }

    /// The cached result of `function` for `args`, if any and if what it
    /// was computed from still holds (see [`Provenance::holds`]).
    ///
    /// # Errors
    /// Storage failures, a damaged entry, or one that is not a `T`.
    pub fn get_from<T: Storable>(
        &self,
        function: &str,
        args: &Json,
        provenance: &dyn Provenance,
    ) -> Result<Option<T>, CacheError> {
        let (head_key, bin_key) = keys(function, args)?;
        let Some(head) = self.storage.get(&head_key)? else {
            return Ok(None);
        };
        let damaged = |reason: String| CacheError::Damaged {
            key: head_key.to_string(),
            reason,
        };
        let header: Header =
            serde_json::from_slice(&head).map_err(|e| damaged(format!("header: {e}")))?;
        let wanted = canonical(args);
        if header.function != function || canonical(&header.args) != wanted {
            // Another call whose arguments hash alike: not this one's.
            return Ok(None);
        }
        if !provenance.holds(&header.sources) {
            // Computed from data that has changed since: stale.
            return Ok(None);
        }
        let Some(bytes) = self.storage.get(&bin_key)? else {
            return Err(damaged("its data is missing".into()));
        };
        if checksum(&wanted, &header.sources, &bytes) != header.crc32 {
            return Err(damaged("fails its checksum".into()));
        }
        let array = Array::from_le_bytes(header.dtype, header.shape, bytes)
            .map_err(|e| damaged(e.to_string()))?;
        T::from_stored(array, header.extra)
            .map(Some)
            .map_err(|e| damaged(e.to_string()))
    }

    /// Keeps `value` as the result of `function` for `args`, for results
    /// that depend on their arguments alone.
    ///
    /// # Errors
    /// A bad function name, or storage failures.
    pub fn put<T: Storable>(
        &self,
        function: &str,
        args: &Json,
        value: &T,
    ) -> Result<(), CacheError> {
        self.put_created(function, args, value, &Json::Null, now())
    }

    /// Keeps `value` as the result of `function` for `args`, computed from
    /// `sources` (as a [`Recording`] described them).
    ///
    /// # Errors
    /// A bad function name, or storage failures.
    pub fn put_from<T: Storable>(
        &self,
        function: &str,
        args: &Json,
        value: &T,
        sources: &Json,
    ) -> Result<(), CacheError> {
        self.put_created(function, args, value, sources, now())
    }

    fn put_created<T: Storable>(
        &self,
        function: &str,
        args: &Json,
        value: &T,
        sources: &Json,
        created: f64,
    ) -> Result<(), CacheError> {
        let (head_key, bin_key) = keys(function, args)?;
        let (array, extra) = value.to_stored();
        let header = Header {
            function: function.into(),
            args: args.clone(),
            sources: sources.clone(),
            created,
            dtype: array.dtype(),
            shape: array.shape().to_vec(),
            extra,
            crc32: checksum(&canonical(args), sources, array.le_bytes()),
        };
        // Data first, header last: the header makes the entry.
        self.storage.put(&bin_key, array.le_bytes())?;
        let head = serde_json::to_vec(&header).map_err(|e| CacheError::Damaged {
            key: head_key.to_string(),
            reason: e.to_string(),
        })?;
        self.storage.put(&head_key, &head)?;
        if let Some(limit) = self.limit {
            self.trim(limit)?;
        }
        Ok(())
    }

    /// Every entry, oldest first (damaged headers are left out).
    ///
    /// # Errors
    /// Storage failures.
    pub fn entries(&self) -> Result<Vec<EntryInfo>, CacheError> {
        let listed = self.storage.list(CACHE_PREFIX)?;
        let sizes: std::collections::HashMap<&str, u64> =
            listed.iter().map(|(k, n)| (k.as_str(), *n)).collect();
        let mut out = Vec::new();
        for (key, head_bytes) in &listed {
            let Some(stem) = key.as_str().strip_suffix(".json") else {
                continue;
            };
            let Some(bytes) = self.storage.get(key)? else {
                continue;
            };
            let Ok(header) = serde_json::from_slice::<Header>(&bytes) else {
                continue;
            };
            let data = sizes
                .get(format!("{stem}.bin").as_str())
                .copied()
                .unwrap_or(0);
            out.push(EntryInfo {
                function: header.function,
                args: header.args,
                created: header.created,
                bytes: head_bytes + data,
                key: stem.into(),
            });
        }
        out.sort_by(|a, b| a.created.total_cmp(&b.created));
        Ok(out)
    }

    /// Removes the entries `filter` selects, and any entry data left
    /// without its header. Returns how many entries went.
    ///
    /// # Errors
    /// Storage failures.
    pub fn clear(&self, filter: &ClearFilter) -> Result<u64, CacheError> {
        let now = now();
        let mut removed = 0;
        for entry in self.entries()? {
            let selected = filter
                .function
                .as_ref()
                .is_none_or(|f| *f == entry.function)
                && filter
                    .older_than
                    .is_none_or(|age| now - entry.created > age.as_secs_f64())
                && filter
                    .args
                    .as_ref()
                    .is_none_or(|a| contains(&entry.args, a));
            if selected {
                self.remove(&entry.key)?;
                removed += 1;
            }
        }
        self.remove_orphans()?;
        Ok(removed)
    }

    /// Removes the oldest entries until the rest take at most `limit` bytes.
    fn trim(&self, limit: u64) -> Result<(), CacheError> {
        let entries = self.entries()?;
        let mut total: u64 = entries.iter().map(|e| e.bytes).sum();
        for entry in entries {
            if total <= limit {
                break;
            }
            self.remove(&entry.key)?;
            total -= entry.bytes;
        }
        Ok(())
    }

    fn remove(&self, stem: &str) -> Result<(), CacheError> {
        // Header first: from then on the entry is gone for every reader.
        for suffix in ["json", "bin"] {
            self.storage
                .delete(&StoreKey::new(format!("{stem}.{suffix}")).map_err(StorageError::from)?)?;
        }
        Ok(())
    }

    /// Entry data whose header never got written (a killed writer).
    fn remove_orphans(&self) -> Result<(), CacheError> {
        let listed = self.storage.list(CACHE_PREFIX)?;
        let heads: std::collections::HashSet<&str> = listed
            .iter()
            .filter_map(|(k, _)| k.as_str().strip_suffix(".json"))
            .collect();
        for (key, _) in &listed {
            if let Some(stem) = key.as_str().strip_suffix(".bin")
                && !heads.contains(stem)
            {
                self.storage.delete(key)?;
            }
        }
        Ok(())
    }
}

/// Where [`FunctionCache::open_default`] keeps the cache.
#[must_use]
pub fn default_dir() -> Option<std::path::PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = var("GRIDSTORE_CACHE_DIR") {
        return Some(dir.into());
    }
    let base = var("XDG_CACHE_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| var("HOME").map(|h| std::path::PathBuf::from(h).join(".cache")))?;
    Some(base.join("gridstore").join("functions"))
}

/// The header and data keys of `function`'s entry for `args`.
fn keys(function: &str, args: &Json) -> Result<(StoreKey, StoreKey), CacheError> {
    let valid = !function.is_empty()
        && !function.starts_with('.')
        && function
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if !valid {
        return Err(CacheError::BadName {
            function: function.into(),
        });
    }
    let stem = format!("{CACHE_PREFIX}/{function}/{:016x}", fnv1a(&canonical(args)));
    let key = |suffix: &str| StoreKey::new(format!("{stem}.{suffix}")).map_err(StorageError::from);
    Ok((key("json")?, key("bin")?))
}

/// JSON with object members sorted by name and no spaces: equal arguments
/// give equal text, however they were built.
#[must_use]
pub fn canonical(value: &Json) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Json, out: &mut String) {
    match value {
        Json::Object(map) => {
            let mut members: Vec<_> = map.iter().collect();
            members.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (name, v)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Json::String(name.clone()).to_string());
                out.push(':');
                write_canonical(v, out);
            }
            out.push('}');
        }
        Json::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// Whether `args` holds every member of `wanted` (recursively for objects;
/// anything else must be equal).
fn contains(args: &Json, wanted: &Json) -> bool {
    match (args, wanted) {
        (Json::Object(have), Json::Object(want)) => want
            .iter()
            .all(|(k, w)| have.get(k).is_some_and(|h| contains(h, w))),
        (have, want) => have == want,
    }
}

/// FNV-1a, 64 bits: stable across builds and platforms (unlike std's
/// hasher), which keys on disk need.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// CRC-32 of an entry's canonical arguments, its sources (left out when
/// `null`, as in entries written before sources were kept) and its bytes.
fn checksum(args: &str, sources: &Json, bytes: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(args.as_bytes());
    if !sources.is_null() {
        hasher.update(canonical(sources).as_bytes());
    }
    hasher.update(bytes);
    hasher.finalize()
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
mod tests;
