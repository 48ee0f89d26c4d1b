//! The explorer's logic, headless with egui_kittest: open a store, see its
//! summary, load the map's tiles (with coarser placeholders), pin a level,
//! toggle the chunk grid, and a bad folder's error in the window.
#![allow(clippy::unwrap_used)]

#[path = "../util/mod.rs"]
mod util;

mod bands;
mod editor;
mod history;
mod panels;
mod quicklooks;
mod timeline;
mod views;

use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT as _, Queryable as _};
use gridstore::engine::grid::period::TimeLevel;
use gridstore::gui::{Drawing, Explorer, GuiOptions, Series, SeriesPlace};
use std::path::Path;
use std::time::{Duration, Instant};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Steps the harness until `done` holds (background work needs real time).
fn run_until(harness: &mut Harness<'_, Explorer>, what: &str, done: impl Fn(&Explorer) -> bool) {
    let start = Instant::now();
    while !done(harness.state()) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        harness.step();
        std::thread::sleep(Duration::from_millis(10));
    }
    harness.step();
}

/// A store with a time axis holding the Meuse DEM at each of `days`.
fn meuse_at(dir: &Path, days: &[&str]) -> std::path::PathBuf {
    let store = dir.join("t.gs");
    let src = util::data("terra_meuse.tif");
    util::ok(&[
        "create",
        s(&store),
        "--like",
        s(&src),
        "--time",
        "irregular",
        "--chunk",
        "16",
    ]);
    for day in days {
        util::ok(&["ingest", s(&store), s(&src), "--time", day]);
    }
    store
}

fn store_with_data(dir: &Path) -> std::path::PathBuf {
    let store = dir.join("g.gs");
    let src = util::data("terra_meuse.tif");
    util::ok(&["create", s(&store), "--like", s(&src), "--chunk", "16"]);
    util::ok(&["ingest", s(&store), s(&src)]);
    store
}

/// [`store_with_data`] opened as a store.
fn opened_with_data(dir: &Path) -> gridstore::engine::Store {
    let store = store_with_data(dir);
    gridstore::engine::Store::open(std::sync::Arc::new(
        gridstore::storage::FolderStorage::open(&store).unwrap(),
    ))
    .unwrap()
}

/// Band 1 in viridis over 0–1, no relief: a tile style for the cache alone.
fn plain_style() -> gridstore::gui::Style {
    gridstore::gui::Style {
        map: gridstore::render::ColorMap::Viridis,
        palette: false,
        bands: gridstore::render::Bands::Single(0),
        stretch: [gridstore::render::Stretch { min: 0.0, max: 1.0 }; 3],
        relief: None,
    }
}

/// A store holding data, open in a harness; the folder lives as long as
/// the returned guard.
fn explorer_on_data() -> (tempfile::TempDir, Harness<'static, Explorer>) {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_data(dir.path());
    let h = harness(&GuiOptions {
        store: Some(store),
        ..GuiOptions::default()
    });
    (dir, h)
}

/// Steps until the store is open, the view fitted and its tiles loaded.
fn until_tiles(h: &mut Harness<'_, Explorer>) {
    run_until(h, "the tiles", |app| {
        app.opened().is_some() && app.map.fitted && app.tiles.loading() == 0
    });
}

/// What a desktop without any dialog program or portal shows.
fn no_dialogs() -> gridstore::gui::DialogProbe {
    gridstore::gui::DialogProbe {
        forced: None,
        path: Some(std::ffi::OsString::from("/nonexistent")),
        session_bus: false,
        runtime_dir: None,
    }
}

fn harness(options: &GuiOptions) -> Harness<'static, Explorer> {
    let ctx = egui::Context::default();
    // Never touch the user's own recent-stores list.
    let mut options = options.clone();
    if options.recent_file.is_none() {
        let file = std::env::temp_dir().join(format!(
            "gridstore-test-recent-{}-{:?}.json",
            std::process::id(),
            std::thread::current().id()
        ));
        options.recent_file = Some(file);
    }
    // Nor the user's function cache.
    if options.cache_dir.is_none() {
        options.cache_dir = Some(std::env::temp_dir().join(format!(
            "gridstore-test-cache-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        )));
    }
    // Nor the desktop's file dialogs: a desktop with none (no portal, no
    // zenity or kdialog), whatever this machine has.
    if options.dialogs.is_none() {
        options.dialogs = Some(no_dialogs());
    }
    let app = Explorer::new(ctx, &options);
    Harness::builder()
        .with_size(egui::vec2(1000.0, 700.0))
        .build_ui_state(|ui, app: &mut Explorer| app.show(ui), app)
}

#[test]
fn opens_a_store_and_loads_its_tiles() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_data(dir.path());
    let mut h = harness(&GuiOptions {
        store: Some(store.clone()),
        ..GuiOptions::default()
    });
    run_until(&mut h, "the store to open", |app| app.opened().is_some());
    h.get_by_label("Levels");
    h.get_by_label(&store.display().to_string());
    // The master chunk: the smallest holding all the data.
    let master = h.state().opened().unwrap().master.unwrap();
    h.get_by_label(&master.to_string());
    let grid = *h.state().opened().unwrap().store.grid();
    assert!(master.level > 0 && master.level < grid.top_level());
    run_until(&mut h, "the visible tiles", |app| {
        app.map.fitted && app.tiles.loading() == 0 && app.tiles.ready() > 0
    });
    assert!(h.state().tiles.ready() >= 1);
    // The chunk grid toggles from its checkbox.
    assert!(!h.state().map.grid);
    h.get_by_label("chunk grid").click();
    h.run_steps(3);
    assert!(h.state().map.grid);
}

#[test]
fn a_pinned_level_loads_that_levels_tiles() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_data(dir.path());
    let mut h = harness(&GuiOptions {
        store: Some(store),
        level: Some(2),
        ..GuiOptions::default()
    });
    run_until(&mut h, "the store to open", |app| app.opened().is_some());
    run_until(&mut h, "level-2 tiles", |app| {
        app.map.fitted && app.tiles.loading() == 0 && app.tiles.ready() > 0
    });
    assert_eq!(h.state().map.pinned, Some(2));
}

#[test]
fn with_no_store_the_demo_store_opens() {
    let mut h = harness(&GuiOptions::default());
    run_until(&mut h, "the demo store", |app| app.opened().is_some());
    let opened = h.state().opened().unwrap();
    assert!(
        opened.path.ends_with("gridstore-demo.gs"),
        "{:?}",
        opened.path
    );
    assert!(opened.levels[0].1 > 0, "the demo holds data");
}

/// A store written by a newer gridstore is refused in the window, in words.
#[test]
fn a_newer_format_version_is_refused_in_words() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_data(dir.path());
    let attrs = store.join(".zattrs");
    let text = std::fs::read_to_string(&attrs).unwrap();
    let bumped = text.replace("\"format_version\": 4", "\"format_version\": 99");
    assert_ne!(text, bumped);
    std::fs::write(&attrs, bumped).unwrap();
    let mut h = harness(&GuiOptions {
        store: Some(store),
        ..GuiOptions::default()
    });
    run_until(&mut h, "the error", |app| app.error().is_some());
    let error = h.state().error().unwrap().to_string();
    assert!(
        error.contains("format version 99") && error.contains("upgrade gridstore"),
        "{error}"
    );
    h.get_by_label(&error);
}

