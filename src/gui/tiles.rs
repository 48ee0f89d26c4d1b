//! Map tiles: chunks read, decoded and colour-mapped on the rayon pool, kept
//! as textures in a bounded cache.
//!
//! The UI thread only requests tiles and uploads finished images; results
//! come back over a bounded channel and wake the UI (within 40 ms while
//! others load, at once for the last one asked for).

use super::margins::{MarginCache, as_f32};
use crate::engine::{ChunkLoc, Element, Store};
use crate::relief::{Sun, hillshade, row_spacing};
use crate::render::{Bands, ColorMap, Stretch, to_rgba};
use crate::with_dtype;
use egui::{ColorImage, TextureHandle, TextureOptions};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

/// A tile: one chunk at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TileKey {
    /// Time index.
    pub t: u32,
    /// The chunk.
    pub loc: ChunkLoc,
}

/// How tiles are coloured; changing it invalidates the cache.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Style {
    /// The colour ramp.
    pub map: ColorMap,
    /// Colour single-band tiles through the store's colour table instead.
    pub palette: bool,
    /// The bands shown.
    pub bands: Bands,
    /// Value range of the ramp (per channel for RGB composites).
    pub stretch: [Stretch; 3],
    /// Shaded relief of the first band shown, if on.
    pub relief: Option<Relief>,
}

/// Shaded relief on the map.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Relief {
    /// The sun.
    pub sun: Sun,
    /// The shade alone in greys, rather than blended with the colours.
    pub alone: bool,
    /// Metres per CRS unit, or `None` for degrees (a geographic CRS).
    pub metres: Option<f64>,
}

/// A tile that finished loading.
pub struct Tile {
    /// The texture, or `None` for a chunk without data.
    pub texture: Option<TextureHandle>,
    /// The shown bands' values, one row-major plane per band in channel
    /// order, for the readout and the stretch; NaN is nodata.
    pub values: Arc<[f32]>,
}

enum Slot {
    /// On its way: asked for on screen, or prefetched (`true`; dropped if
    /// the view moves on before it starts).
    Loading {
        prefetched: bool,
    },
    Ready(Tile),
}

/// A rendered tile (`Ok(None)`: no data there), or why it failed.
type Rendered = Result<Option<(ColorImage, Vec<f32>)>, String>;

/// A finished tile job: `None` for a prefetch dropped because the view
/// moved on before it started.
type Loaded = (TileKey, u64, Option<Rendered>);

/// The bounded texture cache and its loader.
pub struct TileCache {
    slots: HashMap<TileKey, (Slot, u64)>,
    /// Tiles from before the last refresh, drawn until their new version
    /// arrives, so updates never flash.
    stale: HashMap<TileKey, Tile>,
    capacity: usize,
    frame: u64,
    generation: u64,
    sender: SyncSender<Loaded>,
    receiver: Receiver<Loaded>,
    /// Bumped when the view moves: queued prefetches of an older view are
    /// dropped, so they never delay the tiles of the new one.
    view_epoch: Arc<AtomicU64>,
    ctx: egui::Context,
    /// The last error a tile load hit, for the status bar.
    pub last_error: Option<String>,
    /// Chunks' edges, for the margins of shaded relief.
    margins: Arc<MarginCache>,
    /// Tiles asked for on screen (not prefetches) and not yet sent back.
    wanted: Arc<AtomicUsize>,
}

/// While tiles load, the map is redrawn at most this often for the ones
/// that arrived: each frame a software renderer draws takes the CPU the
/// remaining tiles need. The last tile asked for is drawn at once.
const LOADING_REDRAW: std::time::Duration = std::time::Duration::from_millis(40);

impl TileCache {
    /// A cache of at most `capacity` tiles.
    #[must_use]
    pub fn new(ctx: egui::Context, capacity: usize) -> Self {
        let (sender, receiver) = sync_channel(64);
        Self {
            slots: HashMap::new(),
            stale: HashMap::new(),
            capacity,
            frame: 0,
            generation: 0,
            sender,
            receiver,
            view_epoch: Arc::new(AtomicU64::new(0)),
            ctx,
            last_error: None,
            margins: Arc::default(),
            wanted: Arc::default(),
        }
    }

