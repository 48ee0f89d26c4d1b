//! The pyramid browser's lists: the levels with their chunk counts and
//! bytes, and the stored chunks of the chosen level.
//!
//! A level's chunks are listed on a background thread; the list shows only
//! the rows in view, so a level of a hundred thousand chunks scrolls freely.

use super::task::Task;
use super::tiles::TileKey;
use crate::engine::{ChunkLoc, Store};
use crate::format::human_bytes;
use egui::RichText;
use std::sync::Arc;

/// One level's stored chunks: `(t, loc, bytes)`, in row, column, time order.
type Listing = Vec<(u32, ChunkLoc, u64)>;

/// The level list and the chosen level's chunk list.
#[derive(Default)]
pub struct LevelBrowser {
    /// The chosen level.
    pub level: Option<u8>,
    /// Its stored chunks, once listed.
    pub chunks: Listing,
    /// Why the last listing failed.
    pub error: Option<String>,
    pending: Option<Task<(u8, Result<Listing, String>)>>,
}

impl LevelBrowser {
    /// Chooses `level` and lists its chunks in the background.
    pub fn choose(&mut self, store: &Arc<Store>, level: u8, ctx: &egui::Context) {
        if self.level != Some(level) {
            self.chunks.clear();
        }
        self.level = Some(level);
        let store = store.clone();
        self.pending = Some(Task::spawn(ctx, move || {
            let listed = store
                .list_chunks(level)
                .map(|mut chunks| {
                    chunks.sort_by_key(|(t, loc, _)| (loc.row, loc.col, *t));
                    chunks
                })
                .map_err(|e| e.to_string());
            (level, listed)
        }));
    }

    /// Whether a listing is under way.
    #[must_use]
    pub fn listing(&self) -> bool {
        self.pending.is_some()
    }

    fn poll(&mut self) {
        if let Some(rx) = &self.pending
            && let Some((level, listed)) = rx.poll()
        {
            self.pending = None;
            if Some(level) == self.level {
                match listed {
                    Ok(chunks) => {
                        self.chunks = chunks;
                        self.error = None;
                    }
                    Err(e) => self.error = Some(e),
                }
            }
        }
    }

    /// Shows the level table and the chosen level's chunks; returns the
    /// chunk clicked in the list. `levels` is `(level, chunks, bytes)`.
    pub fn ui(
        &mut self,
        ui: &mut egui::Ui,
        store: &Arc<Store>,
        levels: &[(u8, u64, u64)],
        selected: Option<TileKey>,
    ) -> Option<TileKey> {
        self.poll();
        // The summary was re-read (a write landed): list the level again.
        // (Not after a failed listing: its error stays until a click.)
        if let Some(level) = self.level
            && !self.listing()
            && self.error.is_none()
            && levels
                .iter()
                .any(|(l, n, _)| *l == level && *n != self.chunks.len() as u64)
        {
            self.choose(store, level, ui.ctx());
        }
        ui.label(RichText::new("Levels").strong());
        let mut chosen = None;
        egui::Grid::new("levels")
            .num_columns(3)
            .striped(true)
            .show(ui, |ui| {
                ui.label("level");
                ui.label("chunks");
                ui.label("bytes");
                ui.end_row();
                for (level, chunks, bytes) in levels {
                    let text = format!("level {level}");
                    if ui
                        .selectable_label(self.level == Some(*level), text)
                        .clicked()
                    {
                        chosen = Some(*level);
                    }
                    ui.label(chunks.to_string());
                    ui.label(human_bytes(*bytes));
                    ui.end_row();
                }
            });
        if let Some(level) = chosen {
            self.error = None;
            self.choose(store, level, ui.ctx());
        }
        self.chunk_list(ui, store, selected)
    }

    fn chunk_list(
        &self,
        ui: &mut egui::Ui,
        store: &Arc<Store>,
        selected: Option<TileKey>,
    ) -> Option<TileKey> {
        let level = self.level?;
        ui.label(RichText::new(format!("Chunks of level {level}")).strong());
        if let Some(e) = &self.error {
            ui.colored_label(egui::Color32::LIGHT_RED, e);
        }
        if self.chunks.is_empty() {
            ui.label(if self.listing() {
                "listing…"
            } else {
                "no chunks stored"
            });
            return None;
        }
        let timed = store.structure().time.is_some();
        let mut picked = None;
        let row_height = ui.text_style_height(&egui::TextStyle::Body) + 4.0;
        egui::ScrollArea::vertical()
            .id_salt("chunk-list")
            .max_height(220.0)
            .show_rows(ui, row_height, self.chunks.len(), |ui, rows| {
                for (t, loc, bytes) in &self.chunks[rows] {
                    let key = TileKey { t: *t, loc: *loc };
                    let text = if timed {
                        format!("{loc}  t{t}  {}", human_bytes(*bytes))
                    } else {
                        format!("{loc}  {}", human_bytes(*bytes))
                    };
                    if ui.selectable_label(selected == Some(key), text).clicked() {
                        picked = Some(key);
                    }
                }
            });
        picked
    }
}