#[test]
fn a_folder_that_is_not_a_store_shows_its_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = harness(&GuiOptions {
        store: Some(dir.path().to_path_buf()),
        ..GuiOptions::default()
    });
    run_until(&mut h, "the error", |app| app.error().is_some());
    let error = h.state().error().unwrap().to_string();
    assert!(error.contains("is not a gridstore store"), "{error}");
    h.get_by_label(&error);
}

/// The real binary under Xvfb: `gui STORE --screenshot OUT.png` waits for the
/// visible tiles, saves the window and exits 0; the image is not blank.
#[test]
fn the_real_window_saves_a_screenshot_under_xvfb() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_data(dir.path());
    let image = screenshot(dir.path(), &store, &[]);
    assert!(
        image.width() >= 1000 && image.height() >= 700,
        "{:?}",
        image.dimensions()
    );
    let colours: std::collections::BTreeSet<[u8; 4]> = image.pixels().map(|p| p.0).collect();
    assert!(
        colours.len() > 200,
        "only {} colours: blank?",
        colours.len()
    );
}

/// `gui --colormap greyscale`: the map's cells are drawn in greys, many
/// of them; the default (viridis) draws them in colour.
#[test]
fn the_colour_map_is_chosen_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_data(dir.path());
    // The map, right of the side panel and above the status bar.
    let map_pixels = |image: &image::RgbaImage| -> Vec<[u8; 4]> {
        let (w, h) = image.dimensions();
        (20..h - 40)
            .flat_map(|y| (440..w - 20).map(move |x| (x, y)))
            .map(|(x, y)| image.get_pixel(x, y).0)
            .collect()
    };
    let grey = |p: &[u8; 4]| p[0] == p[1] && p[1] == p[2];
    let greys = map_pixels(&screenshot(
        dir.path(),
        &store,
        &["--colormap", "greyscale"],
    ));
    let levels: std::collections::BTreeSet<u8> =
        greys.iter().filter(|p| grey(p)).map(|p| p[0]).collect();
    let coloured = greys.iter().filter(|p| !grey(p)).count();
    assert!(levels.len() > 30, "{} grey levels", levels.len());
    assert!(
        coloured * 100 < greys.len(),
        "{coloured} of {} coloured",
        greys.len()
    );
    let viridis = map_pixels(&screenshot(dir.path(), &store, &[]));
    let coloured = viridis.iter().filter(|p| !grey(p)).count();
    assert!(
        coloured * 10 > viridis.len(),
        "{coloured} of {} coloured",
        viridis.len()
    );
}

/// Runs `gridstore gui ARGS` in a real window under Xvfb, its recent-stores
/// list and cache under `config` (never the user's own).
fn gui_under_xvfb(config: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new("xvfb-run")
        .env("XDG_CONFIG_HOME", config)
        .env("GRIDSTORE_CACHE_DIR", config.join("cache"))
        .args([
            "-a",
            "-s",
            "-screen 0 1280x800x24",
            env!("CARGO_BIN_EXE_gridstore"),
            "gui",
        ])
        .args(args)
        .output()
        .expect("xvfb-run (installed by .ci/deps)")
}

/// The explorer on `store` under Xvfb, saving a screenshot once its tiles
/// are in, with `args` added to `gui`.
fn screenshot(dir: &Path, store: &Path, args: &[&str]) -> image::RgbaImage {
    let shot = dir.join("shot.png");
    let mut all = vec![s(store), "--screenshot", s(&shot)];
    all.extend_from_slice(args);
    let out = gui_under_xvfb(dir, &all);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    image::open(&shot).unwrap().to_rgba8()
}

/// A file dropped on the window (egui's dropped_files).
#[derive(Debug)]
struct Dropped(std::path::PathBuf);

impl egui::DroppedFile for Dropped {
    fn path(&self) -> &Path {
        &self.0
    }

    fn bytes(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.0).map_err(|e| e.to_string())
    }
}

fn drop_files(h: &mut Harness<'_, Explorer>, files: &[&Path]) {
    for f in files {
        h.input_mut().hovered_files.push(egui::HoveredFile {
            path: Some(f.to_path_buf()),
            ..Default::default()
        });
    }
    h.step();
    h.input_mut().hovered_files.clear();
    for f in files {
        h.input_mut()
            .dropped_files
            .push(std::sync::Arc::new(Dropped(f.to_path_buf())));
    }
    h.step();
}

/// A primary click on the map at `pos`.
fn click_map(h: &mut Harness<'_, Explorer>, pos: egui::Pos2) {
    h.input_mut().events.push(egui::Event::PointerMoved(pos));
    h.step();
    for pressed in [true, false] {
        h.input_mut().events.push(egui::Event::PointerButton {
            pos,
            button: egui::PointerButton::Primary,
            pressed,
            modifiers: egui::Modifiers::NONE,
        });
        h.step();
    }
}

fn finished(app: &Explorer) -> bool {
    !app.jobs.jobs.is_empty() && app.jobs.jobs.iter().all(|j| !j.is_active())
}

#[test]
fn dropped_rasters_are_ingested_and_bad_ones_explained() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_data(dir.path());
    // A copy of the raster 100 cells east: new chunks for the store.
    let src = util::data("terra_meuse.tif");
    let g = util::read(s(&src), None);
    let gt = g.geotransform;
    let shifted = dir.path().join("east.tif");
    let (x0, y0) = (gt[0] + 100.0 * gt[1], gt[3]);
    util::tool(
        "gdal_translate",
        &[
            "-q",
            "-a_ullr",
            &x0.to_string(),
            &y0.to_string(),
            &(x0 + g.cols as f64 * gt[1]).to_string(),
            &(y0 + g.rows as f64 * gt[5]).to_string(),
            s(&src),
            s(&shifted),
        ],
    );
    let junk = dir.path().join("notes.txt");
    std::fs::write(&junk, "not a raster").unwrap();
    let mut h = harness(&GuiOptions {
        store: Some(store),
        ..GuiOptions::default()
    });
    run_until(&mut h, "the store to open", |app| app.opened().is_some());
    let before: u64 = h.state().opened().unwrap().levels[0].1;
    drop_files(&mut h, &[&shifted, &junk]);
    assert_eq!(h.state().jobs.jobs.len(), 2);
    run_until(&mut h, "both jobs", finished);
    let jobs = &h.state().jobs.jobs;
    assert!(
        matches!(jobs[0].state, gridstore::gui::JobState::Done(_)),
        "{:?}",
        jobs[0].state
    );
    let gridstore::gui::JobState::Failed(error) = &jobs[1].state else {
        panic!("{:?}", jobs[1].state)
    };
    assert!(
        error.contains("notes.txt") && error.contains("not a raster"),
        "{error}"
    );
    h.get_by_label(error);
    // The map and summary follow the new chunks.
    run_until(&mut h, "the reloaded store", |app| {
        app.opened().unwrap().levels[0].1 > before
    });
}

