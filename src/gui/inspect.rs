//! The pyramid browser's chunk inspector: a selected chunk's location,
//! extent, stored size, checksum state, value statistics and histogram,
//! with steps to its parent, children and neighbours.
//!
//! The chunk is read and decoded on a background thread; the panel shows
//! the result when it arrives.

use super::task::Task;
use super::tiles::TileKey;
use crate::engine::{ChunkLoc, Element, EngineError, Store};
use crate::with_dtype;
use egui::RichText;
use std::sync::Arc;

/// Bins of the histogram.
const BINS: usize = 48;

/// What reading a chunk found.
#[derive(Debug, Clone, PartialEq)]
pub struct ChunkReport {
    /// Stored size in bytes; `None` when the chunk is absent (all nodata).
    pub bytes: Option<u64>,
    /// Statistics of each band shown (0-based band, `None` without data),
    /// or why the chunk could not be read.
    pub stats: Result<Vec<(usize, Option<Stats>)>, String>,
}

/// Value statistics of one band of a chunk.
#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    /// Cells holding data.
    pub valid: usize,
    /// Cells in all.
    pub cells: usize,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// Mean value.
    pub mean: f64,
    /// `(bin centre, count)` over `[min, max]`.
    pub histogram: Vec<(f64, u64)>,
}

/// The selected chunk and what is known about it.
#[derive(Default)]
pub struct Inspector {
    /// The selected chunk.
    pub selected: Option<TileKey>,
    /// Its report, once read.
    pub report: Option<ChunkReport>,
    /// The bands reported on (those shown on the map).
    pub bands: Vec<usize>,
    pending: Option<Task<(TileKey, ChunkReport)>>,
}

impl Inspector {
    /// Selects a chunk and starts reading it, reporting on `bands`.
    pub fn select(
        &mut self,
        store: &Arc<Store>,
        key: TileKey,
        bands: &[usize],
        ctx: &egui::Context,
    ) {
        self.selected = Some(key);
        self.report = None;
        self.bands = bands.to_vec();
        let store = store.clone();
        let bands = self.bands.clone();
        self.pending = Some(Task::on_pool(ctx, move || {
            (key, report(&store, key, &bands))
        }));
    }

    /// Takes a finished report, if it belongs to the selection.
    pub fn poll(&mut self) {
        if let Some(rx) = &self.pending
            && let Some((key, report)) = rx.poll()
        {
            self.pending = None;
            if Some(key) == self.selected {
                self.report = Some(report);
            }
        }
    }

    /// The panel; returns a chunk to step to, if a button asked.
    pub fn ui(&self, ui: &mut egui::Ui, store: &Store) -> Option<ChunkLoc> {
        let key = self.selected?;
        let grid = store.grid();
        let loc = key.loc;
        ui.label(RichText::new(format!("Chunk {loc}")).strong());
        let e = grid.chunk_extent(loc);
        ui.monospace(format!(
            "level {}  row {}  col {}",
            loc.level, loc.row, loc.col
        ));
        ui.monospace(format!(
            "x {} .. {}\ny {} .. {}",
            e.min_x, e.max_x, e.min_y, e.max_y
        ));
        match &self.report {
            None => {
                ui.label("reading…");
            }
            Some(report) => {
                match report.bytes {
                    Some(b) => ui.label(format!("{b} bytes stored")),
                    None => ui.label("not stored: all nodata"),
                };
                match &report.stats {
                    Err(e) => {
                        ui.colored_label(egui::Color32::LIGHT_RED, e);
                    }
                    Ok(bands) if bands.iter().all(|(_, s)| s.is_none()) => {}
                    Ok(bands) => {
                        ui.label("checksum ok");
                        for (band, stats) in bands {
                            let text = stats.as_ref().map_or_else(
                                || "no data".to_string(),
                                |s| {
                                    format!(
                                        "{} of {} cells hold data\nmin {}  max {}\nmean {:.4}",
                                        s.valid, s.cells, s.min, s.max, s.mean
                                    )
                                },
                            );
                            let name = crate::engine::persistence::band_info::label(
                                &store.band_info(),
                                *band,
                            );
                            ui.monospace(format!("{name}: {text}"));
                        }
                        histogram(ui, bands);
                    }
                }
            }
        }
        let mut step = None;
        let top = grid.top_level();
        let n = grid.chunks_per_side(loc.level);
        ui.horizontal(|ui| {
            if ui
                .add_enabled(loc.level < top, egui::Button::new("Parent"))
                .clicked()
            {
                step = Some(loc.parent());
            }
            if let Some(children) = loc.children() {
                for (child, name) in children.iter().zip(["NW", "NE", "SW", "SE"]) {
                    if ui.button(name).on_hover_text("child").clicked() {
                        step = Some(*child);
                    }
                }
            }
        });
        ui.horizontal(|ui| {
            let moves = [
                ("North", 0, -1),
                ("South", 0, 1),
                ("West", -1, 0),
                ("East", 1, 0),
            ];
            for (name, dc, dr) in moves {
                let col = i64::from(loc.col) + dc;
                let row = i64::from(loc.row) + dr;
                let inside = (0..i64::from(n)).contains(&col) && (0..i64::from(n)).contains(&row);
                if ui.add_enabled(inside, egui::Button::new(name)).clicked() {
                    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                    {
                        step = Some(ChunkLoc::new(loc.level, row as u32, col as u32));
                    }
                }
            }
        });
        step
    }
}

