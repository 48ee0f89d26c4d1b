//! The explorer's state and frame: store summary, map, status bar.
//!
//! Opening a store, building the demo store and rendering tiles all run off
//! the UI thread; results come back over bounded channels.

use super::command::Command;
use super::editor::StructureEditor;
use super::export::ExportPanel;
use super::history::HistoryPanel;
use super::inspect::Inspector;
use super::jobs::{JobState, Jobs};
use super::levels::LevelBrowser;
use super::map::{Drawing, Drawn, MapView, Marks, Readout};
use super::quicklooks::Quicklooks;
use super::stretch::StretchControl;
use super::task::Task;
use super::tiles::{Style, TileCache};
use super::time::TimePanel;
use crate::engine::persistence::band_info::{self, BandInfo};
use crate::engine::{Extent, Store};
use crate::gdal_io::ExportRequest;
use crate::render::{Bands, ColorMap};
use crate::with_dtype;
use egui::RichText;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// How the explorer starts.
#[derive(Debug, Clone, Default)]
pub struct GuiOptions {
    /// The store to open; `None` opens the demo store.
    pub store: Option<PathBuf>,
    /// A level to pin at start.
    pub level: Option<u8>,
    /// An extent to show at start (store CRS).
    pub bbox: Option<Extent>,
    /// Save a screenshot here once the visible tiles are loaded, then quit.
    pub screenshot: Option<PathBuf>,
    /// Where the recent-stores list lives (`None`: the user's config folder).
    pub recent_file: Option<PathBuf>,
    /// Run the pan/zoom tour, log each frame's UI time here, then quit.
    pub tour: Option<PathBuf>,
    /// A raster to ingest halfway through the tour.
    pub tour_ingest: Option<PathBuf>,
    /// Where the function cache lives (`None`: the user's, see
    /// [`crate::engine::FunctionCache::open_default`]).
    pub cache_dir: Option<PathBuf>,
    /// The colour map to start with, kept over a categorical store's own
    /// colour table (`None`: viridis, or that table).
    pub color_map: Option<ColorMap>,
    /// A typed stretch to start with, `(min, max)` for every channel
    /// (`None`: from the data in view).
    pub stretch: Option<(f64, f64)>,
    /// The bands to show at start, 1-based: one band, or three for an RGB
    /// composite (`None`: bands 1–3 of a store with three or more, else 1).
    pub bands: Option<Vec<u32>>,
    /// What chooses the file dialogs (`None`: the process's environment).
    pub dialogs: Option<super::dialog::Probe>,
    /// The instant to show at start (seconds since the epoch, UTC); it
    /// must be stored (or, with `period`, lie in a stored period).
    pub time: Option<i64>,
    /// The time level whose maps to show at start.
    pub period: Option<crate::engine::grid::period::TimeLevel>,
    /// Start with shaded relief: `Some(true)` alone, `Some(false)` blended
    /// with the colours.
    pub hillshade: Option<bool>,
}

/// The shaded-relief settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shading {
    /// Whether the map is shaded.
    pub on: bool,
    /// The sun.
    pub sun: crate::relief::Sun,
    /// The shade alone in greys, rather than blended with the colours.
    pub alone: bool,
}

/// A store that finished opening.
pub struct Opened {
    /// The store, shared with tile workers.
    pub store: Arc<Store>,
    /// Where it lives.
    pub path: PathBuf,
    /// The extent of its data, if any.
    pub data: Option<Extent>,
    /// Chunks and bytes per level.
    pub levels: Vec<(u8, u64, u64)>,
    /// The smallest chunk holding all the data (of the first instant).
    pub master: Option<crate::engine::ChunkLoc>,
    /// The ingest history, oldest first.
    pub history: Vec<crate::engine::IngestRecord>,
    /// Notes attached to the store and its ingests.
    pub notes: Vec<crate::engine::Note>,
    /// Sorted valid values of each band at a level with enough data, for
    /// the whole-store stretch (see [`super::stretch::whole_store_samples`]).
    pub samples: Vec<Arc<[f64]>>,
    /// What the CRS's coordinates measure (scale bar, ticks).
    pub units: super::furniture::MapUnits,
    /// A raster gridstore did not write, shown read-only.
    pub read_only: bool,
    /// What that raster is ("GeoTIFF, read through GDAL, …"), read once.
    pub source: Option<String>,
}

pub(super) enum StoreState {
    Empty,
    Loading(String, Task<Result<Opened, String>>),
    Open(Box<Opened>),
    Failed(String),
}

/// What `--screenshot` is waiting for.
enum Shot {
    None,
    Waiting { path: PathBuf, settled: u32 },
    Taken(Arc<Mutex<Option<Result<(), String>>>>),
}