/// A job's warnings (here, a raster without a CRS, taken to be the
/// store's) are shown with it, not dropped.
#[test]
fn a_jobs_warnings_are_shown() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_data(dir.path());
    // The raster's cells and grid, without its CRS.
    let g = util::read(s(&util::data("terra_meuse.tif")), None);
    let grid = dir.path().join("nocrs.tif");
    {
        let driver = gdal::DriverManager::get_driver_by_name("GTiff").unwrap();
        let mut ds = driver
            .create_with_band_type::<i16, _>(&grid, g.cols, g.rows, 1)
            .unwrap();
        ds.set_geo_transform(&g.geotransform).unwrap();
        let mut band = ds.rasterband(1).unwrap();
        band.set_no_data_value(g.nodata).unwrap();
        #[allow(clippy::cast_possible_truncation)]
        let cells: Vec<i16> = g.bands[0].iter().map(|v| *v as i16).collect();
        let mut buffer = gdal::raster::Buffer::new((g.cols, g.rows), cells);
        band.write((0, 0), (g.cols, g.rows), &mut buffer).unwrap();
    }
    let mut h = harness(&GuiOptions {
        store: Some(store),
        ..GuiOptions::default()
    });
    run_until(&mut h, "the store to open", |app| app.opened().is_some());
    drop_files(&mut h, &[&grid]);
    run_until(&mut h, "the job", finished);
    let job = &h.state().jobs.jobs[0];
    assert!(
        matches!(job.state, gridstore::gui::JobState::Done(_)),
        "{:?}",
        job.state
    );
    let warning = job
        .warnings
        .iter()
        .find(|w| w.contains("has no CRS; taken to be the store's"))
        .unwrap_or_else(|| panic!("{:?}", job.warnings))
        .clone();
    h.get_by_label(&warning);
}

/// An ingest that would turn source cells into nodata is refused with the
/// count, and the jobs panel offers to ingest it anyway.
#[test]
fn a_refused_ingest_can_be_run_anyway_from_its_job() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("l7.tif");
    std::fs::copy(util::data("stars_L7_ETMs.tif"), &src).unwrap();
    let store = dir.path().join("l7.gs");
    util::ok(&["create", s(&store), "--like", s(&src), "--nodata", "255"]);
    let mut h = harness(&GuiOptions {
        store: Some(store),
        ..GuiOptions::default()
    });
    run_until(&mut h, "the store to open", |app| app.opened().is_some());
    drop_files(&mut h, &[&src]);
    run_until(&mut h, "the refused job", finished);
    assert_eq!(h.state().jobs.jobs[0].losing, Some(61));
    h.get_by_label("Ingest anyway: 61 cells become nodata")
        .click();
    h.step();
    assert_eq!(h.state().jobs.jobs.len(), 2, "queued again");
    assert!(h.state().jobs.jobs[1].allow_nodata_loss);
    run_until(&mut h, "the second job", finished);
    let job = &h.state().jobs.jobs[1];
    assert!(
        matches!(job.state, gridstore::gui::JobState::Done(_)),
        "{:?}",
        job.state
    );
    assert!(
        job.warnings.iter().any(|w| w.contains("61 data cells")),
        "{:?}",
        job.warnings
    );
}

/// "Open store…" is a command the explorer carries out with a dialog off
/// the UI thread; a dismissed (or absent) dialog leaves the open store
/// open, with no error.
#[test]
fn a_dismissed_open_dialog_keeps_the_open_store() {
    let (_dir, mut h) = explorer_on_data();
    run_until(&mut h, "the store to open", |app| app.opened().is_some());
    h.get_by_label("Open store…").click();
    h.step();
    assert!(h.state().dialog_open(), "the click asked for a dialog");
    // No system dialog here: the browser in the window asks instead.
    run_until(&mut h, "the in-window browser", |app| app.browser_open());
    h.run_steps(2);
    h.get_by_label("Cancel").click();
    h.run_steps(2);
    assert!(!h.state().dialog_open());
    assert!(h.state().opened().is_some(), "the store stays open");
    assert_eq!(h.state().error(), None);
}

/// Without a portal, zenity or kdialog, "Open store…" opens a file browser
/// inside the window (never "no store chosen"); a folder picked there
/// opens as the store.
#[test]
fn with_no_system_dialog_the_in_window_browser_opens_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_data(dir.path());
    let mut h = harness(&GuiOptions::default());
    run_until(&mut h, "the demo store", |app| app.opened().is_some());
    h.get_by_label("Open store…").click();
    run_until(&mut h, "the in-window browser", |app| app.browser_open());
    h.state_mut().browse_to(dir.path());
    h.run_steps(2);
    h.get_by_label("🗀 g.gs").click();
    h.run_steps(2);
    h.get_by_label("Open").click();
    h.run_steps(2);
    run_until(&mut h, "the picked store", |app| {
        app.opened()
            .is_some_and(|o| o.path == std::fs::canonicalize(&store).unwrap())
    });
    assert!(!h.state().dialog_open());
}

#[test]
fn a_queued_job_can_be_cancelled_from_its_button() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_data(dir.path());
    let src = util::data("terra_meuse.tif");
    let mut h = harness(&GuiOptions {
        store: Some(store),
        ..GuiOptions::default()
    });
    run_until(&mut h, "the store to open", |app| app.opened().is_some());
    // Three ingests of the same file: the last waits behind the others.
    drop_files(&mut h, &[&src, &src, &src]);
    h.get_all_by_label("Cancel terra_meuse.tif")
        .next()
        .unwrap()
        .click();
    h.run_steps(2);
    run_until(&mut h, "the jobs", finished);
    let states: Vec<_> = h
        .state()
        .jobs
        .jobs
        .iter()
        .map(|j| j.state.clone())
        .collect();
    assert!(
        states.contains(&gridstore::gui::JobState::Cancelled),
        "{states:?}"
    );
}

/// Clicking the map selects the chunk under the cursor; the inspector reads
/// it (checksum, statistics, histogram) and steps to its parent and children.
#[test]
fn clicking_a_chunk_inspects_it_and_steps_through_the_pyramid() {
    let (_dir, mut h) = explorer_on_data();
    until_tiles(&mut h);
    click_map(&mut h, egui::pos2(650.0, 350.0));
    run_until(&mut h, "the chunk report", |app| {
        app.inspector.report.is_some()
    });
    let selected = h.state().inspector.selected.unwrap().loc;
    let report = h.state().inspector.report.clone().unwrap();
    let bands = report.stats.unwrap();
    assert_eq!(bands.len(), 1, "the band shown");
    let stats = bands[0].1.clone().expect("the centre chunk holds data");
    assert!(stats.valid > 0 && stats.min <= stats.mean && stats.mean <= stats.max);
    assert_eq!(
        stats
            .histogram
            .iter()
            .map(|(_, n)| *n as usize)
            .sum::<usize>(),
        stats.valid
    );
    h.get_by_label("checksum ok");
    h.get_by_label("Parent").click();
    h.run_steps(2);
    assert_eq!(h.state().inspector.selected.unwrap().loc, selected.parent());
    run_until(&mut h, "the parent's report", |app| {
        app.inspector.report.is_some()
    });
    h.get_by_label("NW").click();
    h.run_steps(2);
    assert_eq!(
        h.state().inspector.selected.unwrap().loc,
        selected.parent().children().unwrap()[0]
    );
}

