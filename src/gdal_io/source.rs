//! Opening a source raster and describing it in the store's terms.

use super::nodata::choose_nodata;
use super::time_steps::TimeSteps;
use super::{IoError, dtype_of};
use crate::engine::persistence::band_info::{BandInfo, ColourRole};
use crate::engine::persistence::palette::MAX_PALETTE_ENTRIES;
use crate::engine::{
    Aggregator, Codec, Crs, DType, Palette, Resampling, Structure, TimeAxis, domain_levels_covering,
};
use gdal::Dataset;
use gdal::spatial_ref::{AxisMappingStrategy, SpatialRef};
use std::path::{Path, PathBuf};

/// A georeferenced source raster, checked on open.
#[derive(Debug)]
pub struct Source {
    /// The file.
    pub path: PathBuf,
    /// Its geotransform.
    pub geotransform: [f64; 6],
    /// Its CRS.
    pub srs: SpatialRef,
    /// Width and height in pixels.
    pub size: (usize, usize),
    /// Number of bands.
    pub bands: usize,
    /// Cell type of band 1 (`None` for types the store cannot hold).
    pub dtype: Option<DType>,
    /// GDAL's name of band 1's type.
    pub gdal_type: String,
    /// Nodata of band 1.
    pub nodata: Option<f64>,
    /// Band 1's colour table as RGBA per value (categorical data).
    pub colors: Option<Palette>,
    /// What each band is: its description, unit and colour interpretation
    /// (empty fields where GDAL knows nothing).
    pub band_info: Vec<BandInfo>,
    /// Whether the raster has no CRS of its own and `srs` is the one
    /// assumed for it.
    pub crs_assumed: bool,
}

/// The keyword a WKT definition starts with, upper case (`PROJCS`,
/// `GEOGCRS`, `COMPD_CS` …): what kind of CRS it is, known without
/// parsing it (and so without opening the PROJ database).
#[must_use]
pub fn wkt_keyword(wkt: &str) -> String {
    wkt.trim_start()
        .split('[')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_uppercase()
}

/// A spatial reference with x/y (easting, northing) axis order.
///
/// # Errors
/// GDAL cannot parse the definition.
pub fn srs_from(definition: &str) -> Result<SpatialRef, gdal::errors::GdalError> {
    let mut srs = SpatialRef::from_definition(definition)?;
    srs.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    Ok(srs)
}

/// The store [`Crs`] of a spatial reference.
#[must_use]
pub fn crs_of(srs: &SpatialRef) -> Crs {
    let wkt = srs.to_wkt().unwrap_or_default();
    let epsg = srs
        .auth_name()
        .filter(|a| a.eq_ignore_ascii_case("EPSG"))
        .and_then(|_| srs.auth_code().ok())
        .and_then(|c| u32::try_from(c).ok());
    Crs {
        wkt,
        epsg,
        name: srs.name().unwrap_or_default(),
    }
}

/// What each band of `dataset` is, as GDAL describes it.
fn band_info_of(dataset: &gdal::Dataset) -> Vec<BandInfo> {
    use gdal::Metadata as _;
    use gdal::raster::ColorInterpretation as C;
    let text = |s: String| {
        let s = s.trim().to_string();
        (!s.is_empty()).then_some(s)
    };
    (1..=dataset.raster_count())
        .map(|b| {
            let Ok(band) = dataset.rasterband(b) else {
                return BandInfo::default();
            };
            let colour = match band.color_interpretation() {
                C::RedBand => Some(ColourRole::Red),
                C::GreenBand => Some(ColourRole::Green),
                C::BlueBand => Some(ColourRole::Blue),
                C::AlphaBand => Some(ColourRole::Alpha),
                C::GrayIndex => Some(ColourRole::Gray),
                C::PaletteIndex => Some(ColourRole::Palette),
                _ => None,
            };
            BandInfo {
                name: text(band.description().unwrap_or_default()),
                unit: text(band.unit()),
                colour,
            }
        })
        .collect()
}

/// A GDAL colour table as a store palette (`None` when it has no RGB form).
fn palette_of(table: &gdal::raster::ColorTable<'_>) -> Option<Palette> {
    let channel = |v: i16| u8::try_from(v.clamp(0, 255)).unwrap_or(u8::MAX);
    let colors = (0..table.entry_count().min(MAX_PALETTE_ENTRIES))
        .map(|i| {
            table
                .entry_as_rgb(i)
                .map(|e| [channel(e.r), channel(e.g), channel(e.b), channel(e.a)])
        })
        .collect::<Option<Vec<_>>>()?;
    Palette::new(colors).ok()
}

