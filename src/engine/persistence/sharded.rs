//! Where a chunk lies in storage, in either layout, and the shard side of
//! chunk I/O: reading one inner chunk with two range reads, and writing a
//! shard whole once per write.
//!
//! A write stages inner chunks here (in memory, per shard) rather than in
//! storage; the block that owns a shard writes it, staged, when the block
//! is done ([`Store::flush_shards`]). Writes outside the write protocol
//! (a conversion) put whole shards directly.

use crate::engine::Store;
use crate::engine::error::EngineError;
use crate::engine::grid::ChunkLoc;
use crate::engine::persistence::codec::DecodeError;
use crate::engine::persistence::footprint::Footprint;
use crate::engine::persistence::shard;
use crate::engine::persistence::{zarr, zarr3};
use crate::storage::{ByteRange, StoreKey};
use std::collections::{BTreeMap, HashMap};

/// Where a chunk lies: the key of the object that holds it and, in a
/// sharded layout, its place in that shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Place {
    /// The object: the chunk itself, or its shard.
    pub key: StoreKey,
    /// Its place in the shard; `None` when the object is the chunk.
    pub inner: Option<Inner>,
}

/// A chunk's place in its shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Inner {
    /// Row and column in the shard's grid of inner chunks.
    pub at: (u64, u64),
    /// Inner chunks per side of the shard.
    pub side: u64,
}

impl Inner {
    /// Its index in the shard (C order).
    fn index(self) -> usize {
        usize::try_from(self.at.0 * self.side + self.at.1).unwrap_or(usize::MAX)
    }

    /// Inner chunks in the shard.
    fn count(self) -> usize {
        usize::try_from(self.side * self.side).unwrap_or(usize::MAX)
    }
}

impl Place {
    /// The chunk's name for messages: its key, and its place in the shard.
    pub fn name(&self) -> String {
        match self.inner {
            None => self.key.to_string(),
            Some(inner) => format!("{} (inner chunk {}, {})", self.key, inner.at.0, inner.at.1),
        }
    }
}

/// The inner chunks a write has staged, per shard, until the shard is
/// written (`None`: the chunk is removed).
pub(crate) type Edits = HashMap<StoreKey, ShardEdit>;

/// The staged inner chunks of one shard.
#[derive(Debug)]
pub(crate) struct ShardEdit {
    count: usize,
    chunks: BTreeMap<usize, Option<Vec<u8>>>,
}

/// A stored object of a level as a listing finds it.
pub(crate) struct Listing {
    /// Every stored chunk: (time index, place, stored bytes).
    pub chunks: Vec<crate::engine::store::StoredChunk>,
    /// Keys that name chunks outside the level's array.
    pub strays: Vec<String>,
    /// Shards whose index cannot be read: (key, why).
    pub damaged: Vec<(String, String)>,
}

impl Store {
    /// Where chunk `loc` of time index `t` lies under `footprint`; `None`
    /// when its level's array does not span it.
    ///
    /// # Panics
    /// Never: keys are valid by construction.
    pub(crate) fn place_in(&self, footprint: &Footprint, t: u32, loc: ChunkLoc) -> Option<Place> {
        let (row, col) = footprint.index_of(self.grid(), loc)?;
        let layout = self.layout();
        #[allow(clippy::expect_used)]
        let key = |text: String| StoreKey::new(text).expect("chunk keys are valid");
        if !layout.sharded() {
            return Some(Place {
                key: key(zarr::chunk_key(self.structure(), t, loc.level, (row, col))),
                inner: None,
            });
        }
        let side = u64::from(layout.shard_side(loc.level));
        Some(Place {
            key: key(zarr3::shard_key(
                self.structure(),
                t,
                loc.level,
                (row / side, col / side),
            )),
            inner: Some(Inner {
                at: (row % side, col % side),
                side,
            }),
        })
    }

    fn shard_corrupt(&self, name: String, reason: DecodeError) -> EngineError {
        EngineError::Corrupt {
            key: name,
            store: self.location(),
            reason,
        }
    }

    /// Where each inner chunk of a stored shard lies (`None` for a shard
    /// that is not stored), and the shard's index bytes.
    #[allow(clippy::type_complexity)]
    fn shard_index(
        &self,
        key: &StoreKey,
        count: usize,
    ) -> Result<Option<(Vec<Option<std::ops::Range<u64>>>, Vec<u8>, u64)>, EngineError> {
        let want = shard::index_len(count) as u64;
        let Some((index, total)) = self.storage().get_range(key, ByteRange::Suffix(want))? else {
            return Ok(None);
        };
        let ranges = shard::parse_index(&index, count, total)
            .map_err(|reason| self.shard_corrupt(key.to_string(), reason))?;
        Ok(Some((ranges, index, total)))
    }

