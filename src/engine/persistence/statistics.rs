//! Per-level statistics kept exact on every write: chunk count, stored
//! bytes, valid cells, minimum and maximum, read in O(levels).
//!
//! Each level has a tree of small objects over its chunks. A chunk's key is
//! its instant (32 bits, in stores with a time axis) above the Morton code
//! of its row and column. A node holds up to 4,096 entries, one per 12 bits
//! of key: a leaf (height 0) one per chunk, a node above one per node
//! below, each entry the statistics of everything under it. The single node
//! at a level's top height therefore sums the whole level, and `info` reads
//! one object per level. A write replaces the entries of the chunks it
//! wrote and the nodes above them, each node read and written whole once;
//! entries are absolute, so repeating an update (a write's recovery) is
//! harmless. Minimum and maximum stay exact when an overwrite removes the
//! extreme cell, because every node is recomputed from its entries.
//!
//! The nodes of the levels a write stages are staged and committed with its
//! chunks; the levels above are updated after they are recomputed. The
//! journal names the contents token the statistics describe (see
//! `journal::Journal::statistics`): a writer that does not keep them (an
//! older gridstore) moves the contents on without them, and they are then
//! not used until `gridstore repair` rebuilds them.

use crate::engine::error::EngineError;
use crate::engine::grid::ChunkLoc;
use crate::engine::grid::dtype::{Element, Nodata};
use crate::engine::persistence::codec::DecodeError;
use crate::engine::{Store, Visibility};
use crate::storage::StoreKey;
use serde::Serialize;
use std::collections::BTreeMap;

/// Where the trees' nodes lie: `statistics/<level>/<height>/<node>`.
pub const PREFIX: &str = "statistics/";
/// Key bits per node: 4,096 entries.
const DIGIT_BITS: u32 = 12;
const DIGITS: u128 = 1 << DIGIT_BITS;
const MAGIC: &[u8; 4] = b"GSS1";
/// Magic, four zero bytes, entry count.
const HEADER: usize = 12;
/// Digit, chunks, bytes, valid cells, minimum, maximum.
const ENTRY: usize = 2 + 8 * 5;
const CRC: usize = 4;

/// What a set of chunks holds: one chunk, a node's entries, a level.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    /// Stored chunks.
    pub chunks: u64,
    /// Their stored bytes: a chunk's object in `zarr2`, its inner chunk
    /// (codec output and CRC-32C) in `zarr3`.
    pub bytes: u64,
    /// Cells holding data (every band counted).
    pub valid: u64,
    /// The least data value, `None` without data.
    #[serde(serialize_with = "finite_or_none")]
    pub min: f64,
    /// The greatest data value, `None` without data.
    #[serde(serialize_with = "finite_or_none")]
    pub max: f64,
}

fn finite_or_none<S: serde::Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    if v.is_finite() {
        s.serialize_some(v)
    } else {
        s.serialize_none()
    }
}

impl Default for Summary {
    fn default() -> Self {
        Self::EMPTY
    }
}

impl Summary {
    /// Nothing.
    pub const EMPTY: Self = Self {
        chunks: 0,
        bytes: 0,
        valid: 0,
        min: f64::INFINITY,
        max: f64::NEG_INFINITY,
    };

    /// One stored chunk of `bytes` bytes holding `cells`.
    pub fn of_chunk<T: Element>(cells: &ndarray::Array3<T>, nodata: Nodata<T>, bytes: u64) -> Self {
        match cells.as_slice_memory_order() {
            Some(cells) => Self::of_cells(cells, nodata, bytes),
            None => Self::of_cells(&cells.iter().copied().collect::<Vec<_>>(), nodata, bytes),
        }
    }

    /// [`Summary::of_chunk`] of cells in memory order.
    fn of_cells<T: Element>(cells: &[T], nodata: Nodata<T>, bytes: u64) -> Self {
        let empty = Self {
            chunks: 1,
            bytes,
            ..Self::EMPTY
        };
        let Some(first) = cells.iter().position(|v| v.is_valid(nodata)) else {
            return empty;
        };
        // `v == v` is false only for NaN.
        #[allow(clippy::eq_op)]
        let (valid, min, max) = match nodata.marker() {
            // `&`, not `&&`: no branch.
            Some(marker) => scan(&cells[first..], |v| (v == v) & (v != marker)),
            None => scan(&cells[first..], |v| v == v),
        };
        Self {
            valid,
            min: min.to_f64(),
            max: max.to_f64(),
            ..empty
        }
    }