/// Why text names no CRS.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CrsError {
    /// Nothing was given.
    #[error("enter an EPSG code (e.g. EPSG:4326) or WKT")]
    Empty,
    /// GDAL does not know it.
    #[error("unknown CRS '{0}'")]
    Unknown(String),
}

/// A CRS typed by a user — an EPSG code (`EPSG:4326`, or just `4326`), WKT
/// or a PROJ string — with its area of use in its own units.
///
/// # Errors
/// [`CrsError`] when the text names none.
pub fn resolve_crs(text: &str) -> Result<(Crs, Option<[f64; 4]>), CrsError> {
    if text.trim().is_empty() {
        return Err(CrsError::Empty);
    }
    let srs = parse_crs(text)?;
    Ok((crs_of(&srs), area_of_use(&srs)))
}

/// Whether `path` is a GDAL connection string naming a part of a file
/// (`NETCDF:"file.nc":variable`, `HDF5:…`, `/vsizip/…`) rather than a file.
pub fn is_connection(path: &Path) -> bool {
    let text = path.to_string_lossy();
    text.starts_with("/vsi")
        || text.starts_with("vrt://")
        || text.split_once(':').is_some_and(|(driver, rest)| {
            !driver.is_empty()
                && driver
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
                && !rest.is_empty()
        })
}

impl Source {
    /// Opens and checks a source. A raster without a CRS is taken to be in
    /// `assumed` when one is given (the source's own CRS always wins).
    ///
    /// # Errors
    /// [`IoError::NotARaster`] or [`IoError::NoGeoreference`].
    pub fn open(path: &Path, assumed: Option<&SpatialRef>) -> Result<(Self, Dataset), IoError> {
        if let Err(e) = std::fs::metadata(path)
            && !is_connection(path)
        {
            return Err(IoError::NotARaster {
                path: path.into(),
                reason: e.to_string(),
            });
        }
        let dataset = Dataset::open(path).map_err(|e| IoError::NotARaster {
            path: path.into(),
            reason: gdal_reason(&e),
        })?;
        if dataset.raster_count() == 0 {
            return Err(IoError::NotARaster {
                path: path.into(),
                reason: "it has no raster bands".into(),
            });
        }
        let geotransform = dataset
            .geo_transform()
            .map_err(|_| IoError::NoGeoreference {
                path: path.into(),
                what: "no geotransform",
            })?;
        let own = dataset.spatial_ref();
        let crs_assumed = own.is_err();
        let mut srs = match (own, assumed) {
            (Ok(srs), _) => srs,
            (Err(_), Some(assumed)) => assumed.clone(),
            (Err(_), None) => {
                return Err(IoError::NoGeoreference {
                    path: path.into(),
                    what: "no coordinate reference system",
                });
            }
        };
        srs.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
        let band = dataset.rasterband(1).map_err(|e| IoError::Read {
            path: path.into(),
            reason: e.to_string(),
        })?;
        let band_type = band.band_type();
        let source = Self {
            path: path.into(),
            geotransform,
            srs,
            size: dataset.raster_size(),
            bands: dataset.raster_count(),
            dtype: dtype_of(band_type),
            gdal_type: band_type.name(),
            nodata: band.no_data_value(),
            colors: band.color_table().and_then(|table| palette_of(&table)),
            band_info: band_info_of(&dataset),
            crs_assumed,
        };
        Ok((source, dataset))
    }

    /// Whether the raster is north-up with no rotation.
    #[must_use]
    pub fn is_north_up(&self) -> bool {
        let gt = self.geotransform;
        gt[2] == 0.0 && gt[4] == 0.0 && gt[1] > 0.0 && gt[5] < 0.0
    }

    /// The raster's extent in its own CRS: `[min_x, min_y, max_x, max_y]`.
    #[must_use]
    pub fn bounds(&self) -> [f64; 4] {
        let gt = self.geotransform;
        let (w, h) = (self.size.0 as f64, self.size.1 as f64);
        let xs = [
            gt[0],
            gt[0] + w * gt[1],
            gt[0] + h * gt[2],
            gt[0] + w * gt[1] + h * gt[2],
        ];
        let ys = [
            gt[3],
            gt[3] + w * gt[4],
            gt[3] + h * gt[5],
            gt[3] + w * gt[4] + h * gt[5],
        ];
        let min = |v: [f64; 4]| v.into_iter().fold(f64::INFINITY, f64::min);
        let max = |v: [f64; 4]| v.into_iter().fold(f64::NEG_INFINITY, f64::max);
        [min(xs), min(ys), max(xs), max(ys)]
    }
}

