//! The explorer: an eframe/egui desktop app over the engine.
//!
//! The UI thread never does I/O, decoding or aggregation: stores open on a
//! background thread and tiles render on the rayon pool, and both report
//! back over bounded channels that wake the UI.

mod app;
mod changes;
mod command;
mod demo;
mod dialog;
mod editor;
mod export;
mod form;
mod furniture;
mod history;
mod inspect;
mod jobs;
mod levels;
mod map;
mod margins;
mod probe;
pub mod quicklooks;
mod recent;
mod side_panel;
mod stretch;
mod task;
mod tiles;
mod time;
mod tour;

pub use app::{Explorer, GuiOptions, Opened, Shading};
pub use changes::{Change, Changes, WRITTEN_FADE};
pub use dialog::{Backend as DialogBackend, Pick, PickKind, Picked, Probe as DialogProbe};
pub use editor::{Created, StructureEditor};
pub use export::ExportPanel;
pub use form::{Checked, CodecKind, Field, Form, ResolvedCrs, TimeKind};
pub use history::HistoryPanel;
pub use inspect::{ChunkReport, Inspector, Stats};
pub use jobs::{Job, JobState, Jobs};
pub use levels::LevelBrowser;
pub use map::{Drawing, MapView, Readout};
pub use stretch::{StretchControl, StretchMode};
pub use tiles::{Relief, Style, TileCache, TileKey};
pub use time::{Series, SeriesPlace, TimePanel};
pub use tour::frame_stats;

/// Runs the explorer window until it is closed.
///
/// # Errors
/// The window cannot be created, or a `--screenshot` run failed.
pub fn run(options: GuiOptions) -> anyhow::Result<()> {
    // Without a display there is no window to open: say so plainly, with
    // what still works, rather than the windowing library's own text.
    let display = ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|d| !d.is_empty()));
    if !display {
        anyhow::bail!(
            "cannot open the explorer: no display (DISPLAY or WAYLAND_DISPLAY is not set); \
             the command line works without one (gridstore --help), or run under xvfb-run"
        );
    }
    let native = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_inner_size([1280.0, 800.0])
            .with_title("gridstore"),
        // A map's colours are data: drawn exactly, not dithered (which also
        // halves what a software renderer spends on each pixel).
        dithering: false,
        ..eframe::NativeOptions::default()
    };
    let outcome = std::sync::Arc::new(std::sync::Mutex::new(None));
    let slot = outcome.clone();
    eframe::run_native(
        "gridstore",
        native,
        Box::new(move |cc| {
            let app = Explorer::new(cc.egui_ctx.clone(), &options);
            *slot
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(app.outcome.clone());
            Ok(Box::new(app))
        }),
    )
    .map_err(|e| anyhow::anyhow!("cannot open the explorer window: {e}"))?;
    // Background reads still running (a quicklook, a tile) finish before
    // the process exits and GDAL and HDF5 tear down under them.
    task::wait_idle(std::time::Duration::from_secs(5));
    let result = outcome
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take();
    match result.and_then(|o| {
        o.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }) {
        Some(Err(e)) => anyhow::bail!("{e}"),
        _ => Ok(()),
    }
}