    /// The chunk's bytes as the store's codec makes them (see
    /// [`crate::engine::persistence::codec`]), every checksum on the way
    /// checked but the codec's own; `None` when absent.
    pub(crate) fn fetch(
        &self,
        place: &Place,
    ) -> Result<Option<crate::storage::Bytes>, EngineError> {
        let Some(inner) = place.inner else {
            return Ok(self.storage().get_view(&place.key)?);
        };
        /// Reads of a shard that another process keeps replacing.
        const ATTEMPTS: usize = 4;
        let mut seen: Option<Vec<u8>> = None;
        for _ in 0..ATTEMPTS {
            let Some((ranges, index, total)) = self.shard_index(&place.key, inner.count())? else {
                return Ok(None);
            };
            let Some(range) = ranges.get(inner.index()).cloned().flatten() else {
                return Ok(None);
            };
            let span = ByteRange::Span {
                offset: range.start,
                len: range.end - range.start,
            };
            let read = self.storage().get_range(&place.key, span)?;
            let unchanged = seen.as_ref() == Some(&index);
            match read {
                Some((bytes, now)) if now == total => {
                    match shard::unseal(self.structure().codec, bytes) {
                        Ok(encoded) => return Ok(Some(crate::storage::Bytes::owned(encoded))),
                        // The same index twice: the damage is real.
                        Err(reason) if unchanged => {
                            return Err(self.shard_corrupt(place.name(), reason));
                        }
                        Err(_) => {}
                    }
                }
                // Replaced between the two reads: read the new one.
                _ => {}
            }
            seen = Some(index);
        }
        Err(self.shard_corrupt(
            place.name(),
            DecodeError::Shard("the shard kept changing while it was read".into()),
        ))
    }

    /// Whether the chunk is stored.
    pub(crate) fn is_stored(&self, place: &Place) -> Result<bool, EngineError> {
        match place.inner {
            None => Ok(self.storage().size(&place.key)?.is_some()),
            // A shard is stored only while it holds a chunk.
            Some(inner) if inner.count() == 1 => Ok(self.storage().size(&place.key)?.is_some()),
            Some(inner) => {
                Ok(self
                    .shard_index(&place.key, inner.count())?
                    .is_some_and(|(ranges, _, _)| {
                        ranges.get(inner.index()).is_some_and(Option::is_some)
                    }))
            }
        }
    }

    /// Stores a chunk's codec output (`None`: removes the chunk), staged
    /// or visible at once. Sharded and staged, the chunk waits in memory
    /// for [`Store::flush_shards`]; sharded and visible, its shard is
    /// rewritten at once. Returns the chunk's stored length (0 removed).
    pub(crate) fn store_encoded(
        &self,
        place: &Place,
        encoded: Option<&[u8]>,
        staged: bool,
    ) -> Result<u64, EngineError> {
        let storage = self.storage();
        let Some(inner) = place.inner else {
            match (encoded, staged) {
                (Some(bytes), true) => storage.stage(&place.key, Some(bytes))?,
                (Some(bytes), false) => storage.put(&place.key, bytes)?,
                (None, true) => storage.stage(&place.key, None)?,
                (None, false) => storage.delete(&place.key)?,
            }
            return Ok(encoded.map_or(0, |e| e.len() as u64));
        };
        let sealed = encoded
            .map(|e| shard::seal(self.structure().codec, e))
            .transpose()
            .map_err(|reason| self.shard_corrupt(place.name(), reason))?;
        let length = sealed.as_ref().map_or(0, |s| s.len() as u64);
        if staged {
            self.shard_edits
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .entry(place.key.clone())
                .or_insert_with(|| ShardEdit {
                    count: inner.count(),
                    chunks: BTreeMap::new(),
                })
                .chunks
                .insert(inner.index(), sealed);
            return Ok(length);
        }
        let chunks = BTreeMap::from([(inner.index(), sealed)]);
        self.rewrite_shard(&place.key, inner.count(), chunks, false)?;
        Ok(length)
    }

    /// Writes each shard of `keys` that has staged inner chunks, whole and
    /// staged: its stored inner chunks with the staged ones in their place.
    pub(crate) fn flush_shards(
        &self,
        keys: impl IntoIterator<Item = StoreKey>,
    ) -> Result<(), EngineError> {
        // Unsharded, nothing waits (and the keys are not even made).
        if !self.layout().sharded() {
            return Ok(());
        }
        for key in keys {
            let edit = self
                .shard_edits
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(&key);
            if let Some(edit) = edit {
                self.rewrite_shard(&key, edit.count, edit.chunks, true)?;
            }
        }
        Ok(())
    }

    /// Forgets inner chunks staged by a write that failed.
    pub(crate) fn drop_shard_edits(&self) {
        self.shard_edits
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }

    /// Writes the shard `key` whole: its stored inner chunks, `changes` in
    /// place of theirs; a shard left empty is removed. A stored shard whose
    /// index is damaged is refused unless `changes` replace every chunk.
    fn rewrite_shard(
        &self,
        key: &StoreKey,
        count: usize,
        changes: BTreeMap<usize, Option<Vec<u8>>>,
        staged: bool,
    ) -> Result<(), EngineError> {
        let whole = changes.len() == count;
        let old = if whole {
            None
        } else {
            self.storage().get(key)?
        };
        // A damaged index hides which bytes are which chunk: only a write
        // of every chunk of the shard replaces it.
        let mut chunks: Vec<Option<&[u8]>> = match old.as_deref() {
            None => vec![None; count],
            Some(bytes) => shard::split(bytes, count).map_err(|reason| {
                self.shard_corrupt(
                    key.to_string(),
                    DecodeError::Shard(format!(
                        "{reason}; only a write or clear of the whole shard's area replaces it"
                    )),
                )
            })?,
        };
        for (index, chunk) in &changes {
            if let Some(slot) = chunks.get_mut(*index) {
                *slot = chunk.as_deref();
            }
        }
        let bytes = shard::encode(&chunks);
        let storage = self.storage();
        match (bytes, staged) {
            (Some(bytes), true) => storage.stage(key, Some(&bytes))?,
            (Some(bytes), false) => storage.put(key, &bytes)?,
            (None, true) => storage.stage(key, None)?,
            (None, false) => storage.delete(key)?,
        }
        Ok(())
    }

    /// Lists the chunks of `level` (reading each shard's index), the keys
    /// outside its array, and the shards whose index is damaged.
    pub(crate) fn list_stored(&self, level: u8) -> Result<Listing, EngineError> {
        let prefix = zarr::level_prefix(level);
        let listed = self.storage().list(&prefix)?;
        let footprint = self.footprint();
        let grid = self.grid();
        let mut listing = Listing {
            chunks: Vec::with_capacity(listed.len()),
            strays: Vec::new(),
            damaged: Vec::new(),
        };
        let layout = self.layout();
        for (key, n) in listed {
            if !layout.sharded() {
                let Some((t, at, (row, col))) =
                    zarr::parse_chunk_key(self.structure(), key.as_str())
                else {
                    continue;
                };
                match footprint.loc_at(grid, level, row, col) {
                    Some(loc) if at == level => listing.chunks.push((t, loc, n)),
                    _ => listing.strays.push(key.to_string()),
                }
                continue;
            }
            let Some((t, at, (row, col))) = zarr3::parse_shard_key(self.structure(), key.as_str())
            else {
                continue;
            };
            let side = u64::from(layout.shard_side(level));
            let count = usize::try_from(side * side).unwrap_or(usize::MAX);
            if at != level
                || footprint
                    .loc_at(grid, level, row * side, col * side)
                    .is_none()
            {
                listing.strays.push(key.to_string());
                continue;
            }
            let ranges = match self.shard_index(&key, count) {
                Ok(Some((ranges, _, _))) => ranges,
                Ok(None) => continue,
                Err(EngineError::Corrupt { reason, .. }) => {
                    listing.damaged.push((key.to_string(), reason.to_string()));
                    continue;
                }
                Err(e) => return Err(e),
            };
            for (i, range) in ranges.iter().enumerate() {
                let Some(range) = range else { continue };
                let (r, c) = (i as u64 / side, i as u64 % side);
                match footprint.loc_at(grid, level, row * side + r, col * side + c) {
                    Some(loc) => listing.chunks.push((t, loc, range.end - range.start)),
                    None => listing.strays.push(format!("{key} (inner chunk {r}, {c})")),
                }
            }
        }
        Ok(listing)
    }

    /// The stored objects of `level`: each chunk, or each shard by its
    /// first chunk. Moving the arrays' origins moves these.
    pub(crate) fn list_objects(&self, level: u8) -> Result<Vec<(u32, ChunkLoc)>, EngineError> {
        let layout = self.layout();
        if !layout.sharded() {
            return Ok(self
                .list_stored(level)?
                .chunks
                .into_iter()
                .map(|(t, loc, _)| (t, loc))
                .collect());
        }
        let side = u64::from(layout.shard_side(level));
        let footprint = self.footprint();
        Ok(self
            .storage()
            .list(&zarr::level_prefix(level))?
            .into_iter()
            .filter_map(|(key, _)| {
                let (t, at, (row, col)) = zarr3::parse_shard_key(self.structure(), key.as_str())?;
                let loc = footprint.loc_at(self.grid(), level, row * side, col * side)?;
                (at == level).then_some((t, loc))
            })
            .collect())
    }
}
