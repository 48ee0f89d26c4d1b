//! The time axis in the explorer: a slider over the stored instants, and the
//! time series at a clicked point (read on a background thread).

use super::task::Task;
use crate::engine::grid::time::format_instant;
use crate::engine::{Resampling, Store};
use crate::with_dtype;
use std::sync::Arc;

/// A time series: the point it was read at, and `(instant, value)` in time order.
pub type Series = ((f64, f64), Vec<(i64, Option<f64>)>);

/// The instant shown and the series at the last clicked point.
#[derive(Default)]
pub struct TimePanel {
    /// The time index shown on the map.
    pub t: u32,
    /// `(instant, value)` at the clicked point, in time order.
    pub series: Option<Series>,
    pending: Option<Task<Series>>,
}

impl TimePanel {
    /// Starts reading the series at `(x, y)` (base level, nearest cell).
    pub fn request_series(&mut self, store: &Arc<Store>, point: (f64, f64), ctx: &egui::Context) {
        if store.structure().time.is_none() {
            return;
        }
        let store = store.clone();
        self.pending = Some(Task::spawn(ctx, move || {
            let series: Vec<(i64, Option<f64>)> = store
                .instants_between(i64::MIN, i64::MAX)
                .into_iter()
                .map(|(t, instant)| {
                    let value = with_dtype!(store.structure().dtype, T => store.value_at::<T>(t, 0, point, 0, Resampling::Nearest));
                    (instant, value.ok().flatten())
                })
                .collect();
            (point, series)
        }));
    }

    /// The slider and the series plot; returns whether the instant changed.
    pub fn ui(&mut self, ui: &mut egui::Ui, store: &Store) -> bool {
        if let Some(rx) = &self.pending
            && let Some(series) = rx.poll()
        {
            self.series = Some(series);
            self.pending = None;
        }
        if store.structure().time.is_none() {
            return false;
        }
        let instants = store.instants_between(i64::MIN, i64::MAX);
        if instants.is_empty() {
            ui.label("time: no instants yet");
            return false;
        }
        let mut position = instants.iter().position(|(t, _)| *t == self.t).unwrap_or(0);
        let label = ui.label("time");
        let last = instants.len() - 1;
        let slider = egui::Slider::new(&mut position, 0..=last)
            .show_value(false)
            .custom_formatter(|v, _| {
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let i = (v as usize).min(last);
                format_instant(instants[i].1)
            });
        ui.add(slider).labelled_by(label.id);
        ui.monospace(format_instant(instants[position].1));
        let changed = instants[position].0 != self.t;
        self.t = instants[position].0;
        if let Some(((x, y), series)) = &self.series {
            ui.label(format!("series at {x:.1}, {y:.1}"));
            #[allow(clippy::cast_precision_loss)]
            let points: Vec<[f64; 2]> = series
                .iter()
                .filter_map(|(instant, v)| v.map(|v| [*instant as f64 / 86_400.0, v]))
                .collect();
            egui_plot::Plot::new("series")
                .height(140.0)
                .x_axis_label("days since 1970")
                .show(ui, |plot| {
                    plot.line(egui_plot::Line::new(
                        "value",
                        egui_plot::PlotPoints::from(points.clone()),
                    ));
                    plot.points(
                        egui_plot::Points::new("instants", egui_plot::PlotPoints::from(points))
                            .radius(3.0),
                    );
                });
        }
        changed
    }
}