/// The explorer application.
pub struct Explorer {
    pub(super) ctx: egui::Context,
    pub(super) state: StoreState,
    /// The map view.
    pub map: MapView,
    /// The tile cache.
    pub tiles: TileCache,
    pub(super) color_map: ColorMap,
    /// Colour through the store's colour table (categorical stores).
    pub(super) use_palette: bool,
    /// The colour map was chosen at start: a colour table does not replace
    /// it.
    chosen_map: bool,
    /// The colour stretch and how it is chosen.
    pub stretch: StretchControl,
    /// The bands shown.
    pub(super) bands: Bands,
    /// Bands asked for at start (1-based), applied when the store opens.
    start_bands: Option<Vec<u32>>,
    /// Draw the ticks, scale bar and legend over the map.
    pub furniture: bool,
    /// The instant asked for at start, applied when the store opens.
    start_time: Option<i64>,
    start_period: Option<crate::engine::grid::period::TimeLevel>,
    /// Shaded relief.
    pub shading: Shading,
    pub(super) drawn: Drawn,
    /// Every band's value under the cursor.
    probe: super::probe::CursorProbe,
    /// What the probe found at the cursor this frame, once read.
    pub(super) cursor_values: Option<Vec<Option<f32>>>,
    shot: Shot,
    bbox: Option<Extent>,
    /// Set when a screenshot run finished: its outcome.
    pub outcome: Arc<Mutex<Option<Result<(), String>>>>,
    /// Ingest jobs.
    pub jobs: Jobs,
    /// The chunk inspector (pyramid browser).
    pub inspector: Inspector,
    /// The export settings.
    pub export: ExportPanel,
    /// The time slider and series.
    pub time: TimePanel,
    /// The level list and a level's chunk list.
    pub levels: LevelBrowser,
    /// The ingest history section.
    pub history: HistoryPanel,
    /// The structure editor (new stores) and viewer (the open store).
    pub editor: StructureEditor,
    /// Quicklooks of the open and recent stores.
    pub quicklooks: Quicklooks,
    /// A reload of the open store after a write, applied when it arrives.
    reload: Option<Task<Result<Opened, String>>>,
    last_reload: std::time::Instant,
    /// The open store changed since its summary was last re-read.
    unread_change: Option<PathBuf>,
    /// Summary re-reads that failed in a row (retried a few times).
    reload_failures: u32,
    /// A store a job changed while its summary could not be re-read (it
    /// was opening, or a re-read was under way): re-read it next.
    pending_reload: Option<PathBuf>,
    /// The file dialog open, if any (see `command`).
    pub(super) dialog: Option<super::command::OpenDialog>,
    /// What the choice of file dialog depends on.
    pub(super) dialog_probe: super::dialog::Probe,
    /// Stores opened before, most recent first.
    pub recent: Vec<PathBuf>,
    recent_file: Option<PathBuf>,
    tour: Option<super::tour::Tour>,
}

impl Explorer {
    /// The explorer, starting to open the store of `options` (or the demo).
    #[must_use]
    pub fn new(ctx: egui::Context, options: &GuiOptions) -> Self {
        // Creating the cache's folder is the only I/O: done before the
        // first frame. Without a cache, everything works, only slower.
        let cache = match &options.cache_dir {
            Some(dir) => crate::storage::FolderStorage::create(dir.clone())
                .map(|s| crate::engine::FunctionCache::new(Arc::new(s)))
                .ok(),
            None => crate::engine::FunctionCache::open_default().ok(),
        };
        let mut app = Self {
            quicklooks: Quicklooks::new(ctx.clone(), cache.clone()),
            tiles: TileCache::new(ctx.clone(), 512),
            ctx: ctx.clone(),
            state: StoreState::Empty,
            map: MapView::pinned(options.level),
            color_map: options.color_map.unwrap_or_default(),
            chosen_map: options.color_map.is_some(),
            use_palette: false,
            stretch: options
                .stretch
                .map_or_else(StretchControl::default, |(min, max)| {
                    StretchControl::typed(min, max)
                }),
            bands: Bands::Single(0),
            start_bands: options.bands.clone(),
            probe: super::probe::CursorProbe::default(),
            cursor_values: None,
            furniture: true,
            start_time: options.time,
            start_period: options.period,
            shading: Shading {
                on: options.hillshade.is_some(),
                sun: crate::relief::Sun::default(),
                alone: options.hillshade == Some(true),
            },
            drawn: Drawn::default(),
            shot: options
                .screenshot
                .clone()
                .map_or(Shot::None, |path| Shot::Waiting { path, settled: 0 }),
            bbox: options.bbox,
            outcome: Arc::new(Mutex::new(None)),
            jobs: Jobs::new(ctx.clone(), cache),
            inspector: Inspector::default(),
            export: ExportPanel::default(),
            time: TimePanel::default(),
            levels: LevelBrowser::default(),
            history: HistoryPanel::default(),
            editor: StructureEditor::default(),
            reload: None,
            last_reload: std::time::Instant::now(),
            pending_reload: None,
            reload_failures: 0,
            unread_change: None,
            dialog: None,
            dialog_probe: options
                .dialogs
                .clone()
                .unwrap_or_else(super::dialog::Probe::from_env),
            recent: Vec::new(),
            recent_file: options
                .recent_file
                .clone()
                .or_else(super::recent::default_file),
            tour: options
                .tour
                .clone()
                .map(|log| super::tour::Tour::new(log, options.tour_ingest.clone())),
        };
        // A few hundred bytes, read once before the first frame.
        if let Some(file) = &app.recent_file {
            app.recent = super::recent::load(file);
        }
        match &options.store {
            Some(path) => app.open(path.clone()),
            None => app.open_demo(),
        }
        app
    }

