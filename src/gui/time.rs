//! The time axis in the explorer: a timeline of the stored instants (each
//! at its place in time; click or drag to choose, arrow keys to step), or
//! of the periods of a time level the store keeps (day, week, month,
//! year: the selector beside it), playback at a chosen speed, and the time
//! series at a clicked point or over a drawn area (read on the worker
//! pool) on a date axis, per instant or per period.

use super::task::Task;
use crate::engine::grid::period::TimeLevel;
use crate::engine::grid::structure::Aggregator;
use crate::engine::grid::time::format_instant;
use crate::engine::{Extent, Grid, Resampling, Store, Window};
use crate::with_dtype;
use egui::{Color32, Pos2, Rect, Sense, Stroke, Vec2};
use rayon::prelude::*;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A time series: where it was read, and `(instant, value)` in time order
/// (per period when a time level is shown).
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Where.
    pub place: SeriesPlace,
    /// The band read (from 0), when the store has several.
    pub band: Option<usize>,
    /// `(instant, value)`; `None` where there is no data.
    pub values: Vec<(i64, Option<f64>)>,
}

/// Where a series was read.
#[derive(Debug, Clone, PartialEq)]
pub enum SeriesPlace {
    /// The cell of the base level nearest a point.
    Point((f64, f64)),
    /// The store's aggregate of the cells with data whose centres lie in
    /// a drawn extent, at the finest level where they are at most
    /// [`MAX_AREA_CELLS`].
    Area {
        /// The extent drawn.
        extent: Extent,
        /// The level read.
        level: u8,
        /// Its cells read.
        window: Window,
        /// The store's aggregate.
        aggregate: Aggregator,
    },
}

/// Most cells an area's series reads per instant: a larger area is read
/// at a coarser level.
pub const MAX_AREA_CELLS: u64 = 1 << 18;

/// The instant shown, playback, and the series at the last clicked point.
pub struct TimePanel {
    /// The time index shown on the map: of an instant, or of a period of
    /// `period`.
    pub t: u32,
    /// The time level shown (its period maps), `None` for instants.
    pub period: Option<TimeLevel>,
    /// Whether `period` changed since [`TimePanel::take_period_change`].
    period_changed: bool,
    /// The series at the clicked point or drawn area.
    pub series: Option<Series>,
    /// Why the last series could not be read.
    pub series_error: Option<String>,
    pending: Option<Task<Result<Series, String>>>,
    /// The "Draw area" button was pressed (see [`TimePanel::take_area_request`]).
    area_asked: bool,
    /// Stepping through the instants on its own.
    pub playing: bool,
    /// Instants per second while playing.
    pub speed: f64,
    /// When playback last stepped.
    stepped: Option<Instant>,
    /// How the place of the series is written (see [`place_text`]).
    pub place: PlaceFormat,
}

impl Default for TimePanel {
    fn default() -> Self {
        Self {
            t: 0,
            period: None,
            period_changed: false,
            series: None,
            series_error: None,
            pending: None,
            area_asked: false,
            playing: false,
            speed: 2.0,
            stepped: None,
            place: PlaceFormat::default(),
        }
    }
}

/// How a place's coordinates are written: degrees with hemispheres, or
/// the CRS's units, to this many decimals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PlaceFormat {
    /// Longitude and latitude.
    pub degrees: bool,
    /// Decimals.
    pub decimals: usize,
}

impl PlaceFormat {
    /// Decimals that resolve a hundredth of a cell of `cell_size`.
    #[must_use]
    pub fn for_cell(cell_size: f64, degrees: bool) -> Self {
        let resolution = cell_size.abs() / 100.0;
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let decimals = if resolution > 0.0 && resolution < 1.0 {
            ((-resolution.log10()).ceil() as usize).min(12)
        } else {
            0
        };
        Self { degrees, decimals }
    }
}

/// A place, as [`PlaceFormat`] says.
#[must_use]
pub fn place_text((x, y): (f64, f64), format: PlaceFormat) -> String {
    let d = format.decimals;
    if format.degrees {
        let (ew, ns) = (
            if x < 0.0 { "W" } else { "E" },
            if y < 0.0 { "S" } else { "N" },
        );
        format!("{:.d$}°{ns}, {:.d$}°{ew}", y.abs(), x.abs())
    } else {
        format!("{x:.d$}, {y:.d$}")
    }
}

