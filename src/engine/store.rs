//! A store: its structure, its mutable root metadata, and chunk I/O.
//!
//! Opening reads only the root attributes, so it costs O(1) in the number of
//! chunks. Writes need the single-writer lock, taken by
//! [`Store::open_writer`] or [`Store::create`].

use crate::engine::catalogue::sources::Read;
use crate::engine::error::EngineError;
use crate::engine::grid::time::TimeAxis;
use crate::engine::grid::{ChunkLoc, Grid, Window};
use crate::engine::persistence::band_info::{self, BAND_INFO_KEY, BandInfo};
use crate::engine::persistence::codec;
use crate::engine::persistence::footprint::Footprint;
use crate::engine::persistence::layout::Layout;
use crate::engine::persistence::palette::{PALETTE_KEY, Palette};
use crate::engine::persistence::sharded::Place;
use crate::engine::persistence::statistics::Summary;
use crate::engine::persistence::zarr::{
    self, CONSOLIDATED, FORMAT_VERSION, LevelView, OLDEST_FORMAT_VERSION, ROOT_ATTRS,
};
use crate::engine::persistence::zarr3;
use crate::engine::{Element, Nodata, Structure};
use crate::storage::{DynStorage, StoreKey, WriterLock};
use ndarray::Array3;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::{Arc, RwLock};

/// The mutable part of the root metadata: the time axis' extent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TimeState {
    /// Number of time indices the arrays hold.
    pub length: u32,
    /// For an irregular axis: the instant of each index, in index order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instants: Vec<i64>,
}

#[derive(Debug, Serialize, Deserialize)]
struct RootMeta {
    format_version: u32,
    /// From version 2: how the chunks lie (`zarr2` or `zarr3`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    layout: Option<String>,
    /// With the `zarr3` layout: chunks per side of a level-0 shard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    shard: Option<u32>,
    structure: Structure,
    #[serde(default)]
    time: TimeState,
    /// From version 2: the base chunks the data ever reached (see
    /// [`Footprint`]); absent before the first write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    extent: Option<Window>,
    /// From version 2: base cells holding every data cell (see
    /// [`Store::data_window`]), for the contents the journal's token
    /// names; absent in an empty store and where it was not kept yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    data: Option<DataWindow>,
    /// From version 3, in the store of a time level's maps: that level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    period: Option<crate::engine::grid::period::TimeLevel>,
    /// From version 4: the store keeps level 0 only, no spatial pyramid
    /// (a mean's period sums).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    base_only: bool,
}

/// The base cells holding every data cell of a store without a time axis,
/// as the root metadata keeps them: valid while the journal's contents
/// token is `state` (a writer that does not keep the window, an older
/// gridstore, changes the token and so retires it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DataWindow {
    #[serde(flatten)]
    window: Window,
    state: String,
}

/// The root attributes, checked.
struct Root {
    version: u32,
    meta: RootMeta,
    layout: Layout,
    footprint: Footprint,
}

impl Root {
    /// Reads the root metadata of the store in `storage`: `.zattrs` (the
    /// `zarr2` layout and format version 1) or `zarr.json` (`zarr3`).
    /// Returns it with its storage version, `None` when there is neither.
    fn read(
        storage: &dyn crate::storage::Storage,
    ) -> Result<Option<(Self, Option<String>)>, EngineError> {
        for name in [ROOT_ATTRS, zarr3::ROOT] {
            let key = StoreKey::new(name).map_err(crate::storage::StorageError::from)?;
            let version = storage.version(&key)?;
            if let Some(bytes) = storage.get(&key)? {
                return Ok(Some((Self::parse(storage, name, &bytes)?, version)));
            }
        }
        Ok(None)
    }

