//! What a result computed from a store read, so that a cached result is
//! served only while every byte it came from is unchanged.
//!
//! While a [`Recording`] of a store runs, every chunk the store reads, every
//! chunk whose presence it checks and every chunk listing it makes are
//! noted, each with its version *before* it is read: the storage's version
//! of the value ([`crate::storage::Storage::version`]: for files their
//! identity and change times), or a digest of the listing. The store's
//! metadata and colour table are always among them. When the recording
//! ends, the result is kept only if every version is still the one noted
//! (nothing changed while it was computed, whoever changed it), with a
//! digest of them all as its *sources*. A cached result holds while the
//! same reads give the same digest: a chunk rewritten by another Zarr
//! writer, a flipped byte, a backup restored over the store, or a copy of
//! the store (other files) all make it a miss. Checking costs one `stat`
//! per chunk read (a listing is listed again).
//!
//! Several recordings may run at once on one store; each notes every read
//! made while it runs, so its sources may hold more than it read, never
//! less. A cached result served while a recording runs (an export built on
//! cached reads) adds its own sources to the recording.

use crate::engine::Store;
use crate::engine::catalogue::cache::{Provenance, Recording};
use crate::engine::error::EngineError;
use crate::engine::persistence::band_info::BAND_INFO_KEY;
use crate::engine::persistence::palette::PALETTE_KEY;
use crate::storage::{StorageError, StoreKey};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use std::collections::BTreeMap;
use std::hash::{Hash as _, Hasher as _};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

/// One read a result depended on.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Read {
    /// The value under a key (or its absence).
    Value(String),
    /// The keys and sizes listed under a prefix.
    Listing(String),
}

/// What a version could not be read as: never equal to a real one.
const UNREADABLE: &str = "\u{0}unreadable";

/// The reads of the recordings running on one store, each with the version
/// it had when first read.
#[derive(Debug, Default)]
pub(crate) struct ReadLog {
    /// How many recordings run: reads cost nothing extra while none does.
    active: AtomicUsize,
    next: AtomicU64,
    sets: Mutex<Vec<(u64, BTreeMap<Read, String>)>>,
}

impl ReadLog {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(u64, BTreeMap<Read, String>)>> {
        self.sets.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds `read` at `version` to every running recording that lacks it.
    fn insert(&self, read: &Read, version: &str) {
        for (_, set) in self.lock().iter_mut() {
            set.entry(read.clone())
                .or_insert_with(|| version.to_string());
        }
    }

    /// Whether every running recording has `read` already.
    fn known(&self, read: &Read) -> bool {
        self.lock().iter().all(|(_, set)| set.contains_key(read))
    }

    fn start(&self) -> u64 {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.lock().push((id, BTreeMap::new()));
        self.active.fetch_add(1, Ordering::Release);
        id
    }

    fn stop(&self, id: u64) -> BTreeMap<Read, String> {
        let mut sets = self.lock();
        let Some(at) = sets.iter().position(|(i, _)| *i == id) else {
            return BTreeMap::new();
        };
        self.active.fetch_sub(1, Ordering::Release);
        sets.swap_remove(at).1
    }
}

/// What a result was computed from: the reads, and a digest of the version
/// of each.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Sources {
    reads: Vec<Read>,
    digest: String,
}

/// A recording of the reads of one store.
struct StoreRecording<'a> {
    store: &'a Store,
    id: u64,
    /// The store's contents token when the recording began.
    token: Option<String>,
    ended: bool,
}

impl Recording for StoreRecording<'_> {
    fn end(mut self: Box<Self>) -> Option<Json> {
        self.ended = true;
        let noted = self.store.reads.stop(self.id);
        // A write through gridstore while it ran, or a view of the store
        // that another writer made stale: keep nothing.
        let token = self.store.state_token().ok().flatten();
        if token.is_none() || token != self.token {
            return None;
        }
        // Kept only if nothing it read changed while it was computed.
        let unchanged = noted.iter().all(|(read, version)| {
            version != UNREADABLE && self.store.version_of(read) == *version
        });
        if !unchanged {
            return None;
        }
        let digest = digest(noted.iter().map(|(r, v)| (r, v.as_str())));
        let reads = noted.into_keys().collect();
        serde_json::to_value(Sources { reads, digest }).ok()
    }
}

impl Drop for StoreRecording<'_> {
    fn drop(&mut self) {
        if !self.ended {
            self.store.reads.stop(self.id);
        }
    }
}

/// What every result of a store depends on: its root metadata, colour
/// table and band descriptions.
fn always(store: &Store) -> [Read; 3] {
    [
        Read::Value(store.layout().root_key().to_string()),
        Read::Value(PALETTE_KEY.to_string()),
        Read::Value(BAND_INFO_KEY.to_string()),
    ]
}

/// A digest of reads and their versions (128 bits, as hex).
fn digest<'a>(pairs: impl Iterator<Item = (&'a Read, &'a str)>) -> String {
    let mut a = std::hash::DefaultHasher::new();
    let mut b = crc32fast::Hasher::new();
    for (read, version) in pairs {
        for text in [format!("{read:?}").as_str(), version] {
            text.hash(&mut a);
            b.update(text.as_bytes());
            b.update(&[0]);
        }
    }
    format!("{:016x}{:08x}", a.finish(), b.finalize())
}

