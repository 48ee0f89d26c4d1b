//! The engine: structure, grid math, aggregation, and the store.
//!
//! Nothing here knows about GDAL, the GUI or the command line.

pub mod aggregate;
mod array;
mod bounds;
pub mod cache;
pub mod codec;
mod dtype;
mod error;
pub mod grid;
mod history;
pub mod interpolate;
pub mod job;
mod journal;
pub mod palette;
mod read;
mod sources;
mod storable;
mod store;
mod structure;
pub mod time;
pub mod tree;
mod verify;
mod write;
pub mod zarr;

pub use array::Array;
pub use cache::{CacheError, Cached, ClearFilter, EntryInfo, FunctionCache};
pub use dtype::{DType, Element, all_nodata};
pub use error::EngineError;
pub use grid::{ChunkLoc, Extent, Grid, GridError, Window};
pub use history::{IngestRecord, Note, WriteKind};
pub use interpolate::{InterpolateError, Interpolated, Interpolating};
pub use job::{CancelToken, JobEvent, NoProgress, Progress, ProgressSink};
pub use journal::{PendingWrite, Phase};
pub use palette::Palette;
pub use read::Raster;
pub use storable::Storable;
pub use store::{Store, TimeState};
pub use structure::{
    Aggregator, Codec, Crs, DEFAULT_DOMAIN_LEVELS, MAX_DOMAIN_LEVELS, Resampling, Structure,
    StructureError, domain_levels_covering,
};
pub use time::TimeAxis;
pub use verify::{Damage, VerifyReport};
pub(crate) use write::Visibility;
pub use write::{BLOCK_LEVELS, BaseWrite, BlockReader, Cells, NoReader, WriteError, WriteReport};