/// The `lo`–`hi` percentiles of the valid cells the map shows, read
/// independently from the store at the level shown over the view.
fn view_percentiles(app: &Explorer, lo: f64, hi: f64) -> gridstore::render::Stretch {
    let store = &app.opened().unwrap().store;
    let level = app.drawn_level();
    let window = store
        .grid()
        .cover_clipped(level, &app.drawn_view().unwrap())
        .unwrap();
    let nodata = store.nodata::<i16>();
    let cells = store.read_window::<i16>(0, level, &window).unwrap();
    let mut values: Vec<f64> = cells
        .iter()
        .filter(|v| gridstore::engine::Element::is_valid(**v, nodata))
        .map(|v| f64::from(*v))
        .collect();
    values.sort_by(f64::total_cmp);
    gridstore::render::Stretch::from_sorted(&values, lo, hi).unwrap()
}

/// Within 1 % of the range: the stretch is only retaken when it moves more.
fn assert_close(a: gridstore::render::Stretch, b: gridstore::render::Stretch) {
    let tolerance = (b.max - b.min).abs() * 0.011;
    assert!(
        (a.min - b.min).abs() <= tolerance && (a.max - b.max).abs() <= tolerance,
        "stretch {a:?}, expected {b:?}"
    );
}

fn until_stretch(h: &mut Harness<'_, Explorer>) {
    run_until(h, "the view's stretch", |app| {
        app.opened().is_some()
            && app.map.fitted
            && app.drawn_missing() == 0
            && app.tiles.loading() == 0
            && !app.stretch.pending()
    });
}

/// By default the stretch is the 2–98 % range of the data in view, taken
/// again when the view settles elsewhere, with no tile ever missing from
/// the screen while the map is recoloured.
#[test]
fn the_stretch_follows_the_data_in_view() {
    let (_dir, mut h) = explorer_on_data();
    until_stretch(&mut h);
    let whole = h.state().style_for_tests().stretch[0];
    assert_close(whole, view_percentiles(h.state(), 2.0, 98.0));
    // Zoom into the top-left quarter of the data: its own range.
    let view = h.state().drawn_view().unwrap();
    let app = h.state_mut();
    app.map.center = [
        view.min_x + view.width() * 0.3,
        view.max_y - view.height() * 0.3,
    ];
    app.map.units_per_point /= 3.0;
    h.step();
    until_stretch(&mut h);
    let part = h.state().style_for_tests().stretch[0];
    assert_close(part, view_percentiles(h.state(), 2.0, 98.0));
    assert_ne!(part, whole, "the zoomed view has another range");
    assert_eq!(h.state().drawn_missing(), 0, "recoloured without a gap");
}

/// "whole store" takes the stretch from the store's sample level and keeps
/// it whatever the view; "min–max" spans that level's full range; typing a
/// value holds what was typed.
#[test]
fn the_stretch_can_be_held_whole_store_or_typed() {
    let (_dir, mut h) = explorer_on_data();
    until_stretch(&mut h);
    h.get_by_label("stretch").click();
    h.run_steps(2);
    h.get_by_label("whole store").click();
    h.run_steps(2);
    let samples = h.state().opened().unwrap().samples[0].clone();
    let expected = gridstore::render::Stretch::from_sorted(&samples, 2.0, 98.0).unwrap();
    assert_eq!(h.state().style_for_tests().stretch[0], expected);
    h.get_by_label("min–max").click();
    h.run_steps(2);
    let full = h.state().style_for_tests().stretch[0];
    assert_eq!(
        (full.min, full.max),
        (samples[0], samples[samples.len() - 1])
    );
    // Zooming keeps it.
    h.state_mut().map.units_per_point /= 4.0;
    h.step();
    until_stretch(&mut h);
    assert_eq!(h.state().style_for_tests().stretch[0], full);

    // A typed stretch from the command line is kept, whatever the view.
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_data(dir.path());
    let mut h = harness(&GuiOptions {
        store: Some(store),
        stretch: Some((10.0, 20.0)),
        ..GuiOptions::default()
    });
    until_stretch(&mut h);
    let typed = gridstore::render::Stretch {
        min: 10.0,
        max: 20.0,
    };
    assert_eq!(h.state().style_for_tests().stretch, [typed; 3]);
    assert_eq!(h.state().stretch.mode, gridstore::gui::StretchMode::Typed);
}

/// Draw an export rectangle on the map, choose a level, export: the job
/// writes a GeoTIFF of that extent.
#[test]
fn a_drawn_rectangle_exports_to_geotiff() {
    let (dir, mut h) = explorer_on_data();
    until_tiles(&mut h);
    h.get_by_label("Draw extent").click();
    h.run_steps(2);
    assert_eq!(h.state().map.drawing, Some(Drawing::ExportExtent));
    drag_on_map(&mut h, egui::pos2(560.0, 260.0), egui::pos2(700.0, 420.0));
    let extent = h.state().export.extent.expect("a rectangle was drawn");
    assert!(extent.width() > 0.0 && extent.height() > 0.0);
    assert!(h.state().map.drawing.is_none());
    let out = dir.path().join("drawn.tif");
    h.state_mut().export_to(out.clone());
    run_until(&mut h, "the export job", finished);
    let job = &h.state().jobs.jobs[0];
    assert!(
        matches!(job.state, gridstore::gui::JobState::Done(_)),
        "{:?}",
        job.state
    );
    let g = util::read(s(&out), None);
    let cell = g.geotransform[1];
    assert!(
        (g.geotransform[0] - extent.min_x).abs() < 1e-6
            && (g.geotransform[3] - extent.max_y).abs() < 1e-6
    );
    assert!(((g.cols as f64) * cell - extent.width()).abs() <= cell);

    // The same extent at a chosen cell size: three base cells per cell.
    h.get_by_label("at a cell size").click_accesskit();
    h.run_steps(2);
    let base = h.state().opened().unwrap().store.grid().cell_size(0)[0];
    assert!(
        (h.state().export.cell - base).abs() < 1e-9,
        "starts at the base cell"
    );
    h.state_mut().export.cell = 3.0 * base;
    let coarse = dir.path().join("coarse.tif");
    h.state_mut().export_to(coarse.clone());
    run_until(&mut h, "the second export", finished);
    let g = util::read(s(&coarse), None);
    assert!(
        (g.geotransform[1] - 3.0 * base).abs() < 1e-9,
        "{:?}",
        g.geotransform
    );
    // Like gdal_translate -tr: the size is the extent over the cell, rounded.
    assert_eq!(g.cols, (extent.width() / (3.0 * base)).round() as usize);
}

