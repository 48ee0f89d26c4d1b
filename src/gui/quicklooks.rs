//! Quicklooks of the open and recent stores: rendered off the UI thread
//! through the function cache (so a store whose contents did not change is
//! never read again for its picture, also after a restart), and back over a
//! bounded channel as textures.

use crate::engine::FunctionCache;
use crate::quicklook::{Quicklook, quicklook};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

/// What stands in the quicklook's box for a store that cannot be read.
pub const UNAVAILABLE: &str = "unavailable";

/// Pixels on the longer side of a quicklook.
pub const SIZE: usize = 128;

/// Where one store's quicklook stands.
pub enum Entry {
    /// Being read or rendered.
    Loading,
    /// Shown; `hit`: it came from the cache.
    Ready {
        /// The picture.
        texture: egui::TextureHandle,
        /// Whether it came from the cache.
        hit: bool,
    },
    /// The store holds no data.
    Empty,
    /// It could not be made (shown as a tooltip).
    Failed(String),
}

type Made = (PathBuf, Result<Option<(Quicklook, bool)>, String>);

/// The quicklooks of this session.
pub struct Quicklooks {
    ctx: egui::Context,
    cache: Option<FunctionCache>,
    entries: HashMap<PathBuf, Entry>,
    sender: SyncSender<Made>,
    receiver: Receiver<Made>,
}

impl Quicklooks {
    /// None yet; they are rendered through `cache` when given.
    #[must_use]
    pub fn new(ctx: egui::Context, cache: Option<FunctionCache>) -> Self {
        let (sender, receiver) = sync_channel(16);
        Self {
            ctx,
            cache,
            entries: HashMap::new(),
            sender,
            receiver,
        }
    }

    /// Where `path`'s quicklook stands, if it was asked for.
    #[must_use]
    pub fn entry(&self, path: &Path) -> Option<&Entry> {
        self.entries.get(path)
    }

    /// Starts making `path`'s quicklook unless it is made or under way.
    pub fn request(&mut self, path: &Path) {
        if self.entries.contains_key(path) {
            return;
        }
        self.entries.insert(path.to_path_buf(), Entry::Loading);
        let (path, cache, sender, ctx) = (
            path.to_path_buf(),
            self.cache.clone(),
            self.sender.clone(),
            self.ctx.clone(),
        );
        let working = super::task::Working::begin();
        std::thread::spawn(move || {
            let _working = working;
            let made = crate::foreign::open_store_or_raster(&path, false)
                .and_then(|store| quicklook(&store, SIZE, cache.as_ref()))
                .map(|q| q.map(|c| (c.value, c.hit)));
            // The explorer may have closed: nobody to tell.
            sender.send((path, made)).ok();
            ctx.request_repaint();
        });
    }

    /// Makes `path`'s quicklook again (its contents changed).
    pub fn refresh(&mut self, path: &Path) {
        if matches!(self.entries.get(path), Some(Entry::Loading)) {
            return;
        }
        self.entries.remove(path);
        self.request(path);
    }

    /// Takes the quicklooks that arrived, as textures.
    pub fn poll(&mut self) {
        while let Ok((path, made)) = self.receiver.try_recv() {
            let entry = match made {
                Ok(Some((q, hit))) => {
                    let image =
                        egui::ColorImage::from_rgba_unmultiplied([q.width, q.height], &q.rgba);
                    let texture = self.ctx.load_texture(
                        format!("quicklook {}", path.display()),
                        image,
                        egui::TextureOptions::LINEAR,
                    );
                    Entry::Ready { texture, hit }
                }
                Ok(None) => Entry::Empty,
                Err(e) => Entry::Failed(e),
            };
            self.entries.insert(path, entry);
        }
    }

    /// Draws `path`'s quicklook fitted into a box `height` points high and
    /// twice as wide. The box is there while the picture loads too, so
    /// nothing around it moves when it arrives.
    pub fn show(&self, ui: &mut egui::Ui, path: &Path, height: f32) {
        let room = egui::vec2(2.0 * height, height);
        match self.entries.get(path) {
            Some(Entry::Ready { texture, hit }) => {
                let [w, h] = texture.size();
                #[allow(clippy::cast_precision_loss)]
                let scale = (room.x / w.max(1) as f32).min(room.y / h.max(1) as f32);
                #[allow(clippy::cast_precision_loss)]
                let size = egui::vec2(w as f32 * scale, h as f32 * scale);
                let tip = if *hit {
                    "quicklook (from the function cache)"
                } else {
                    "quicklook"
                };
                let (rect, response) = ui.allocate_exact_size(room, egui::Sense::hover());
                let image = egui::Rect::from_min_size(rect.min, size);
                egui::Image::new((texture.id(), size)).paint_at(ui, image);
                response.on_hover_text(tip);
            }
            Some(Entry::Loading) => {
                ui.allocate_exact_size(room, egui::Sense::hover());
            }
            Some(Entry::Failed(e)) => {
                // Words, in the box the picture would fill: a store that is
                // gone (or not a store) says why on hover.
                let text = egui::RichText::new(UNAVAILABLE).small().weak();
                ui.add_sized(room, egui::Label::new(text))
                    .on_hover_text(e.as_str());
            }
            Some(Entry::Empty) | None => {}
        }
    }
}