    /// Puts `path` first in the recent list and saves it off the UI thread.
    fn remember(&mut self, path: &std::path::Path) {
        self.recent = super::recent::remember(&self.recent, path);
        if let Some(file) = self.recent_file.clone() {
            let list = self.recent.clone();
            // Losing the list only costs convenience; nothing to report.
            std::thread::spawn(move || super::recent::save(&file, &list).ok());
        }
    }

    /// Starts opening `path` in the background.
    pub fn open(&mut self, path: PathBuf) {
        let label = path.display().to_string();
        let task = Task::spawn(&self.ctx, move || load(&path));
        self.state = StoreState::Loading(label, task);
    }

    /// Builds (once) and opens the demo store from the sample data.
    pub fn open_demo(&mut self) {
        let task = Task::spawn(&self.ctx, || {
            super::demo::demo_store().and_then(|path| load(&path))
        });
        self.state = StoreState::Loading("demo store".into(), task);
    }

    /// The open store, if any.
    #[must_use]
    pub fn opened(&self) -> Option<&Opened> {
        match &self.state {
            StoreState::Open(o) => Some(o),
            _ => None,
        }
    }

    /// Why the store failed to open, if it did.
    #[must_use]
    pub fn error(&self) -> Option<&str> {
        match &self.state {
            StoreState::Failed(e) => Some(e),
            _ => None,
        }
    }

    /// One frame of the whole window.
    pub fn show(&mut self, ui: &mut egui::Ui) {
        let started = std::time::Instant::now();
        self.tour_step();
        self.frame(ui);
        if let Some(tour) = &mut self.tour
            && self.map.fitted
        {
            let ingesting = self.jobs.jobs.iter().any(|j| j.state == JobState::Running);
            tour.record(
                (self.drawn.level, self.time.t),
                ingesting,
                self.time.playing,
                started.elapsed(),
            );
            if tour.holding() && self.drawn.missing == 0 {
                // This frame completes the new viewport: the next one, once
                // this is painted, notes it (one frame: egui answers
                // `request_repaint` with two).
                self.ctx
                    .request_repaint_after(std::time::Duration::from_millis(1));
            }
        }
    }

    /// Moves the view along the tour, starts its ingest, ends it.
    fn tour_step(&mut self) {
        let Some(opened) = self.opened() else { return };
        let Some(data) = opened.data else { return };
        let base = opened.store.grid().cell_size(0)[0];
        let store = opened.path.clone();
        let playable = opened.store.time_indices().len() > 1;
        if !self.map.fitted {
            return;
        }
        let complete = (self.drawn.missing == 0).then_some(self.drawn.level);
        let Some(tour) = &mut self.tour else { return };
        if tour.holding() {
            // Held at a new viewport, whose tiles bring the frames as they
            // would for a user (see `show` for the frame that completes
            // it); whatever happens, the jump's time limit is noticed.
            self.ctx
                .request_repaint_after(std::time::Duration::from_millis(250));
        } else {
            // Moving: paced like a 60 Hz display (an unpaced loop under
            // software GL would take the CPU the tile workers need).
            self.ctx
                .request_repaint_after(std::time::Duration::from_millis(16));
        }
        match tour.next(
            &data,
            (self.map.center, self.map.units_per_point),
            base,
            complete,
            playable,
        ) {
            super::tour::Step::View(center, scale) => {
                self.map.center = center;
                self.map.units_per_point = scale;
            }
            super::tour::Step::Play(center, scale, on) => {
                self.map.center = center;
                self.map.units_per_point = scale;
                self.time.playing = on;
            }
            super::tour::Step::Ingest(file) => self.jobs.ingest(file, store),
            super::tour::Step::Done => {
                let written = tour
                    .write()
                    .map_err(|e| format!("{}: {e}", tour.log.display()));
                *self
                    .outcome
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(written);
                self.tour = None;
                self.ctx.send_viewport_cmd(egui::ViewportCommand::Close);
            }
        }
    }