/// Drags the mouse from `a` to `b` on the map, in steps.
fn drag_on_map(h: &mut Harness<'_, Explorer>, a: egui::Pos2, b: egui::Pos2) {
    h.input_mut().events.push(egui::Event::PointerMoved(a));
    h.input_mut().events.push(egui::Event::PointerButton {
        pos: a,
        button: egui::PointerButton::Primary,
        pressed: true,
        modifiers: egui::Modifiers::NONE,
    });
    h.step();
    for i in 1..=5 {
        let p = a + (b - a) * (i as f32 / 5.0);
        h.input_mut().events.push(egui::Event::PointerMoved(p));
        h.step();
    }
    h.input_mut().events.push(egui::Event::PointerButton {
        pos: b,
        button: egui::PointerButton::Primary,
        pressed: false,
        modifiers: egui::Modifiers::NONE,
    });
    h.run_steps(2);
}

/// Opened stores are remembered between runs and can be reopened from the list.
#[test]
fn recent_stores_are_remembered_between_runs() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_data(dir.path());
    let recent = dir.path().join("config/recent.json");
    let options = GuiOptions {
        store: Some(store.clone()),
        recent_file: Some(recent.clone()),
        ..GuiOptions::default()
    };
    let mut h = harness(&options);
    run_until(&mut h, "the store to open", |app| app.opened().is_some());
    let canonical = std::fs::canonicalize(&store).unwrap();
    assert_eq!(h.state().recent.first(), Some(&canonical));
    let start = Instant::now();
    while !recent.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the list was not saved"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // A new run with another (bad) store lists the first one and reopens it.
    let mut h = harness(&GuiOptions {
        store: Some(dir.path().join("nope")),
        recent_file: Some(recent),
        ..GuiOptions::default()
    });
    run_until(&mut h, "the error", |app| app.error().is_some());
    assert_eq!(h.state().recent.first(), Some(&canonical));
    h.get_by_label(&canonical.display().to_string()).click();
    h.run_steps(2);
    run_until(&mut h, "the recent store", |app| app.opened().is_some());
}

/// A remembered store that is gone says so in words where its quicklook
/// would be (no glyph the fonts may lack), and why on hover.
#[test]
fn a_recent_store_that_is_gone_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let recent = dir.path().join("recent.json");
    let gone = dir.path().join("gone.gs");
    std::fs::write(&recent, serde_json::to_vec(&[&gone]).unwrap()).unwrap();
    let mut h = harness(&GuiOptions {
        store: Some(dir.path().join("nope")),
        recent_file: Some(recent),
        ..GuiOptions::default()
    });
    run_until(&mut h, "the gone store's quicklook to fail", |app| {
        matches!(
            app.quicklooks.entry(&gone),
            Some(gridstore::gui::quicklooks::Entry::Failed(_))
        )
    });
    h.run_steps(2);
    h.get_by_label(gridstore::gui::quicklooks::UNAVAILABLE);
    h.get_by_label(&gone.display().to_string());
    assert!(h.query_by_label("⚠").is_none());
}

/// `gui --tour --frame-log` runs the fixed tour (with an ingest halfway),
/// logs one line per frame, and `frame-stats` reports p50 and p99.
#[test]
fn the_tour_logs_frame_times_under_xvfb() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_data(dir.path());
    let log = dir.path().join("frames.log");
    let shifted = dir.path().join("again.tif");
    std::fs::copy(util::data("terra_meuse.tif"), &shifted).unwrap();
    let out = gui_under_xvfb(
        dir.path(),
        &[
            s(&store),
            "--tour",
            "--frame-log",
            s(&log),
            "--tour-ingest",
            s(&shifted),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.lines().count() >= 500,
        "{} frames",
        text.lines().count()
    );
    let levels: std::collections::BTreeSet<&str> = text
        .lines()
        .filter(|l| l.starts_with("frame"))
        .filter_map(|l| l.split_whitespace().nth(3))
        .collect();
    assert!(levels.len() >= 4, "the tour crosses levels: {levels:?}");
    // The jumps to new viewports each settle at full quality (the time is
    // the README's figure; here only that every jump settled).
    let jumps: Vec<&str> = text.lines().filter(|l| l.starts_with("jump")).collect();
    assert_eq!(jumps.len(), 24, "{jumps:?}");
    assert!(
        jumps.iter().all(|j| !j.contains("level -")),
        "a jump never settled: {jumps:?}"
    );
    let stats = util::ok(&["frame-stats", s(&log)]);
    assert!(stats.contains("p50") && stats.contains("p99"), "{stats}");
    assert!(
        stats.contains("new viewport to full quality: 24 jumps"),
        "{stats}"
    );
}

/// On a store with a time axis, with hillshade on, the tour plays the
/// instants for a leg: its frames are logged as playing, several instants
/// are shown, and `frame-stats` reports the playback frames apart.
#[test]
fn the_tour_plays_the_instants_with_hillshade_under_xvfb() {
    let dir = tempfile::tempdir().unwrap();
    let store = meuse_at(
        dir.path(),
        &["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"],
    );
    let log = dir.path().join("frames.log");
    let out = gui_under_xvfb(
        dir.path(),
        &[s(&store), "--hillshade", "--tour", "--frame-log", s(&log)],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&log).unwrap();
    let playing: Vec<&str> = text.lines().filter(|l| l.contains(" play 1 ")).collect();
    assert!(playing.len() >= 100, "{} playback frames", playing.len());
    let shown: std::collections::BTreeSet<&str> = playing
        .iter()
        .filter_map(|l| l.split_whitespace().nth(5))
        .collect();
    assert!(shown.len() >= 3, "instants shown while playing: {shown:?}");
    let stats = util::ok(&["frame-stats", s(&log)]);
    assert!(stats.contains("during playback:"), "{stats}");
}