/// What `create --like` takes from the user over the raster's own.
#[derive(Debug, Clone, Default)]
pub struct LikeOverrides {
    /// The CRS of a raster that has none (EPSG code, WKT or PROJ).
    pub crs: Option<String>,
    /// The store's cell type.
    pub dtype: Option<DType>,
    /// The store's nodata, instead of the raster's or a chosen one:
    /// `Some(None)` for none (every value is data).
    #[allow(clippy::option_option)]
    pub nodata: Option<Option<f64>>,
}

/// A structure modelled on a raster, and what was decided for it.
#[derive(Debug, Clone)]
pub struct Like {
    /// The structure.
    pub structure: Structure,
    /// How the nodata value was chosen, when the raster declares none.
    pub nodata_note: Option<String>,
    /// The time axis taken from the raster's time dimension, when it has
    /// one (its bands are then instants, not bands).
    pub time_note: Option<String>,
}

/// A structure modelled on a raster: its CRS, cell size, dtype and nodata,
/// anchored at its top-left corner, so that it ingests without resampling.
/// A raster without a nodata value gets one that none of its cells holds
/// (see [`choose_nodata`]), so that no value is lost.
///
/// # Errors
/// The raster cannot be opened, is not north-up, has a cell type the store
/// cannot hold, has no CRS and none is given, or has a CRS other than the
/// one given.
pub fn structure_like(path: &Path, overrides: &LikeOverrides) -> Result<Like, IoError> {
    let assumed = overrides
        .crs
        .as_deref()
        .map(|text| {
            parse_crs(text).map_err(|e| IoError::Mismatch {
                path: path.into(),
                reason: e.to_string(),
            })
        })
        .transpose()?;
    let (source, dataset) = Source::open(path, assumed.as_ref())?;
    let steps = TimeSteps::of(&dataset, path)?;
    drop(dataset);
    if let Some(assumed) = &assumed
        && source.srs != *assumed
    {
        return Err(IoError::Mismatch {
            path: path.into(),
            reason: format!(
                "has its own CRS ({}), which --crs would contradict; leave out --crs to use it (--crs names the CRS of a raster that has none)",
                describe(&source.srs)
            ),
        });
    }
    if !source.is_north_up() {
        return Err(IoError::Mismatch {
            path: path.into(),
            reason:
                "is rotated or not north-up; give --crs, --cell-size and --origin instead of --like"
                    .into(),
        });
    }
    let dtype = match overrides.dtype.or(source.dtype) {
        Some(dtype) => dtype,
        None => {
            return Err(IoError::Mismatch {
                path: path.into(),
                reason: format!(
                    "cell type {} is not supported; give --dtype",
                    source.gdal_type
                ),
            });
        }
    };
    let declared = source.nodata.filter(|v| dtype.holds(*v));
    let (dtype, nodata, nodata_note) = match (overrides.nodata, declared) {
        (Some(nodata), _) => (dtype, nodata, None),
        (None, Some(nodata)) => (dtype, Some(nodata), None),
        (None, None) => {
            let choice = choose_nodata(path, dtype).map_err(|e| IoError::Read {
                path: path.into(),
                reason: gdal_reason(&e),
            })?;
            (choice.dtype, Some(choice.nodata), Some(choice.note))
        }
    };
    let gt = source.geotransform;
    let mut structure = structure_for(
        &source.srs,
        ([gt[0], gt[3]], [gt[1], -gt[5]]),
        (dtype, nodata),
        source.colors.is_some(),
        steps
            .as_ref()
            .map_or(source.bands, TimeSteps::bands_per_step),
    );
    let time_note = steps.map(|steps| {
        let axis = steps.axis();
        let first = steps.instants.first().copied().unwrap_or(0);
        let how = match axis {
            TimeAxis::Regular { step, .. } => format!(
                "a regular axis from {} every {step} s",
                crate::engine::grid::time::format_instant(first)
            ),
            TimeAxis::Irregular => "an irregular axis (its steps differ)".to_string(),
        };
        structure.time = Some(axis);
        format!("{}: {} instants, {how}", steps.source, steps.instants.len())
    });
    Ok(Like {
        structure,
        nodata_note,
        time_note,
    })
}

