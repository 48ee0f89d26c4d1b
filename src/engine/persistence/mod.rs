//! How a store lies in storage: the on-disk layout (Zarr v2 metadata and
//! chunk keys, one module per layout), the chunk codecs with their
//! checksums, the write journal that makes writes atomic and crash-safe,
//! and the colour table.

pub mod codec;
pub mod footprint;
pub(crate) mod journal;
pub mod palette;
mod reshape;
mod upgrade;
pub mod zarr;
