//! The ingest history in the side panel, and a note added from it.

use super::{explorer_on_data, run_until};
use egui_kittest::kittest::Queryable as _;

#[test]
fn the_history_lists_ingests_and_takes_a_note() {
    let (_dir, mut h) = explorer_on_data();
    run_until(&mut h, "the store", |app| app.opened().is_some());
    assert_eq!(h.state().opened().unwrap().history.len(), 1);
    h.get_by_label("Ingest history (1)").click();
    h.run_steps(3);
    h.get_by_label("#1 terra_meuse.tif");
    h.get_by_label("note").focus();
    h.run_steps(2);
    h.get_by_label("note")
        .type_text("checked against the 2019 survey");
    h.run_steps(2);
    h.get_by_label("Add note").click();
    run_until(&mut h, "the note", |app| {
        app.opened().is_some_and(|o| !o.notes.is_empty())
    });
    let notes = &h.state().opened().unwrap().notes;
    assert_eq!(notes[0].text, "checked against the 2019 survey");
    assert_eq!(notes[0].ingest, None);
    h.run_steps(2);
    h.get_by_label("note: checked against the 2019 survey");
}