/// The structure of a store for a raster in `srs` whose top-left corner and
/// cell size are `place`, of `cells` (type and nodata), with `bands` bands:
/// 256² chunks, a domain covering the CRS's area of use, the default codec,
/// and means (the most common class, for categorical data) above.
#[must_use]
pub fn structure_for(
    srs: &SpatialRef,
    (anchor, cell): ([f64; 2], [f64; 2]),
    (dtype, nodata): (DType, Option<f64>),
    categorical: bool,
    bands: usize,
) -> Structure {
    let chunk = [256, 256];
    Structure {
        crs: crs_of(srs),
        anchor,
        cell_size: cell,
        chunk,
        domain_levels: domain_levels_for(srs, anchor, cell, chunk),
        dtype,
        nodata,
        codec: Codec::default(),
        aggregate: if categorical {
            Aggregator::Mode
        } else {
            Aggregator::Mean
        },
        resampling: if categorical {
            Resampling::Nearest
        } else {
            Resampling::Average
        },
        bands: (bands > 1).then(|| u32::try_from(bands).unwrap_or(u32::MAX)),
        time: None,
        time_levels: Vec::new(),
    }
}

/// A CRS for people: its name, or its PROJ definition when it has no name.
fn describe(srs: &SpatialRef) -> String {
    srs.name()
        .filter(|n| !n.is_empty() && !n.eq_ignore_ascii_case("unknown"))
        .or_else(|| srs.to_proj4().ok())
        .unwrap_or_else(|| "unnamed".into())
}

/// A CRS typed by a user, as a spatial reference.
///
/// # Errors
/// [`CrsError::Unknown`] when GDAL does not know it.
pub fn parse_crs(text: &str) -> Result<SpatialRef, CrsError> {
    let text = text.trim();
    let definition = if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        format!("EPSG:{text}")
    } else {
        text.to_string()
    };
    srs_from(&definition).map_err(|_| CrsError::Unknown(text.to_string()))
}

/// The fewest domain levels whose domain, centred on `anchor`, covers the
/// CRS's area of use (see [`domain_levels_covering`]).
#[must_use]
pub fn domain_levels_for(
    srs: &SpatialRef,
    anchor: [f64; 2],
    cell: [f64; 2],
    chunk: [u32; 2],
) -> u8 {
    domain_levels_covering(area_of_use(srs), anchor, cell, chunk)
}

/// The CRS's area of use in its own units (min x, min y, max x, max y), if
/// GDAL knows one.
#[must_use]
pub fn area_of_use(srs: &SpatialRef) -> Option<[f64; 4]> {
    // A CRS without an authority code may still match one (e.g. a GeoTIFF's
    // own UTM definition); its area of use then bounds the domain.
    let area = srs.area_of_use().or_else(|| {
        // Built from WKT, a CRS may carry its code but not its usage: ask
        // PROJ's database for the CRS of that code.
        let code = srs
            .auth_code()
            .ok()
            .filter(|_| {
                srs.auth_name()
                    .is_some_and(|a| a.eq_ignore_ascii_case("EPSG"))
            })
            .or_else(|| identified(srs).and_then(|s| s.auth_code().ok()))?;
        SpatialRef::from_epsg(u32::try_from(code).ok()?)
            .ok()?
            .area_of_use()
    })?;
    let mut wgs84 = SpatialRef::from_epsg(4326).ok()?;
    wgs84.set_axis_mapping_strategy(AxisMappingStrategy::TraditionalGisOrder);
    let bounds = [
        area.west_lon_degree,
        area.south_lat_degree,
        area.east_lon_degree,
        area.north_lat_degree,
    ];
    gdal::spatial_ref::CoordTransform::new(&wgs84, srs)
        .ok()?
        .transform_bounds(&bounds, 21)
        .ok()
}

/// The CRS with its EPSG identity filled in, if GDAL can tell it.
fn identified(srs: &SpatialRef) -> Option<SpatialRef> {
    let mut copy = srs.clone();
    copy.auto_identify_epsg().ok()?;
    Some(copy)
}

/// GDAL's own explanation of an error, or a plain one when it gave none.
pub(crate) fn gdal_reason(error: &gdal::errors::GdalError) -> String {
    let text = one_line(&error.to_string());
    let lower = text.to_ascii_lowercase();
    match lower
        .find("error msg: '")
        .map(|i| text.split_at(i + "error msg: '".len()))
    {
        Some((_, rest)) if !rest.trim_end_matches(['\'', ')']).is_empty() => {
            rest.trim_end_matches(['\'', ')']).to_string()
        }
        Some(_) => "format not recognised".into(),
        None => text,
    }
}

/// The first line of a (possibly multi-line) GDAL message.
#[must_use]
pub fn one_line(text: &str) -> String {
    text.lines().next().unwrap_or(text).trim().to_string()
}
