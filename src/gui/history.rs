//! The store's ingest history in the side panel, with its notes, and a
//! field to attach a note (written on a background thread).

use super::task::Task;
use crate::engine::{IngestRecord, Note, Store, WriteKind};
use egui::RichText;
use std::path::{Path, PathBuf};

/// The most recent ingests listed (all of them: `gridstore history`).
const SHOWN: usize = 50;

/// The history section's state.
#[derive(Default)]
pub struct HistoryPanel {
    /// The note being typed.
    pub note: String,
    /// The ingest the note is about (its number), or the store.
    pub about: Option<u64>,
    /// Why the last note could not be added.
    pub error: Option<String>,
    adding: Option<Task<Result<(), String>>>,
}

impl HistoryPanel {
    /// Whether a note is being written.
    #[must_use]
    pub fn adding(&self) -> bool {
        self.adding.is_some()
    }

    /// Shows the history of the store at `path`; returns true when a note
    /// was added (the summary should be read again).
    pub fn ui(
        &mut self,
        ui: &mut egui::Ui,
        path: &Path,
        ingests: &[IngestRecord],
        notes: &[Note],
    ) -> bool {
        let mut added = false;
        if let Some(rx) = &self.adding
            && let Some(result) = rx.poll()
        {
            self.adding = None;
            match result {
                Ok(()) => {
                    self.note.clear();
                    self.error = None;
                    added = true;
                }
                Err(e) => self.error = Some(e),
            }
        }
        egui::CollapsingHeader::new(format!("Ingest history ({})", ingests.len()))
            .id_salt("ingest-history")
            .show(ui, |ui| {
                for note in notes.iter().filter(|n| n.ingest.is_none()) {
                    ui.label(format!("note: {}", note.text));
                }
                let earlier = ingests.len().saturating_sub(SHOWN);
                for (i, record) in ingests.iter().enumerate().skip(earlier).rev() {
                    let number = i as u64 + 1;
                    let name = match record.kind {
                        WriteKind::Clear => "cleared".to_string(),
                        WriteKind::Ingest => Path::new(&record.source)
                            .file_name()
                            .map_or_else(|| record.source.clone(), |n| n.to_string_lossy().into()),
                    };
                    ui.label(RichText::new(format!("#{number} {name}")).strong())
                        .on_hover_text(&record.source);
                    ui.label(format!(
                        "{}  {} cells, {} chunks, {:.1} s",
                        record.finished, record.cells, record.base_chunks, record.seconds
                    ));
                    for note in notes.iter().filter(|n| n.ingest == Some(number)) {
                        ui.label(format!("note: {}", note.text));
                    }
                }
                if earlier > 0 {
                    ui.label(format!("… {earlier} earlier (gridstore history)"));
                }
                self.note_editor(ui, path, ingests.len() as u64);
            });
        added
    }

    fn note_editor(&mut self, ui: &mut egui::Ui, path: &Path, ingests: u64) {
        ui.horizontal(|ui| {
            let label = ui.label("note");
            ui.text_edit_singleline(&mut self.note)
                .labelled_by(label.id);
        });
        ui.horizontal(|ui| {
            egui::ComboBox::from_id_salt("note-about")
                .selected_text(
                    self.about
                        .map_or_else(|| "the store".into(), |n| format!("ingest #{n}")),
                )
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut self.about, None, "the store");
                    for n in (1..=ingests).rev() {
                        ui.selectable_value(&mut self.about, Some(n), format!("ingest #{n}"));
                    }
                });
            let ready = !self.note.trim().is_empty() && self.adding.is_none();
            if ui
                .add_enabled(ready, egui::Button::new("Add note"))
                .clicked()
            {
                self.add(path.to_path_buf(), ui.ctx());
            }
        });
        if let Some(e) = &self.error {
            ui.colored_label(egui::Color32::LIGHT_RED, e);
        }
    }

    fn add(&mut self, path: PathBuf, ctx: &egui::Context) {
        let (text, about) = (self.note.trim().to_string(), self.about);
        self.adding = Some(Task::spawn(ctx, move || add_note(&path, &text, about)));
    }
}

fn add_note(path: &Path, text: &str, about: Option<u64>) -> Result<(), String> {
    let storage =
        crate::storage::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    // A job holding the store makes this fail with the holder named.
    let store = Store::open_writer(storage).map_err(|e| e.to_string())?;
    store.add_note(text, about).map_err(|e| e.to_string())
}
