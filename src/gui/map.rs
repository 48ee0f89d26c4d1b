//! The map view: pan, zoom, the level that follows the zoom (or a pinned
//! one), tiles with coarser placeholders, the chunk grid, and the cursor
//! readout.

use super::changes::Change;
use super::tiles::{Style, TileCache, TileKey};
use crate::engine::{ChunkLoc, Extent, Store};
use egui::{Color32, Pos2, Rect, Sense, Stroke, Vec2};
use std::sync::Arc;

/// Most tiles drawn at once; beyond it the view steps to a coarser level.
/// Well under the texture cache's capacity, so that the visible tiles, their
/// parents and the prefetched ring all fit and never evict each other.
pub const MAX_TILES: usize = 256;

/// The map's background, where no tile covers it: the window's clear
/// colour, so that no pass paints under the tiles.
pub const BACKGROUND: Color32 = Color32::from_gray(24);

/// Where the map looks and how it draws.
#[derive(Debug, Clone, PartialEq)]
pub struct MapView {
    /// CRS coordinates at the centre of the view.
    pub center: [f64; 2],
    /// CRS units per screen point.
    pub units_per_point: f64,
    /// A level to show whatever the zoom.
    pub pinned: Option<u8>,
    /// Draw chunk outlines and locations.
    pub grid: bool,
    /// Whether the view was fitted to the data yet.
    pub fitted: bool,
    /// Dragging draws a rectangle, for this, instead of panning.
    pub drawing: Option<Drawing>,
    /// Levels coarser than the zoom asks for (during playback, so that
    /// each instant's tiles load within the frame budget).
    pub coarser: u8,
    draw_start: Option<(f64, f64)>,
    /// The centre and scale last drawn, to notice the view moving.
    last_view: ([f64; 2], f64),
}

/// What a rectangle drawn on the map is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drawing {
    /// The extent to export.
    ExportExtent,
    /// The area whose time series is plotted.
    SeriesArea,
}

/// Most neighbouring tiles requested at once while the view is still.
const MAX_PREFETCH: usize = 64;

/// Requests the ring of chunks around the view at `level`, so that a pan
/// finds them loaded. Only once everything visible is in.
fn prefetch_ring(
    store: &Arc<Store>,
    level: u8,
    t: u32,
    view: &Extent,
    visible: &[ChunkLoc],
    tiles: &mut TileCache,
    style: Style,
) {
    let grid = store.grid();
    let size = grid.chunk_extent(ChunkLoc {
        level,
        row: 0,
        col: 0,
    });
    let (w, h) = (size.max_x - size.min_x, size.max_y - size.min_y);
    let Ok(around) = Extent::new(
        view.min_x - w,
        view.min_y - h,
        view.max_x + w,
        view.max_y + h,
    ) else {
        return;
    };
    let Some(window) = grid.cover_clipped(level, &around) else {
        return;
    };
    let visible: std::collections::HashSet<&ChunkLoc> = visible.iter().collect();
    for loc in grid
        .chunks_in(level, &window)
        .filter(|loc| !visible.contains(loc))
        .take(MAX_PREFETCH)
    {
        tiles.prefetch(store, TileKey { t, loc }, style);
    }
}

/// What the map marks on top of the tiles.
#[derive(Debug, Clone, Default)]
pub struct Marks {
    /// Time index shown.
    pub t: u32,
    /// The selected chunk.
    pub selected: Option<ChunkLoc>,
    /// The export extent.
    pub export: Option<Extent>,
    /// Chunks jobs are rewriting or have just replaced.
    pub changes: Vec<Change>,
    /// Where the data lies, for a store without nodata: the cells of its
    /// chunks beyond it are not data, and are not drawn.
    pub data: Option<Extent>,
}

impl Default for MapView {
    fn default() -> Self {
        Self {
            center: [0.0, 0.0],
            units_per_point: 1.0,
            pinned: None,
            grid: false,
            fitted: false,
            drawing: None,
            coarser: 0,
            draw_start: None,
            last_view: ([0.0, 0.0], 0.0),
        }
    }
}

/// What the cursor is over.
#[derive(Debug, Clone, PartialEq)]
pub struct Readout {
    /// CRS coordinates.
    pub x: f64,
    /// CRS coordinates.
    pub y: f64,
    /// The chunk under the cursor at the shown level.
    pub loc: Option<ChunkLoc>,
    /// The cell under the cursor in that chunk (row-major index).
    pub cell: Option<usize>,
    /// The shown bands' values there (channel order), once its tile is
    /// loaded; `None` for nodata.
    pub values: Vec<Option<f32>>,
}

