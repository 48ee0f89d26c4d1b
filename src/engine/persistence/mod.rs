//! How a store lies in storage: the on-disk layout (Zarr v2 and v3 metadata,
//! chunk keys and shards, one module per layout), the chunk codecs with their
//! checksums, the write journal that makes writes atomic and crash-safe,
//! and the colour table.

pub mod band_info;
pub mod codec;
pub mod footprint;
pub(crate) mod journal;
pub mod layout;
pub mod palette;
mod reshape;
pub mod shard;
pub(crate) mod sharded;
pub mod statistics;
mod upgrade;
pub mod zarr;
pub mod zarr3;