impl Provenance for Store {
    fn begin(&self) -> Box<dyn Recording + '_> {
        let token = self.state_token().ok().flatten();
        let id = self.reads.start();
        for read in always(self) {
            self.note_read(|| read);
        }
        Box::new(StoreRecording {
            store: self,
            id,
            token,
            ended: false,
        })
    }

    fn holds(&self, sources: &Json) -> bool {
        let Ok(sources) = serde_json::from_value::<Sources>(sources.clone()) else {
            // An entry without sources, or from another kind of input.
            return false;
        };
        let versions: Vec<String> = sources.reads.iter().map(|r| self.version_of(r)).collect();
        let now = digest(
            sources
                .reads
                .iter()
                .zip(versions.iter().map(String::as_str)),
        );
        if now != sources.digest {
            return false;
        }
        // Served inside a running recording: what it came from joins it.
        if self.reads.active.load(Ordering::Acquire) > 0 {
            for (read, version) in sources.reads.iter().zip(&versions) {
                self.reads.insert(read, version);
            }
        }
        true
    }
}

impl Store {
    /// Where the store is, as an absolute path: results cached for copies
    /// of one store (which share its contents token) are kept apart by it,
    /// so that each copy's stay cached.
    #[must_use]
    pub fn place(&self) -> String {
        let location = self.location();
        std::path::absolute(&location).map_or(location, |p| p.display().to_string())
    }

    /// Notes a read for the running recordings, with its version now:
    /// called before the read itself, so a change in between shows.
    pub(crate) fn note_read(&self, read: impl FnOnce() -> Read) {
        if self.reads.active.load(Ordering::Acquire) == 0 {
            return;
        }
        let read = read();
        if self.reads.known(&read) {
            return;
        }
        let version = self.version_of(&read);
        self.reads.insert(&read, &version);
    }

    /// The version of what `read` reads: the value's storage version, or a
    /// digest of the listing's keys and sizes.
    fn version_of(&self, read: &Read) -> String {
        self.try_version_of(read)
            .unwrap_or_else(|_| UNREADABLE.to_string())
    }

    fn try_version_of(&self, read: &Read) -> Result<String, EngineError> {
        let storage = self.storage();
        Ok(match read {
            Read::Value(key) => {
                let key = StoreKey::new(key).map_err(StorageError::from)?;
                storage.version(&key)?.unwrap_or_else(|| "absent".into())
            }
            Read::Listing(prefix) => {
                let mut hasher = std::hash::DefaultHasher::new();
                for (key, size) in storage.list(prefix)? {
                    key.as_str().hash(&mut hasher);
                    size.hash(&mut hasher);
                }
                format!("listing:{:016x}", hasher.finish())
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::grid::structure::tests::sample;
    use crate::engine::{ChunkLoc, Window};
    use crate::storage::MemoryStorage;
    use ndarray::Array3;
    use std::sync::Arc;

    fn store() -> Store {
        let store = Store::create(Arc::new(MemoryStorage::new()), sample()).unwrap();
        let w = Window {
            row: 0,
            col: 0,
            rows: 8,
            cols: 8,
        };
        store
            .write(None, w, Array3::from_elem((1, 8, 8), 5.0f32).view())
            .unwrap();
        store
    }

    #[test]
    fn sources_hold_until_a_value_read_changes() {
        let store = store();
        let loc = ChunkLoc::new(0, 0, 0);
        let recording = store.begin();
        store.read_chunk::<f32>(0, loc).unwrap();
        let sources = recording.end().expect("kept");
        assert!(store.holds(&sources));
        assert!(!store.holds(&Json::Null), "no sources: nothing to trust");
        // Another writer changes the chunk's bytes behind the store's back.
        change_behind_its_back(&store, loc);
        assert!(!store.holds(&sources), "a changed chunk is a miss");
    }

    /// Flips the last byte of a chunk behind the store's back.
    fn change_behind_its_back(store: &Store, loc: ChunkLoc) {
        let key = store.chunk_key(0, loc).unwrap();
        let mut bytes = store.storage().get(&key).unwrap().unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        store.storage().put(&key, &bytes).unwrap();
    }

    #[test]
    fn a_chunk_changed_while_a_result_is_computed_keeps_nothing() {
        let store = store();
        let loc = ChunkLoc::new(0, 0, 0);
        let recording = store.begin();
        store.read_chunk::<f32>(0, loc).unwrap();
        change_behind_its_back(&store, loc);
        assert!(
            recording.end().is_none(),
            "computed from bytes no longer there"
        );
    }

    #[test]
    fn a_cached_result_served_inside_a_recording_brings_its_sources() {
        use crate::engine::FunctionCache;
        let store = store();
        let cache = FunctionCache::new(Arc::new(MemoryStorage::new()));
        let loc = ChunkLoc::new(0, 0, 0);
        let read = || {
            store
                .read_chunk::<f32>(0, loc)
                .map(|c| c.map_or(0.0, |c| f64::from(c[[0, 0, 0]])))
        };
        let inner = serde_json::json!({"what": "the first cell"});
        let first = cache.call_from("cell", &inner, read, &store).unwrap();
        assert!(!first.hit);
        // An outer result built on the cached one: its own reads are none.
        let outer = store.begin();
        let again = cache.call_from("cell", &inner, read, &store).unwrap();
        assert!(again.hit);
        let sources = outer.end().expect("kept");
        assert!(store.holds(&sources));
        change_behind_its_back(&store, loc);
        assert!(
            !store.holds(&sources),
            "the outer result depends on the chunk behind the cached one"
        );
    }

    #[test]
    fn a_write_during_a_recording_keeps_nothing_and_reads_stop_being_noted() {
        let store = store();
        let recording = store.begin();
        let w = Window {
            row: 0,
            col: 0,
            rows: 2,
            cols: 2,
        };
        store
            .write(None, w, Array3::from_elem((1, 2, 2), 9.0f32).view())
            .unwrap();
        assert!(recording.end().is_none());
        assert_eq!(store.reads.active.load(Ordering::Relaxed), 0);
        // A dropped recording stops too.
        drop(store.begin());
        assert_eq!(store.reads.active.load(Ordering::Relaxed), 0);
    }
}
