//! One pass through every panel of the explorer on a real store, checking
//! each control does what it says.

use super::{explorer_on_data, run_until, until_tiles};
use egui_kittest::kittest::{NodeT as _, Queryable as _};

#[test]
fn every_panel_answers_its_controls() {
    let (_dir, mut h) = explorer_on_data();
    until_tiles(&mut h);
    let click = |h: &mut egui_kittest::Harness<'_, gridstore::gui::Explorer>, label: &str| {
        // Through accessibility: also widgets scrolled out of view.
        h.get_by_label(label).click_accesskit();
        h.run_steps(3);
    };

    // Store: the structure, read-only.
    click(&mut h, "Structure…");
    assert!(h.state().editor.open && h.state().editor.read_only.is_some());
    h.get_by_label("Store structure");
    h.state_mut().editor.open = false;
    h.run_steps(2);

    // Map controls: grid, colours (pinning has its own test).
    h.get_by_label("chunk grid").click();
    h.run_steps(3);
    assert!(h.state().map.grid);
    click(&mut h, "colours");
    click(&mut h, "greyscale");
    assert_eq!(
        h.state().style_for_tests().map,
        gridstore::render::ColorMap::Greyscale
    );

    // Pyramid browser: a level's chunks, one chunk, its parent.
    // (The status bar's "level 0" is a label; the list's is a button.)
    h.get_by_role_and_label(egui::accesskit::Role::Button, "level 0")
        .click_accesskit();
    h.run_steps(3);
    run_until(&mut h, "the chunk list", |app| {
        !app.levels.chunks.is_empty()
    });
    h.get_by_label("Chunks of level 0").scroll_to_me();
    h.run_steps(3);
    let label = h
        .query_all_by(|n| n.label().is_some_and(|l| l.starts_with("L0/")))
        .find_map(|n| n.accesskit_node().label())
        .unwrap();
    click(&mut h, &label);
    run_until(&mut h, "the chunk report", |app| {
        app.inspector.report.is_some()
    });
    let first = h.state().inspector.selected.unwrap().loc;
    assert!(label.starts_with(&format!("{first} ")));
    click(&mut h, "Parent");
    run_until(&mut h, "the parent", |app| {
        app.inspector
            .selected
            .is_some_and(|k| k.loc == first.parent())
    });

    // History.
    click(&mut h, "Ingest history (1)");
    h.get_by_label("#1 terra_meuse.tif");

    // Export: drawing mode, cell size.
    click(&mut h, "Draw extent");
    assert!(h.state().map.drawing.is_some());
    click(&mut h, "at a cell size");
    assert!(h.state().export.by_cell);

    // New store: the editor opens empty of errors but for the CRS.
    click(&mut h, "New store…");
    assert!(h.state().editor.open && h.state().editor.read_only.is_none());
    h.get_by_label("New store");
}