    /// Both together.
    #[must_use]
    pub fn plus(self, other: Self) -> Self {
        Self {
            chunks: self.chunks + other.chunks,
            bytes: self.bytes + other.bytes,
            valid: self.valid + other.valid,
            min: self.min.min(other.min),
            max: self.max.max(other.max),
        }
    }

    /// The least and greatest data value, if any cell holds data.
    #[must_use]
    pub fn range(&self) -> Option<(f64, f64)> {
        (self.valid > 0).then_some((self.min, self.max))
    }
}

/// One node: entries by digit.
type Node = BTreeMap<u16, Summary>;

/// The shape of a store's trees.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Trees {
    /// The grid's top level.
    top: u8,
    /// Whether keys carry the instant.
    timed: bool,
}

impl Trees {
    pub(crate) fn new(top: u8, timed: bool) -> Self {
        Self { top, timed }
    }

    /// A chunk's key in its level's tree.
    fn key(self, t: u32, loc: ChunkLoc) -> u128 {
        let bits = u32::from(self.top.saturating_sub(loc.level));
        let mut morton = 0u128;
        for i in 0..bits {
            morton |= u128::from((loc.col >> i) & 1) << (2 * i);
            morton |= u128::from((loc.row >> i) & 1) << (2 * i + 1);
        }
        if self.timed {
            (u128::from(t) << (2 * bits)) | morton
        } else {
            morton
        }
    }

    /// The height of `level`'s top node: the tree has heights 0 (leaves)
    /// to this.
    fn height(self, level: u8) -> u32 {
        let bits = 2 * u32::from(self.top.saturating_sub(level)) + if self.timed { 32 } else { 0 };
        bits.saturating_sub(1) / DIGIT_BITS
    }

    /// The key of node `id` at `height` of `level`'s tree.
    fn node_key(level: u8, height: u32, id: u128) -> StoreKey {
        StoreKey::new(format!("{PREFIX}{level}/{height}/{id}"))
            .expect("digits and slashes make a valid key")
    }

    /// The key of `level`'s top node.
    fn top_key(self, level: u8) -> StoreKey {
        Self::node_key(level, self.height(level), 0)
    }

    /// The nodes on the way from a chunk to its level's top.
    pub(crate) fn path(self, t: u32, loc: ChunkLoc) -> impl Iterator<Item = StoreKey> {
        let key = self.key(t, loc);
        (0..=self.height(loc.level))
            .map(move |h| Self::node_key(loc.level, h, key >> (DIGIT_BITS * (h + 1))))
    }

    /// Every node of trees holding exactly `chunks`, encoded.
    pub(crate) fn build(
        self,
        chunks: impl IntoIterator<Item = (u32, ChunkLoc, Summary)>,
    ) -> BTreeMap<StoreKey, Vec<u8>> {
        let mut by_level: BTreeMap<u8, BTreeMap<u128, Option<Summary>>> = BTreeMap::new();
        for (t, loc, summary) in chunks {
            by_level
                .entry(loc.level)
                .or_default()
                .insert(self.key(t, loc), Some(summary));
        }
        let mut nodes = BTreeMap::new();
        for (level, items) in by_level {
            self.update(
                level,
                items,
                |_| Ok(Node::new()),
                |key, node| {
                    if let Some(bytes) = node.map(encode) {
                        nodes.insert(key.clone(), bytes);
                    }
                    Ok(())
                },
            )
            .expect("building in memory cannot fail");
        }
        nodes
    }

