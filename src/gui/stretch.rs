//! The colour stretch: the value range the colour map spans, per band
//! shown, and how it is chosen. By default it follows the data in view: once
//! the view settles with every tile loaded, the percentiles of the cells on
//! screen (at the level shown) are taken on a background thread, and the
//! tiles are recoloured only when that moves the range noticeably. Old tiles
//! stay drawn until their recoloured versions arrive, so nothing flashes.

use super::task::Task;
use super::tiles::{TileCache, TileKey};
use crate::engine::{ChunkLoc, Element, EngineError, Extent, Store, Summary, Window};
use crate::render::{Bands, Stretch};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How the stretch is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StretchMode {
    /// From the data in view, taken again whenever the view settles.
    FollowView,
    /// Kept as it is (taken from the view when this was chosen).
    Held,
    /// From the whole store: a level with at least [`WHOLE_STORE_CELLS`]
    /// cells of data.
    WholeStore,
    /// Typed minimum and maximum.
    Typed,
}

impl StretchMode {
    /// Every mode, in the order the menu lists them.
    pub const ALL: [Self; 4] = [Self::FollowView, Self::Held, Self::WholeStore, Self::Typed];

    /// The menu's words for it.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::FollowView => "follow the view",
            Self::Held => "this view (held)",
            Self::WholeStore => "whole store",
            Self::Typed => "typed min/max",
        }
    }
}

/// The whole-store stretch comes from the coarsest level with at least
/// this many cells of data (or level 0 when no level has as many).
pub const WHOLE_STORE_CELLS: u64 = 100_000;

/// The view stays still this long before its stretch is taken.
const SETTLE: Duration = Duration::from_millis(250);

/// Most cells per band the view's percentiles are taken from; more are
/// sampled evenly.
const MAX_SAMPLES: usize = 500_000;

/// A new stretch replaces the current one only when an end moves by more
/// than this fraction of the current range: less is invisible, and every
/// recolour renders the tiles again.
const NOTICEABLE: f64 = 0.01;

/// What a view's stretch was taken from.
#[derive(Debug, Clone, Copy, PartialEq)]
struct ViewKey {
    level: u8,
    t: u32,
    view: [f64; 4],
}

/// The stretch and how it is chosen.
pub struct StretchControl {
    /// How it is chosen.
    pub mode: StretchMode,
    /// The low and high percentiles (0–100) taken from the data.
    pub percentiles: (f64, f64),
    /// The stretch the tiles are coloured with, per channel.
    pub current: [Stretch; 3],
    /// Sorted valid values per band of the whole store's sample level.
    whole_store: Vec<Arc<[f64]>>,
    /// The bands shown.
    bands: Bands,
    /// The view last seen, and since when it has not moved.
    seen: Option<(ViewKey, Instant)>,
    /// The view the current stretch was taken from.
    taken_for: Option<ViewKey>,
    taking: Option<Task<ViewSummary>>,
    /// The classes in view and their cells, most common first (single band
    /// with the colour table shown).
    pub classes: Vec<(f64, u64)>,
    /// Whether the classes are wanted (taken with the stretch).
    want_classes: bool,
}

/// What the data in view holds.
struct ViewSummary {
    /// Its percentiles per channel; `None` without data.
    stretch: Option<[Stretch; 3]>,
    /// Its classes (the first band's values) and their cells, most common
    /// first, when asked for.
    classes: Vec<(f64, u64)>,
}

impl Default for StretchControl {
    fn default() -> Self {
        Self {
            mode: StretchMode::FollowView,
            percentiles: (2.0, 98.0),
            current: [Stretch { min: 0.0, max: 1.0 }; 3],
            whole_store: Vec::new(),
            bands: Bands::Single(0),
            seen: None,
            taken_for: None,
            taking: None,
            classes: Vec::new(),
            want_classes: false,
        }
    }
}

/// The cells of one loaded tile that lie in view.
struct InView {
    values: Arc<[f32]>,
    /// Cells per plane.
    plane: usize,
    /// Columns per row.
    cols: usize,
    /// The rows and columns in view, relative to the tile.
    part: Window,
}

