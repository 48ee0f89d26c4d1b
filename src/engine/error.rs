//! The engine's error type.

use crate::engine::DType;
use crate::engine::grid::GridError;
use crate::engine::grid::structure::StructureError;
use crate::engine::persistence::codec::DecodeError;
use crate::storage::StorageError;

/// Everything that can go wrong in the engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The storage backend failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The structure is not acceptable.
    #[error("invalid structure: {0}")]
    Structure(StructureError),
    /// Grid math refused a request.
    #[error(transparent)]
    Grid(#[from] GridError),
    /// A chunk failed its checksum or does not decode.
    #[error("corrupt chunk {key} in {store}: {reason}")]
    Corrupt {
        /// The chunk's key.
        key: String,
        /// The store.
        store: String,
        /// What is wrong.
        reason: DecodeError,
    },
    /// A chunk is not where, or not what, the store's protocol expects
    /// (it vanished during a copy, or lies outside its level's array).
    #[error("chunk {key} in {store}: {reason}")]
    Misplaced {
        /// The chunk's key, or its place when it has none.
        key: String,
        /// The store.
        store: String,
        /// What is wrong.
        reason: String,
    },
    /// The location holds no store, or a damaged root.
    #[error("{location} is not a gridstore store: {reason}")]
    NotAStore {
        /// Where we looked.
        location: String,
        /// What is missing or wrong.
        reason: String,
    },
    /// The store was written by an incompatible format version.
    #[error(
        "{location} has store format version {found}; this gridstore reads versions 1 to {supported}{hint}"
    )]
    Version {
        /// The store.
        location: String,
        /// The version on disk.
        found: u32,
        /// The version this build reads.
        supported: u32,
        /// What to do about it.
        hint: &'static str,
    },
    /// A typed call used the wrong element type.
    #[error("the store holds {expected} cells, the call used {got}")]
    DType {
        /// The store's type.
        expected: DType,
        /// The caller's type.
        got: DType,
    },
    /// A time value or time axis problem.
    #[error("{0}")]
    Time(String),
    /// Data of the wrong shape.
    #[error("data shape {got:?} does not match {expected:?}")]
    Shape {
        /// What the call needed (bands, rows, cols).
        expected: (usize, usize, usize),
        /// What it got.
        got: (usize, usize, usize),
    },
    /// Band descriptions for another number of bands than the store's.
    #[error("{got} band descriptions for a store of {expected} bands")]
    BandCount {
        /// The store's bands.
        expected: usize,
        /// The descriptions given.
        got: usize,
    },
    /// A write on a store opened read-only.
    #[error("store {0} is open read-only")]
    ReadOnly(String),
    /// The job was cancelled through its token.
    #[error("cancelled")]
    Cancelled,
    /// The store's tree (history, notes) refused an operation.
    #[error("{0}")]
    Tree(#[from] crate::engine::catalogue::tree::TreeError),
    /// A history request that cannot be met.
    #[error("{0}")]
    History(String),
    /// The function cache failed (results are still right; callers that
    /// can go on without the cache report it as a warning).
    #[error(transparent)]
    Cache(#[from] crate::engine::catalogue::cache::CacheError),
    /// A value between two samples cannot be interpolated.
    #[error(transparent)]
    Interpolate(#[from] crate::engine::catalogue::interpolate::InterpolateError),
}

impl From<StructureError> for EngineError {
    fn from(e: StructureError) -> Self {
        Self::Structure(e)
    }
}
