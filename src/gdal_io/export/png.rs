//! PNG quicklooks: colour-mapped through `render`, with a world file.

use super::Written;
use crate::engine::{Element, Palette, Raster};
use crate::render::quicklook_rgba;
use std::path::Path;

/// Writes `raster` as an RGBA PNG: through the colour table when given,
/// else viridis over a 2–98 % stretch; nodata transparent.
///
/// # Errors
/// The image cannot be written.
pub fn write_png<T: Element>(
    raster: &Raster<T>,
    nodata: T,
    palette: Option<&Palette>,
    path: &Path,
) -> Result<Written, String> {
    let view = raster.data.view();
    let (_, rows, cols) = raster.data.dim();
    let rgba = quicklook_rgba(&view, nodata, palette);
    let w = u32::try_from(cols).map_err(|e| e.to_string())?;
    let h = u32::try_from(rows).map_err(|e| e.to_string())?;
    image::save_buffer_with_format(
        path,
        &rgba,
        w,
        h,
        image::ExtendedColorType::Rgba8,
        image::ImageFormat::Png,
    )
    .map_err(|e| e.to_string())?;
    let has_data = view
        .iter()
        .any(|v| crate::engine::aggregate::is_valid(*v, nodata));
    Ok(Written {
        size: (cols, rows),
        has_data,
    })
}

/// Writes the `.pgw` world file of a PNG at `png` (cell-centre origin).
///
/// # Errors
/// The file cannot be written.
pub fn write_world_file(gt: &[f64; 6], png: &Path) -> Result<(), String> {
    let world = format!(
        "{}\n0\n0\n{}\n{}\n{}\n",
        gt[1],
        gt[5],
        gt[0] + gt[1] / 2.0,
        gt[3] + gt[5] / 2.0
    );
    std::fs::write(png.with_extension("pgw"), world).map_err(|e| e.to_string())
}