impl StretchControl {
    /// A stretch fixed at `min`–`max` for every channel.
    #[must_use]
    pub fn typed(min: f64, max: f64) -> Self {
        Self {
            mode: StretchMode::Typed,
            current: [Stretch { min, max }; 3],
            ..Self::default()
        }
    }

    /// A store was opened (or re-read): its whole-store samples per band,
    /// and the bands shown. Returns whether the current stretch changed.
    pub fn opened(&mut self, whole_store: Vec<Arc<[f64]>>, bands: Bands) -> bool {
        self.whole_store = whole_store;
        self.bands = bands;
        self.taken_for = None;
        match self.mode {
            // The view's stretch comes once its tiles are in; until then
            // the whole store's is the best guess.
            StretchMode::FollowView | StretchMode::WholeStore => self.take_whole_store(),
            StretchMode::Held | StretchMode::Typed => false,
        }
    }

    /// The stretch from the whole store's samples; whether it changed.
    fn take_whole_store(&mut self) -> bool {
        let (lo, hi) = self.percentiles;
        let shown = self.bands.indices();
        let fresh = std::array::from_fn(|k| {
            shown
                .get(k)
                .or(shown.first())
                .and_then(|&b| self.whole_store.get(b))
                .and_then(|v| Stretch::from_sorted(v, lo, hi))
                .unwrap_or(self.current[k])
        });
        self.replace(fresh, true)
    }

    /// Makes `fresh` current, unless it is within [`NOTICEABLE`] of it and
    /// `exact` is not asked; whether it changed.
    fn replace(&mut self, fresh: [Stretch; 3], exact: bool) -> bool {
        let differs = |a: &Stretch, b: &Stretch| {
            let span = (a.max - a.min).abs();
            let tolerance = if exact { 0.0 } else { span * NOTICEABLE };
            (a.min - b.min).abs() > tolerance || (a.max - b.max).abs() > tolerance
        };
        if self.current.iter().zip(&fresh).any(|(a, b)| differs(a, b)) {
            self.current = fresh;
            return true;
        }
        false
    }

    /// Whether the stretch of the view on screen is still to come (a
    /// screenshot waits for it).
    #[must_use]
    pub fn pending(&self) -> bool {
        (self.mode == StretchMode::FollowView || self.want_classes)
            && (self.taking.is_some() || self.taken_for != self.seen.map(|(key, _)| key))
    }

    /// Chooses `mode`; returns whether the current stretch changed.
    pub fn choose(&mut self, mode: StretchMode) -> bool {
        self.mode = mode;
        self.taken_for = None;
        match mode {
            StretchMode::WholeStore => self.take_whole_store(),
            StretchMode::FollowView | StretchMode::Held | StretchMode::Typed => false,
        }
    }

    /// Other bands are shown: the stretch is taken again (a typed one
    /// stays).
    pub fn bands_changed(&mut self, bands: Bands) -> bool {
        self.bands = bands;
        self.taken_for = None;
        match self.mode {
            StretchMode::Typed => false,
            _ => self.take_whole_store(),
        }
    }

    /// The percentiles changed: the stretch is taken again.
    pub fn percentiles_changed(&mut self) -> bool {
        self.taken_for = None;
        match self.mode {
            StretchMode::WholeStore | StretchMode::FollowView => self.take_whole_store(),
            StretchMode::Held | StretchMode::Typed => false,
        }
    }

