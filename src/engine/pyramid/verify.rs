//! Whole-store checks: every chunk's checksum, and every aggregate against
//! a recomputation from its children.

use crate::engine::error::EngineError;
use crate::engine::grid::ChunkLoc;
use crate::engine::job::{CancelToken, Progress, ProgressSink};
use crate::engine::persistence::statistics::Summary;
use crate::engine::pyramid::aggregate::same_chunk;
use crate::engine::pyramid::write::ChunkCache;
use crate::engine::{Element, Store};
use rayon::prelude::*;
use std::collections::BTreeSet;

/// One problem found by [`Store::verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// The chunk's storage key.
    pub key: String,
    /// What is wrong with it.
    pub reason: String,
}

/// The outcome of [`Store::verify`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Chunks checked.
    pub chunks: u64,
    /// Problems, sorted by key.
    pub damage: Vec<Damage>,
    /// Interrupted writes whose aggregates were not compared (the next
    /// writer recomputes them).
    pub pending: Vec<crate::engine::PendingWrite>,
    /// Whether a move of the arrays' origins was interrupted: no aggregate
    /// was compared (the moved levels are partly elsewhere until the next
    /// writer finishes the move).
    pub moving: bool,
    /// What became of the per-level statistics.
    pub statistics: Statistics,
}

/// How [`Store::verify`] found the per-level statistics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Statistics {
    /// Compared with the chunks: differences are listed as damage.
    #[default]
    Checked,
    /// Not compared: a chunk could not be read, or a write or a move is
    /// unfinished.
    Unchecked,
    /// Not kept for these contents (a writer that does not keep them wrote
    /// last): [`Store::rebuild_statistics`] rebuilds them.
    NotKept,
}