    /// Parses and checks the root metadata `name` of the store in `storage`.
    fn parse(
        storage: &dyn crate::storage::Storage,
        name: &str,
        bytes: &[u8],
    ) -> Result<Self, EngineError> {
        let not_a_store = |reason: String| EngineError::NotAStore {
            location: storage.location(),
            reason,
        };
        let doc: serde_json::Value = serde_json::from_slice(bytes)
            .map_err(|e| not_a_store(format!("{name} is not JSON ({e})")))?;
        let v3 = name == zarr3::ROOT;
        if v3 && doc.get("zarr_format") != Some(&json!(3)) {
            return Err(not_a_store(format!(
                "{name} is not the metadata of a Zarr v3 group (no zarr_format 3)"
            )));
        }
        let attrs = if v3 { &doc["attributes"] } else { &doc };
        let meta = attrs.get("gridstore").ok_or_else(|| {
            not_a_store(if v3 {
                format!(
                    "{name} has no 'gridstore' attributes: a Zarr store written by another tool, which gridstore does not write into"
                )
            } else {
                format!("{name} has no 'gridstore' entry")
            })
        })?;
        let found = meta
            .get("format_version")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0);
        let found = u32::try_from(found).unwrap_or(u32::MAX);
        if !(OLDEST_FORMAT_VERSION..=FORMAT_VERSION).contains(&found) {
            let hint = if found > FORMAT_VERSION {
                "; upgrade gridstore to open it"
            } else {
                ""
            };
            return Err(EngineError::Version {
                location: storage.location(),
                found,
                supported: FORMAT_VERSION,
                hint,
            });
        }
        let meta: RootMeta = serde_json::from_value(meta.clone())
            .map_err(|e| not_a_store(format!("damaged structure in {name} ({e})")))?;
        meta.structure.validate()?;
        if found < 3 && !meta.structure.time_levels.is_empty() {
            return Err(not_a_store(format!(
                "damaged structure in {name} (time levels in a format {found} store, which has none)"
            )));
        }
        let grid = Grid::new(&meta.structure);
        let layout = match (found, meta.layout.as_deref()) {
            (1, _) => Layout::Zarr2,
            (_, None) => return Err(not_a_store(format!("{name} names no layout"))),
            (_, Some(named)) => match named.parse::<Layout>() {
                Ok(Layout::Zarr2) => Layout::Zarr2,
                Ok(Layout::Zarr3 { .. }) => Layout::Zarr3 {
                    shard: meta.shard.unwrap_or(0),
                },
                Err(_) => {
                    return Err(not_a_store(format!(
                        "its layout '{named}' is not one this gridstore reads (zarr2, zarr3); upgrade gridstore to open it"
                    )));
                }
            },
        };
        if v3 != layout.sharded() {
            return Err(not_a_store(format!(
                "{name} names the layout '{layout}', which keeps its root elsewhere"
            )));
        }
        layout
            .check(&meta.structure)
            .map_err(|e| not_a_store(format!("damaged layout in {name} ({e})")))?;
        let footprint = if found == 1 {
            Footprint::Domain
        } else {
            let side = u64::from(grid.chunks_per_side(0));
            let chunks = Window {
                row: 0,
                col: 0,
                rows: side,
                cols: side,
            };
            if let Some(extent) = meta.extent
                && (extent.is_empty() || extent.intersect(&chunks) != Some(extent))
            {
                return Err(not_a_store(format!(
                    "damaged extent in {name} (rows {}..{}, columns {}..{} are not within the domain's {side} × {side} chunks)",
                    extent.row,
                    extent.row + extent.rows,
                    extent.col,
                    extent.col + extent.cols,
                )));
            }
            let cells = grid.full_window(0);
            if let Some(data) = &meta.data
                && (data.window.is_empty() || data.window.intersect(&cells) != Some(data.window))
            {
                return Err(not_a_store(format!(
                    "damaged data window in {name} (it is not within the domain's cells)"
                )));
            }
            Footprint::Data {
                shard: layout.shard(),
                base: meta.extent,
            }
        };
        Ok(Self {
            version: found,
            meta,
            layout,
            footprint,
        })
    }
}

/// An open store.
#[derive(Debug)]
pub struct Store {
    storage: DynStorage,
    structure: Structure,
    grid: Grid,
    time: RwLock<TimeState>,
    /// The format version of the store (1 or 2); writes keep it.
    version: u32,
    /// How its chunks lie.
    layout: Layout,
    /// Inner chunks staged by the write under way, per shard, until their
    /// shard is written whole (see `persistence::sharded`).
    pub(crate) shard_edits: std::sync::Mutex<crate::engine::persistence::sharded::Edits>,
    /// What the chunks written by the write under way hold, until the
    /// statistics trees take it (see `persistence::statistics`).
    pub(crate) summary_edits: std::sync::Mutex<crate::engine::persistence::statistics::Edits>,
    /// Which part of each level its array spans.
    footprint: RwLock<Footprint>,
    /// Base cells holding every data cell, as the root metadata keeps it.
    data: RwLock<Option<DataWindow>>,
    /// The storage's version of the root attributes this store's view of
    /// the time axis and footprint was read from (see [`Store::refresh`]).
    root_version: RwLock<Option<String>>,
    lock: Option<Box<dyn WriterLock>>,
    /// Serialises writes within this process (see `journal::WriteTxn`).
    serial: std::sync::Mutex<()>,
    /// The colour table of a categorical store, if it has one.
    palette: RwLock<Option<Arc<Palette>>>,
    /// What each band is (empty when no ingest described them).
    band_info: RwLock<Arc<[BandInfo]>>,
    /// The contents token this store's view of the metadata reflects: read
    /// at open, before anything else, and moved on by this store's own
    /// writes (see `Store::state_token`).
    pub(crate) known_state: RwLock<Option<String>>,
    /// What running recordings read (see `engine::sources`).
    pub(crate) reads: crate::engine::catalogue::sources::ReadLog,
    /// The maps of each time level, finest first (see `engine::periods`).
    pub(crate) periods: Vec<crate::engine::periods::PeriodMaps>,
    /// For the store of a time level's maps: that level.
    pub(crate) period_level: Option<crate::engine::grid::period::TimeLevel>,
    /// The store keeps level 0 only: writes aggregate nothing above it.
    pub(crate) base_only: bool,
}

impl Store {
    /// Creates a store in empty storage and opens it for writing.
    ///
    /// # Errors
    /// An invalid structure, storage that already holds a store, or I/O.
    pub fn create(storage: DynStorage, structure: Structure) -> Result<Self, EngineError> {
        Self::create_with_layout(storage, structure, Layout::default())
    }