    fn frame(&mut self, ui: &mut egui::Ui) {
        if let StoreState::Loading(_, task) = &self.state
            && let Some(result) = task.poll()
        {
            self.tiles.clear();
            self.probe.forget();
            self.map.fitted = false;
            self.levels = LevelBrowser::default();
            self.inspector = Inspector::default();
            self.state = match result {
                Ok(opened) => match self
                    .start_bands(&opened)
                    .and_then(|bands| self.start_time(&opened).map(|t| (bands, t)))
                {
                    Err(e) => StoreState::Failed(e),
                    Ok((bands, t)) => {
                        self.bands = bands;
                        self.time.t = t;
                        self.time.period = None;
                        if let Some(level) = self.start_period.take() {
                            self.time.show_period(&opened.store, Some(level));
                        }
                        let cell = opened.store.grid().cell_size(0)[0];
                        let degrees = opened.units == super::furniture::MapUnits::Degrees;
                        self.time.place = super::time::PlaceFormat::for_cell(cell, degrees);
                        self.remember(&opened.path);
                        self.stretch.opened(opened.samples.clone(), self.bands);
                        self.quicklooks.request(&opened.path);
                        // A categorical store shows its own colours first.
                        self.use_palette = opened.store.palette().is_some() && !self.chosen_map;
                        if self.pending_reload.take().as_ref() == Some(&opened.path) {
                            self.reload(opened.path.clone());
                        }
                        StoreState::Open(Box::new(opened))
                    }
                },
                Err(e) => StoreState::Failed(e),
            };
        }
        self.tiles.begin_frame();
        self.quicklooks.poll();
        self.take_files(ui);
        self.follow_jobs();
        self.take_answer(&ui.ctx().clone());
        let mut commands = Vec::new();
        egui::Panel::left("store")
            .default_size(300.0)
            .show(ui, |ui| {
                egui::ScrollArea::vertical().show(ui, |ui| self.side_panel(ui, &mut commands));
            });
        egui::Panel::bottom("status").show(ui, |ui| self.status_bar(ui));
        self.inspector.poll();
        if !self.jobs.jobs.is_empty() || self.inspector.selected.is_some() {
            egui::Panel::right("details")
                .default_size(300.0)
                .show(ui, |ui| {
                    egui::ScrollArea::vertical().show(ui, |ui| {
                        self.inspector_panel(ui, &mut commands);
                        if !self.jobs.jobs.is_empty() {
                            self.jobs_panel(ui, &mut commands);
                        }
                    });
                });
        }
        // Over an open store the map covers the panel: no fill under it, so
        // that a software renderer shades each pixel once (the window's
        // clear colour is the map's background).
        let frame = match self.state {
            StoreState::Open(_) => egui::Frame::NONE,
            _ => egui::Frame::central_panel(ui.style()),
        };
        egui::CentralPanel::default()
            .frame(frame)
            .show(ui, |ui| self.central(ui));
        if let Some(created) = self.editor.show(&ui.ctx().clone(), &mut commands) {
            self.open(created.path.clone());
            for file in created.ingest {
                self.jobs.ingest(file, created.path.clone());
            }
        }
        self.carry_out(commands);
        self.screenshot();
    }

    /// The open store and the export the panel's settings describe (a
    /// store with a time axis exports the instant on the slider).
    pub(super) fn export_request(&self) -> Option<(PathBuf, ExportRequest)> {
        let opened = self.opened()?;
        let request = ExportRequest {
            instant: self.time.shown(&opened.store).instant_of(self.time.t),
            period: self.time.period,
            ..self.export.request()
        };
        Some((opened.path.clone(), request))
    }

    /// Queues an export of the open store to `path` with the panel's settings.
    pub fn export_to(&mut self, path: PathBuf) {
        if let Some((store, request)) = self.export_request() {
            self.jobs.export(store, path, request);
        }
    }

