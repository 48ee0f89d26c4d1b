//! What a store keeps beside its cells, and what is kept for it: the tree of
//! groups and typed variables (history, notes), the typed array, the
//! function cache with the sources of its results, and the interpolating
//! provider.

pub(crate) mod array;
pub mod cache;
pub(crate) mod history;
pub mod interpolate;
pub(crate) mod sources;
pub(crate) mod storable;
pub mod tree;