    /// Applies `items` (chunk keys: a summary, or `None` for a chunk no
    /// longer stored) to `level`'s tree, reading each node touched with
    /// `read` and handing it to `write` (`None`: empty, to remove) once,
    /// leaves first. Returns the level's new total.
    fn update(
        self,
        level: u8,
        mut items: BTreeMap<u128, Option<Summary>>,
        mut read: impl FnMut(&StoreKey) -> Result<Node, EngineError>,
        mut write: impl FnMut(&StoreKey, Option<&Node>) -> Result<(), EngineError>,
    ) -> Result<Summary, EngineError> {
        for height in 0..=self.height(level) {
            let mut above = BTreeMap::new();
            let mut items_iter = items.into_iter().peekable();
            while let Some((first, _)) = items_iter.peek() {
                let id = first >> DIGIT_BITS;
                let key = Self::node_key(level, height, id);
                let mut node = read(&key)?;
                while let Some((k, summary)) = items_iter.next_if(|(k, _)| k >> DIGIT_BITS == id) {
                    let digit = u16::try_from(k % DIGITS).expect("a digit fits in 12 bits");
                    match summary {
                        Some(s) => node.insert(digit, s),
                        None => node.remove(&digit),
                    };
                }
                write(&key, (!node.is_empty()).then_some(&node))?;
                above.insert(id, (!node.is_empty()).then(|| total(&node)));
            }
            items = above;
        }
        Ok(items
            .into_values()
            .flatten()
            .fold(Summary::EMPTY, Summary::plus))
    }
}

/// The data cells of `cells` (whose first is data) counted, and their least
/// and greatest value. It runs over every cell a write stores, so it is
/// written for the vectorizer: eight independent lanes, and no branch on
/// the data (a cell without data counts as the first cell, which moves
/// neither bound).
fn scan<T: Element>(cells: &[T], is_data: impl Fn(T) -> bool) -> (u64, T, T) {
    const LANES: usize = 8;
    let neutral = cells[0];
    let mut count = [0u32; LANES];
    let (mut min, mut max) = ([neutral; LANES], [neutral; LANES]);
    // The last cells padded with the neutral cell (data: uncounted after).
    let blocks = cells.chunks_exact(LANES);
    let rest = blocks.remainder();
    let mut last = [neutral; LANES];
    last[..rest.len()].copy_from_slice(rest);
    let padding = (LANES - rest.len()) as u64;
    for block in blocks.chain(std::iter::once(&last[..])) {
        for lane in 0..LANES {
            let v = block[lane];
            let data = is_data(v);
            count[lane] += u32::from(data);
            let v = if data { v } else { neutral };
            min[lane] = if v < min[lane] { v } else { min[lane] };
            max[lane] = if v > max[lane] { v } else { max[lane] };
        }
    }
    let fold = |bounds: [T; LANES], pick: fn(T, T) -> bool| {
        bounds
            .into_iter()
            .fold(neutral, |a, b| if pick(b, a) { b } else { a })
    };
    (
        count.iter().map(|&n| u64::from(n)).sum::<u64>() - padding,
        fold(min, |b, a| b < a),
        fold(max, |b, a| b > a),
    )
}

fn total(node: &Node) -> Summary {
    node.values().copied().fold(Summary::EMPTY, Summary::plus)
}