/// A date on an axis spanning `span` seconds: down to the month over two
/// years, the day over two days, else the minute.
#[must_use]
pub fn date_label(seconds: i64, span: i64) -> String {
    let full = format_instant(seconds);
    if span > 2 * 365 * 86_400 {
        full[..7].to_string()
    } else if span > 2 * 86_400 {
        full[..10].to_string()
    } else {
        format!("{} {}", &full[5..10], &full[11..16])
    }
}

/// The y range a series is shown over: its values with a margin of 5 % of
/// their spread (or ±1 for one value).
#[must_use]
pub fn value_range(values: &[f64]) -> Option<(f64, f64)> {
    let min = values.iter().copied().reduce(f64::min)?;
    let max = values.iter().copied().reduce(f64::max)?;
    let margin = if max > min { (max - min) * 0.05 } else { 1.0 };
    Some((min - margin, max + margin))
}

/// The index of the instant nearest `at` (instants sorted).
#[must_use]
pub fn nearest(instants: &[(u32, i64)], at: f64) -> usize {
    #[allow(clippy::cast_precision_loss)]
    let distance = |i: usize| (instants[i].1 as f64 - at).abs();
    (0..instants.len())
        .min_by(|&a, &b| distance(a).total_cmp(&distance(b)))
        .unwrap_or(0)
}

impl TimePanel {
    /// The store whose maps are shown: `store`'s, or its maps of the time
    /// level chosen.
    #[must_use]
    pub fn shown(&self, store: &Arc<Store>) -> Arc<Store> {
        self.period
            .and_then(|level| store.period_maps(level))
            .unwrap_or(store)
            .clone()
    }

    /// Whether the time level shown changed since the last call (the map's
    /// tiles are then of other maps).
    pub fn take_period_change(&mut self) -> bool {
        std::mem::take(&mut self.period_changed)
    }

    /// Shows `level`'s periods (`None`: the instants), at the period
    /// holding the instant shown, or the first instant of the period shown.
    /// A level the store keeps no maps of changes nothing.
    pub fn show_period(&mut self, store: &Store, level: Option<TimeLevel>) {
        let kept = level.is_none_or(|l| store.period_maps(l).is_some());
        if level == self.period || !kept {
            return;
        }
        let shown = self.period.and_then(|l| store.period_maps(l));
        let at = match shown {
            Some(maps) => maps.instant_of(self.t),
            None => store.instant_of(self.t),
        };
        let target: &Store = level
            .and_then(|l| store.period_maps(l))
            .map_or(store, |m| m);
        let wanted = at.map(|at| match level {
            Some(level) => level.period().start(at),
            None => at,
        });
        let instants = target.instants_between(i64::MIN, i64::MAX);
        // Back to instants: the first of the period shown, if it has one.
        let within = match (self.period, at) {
            (Some(shown), Some(at)) if level.is_none() => instants
                .iter()
                .position(|(_, i)| shown.period().start(*i) == at),
            _ => None,
        };
        #[allow(clippy::cast_precision_loss)]
        let position = within.unwrap_or_else(|| wanted.map_or(0, |w| nearest(&instants, w as f64)));
        self.t = instants.get(position).map_or(0, |(t, _)| *t);
        self.period = level;
        self.period_changed = true;
        // The series of the other maps is read anew at the next click.
        self.series = None;
        self.series_error = None;
        self.pending = None;
    }

    /// Starts reading the series of `band` at `(x, y)` (base level,
    /// nearest cell).
    pub fn request_series(
        &mut self,
        store: &Arc<Store>,
        point: (f64, f64),
        band: usize,
        ctx: &egui::Context,
    ) {
        self.read_series(store, SeriesPlace::Point(point), band, ctx, move |store, t| {
            with_dtype!(store.structure().dtype, T => store.value_at::<T>(t, 0, point, band, Resampling::Nearest))
        });
    }