/// What one frame of the map showed.
#[derive(Debug, Clone, Default)]
pub struct Drawn {
    /// The level shown.
    pub level: u8,
    /// Visible tiles not loaded yet.
    pub missing: usize,
    /// The cursor readout, when hovering.
    pub readout: Option<Readout>,
    /// The chunk clicked this frame, at the shown level.
    pub clicked: Option<ChunkLoc>,
    /// Where the click was, in CRS coordinates.
    pub clicked_at: Option<(f64, f64)>,
    /// A rectangle drawn this frame (in drawing mode), or being drawn.
    pub rectangle: Option<Extent>,
    /// What `rectangle` was drawn for, once it is finished.
    pub rectangle_done: Option<Drawing>,
    /// The extent on screen.
    pub view: Option<Extent>,
    /// Visible chunks marked stale, and marked just written.
    pub marked: [usize; 2],
    /// The chunks in view, at the level shown.
    pub chunks: Vec<ChunkLoc>,
    /// Where the map was drawn.
    pub rect: Option<Rect>,
}

impl MapView {
    /// A view with `level` pinned (or following the zoom for `None`).
    #[must_use]
    pub fn pinned(level: Option<u8>) -> Self {
        Self {
            pinned: level,
            ..Self::default()
        }
    }

    /// Centres on `extent` so that it fills `size` points.
    pub fn fit(&mut self, extent: &Extent, size: Vec2) {
        self.center = [
            (extent.min_x + extent.max_x) / 2.0,
            (extent.min_y + extent.max_y) / 2.0,
        ];
        let sx = extent.width() / f64::from(size.x.max(1.0));
        let sy = extent.height() / f64::from(size.y.max(1.0));
        self.units_per_point = sx.max(sy) * 1.05;
        self.fitted = true;
    }

    /// The screen point of map coordinates, in a map drawn into `rect`.
    #[must_use]
    pub fn to_screen(&self, rect: Rect, x: f64, y: f64) -> Pos2 {
        let c = rect.center();
        #[allow(clippy::cast_possible_truncation)]
        Pos2::new(
            c.x + ((x - self.center[0]) / self.units_per_point) as f32,
            c.y - ((y - self.center[1]) / self.units_per_point) as f32,
        )
    }

    /// The map coordinates of a screen point, in a map drawn into `rect`.
    #[must_use]
    pub fn to_world(&self, rect: Rect, p: Pos2) -> (f64, f64) {
        let c = rect.center();
        (
            self.center[0] + f64::from(p.x - c.x) * self.units_per_point,
            self.center[1] - f64::from(p.y - c.y) * self.units_per_point,
        )
    }

    /// The level to show: pinned, else the one whose cells are nearest one
    /// physical pixel in scale, as a GPU picks a mipmap level: cells of
    /// 0.7 to 1.4 pixels. (The finest level at least that fine would draw
    /// up to four cells per pixel, sampling one of them, and load up to
    /// four times the tiles.)
    #[must_use]
    pub fn level(&self, store: &Store, pixels_per_point: f32) -> u8 {
        if let Some(level) = self.pinned {
            return level.min(store.grid().top_level());
        }
        let per_pixel = self.units_per_point / f64::from(pixels_per_point.max(0.1));
        let nearest = per_pixel * std::f64::consts::SQRT_2;
        store
            .level_for([nearest, nearest])
            .saturating_add(self.coarser)
            .min(store.grid().top_level())
    }