/// A node's bytes: header, entries by digit, CRC-32C of everything before.
fn encode(node: &Node) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + node.len() * ENTRY + CRC);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&u32::try_from(node.len()).unwrap_or(u32::MAX).to_le_bytes());
    for (digit, s) in node {
        out.extend_from_slice(&digit.to_le_bytes());
        for v in [s.chunks, s.bytes, s.valid, s.min.to_bits(), s.max.to_bits()] {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    out.extend_from_slice(&crc32c::crc32c(&out).to_le_bytes());
    out
}

/// The inverse of [`encode`], checking its length and CRC-32C.
fn decode(bytes: &[u8]) -> Result<Node, String> {
    let body_len = bytes
        .len()
        .checked_sub(CRC)
        .filter(|&n| n >= HEADER)
        .ok_or("truncated statistics node")?;
    let (body, crc) = bytes.split_at(body_len);
    if crc32c::crc32c(body).to_le_bytes() != crc {
        return Err("statistics node fails its CRC-32C".into());
    }
    if &body[..4] != MAGIC {
        return Err("not a statistics node".into());
    }
    let count = u32::from_le_bytes(body[8..12].try_into().expect("4 bytes")) as usize;
    if body.len() != HEADER + count * ENTRY {
        return Err("statistics node of the wrong length".into());
    }
    let u64_at = |e: &[u8], i: usize| {
        u64::from_le_bytes(e[2 + 8 * i..10 + 8 * i].try_into().expect("8 bytes"))
    };
    Ok(body[HEADER..]
        .chunks_exact(ENTRY)
        .map(|e| {
            let digit = u16::from_le_bytes([e[0], e[1]]);
            let summary = Summary {
                chunks: u64_at(e, 0),
                bytes: u64_at(e, 1),
                valid: u64_at(e, 2),
                min: f64::from_bits(u64_at(e, 3)),
                max: f64::from_bits(u64_at(e, 4)),
            };
            (digit, summary)
        })
        .collect())
}

/// Chunk summaries a write produced, waiting to go into the trees.
pub(crate) type Edits = BTreeMap<(u32, ChunkLoc), Option<Summary>>;

impl Store {
    pub(crate) fn trees(&self) -> Trees {
        Trees::new(self.grid().top_level(), self.structure().time.is_some())
    }

    /// Notes what a chunk holds after a write stored (`Some`) or removed
    /// (`None`) it, for [`Store::flush_statistics`].
    pub(crate) fn note_summary(&self, t: u32, loc: ChunkLoc, summary: Option<Summary>) {
        self.summary_edits
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert((t, loc), summary);
    }

    /// Forgets the summaries noted by a write that failed.
    pub(crate) fn drop_summary_edits(&self) {
        self.summary_edits
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }

    /// Puts the noted summaries into the trees, each node touched written
    /// once: staged (with the write's chunks) or visible.
    ///
    /// # Errors
    /// I/O, or a damaged node ([`EngineError::Corrupt`], naming it).
    pub(crate) fn flush_statistics(&self, visibility: Visibility) -> Result<(), EngineError> {
        let edits = std::mem::take(
            &mut *self
                .summary_edits
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        let trees = self.trees();
        let mut by_level: BTreeMap<u8, BTreeMap<u128, Option<Summary>>> = BTreeMap::new();
        for ((t, loc), summary) in edits {
            by_level
                .entry(loc.level)
                .or_default()
                .insert(trees.key(t, loc), summary);
        }
        let storage = self.storage();
        for (level, items) in by_level {
            trees.update(
                level,
                items,
                |key| self.read_node(key),
                |key, node| {
                    match (node.map(encode), visibility) {
                        (Some(bytes), Visibility::Staged) => storage.stage(key, Some(&bytes))?,
                        (Some(bytes), Visibility::Live) => storage.put(key, &bytes)?,
                        (None, Visibility::Staged) => storage.stage(key, None)?,
                        (None, Visibility::Live) => storage.delete(key)?,
                    }
                    Ok(())
                },
            )?;
        }
        Ok(())
    }

    fn read_node(&self, key: &StoreKey) -> Result<Node, EngineError> {
        match self.storage().get(key)? {
            None => Ok(Node::new()),
            Some(bytes) => decode(&bytes).map_err(|reason| self.statistics_corrupt(key, reason)),
        }
    }

    fn statistics_corrupt(&self, key: &StoreKey, reason: String) -> EngineError {
        EngineError::Corrupt {
            key: key.to_string(),
            store: self.location(),
            reason: DecodeError::Shard(reason),
        }
    }

    /// Each level's statistics, from the top node of its tree: one read per
    /// level. `None` when the store keeps none for its contents now (a
    /// write is under way, or a writer that does not keep them wrote last:
    /// see [`Store::rebuild_statistics`]).
    ///
    /// # Errors
    /// I/O, or a damaged top node.
    pub fn level_statistics(&self) -> Result<Option<Vec<Summary>>, EngineError> {
        let Some(state) = self.statistics_state()? else {
            return Ok(None);
        };
        let trees = self.trees();
        let levels = (0..=self.grid().top_level())
            .map(|level| Ok(total(&self.read_node(&trees.top_key(level))?)))
            .collect::<Result<Vec<_>, EngineError>>()?;
        // A writer in another process may have begun meanwhile: the nodes
        // read are those of one contents only if the token still holds.
        Ok((self.statistics_state()? == Some(state)).then_some(levels))
    }

    /// Each level's statistics, and whether they are the kept ones (read
    /// in O(levels)); otherwise, for a store that keeps none for its
    /// contents, chunks and bytes counted from a listing of every chunk
    /// (valid cells, minimum and maximum unknown).
    ///
    /// # Errors
    /// I/O, or a shard whose index is damaged.
    pub fn level_summaries(&self) -> Result<(Vec<Summary>, bool), EngineError> {
        // A damaged top node: counted instead (verify names it).
        if let Ok(Some(kept)) = self.level_statistics() {
            return Ok((kept, true));
        }
        let counted = (0..=self.grid().top_level())
            .map(|level| {
                let chunks = self.list_chunks(level)?;
                Ok(Summary {
                    chunks: chunks.len() as u64,
                    bytes: chunks.iter().map(|(_, _, n)| n).sum(),
                    ..Summary::EMPTY
                })
            })
            .collect::<Result<_, EngineError>>()?;
        Ok((counted, false))
    }

    /// The nodes stored now, by key.
    pub(crate) fn stored_nodes(&self) -> Result<BTreeMap<StoreKey, Vec<u8>>, EngineError> {
        let mut nodes = BTreeMap::new();
        for (key, _) in self.storage().list(PREFIX)? {
            if let Some(bytes) = self.storage().get(&key)? {
                nodes.insert(key, bytes);
            }
        }
        Ok(nodes)
    }

    /// Rebuilds every level's statistics from the chunks (each decoded
    /// once), for a store whose statistics are not kept (written by an
    /// older gridstore) or damaged. A rebuild that is interrupted leaves
    /// them not kept. Returns the chunks read.
    ///
    /// # Errors
    /// Read-only store, I/O, or a damaged chunk.
    pub fn rebuild_statistics<T: Element>(&self) -> Result<u64, EngineError> {
        use rayon::prelude::*;
        self.check_writable()?;
        self.check_dtype::<T>()?;
        let _serial = self.write_serial();
        self.set_statistics_token(false)?;
        let mut chunks = Vec::new();
        for level in 0..=self.grid().top_level() {
            chunks.extend(self.list_chunks(level)?);
        }
        let nodata = self.nodata::<T>();
        let summaries = chunks
            .par_iter()
            .map(|&(t, loc, bytes)| {
                let cells = self.read_chunk::<T>(t, loc)?;
                Ok(cells.map(|c| (t, loc, Summary::of_chunk(&c, nodata, bytes))))
            })
            .collect::<Result<Vec<_>, EngineError>>()?;
        let nodes = self.trees().build(summaries.into_iter().flatten());
        for (key, _) in self.storage().list(PREFIX)? {
            if !nodes.contains_key(&key) {
                self.storage().delete(&key)?;
            }
        }
        for (key, bytes) in &nodes {
            self.storage().put(key, bytes)?;
        }
        self.storage().sync()?;
        self.set_statistics_token(true)?;
        Ok(chunks.len() as u64)
    }

    /// Compares the stored trees with trees built from `chunks` (every
    /// stored chunk's summary): the nodes that differ, are missing or are
    /// left over, with the reason.
    pub(crate) fn check_statistics(
        &self,
        chunks: impl IntoIterator<Item = (u32, ChunkLoc, Summary)>,
    ) -> Result<Vec<(String, String)>, EngineError> {
        let expected = self.trees().build(chunks);
        let stored = self.stored_nodes()?;
        let mut damage = Vec::new();
        for (key, bytes) in &stored {
            let reason = match (decode(bytes), expected.get(key)) {
                (Err(reason), _) => reason,
                (Ok(_), None) => "statistics of chunks that are not stored".into(),
                (Ok(_), Some(want)) if want != bytes => {
                    "statistics that differ from the chunks under it".into()
                }
                (Ok(_), Some(_)) => continue,
            };
            damage.push((key.to_string(), reason));
        }
        for key in expected.keys().filter(|k| !stored.contains_key(*k)) {
            damage.push((
                key.to_string(),
                "statistics missing for stored chunks".into(),
            ));
        }
        Ok(damage)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(min: f64, max: f64, valid: u64) -> Summary {
        Summary {
            chunks: 1,
            bytes: 100,
            valid,
            min,
            max,
        }
    }

    #[test]
    fn node_round_trips_and_damage_is_named() {
        let node = Node::from([(0, summary(1.0, 2.0, 3)), (4095, Summary::EMPTY)]);
        let bytes = encode(&node);
        assert_eq!(decode(&bytes).unwrap(), node);
        let mut flipped = bytes.clone();
        flipped[HEADER + 3] ^= 1;
        assert!(decode(&flipped).unwrap_err().contains("CRC-32C"));
        assert!(decode(&bytes[..bytes.len() - 1]).is_err());
        assert!(decode(&bytes[..5]).unwrap_err().contains("truncated"));
    }

    #[test]
    fn a_chunk_summary_counts_data_cells_of_any_length() {
        let nodata = Nodata::value(-9999.0f32);
        for len in 0..40 {
            let cells: Vec<f32> = (0..len)
                .map(|i| match i % 7 {
                    0 => -9999.0,
                    3 => f32::NAN,
                    _ => ((i * 37) % 11) as f32 - 5.0,
                })
                .collect();
            let data: Vec<f64> = cells
                .iter()
                .filter(|v| v.is_valid(nodata))
                .map(|v| f64::from(*v))
                .collect();
            let got = Summary::of_cells(&cells, nodata, 9);
            assert_eq!(got.valid, data.len() as u64, "{len} cells");
            let range = data.iter().fold(None, |r: Option<(f64, f64)>, &v| {
                Some(r.map_or((v, v), |(lo, hi)| (lo.min(v), hi.max(v))))
            });
            assert_eq!(got.range(), range, "{len} cells");
        }
    }

    #[test]
    fn keys_interleave_and_heights_cover_them() {
        let trees = Trees::new(12, false);
        let loc = |level, row, col| ChunkLoc { level, row, col };
        assert_eq!(trees.key(0, loc(0, 0, 1)), 1);
        assert_eq!(trees.key(0, loc(0, 1, 0)), 2);
        assert_eq!(trees.key(0, loc(0, 4095, 4095)), (1 << 24) - 1);
        assert_eq!(trees.height(0), 1);
        assert_eq!(trees.height(6), 0);
        assert_eq!(trees.height(12), 0);
        let timed = Trees::new(12, true);
        assert_eq!(timed.key(3, loc(12, 0, 0)), 3);
        assert_eq!(timed.height(0), 4);
        assert_eq!(timed.height(12), 2);
        // Every node on a path exists at its height, the last one the top.
        let path: Vec<_> = timed.path(7, loc(0, 5, 9)).collect();
        assert_eq!(path.len(), 5);
        assert_eq!(path[4], timed.top_key(0));
    }

    #[test]
    fn a_removed_extreme_leaves_the_next_one() {
        let trees = Trees::new(4, false);
        let loc = |row, col| ChunkLoc { level: 0, row, col };
        let mut nodes = trees.build([
            (0, loc(0, 0), summary(-5.0, 1.0, 10)),
            (0, loc(15, 15), summary(2.0, 9.0, 4)),
        ]);
        let top = decode(&nodes[&trees.top_key(0)]).unwrap();
        assert_eq!(total(&top).range(), Some((-5.0, 9.0)));
        let items = BTreeMap::from([(trees.key(0, loc(0, 0)), None)]);
        let before = nodes.clone();
        let level = trees
            .update(
                0,
                items,
                |key| {
                    Ok(before
                        .get(key)
                        .map(|b| decode(b).unwrap())
                        .unwrap_or_default())
                },
                |key, node| {
                    match node {
                        Some(node) => nodes.insert(key.clone(), encode(node)),
                        None => nodes.remove(key),
                    };
                    Ok(())
                },
            )
            .unwrap();
        assert_eq!(level.range(), Some((2.0, 9.0)));
        assert_eq!((level.chunks, level.valid, level.bytes), (1, 4, 100));
        assert_eq!(nodes, trees.build([(0, loc(15, 15), summary(2.0, 9.0, 4))]));
    }
}