    fn status_bar(&self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            ui.label(format!("level {}", self.drawn.level));
            if let Some(r) = &self.drawn.readout {
                ui.separator();
                ui.monospace(format!("x {:.3}  y {:.3}", r.x, r.y));
                if let Some(loc) = r.loc {
                    ui.separator();
                    ui.monospace(format!("chunk {loc}"));
                }
                ui.separator();
                let info = self
                    .opened()
                    .map(|o| o.store.band_info())
                    .unwrap_or_default();
                ui.monospace(match &self.cursor_values {
                    Some(all) => every_band_text(all, self.bands, &info),
                    None => readout_text(&r.values, self.bands, &info),
                });
            }
            if self.drawn.missing > 0 {
                ui.separator();
                ui.label(format!("loading {} tiles", self.drawn.missing));
            }
            if let Some(e) = &self.tiles.last_error {
                ui.separator();
                ui.colored_label(egui::Color32::LIGHT_RED, e);
            }
        });
    }

    fn central(&mut self, ui: &mut egui::Ui) {
        let StoreState::Open(opened) = &self.state else {
            ui.centered_and_justified(|ui| ui.label("Open a store folder to explore it."));
            return;
        };
        let store = self.time.shown(&opened.store);
        if !self.map.fitted
            && let Some(extent) = self.bbox.or(opened.data)
        {
            self.map.fit(&extent, ui.available_size());
        }
        // Playback shows a level coarser, so each instant loads in time.
        self.map.coarser = u8::from(self.time.playing);
        let style = self.style();
        let t = self.time.t;
        let marks = Marks {
            t,
            selected: self.inspector.selected.map(|k| k.loc),
            export: self.export.extent,
            changes: self
                .jobs
                .jobs
                .iter()
                .filter(|j| j.store == opened.path)
                .flat_map(|j| j.changes.list.iter().copied())
                .collect(),
            data: {
                let s = store.structure();
                (s.nodata.is_none() && s.time.is_none())
                    .then_some(opened.data)
                    .flatten()
            },
        };
        self.drawn = self.map.show(ui, &store, marks, &mut self.tiles, style);
        let complete = self.drawn.missing == 0;
        let classes =
            style.palette && matches!(style.bands, Bands::Single(_)) && store.palette().is_some();
        self.stretch.want_classes(classes);
        if self.stretch.follow(
            &store,
            &mut self.tiles,
            self.drawn.level,
            t,
            self.drawn.view,
            &self.drawn.chunks,
            complete,
            &self.ctx,
        ) {
            // Recoloured in place: old tiles stay until the new ones arrive.
            self.tiles.refresh();
        }
        if self.furniture
            && let Some(rect) = self.drawn.rect
        {
            self.draw_furniture(ui, rect, &store, style, classes);
        }
        match (self.drawn.rectangle_done, self.drawn.rectangle) {
            (Some(Drawing::ExportExtent), extent) => self.export.extent = extent,
            (Some(Drawing::SeriesArea), Some(extent)) => {
                let band = self.series_band();
                self.time
                    .request_area_series(&store, extent, band, &self.ctx);
            }
            _ => {}
        }
        if let Some(point) = self.drawn.clicked_at {
            let band = self.series_band();
            self.time.request_series(&store, point, band, &self.ctx);
        }
        // Stores of more bands than shown: read the others under the cursor.
        self.cursor_values = match &self.drawn.readout {
            Some(Readout {
                loc: Some(loc),
                cell: Some(cell),
                ..
            }) if store.structure().band_count() > self.bands.indices().len() => self.probe.values(
                &store,
                super::tiles::TileKey { t, loc: *loc },
                *cell,
                &self.ctx,
            ),
            _ => None,
        };
        if let Some(loc) = self.drawn.clicked {
            self.inspector.select(
                &store,
                super::tiles::TileKey { t, loc },
                self.bands.indices(),
                &self.ctx,
            );
        }
        self.drop_hint(ui);
    }

    /// The band a series is read of: the first band shown.
    fn series_band(&self) -> usize {
        self.bands.indices().first().copied().unwrap_or(0)
    }

    /// Ticks, scale bar and legend over the map in `rect`.
    fn draw_furniture(
        &self,
        ui: &egui::Ui,
        rect: egui::Rect,
        store: &Store,
        style: Style,
        classes: bool,
    ) {
        let Some(opened) = self.opened() else { return };
        let painter = ui.painter_at(rect);
        super::furniture::ticks(&painter, rect, &self.map, &opened.units);
        super::furniture::scale(&painter, rect, &self.map, &opened.units);
        let palette = store.palette();
        let coloured: Vec<(f64, [u8; 4])> = match (&palette, classes) {
            (Some(palette), true) => self
                .stretch
                .classes
                .iter()
                .map(|(v, _)| {
                    (
                        *v,
                        palette.color(*v).unwrap_or(crate::render::UNLISTED_CLASS),
                    )
                })
                .collect(),
            _ => Vec::new(),
        };
        let legend = match style.relief {
            Some(relief) if relief.alone => super::furniture::Legend::Shade(relief.sun),
            _ => super::furniture::Legend::of(
                style.bands,
                &store.band_info(),
                style.map,
                style.stretch,
                classes.then_some(coloured.as_slice()),
            ),
        };
        super::furniture::legend(&painter, rect, &legend);
    }

    /// While files hover over the window: where they will go.
    fn drop_hint(&self, ui: &egui::Ui) {
        let hovering: Vec<String> = ui.input(|i| {
            i.raw
                .hovered_files
                .iter()
                .filter_map(|f| f.path.as_ref())
                .map(|p| p.display().to_string())
                .collect()
        });
        if hovering.is_empty() {
            return;
        }
        let target = match self.opened() {
            Some(o) => format!("Drop to ingest into {}", o.path.display()),
            None => format!("Drop to create a store like {}", hovering[0]),
        };
        let rect = ui.max_rect();
        let painter = ui.painter();
        painter.rect_filled(rect, 0.0, egui::Color32::from_black_alpha(160));
        painter.text(
            rect.center(),
            egui::Align2::CENTER_CENTER,
            format!("{target}\n{}", hovering.join("\n")),
            egui::FontId::proportional(18.0),
            egui::Color32::WHITE,
        );
    }

    /// Files dropped on the window: queue their ingest.
    fn take_files(&mut self, ui: &egui::Ui) {
        let files: Vec<PathBuf> = ui.input(|i| {
            i.raw
                .dropped_files
                .iter()
                .map(|f| f.path().to_path_buf())
                .collect()
        });
        self.ingest_files(files);
    }

    /// Queues ingests of `files` into the open store. With none open (or
    /// a read-only raster), the structure editor offers a new store made
    /// like the first of them, which ingests them all once created.
    pub fn ingest_files(&mut self, files: Vec<PathBuf>) {
        let writable = self.opened().filter(|o| !o.read_only);
        let Some(target) = writable.map(|o| o.path.clone()) else {
            let mut files = files.into_iter();
            let Some(first) = files.next() else { return };
            self.editor.from_file(first, true, &self.ctx);
            self.editor.ingest_after.extend(files);
            return;
        };
        for file in files {
            self.jobs.ingest(file, target.clone());
        }
    }

    /// Applies job progress: reload the store as its chunks land (at most
    /// every 2 s, since it lists the chunks), open a store a job just created.
    fn follow_jobs(&mut self) {
        let changed = self.jobs.poll();
        if let Some(task) = &self.reload
            && let Some(result) = task.poll()
        {
            self.reload = None;
            match (result, &mut self.state) {
                (Ok(fresh), StoreState::Open(opened)) => {
                    // The first colour table arrived with this write: show it.
                    if fresh.store.palette().is_some() && opened.store.palette().is_none() {
                        self.use_palette = true;
                    }
                    **opened = fresh;
                    self.stretch.opened(opened.samples.clone(), self.bands);
                    self.tiles.cells_changed();
                    self.probe.forget();
                    self.quicklooks.refresh(&opened.path);
                    self.reload_failures = 0;
                }
                // Read while a writer moved files: try again, a few times.
                (Err(_), StoreState::Open(opened)) if self.reload_failures < 5 => {
                    self.reload_failures += 1;
                    self.pending_reload = Some(opened.path.clone());
                }
                _ => {}
            }
            let open_path = self.opened().map(|o| o.path.clone());
            if let Some(path) = self.pending_reload.take()
                && Some(&path) == open_path.as_ref()
            {
                self.reload(path);
            }
        }
        let open_path = self.opened().map(|o| o.path.clone());
        for path in changed {
            if open_path.as_ref() != Some(&path) {
                if matches!(self.state, StoreState::Loading(..)) {
                    // It may be the store being opened: check once it is.
                    self.pending_reload = Some(path);
                }
                continue;
            }
            self.unread_change = Some(path);
        }
        // Checked every frame, not only when a change arrives: the last
        // job on the store may end (even fail) after its change came in.
        if self.unread_change.is_some() && self.unread_change != open_path {
            // Another store is open now.
            self.unread_change = None;
        }
        if let Some(path) = self.unread_change.clone() {
            let due = self.last_reload.elapsed() > std::time::Duration::from_secs(2);
            let finished = !self
                .jobs
                .jobs
                .iter()
                .any(|j| j.store == path && j.is_active());
            if due || finished {
                self.unread_change = None;
                self.reload(path);
            }
        }
    }

    /// Re-reads the open store's summary in the background (one at a time).
    pub(super) fn reload(&mut self, path: PathBuf) {
        if self.reload.is_some() {
            self.pending_reload = Some(path);
            return;
        }
        self.last_reload = std::time::Instant::now();
        self.reload = Some(Task::spawn(&self.ctx, move || load(&path)));
    }

    fn inspector_panel(&mut self, ui: &mut egui::Ui, commands: &mut Vec<Command>) {
        let Some(store) = self.opened().map(|o| self.time.shown(&o.store)) else {
            return;
        };
        let Some(key) = self.inspector.selected else {
            return;
        };
        if let Some(tile) = self.tiles.get(&store, key, self.style(), true)
            && let Some(texture) = &tile.texture
        {
            ui.add(egui::Image::new(texture).fit_to_exact_size(egui::vec2(200.0, 200.0)));
        }
        if let Some(step) = self.inspector.ui(ui, &store) {
            commands.push(Command::Select(super::tiles::TileKey {
                t: key.t,
                loc: step,
            }));
        }
        ui.separator();
    }

    /// Selects a chunk in the inspector, and with `centre` centres the map
    /// on it.
    pub(super) fn inspect(&mut self, key: super::tiles::TileKey, centre: bool) {
        let Some(store) = self.opened().map(|o| self.time.shown(&o.store)) else {
            return;
        };
        if centre {
            let e = store.grid().chunk_extent(key.loc);
            self.map.center = [(e.min_x + e.max_x) / 2.0, (e.min_y + e.max_y) / 2.0];
        }
        self.inspector
            .select(&store, key, self.bands.indices(), &self.ctx);
    }

    /// Visible tiles drawn from neither their own nor a stale texture in the
    /// last frame.
    #[must_use]
    pub fn drawn_missing(&self) -> usize {
        self.drawn.missing
    }

    /// The level the map showed in the last frame.
    #[must_use]
    pub fn drawn_level(&self) -> u8 {
        self.drawn.level
    }

    /// The extent the map showed in the last frame.
    #[must_use]
    pub fn drawn_view(&self) -> Option<Extent> {
        self.drawn.view
    }

    /// Visible chunks marked stale, and just written, in the last frame.
    #[must_use]
    pub fn drawn_marked(&self) -> [usize; 2] {
        self.drawn.marked
    }

    /// Where the map was drawn last frame.
    #[must_use]
    pub fn drawn_rect(&self) -> Option<egui::Rect> {
        self.drawn.rect
    }

    /// What the cursor was over last frame.
    #[must_use]
    pub fn readout(&self) -> Option<&Readout> {
        self.drawn.readout.as_ref()
    }

    /// The current colouring (for tests and tools that inspect the view).
    #[must_use]
    pub fn style_for_tests(&self) -> Style {
        self.style()
    }

    /// The colouring: the chosen ramp or colour table, bands and stretch.
    fn style(&self) -> Style {
        Style {
            map: self.color_map,
            palette: self.use_palette,
            bands: self.bands,
            stretch: self.stretch.current,
            relief: self.shading.on.then(|| super::tiles::Relief {
                sun: self.shading.sun,
                alone: self.shading.alone,
                metres: self.opened().and_then(|o| o.units.metres()),
            }),
        }
    }

    /// The bands to show first in `opened`: those asked for at start, else
    /// its default.
    ///
    /// # Errors
    /// Bands asked for that the store does not have.
    fn start_bands(&mut self, opened: &Opened) -> Result<Bands, String> {
        let count = opened.store.structure().band_count();
        let Some(asked) = self.start_bands.take() else {
            return Ok(Bands::default_for(count, &opened.store.band_info()));
        };
        let zero: Vec<usize> = asked
            .iter()
            .map(|&b| {
                usize::try_from(b)
                    .ok()
                    .filter(|b| (1..=count).contains(b))
                    .map(|b| b - 1)
                    .ok_or_else(|| {
                        format!(
                            "--bands: {} has {count} band{} (1–{count}), not band {b}",
                            opened.path.display(),
                            if count == 1 { "" } else { "s" }
                        )
                    })
            })
            .collect::<Result<_, _>>()?;
        match zero[..] {
            [b] => Ok(Bands::Single(b)),
            [r, g, b] => Ok(Bands::Rgb([r, g, b])),
            _ => Err(format!(
                "--bands: give one band or three, not {}",
                zero.len()
            )),
        }
    }

    /// The time index to show first in `opened`: the instant asked for at
    /// start, else its first.
    ///
    /// # Errors
    /// An instant asked for that the store does not hold (naming the
    /// nearest it does).
    fn start_time(&mut self, opened: &Opened) -> Result<u32, String> {
        let first = opened.store.time_indices().first().copied().unwrap_or(0);
        match (self.start_time.take(), self.start_period) {
            (None, _) => Ok(first),
            // The first instant of the period holding it.
            (Some(instant), Some(level)) => {
                let start = level.period().start(instant);
                let end = level.period().next(start).saturating_sub(1);
                opened
                    .store
                    .instants_between(start, end)
                    .first()
                    .map(|(t, _)| *t)
                    .ok_or_else(|| {
                        format!(
                            "--time: {}: no instant in the {level} {}",
                            opened.path.display(),
                            level.period().label(start)
                        )
                    })
            }
            (Some(instant), None) => opened
                .store
                .time_index(Some(instant), false)
                .map_err(|e| format!("--time: {}: {e}", opened.path.display())),
        }
    }

    /// Switches to showing `bands`; the tiles are coloured again.
    pub fn show_bands(&mut self, bands: Bands) {
        if bands != self.bands {
            self.bands = bands;
            self.stretch.bands_changed(bands);
            // Old tiles stay until the new ones arrive.
            self.tiles.refresh();
            if let Some(key) = self.inspector.selected {
                self.inspect(key, false);
            }
        }
    }

    fn jobs_panel(&self, ui: &mut egui::Ui, commands: &mut Vec<Command>) {
        ui.label(RichText::new("Jobs").strong());
        {
            for (i, job) in self.jobs.jobs.iter().enumerate().rev() {
                let name = job.file.file_name().map_or_else(
                    || job.file.display().to_string(),
                    |n| n.to_string_lossy().into_owned(),
                );
                ui.label(RichText::new(&name).strong());
                match &job.state {
                    JobState::Queued | JobState::Running => {
                        let eta = job.eta.map_or_else(String::new, |d| {
                            format!(", {:.0} s left", d.as_secs_f64())
                        });
                        let text = if job.state == JobState::Queued {
                            "queued".to_string()
                        } else {
                            format!("{}{eta}", job.phase)
                        };
                        ui.add(egui::ProgressBar::new(job.fraction()).text(text));
                        if ui.button(format!("Cancel {name}")).clicked() {
                            commands.push(Command::CancelJob(i));
                        }
                    }
                    JobState::Done(summary) => {
                        ui.label(summary);
                    }
                    JobState::Failed(e) => {
                        ui.colored_label(egui::Color32::LIGHT_RED, e);
                        if let Some(cells) = job.losing
                            && ui
                                .button(format!("Ingest anyway: {cells} cells become nodata"))
                                .clicked()
                        {
                            commands.push(Command::IngestAnyway(i));
                        }
                    }
                    JobState::Cancelled => {
                        ui.label("cancelled; the store is as it was");
                    }
                }
                for warning in &job.warnings {
                    ui.colored_label(egui::Color32::from_rgb(230, 170, 60), warning);
                }
                ui.separator();
            }
        }
    }

    fn screenshot(&mut self) {
        let ready = self.opened().is_some()
            && self.map.fitted
            && !self.stretch.pending()
            && self.drawn.missing == 0
            && self.tiles.loading() == 0;
        match &mut self.shot {
            Shot::Waiting { path, settled } => {
                if let StoreState::Failed(e) = &self.state {
                    *self
                        .outcome
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Err(e.clone()));
                    self.ctx.send_viewport_cmd(egui::ViewportCommand::Close);
                    return;
                }
                *settled = if ready { *settled + 1 } else { 0 };
                self.ctx.request_repaint();
                if *settled >= 3 {
                    let path = path.clone();
                    let done = Arc::new(Mutex::new(None));
                    let slot = done.clone();
                    let ctx = self.ctx.clone();
                    self.ctx
                        .request_screenshot(move |image: Arc<egui::ColorImage>| {
                            let [w, h] = image.size;
                            let bytes: Vec<u8> =
                                image.pixels.iter().flat_map(|p| p.to_array()).collect();
                            let saved = u32::try_from(w)
                                .and_then(|w| u32::try_from(h).map(|h| (w, h)))
                                .map_err(|e| e.to_string())
                                .and_then(|(w, h)| {
                                    image::save_buffer(
                                        &path,
                                        &bytes,
                                        w,
                                        h,
                                        image::ExtendedColorType::Rgba8,
                                    )
                                    .map_err(|e| format!("{}: {e}", path.display()))
                                });
                            *slot
                                .lock()
                                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(saved);
                            ctx.request_repaint();
                        });
                    self.shot = Shot::Taken(done);
                }
            }
            Shot::Taken(done) => {
                let result = done
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .take();
                if let Some(result) = result {
                    *self
                        .outcome
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(result);
                    self.ctx.send_viewport_cmd(egui::ViewportCommand::Close);
                    self.shot = Shot::None;
                } else {
                    self.ctx.request_repaint();
                }
            }
            Shot::None => {}
        }
    }
}