/// A store with a time axis gets a time slider; clicking the map plots the
/// time series at that point, in time order.
#[test]
fn time_slider_and_series_at_a_clicked_point() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("t.gs");
    let src = util::data("terra_meuse.tif");
    let doubled = dir.path().join("doubled.tif");
    util::tool(
        "gdal_translate",
        &[
            "-q",
            "-scale",
            "0",
            "1000",
            "0",
            "2000",
            s(&src),
            s(&doubled),
        ],
    );
    util::ok(&[
        "create",
        s(&store),
        "--like",
        s(&src),
        "--time",
        "irregular",
        "--chunk",
        "16",
    ]);
    util::ok(&["ingest", s(&store), s(&src), "--time", "2024-03-01"]);
    util::ok(&["ingest", s(&store), s(&doubled), "--time", "2024-01-15"]);
    let mut h = harness(&GuiOptions {
        store: Some(store.clone()),
        ..GuiOptions::default()
    });
    until_tiles(&mut h);
    h.get_by_label("time");
    h.get_by_label("time range");
    h.get_by_label("2 instants, 2024-01-15T00:00:00Z – 2024-03-01T00:00:00Z");
    click_map(&mut h, egui::pos2(650.0, 350.0));
    run_until(&mut h, "the series", |app| app.time.series.is_some());
    let series = h.state().time.series.clone().unwrap().values;
    assert_eq!(series.len(), 2);
    assert!(series[0].0 < series[1].0, "in time order");
    let (jan, mar) = (series[0].1.unwrap(), series[1].1.unwrap());
    assert!(
        (jan - 2.0 * mar).abs() <= 1.0,
        "the January map is the doubled one: {jan} vs {mar}"
    );

    // Over a drawn area: the store's aggregate (the mean) of the cells
    // with data whose centres lie in it, at each instant.
    h.get_by_label("Draw area").click_accesskit();
    h.run_steps(2);
    assert_eq!(h.state().map.drawing, Some(Drawing::SeriesArea));
    drag_on_map(&mut h, egui::pos2(560.0, 260.0), egui::pos2(700.0, 420.0));
    assert_eq!(h.state().export.extent, None, "not an export extent");
    run_until(&mut h, "the area series", |app| {
        matches!(
            app.time.series,
            Some(Series {
                place: SeriesPlace::Area { .. },
                ..
            })
        )
    });
    let Series {
        place,
        band,
        values,
    } = h.state().time.series.clone().unwrap();
    assert_eq!(band, None, "one band: not named");
    let SeriesPlace::Area {
        extent,
        level,
        window,
        ..
    } = place
    else {
        unreachable!()
    };
    let opened = h.state().opened().unwrap().store.clone();
    assert_eq!(level, 0, "a small area is read at the base level");
    assert_eq!(
        Some(window),
        opened.grid().cells_centred_in(0, &extent),
        "the cells centred in the area drawn"
    );
    assert!(window.rows > 1 && window.cols > 1, "{window:?}");
    let nodata = opened.structure().nodata;
    let mean_at = |t: u32| {
        let cells = opened.read_window::<i16>(t, 0, &window).unwrap();
        let valid: Vec<f64> = cells
            .iter()
            .filter(|v| nodata != Some(f64::from(**v)))
            .map(|v| f64::from(*v))
            .collect();
        valid.iter().sum::<f64>() / valid.len() as f64
    };
    let instants = opened.instants_between(i64::MIN, i64::MAX);
    assert_eq!(values.len(), 2);
    for ((t, instant), (at, value)) in instants.iter().zip(&values) {
        assert_eq!(instant, at);
        let want = mean_at(*t);
        assert!(
            (value.unwrap() - want).abs() < 1e-9,
            "{value:?} vs {want} at {instant}"
        );
    }
    h.get_by_label(&format!(
        "series: the mean over {}×{} cells of level 0",
        window.cols, window.rows
    ));

    // An export takes the instant on the slider.
    let t = h.state().time.t;
    let instant = h.state().opened().unwrap().store.instant_of(t).unwrap();
    let from_gui = dir.path().join("gui.tif");
    h.state_mut().export_to(from_gui.clone());
    run_until(&mut h, "the export", finished);
    let from_cli = dir.path().join("cli.tif");
    util::ok(&[
        "export",
        s(&store),
        "-o",
        s(&from_cli),
        "--time",
        &gridstore::engine::grid::time::format_instant(instant),
    ]);
    assert_eq!(
        util::read(s(&from_gui), None).bands,
        util::read(s(&from_cli), None).bands
    );
}

/// The level list lists a level's chunks; picking one from the list
/// inspects it and centres the map on it.
#[test]
fn a_levels_chunk_list_selects_a_chunk() {
    let (_dir, mut h) = explorer_on_data();
    run_until(&mut h, "the store", |app| {
        app.opened().is_some() && app.map.fitted
    });
    h.get_by_label("level 1").scroll_to_me();
    h.run_steps(3);
    h.get_by_label("level 1").click();
    run_until(&mut h, "the chunk list", |app| {
        !app.levels.listing() && !app.levels.chunks.is_empty()
    });
    let app = h.state();
    assert_eq!(app.levels.level, Some(1));
    assert_eq!(
        app.levels.chunks.len() as u64,
        app.opened().unwrap().levels[1].1
    );
    assert!(
        app.levels
            .chunks
            .iter()
            .all(|(_, loc, n)| loc.level == 1 && *n > 0)
    );
    let grid = *app.opened().unwrap().store.grid();
    let listed = app.levels.chunks.clone();
    h.get_by_label("Chunks of level 1").scroll_to_me();
    h.run_steps(3);
    // The rows in view: click one.
    let label = h
        .query_all_by(|n| n.label().is_some_and(|l| l.starts_with("L1/")))
        .find_map(|n| n.accesskit_node().label())
        .unwrap();
    let &(t, loc, bytes) = listed
        .iter()
        .find(|(_, loc, _)| label.starts_with(&format!("{loc} ")))
        .unwrap();
    assert_eq!(
        label,
        format!("{loc}  {}", gridstore::format::human_bytes(bytes))
    );
    h.get_by_label(&label).click();
    run_until(&mut h, "the chunk report", |app| {
        app.inspector.report.is_some()
    });
    assert_eq!(h.state().inspector.selected.unwrap().loc, loc);
    assert_eq!(h.state().inspector.selected.unwrap().t, t);
    let e = grid.chunk_extent(loc);
    let centre = h.state().map.center;
    assert!((centre[0] - (e.min_x + e.max_x) / 2.0).abs() < 1e-6);
    assert!((centre[1] - (e.min_y + e.max_y) / 2.0).abs() < 1e-6);
}

/// While an ingest runs, the chunks it rewrites are shaded stale on the map;
/// once they land they are outlined as just written, fading after a while.
#[test]
fn an_ingest_marks_stale_then_written_chunks_on_the_map() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.tif");
    util::tool(
        "gdal_translate",
        &[
            "-q",
            "-outsize",
            "1600",
            "1600",
            "-r",
            "bilinear",
            s(&util::data("terra_elev.tif")),
            s(&big),
        ],
    );
    let store = dir.path().join("big.gs");
    util::ok(&["create", s(&store), "--like", s(&big), "--chunk", "64"]);
    util::ok(&["ingest", s(&store), s(&big)]);
    let mut h = harness(&GuiOptions {
        store: Some(store),
        ..GuiOptions::default()
    });
    until_tiles(&mut h);
    assert_eq!(h.state().drawn_marked(), [0, 0]);
    drop_files(&mut h, &[&big]);
    run_until(&mut h, "stale chunks", |app| app.drawn_marked()[0] > 0);
    run_until(&mut h, "the ingest", finished);
    let job = &h.state().jobs.jobs[0];
    assert!(matches!(job.state, gridstore::gui::JobState::Done(_)));
    // Every level landed; nothing is left stale.
    let top = h.state().opened().unwrap().store.grid().top_level();
    let mut levels: Vec<u8> = job
        .changes
        .list
        .iter()
        .inspect(|c| assert!(c.written.is_some()))
        .flat_map(|c| c.levels[0]..=c.levels[1])
        .collect();
    levels.sort_unstable();
    assert_eq!(levels, (0..=top).collect::<Vec<_>>());
    run_until(&mut h, "written chunks", |app| {
        app.drawn_marked() == [0, app.drawn_marked()[1]] && app.drawn_marked()[1] > 0
    });
    let marked_at = Instant::now();
    run_until(&mut h, "the marks to fade", |app| {
        app.drawn_marked() == [0, 0]
    });
    assert!(marked_at.elapsed() > gridstore::gui::WRITTEN_FADE / 2);
}

