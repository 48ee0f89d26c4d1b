//! The engine: the grid, the pyramid, persistence and the catalogue, and
//! the store that brings them together.
//!
//! - [`grid`]: cell types, structure, grid math, time axis (pure math);
//! - [`pyramid`]: aggregation, the write protocol, reads, verification;
//! - [`persistence`]: the on-disk layout, codecs, journal, colour table;
//! - [`catalogue`]: the tree, history, function cache and its sources.
//!
//! Nothing here knows about GDAL, the GUI or the command line.

pub mod catalogue;
mod error;
pub mod grid;
pub mod job;
pub mod periods;
pub mod persistence;
pub mod pyramid;
mod store;

pub use catalogue::array::Array;
pub use catalogue::cache::{CacheError, Cached, ClearFilter, EntryInfo, FunctionCache};
pub use catalogue::history::{IngestRecord, Note, WriteKind};
pub use catalogue::interpolate::{InterpolateError, Interpolated, Interpolating};
pub use catalogue::storable::{NotStored, Storable};
pub use error::EngineError;
pub use grid::dtype::{DType, Element, Nodata, all_nodata};
pub use grid::structure::{
    Aggregator, Codec, Crs, DEFAULT_DOMAIN_LEVELS, MAX_DOMAIN_LEVELS, Resampling, Structure,
    StructureError, domain_levels_covering,
};
pub use grid::time::TimeAxis;
pub use grid::{ChunkLoc, Extent, Grid, GridError, Window};
pub use job::{CancelToken, JobEvent, NoProgress, Progress, ProgressSink};
pub use persistence::band_info::{BandInfo, ColourRole};
pub use persistence::journal::{PendingWrite, Phase};
pub use persistence::palette::Palette;
pub use persistence::statistics::Summary;
pub use pyramid::read::{AreaValue, Raster};
pub use pyramid::verify::{Damage, Statistics, VerifyReport};
pub(crate) use pyramid::write::Visibility;
pub use pyramid::write::{
    BLOCK_LEVELS, BaseWrite, Block, BlockReader, Cells, NoReader, WriteError, WriteReport,
};
pub use store::{Store, TimeState};