    /// Creates a store whose chunks lie in `layout`, and opens it for
    /// writing.
    ///
    /// # Errors
    /// As [`Store::create`], and a layout the structure cannot take.
    pub fn create_with_layout(
        storage: DynStorage,
        structure: Structure,
        layout: Layout,
    ) -> Result<Self, EngineError> {
        structure.validate()?;
        layout
            .check(&structure)
            .map_err(|reason| EngineError::NotAStore {
                location: storage.location(),
                reason,
            })?;
        let lock = storage.lock_writer()?;
        let root = StoreKey::new(layout.root_key()).map_err(crate::storage::StorageError::from)?;
        if storage.get(&root)?.is_some() || !storage.list("")?.is_empty() {
            return Err(EngineError::NotAStore {
                location: storage.location(),
                reason: "the location is not empty; refusing to create a store over existing files"
                    .into(),
            });
        }
        let grid = Grid::new(&structure);
        let mut store = Self {
            storage,
            structure,
            grid,
            time: RwLock::new(TimeState::default()),
            version: FORMAT_VERSION,
            layout,
            shard_edits: std::sync::Mutex::default(),
            summary_edits: std::sync::Mutex::default(),
            data: RwLock::new(None),
            footprint: RwLock::new(Footprint::Data {
                shard: layout.shard(),
                base: None,
            }),
            root_version: RwLock::new(None),
            lock: Some(lock),
            serial: std::sync::Mutex::new(()),
            palette: RwLock::new(None),
            band_info: RwLock::new(Arc::from(Vec::new())),
            known_state: RwLock::new(None),
            reads: crate::engine::catalogue::sources::ReadLog::default(),
            periods: Vec::new(),
            period_level: None,
            base_only: false,
        };
        store.init_journal()?;
        store.periods =
            crate::engine::periods::create(&store.storage, &store.structure, store.layout)?;
        // The root attributes go last: a store without them is not a store.
        store.write_metadata(
            &TimeState::default(),
            &store.footprint(),
            MetadataChange::All,
        )?;
        Ok(store)
    }

    /// Opens a store read-only.
    ///
    /// # Errors
    /// [`EngineError::NotAStore`] or [`EngineError::Version`] for folders
    /// that are not stores of this format, or I/O.
    pub fn open(storage: DynStorage) -> Result<Self, EngineError> {
        let not_a_store = |reason: String| EngineError::NotAStore {
            location: storage.location(),
            reason,
        };
        // Before anything else is read: what is read next is at least as
        // new as this token (see `Store::state_token`).
        let known_state = crate::engine::persistence::journal::contents_state(storage.as_ref())?;
        let (
            Root {
                version: found,
                meta,
                layout,
                footprint,
            },
            root_version,
        ) = Root::read(storage.as_ref())?.ok_or_else(|| {
            not_a_store("no .zattrs or zarr.json with a gridstore structure".into())
        })?;
        let grid = Grid::new(&meta.structure);
        let palette_key = StoreKey::new(PALETTE_KEY).map_err(crate::storage::StorageError::from)?;
        let palette = match storage.get(&palette_key)? {
            None => None,
            Some(bytes) => Some(Arc::new(Palette::from_json(&bytes).map_err(|reason| {
                not_a_store(format!("damaged colour table {PALETTE_KEY} ({reason})"))
            })?)),
        };
        let band_info_key =
            StoreKey::new(BAND_INFO_KEY).map_err(crate::storage::StorageError::from)?;
        let band_info: Arc<[BandInfo]> = match storage.get(&band_info_key)? {
            None => Arc::from(Vec::new()),
            Some(bytes) => Arc::from(band_info::from_json(&bytes).map_err(|reason| {
                not_a_store(format!(
                    "damaged band descriptions {BAND_INFO_KEY} ({reason})"
                ))
            })?),
        };
        let periods = crate::engine::periods::open(&storage, &meta.structure, found, false)?;
        Ok(Self {
            storage,
            structure: meta.structure,
            grid,
            time: RwLock::new(meta.time),
            version: found,
            layout,
            shard_edits: std::sync::Mutex::default(),
            summary_edits: std::sync::Mutex::default(),
            data: RwLock::new(meta.data),
            footprint: RwLock::new(footprint),
            root_version: RwLock::new(root_version),
            lock: None,
            serial: std::sync::Mutex::new(()),
            palette: RwLock::new(palette),
            band_info: RwLock::new(band_info),
            known_state: RwLock::new(known_state),
            reads: crate::engine::catalogue::sources::ReadLog::default(),
            periods,
            period_level: meta.period,
            base_only: meta.base_only,
        })
    }

    /// Opens a store for writing, taking the single-writer lock. The
    /// pyramid above any write that was interrupted (see [`Store::pending_writes`])
    /// is recomputed first.
    ///
    /// # Errors
    /// As [`Store::open`], `Locked` when another writer holds the lock, and
    /// errors of the repair.
    pub fn open_writer(storage: DynStorage) -> Result<Self, EngineError> {
        let store = Self::open(storage.clone())?;
        if let Some(level) = store.period_level {
            return Err(EngineError::NotAStore {
                location: store.location(),
                reason: format!(
                    "it holds the {level} maps of the store around it, which keeps them; write into that store"
                ),
            });
        }
        drop(store);
        Self::open_writer_unchecked(storage)
    }

    /// As [`Store::open_writer`], also for the store of a time level's
    /// maps, which only its store writes (see `engine::periods`).
    pub(crate) fn open_writer_unchecked(storage: DynStorage) -> Result<Self, EngineError> {
        // Taking the lock leaves a file: never in what is not a store (a
        // Zarr store of another tool). Opened again once locked, for what
        // the last writer left.
        Self::open(storage.clone())?;
        let lock = storage.lock_writer()?;
        let mut store = Self::open(storage)?;
        store.lock = Some(lock);
        // The time levels' own unfinished writes first: this store's
        // recovery rewrites their maps.
        store.periods =
            crate::engine::periods::open(&store.storage, &store.structure, store.version, true)?;
        let dtype = store.structure.dtype;
        crate::with_dtype!(dtype, T => store.repair_pending::<T>(&crate::engine::NoProgress))?;
        // Writing into arrays whose metadata says other codecs would leave
        // chunks that Zarr readers misread.
        if let Some(damage) = store.check_array_metadata()?.into_iter().next() {
            return Err(EngineError::NotAStore {
                location: store.location(),
                reason: format!(
                    "{}: {}; gridstore does not write into it (restore the file)",
                    damage.key, damage.reason
                ),
            });
        }
        Ok(store)
    }