    /// Forgets every tile (a new store or style).
    pub fn clear(&mut self) {
        self.slots.clear();
        self.stale.clear();
        self.generation += 1;
        self.margins.forget();
    }

    /// The store's cells changed: tiles reload (see [`TileCache::refresh`])
    /// and no chunk edge read before is used again.
    pub fn cells_changed(&mut self) {
        self.margins.forget();
        self.refresh();
    }

    /// Reloads every tile (the store changed), drawing the old ones until
    /// their new versions arrive.
    pub fn refresh(&mut self) {
        self.stale = self
            .slots
            .drain()
            .filter_map(|(key, (slot, _))| match slot {
                Slot::Ready(tile) => Some((key, tile)),
                Slot::Loading { .. } => None,
            })
            .collect();
        self.generation += 1;
    }

    /// Starts a new frame: takes finished tiles (within a time budget) and
    /// evicts the least recently used beyond capacity.
    pub fn begin_frame(&mut self) {
        self.frame += 1;
        let start = std::time::Instant::now();
        let mut left_over = true;
        while start.elapsed() < std::time::Duration::from_millis(8) {
            let Ok((key, generation, result)) = self.receiver.try_recv() else {
                left_over = false;
                break;
            };
            if generation != self.generation {
                continue;
            }
            let Some(result) = result else {
                // A dropped prefetch: requested again when it is wanted,
                // unless it already was.
                if matches!(
                    self.slots.get(&key),
                    Some((Slot::Loading { prefetched: true }, _))
                ) {
                    self.slots.remove(&key);
                }
                continue;
            };
            let tile = match result {
                Ok(Some((image, values))) => Tile {
                    texture: Some(self.ctx.load_texture(
                        format!("tile {key:?}"),
                        image,
                        TextureOptions::NEAREST,
                    )),
                    values: values.into(),
                },
                Ok(None) => Tile {
                    texture: None,
                    values: Arc::from(Vec::new()),
                },
                Err(e) => {
                    self.last_error = Some(e);
                    Tile {
                        texture: None,
                        values: Arc::from(Vec::new()),
                    }
                }
            };
            self.stale.remove(&key);
            self.slots.insert(key, (Slot::Ready(tile), self.frame));
        }
        if self.slots.len() > self.capacity {
            // Never a tile drawn in the last frame: the cache may run over
            // rather than evict what is on screen and load it again.
            let last_frame = self.frame - 1;
            let mut ages: Vec<(u64, TileKey)> = self
                .slots
                .iter()
                .filter(|(_, (s, used))| matches!(s, Slot::Ready(_)) && *used < last_frame)
                .map(|(k, (_, used))| (*used, *k))
                .collect();
            ages.sort_unstable_by_key(|(used, _)| *used);
            let excess = (self.slots.len() - self.capacity).min(ages.len());
            for (_, key) in ages.into_iter().take(excess) {
                self.slots.remove(&key);
            }
        }
        if left_over {
            // Tiles left over after the budget: take them next frame.
            self.ctx
                .request_repaint_after(std::time::Duration::from_millis(1));
        }
    }

    /// The tile if loaded (or its version from before a refresh), marking
    /// it used. Requests it when `request`.
    pub fn get(
        &mut self,
        store: &Arc<Store>,
        key: TileKey,
        style: Style,
        request: bool,
    ) -> Option<&Tile> {
        let frame = self.frame;
        // Not asked for yet, or only prefetched: a prefetch queued for an
        // earlier view is dropped, so it is asked for again, on screen.
        let ask = match self.slots.get(&key) {
            None => true,
            Some((Slot::Loading { prefetched }, _)) => *prefetched,
            Some((Slot::Ready(_), _)) => false,
        };
        if ask {
            if request {
                self.spawn(store, key, style, false);
                self.slots
                    .insert(key, (Slot::Loading { prefetched: false }, frame));
            }
            return self.stale.get(&key);
        }
        let (slot, used) = self.slots.get_mut(&key)?;
        *used = frame;
        match slot {
            Slot::Ready(tile) => Some(tile),
            Slot::Loading { .. } => self.stale.get(&key),
        }
    }

