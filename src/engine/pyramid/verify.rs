//! Whole-store checks: every chunk's checksum, and every aggregate against
//! a recomputation from its children.

use crate::engine::error::EngineError;
use crate::engine::grid::ChunkLoc;
use crate::engine::job::{CancelToken, Progress, ProgressSink};
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
        for level in 0..=top {
            let (chunks, outside) = self.list_level(level)?;
            stored.push(chunks.into_iter().map(|(t, l, _)| (t, l)).collect());
            strays.extend(outside);
        }
        let moving = self.interrupted_move()?;
        // Every stored aggregate, and every parent of a stored chunk (which must exist).
        let mut parents: BTreeSet<(u32, ChunkLoc)> = BTreeSet::new();
        for level in 1..=top {
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
        let check_base = base.par_iter().map(|&(t, loc)| {
            cancel.check()?;
            progress.add(1, 0);
            Ok(self
                .read_chunk::<T>(t, loc)
                .err()
                .map(|e| self.damage(t, loc, &e)))
        });
        let check_parents = parents.par_iter().map(|&(t, loc)| {
            cancel.check()?;
            progress.add(1, 0);
            let stored = match self.read_chunk::<T>(t, loc) {
                Ok(s) => s,
                Err(e) => return Ok(Some(self.damage(t, loc, &e))),
            };
            if is_pending(t, loc) {
                return Ok(None);
            }
            Ok(match self.compute_parent::<T>(t, loc, &empty) {
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
            })
        });
        let mut damage: Vec<Damage> = check_base
            .chain(check_parents)
            .collect::<Result<Vec<Option<Damage>>, EngineError>>()?
            .into_iter()
            .flatten()
            .collect();
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
        damage.sort_by(|a, b| a.key.cmp(&b.key));
        damage.dedup();
        Ok(VerifyReport {
            chunks: total,
            damage,
            pending,
            moving,
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
