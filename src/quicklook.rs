//! A store's quicklook: a small colour-mapped picture of all its data (the
//! first instant), read from the level about as fine as the picture, and
//! kept in the function cache under the store's state token, so it is
//! computed once per state of the store, also across restarts.

use crate::engine::{Array, NotStored};
use crate::engine::{Cached, DType, Element, FunctionCache, Resampling, Storable, Store};
use crate::with_dtype;
use serde_json::{Value as Json, json};

/// The function name of quicklooks in the cache.
pub const FUNCTION: &str = "quicklook";

/// An RGBA picture, row-major.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quicklook {
    /// Pixels across.
    pub width: usize,
    /// Pixels down.
    pub height: usize,
    /// 4 bytes per pixel; nodata is transparent.
    pub rgba: Vec<u8>,
}

impl Storable for Quicklook {
    fn to_stored(&self) -> (Array, Json) {
        let array = Array::from_le_bytes(
            DType::U8,
            vec![self.height, self.width, 4],
            self.rgba.clone(),
        );
        // The length matches the shape by construction.
        let (fallback, _) = Vec::<u8>::new().to_stored();
        (array.unwrap_or(fallback), Json::Null)
    }

    fn from_stored(array: Array, _extra: Json) -> Result<Self, NotStored> {
        match array.shape() {
            [h, w, 4] if array.dtype() == DType::U8 => Ok(Self {
                width: *w,
                height: *h,
                rgba: array.le_bytes().to_vec(),
            }),
            other => Err(format!("not a picture: {} {other:?}", array.dtype()).into()),
        }
    }
}

/// The quicklook of `store`, at most `size` pixels on its longer side:
/// from `cache` when it holds this state's, else rendered (and kept there).
/// `Ok(None)` for a store without data.
///
/// # Errors
/// Read failures, as one line naming the store.
pub fn quicklook(
    store: &Store,
    size: usize,
    cache: Option<&FunctionCache>,
) -> Result<Option<Cached<Quicklook>>, String> {
    let fail = |e: crate::engine::EngineError| format!("{}: {e}", store.location());
    let token = match cache {
        Some(_) => store.state_token().map_err(fail)?,
        None => None,
    };
    let render = || with_dtype!(store.structure().dtype, T => render::<T>(store, size));
    let (Some(cache), Some(token)) = (cache, token) else {
        return Ok(render()?.map(|value| Cached {
            value,
            hit: false,
            problem: None,
        }));
    };
    let args = json!({
        "store": token,
        "at": store.place(),
        "size": size,
        "colours": "viridis 2-98 %",
        "gridstore": env!("CARGO_PKG_VERSION"),
    });
    // A store without data has no picture: nothing to keep.
    let mut empty = false;
    let render_some = || match render() {
        Ok(Some(q)) => Ok(q),
        Ok(None) => {
            empty = true;
            Err(String::new())
        }
        Err(e) => Err(e),
    };
    // Served while every chunk it was drawn from holds (see `engine::catalogue::sources`).
    let cached = cache.call_from(FUNCTION, &args, render_some, store);
    match cached {
        Ok(c) => Ok(Some(c)),
        Err(_) if empty => Ok(None),
        Err(e) => Err(e),
    }
}

fn render<T: Element>(store: &Store, size: usize) -> Result<Option<Quicklook>, String> {
    let fail = |e: crate::engine::EngineError| format!("{}: {e}", store.location());
    let t = store.time_indices().first().copied().unwrap_or(0);
    let Some(window) = store.data_window::<T>(t).map_err(fail)? else {
        return Ok(None);
    };
    let grid = store.grid();
    let extent = grid.window_extent(0, &window);
    let side = extent.width().max(extent.height());
    let cell = side / size.max(1) as f64;
    let level = store.level_for([cell, cell]);
    let method = if store.structure().aggregate.is_categorical() {
        Resampling::Nearest
    } else {
        Resampling::Average
    };
    let raster = store
        .read_extent_at::<T>(t, level, &extent, [cell, cell], method)
        .map_err(fail)?;
    let (_, height, width) = raster.data.dim();
    let palette = store.palette();
    let rgba = crate::render::quicklook_rgba(
        &raster.data.view(),
        store.nodata::<T>(),
        palette.as_deref(),
        &store.band_info(),
    );
    Ok(Some(Quicklook {
        width,
        height,
        rgba,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_picture_comes_back_from_storage() {
        let q = Quicklook {
            width: 3,
            height: 2,
            rgba: (0..24).collect(),
        };
        let (a, e) = q.to_stored();
        assert_eq!(Quicklook::from_stored(a, e).unwrap(), q);
        let (a, e) = vec![1u8, 2, 3].to_stored();
        assert!(Quicklook::from_stored(a, e).is_err());
    }
}
