//! PNG quicklooks: colour-mapped through `render`, with a world file and,
//! as GDAL keeps the CRS of a format that has no place for one, a
//! `.aux.xml` beside it.

use super::Written;
use crate::engine::{BandInfo, Element, Nodata, Palette, Raster};
use crate::gdal_io::OutputError;
use crate::render::quicklook_rgba;
use std::path::Path;

/// Writes `raster` as an RGBA PNG: through the colour table when given,
/// else viridis (one band) or a composite (the bands `info` gives red, green
/// and blue, else 1–3) over a 2–98 % stretch; nodata transparent.
///
/// # Errors
/// The image cannot be written.
pub fn write_png<T: Element>(
    raster: &Raster<T>,
    nodata: Nodata<T>,
    palette: Option<&Palette>,
    info: &[BandInfo],
    path: &Path,
) -> Result<Written, OutputError> {
    let view = raster.data.view();
    let (_, rows, cols) = raster.data.dim();
    let rgba = quicklook_rgba(&view, nodata, palette, info);
    let too_large = |_| OutputError::Format(format!("a {cols} x {rows} PNG is too large"));
    let w = u32::try_from(cols).map_err(too_large)?;
    let h = u32::try_from(rows).map_err(too_large)?;
    image::save_buffer_with_format(
        path,
        &rgba,
        w,
        h,
        image::ExtendedColorType::Rgba8,
        image::ImageFormat::Png,
    )?;
    let has_data = view.iter().any(|v| v.is_valid(nodata));
    Ok(Written {
        size: (cols, rows),
        has_data,
    })
}

/// Writes the georeferencing of the PNG at `png`: its `.pgw` world file
/// (cell-centre origin) and, through GDAL, the `.aux.xml` that holds its
/// CRS (and geotransform), so that GDAL tools see both.
///
/// # Errors
/// A file cannot be written.
pub fn write_georeference(
    gt: &[f64; 6],
    srs: &gdal::spatial_ref::SpatialRef,
    png: &Path,
) -> Result<(), OutputError> {
    write_world_file(gt, png)?;
    // GDAL keeps what a PNG cannot hold in its auxiliary file, written as
    // the dataset closes.
    let mut dataset = gdal::Dataset::open(png)?;
    dataset.set_spatial_ref(srs)?;
    dataset.set_geo_transform(gt)?;
    dataset.close()?;
    let aux = aux_xml_path(png);
    if !aux.exists() {
        return Err(OutputError::Format(format!(
            "GDAL wrote no {}",
            aux.display()
        )));
    }
    Ok(())
}

/// Where GDAL keeps the auxiliary metadata of the file at `path`.
#[must_use]
pub fn aux_xml_path(path: &Path) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".aux.xml");
    name.into()
}

/// Writes the `.pgw` world file of a PNG at `png` (cell-centre origin).
///
/// # Errors
/// The file cannot be written.
fn write_world_file(gt: &[f64; 6], png: &Path) -> Result<(), OutputError> {
    let world = format!(
        "{}\n0\n0\n{}\n{}\n{}\n",
        gt[1],
        gt[5],
        gt[0] + gt[1] / 2.0,
        gt[3] + gt[5] / 2.0
    );
    Ok(std::fs::write(png.with_extension("pgw"), world)?)
}