/// A categorical store opens in its own colours; the ramps stay available.
#[test]
fn a_categorical_store_shows_its_colour_table() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("lc.gs");
    let src = util::data("stars_lc.tif");
    util::ok(&["create", s(&store), "--like", s(&src), "--chunk", "16"]);
    util::ok(&["ingest", s(&store), s(&src)]);
    let mut h = harness(&GuiOptions {
        store: Some(store),
        ..GuiOptions::default()
    });
    until_tiles(&mut h);
    assert!(h.state().style_for_tests().palette);
    assert_eq!(
        h.get_by_label("colours").value().as_deref(),
        Some("colour table")
    );
    h.get_by_label("colours").click();
    h.run_steps(2);
    h.get_by_label("terrain").click();
    h.run_steps(2);
    assert!(!h.state().style_for_tests().palette);
    assert_eq!(
        h.get_by_label("colours").value().as_deref(),
        Some("terrain")
    );
}

/// Once the view is loaded, its neighbouring tiles load too: a pan by a
/// chunk shows no placeholder.
#[test]
fn neighbouring_tiles_are_prefetched_for_panning() {
    let (_dir, mut h) = explorer_on_data();
    run_until(&mut h, "the view and its ring", |app| {
        app.opened().is_some() && app.map.fitted && app.drawn_missing() == 0
    });
    for _ in 0..3 {
        run_until(&mut h, "the ring", |app| app.tiles.loading() == 0);
    }
    let level = h.state().drawn_level();
    let grid = *h.state().opened().unwrap().store.grid();
    let chunk = grid.chunk_extent(gridstore::engine::ChunkLoc {
        level,
        row: 0,
        col: 0,
    });
    for (dx, dy) in [
        (1.0, 0.0),
        (0.0, -1.0),
        (-1.0, 0.0),
        (-1.0, 0.0),
        (0.0, 1.0),
        (0.0, 1.0),
    ] {
        {
            let map = &mut h.state_mut().map;
            map.center[0] += dx * (chunk.max_x - chunk.min_x);
            map.center[1] += dy * (chunk.max_y - chunk.min_y);
        }
        h.step();
        assert_eq!(h.state().drawn_level(), level);
        assert_eq!(h.state().drawn_missing(), 0, "pan by ({dx}, {dy}) chunk");
    }
}

/// More tiles on screen than the cache holds: the cache runs over rather
/// than evict what is drawn and load it again forever.
#[test]
fn a_view_larger_than_the_cache_still_loads_fully() {
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(opened_with_data(dir.path()));
    let ctx = egui::Context::default();
    let mut tiles = gridstore::gui::TileCache::new(ctx.clone(), 4);
    let level0 = store.list_chunks(0).unwrap();
    assert!(level0.len() > 8);
    let keys: Vec<gridstore::gui::TileKey> = level0
        .iter()
        .map(|(t, loc, _)| gridstore::gui::TileKey { t: *t, loc: *loc })
        .collect();
    let style = plain_style();
    let start = Instant::now();
    loop {
        // Textures are created by the frames; nothing paints them here.
        ctx.run_ui(egui::RawInput::default(), |_| {})
            .textures_delta
            .clear();
        tiles.begin_frame();
        let drawn = keys
            .iter()
            .filter(|k| tiles.get(&store, **k, style, true).is_some())
            .count();
        if drawn == keys.len() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{drawn} of {} tiles after 30 s",
            keys.len()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A tile prefetched for an earlier view is dropped when the view moves on
/// before it starts; asked for once on screen, it still arrives, without
/// being asked again (the map asks once, then waits for it).
#[test]
fn a_tile_prefetched_for_an_earlier_view_loads_when_it_comes_on_screen() {
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(opened_with_data(dir.path()));
    let ctx = egui::Context::default();
    let mut tiles = gridstore::gui::TileCache::new(ctx.clone(), 64);
    let (t, loc, _) = store.list_chunks(0).unwrap()[0];
    let key = gridstore::gui::TileKey { t, loc };
    let style = plain_style();
    // Every worker held, so that the prefetch waits in the queue until the
    // view has moved on.
    let workers = rayon::current_num_threads();
    let held = std::sync::Arc::new(std::sync::Barrier::new(workers + 1));
    let (release, wait) = std::sync::mpsc::channel::<()>();
    let wait = std::sync::Arc::new(std::sync::Mutex::new(wait));
    for _ in 0..workers {
        let (held, wait) = (held.clone(), wait.clone());
        rayon::spawn(move || {
            held.wait();
            let _ = wait.lock().unwrap().recv();
        });
    }
    held.wait();
    tiles.prefetch(&store, key, style);
    tiles.view_moved();
    assert!(tiles.get(&store, key, style, true).is_none());
    drop(release);
    let start = Instant::now();
    while !tiles.is_ready(&key) {
        ctx.run_ui(egui::RawInput::default(), |_| {})
            .textures_delta
            .clear();
        tiles.begin_frame();
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the tile asked for on screen never arrived"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(tiles.peek(&key).unwrap().texture.is_some());
}

/// The map shows the level whose cells are nearest one physical pixel in
/// scale (as a GPU picks a mipmap level): a finer one only while its cells
/// stay within 1.4 pixels.
#[test]
fn the_map_shows_the_level_nearest_one_cell_per_pixel() {
    let dir = tempfile::tempdir().unwrap();
    let store = opened_with_data(dir.path());
    let cell = store.grid().cell_size(0)[0];
    let mut view = gridstore::gui::MapView::default();
    for (units_per_pixel, level) in [(1.0, 0), (1.3, 0), (1.5, 1), (1.9, 1), (2.7, 1), (3.0, 2)] {
        view.units_per_point = units_per_pixel * cell * 2.0;
        assert_eq!(
            view.level(&store, 2.0),
            level,
            "{units_per_pixel} base cells per pixel"
        );
    }
}

/// A categorical store's legend lists the classes in view, most common
/// first, counted independently from the store's cells; the legend, scale
/// and ticks switch off together.
#[test]
fn the_legend_lists_the_classes_in_view() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("lc.gs");
    let src = util::data("stars_lc.tif");
    util::ok(&["create", s(&store), "--like", s(&src), "--chunk", "16"]);
    util::ok(&["ingest", s(&store), s(&src)]);
    let mut h = harness(&GuiOptions {
        store: Some(store),
        ..GuiOptions::default()
    });
    until_stretch(&mut h);
    let app = h.state();
    let opened = app.opened().unwrap();
    let level = app.drawn_level();
    let window = opened
        .store
        .grid()
        .cover_clipped(level, &app.drawn_view().unwrap())
        .unwrap();
    let cells = opened.store.read_window::<u8>(0, level, &window).unwrap();
    let mut counts = std::collections::BTreeMap::<u8, u64>::new();
    for v in cells.iter().filter(|v| **v != 255) {
        *counts.entry(*v).or_default() += 1;
    }
    let mut expected: Vec<(f64, u64)> =
        counts.into_iter().map(|(v, n)| (f64::from(v), n)).collect();
    expected.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.total_cmp(&b.0)));
    assert!(expected.len() > 5);
    assert_eq!(app.stretch.classes, expected);
    assert!(h.state().furniture);
    h.get_by_label("legend, scale and ticks").click();
    h.run_steps(2);
    assert!(!h.state().furniture);
}