    /// Starts loading a tile that is not on screen yet (a neighbour of the
    /// view), unless it is cached or on its way.
    pub fn prefetch(&mut self, store: &Arc<Store>, key: TileKey, style: Style) {
        if !self.slots.contains_key(&key) {
            self.spawn(store, key, style, true);
            // Used "long ago": evicted before anything on screen.
            self.slots
                .insert(key, (Slot::Loading { prefetched: true }, 0));
        }
    }

    /// The tile if loaded, without marking it used or requesting it.
    #[must_use]
    pub fn peek(&self, key: &TileKey) -> Option<&Tile> {
        match self.slots.get(key) {
            Some((Slot::Ready(tile), _)) => Some(tile),
            _ => None,
        }
    }

    /// Whether the tile is loaded.
    #[must_use]
    pub fn is_ready(&self, key: &TileKey) -> bool {
        matches!(self.slots.get(key), Some((Slot::Ready(_), _)))
    }

    /// Tiles requested and not yet loaded.
    #[must_use]
    pub fn loading(&self) -> usize {
        self.slots
            .values()
            .filter(|(s, _)| matches!(s, Slot::Loading { .. }))
            .count()
    }

    /// Tiles loaded.
    #[must_use]
    pub fn ready(&self) -> usize {
        self.slots
            .values()
            .filter(|(s, _)| matches!(s, Slot::Ready(_)))
            .count()
    }

    /// The view moved: prefetches queued for the old one are dropped.
    pub fn view_moved(&self) {
        self.view_epoch.fetch_add(1, Ordering::Relaxed);
    }

    fn spawn(&self, store: &Arc<Store>, key: TileKey, style: Style, prefetch: bool) {
        let epoch = self.view_epoch.clone();
        let spawned_in = epoch.load(Ordering::Relaxed);
        let (store, sender, ctx, generation, margins, wanted) = (
            store.clone(),
            self.sender.clone(),
            self.ctx.clone(),
            self.generation,
            self.margins.clone(),
            self.wanted.clone(),
        );
        // The cells as of now: a job that starts after they change keeps
        // nothing it reads.
        let margin_epoch = margins.epoch();
        if !prefetch {
            wanted.fetch_add(1, Ordering::Relaxed);
        }
        let working = super::task::Working::begin();
        rayon::spawn(move || {
            let _working = working;
            let result = (!prefetch || epoch.load(Ordering::Relaxed) == spawned_in).then(|| {
                with_dtype!(store.structure().dtype, T => render::<T>(&store, (&margins, margin_epoch), key, style))
            });
            let mut message = (key, generation, result);
            // Bounded: wait while the UI catches up, never drop a tile.
            loop {
                match sender.try_send(message) {
                    Ok(()) => break,
                    Err(TrySendError::Full(back)) => {
                        message = back;
                        std::thread::sleep(std::time::Duration::from_millis(5));
                    }
                    Err(TrySendError::Disconnected(_)) => return,
                }
            }
            if !prefetch && wanted.fetch_sub(1, Ordering::AcqRel) == 1 {
                // Not `request_repaint`, which egui answers with two frames.
                ctx.request_repaint_after(std::time::Duration::from_millis(1));
            } else {
                ctx.request_repaint_after(LOADING_REDRAW);
            }
        });
    }
}

