//! The time controls: the timeline (click, arrow keys), playback, and the
//! instant asked for at start.

use super::{GuiOptions, harness, meuse_at, run_until, until_tiles};
use egui_kittest::kittest::Queryable as _;
use gridstore::engine::grid::time::parse_instant;

fn instant(app: &gridstore::gui::Explorer) -> i64 {
    app.opened().unwrap().store.instant_of(app.time.t).unwrap()
}

#[test]
fn the_timeline_is_clicked_stepped_and_played() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = harness(&GuiOptions {
        store: Some(meuse_at(
            dir.path(),
            &["2024-01-01", "2024-01-02", "2024-03-01"],
        )),
        ..GuiOptions::default()
    });
    until_tiles(&mut h);
    assert_eq!(instant(h.state()), parse_instant("2024-01-01").unwrap());
    // A click three quarters along the timeline (day 45 of 60): the last
    // instant is the nearest.
    h.get_by_role(egui::accesskit::Role::Slider).scroll_to_me();
    h.run_steps(3);
    let timeline = h.get_by_role(egui::accesskit::Role::Slider).rect();
    let x = timeline.min.x + 0.75 * (timeline.max.x - timeline.min.x);
    let end = egui::pos2(x as f32, timeline.center().y as f32);
    super::click_map(&mut h, end);
    h.run_steps(2);
    assert_eq!(instant(h.state()), parse_instant("2024-03-01").unwrap());
    // The left arrow steps back one instant.
    h.key_press(egui::Key::ArrowLeft);
    h.run_steps(2);
    assert_eq!(instant(h.state()), parse_instant("2024-01-02").unwrap());
    // Playback steps on by itself (wrapping at the end) until paused.
    h.state_mut().time.speed = 30.0;
    h.get_by_label("Play").click();
    h.run_steps(1);
    assert!(h.state().time.playing);
    assert_eq!(h.state().map.coarser, 1, "a level coarser while playing");
    let start = h.state().time.t;
    run_until(&mut h, "playback", |app| app.time.t != start);
    h.get_by_label("Pause").click();
    h.run_steps(2);
    assert!(!h.state().time.playing);
    assert_eq!(h.state().map.coarser, 0);
}

/// `gui --time`: the store opens at that instant; one it does not hold is
/// refused with the nearest it does.
#[test]
fn the_instant_asked_for_at_start_is_shown() {
    let dir = tempfile::tempdir().unwrap();
    let store = meuse_at(dir.path(), &["2024-01-01", "2024-01-02", "2024-03-01"]);
    let mut h = harness(&GuiOptions {
        store: Some(store.clone()),
        time: Some(parse_instant("2024-01-02").unwrap()),
        ..GuiOptions::default()
    });
    until_tiles(&mut h);
    assert_eq!(instant(h.state()), parse_instant("2024-01-02").unwrap());
    let mut h = harness(&GuiOptions {
        store: Some(store),
        time: Some(parse_instant("2024-02-01").unwrap()),
        ..GuiOptions::default()
    });
    run_until(&mut h, "the refusal", |app| app.error().is_some());
    let error = h.state().error().unwrap().to_string();
    assert!(
        error.contains("--time") && error.contains("2024-01-02") && error.contains("2024-03-01"),
        "{error}"
    );
}