/// A raster gridstore did not write opens read-only: "read-only" beside
/// its name, no history or structure editing, and "Ingest into a store…"
/// makes a store like it that ingests it. Files dropped meanwhile go to a
/// new store too, never into the raster.
#[test]
fn a_foreign_raster_opens_read_only_and_ingests_into_a_new_store() {
    let dir = tempfile::tempdir().unwrap();
    let src = util::data("terra_meuse.tif");
    let cog = dir.path().join("meuse_cog.tif");
    util::tool("gdal_translate", &["-q", "-of", "COG", s(&src), s(&cog)]);
    let before = std::fs::read(&cog).unwrap();
    let mut h = harness(&GuiOptions {
        store: Some(cog.clone()),
        ..GuiOptions::default()
    });
    until_tiles(&mut h);
    assert!(h.state().opened().unwrap().read_only);
    h.get_by_label("read-only");
    assert!(h.query_by_label("Structure…").is_none());

    // Dropped on the read-only raster: offered a new store instead.
    drop_files(&mut h, &[&src]);
    assert!(
        h.state().jobs.jobs.is_empty(),
        "nothing ingests into a raster"
    );
    run_until(&mut h, "the editor", |app| {
        app.editor.open && !app.editor.busy()
    });
    assert_eq!(h.state().editor.ingest_after, vec![src.clone()]);
    h.state_mut().editor.open = false;
    h.step();

    h.get_by_label("Ingest into a store…").click();
    run_until(&mut h, "the raster's structure", |app| {
        app.editor.open && !app.editor.busy() && app.editor.checked().structure.is_some()
    });
    assert_eq!(h.state().editor.ingest_after, vec![cog.clone()]);
    let target = dir.path().join("meuse_cog.gs");
    assert_eq!(h.state().editor.target, target.display().to_string());
    h.get_by_label("Create and ingest 1 file").click();
    run_until(&mut h, "the ingest", |app| {
        finished(app)
            && app
                .opened()
                .is_some_and(|o| !o.read_only && o.levels[0].1 > 0)
    });
    assert_eq!(
        h.state().opened().unwrap().path,
        std::fs::canonicalize(&target).unwrap()
    );
    assert_eq!(std::fs::read(&cog).unwrap(), before, "the COG is unchanged");
}

/// A failed `--screenshot` run (no such store) exits with code 2 and its
/// one-line error every time, also while the recent stores' quicklooks
/// (rasters read through GDAL) are still being made: the process waits for
/// them rather than exiting under them.
#[test]
fn a_failed_screenshot_run_exits_cleanly_while_quicklooks_load() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    std::fs::create_dir_all(config.join("gridstore")).unwrap();
    // Rasters read through GDAL (a netCDF-4, HDF5 underneath) and zarrs.
    let nc = dir.path().join("l7.nc");
    util::tool(
        "gdal_translate",
        &[
            "-q",
            "-of",
            "netCDF",
            "-co",
            "FORMAT=NC4",
            s(&util::data("stars_L7_ETMs.tif")),
            s(&nc),
        ],
    );
    let zarr = dir.path().join("l7.zarr");
    util::rioxarray_zarr(&util::data("stars_L7_ETMs.tif"), &zarr, 3, "reflectance");
    let recent = vec![
        nc.display().to_string(),
        zarr.display().to_string(),
        util::data("stars_L7_ETMs.tif").display().to_string(),
    ];
    std::fs::write(
        config.join("gridstore").join("recent.json"),
        serde_json::to_vec(&recent).unwrap(),
    )
    .unwrap();
    for _ in 0..5 {
        let out = gui_under_xvfb(
            &config,
            &[
                "/nonexistent/store.gs",
                "--screenshot",
                s(&dir.path().join("never.png")),
            ],
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains("/nonexistent/store.gs"), "{err}");
    }
}

/// A store with time levels gets a selector beside the time slider: the
/// day shown is the sum of its instants (its map, its tiles, the series at
/// a clicked point per day, and an export); back to instants, the instant
/// shown is in that day.
#[test]
fn the_period_selector_shows_period_maps() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("p.gs");
    let src = util::data("terra_meuse.tif");
    util::ok(&[
        "create",
        s(&store),
        "--like",
        s(&src),
        "--time",
        "irregular",
        "--chunk",
        "16",
        "--aggregate",
        "sum",
        "--time-levels",
        "day,month",
    ]);
    for time in ["2024-03-01T00:00", "2024-03-01T12:00", "2024-03-02T00:00"] {
        util::ok(&["ingest", s(&store), s(&src), "--time", time]);
    }
    let mut h = harness(&GuiOptions {
        store: Some(store.clone()),
        ..GuiOptions::default()
    });
    until_tiles(&mut h);
    assert_eq!(h.state().time.period, None);
    h.get_by_label("day").click();
    h.run_steps(2);
    assert_eq!(h.state().time.period, Some(TimeLevel::Day));
    // The first instant's day, its maps read from the day store.
    let opened = h.state().opened().unwrap().store.clone();
    let days = opened.period_maps(TimeLevel::Day).unwrap().clone();
    let t = h.state().time.t;
    assert_eq!(
        days.instant_of(t),
        Some(gridstore::engine::grid::time::parse_instant("2024-03-01").unwrap())
    );
    h.get_by_label("day 2024-03-01");
    until_tiles(&mut h);
    click_map(&mut h, egui::pos2(650.0, 350.0));
    run_until(&mut h, "the series per day", |app| {
        app.time.series.is_some()
    });
    let Series {
        place,
        values: series,
        ..
    } = h.state().time.series.clone().unwrap();
    let SeriesPlace::Point(point) = place else {
        unreachable!()
    };
    assert_eq!(series.len(), 2, "two days: {series:?}");
    let at = |t: u32| {
        opened
            .value_at::<i16>(t, 0, point, 0, gridstore::engine::Resampling::Nearest)
            .unwrap()
            .unwrap()
    };
    let first = opened.instants_between(i64::MIN, i64::MAX)[0].0;
    let one = at(first);
    assert_eq!(series[0].1, Some(2.0 * one), "the 1st holds two instants");
    assert_eq!(series[1].1, Some(one), "the 2nd one");
    // An export takes the day shown, and says so.
    let out = dir.path().join("day.tif");
    h.state_mut().export_to(out.clone());
    run_until(&mut h, "the export", finished);
    let info = std::process::Command::new("gdalinfo")
        .arg(&out)
        .output()
        .unwrap();
    let info = String::from_utf8_lossy(&info.stdout);
    assert!(info.contains("GRIDSTORE_PERIOD_LABEL=2024-03-01"), "{info}");
    // The month; then the instants again, within that month.
    h.get_by_label("month").click();
    h.run_steps(2);
    h.get_by_label("month 2024-03");
    h.get_by_label("instants").click();
    h.run_steps(2);
    assert_eq!(h.state().time.period, None);
    let t = h.state().time.t;
    assert_eq!(
        opened.instant_of(t),
        Some(gridstore::engine::grid::time::parse_instant("2024-03-01").unwrap())
    );
    until_tiles(&mut h);
}