    /// Starts reading the series of `band` over `extent`: at each instant,
    /// the store's aggregate of the cells with data whose centres lie in it.
    pub fn request_area_series(
        &mut self,
        store: &Arc<Store>,
        extent: Extent,
        band: usize,
        ctx: &egui::Context,
    ) {
        if store.structure().time.is_none() {
            return;
        }
        let Some((level, window)) = area_window(store.grid(), &extent) else {
            self.series = None;
            self.series_error = Some("no cell has its centre in the area drawn".to_string());
            return;
        };
        let place = SeriesPlace::Area {
            extent,
            level,
            window,
            aggregate: store.structure().aggregate,
        };
        self.read_series(store, place, band, ctx, move |store, t| {
            let area = with_dtype!(store.structure().dtype, T => store.area_value::<T>(t, level, &window, band));
            Ok(area?.value)
        });
    }

    /// Reads, on the worker pool, the series `value` gives at each instant
    /// of `store` (a store with a time axis), of `band` at `place`.
    fn read_series(
        &mut self,
        store: &Arc<Store>,
        place: SeriesPlace,
        band: usize,
        ctx: &egui::Context,
        value: impl Fn(&Store, u32) -> Result<Option<f64>, crate::engine::EngineError>
        + Send
        + Sync
        + 'static,
    ) {
        if store.structure().time.is_none() {
            return;
        }
        let store = store.clone();
        self.pending = Some(Task::on_pool(ctx, move || {
            let values = store
                .instants_between(i64::MIN, i64::MAX)
                .into_par_iter()
                .map(|(t, instant)| Ok((instant, value(&store, t)?)))
                .collect::<Result<_, crate::engine::EngineError>>()
                .map_err(|e| format!("{}: {e}", store.location()))?;
            Ok(Series {
                place,
                band: (store.structure().band_count() > 1).then_some(band),
                values,
            })
        }));
    }

    /// Whether "Draw area" was pressed since the last call.
    pub fn take_area_request(&mut self) -> bool {
        std::mem::take(&mut self.area_asked)
    }

    /// The timeline, playback and the series plot; returns whether the
    /// instant changed. `loaded`: the map shows the current instant in
    /// full, so playback may step on.
    pub fn ui(&mut self, ui: &mut egui::Ui, store: &Arc<Store>, loaded: bool) -> bool {
        if let Some(rx) = &self.pending
            && let Some(series) = rx.poll()
        {
            (self.series, self.series_error) = match series {
                Ok(series) => (Some(series), None),
                Err(e) => (None, Some(e)),
            };
            self.pending = None;
        }
        if store.structure().time.is_none() {
            self.playing = false;
            return false;
        }
        if !store.time_levels().is_empty() {
            let mut level = self.period;
            ui.horizontal(|ui| {
                ui.label("show");
                ui.selectable_value(&mut level, None, "instants");
                for &kept in store.time_levels() {
                    ui.selectable_value(&mut level, Some(kept), kept.name())
                        .on_hover_text(format!(
                            "the {kept} maps: each {kept}'s {} of its instants",
                            store.structure().aggregate
                        ));
                }
            });
            self.show_period(store, level);
        }
        let changed_level = self.period_changed;
        let shown = self.shown(store);
        let store = shown.as_ref();
        let instants = store.instants_between(i64::MIN, i64::MAX);
        if instants.is_empty() {
            ui.label("time: no instants yet");
            self.playing = false;
            return false;
        }
        let last = instants.len() - 1;
        let mut position = instants.iter().position(|(t, _)| *t == self.t).unwrap_or(0);
        let label = ui.label("time");
        let response = timeline(ui, &instants, position);
        response.widget_info(|| {
            let mut info = egui::WidgetInfo::new(egui::Role::Slider);
            info.value = Some(position as f64);
            info
        });
        let response = response.labelled_by(label.id);
        if let Some(p) = response.interact_pointer_pos() {
            position = nearest(&instants, time_at(response.rect, &instants, p.x));
        }
        // Arrow keys step, unless a text field has the keyboard.
        if !ui.ctx().egui_wants_keyboard_input() {
            let (left, right, home, end) = ui.input(|i| {
                (
                    i.key_pressed(egui::Key::ArrowLeft),
                    i.key_pressed(egui::Key::ArrowRight),
                    i.key_pressed(egui::Key::Home),
                    i.key_pressed(egui::Key::End),
                )
            });
            if left {
                position = position.saturating_sub(1);
            }
            if right {
                position = (position + 1).min(last);
            }
            if home {
                position = 0;
            }
            if end {
                position = last;
            }
        }
        ui.horizontal(|ui| {
            if ui.button("◀").on_hover_text("previous instant").clicked() {
                position = position.saturating_sub(1);
            }
            let play = if self.playing { "Pause" } else { "Play" };
            if ui.button(play).clicked() {
                self.playing = !self.playing;
                self.stepped = None;
            }
            if ui.button("▶").on_hover_text("next instant").clicked() {
                position = (position + 1).min(last);
            }
            let speed = ui.label("speed");
            ui.add(
                egui::DragValue::new(&mut self.speed)
                    .range(0.25..=30.0)
                    .speed(0.1)
                    .suffix(" /s"),
            )
            .labelled_by(speed.id);
        });
        if self.playing {
            position = self.play(ui.ctx(), position, last, loaded);
        }
        ui.monospace(match self.period {
            Some(level) => format!("{level} {}", level.period().label(instants[position].1)),
            None => format_instant(instants[position].1),
        });
        let changed = instants[position].0 != self.t || changed_level;
        self.t = instants[position].0;
        self.series_plot(ui);
        changed
    }