impl Store {
    /// Decodes every chunk (checking its checksum) and recomputes every
    /// aggregate from its children.
    ///
    /// # Errors
    /// I/O or cancellation; damage is reported, not returned as an error.
    pub fn verify<T: Element>(
        &self,
        progress: &dyn ProgressSink,
        cancel: &CancelToken,
    ) -> Result<VerifyReport, EngineError> {
        let top = self.grid().top_level();
        let mut stored: Vec<Vec<(u32, ChunkLoc)>> = Vec::new();
        let mut strays = Vec::new();
        let mut unreadable = Vec::new();
        let mut sizes = std::collections::HashMap::new();
        for level in 0..=top {
            let listing = self.list_level(level)?;
            sizes.extend(listing.chunks.iter().map(|&(t, l, n)| ((t, l), n)));
            stored.push(listing.chunks.into_iter().map(|(t, l, _)| (t, l)).collect());
            strays.extend(listing.strays);
            unreadable.extend(listing.damaged);
        }
        let moving = self.interrupted_move()?;
        // Every stored aggregate, and every parent of a stored chunk (which must exist).
        let mut parents: BTreeSet<(u32, ChunkLoc)> = BTreeSet::new();
        let mut above_base = Vec::new();
        if self.base_only {
            // Level 0 only: a chunk above it is out of place.
            above_base.extend(stored.iter().skip(1).flatten().map(|&(t, loc)| Damage {
                key: self.chunk_name(t, loc),
                reason: "a chunk above level 0 in a store that keeps level 0 only".into(),
            }));
        }
        for level in (1..=top).filter(|_| !self.base_only) {
            parents.extend(stored[level as usize].iter().copied());
            parents.extend(
                stored[level as usize - 1]
                    .iter()
                    .map(|(t, l)| (*t, l.parent())),
            );
        }
        // Aggregates above an interrupted write are stale by design until the
        // next writer repairs them; only their checksums are checked.
        let pending = self.pending_writes()?;
        let grid = self.grid();
        let is_pending = |t: u32, loc: ChunkLoc| {
            let base = grid.chunk_window(loc).refined(loc.level);
            moving
                || pending
                    .iter()
                    .any(|p| p.t == t && p.window.intersect(&base).is_some())
        };
        let base: Vec<(u32, ChunkLoc)> = stored[0].clone();
        let total = (base.len() + parents.len()) as u64;
        let progress = Progress::phase(progress, "verify", total);
        let empty = ChunkCache::<T>::new();
        let nodata = self.nodata::<T>();
        // What each stored chunk holds, for the statistics.
        let summary = |t: u32, loc: ChunkLoc, cells: Option<&ndarray::Array3<T>>| {
            let bytes = sizes.get(&(t, loc)).copied().unwrap_or(0);
            cells.map(|c| (t, loc, Summary::of_chunk(c, nodata, bytes)))
        };
        let check_base = base.par_iter().map(|&(t, loc)| {
            cancel.check()?;
            progress.add(1, 0);
            Ok(match self.read_chunk::<T>(t, loc) {
                Ok(cells) => (None, Some(summary(t, loc, cells.as_ref()))),
                Err(e) => (Some(self.damage(t, loc, &e)), None),
            })
        });
        let check_parents = parents.par_iter().map(|&(t, loc)| {
            cancel.check()?;
            progress.add(1, 0);
            let stored = match self.read_chunk::<T>(t, loc) {
                Ok(s) => s,
                Err(e) => return Ok((Some(self.damage(t, loc, &e)), None)),
            };
            let held = Some(summary(t, loc, stored.as_ref()));
            if is_pending(t, loc) {
                return Ok((None, held));
            }
            let damage = match self.compute_parent::<T>(t, loc, &empty) {
                // A damaged child is reported under its own key.
                Err(_) => None,
                Ok(expected) if same_chunk(expected.as_ref(), stored.as_ref()) => None,
                Ok(expected) => Some(Damage {
                    key: self.chunk_name(t, loc),
                    reason: match (expected.is_some(), stored.is_some()) {
                        (true, false) => "aggregate missing".into(),
                        (false, true) => "aggregate present over children without data".into(),
                        _ => "aggregate differs from its children".into(),
                    },
                }),
            };
            Ok((damage, held))
        });
        let checked = check_base
            .chain(check_parents)
            .collect::<Result<Vec<_>, EngineError>>()?;
        // A chunk that could not be read has no summary (`None`); an
        // absent one has an empty one (`Some(None)`).
        let readable = checked.iter().all(|(_, s)| s.is_some()) && unreadable.is_empty();
        let (damage, summaries): (Vec<_>, Vec<_>) = checked.into_iter().unzip();
        let mut damage: Vec<Damage> = damage.into_iter().flatten().collect();
        damage.extend(above_base);
        // The statistics must be those of the chunks, when every chunk
        // could be read and they describe these contents.
        let statistics = if !pending.is_empty() || !readable || moving {
            Statistics::Unchecked
        } else if !self.statistics_kept()? {
            Statistics::NotKept
        } else {
            let wrong = self.check_statistics(summaries.into_iter().flatten().flatten())?;
            damage.extend(
                wrong
                    .into_iter()
                    .map(|(key, reason)| Damage { key, reason }),
            );
            Statistics::Checked
        };
        // The history and other tree values carry their own checksums.
        let tree = crate::engine::catalogue::tree::Tree::new(self.storage().as_ref());
        damage.extend(
            tree.check()?
                .into_iter()
                .map(|(key, reason)| Damage { key, reason }),
        );
        // Chunk keys outside the arrays: nothing reads them, so whatever
        // they held is lost to the store. (An interrupted move leaves none:
        // its copies are staged, not stored.)
        damage.extend(strays.into_iter().map(|key| Damage {
            key,
            reason: "a chunk outside its level's array: no read finds it".into(),
        }));
        // A shard whose index is damaged hides every chunk in it.
        damage.extend(
            unreadable
                .into_iter()
                .map(|(key, reason)| Damage { key, reason }),
        );
        // While a move is unfinished the levels' metadata may be partly new.
        if !moving {
            damage.extend(self.check_array_metadata()?);
        }
        // The data's window the root keeps must hold every data cell (it is
        // wider only after a write that rolled back).
        if let Some(kept) = self.kept_data_window()?
            && pending.is_empty()
            && let Ok(Some(found)) = self.scan_data_window::<T>(0)
            && found.intersect(&kept) != Some(found)
        {
            damage.push(Damage {
                key: self.layout().root_key().to_string(),
                reason: format!(
                    "its data window (rows {}..{}, columns {}..{}) misses data cells (rows {}..{}, columns {}..{})",
                    kept.row,
                    kept.row + kept.rows,
                    kept.col,
                    kept.col + kept.cols,
                    found.row,
                    found.row + found.rows,
                    found.col,
                    found.col + found.cols
                ),
            });
        }
        // Period maps are stale by design above an unfinished write, as
        // aggregates are; their stores are verified all the same.
        let settled = pending.is_empty() && !moving;
        let (period_chunks, period_damage) =
            self.verify_periods::<T>(settled, &crate::engine::NoProgress, cancel)?;
        damage.extend(period_damage);
        damage.sort_by(|a, b| a.key.cmp(&b.key));
        damage.dedup();
        Ok(VerifyReport {
            chunks: total + period_chunks,
            damage,
            pending,
            moving,
            statistics,
        })
    }

