//! Which chunks running jobs are rewriting (stale: the map still shows their
//! old versions) and which they have just replaced (marked for a few
//! seconds, fading), from the engine's `JobEvent::Chunks`.

use crate::engine::{Extent, Grid, Window};
use std::time::{Duration, Instant};

/// How long a just-written mark stays on the map.
pub const WRITTEN_FADE: Duration = Duration::from_secs(3);

/// Chunks of one write at a range of levels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Change {
    /// Time index.
    pub t: u32,
    /// The base cells written.
    pub window: Window,
    /// The lowest and highest level concerned.
    pub levels: [u8; 2],
    /// When the new versions landed; `None` while they are being written.
    pub written: Option<Instant>,
}

impl Change {
    /// Whether the change covers chunks of `level` at time `t`.
    #[must_use]
    pub fn at(&self, t: u32, level: u8) -> bool {
        self.t == t && (self.levels[0]..=self.levels[1]).contains(&level)
    }

    /// The changed area in CRS units.
    #[must_use]
    pub fn extent(&self, grid: &Grid) -> Extent {
        grid.window_extent(0, &self.window)
    }

    /// How visible a just-written mark still is (1 fresh, 0 gone); 1 for
    /// stale chunks.
    #[must_use]
    pub fn strength(&self, now: Instant) -> f32 {
        self.written.map_or(1.0, |at| {
            1.0 - (now.saturating_duration_since(at).as_secs_f32() / WRITTEN_FADE.as_secs_f32())
                .min(1.0)
        })
    }
}

/// The changes of one job.
#[derive(Debug, Clone, Default)]
pub struct Changes {
    /// Stale and just-written chunks.
    pub list: Vec<Change>,
}

impl Changes {
    /// Applies a `JobEvent::Chunks`: stale chunks, or chunks that landed
    /// (no longer stale).
    pub fn record(&mut self, t: u32, window: Window, levels: [u8; 2], done: bool, now: Instant) {
        if !done {
            self.list.push(Change {
                t,
                window,
                levels,
                written: None,
            });
            return;
        }
        for stale in self
            .list
            .iter_mut()
            .filter(|c| c.written.is_none() && c.t == t && c.window == window)
        {
            if stale.levels[0] <= levels[1] {
                stale.levels[0] = levels[1].saturating_add(1);
            }
        }
        self.list
            .retain(|c| c.written.is_some() || c.levels[0] <= c.levels[1]);
        self.list.push(Change {
            t,
            window,
            levels,
            written: Some(now),
        });
    }

    /// The job ended: nothing it announced will change any more.
    pub fn end(&mut self) {
        self.list.retain(|c| c.written.is_some());
    }

    /// Drops marks that have faded; returns whether any mark is left.
    pub fn prune(&mut self, now: Instant) -> bool {
        self.list.retain(|c| c.strength(now) > 0.0);
        !self.list.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_levels_clear_as_they_land_and_marks_fade() {
        let window = Window {
            row: 0,
            col: 0,
            rows: 10,
            cols: 10,
        };
        let start = Instant::now();
        let mut changes = Changes::default();
        changes.record(0, window, [0, 12], false, start);
        assert!(changes.list[0].at(0, 12) && changes.list[0].written.is_none());
        // The staged levels land: they are written, the rest still stale.
        changes.record(0, window, [0, 3], true, start);
        let stale: Vec<_> = changes
            .list
            .iter()
            .filter(|c| c.written.is_none())
            .collect();
        assert_eq!(stale.len(), 1);
        assert_eq!(stale[0].levels, [4, 12]);
        assert!(
            changes
                .list
                .iter()
                .any(|c| c.written.is_some() && c.at(0, 2))
        );
        // The pyramid lands: nothing stale.
        changes.record(0, window, [4, 12], true, start);
        assert!(changes.list.iter().all(|c| c.written.is_some()));
        assert!(changes.prune(start + Duration::from_secs(1)));
        assert!(!changes.prune(start + WRITTEN_FADE));
    }

    #[test]
    fn an_ended_job_leaves_nothing_stale() {
        let window = Window {
            row: 5,
            col: 5,
            rows: 1,
            cols: 1,
        };
        let mut changes = Changes::default();
        changes.record(3, window, [0, 8], false, Instant::now());
        changes.end();
        assert!(changes.list.is_empty());
    }
}