    /// Handles input and draws the map into the whole of `ui`.
    pub fn show(
        &mut self,
        ui: &mut egui::Ui,
        store: &Arc<Store>,
        marks: Marks,
        tiles: &mut TileCache,
        style: Style,
    ) -> Drawn {
        let Marks {
            t,
            selected,
            export,
            changes,
            data,
        } = marks;
        let (rect, response) = ui.allocate_exact_size(ui.available_size(), Sense::click_and_drag());
        let mut rectangle = None;
        let mut rectangle_done = None;
        if let Some(purpose) = self.drawing {
            if response.drag_started() {
                self.draw_start = response
                    .interact_pointer_pos()
                    .map(|p| self.to_world(rect, p));
            }
            if let (Some(a), Some(p)) = (self.draw_start, response.interact_pointer_pos()) {
                let b = self.to_world(rect, p);
                rectangle =
                    Extent::new(a.0.min(b.0), a.1.min(b.1), a.0.max(b.0), a.1.max(b.1)).ok();
            }
            if response.drag_stopped() {
                rectangle_done = rectangle.is_some().then_some(purpose);
                self.drawing = None;
                self.draw_start = None;
            }
        } else if response.dragged() {
            let d = response.drag_delta();
            self.center[0] -= f64::from(d.x) * self.units_per_point;
            self.center[1] += f64::from(d.y) * self.units_per_point;
        }
        if let Some(hover) = response.hover_pos() {
            let (scroll, pinch) = ui.input(|i| (i.smooth_scroll_delta.y, i.zoom_delta()));
            let factor = f64::from((-scroll * 0.002).exp() / pinch);
            if (factor - 1.0).abs() > 1e-6 {
                // Zoom about the cursor: the point under it stays put.
                let before = self.to_world(rect, hover);
                self.units_per_point = (self.units_per_point * factor).clamp(1e-9, 1e12);
                let after = self.to_world(rect, hover);
                self.center[0] += before.0 - after.0;
                self.center[1] += before.1 - after.1;
            }
        }
        if (self.center, self.units_per_point) != self.last_view {
            self.last_view = (self.center, self.units_per_point);
            tiles.view_moved();
        }
        let painter = ui.painter_at(rect);
        let grid = store.grid();
        let mut level = self.level(store, ui.ctx().pixels_per_point());
        let (x0, y1) = self.to_world(rect, rect.left_top());
        let (x1, y0) = self.to_world(rect, rect.right_bottom());
        let Ok(view) = Extent::new(x0, y0, x1, y1) else {
            return Drawn::default();
        };
        // Step coarser while the view would need too many tiles.
        let chunks = loop {
            let chunks: Vec<ChunkLoc> = grid
                .cover_clipped(level, &view)
                .map(|w| grid.chunks_in(level, &w).collect())
                .unwrap_or_default();
            if chunks.len() <= MAX_TILES || level >= grid.top_level() {
                break chunks;
            }
            level += 1;
        };
        let mut missing = 0;
        let tile_painter = match data {
            Some(e) => painter.with_clip_rect(
                Rect::from_min_max(
                    self.to_screen(rect, e.min_x, e.max_y),
                    self.to_screen(rect, e.max_x, e.min_y),
                )
                .intersect(rect),
            ),
            None => painter.clone(),
        };
        for loc in &chunks {
            let key = TileKey { t, loc: *loc };
            let target = self.chunk_rect(rect, store, *loc);
            if let Some(tile) = tiles.get(store, key, style, true) {
                if let Some(texture) = &tile.texture {
                    tile_painter.image(
                        texture.id(),
                        target,
                        Rect::from_min_max(Pos2::ZERO, Pos2::new(1.0, 1.0)),
                        Color32::WHITE,
                    );
                }
                continue;
            }
            missing += 1;
            // Placeholder: the nearest loaded ancestor's part of this chunk.
            let mut ancestor = *loc;
            let mut uv = Rect::from_min_max(Pos2::ZERO, Pos2::new(1.0, 1.0));
            let mut found = false;
            while ancestor.level < grid.top_level() {
                let (qr, qc) = ancestor.quadrant();
                let half = uv.size() / 2.0;
                let min = Pos2::new(
                    uv.min.x / 2.0 + qc as f32 * 0.5,
                    uv.min.y / 2.0 + qr as f32 * 0.5,
                );
                uv = Rect::from_min_size(min, half);
                ancestor = ancestor.parent();
                if let Some(tile) = tiles.get(store, TileKey { t, loc: ancestor }, style, false) {
                    if let Some(texture) = &tile.texture {
                        tile_painter.image(texture.id(), target, uv, Color32::WHITE);
                    }
                    found = true;
                    break;
                }
            }
            // No placeholder at all: the parent is asked for too, as one.
            // A coarser cached one will do: each level asked for between
            // delays the tiles at full quality.
            if !found && loc.level < grid.top_level() {
                tiles.get(
                    store,
                    TileKey {
                        t,
                        loc: loc.parent(),
                    },
                    style,
                    true,
                );
            }
        }
        if self.grid {
            let stroke = Stroke::new(1.0, Color32::from_rgba_unmultiplied(255, 255, 255, 90));
            for loc in &chunks {
                let r = self.chunk_rect(rect, store, *loc);
                painter.rect_stroke(r, 0.0, stroke, egui::StrokeKind::Inside);
                if r.width() > 90.0 {
                    painter.text(
                        r.left_top() + Vec2::splat(4.0),
                        egui::Align2::LEFT_TOP,
                        loc.to_string(),
                        egui::FontId::monospace(11.0),
                        Color32::WHITE,
                    );
                }
            }
        }
        if missing == 0 && tiles.loading() == 0 {
            prefetch_ring(store, level, t, &view, &chunks, tiles, style);
        }
        let marked = self.mark_changes(&painter, rect, store, level, t, &chunks, &changes);
        let readout = response.hover_pos().map(|p| {
            let (x, y) = self.to_world(rect, p);
            let found = grid.locate(level, x, y);
            let values = found
                .and_then(|(loc, r, c)| {
                    let tile = tiles.get(store, TileKey { t, loc }, style, false)?;
                    let [cols, rows] = grid.chunk_shape();
                    let plane = rows as usize * cols as usize;
                    let at = r * cols as usize + c;
                    Some(
                        tile.values
                            .chunks_exact(plane)
                            .map(|p| p.get(at).copied().filter(|v| !v.is_nan()))
                            .collect(),
                    )
                })
                .unwrap_or_default();
            let cols = grid.chunk_shape()[0] as usize;
            Readout {
                x,
                y,
                loc: found.map(|f| f.0),
                cell: found.map(|(_, r, c)| r * cols + c),
                values,
            }
        });
        let clicked_at = response
            .clicked()
            .then(|| response.interact_pointer_pos())
            .flatten()
            .map(|p| self.to_world(rect, p));
        let clicked = clicked_at.and_then(|(x, y)| grid.locate(level, x, y).map(|f| f.0));
        if let Some(e) = rectangle.or(export) {
            let r = Rect::from_min_max(
                self.to_screen(rect, e.min_x, e.max_y),
                self.to_screen(rect, e.max_x, e.min_y),
            );
            painter.rect_filled(r, 0.0, Color32::from_rgba_unmultiplied(80, 160, 255, 40));
            painter.rect_stroke(
                r,
                0.0,
                Stroke::new(2.0, Color32::from_rgb(80, 160, 255)),
                egui::StrokeKind::Inside,
            );
        }
        if let Some(selected) = selected {
            let r = self.chunk_rect(rect, store, selected);
            painter.rect_stroke(
                r,
                0.0,
                Stroke::new(2.0, Color32::from_rgb(255, 200, 0)),
                egui::StrokeKind::Inside,
            );
        }
        Drawn {
            level,
            missing,
            readout,
            clicked,
            clicked_at,
            rectangle,
            rectangle_done,
            view: Some(view),
            marked,
            chunks,
            rect: Some(rect),
        }
    }

