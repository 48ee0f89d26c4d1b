//! Every band's value under the cursor. The map's tiles keep only the shown
//! bands, so the chunk under the cursor is read whole on the worker pool
//! and held while the cursor stays on it: moving within a chunk costs no
//! read, and at most one read is in flight.

use super::task::Task;
use super::tiles::TileKey;
use crate::engine::{Element, Store};
use crate::with_dtype;
use std::sync::Arc;

/// A chunk's cells, every band: row-major planes, NaN for nodata.
struct Held {
    key: TileKey,
    /// Cells per band plane.
    plane: usize,
    /// `None`: the chunk is not stored (all nodata), or could not be read.
    values: Option<Arc<[f32]>>,
}

/// The chunk under the cursor, read whole.
#[derive(Default)]
pub struct CursorProbe {
    held: Option<Held>,
    pending: Option<(TileKey, Task<Held>)>,
}

impl CursorProbe {
    /// Every band's value at cell `at` (row-major in the chunk) of `key`,
    /// once its chunk is read; starts reading it otherwise. `None` inside
    /// means nodata.
    pub fn values(
        &mut self,
        store: &Arc<Store>,
        key: TileKey,
        at: usize,
        ctx: &egui::Context,
    ) -> Option<Vec<Option<f32>>> {
        self.poll();
        match &self.held {
            Some(held) if held.key == key => {
                let bands = store.structure().band_count();
                Some(match &held.values {
                    None => vec![None; bands],
                    Some(values) => (0..bands)
                        .map(|b| {
                            values
                                .get(b * held.plane + at)
                                .copied()
                                .filter(|v| !v.is_nan())
                        })
                        .collect(),
                })
            }
            _ => {
                if self.pending.as_ref().is_none_or(|(k, _)| *k != key) {
                    let store = store.clone();
                    self.pending = Some((key, Task::on_pool(ctx, move || read(&store, key))));
                }
                None
            }
        }
    }

    /// Forgets the held chunk (its cells may have changed).
    pub fn forget(&mut self) {
        self.held = None;
        self.pending = None;
    }

    fn poll(&mut self) {
        if let Some((_, task)) = &self.pending
            && let Some(held) = task.poll()
        {
            self.pending = None;
            self.held = Some(held);
        }
    }
}

fn read(store: &Store, key: TileKey) -> Held {
    with_dtype!(store.structure().dtype, T => read_typed::<T>(store, key))
}

fn read_typed<T: Element>(store: &Store, key: TileKey) -> Held {
    let [cols, rows] = store.grid().chunk_shape();
    let plane = rows as usize * cols as usize;
    let nodata = store.nodata::<T>();
    let values = store
        .read_chunk::<T>(key.t, key.loc)
        .ok()
        .flatten()
        .map(|chunk| {
            chunk
                .iter()
                .map(|v| {
                    if v.is_valid(nodata) {
                        #[allow(clippy::cast_possible_truncation)]
                        let v = v.to_f64() as f32;
                        v
                    } else {
                        f32::NAN
                    }
                })
                .collect()
        });
    Held { key, plane, values }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::grid::structure::tests::sample;
    use crate::engine::{ChunkLoc, Window};
    use crate::storage::MemoryStorage;

    #[test]
    fn every_band_is_read_once_per_chunk() {
        let mut structure = sample();
        structure.bands = Some(3);
        let store = Arc::new(Store::create(Arc::new(MemoryStorage::new()), structure).unwrap());
        let cells: Vec<f32> = (0..3 * 16).map(|i| i as f32).collect();
        let data = ndarray::Array3::from_shape_vec((3, 4, 4), cells).unwrap();
        let window = Window {
            row: 0,
            col: 0,
            rows: 4,
            cols: 4,
        };
        store.write(None, window, data.view()).unwrap();
        let ctx = egui::Context::default();
        let mut probe = CursorProbe::default();
        let key = TileKey {
            t: 0,
            loc: ChunkLoc::new(0, 0, 0),
        };
        let mut values = None;
        for _ in 0..500 {
            values = probe.values(&store, key, 5, &ctx);
            if values.is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(values, Some(vec![Some(5.0), Some(21.0), Some(37.0)]));
        assert!(probe.pending.is_none(), "no second read for the same chunk");
        assert_eq!(
            probe.values(&store, key, 6, &ctx),
            Some(vec![Some(6.0), Some(22.0), Some(38.0)])
        );
    }
}