    /// The position playback is at now: one step on once its interval has
    /// passed and the map shows the current instant (or three intervals
    /// have passed), wrapping at the end.
    fn play(&mut self, ctx: &egui::Context, position: usize, last: usize, loaded: bool) -> usize {
        let interval = Duration::from_secs_f64(1.0 / self.speed.clamp(0.25, 30.0));
        let now = Instant::now();
        let since = self.stepped.map_or(interval, |s| now.duration_since(s));
        ctx.request_repaint_after(interval.saturating_sub(since).max(Duration::from_millis(5)));
        if since < interval || (!loaded && since < 3 * interval) {
            return position;
        }
        self.stepped = Some(now);
        if position >= last { 0 } else { position + 1 }
    }

    fn series_plot(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            if ui
                .button("Draw area")
                .on_hover_text("drag a rectangle on the map: the series over it")
                .clicked()
            {
                self.area_asked = true;
            }
            if self.pending.is_some() {
                ui.spinner();
            }
        });
        if let Some(error) = &self.series_error {
            ui.colored_label(ui.visuals().error_fg_color, error);
        }
        let Some(Series {
            place,
            band,
            values: series,
        }) = &self.series
        else {
            return;
        };
        let of_band = band.map_or_else(String::new, |b| format!(" (band {})", b + 1));
        ui.label(match place {
            SeriesPlace::Point(point) => {
                format!("series at {}{of_band}", place_text(*point, self.place))
            }
            SeriesPlace::Area {
                level,
                window,
                aggregate,
                ..
            } => format!(
                "series: the {aggregate} over {}×{} cells of level {level}{of_band}",
                window.cols, window.rows
            ),
        });
        let key = match place {
            SeriesPlace::Point((x, y)) => [x, y, x, y],
            SeriesPlace::Area { extent, .. } => {
                [&extent.min_x, &extent.min_y, &extent.max_x, &extent.max_y]
            }
        }
        .map(|v| v.to_bits());
        #[allow(clippy::cast_precision_loss)]
        let points: Vec<[f64; 2]> = series
            .iter()
            .filter_map(|(instant, v)| v.map(|v| [*instant as f64, v]))
            .collect();
        let values: Vec<f64> = points.iter().map(|p| p[1]).collect();
        let span = match (series.first(), series.last()) {
            (Some(a), Some(b)) => b.0 - a.0,
            _ => 0,
        };
        #[allow(clippy::cast_possible_truncation)]
        let date = move |x: f64| date_label(x as i64, span);
        // A new id per place: the plot fits each series afresh.
        let mut plot = egui_plot::Plot::new(("series", key))
            .height(140.0)
            .x_axis_formatter(move |mark, _| date(mark.value))
            .label_formatter(move |hover| {
                let p = match hover {
                    egui_plot::HoverPosition::NearDataPoint { position, .. }
                    | egui_plot::HoverPosition::Elsewhere { position } => position,
                };
                Some(format!("{}\n{}", date(p.x), p.y))
            });
        if let Some((lo, hi)) = value_range(&values) {
            plot = plot.include_y(lo).include_y(hi);
        }
        plot.show(ui, |plot| {
            plot.line(egui_plot::Line::new(
                "value",
                egui_plot::PlotPoints::from(points.clone()),
            ));
            plot.points(
                egui_plot::Points::new("instants", egui_plot::PlotPoints::from(points)).radius(3.0),
            );
        });
    }
}