    /// Follows the view after a frame drew `chunks` at `level` over `view`:
    /// takes the view's stretch once it settled and its tiles are all in,
    /// and applies one that arrived. Returns whether the current stretch
    /// changed (the tiles must be recoloured).
    #[allow(clippy::too_many_arguments)]
    pub fn follow(
        &mut self,
        store: &Arc<Store>,
        tiles: &mut TileCache,
        level: u8,
        t: u32,
        view: Option<Extent>,
        chunks: &[ChunkLoc],
        complete: bool,
        ctx: &egui::Context,
    ) -> bool {
        let mut changed = false;
        if let Some(task) = &self.taking
            && let Some(result) = task.poll()
        {
            self.taking = None;
            self.classes = result.classes;
            if let Some(fresh) = result.stretch
                && self.mode == StretchMode::FollowView
            {
                changed = self.replace(fresh, false);
            }
        }
        if self.mode != StretchMode::FollowView && !self.want_classes {
            return changed;
        }
        let Some(view) = view else { return changed };
        let key = ViewKey {
            level,
            t,
            view: [view.min_x, view.min_y, view.max_x, view.max_y],
        };
        let now = Instant::now();
        let since = match self.seen {
            Some((seen, since)) if seen == key => since,
            _ => {
                self.seen = Some((key, now));
                now
            }
        };
        let settled = now.duration_since(since) >= SETTLE;
        if !settled {
            // Look again once it may have settled.
            ctx.request_repaint_after(SETTLE);
            return changed;
        }
        if !complete || self.taking.is_some() || self.taken_for == Some(key) {
            return changed;
        }
        self.taken_for = Some(key);
        let parts = in_view(store, tiles, level, t, &view, chunks);
        let (lo, hi) = self.percentiles;
        let classes = self.want_classes;
        self.taking = Some(Task::on_pool(ctx, move || ViewSummary {
            stretch: view_stretch(&parts, lo, hi),
            classes: if classes {
                view_classes(&parts)
            } else {
                Vec::new()
            },
        }));
        changed
    }

    /// Asks for the classes in view (the colour table is shown) or not;
    /// asking anew takes them from the view on screen.
    pub fn want_classes(&mut self, want: bool) {
        if want != self.want_classes {
            self.want_classes = want;
            self.taken_for = None;
            self.classes.clear();
        }
    }
}

/// The sorted valid values of each band at the coarsest level holding at
/// least [`WHOLE_STORE_CELLS`] cells of data per band (level 0 when none
/// does), at time index `t`: what the whole-store stretch is taken from.
/// Reads that level's stored chunks (off the UI thread).
///
/// # Errors
/// I/O or a damaged chunk.
pub fn whole_store_samples<T: Element>(
    store: &Store,
    t: u32,
    summaries: &[Summary],
    kept: bool,
) -> Result<Vec<Arc<[f64]>>, EngineError> {
    use rayon::prelude::*;
    let bands = store.structure().band_count();
    let instants = store.time_indices().len().max(1) as u64;
    let chunk_cells =
        u64::from(store.grid().chunk_shape()[0]) * u64::from(store.grid().chunk_shape()[1]);
    // Kept statistics count the valid cells; without them, a chunk's
    // cells are the best estimate.
    let cells = |s: &Summary| {
        if kept {
            s.valid / (bands as u64).max(1) / instants
        } else {
            s.chunks / instants * chunk_cells
        }
    };
    let level = (0..summaries.len())
        .rev()
        .find(|&l| cells(&summaries[l]) >= WHOLE_STORE_CELLS)
        .unwrap_or(0);
    let level = u8::try_from(level).unwrap_or(0);
    let locs: Vec<ChunkLoc> = store
        .list_chunks(level)?
        .into_iter()
        .filter(|(ct, _, _)| *ct == t)
        .map(|(_, loc, _)| loc)
        .collect();
    let chunks = locs
        .par_iter()
        .map(|loc| store.read_chunk::<T>(t, *loc))
        .collect::<Result<Vec<_>, EngineError>>()?;
    let nodata = store.nodata::<T>();
    Ok((0..bands)
        .map(|b| {
            let mut values: Vec<f64> = chunks
                .iter()
                .flatten()
                .flat_map(|c| c.index_axis(ndarray::Axis(0), b).into_iter().copied())
                .filter(|v| v.is_valid(nodata))
                .map(Element::to_f64)
                .collect();
            values.sort_unstable_by(f64::total_cmp);
            Arc::from(values)
        })
        .collect())
}