    fn damage(&self, t: u32, loc: ChunkLoc, error: &EngineError) -> Damage {
        let reason = match error {
            EngineError::Corrupt { reason, .. } => reason.to_string(),
            other => other.to_string(),
        };
        Damage {
            key: self.chunk_name(t, loc),
            reason,
        }
    }
}

impl Store {
    /// Compares each level's data-array metadata (`.zarray` or
    /// `zarr.json`) with what the store writes, where it decides how
    /// chunks decode: the format, cell type, chunk grid and codecs. Another
    /// tool that rewrote it would make Zarr readers misread the chunks.
    ///
    /// # Errors
    /// I/O.
    pub(crate) fn check_array_metadata(&self) -> Result<Vec<Damage>, EngineError> {
        use crate::engine::persistence::{zarr, zarr3};
        let footprint = self.footprint();
        let instants: Vec<i64> = self
            .time_indices()
            .into_iter()
            .filter_map(|t| self.instant_of(t))
            .collect();
        let sharded = self.layout().sharded();
        let mut damage = Vec::new();
        for level in 0..=self.grid().top_level() {
            let view = zarr::LevelView {
                level,
                chunks: footprint.array_window(self.grid(), level),
                instants: &instants,
                version: self.format_version(),
            };
            let (name, expected, fields) = if sharded {
                (
                    format!("{level}/{}/{}", zarr::ARRAY, zarr3::ROOT),
                    zarr3::data_array(self.structure(), self.grid(), &view, self.layout()),
                    ["zarr_format", "data_type", "chunk_grid", "codecs"].as_slice(),
                )
            } else {
                (
                    format!("{}/.zarray", zarr::level_prefix(level)),
                    zarr::zarray(self.structure(), &view),
                    ["zarr_format", "dtype", "chunks", "compressor", "filters"].as_slice(),
                )
            };
            let key =
                crate::storage::StoreKey::new(&name).map_err(crate::storage::StorageError::from)?;
            let Some(bytes) = self.storage().get(&key)? else {
                damage.push(Damage {
                    key: name,
                    reason: "missing: Zarr readers do not see the level".into(),
                });
                continue;
            };
            let found: serde_json::Value = match serde_json::from_slice(&bytes) {
                Ok(found) => found,
                Err(e) => {
                    damage.push(Damage {
                        key: name,
                        reason: format!("not JSON ({e})"),
                    });
                    continue;
                }
            };
            let Some(field) = fields.iter().find(|f| found.get(**f) != expected.get(**f)) else {
                continue;
            };
            let known = |codecs: &serde_json::Value| -> Vec<String> {
                let mut names = Vec::new();
                let mut stack = vec![codecs.clone()];
                while let Some(v) = stack.pop() {
                    match v {
                        serde_json::Value::Array(items) => stack.extend(items),
                        serde_json::Value::Object(map) => {
                            if let Some(n) = map.get("name").and_then(|n| n.as_str()) {
                                names.push(n.to_string());
                            }
                            if let Some(c) = map.get("configuration") {
                                stack.push(c["codecs"].clone());
                                stack.push(c["index_codecs"].clone());
                            }
                        }
                        _ => {}
                    }
                }
                names
            };
            let ours = known(&expected["codecs"]);
            let unknown = known(&found["codecs"])
                .into_iter()
                .find(|n| !ours.contains(n));
            let reason = match unknown {
                Some(codec) if sharded => format!(
                    "names the codec '{codec}', which is not the store's: Zarr readers would misread its chunks"
                ),
                _ => format!(
                    "its '{field}' is not the store's ({}): Zarr readers would misread its chunks",
                    expected.get(*field).unwrap_or(&serde_json::Value::Null)
                ),
            };
            damage.push(Damage { key: name, reason });
        }
        Ok(damage)
    }
}
