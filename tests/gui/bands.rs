//! A store that knows what its bands are: the default composite follows
//! their colours, the picker and legend name them, and the status bar reads
//! every band at the cursor.

use super::{Duration, Instant, harness, run_until, s, until_tiles, util};
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT as _, Queryable as _, by};
use gridstore::gui::Explorer;
use gridstore::gui::GuiOptions;
use gridstore::render::Bands;

#[test]
fn described_bands_set_the_composite_and_are_named_and_read_at_the_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let vrt = util::described_scene(dir.path());
    let store = dir.path().join("bgr.gs");
    util::ok(&["create", s(&store), "--like", s(&vrt), "--chunk", "64"]);
    util::ok(&["ingest", s(&store), s(&vrt)]);
    let mut h = harness(&GuiOptions {
        store: Some(store),
        // Level 0: each cell is the scene's own.
        level: Some(0),
        ..GuiOptions::default()
    });
    until_tiles(&mut h);
    // Band 3 is red, 2 green, 1 blue: the composite is 3-2-1.
    assert_eq!(h.state().style_for_tests().bands, Bands::Rgb([2, 1, 0]));
    // The picker names each band.
    for name in ["band 3 · red", "band 2 · green", "band 1 · blue"] {
        assert!(
            text_containing(&h, name).is_some(),
            "the picker shows {name}"
        );
    }

    // One band shown: the status bar still reads all three, with units,
    // the shown one marked.
    h.state_mut().show_bands(Bands::Single(1));
    h.step();
    let rect = h.state().drawn_rect().unwrap();
    h.input_mut()
        .events
        .push(egui::Event::PointerMoved(rect.center()));
    let start = Instant::now();
    let readout = loop {
        h.step();
        if let Some(text) = text_containing(&h, "*b2 ") {
            break text;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "no readout");
        std::thread::sleep(Duration::from_millis(10));
    };
    // Each band's value is the scene's there, as GDAL reads it.
    let (x, y) = {
        let r = h.state().readout().unwrap();
        (r.x, r.y)
    };
    let scene = util::read(s(&vrt), None);
    let g = scene.geotransform;
    let col = ((x - g[0]) / g[1]).floor() as usize;
    let row = ((y - g[3]) / g[5]).floor() as usize;
    assert!(
        col < scene.cols && row < scene.rows,
        "{x} {y} is on the scene"
    );
    let expected: Vec<String> = (0..3)
        .map(|b| {
            let v = scene.bands[b][row * scene.cols + col];
            let mark = if b == 1 { "*" } else { "" };
            format!("{mark}b{} {v} DN", b + 1)
        })
        .collect();
    assert_eq!(readout, expected.join("  "));
    run_until(&mut h, "idle", |app| app.tiles.loading() == 0);
}

/// The first text shown (a label's or a control's value) containing
/// `needle`.
fn text_containing(h: &Harness<'_, Explorer>, needle: &str) -> Option<String> {
    let has = |n: &egui_kittest::kittest::AccessKitNode<'_>| {
        [n.value(), n.label()]
            .into_iter()
            .flatten()
            .find(|t| t.contains(needle))
    };
    let node = h
        .query_all(by().predicate(move |n| has(n).is_some()))
        .next()?;
    has(&node.accesskit_node())
}