impl eframe::App for Explorer {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.show(ui);
    }

    fn clear_color(&self, _visuals: &egui::Visuals) -> [f32; 4] {
        super::map::BACKGROUND.to_normalized_gamma_f32()
    }
}

/// A value under the cursor, with its band's unit.
fn value_text(v: Option<f32>, unit: Option<&str>) -> String {
    match (v, unit) {
        (None, _) => "no data".into(),
        (Some(v), None) => v.to_string(),
        (Some(v), Some(unit)) => format!("{v} {unit}"),
    }
}

/// The shown bands' values under the cursor, named by band when several
/// are shown.
fn readout_text(values: &[Option<f32>], bands: Bands, info: &[BandInfo]) -> String {
    let unit = |b: usize| band_info::unit(info, b);
    match (values, bands.indices()) {
        ([], _) => "no data".into(),
        ([v], [b]) => format!("value {}", value_text(*v, unit(*b))),
        (vs, shown) => shown
            .iter()
            .zip(vs)
            .map(|(b, v)| format!("b{} {}", b + 1, value_text(*v, unit(*b))))
            .collect::<Vec<_>>()
            .join("  "),
    }
}

/// Every band's value under the cursor, the shown ones marked with their
/// channel ("R:b3 87").
fn every_band_text(values: &[Option<f32>], bands: Bands, info: &[BandInfo]) -> String {
    let channel = |b: usize| match bands {
        Bands::Single(s) => (s == b).then_some("*"),
        Bands::Rgb(rgb) => rgb
            .iter()
            .position(|&s| s == b)
            .map(|k| ["R:", "G:", "B:"][k]),
    };
    values
        .iter()
        .enumerate()
        .map(|(b, v)| {
            format!(
                "{}b{} {}",
                channel(b).unwrap_or(""),
                b + 1,
                value_text(*v, band_info::unit(info, b))
            )
        })
        .collect::<Vec<_>>()
        .join("  ")
}