fn render<T: Element>(
    store: &Store,
    (margins, epoch): (&MarginCache, u64),
    key: TileKey,
    style: Style,
) -> Result<Option<(ColorImage, Vec<f32>)>, String> {
    let Some(chunk) = margins.read_chunk::<T>(store, key.t, key.loc)? else {
        return Ok(None);
    };
    let nodata = store.nodata::<T>();
    let (_, rows, cols) = chunk.dim();
    let palette = style.palette.then(|| store.palette()).flatten();
    let mut rgba = to_rgba(
        &chunk.view(),
        nodata,
        style.map,
        style.bands,
        &style.stretch,
        palette.as_deref(),
    );
    if let Some(relief) = style.relief {
        let band = style.bands.indices()[0];
        shade::<T>(
            store,
            (margins, epoch),
            key,
            &chunk,
            relief,
            band,
            &mut rgba,
        )?;
    }
    let shown: Vec<usize> = style
        .bands
        .indices()
        .iter()
        .copied()
        .filter(|&b| b < chunk.dim().0)
        .collect();
    let plane = rows * cols;
    let mut values = vec![f32::NAN; shown.len() * plane];
    for (out, b) in values.chunks_exact_mut(plane).zip(shown) {
        let band = chunk.index_axis(ndarray::Axis(0), b);
        for (o, v) in out.iter_mut().zip(band.iter()) {
            if v.is_valid(nodata) {
                *o = v.to_f64() as f32;
            }
        }
    }
    mask_beyond_data(store, key.loc, (rows, cols), &mut rgba, &mut values);
    // A ramp's pixels are opaque or all zero, so already premultiplied (no
    // conversion); a colour table's may be translucent.
    let image = if palette.is_some() {
        ColorImage::from_rgba_unmultiplied([cols, rows], &rgba)
    } else {
        ColorImage::from_rgba_premultiplied([cols, rows], &rgba)
    };
    Ok(Some((image, values)))
}

/// For a store without nodata, whose chunks' cells beyond its data are
/// not data but hold values all the same: those cells of a tile are made
/// transparent and left out of its values (the stretch, the readout).
fn mask_beyond_data(
    store: &Store,
    loc: crate::engine::ChunkLoc,
    (rows, cols): (usize, usize),
    rgba: &mut [u8],
    values: &mut [f32],
) {
    if store.structure().nodata.is_some() || store.structure().time.is_some() {
        return;
    }
    let Ok(Some(data)) = store.kept_data_window() else {
        return;
    };
    let data = data.coarsened(loc.level);
    let chunk = store.grid().chunk_window(loc);
    let inside = |r: usize, c: usize| {
        let (r, c) = (chunk.row + r as u64, chunk.col + c as u64);
        (data.row..data.row + data.rows).contains(&r)
            && (data.col..data.col + data.cols).contains(&c)
    };
    let plane = rows * cols;
    for i in 0..plane {
        if !inside(i / cols, i % cols) {
            rgba[i * 4..i * 4 + 4].fill(0);
            for v in values.iter_mut().skip(i).step_by(plane) {
                *v = f32::NAN;
            }
        }
    }
}

/// Shades `rgba` (one tile's colours) with the relief of `band`: computed
/// from the tile's cells and a one-cell margin from its neighbours (so that
/// tiles meet without seams), with the ground spacing of each row.
fn shade<T: Element>(
    store: &Store,
    (margins, epoch): (&MarginCache, u64),
    key: TileKey,
    chunk: &ndarray::Array3<T>,
    relief: Relief,
    band: usize,
    rgba: &mut [u8],
) -> Result<(), String> {
    let grid = store.grid();
    let band = band.min(chunk.dim().0 - 1);
    let plane = as_f32(
        &chunk.index_axis(ndarray::Axis(0), band),
        store.nodata::<T>(),
    );
    let dem = margins.with_margin::<T>(store, epoch, (key.t, key.loc, band), &plane.view())?;
    let extent = grid.chunk_extent(key.loc);
    let cell = grid.cell_size(key.loc.level);
    let spacing = row_spacing(
        plane.dim().0,
        extent.max_y - cell[1] / 2.0,
        cell,
        relief.metres,
    );
    let shade = hillshade(&dem.view(), &spacing, relief.sun);
    #[allow(clippy::cast_possible_truncation)]
    let flat = (1.0 + 254.0 * relief.sun.altitude.to_radians().sin()) as f32;
    for (px, s) in rgba.chunks_exact_mut(4).zip(shade.iter()) {
        if px[3] == 0 || *s == 0 {
            continue;
        }
        if relief.alone {
            px[..3].fill(*s);
        } else {
            // Flat ground keeps its colour; slopes in sun brighten, those
            // in shadow darken.
            let f = (f32::from(*s) / flat).clamp(0.0, 1.5);
            for c in &mut px[..3] {
                // Rounded by adding a half (the product is never negative):
                // no library call per channel.
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                {
                    *c = (f32::from(*c) * f + 0.5).min(255.0) as u8;
                }
            }
        }
    }
    Ok(())
}