    /// Shades stale chunks and outlines just-written ones (fading);
    /// returns how many of each it drew.
    #[allow(clippy::too_many_arguments)]
    fn mark_changes(
        &self,
        painter: &egui::Painter,
        rect: Rect,
        store: &Store,
        level: u8,
        t: u32,
        chunks: &[ChunkLoc],
        changes: &[Change],
    ) -> [usize; 2] {
        let grid = store.grid();
        let now = std::time::Instant::now();
        let areas: Vec<(Extent, &Change)> = changes
            .iter()
            .filter(|c| c.at(t, level))
            .map(|c| (c.extent(grid), c))
            .collect();
        let mut marked = [0; 2];
        if areas.is_empty() {
            return marked;
        }
        for loc in chunks {
            let e = grid.chunk_extent(*loc);
            let overlapping = areas.iter().filter(|(a, _)| {
                a.min_x < e.max_x && e.min_x < a.max_x && a.min_y < e.max_y && e.min_y < a.max_y
            });
            // Stale wins over written: the chunk is about to change again.
            let Some(change) = overlapping
                .map(|(_, c)| *c)
                .max_by_key(|c| c.written.is_none())
            else {
                continue;
            };
            let r = self.chunk_rect(rect, store, *loc).shrink(1.0);
            if change.written.is_none() {
                marked[0] += 1;
                painter.rect_filled(r, 0.0, Color32::from_rgba_unmultiplied(255, 170, 0, 40));
                painter.rect_stroke(
                    r,
                    0.0,
                    Stroke::new(1.0, Color32::from_rgba_unmultiplied(255, 170, 0, 160)),
                    egui::StrokeKind::Inside,
                );
            } else {
                marked[1] += 1;
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let alpha = (change.strength(now) * 220.0) as u8;
                painter.rect_stroke(
                    r,
                    0.0,
                    Stroke::new(2.0, Color32::from_rgba_unmultiplied(80, 255, 120, alpha)),
                    egui::StrokeKind::Inside,
                );
            }
        }
        marked
    }

    fn chunk_rect(&self, rect: Rect, store: &Store, loc: ChunkLoc) -> Rect {
        let e = store.grid().chunk_extent(loc);
        Rect::from_min_max(
            self.to_screen(rect, e.min_x, e.max_y),
            self.to_screen(rect, e.max_x, e.min_y),
        )
    }
}