/// "N instants, FIRST – LAST" for a store with a time axis.
pub(super) fn time_range(store: &Store) -> Option<String> {
    store.structure().time.as_ref()?;
    let instants = store.instants_between(i64::MIN, i64::MAX);
    let format = crate::engine::grid::time::format_instant;
    Some(match (instants.first(), instants.last()) {
        (Some(first), Some(last)) => format!(
            "{} instants, {} – {}",
            instants.len(),
            format(first.1),
            format(last.1)
        ),
        _ => "no instants yet".into(),
    })
}

/// Opens a store and gathers what the explorer shows about it (off the UI thread).
fn load(path: &PathBuf) -> Result<Opened, String> {
    let store = crate::foreign::open_store_or_raster(path, false)?;
    let read_only = crate::foreign::is_foreign(&store);
    let source = crate::foreign::description(&store);
    let grid = *store.grid();
    let t = store.time_indices().first().copied().unwrap_or(0);
    let (summaries, kept) = store.level_summaries().map_err(|e| e.to_string())?;
    let (data, samples, master) = with_dtype!(store.structure().dtype, T => {
        let data = store.data_window::<T>(t).map_err(|e| e.to_string())?.map(|w| grid.window_extent(0, &w));
        let master = store.master_chunk(t).map_err(|e| e.to_string())?;
        let samples = super::stretch::whole_store_samples::<T>(&store, t, &summaries, kept)
            .map_err(|e| e.to_string())?;
        (data, samples, master)
    });
    let history = store.ingest_history().map_err(|e| e.to_string())?;
    let notes = store.notes().map_err(|e| e.to_string())?;
    let levels = (0..)
        .zip(summaries)
        .map(|(l, s)| (l, s.chunks, s.bytes))
        .collect();
    let units = super::furniture::MapUnits::of_wkt(&store.structure().crs.wkt);
    Ok(Opened {
        store: Arc::new(store),
        // Canonical here, off the UI thread, so the recent list compares paths without I/O.
        path: std::fs::canonicalize(path).unwrap_or_else(|_| path.clone()),
        data,
        levels,
        master,
        history,
        notes,
        samples,
        units,
        read_only,
        source,
    })
}