impl StretchControl {
    /// The stretch's controls: how it is chosen, the percentiles, and each
    /// channel's minimum and maximum (typing one holds it). Returns whether
    /// the current stretch changed.
    pub fn ui(&mut self, ui: &mut egui::Ui) -> bool {
        let mut changed = false;
        let mut mode = self.mode;
        egui::ComboBox::from_label("stretch")
            .selected_text(mode.label())
            .show_ui(ui, |ui| {
                for m in StretchMode::ALL {
                    ui.selectable_value(&mut mode, m, m.label());
                }
            });
        if mode != self.mode {
            changed |= self.choose(mode);
        }
        if matches!(self.mode, StretchMode::FollowView | StretchMode::WholeStore) {
            let (mut lo, mut hi) = self.percentiles;
            ui.horizontal(|ui| {
                let low = ui.label("percentiles");
                ui.add(
                    egui::DragValue::new(&mut lo)
                        .range(0.0..=hi)
                        .speed(0.5)
                        .suffix(" %"),
                )
                .labelled_by(low.id);
                ui.add(
                    egui::DragValue::new(&mut hi)
                        .range(lo..=100.0)
                        .speed(0.5)
                        .suffix(" %"),
                )
                .labelled_by(low.id);
                if ui.button("min–max").clicked() {
                    (lo, hi) = (0.0, 100.0);
                }
            });
            if (lo, hi) != self.percentiles {
                self.percentiles = (lo, hi);
                changed |= self.percentiles_changed();
            }
        }
        let channels: &[&str] = match self.bands {
            Bands::Single(_) => &["range"],
            Bands::Rgb(_) => &["red", "green", "blue"],
        };
        let mut typed = self.current;
        for (k, name) in channels.iter().enumerate() {
            ui.horizontal(|ui| {
                let label = ui.label(*name);
                let s = &mut typed[k];
                let speed = ((s.max - s.min).abs() / 200.0).max(1e-6);
                ui.add(egui::DragValue::new(&mut s.min).speed(speed))
                    .labelled_by(label.id);
                ui.add(egui::DragValue::new(&mut s.max).speed(speed))
                    .labelled_by(label.id);
            });
        }
        if typed != self.current {
            if channels.len() == 1 {
                typed = [typed[0]; 3];
            }
            self.mode = StretchMode::Typed;
            self.current = typed;
            changed = true;
        }
        changed
    }
}

/// The loaded tiles' cells in `view`.
fn in_view(
    store: &Arc<Store>,
    tiles: &mut TileCache,
    level: u8,
    t: u32,
    view: &Extent,
    chunks: &[ChunkLoc],
) -> Vec<InView> {
    let grid = store.grid();
    let Some(window) = grid.cover_clipped(level, view) else {
        return Vec::new();
    };
    let [cols, rows] = grid.chunk_shape().map(|n| n as usize);
    chunks
        .iter()
        .filter_map(|loc| {
            let tile = tiles.peek(&TileKey { t, loc: *loc })?;
            let cw = grid.chunk_window(*loc);
            let o = cw.intersect(&window)?;
            Some(InView {
                values: tile.values.clone(),
                plane: rows * cols,
                cols,
                part: Window {
                    row: o.row - cw.row,
                    col: o.col - cw.col,
                    rows: o.rows,
                    cols: o.cols,
                },
            })
        })
        .filter(|p| !p.values.is_empty())
        .collect()
}

/// The `lo`–`hi` percentiles per channel of the valid cells of `parts`;
/// `None` when they hold no data.
fn view_stretch(parts: &[InView], lo: f64, hi: f64) -> Option<[Stretch; 3]> {
    let cells: u64 = parts.iter().map(|p| p.part.rows * p.part.cols).sum();
    let stride = usize::try_from(cells.div_ceil(MAX_SAMPLES as u64))
        .unwrap_or(1)
        .max(1);
    let channels = parts
        .iter()
        .map(|p| p.values.len() / p.plane.max(1))
        .min()?;
    let mut out = [Stretch { min: 0.0, max: 1.0 }; 3];
    for (k, slot) in out.iter_mut().enumerate().take(channels) {
        let mut values: Vec<f64> = Vec::new();
        let mut n = 0usize;
        for p in parts {
            let plane = &p.values[k * p.plane..(k + 1) * p.plane];
            for r in p.part.row..p.part.row + p.part.rows {
                let start = usize::try_from(r).unwrap_or(0) * p.cols;
                let c0 = usize::try_from(p.part.col).unwrap_or(0);
                let c1 = c0 + usize::try_from(p.part.cols).unwrap_or(0);
                for v in &plane[start + c0..start + c1] {
                    if n.is_multiple_of(stride) && !v.is_nan() {
                        values.push(f64::from(*v));
                    }
                    n += 1;
                }
            }
        }
        *slot = percentiles(&mut values, lo, hi)?;
    }
    // A single band's stretch serves every channel.
    if channels == 1 {
        out = [out[0]; 3];
    }
    Some(out)
}