    /// The structure.
    #[must_use]
    pub fn structure(&self) -> &Structure {
        &self.structure
    }

    /// The grid.
    #[must_use]
    pub fn grid(&self) -> &Grid {
        &self.grid
    }

    /// The storage backend.
    #[must_use]
    pub fn storage(&self) -> &DynStorage {
        &self.storage
    }

    /// Where the store lives, for messages.
    #[must_use]
    pub fn location(&self) -> String {
        self.storage.location()
    }

    /// The time axis' current extent.
    #[must_use]
    pub fn time_state(&self) -> TimeState {
        self.time
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Shape of a chunk in memory: (bands, rows, cols).
    #[must_use]
    pub fn chunk_dim(&self) -> (usize, usize, usize) {
        let [w, h] = self.structure.chunk;
        (self.structure.band_count(), h as usize, w as usize)
    }

    /// Raw bytes of one decoded chunk.
    #[must_use]
    pub fn chunk_bytes(&self) -> usize {
        let (b, r, c) = self.chunk_dim();
        b * r * c * self.structure.dtype.size()
    }

    /// The key of the object that holds a chunk (the chunk, or its
    /// shard); `None` when its level's array does not span it (no data
    /// ever reached it).
    #[must_use]
    pub fn chunk_key(&self, t: u32, loc: ChunkLoc) -> Option<StoreKey> {
        self.chunk_key_in(&self.footprint(), t, loc)
    }

    /// The key of the object that holds a chunk under `footprint`.
    pub(crate) fn chunk_key_in(
        &self,
        footprint: &Footprint,
        t: u32,
        loc: ChunkLoc,
    ) -> Option<StoreKey> {
        self.place_in(footprint, t, loc).map(|place| place.key)
    }

    /// The chunk's name for messages: its key (and its place in its
    /// shard), or where it would be.
    #[must_use]
    pub fn chunk_name(&self, t: u32, loc: ChunkLoc) -> String {
        self.place_in(&self.footprint(), t, loc).map_or_else(
            || format!("chunk {loc} (outside the arrays)"),
            |place| place.name(),
        )
    }

    /// Which part of each level its array spans.
    #[must_use]
    pub fn footprint(&self) -> Footprint {
        *self
            .footprint
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Brings this store's view of the time axis and the footprint up to
    /// date when another process changed them (a new instant, arrays that
    /// grew): the readers' entry points call it, so a store opened before
    /// another process wrote reads what is there now. Costs one check of
    /// the root attributes' version when nothing changed. A writer's view
    /// is its own, and is never stale.
    ///
    /// # Errors
    /// I/O, or root attributes that no longer parse.
    pub fn refresh(&self) -> Result<(), EngineError> {
        if self.lock.is_some() {
            return Ok(());
        }
        let root_key = self.layout.root_key();
        let key = StoreKey::new(root_key).map_err(crate::storage::StorageError::from)?;
        let version = self.storage.version(&key)?;
        let known = self
            .root_version
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        if version.is_some() && version == known {
            return Ok(());
        }
        let Some(bytes) = self.storage.get(&key)? else {
            return Ok(());
        };
        let root = Root::parse(self.storage.as_ref(), root_key, &bytes)?;
        // Compared as written: a NaN nodata is not equal to itself.
        let same = |s: &Structure| serde_json::to_string(s).unwrap_or_default();
        if same(&root.meta.structure) != same(&self.structure)
            || root.version != self.version
            || root.layout != self.layout
        {
            return Err(EngineError::NotAStore {
                location: self.location(),
                reason: "another store was written in its place; open it again".into(),
            });
        }
        self.set_time_state(root.meta.time);
        self.set_footprint(root.footprint);
        *self
            .data
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = root.meta.data;
        self.root_version
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone_from(&version);
        Ok(())
    }

    /// Runs `read` on where a chunk lies under the current footprint. A
    /// read-only store first brings its view up to date, and reads again
    /// when the footprint moved meanwhile: another process may have moved
    /// the arrays' origins, and a key read under the old footprint names
    /// another chunk. (Other changes, a new instant or another record in
    /// the same pack, need no second read.) A writer's view is never stale.
    fn with_place<R>(
        &self,
        t: u32,
        loc: ChunkLoc,
        read: impl Fn(Option<Place>) -> Result<R, EngineError>,
    ) -> Result<R, EngineError> {
        if self.lock.is_some() {
            return read(self.place_in(&self.footprint(), t, loc));
        }
        /// Moves of the arrays that a read outlasts before it gives up.
        const ATTEMPTS: usize = 8;
        self.refresh()?;
        for _ in 0..ATTEMPTS {
            let footprint = self.footprint();
            let result = read(self.place_in(&footprint, t, loc))?;
            self.refresh()?;
            if self.footprint() == footprint {
                return Ok(result);
            }
        }
        Err(EngineError::Misplaced {
            key: self.chunk_name(t, loc),
            store: self.location(),
            reason: "another process kept changing the store's arrays during the read; try again"
                .into(),
        })
    }

    pub(crate) fn set_time_state(&self, time: TimeState) {
        *self
            .time
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = time;
    }

    pub(crate) fn set_footprint(&self, footprint: Footprint) {
        *self
            .footprint
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = footprint;
    }

    /// The base cells holding every data cell, as the root metadata keeps
    /// them, if they describe the contents the journal's token `state`
    /// names.
    pub(crate) fn valid_data_window(&self, state: Option<&str>) -> Option<Window> {
        let kept = self
            .data
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()?;
        (Some(kept.state.as_str()) == state).then_some(kept.window)
    }

    /// The base cells holding every data cell, as the root metadata keeps
    /// them for the store's contents now; `None` when it keeps none, or
    /// none for these contents (a write under way, another writer).
    ///
    /// # Errors
    /// I/O, or a damaged journal.
    pub(crate) fn kept_data_window(&self) -> Result<Option<Window>, EngineError> {
        let state = self.settled_state()?;
        Ok(self.valid_data_window(state.as_deref()))
    }

    /// Keeps `window` as the base cells holding every data cell of the
    /// contents token `state` names, in the root metadata.
    pub(crate) fn keep_data_window(
        &self,
        window: Option<Window>,
        state: &str,
    ) -> Result<(), EngineError> {
        *self
            .data
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = window.map(|window| DataWindow {
            window,
            state: state.to_string(),
        });
        self.write_metadata(&self.time_state(), &self.footprint(), MetadataChange::Root)
    }

    /// The store's format version (see docs/FORMAT.md).
    #[must_use]
    pub fn format_version(&self) -> u32 {
        self.version
    }

    /// How the store's chunks lie.
    #[must_use]
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// What marks nodata in this store, as `T`.
    #[must_use]
    pub fn nodata<T: Element>(&self) -> Nodata<T> {
        Nodata::of(self.structure.nodata)
    }

    pub(crate) fn check_dtype<T: Element>(&self) -> Result<(), EngineError> {
        if T::DTYPE == self.structure.dtype {
            Ok(())
        } else {
            Err(EngineError::DType {
                expected: self.structure.dtype,
                got: T::DTYPE,
            })
        }
    }

    pub(crate) fn write_serial(&self) -> std::sync::MutexGuard<'_, ()> {
        // The guarded value is (); a panic in another write leaves nothing torn.
        self.serial
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The colour table of a categorical store, if it has one.
    #[must_use]
    pub fn palette(&self) -> Option<Arc<Palette>> {
        self.palette
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Saves the store's colour table (atomically), replacing any.
    ///
    /// # Errors
    /// A read-only store, or I/O.
    pub fn set_palette(&self, palette: Palette) -> Result<(), EngineError> {
        self.check_writable()?;
        let key = StoreKey::new(PALETTE_KEY).map_err(crate::storage::StorageError::from)?;
        self.storage.put(&key, &palette.to_json())?;
        *self
            .palette
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Arc::new(palette));
        self.contents_changed()
    }

    /// What each band is, as the first ingest that described its bands
    /// gave it (empty when none did).
    #[must_use]
    pub fn band_info(&self) -> Arc<[BandInfo]> {
        self.band_info
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Saves what each band is (atomically, one object), replacing any.
    ///
    /// # Errors
    /// A read-only store, descriptions of another number of bands than the
    /// store's, or I/O.
    pub fn set_band_info(&self, bands: Vec<BandInfo>) -> Result<(), EngineError> {
        self.check_writable()?;
        if bands.len() != self.structure.band_count() {
            return Err(EngineError::BandCount {
                expected: self.structure.band_count(),
                got: bands.len(),
            });
        }
        let key = StoreKey::new(BAND_INFO_KEY).map_err(crate::storage::StorageError::from)?;
        self.storage.put(&key, &band_info::to_json(&bands))?;
        *self
            .band_info
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::from(bands);
        Ok(())
    }

    pub(crate) fn check_writable(&self) -> Result<(), EngineError> {
        if self.lock.is_some() {
            Ok(())
        } else {
            Err(EngineError::ReadOnly(self.location()))
        }
    }

    /// Whether a chunk is stored.
    ///
    /// # Errors
    /// I/O, or a damaged shard index.
    pub fn chunk_exists(&self, t: u32, loc: ChunkLoc) -> Result<bool, EngineError> {
        self.with_place(t, loc, |place| {
            let Some(place) = place else {
                return Ok(false);
            };
            self.note_read(|| Read::Value(place.key.to_string()));
            self.is_stored(&place)
        })
    }

    /// A chunk's bytes as the store's codec encodes them (see
    /// [`codec`]), in either layout; `None` when absent.
    ///
    /// # Errors
    /// I/O, or a damaged shard.
    pub fn stored_chunk(&self, t: u32, loc: ChunkLoc) -> Result<Option<Vec<u8>>, EngineError> {
        self.with_place(t, loc, |place| {
            let Some(place) = place else {
                return Ok(None);
            };
            self.note_read(|| Read::Value(place.key.to_string()));
            Ok(self.fetch(&place)?.map(crate::storage::Bytes::into_vec))
        })
    }

    /// Reads and decodes a chunk; `None` when absent (all nodata).
    ///
    /// # Errors
    /// [`EngineError::Corrupt`] when a checksum or the size is wrong, or I/O.
    pub fn read_chunk<T: Element>(
        &self,
        t: u32,
        loc: ChunkLoc,
    ) -> Result<Option<Array3<T>>, EngineError> {
        self.check_dtype::<T>()?;
        // A view where the backend can: the codec checks the bytes.
        let stored = self.with_place(t, loc, |place| {
            let Some(place) = place else {
                return Ok(None);
            };
            self.note_read(|| Read::Value(place.key.to_string()));
            Ok(self.fetch(&place)?.map(|bytes| (place, bytes)))
        })?;
        let Some((place, stored)) = stored else {
            return Ok(None);
        };
        let raw = match codec::decode(self.structure.codec, &stored, self.chunk_bytes()) {
            Ok(raw) => raw,
            Err(reason) => {
                // The backend's own check names the file (a pack) if it
                // sees the damage too.
                self.storage.get(&place.key)?;
                return Err(EngineError::Corrupt {
                    key: place.name(),
                    store: self.location(),
                    reason,
                });
            }
        };
        let values: Vec<T> = crate::engine::grid::dtype::from_le_bytes(&raw);
        let array =
            Array3::from_shape_vec(self.chunk_dim(), values).map_err(|_| EngineError::Shape {
                expected: self.chunk_dim(),
                got: (0, 0, 0),
            })?;
        Ok(Some(array))
    }

    /// Stores a chunk, or removes it when `data` is `None` or all nodata;
    /// `Staged` writes stay invisible until committed (see
    /// [`crate::storage::Storage::stage`]; sharded, until the block's
    /// shards are written, see [`Store::flush_shards`]). Returns the
    /// encoded size in bytes (0 when removed). Only the write protocol
    /// calls this.
    pub(crate) fn put_chunk<T: Element>(
        &self,
        t: u32,
        loc: ChunkLoc,
        data: Option<&Array3<T>>,
        visibility: crate::engine::Visibility,
    ) -> Result<u64, EngineError> {
        self.check_writable()?;
        self.check_dtype::<T>()?;
        let nodata = self.nodata::<T>();
        let data = data.filter(|d| !crate::engine::grid::dtype::all_nodata(&d.view(), nodata));
        let staged = visibility == crate::engine::Visibility::Staged;
        let Some(place) = self.place_in(&self.footprint(), t, loc) else {
            // Writes grow the arrays first (`Store::begin_write`): only an
            // empty chunk can lie outside them.
            return match data {
                None => Ok(0),
                Some(_) => Err(EngineError::Misplaced {
                    key: self.chunk_name(t, loc),
                    store: self.location(),
                    reason: "a write reached a chunk outside the level's array".into(),
                }),
            };
        };
        let Some(data) = data else {
            self.store_encoded(&place, None, staged)?;
            self.note_summary(t, loc, None);
            return Ok(0);
        };
        if data.dim() != self.chunk_dim() {
            return Err(EngineError::Shape {
                expected: self.chunk_dim(),
                got: data.dim(),
            });
        }
        let copied;
        let cells = match data.as_slice() {
            Some(cells) => cells,
            None => {
                copied = data.iter().copied().collect::<Vec<_>>();
                &copied
            }
        };
        let raw = crate::engine::grid::dtype::le_bytes(cells);
        let stored = codec::encode(self.structure.codec, &raw)
            .map_err(|e| crate::storage::StorageError::io(self.location(), e))?;
        let bytes = self.store_encoded(&place, Some(&stored), staged)?;
        self.note_summary(t, loc, Some(Summary::of_chunk(data, nodata, bytes)));
        Ok(stored.len() as u64)
    }

    /// The index `instant` has, or would get when first written, without
    /// registering it.
    ///
    /// # Errors
    /// As [`Store::time_index`].
    pub fn planned_time_index(&self, instant: Option<i64>) -> Result<u32, EngineError> {
        match (&self.structure.time, instant) {
            (Some(TimeAxis::Irregular), Some(i)) => {
                let state = self.time_state();
                let known = state.instants.iter().position(|t| *t == i);
                Ok(known.map_or(state.length, |k| u32::try_from(k).unwrap_or(u32::MAX)))
            }
            (Some(TimeAxis::Regular { origin, step }), Some(i)) => {
                TimeAxis::regular_index(*origin, *step, i)
                    .map_err(|e| EngineError::Time(e.to_string()))
            }
            _ => self.time_index(instant, false),
        }
    }

    /// The time index of `instant`, registering a new instant when `create`.
    ///
    /// # Errors
    /// [`EngineError::Time`] when the instant is missing, unexpected, or not
    /// on the axis.
    pub fn time_index(&self, instant: Option<i64>, create: bool) -> Result<u32, EngineError> {
        let Some(axis) = &self.structure.time else {
            return match instant {
                None => Ok(0),
                Some(_) => Err(EngineError::Time(
                    "the store has no time axis; drop --time".into(),
                )),
            };
        };
        let Some(instant) = instant else {
            return Err(EngineError::Time(
                "the store has a time axis; give --time".into(),
            ));
        };
        let state = self.time_state();
        let index = match axis {
            TimeAxis::Regular { origin, step } => TimeAxis::regular_index(*origin, *step, instant)
                .map_err(|e| EngineError::Time(e.to_string()))?,
            TimeAxis::Irregular => match state.instants.iter().position(|t| *t == instant) {
                Some(i) => {
                    u32::try_from(i).map_err(|_| EngineError::Time("too many instants".into()))?
                }
                None if create => state.length,
                None => return Err(self.no_data_at(&state, instant)),
            },
        };
        if index >= state.length {
            if !create {
                return Err(self.no_data_at(&state, instant));
            }
            self.check_writable()?;
            let mut next = state;
            if matches!(axis, TimeAxis::Irregular) {
                next.instants.push(instant);
            }
            next.length = index + 1;
            self.write_metadata(&next, &self.footprint(), MetadataChange::Time)?;
            *self
                .time
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = next;
        }
        Ok(index)
    }

    /// Every time index that holds data (`[0]` without a time axis).
    #[must_use]
    pub fn time_indices(&self) -> Vec<u32> {
        if self.structure.time.is_none() {
            vec![0]
        } else {
            (0..self.time_state().length).collect()
        }
    }

    /// The instant of a time index, if the store has a time axis.
    #[must_use]
    pub fn instant_of(&self, t: u32) -> Option<i64> {
        self.instant_in(&self.time_state(), t)
    }

    /// "No data at `instant`", with the stored instants nearest it, and
    /// `--interpolate` where it lies between two of them.
    fn no_data_at(&self, state: &TimeState, instant: i64) -> EngineError {
        use crate::engine::grid::time::format_instant;
        let stored: Vec<i64> = (0..state.length)
            .filter_map(|t| self.instant_in(state, t))
            .collect();
        let before = stored.iter().copied().filter(|&t| t < instant).max();
        let after = stored.iter().copied().filter(|&t| t > instant).min();
        let blends = !self.structure.aggregate.is_categorical();
        let near = match (before, after) {
            (None, None) => "the store holds no instants yet".to_string(),
            (Some(b), Some(a)) => format!(
                "the nearest stored instants are {} and {}{}",
                format_instant(b),
                format_instant(a),
                if blends {
                    " (--interpolate blends them)"
                } else {
                    ""
                }
            ),
            (Some(last), None) => format!(
                "the last stored instant is {} ({} stored)",
                format_instant(last),
                stored.len()
            ),
            (None, Some(first)) => format!(
                "the first stored instant is {} ({} stored)",
                format_instant(first),
                stored.len()
            ),
        };
        EngineError::Time(format!("no data at {}: {near}", format_instant(instant)))
    }

    fn instant_in(&self, state: &TimeState, t: u32) -> Option<i64> {
        match self.structure.time.as_ref()? {
            TimeAxis::Regular { origin, step } => Some(origin + i64::from(t) * step),
            TimeAxis::Irregular => state.instants.get(t as usize).copied(),
        }
    }

    /// The stored instants in `[from, to]` as `(time index, instant)`, in
    /// time order. On a non-equidistant axis these are exactly the instants
    /// written; nothing is interpolated between them.
    #[must_use]
    pub fn instants_between(&self, from: i64, to: i64) -> Vec<(u32, i64)> {
        // One snapshot of the axis: the explorer calls this every frame.
        let state = self.time_state();
        let mut found: Vec<(u32, i64)> = (0..state.length)
            .filter_map(|t| self.instant_in(&state, t).map(|i| (t, i)))
            .filter(|(_, i)| (from..=to).contains(i))
            .collect();
        found.sort_by_key(|(_, i)| *i);
        found
    }

    /// The master chunk: the lowest chunk that covers all data at time `t`,
    /// found by walking down from the root while only one child holds data.
    /// `None` for an empty store. Costs O(levels).
    ///
    /// # Errors
    /// I/O.
    pub fn master_chunk(&self, t: u32) -> Result<Option<ChunkLoc>, EngineError> {
        let mut master = self.grid.root();
        if !self.chunk_exists(t, master)? {
            return Ok(None);
        }
        while let Some(children) = master.children() {
            let mut present = Vec::with_capacity(4);
            for child in children {
                if self.chunk_exists(t, child)? {
                    present.push(child);
                }
            }
            match present.as_slice() {
                [only] => master = *only,
                _ => break,
            }
        }
        Ok(Some(master))
    }

    /// Stored chunks at `level` with their sizes: `(t, loc, bytes)`.
    ///
    /// # Errors
    /// I/O, or a shard whose index is damaged.
    pub fn list_chunks(&self, level: u8) -> Result<Vec<StoredChunk>, EngineError> {
        let listing = self.list_level(level)?;
        if let Some((key, reason)) = listing.damaged.into_iter().next() {
            return Err(EngineError::Corrupt {
                key,
                store: self.location(),
                reason: codec::DecodeError::Shard(reason),
            });
        }
        Ok(listing.chunks)
    }

    /// The chunks of `level` (as [`Store::list_chunks`]), the keys that
    /// name chunks outside the level's array (none in a sound store: a
    /// file of another tool, or a chunk its footprint lost), and the
    /// shards whose index is damaged.
    pub(crate) fn list_level(
        &self,
        level: u8,
    ) -> Result<crate::engine::persistence::sharded::Listing, EngineError> {
        self.grid.check_level(level)?;
        self.refresh()?;
        let prefix = zarr::level_prefix(level);
        self.note_read(|| Read::Listing(prefix.clone()));
        self.list_stored(level)
    }

    /// Writes the metadata that `change` touched: each level's group,
    /// array and (from version 2) coordinates, the consolidated metadata,
    /// and last the root attributes, which gridstore reads.
    pub(crate) fn write_metadata(
        &self,
        time: &TimeState,
        footprint: &Footprint,
        change: MetadataChange,
    ) -> Result<(), EngineError> {
        let instants: Vec<i64> = (0..time.length)
            .filter_map(|t| self.instant_in(time, t))
            .collect();
        let footprint = *footprint;
        let views: Vec<LevelView<'_>> = (0..=self.grid.top_level())
            .map(|level| LevelView {
                level,
                chunks: footprint.array_window(&self.grid, level),
                instants: &instants,
                version: self.version,
            })
            .collect();
        let meta = RootMeta {
            format_version: self.version,
            layout: (self.version >= 2).then(|| self.layout.name().to_string()),
            shard: self.layout.sharded().then(|| self.layout.shard()),
            structure: self.structure.clone(),
            time: time.clone(),
            period: self.period_level,
            base_only: self.base_only,
            extent: footprint.base(),
            data: self
                .data
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone(),
        };
        if self.layout.sharded() {
            let mut attrs = zarr::geozarr_root(&self.structure, &self.grid, &views);
            attrs.insert("gridstore".into(), json!(meta));
            return self.write_zarr3_metadata(serde_json::Value::Object(attrs), &views, change);
        }
        let root = if self.version >= 2 {
            let mut attrs = zarr::geozarr_root(&self.structure, &self.grid, &views);
            attrs.insert("gridstore".into(), json!(meta));
            serde_json::Value::Object(attrs)
        } else {
            json!({
                "gridstore": meta,
                "multiscales": zarr::multiscales(&self.structure, &self.grid, &views),
            })
        };
        let root = serde_json::to_vec_pretty(&root).unwrap_or_default();
        let group = serde_json::to_vec_pretty(&json!({ "zarr_format": 2 })).unwrap_or_default();
        if change == MetadataChange::All {
            self.put_bytes(".zgroup", &group)?;
        }
        let mut all = vec![(".zgroup".to_string(), group)];
        for view in &views {
            let objects = zarr::level_objects(&self.structure, &self.grid, view);
            let level = format!("{}/", view.level);
            self.write_objects(&objects, change)?;
            let objects: Vec<(String, Vec<u8>)> = objects
                .into_iter()
                .filter_map(|(k, b)| Some((k, b?)))
                .collect();
            if self.version >= 2 && change != MetadataChange::Root {
                let relative = objects
                    .iter()
                    .filter_map(|(k, b)| Some((k.strip_prefix(&level)?, b.as_slice())));
                self.put_bytes(
                    &format!("{level}{CONSOLIDATED}"),
                    &zarr::consolidated(relative),
                )?;
            }
            all.extend(objects);
        }
        all.push((ROOT_ATTRS.to_string(), root.clone()));
        if self.version >= 2 {
            let every = all.iter().map(|(k, b)| (k.as_str(), b.as_slice()));
            self.put_bytes(CONSOLIDATED, &zarr::consolidated(every))?;
        }
        self.put_bytes(ROOT_ATTRS, &root)
    }

    /// [`Store::write_metadata`] of the `zarr3` layout: each level's
    /// objects and group (with its consolidated metadata), then the root
    /// group, which consolidates everything, last.
    fn write_zarr3_metadata(
        &self,
        attributes: serde_json::Value,
        views: &[LevelView<'_>],
        change: MetadataChange,
    ) -> Result<(), EngineError> {
        let doc = |v: &serde_json::Value| serde_json::to_vec_pretty(v).unwrap_or_default();
        let mut everything = serde_json::Map::new();
        for view in views {
            let (objects, group) =
                zarr3::level_objects(&self.structure, &self.grid, view, self.layout);
            self.write_objects(&objects, change)?;
            let level = view.level;
            if change != MetadataChange::Root {
                self.put_bytes(&format!("{level}/{}", zarr3::ROOT), &doc(&group))?;
            }
            if let Some(nodes) = group["consolidated_metadata"]["metadata"].as_object() {
                for (name, node) in nodes {
                    everything.insert(format!("{level}/{name}"), node.clone());
                }
            }
            let mut bare = group.clone();
            if let Some(map) = bare.as_object_mut() {
                map.remove("consolidated_metadata");
            }
            everything.insert(level.to_string(), bare);
        }
        let root = zarr3::group(attributes, Some(everything));
        self.put_bytes(zarr3::ROOT, &doc(&root))
    }

    /// Writes (or, with no bytes, removes) the objects `change` touches.
    fn write_objects(
        &self,
        objects: &zarr::Objects,
        change: MetadataChange,
    ) -> Result<(), EngineError> {
        for (key, bytes) in objects.iter().filter(|(key, _)| change.touches(key)) {
            match bytes {
                Some(bytes) => self.put_bytes(key, bytes)?,
                None => self
                    .storage
                    .delete(&StoreKey::new(key).map_err(crate::storage::StorageError::from)?)?,
            }
        }
        Ok(())
    }

    fn put_bytes(&self, key: &str, bytes: &[u8]) -> Result<(), EngineError> {
        let key = StoreKey::new(key).map_err(crate::storage::StorageError::from)?;
        self.storage.put(&key, bytes)?;
        Ok(())
    }
}

/// A stored chunk as a listing finds it: (time index, place, stored bytes).
pub type StoredChunk = (u32, ChunkLoc, u64);

/// Which metadata a change touches (see [`Store::write_metadata`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MetadataChange {
    /// A new instant: the data arrays' shape and the time coordinate.
    Time,
    /// The arrays' extent, or a new store: everything.
    All,
    /// The root metadata alone (and the consolidated metadata holding it).
    Root,
}

impl MetadataChange {
    fn touches(self, key: &str) -> bool {
        match self {
            Self::All => true,
            Self::Time => {
                key.ends_with("/data/.zarray")
                    || key.ends_with("/data/zarr.json")
                    || key.contains("/time/")
            }
            Self::Root => false,
        }
    }
}
