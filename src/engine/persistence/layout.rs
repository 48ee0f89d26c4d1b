//! The layouts a store's chunks can lie in, chosen at creation and recorded
//! in the root metadata (`gridstore.layout`).
//!
//! - `zarr2`: Zarr v2, one object per chunk. Every Zarr reader reads it,
//!   GDAL from 3.4 (Debian 12's 3.6 included) and QGIS 3.
//! - `zarr3`: Zarr v3 with the `sharding_indexed` codec: one object (a
//!   shard) per block of chunks, each inner chunk and the shard's index
//!   checked by CRC-32C. Shards cover the same ground at every level: a
//!   level-0 shard of `shard × shard` chunks is the ground of one write
//!   block, and level `k`'s shards have `shard / 2^k` chunks per side (at
//!   least one). So each shard of the levels a block aggregates belongs to
//!   exactly one block, and a write puts every shard it changes once, whole.

use crate::engine::grid::Grid;
use crate::engine::{Codec, Structure};
use std::fmt;
use std::str::FromStr;

/// How a store's chunks lie in storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Zarr v2, one object per chunk.
    Zarr2,
    /// Zarr v3 with sharding: `shard × shard` chunks per level-0 shard.
    Zarr3 {
        /// Chunks per side of a level-0 shard: a power of two, 2 to 16.
        shard: u32,
    },
}

impl Layout {
    /// Chunks per side of a level-0 shard unless `--shard` says otherwise:
    /// 8 × 8 chunks of 256² cells are 2048² cells, a few MB compressed,
    /// the object size object stores serve best, and the ground of one
    /// write block today.
    pub const DEFAULT_SHARD: u32 = 8;

    /// The largest `--shard`: a block of 16 × 16 chunks of 256² f32 cells
    /// is 64 MiB per band in memory per worker.
    pub const MAX_SHARD: u32 = 16;

    /// The layout's name in the root metadata and on the command line.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Zarr2 => "zarr2",
            Self::Zarr3 { .. } => "zarr3",
        }
    }

    /// Chunks per side of a level-0 shard (1: no sharding).
    #[must_use]
    pub fn shard(self) -> u32 {
        match self {
            Self::Zarr2 => 1,
            Self::Zarr3 { shard } => shard,
        }
    }

    /// Whether chunks lie in shards.
    #[must_use]
    pub fn sharded(self) -> bool {
        matches!(self, Self::Zarr3 { .. })
    }

    /// Chunks per side of a shard of `level`: the level-0 shard's ground,
    /// at least one chunk.
    #[must_use]
    pub fn shard_side(self, level: u8) -> u32 {
        self.shard()
            .checked_shr(u32::from(level))
            .unwrap_or(0)
            .max(1)
    }

    /// The key of the root metadata, which holds the structure.
    #[must_use]
    pub fn root_key(self) -> &'static str {
        match self {
            Self::Zarr2 => super::zarr::ROOT_ATTRS,
            Self::Zarr3 { .. } => super::zarr3::ROOT,
        }
    }

    /// The level a write block aggregates in memory: its base chunks'
    /// ancestors up to it are staged by the block. Sharded, the block is
    /// one level-0 shard, so its ancestors fill whole shards.
    #[must_use]
    pub fn block_level(self, grid: &Grid) -> u8 {
        let levels = match self {
            Self::Zarr2 => crate::engine::pyramid::write::BLOCK_LEVELS,
            // A power of two up to 16 by `check`: at most 4.
            Self::Zarr3 { shard } => u8::try_from(shard.trailing_zeros()).unwrap_or(u8::MAX),
        };
        levels.min(grid.top_level())
    }

    /// Whether a store of `structure` can take this layout.
    ///
    /// # Errors
    /// A shard that is not a power of two from 2 to 16, a shard larger than
    /// the domain, or a codec Zarr v3 lacks (lz4).
    pub fn check(self, structure: &Structure) -> Result<(), String> {
        let Self::Zarr3 { shard } = self else {
            return Ok(());
        };
        if !shard.is_power_of_two() || !(2..=Self::MAX_SHARD).contains(&shard) {
            return Err(format!(
                "--shard {shard}: a shard is a power of two from 2 to {} chunks per side",
                Self::MAX_SHARD
            ));
        }
        if u64::from(shard) > 1u64 << structure.domain_levels {
            return Err(format!(
                "--shard {shard}: larger than the domain's {} chunks per side",
                1u64 << structure.domain_levels
            ));
        }
        if structure.codec == Codec::Lz4 {
            return Err(
                "the zarr3 layout has no lz4 codec (Zarr v3 knows zstd, not numcodecs' lz4): choose zstd or none"
                    .into(),
            );
        }
        Ok(())
    }
}

impl Default for Layout {
    /// `zarr2`: every reader of today reads it, GDAL 3.6 and QGIS 3
    /// included, which read no Zarr v3.
    fn default() -> Self {
        Self::Zarr2
    }
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Layout {
    type Err = String;

    /// `zarr2` or `zarr3` (with the default shard).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "zarr2" => Ok(Self::Zarr2),
            "zarr3" => Ok(Self::Zarr3 {
                shard: Self::DEFAULT_SHARD,
            }),
            other => Err(format!("unknown layout '{other}' (zarr2, zarr3)")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::grid::structure::tests::sample;

    #[test]
    fn shards_cover_the_same_ground_at_every_level() {
        let l = Layout::Zarr3 { shard: 8 };
        let sides: Vec<u32> = (0..6).map(|k| l.shard_side(k)).collect();
        assert_eq!(sides, [8, 4, 2, 1, 1, 1]);
        assert_eq!(Layout::Zarr2.shard_side(0), 1);
        let grid = Grid::new(&sample());
        assert_eq!(l.block_level(&grid), 3);
        assert_eq!(Layout::Zarr3 { shard: 2 }.block_level(&grid), 1);
    }

    #[test]
    fn bad_shards_and_codecs_are_refused() {
        let s = sample();
        assert!(Layout::Zarr3 { shard: 8 }.check(&s).is_ok());
        for shard in [0, 1, 3, 32] {
            let e = Layout::Zarr3 { shard }.check(&s).unwrap_err();
            assert!(e.contains("--shard"), "{e}");
        }
        let mut lz4 = sample();
        lz4.codec = Codec::Lz4;
        assert!(Layout::Zarr3 { shard: 8 }.check(&lz4).is_err());
        assert!(Layout::Zarr2.check(&lz4).is_ok());
        assert_eq!("zarr3".parse::<Layout>(), Ok(Layout::Zarr3 { shard: 8 }));
        assert!("zarr4".parse::<Layout>().is_err());
    }
}
