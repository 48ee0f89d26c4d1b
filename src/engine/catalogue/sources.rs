//! What a result computed from a store read, so that a cached result is
//! served only while every byte it came from is unchanged.
//!
//! While a [`Recording`] of a store runs, every chunk the store reads, every
//! chunk whose presence it checks and every chunk listing it makes are
//! noted (the store's metadata and colour table always are). When the
//! recording ends, the result's *sources* are those reads with the
//! storage's version of each value ([`crate::storage::Storage::version`]:
//! for files their identity and change times) and a digest of each
//! listing. A cached result holds while the same reads give the same
//! versions: a chunk rewritten by another Zarr writer, a flipped byte, a
//! backup restored over the store, or a copy of the store (other files)
//! all make it a miss. Checking costs one `stat` per chunk read (a listing
//! is listed again).
//!
//! Several recordings may run at once on one store; each notes every read
//! made while it runs, so its sources may hold more than it read, never
//! less.

use crate::engine::Store;
use crate::engine::catalogue::cache::{Provenance, Recording};
use crate::engine::error::EngineError;
use crate::engine::persistence::palette::PALETTE_KEY;
use crate::engine::persistence::zarr::ROOT_ATTRS;
use crate::storage::{StorageError, StoreKey};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use std::collections::BTreeSet;
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

/// The reads of the recordings running on one store.
#[derive(Debug, Default)]
pub(crate) struct ReadLog {
    /// How many recordings run: reads cost nothing extra while none does.
    active: AtomicUsize,
    next: AtomicU64,
    sets: Mutex<Vec<(u64, BTreeSet<Read>)>>,
}

impl ReadLog {
    /// Notes a read for every running recording.
    pub(crate) fn note(&self, read: impl FnOnce() -> Read) {
        if self.active.load(Ordering::Acquire) == 0 {
            return;
        }
        let read = read();
        let mut sets = self.sets.lock().unwrap_or_else(PoisonError::into_inner);
        for (_, set) in sets.iter_mut() {
            set.insert(read.clone());
        }
    }

    fn start(&self) -> u64 {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.sets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((id, BTreeSet::new()));
        self.active.fetch_add(1, Ordering::Release);
        id
    }

    fn stop(&self, id: u64) -> BTreeSet<Read> {
        let mut sets = self.sets.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(at) = sets.iter().position(|(i, _)| *i == id) else {
            return BTreeSet::new();
        };
        self.active.fetch_sub(1, Ordering::Release);
        sets.swap_remove(at).1
    }
}

/// What a result was computed from: the reads, and a digest of what each
/// gave.
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
        let mut reads = self.store.reads.stop(self.id);
        // A write through gridstore while it ran: keep nothing.
        let token = self.store.state_token().ok().flatten();
        if token.is_none() || token != self.token {
            return None;
        }
        reads.extend(always());
        let reads: Vec<Read> = reads.into_iter().collect();
        let digest = self.store.digest(&reads).ok()?;
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

/// What every result of a store depends on: its metadata and colour table.
fn always() -> [Read; 2] {
    [
        Read::Value(ROOT_ATTRS.to_string()),
        Read::Value(PALETTE_KEY.to_string()),
    ]
}

impl Provenance for Store {
    fn begin(&self) -> Box<dyn Recording + '_> {
        let token = self.state_token().ok().flatten();
        let id = self.reads.start();
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
        self.digest(&sources.reads)
            .is_ok_and(|digest| digest == sources.digest)
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

    /// A digest of what `reads` give now: each value's version, each
    /// listing's keys and sizes (128 bits, as hex).
    fn digest(&self, reads: &[Read]) -> Result<String, EngineError> {
        let storage = self.storage();
        let mut a = std::hash::DefaultHasher::new();
        let mut b = crc32fast::Hasher::new();
        let mut feed = |text: &str| {
            text.hash(&mut a);
            b.update(text.as_bytes());
            b.update(&[0]);
        };
        for read in reads {
            match read {
                Read::Value(key) => {
                    let key = StoreKey::new(key).map_err(StorageError::from)?;
                    feed(key.as_str());
                    feed(storage.version(&key)?.as_deref().unwrap_or("absent"));
                }
                Read::Listing(prefix) => {
                    feed(prefix);
                    for (key, size) in storage.list(prefix)? {
                        feed(key.as_str());
                        feed(&size.to_string());
                    }
                }
            }
        }
        Ok(format!("{:016x}{:08x}", a.finish(), b.finalize()))
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
        let key = store.chunk_key(0, loc);
        let mut bytes = store.storage().get(&key).unwrap().unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        store.storage().put(&key, &bytes).unwrap();
        assert!(!store.holds(&sources), "a changed chunk is a miss");
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
