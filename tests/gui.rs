//! The explorer's logic, headless with egui_kittest: open a store, see its
//! summary, load the map's tiles (with coarser placeholders), pin a level,
//! toggle the chunk grid, and a bad folder's error in the window.
#![allow(clippy::unwrap_used)]

mod util;

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;
use gridstore::gui::{Explorer, GuiOptions};
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

fn store_with_data(dir: &Path) -> std::path::PathBuf {
    let store = dir.join("g.gs");
    let src = util::data("terra_meuse.tif");
    util::ok(&["create", s(&store), "--like", s(&src), "--chunk", "16"]);
    util::ok(&["ingest", s(&store), s(&src)]);
    store
}

fn harness(options: &GuiOptions) -> Harness<'static, Explorer> {
    let ctx = egui::Context::default();
    let app = Explorer::new(ctx, options);
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
    let shot = dir.path().join("shot.png");
    let out = std::process::Command::new("xvfb-run")
        .args([
            "-a",
            "-s",
            "-screen 0 1280x800x24",
            env!("CARGO_BIN_EXE_gridstore"),
            "gui",
            s(&store),
            "--screenshot",
            s(&shot),
        ])
        .output()
        .expect("xvfb-run (installed by .ci/deps)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let image = image::open(&shot).unwrap().to_rgba8();
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