/// The finest level at which the cells centred in `extent` number at most
/// [`MAX_AREA_CELLS`], and those cells.
fn area_window(grid: &Grid, extent: &Extent) -> Option<(u8, Window)> {
    (0..=grid.top_level()).find_map(|level| {
        grid.cells_centred_in(level, extent)
            .filter(|w| w.rows * w.cols <= MAX_AREA_CELLS)
            .map(|w| (level, w))
    })
}

/// The time under screen position `x` on a timeline drawn in `rect`.
fn time_at(rect: Rect, instants: &[(u32, i64)], x: f32) -> f64 {
    let (first, last) = span(instants);
    let f = f64::from(((x - rect.left() - 6.0) / (rect.width() - 12.0).max(1.0)).clamp(0.0, 1.0));
    first + f * (last - first)
}

#[allow(clippy::cast_precision_loss)]
fn span(instants: &[(u32, i64)]) -> (f64, f64) {
    let first = instants.first().map_or(0.0, |i| i.1 as f64);
    let last = instants.last().map_or(0.0, |i| i.1 as f64);
    (first, last)
}

/// Draws the timeline: a tick for each instant at its place in time, the
/// current one marked.
fn timeline(ui: &mut egui::Ui, instants: &[(u32, i64)], current: usize) -> egui::Response {
    let width = ui.available_width().max(120.0);
    let (rect, response) = ui.allocate_exact_size(Vec2::new(width, 24.0), Sense::click_and_drag());
    let painter = ui.painter_at(rect);
    let visuals = ui.visuals();
    let y = rect.center().y;
    painter.line_segment(
        [
            Pos2::new(rect.left() + 6.0, y),
            Pos2::new(rect.right() - 6.0, y),
        ],
        Stroke::new(2.0, visuals.widgets.inactive.bg_fill),
    );
    let (first, last) = span(instants);
    let x_of = |t: i64| {
        #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
        let f = if last > first {
            ((t as f64 - first) / (last - first)) as f32
        } else {
            0.5
        };
        rect.left() + 6.0 + f * (rect.width() - 12.0)
    };
    let tick = Stroke::new(1.0, visuals.text_color());
    for (_, t) in instants {
        let x = x_of(*t);
        painter.line_segment([Pos2::new(x, y - 4.0), Pos2::new(x, y + 4.0)], tick);
    }
    if let Some((_, t)) = instants.get(current) {
        painter.circle_filled(Pos2::new(x_of(*t), y), 6.0, Color32::from_rgb(255, 200, 0));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_on_the_axis_fit_the_span() {
        let t = 1_714_564_800; // 2024-05-01T12:00:00Z
        assert_eq!(date_label(t, 10 * 365 * 86_400), "2024-05");
        assert_eq!(date_label(t, 30 * 86_400), "2024-05-01");
        assert_eq!(date_label(t, 6 * 3600), "05-01 12:00");
    }

    #[test]
    fn the_value_range_holds_every_value() {
        // The series the issue saw clipped: 849 and 862.
        let (lo, hi) = value_range(&[849.0, 862.0]).unwrap();
        assert!(lo < 849.0 && hi > 862.0 && hi - lo < 15.0);
        assert_eq!(value_range(&[5.0]), Some((4.0, 6.0)));
        assert_eq!(value_range(&[]), None);
    }

    #[test]
    fn places_keep_a_hundredth_of_a_cell() {
        let metres = PlaceFormat::for_cell(28.5, false);
        assert_eq!(
            place_text((290_992.063_4, 9_115_571.27), metres),
            "290992.1, 9115571.3"
        );
        let degrees = PlaceFormat::for_cell(1.0 / 3600.0, true);
        assert_eq!(degrees.decimals, 6);
        assert_eq!(
            place_text((-34.87, -7.995), degrees),
            "7.995000°S, 34.870000°W"
        );
    }

    #[test]
    fn the_nearest_instant_wins() {
        let instants = [(0, 0), (1, 100), (2, 1000)];
        assert_eq!(nearest(&instants, 40.0), 0);
        assert_eq!(nearest(&instants, 60.0), 1);
        assert_eq!(nearest(&instants, 5000.0), 2);
    }
}