/// Most distinct values the class legend counts; data with more is not
/// categorical, and gets none.
const MAX_CLASSES: usize = 1024;

/// The first band's distinct values in `parts` and their cells, most common
/// first (ties by value); empty for more than [`MAX_CLASSES`] values.
fn view_classes(parts: &[InView]) -> Vec<(f64, u64)> {
    let mut counts: std::collections::HashMap<u32, u64> = std::collections::HashMap::new();
    for p in parts {
        let plane = &p.values[..p.plane.min(p.values.len())];
        for r in p.part.row..p.part.row + p.part.rows {
            let start = usize::try_from(r).unwrap_or(0) * p.cols;
            let c0 = usize::try_from(p.part.col).unwrap_or(0);
            let c1 = c0 + usize::try_from(p.part.cols).unwrap_or(0);
            for v in plane.get(start + c0..start + c1).unwrap_or_default() {
                if !v.is_nan() {
                    *counts.entry(v.to_bits()).or_default() += 1;
                    if counts.len() > MAX_CLASSES {
                        return Vec::new();
                    }
                }
            }
        }
    }
    let mut classes: Vec<(f64, u64)> = counts
        .into_iter()
        .map(|(bits, n)| (f64::from(f32::from_bits(bits)), n))
        .collect();
    classes.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.total_cmp(&b.0)));
    classes
}

/// The `lo`–`hi` percentiles (0–100) of `values` (reordered); `None` for
/// none. The same ranks as [`Stretch::from_sorted`], without a full sort.
fn percentiles(values: &mut [f64], lo: f64, hi: f64) -> Option<Stretch> {
    if values.is_empty() {
        return None;
    }
    let last = values.len() - 1;
    let rank = |p: f64| {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let i = ((p.clamp(0.0, 100.0) / 100.0) * last as f64).round() as usize;
        i.min(last)
    };
    let (a, b) = (rank(lo), rank(hi));
    let min = *values.select_nth_unstable_by(a, f64::total_cmp).1;
    let max = *values.select_nth_unstable_by(b, f64::total_cmp).1;
    Some(Stretch { min, max })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_match_the_sorted_ranks() {
        let mut values: Vec<f64> = (0..1000).rev().map(f64::from).collect();
        let mut sorted = values.clone();
        sorted.sort_by(f64::total_cmp);
        for (lo, hi) in [(0.0, 100.0), (2.0, 98.0), (10.0, 50.0)] {
            assert_eq!(
                percentiles(&mut values, lo, hi),
                Stretch::from_sorted(&sorted, lo, hi)
            );
        }
        assert_eq!(percentiles(&mut [], 2.0, 98.0), None);
    }

    #[test]
    fn the_view_stretch_counts_only_the_cells_in_view() {
        // A 4 × 4 tile of one band: the view holds its top-left 2 × 2
        // cells (1, 2, 5, 6); the rest (up to 16) and a NaN are outside.
        let mut values: Vec<f32> = (1..=16).map(|v| v as f32).collect();
        values[3] = f32::NAN;
        let part = InView {
            values: Arc::from(values),
            plane: 16,
            cols: 4,
            part: Window {
                row: 0,
                col: 0,
                rows: 2,
                cols: 2,
            },
        };
        let s = view_stretch(&[part], 0.0, 100.0).expect("data in view");
        assert_eq!(s[0], Stretch { min: 1.0, max: 6.0 });
        assert_eq!(s[2], s[0], "one band serves every channel");
    }

    #[test]
    fn small_moves_do_not_recolour() {
        let mut control = StretchControl::default();
        let base = [Stretch {
            min: 0.0,
            max: 100.0,
        }; 3];
        assert!(control.replace(base, true));
        let nudged = [Stretch {
            min: 0.5,
            max: 100.5,
        }; 3];
        assert!(!control.replace(nudged, false), "within 1 % of the range");
        let moved = [Stretch {
            min: 5.0,
            max: 100.0,
        }; 3];
        assert!(control.replace(moved, false));
        assert_eq!(control.current, moved);
    }
}