/// The bands' histograms, one bar chart each (red, green and blue for a
/// composite's channels).
fn histogram(ui: &mut egui::Ui, bands: &[(usize, Option<Stats>)]) {
    let colours = [
        egui::Color32::from_rgb(230, 80, 80),
        egui::Color32::from_rgb(80, 200, 80),
        egui::Color32::from_rgb(90, 130, 255),
    ];
    let charts: Vec<egui_plot::BarChart> = bands
        .iter()
        .enumerate()
        .filter_map(|(k, (band, stats))| {
            let stats = stats.as_ref()?;
            let width = if stats.histogram.len() > 1 {
                stats.histogram[1].0 - stats.histogram[0].0
            } else {
                1.0
            };
            #[allow(clippy::cast_precision_loss)]
            let bars: Vec<egui_plot::Bar> = stats
                .histogram
                .iter()
                .map(|(x, n)| egui_plot::Bar::new(*x, *n as f64).width(width))
                .collect();
            let chart = egui_plot::BarChart::new(format!("band {}", band + 1), bars);
            Some(if bands.len() == 3 {
                chart.color(colours[k])
            } else {
                chart
            })
        })
        .collect();
    egui_plot::Plot::new("histogram")
        .height(140.0)
        .allow_zoom(false)
        .allow_drag(false)
        .allow_scroll(false)
        .show(ui, |plot| {
            for chart in charts {
                plot.bar_chart(chart);
            }
        });
}

fn report(store: &Store, key: TileKey, bands: &[usize]) -> ChunkReport {
    let bytes = store
        .chunk_key(key.t, key.loc)
        .and_then(|k| store.storage().size(&k).ok().flatten());
    let stats = with_dtype!(store.structure().dtype, T => chunk_stats::<T>(store, key, bands));
    ChunkReport { bytes, stats }
}

fn chunk_stats<T: Element>(
    store: &Store,
    key: TileKey,
    bands: &[usize],
) -> Result<Vec<(usize, Option<Stats>)>, String> {
    let chunk = match store.read_chunk::<T>(key.t, key.loc) {
        Ok(Some(chunk)) => chunk,
        Ok(None) => return Ok(bands.iter().map(|b| (*b, None)).collect()),
        Err(EngineError::Corrupt { reason, .. }) => return Err(format!("corrupt: {reason}")),
        Err(e) => return Err(e.to_string()),
    };
    let nodata = store.nodata::<T>();
    Ok(bands
        .iter()
        .filter(|b| **b < chunk.dim().0)
        .map(|b| (*b, stats(chunk.index_axis(ndarray::Axis(0), *b), nodata)))
        .collect())
}

fn stats<T: Element>(
    band: ndarray::ArrayView2<'_, T>,
    nodata: crate::engine::Nodata<T>,
) -> Option<Stats> {
    let values: Vec<f64> = band
        .iter()
        .filter(|v| v.is_valid(nodata))
        .map(|v| v.to_f64())
        .collect();
    if values.is_empty() {
        return None;
    }
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    #[allow(clippy::cast_precision_loss)]
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    let span = (max - min).max(f64::EPSILON);
    let mut counts = vec![0u64; BINS];
    for v in &values {
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let bin = (((v - min) / span) * BINS as f64) as usize;
        counts[bin.min(BINS - 1)] += 1;
    }
    #[allow(clippy::cast_precision_loss)]
    let histogram = counts
        .into_iter()
        .enumerate()
        .map(|(i, n)| (min + (i as f64 + 0.5) * span / BINS as f64, n))
        .collect();
    Some(Stats {
        valid: values.len(),
        cells: band.len(),
        min,
        max,
        mean,
        histogram,
    })
}
