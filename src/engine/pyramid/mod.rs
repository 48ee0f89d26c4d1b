//! The pyramid: the 2×2 aggregation kernels, the one write protocol that
//! keeps every level exact, reads at any level and resolution, the data's
//! extent, and the check that every level is the aggregate of the one
//! below.

pub mod aggregate;
pub(crate) mod bounds;
pub(crate) mod read;
pub(crate) mod verify;
pub(crate) mod write;
