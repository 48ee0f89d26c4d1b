//! The grid in space and time: cell types, a store's structure, where every
//! cell and chunk of every level lies, and the time axis. Pure math, no I/O.

pub mod cf_time;
pub(crate) mod dtype;
mod geometry;
pub mod period;
pub mod structure;
pub mod time;
pub mod time_from_name;

pub use geometry::{ChunkLoc, Extent, Grid, GridError, Window};
