//! The text of every structure field as typed in the editor, and its
//! checking: each field's own error, then the whole structure's.
//!
//! Pure: the CRS arrives already resolved by GDAL (see `editor`), so the
//! form checks on every frame without I/O.

use crate::engine::grid::time::{format_instant, parse_instant, parse_step};
use crate::engine::{
    Aggregator, Codec, Crs, DType, MAX_DOMAIN_LEVELS, Resampling, Structure, StructureError,
    TimeAxis, domain_levels_covering,
};
use crate::format::short_number;
use std::collections::BTreeMap;

/// A field of the form, as errors name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Field {
    /// The CRS.
    Crs,
    /// The origin (anchor).
    Origin,
    /// The base cell size.
    CellSize,
    /// The chunk shape.
    Chunk,
    /// The nodata value.
    Nodata,
    /// The codec and its level.
    Codec,
    /// The band count.
    Bands,
    /// The time axis.
    Time,
    /// The domain levels.
    DomainLevels,
}

/// The codec families the editor offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodecKind {
    /// Zstandard with a level.
    Zstd,
    /// LZ4.
    Lz4,
    /// Uncompressed.
    None,
}

/// The time axis kinds the editor offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeKind {
    /// No time axis.
    None,
    /// Equidistant instants from an origin.
    Regular,
    /// Instants in any order (non-equidistant).
    Irregular,
}

/// A CRS that GDAL resolved from the CRS field.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedCrs {
    /// The store CRS.
    pub crs: Crs,
    /// Its area of use in its own units, if known.
    pub area: Option<[f64; 4]>,
}

/// The text of every field.
#[derive(Debug, Clone, PartialEq)]
pub struct Form {
    /// EPSG code, WKT or PROJ string.
    pub crs: String,
    /// Origin x and y.
    pub origin: [String; 2],
    /// Cell width and height.
    pub cell: [String; 2],
    /// Chunk width and height in cells.
    pub chunk: [String; 2],
    /// The cell type.
    pub dtype: DType,
    /// Nodata; empty means the type's default.
    pub nodata: String,
    /// The pyramid aggregator.
    pub aggregate: Aggregator,
    /// The warp resampling.
    pub resampling: Resampling,
    /// The codec family.
    pub codec: CodecKind,
    /// The zstd level.
    pub zstd_level: String,
    /// Band count; empty means no band axis.
    pub bands: String,
    /// The time axis kind.
    pub time: TimeKind,
    /// A regular axis's origin instant.
    pub time_origin: String,
    /// A regular axis's step (`3600`, `1h`, `1d`…).
    pub time_step: String,
    /// Domain levels; empty means "cover the CRS's area of use".
    pub domain_levels: String,
}

impl Default for Form {
    fn default() -> Self {
        Self {
            crs: String::new(),
            origin: ["0".into(), "0".into()],
            cell: ["1".into(), "1".into()],
            chunk: ["256".into(), "256".into()],
            dtype: DType::F32,
            nodata: String::new(),
            aggregate: Aggregator::Mean,
            resampling: Resampling::Average,
            codec: CodecKind::Zstd,
            zstd_level: "3".into(),
            bands: String::new(),
            time: TimeKind::None,
            time_origin: "2000-01-01".into(),
            time_step: "1d".into(),
            domain_levels: String::new(),
        }
    }
}

/// What checking the form found.
#[derive(Debug, Clone, Default)]
pub struct Checked {
    /// Each bad field and why.
    pub errors: BTreeMap<Field, String>,
    /// The structure, when every field is good.
    pub structure: Option<Structure>,
}

impl Form {
    /// The form showing `s`. Domain levels are explicit, so that the
    /// structure reads back exactly.
    #[must_use]
    pub fn from_structure(s: &Structure) -> Self {
        let (codec, zstd_level) = match s.codec {
            Codec::Zstd { level } => (CodecKind::Zstd, level.to_string()),
            Codec::Lz4 => (CodecKind::Lz4, "3".into()),
            Codec::None => (CodecKind::None, "3".into()),
        };
        let (time, time_origin, time_step) = match &s.time {
            None => (TimeKind::None, "2000-01-01".into(), "1d".into()),
            Some(TimeAxis::Irregular) => (TimeKind::Irregular, "2000-01-01".into(), "1d".into()),
            Some(TimeAxis::Regular { origin, step }) => {
                (TimeKind::Regular, format_instant(*origin), step.to_string())
            }
        };
        Self {
            crs: s
                .crs
                .epsg
                .map_or_else(|| s.crs.wkt.clone(), |c| format!("EPSG:{c}")),
            origin: s.anchor.map(|v| v.to_string()),
            cell: s.cell_size.map(|v| v.to_string()),
            chunk: s.chunk.map(|v| v.to_string()),
            dtype: s.dtype,
            nodata: s.nodata_text(),
            aggregate: s.aggregate,
            resampling: s.resampling,
            codec,
            zstd_level,
            bands: s.bands.map_or_else(String::new, |b| b.to_string()),
            time,
            time_origin,
            time_step,
            domain_levels: s.domain_levels.to_string(),
        }
    }

    /// Checks every field; `crs` is GDAL's reading of the CRS field (`None`
    /// while it is being read).
    #[must_use]
    pub fn check(&self, crs: Option<&Result<ResolvedCrs, String>>) -> Checked {
        let mut errors = BTreeMap::new();
        let resolved = match crs {
            None => Err("checking with GDAL…".to_string()),
            Some(Ok(r)) => Ok(r.clone()),
            Some(Err(e)) => Err(e.clone()),
        };
        note(&mut errors, Field::Crs, &resolved);
        let origin = pair(&self.origin, |v| v.is_finite(), "a finite number");
        note(&mut errors, Field::Origin, &origin);
        let cell = pair(
            &self.cell,
            |v| v.is_finite() && v > 0.0,
            "a positive number",
        );
        note(&mut errors, Field::CellSize, &cell);
        let chunk = chunk_shape(&self.chunk);
        note(&mut errors, Field::Chunk, &chunk);
        let nodata = self.nodata();
        note(&mut errors, Field::Nodata, &nodata);
        let codec = self.codec();
        note(&mut errors, Field::Codec, &codec);
        let bands = self.bands();
        note(&mut errors, Field::Bands, &bands);
        let time = self.time_axis();
        note(&mut errors, Field::Time, &time);
        let levels = match (&origin, &cell, &chunk) {
            (Ok(o), Ok(c), Ok(k)) => {
                self.domain_levels(resolved.as_ref().ok().and_then(|r| r.area), *o, *c, *k)
            }
            _ => Err("needs a valid origin, cell size and chunk".into()),
        };
        note(&mut errors, Field::DomainLevels, &levels);
        let (
            Ok(resolved),
            Ok(anchor),
            Ok(cell_size),
            Ok(chunk),
            Ok(nodata),
            Ok(codec),
            Ok(bands),
            Ok(time),
            Ok(domain_levels),
        ) = (
            resolved, origin, cell, chunk, nodata, codec, bands, time, levels,
        )
        else {
            return Checked {
                errors,
                structure: None,
            };
        };
        let structure = Structure {
            crs: resolved.crs,
            anchor,
            cell_size,
            chunk,
            domain_levels,
            dtype: self.dtype,
            nodata,
            codec,
            aggregate: self.aggregate,
            resampling: self.resampling,
            bands,
            time,
            time_levels: Vec::new(),
        };
        match structure.validate() {
            Ok(()) => Checked {
                errors,
                structure: Some(structure),
            },
            Err(StructureError::Invalid { field, reason }) => {
                errors.insert(field_named(field), reason);
                Checked {
                    errors,
                    structure: None,
                }
            }
        }
    }

    /// A one-line description of the pyramid and domain the form gives.
    #[must_use]
    pub fn describe(structure: &Structure) -> String {
        let cells = |axis: usize| {
            f64::from(structure.chunk[axis]) * 2f64.powi(structure.domain_levels.into())
        };
        format!(
            "{} levels; domain {} × {} (CRS units) centred on the origin",
            u32::from(structure.domain_levels) + 1,
            short_number(cells(0) * structure.cell_size[0]),
            short_number(cells(1) * structure.cell_size[1]),
        )
    }

    fn nodata(&self) -> Result<Option<f64>, String> {
        let text = self.nodata.trim();
        let value = if text.is_empty() {
            self.dtype.default_nodata()
        } else if text.eq_ignore_ascii_case("nan") {
            f64::NAN
        } else if text.eq_ignore_ascii_case("none") {
            // Every value is data; a float store keeps NaN for empty cells.
            return Ok(self.dtype.is_float().then_some(f64::NAN));
        } else {
            number(text)?
        };
        if self.dtype.holds(value) {
            Ok(Some(value))
        } else {
            Err(format!("{text} does not fit {}", self.dtype))
        }
    }

    fn codec(&self) -> Result<Codec, String> {
        Ok(match self.codec {
            CodecKind::Lz4 => Codec::Lz4,
            CodecKind::None => Codec::None,
            CodecKind::Zstd => {
                let level: i32 = self
                    .zstd_level
                    .trim()
                    .parse()
                    .map_err(|_| "zstd level must be a whole number 1 to 22".to_string())?;
                if !(1..=22).contains(&level) {
                    return Err("zstd level must be 1 to 22".into());
                }
                Codec::Zstd { level }
            }
        })
    }

    fn bands(&self) -> Result<Option<u32>, String> {
        let text = self.bands.trim();
        if text.is_empty() {
            return Ok(None);
        }
        match text.parse::<u32>() {
            Ok(b) if (1..=4096).contains(&b) => Ok(Some(b)),
            _ => Err("bands must be empty (no band axis) or 1 to 4096".into()),
        }
    }

    fn time_axis(&self) -> Result<Option<TimeAxis>, String> {
        match self.time {
            TimeKind::None => Ok(None),
            TimeKind::Irregular => Ok(Some(TimeAxis::Irregular)),
            TimeKind::Regular => {
                let axis = TimeAxis::Regular {
                    origin: parse_instant(self.time_origin.trim()).map_err(|e| e.to_string())?,
                    step: parse_step(&self.time_step).map_err(|e| e.to_string())?,
                };
                axis.validate().map_err(|e| e.to_string())?;
                Ok(Some(axis))
            }
        }
    }

    fn domain_levels(
        &self,
        area: Option<[f64; 4]>,
        anchor: [f64; 2],
        cell: [f64; 2],
        chunk: [u32; 2],
    ) -> Result<u8, String> {
        let text = self.domain_levels.trim();
        if text.is_empty() {
            return Ok(domain_levels_covering(area, anchor, cell, chunk));
        }
        match text.parse::<u8>() {
            Ok(d) if (1..=MAX_DOMAIN_LEVELS).contains(&d) => Ok(d),
            _ => Err(format!(
                "must be empty (cover the CRS's area of use) or 1 to {MAX_DOMAIN_LEVELS}"
            )),
        }
    }
}

/// Records `result`'s error against `field` (the first error per field wins).
fn note<T>(errors: &mut BTreeMap<Field, String>, field: Field, result: &Result<T, String>) {
    if let Err(e) = result {
        errors.entry(field).or_insert_with(|| e.clone());
    }
}

fn number(text: &str) -> Result<f64, String> {
    text.trim()
        .parse::<f64>()
        .map_err(|_| format!("'{}' is not a number", text.trim()))
}

fn pair(texts: &[String; 2], good: impl Fn(f64) -> bool, what: &str) -> Result<[f64; 2], String> {
    let mut out = [0.0; 2];
    for (slot, text) in out.iter_mut().zip(texts) {
        let v = number(text)?;
        if !good(v) {
            return Err(format!("{} must be {what}", text.trim()));
        }
        *slot = v;
    }
    Ok(out)
}

fn chunk_shape(texts: &[String; 2]) -> Result<[u32; 2], String> {
    let mut out = [0; 2];
    for (slot, text) in out.iter_mut().zip(texts) {
        match text.trim().parse::<u32>() {
            Ok(c) if (2..=8192).contains(&c) && c % 2 == 0 => *slot = c,
            _ => {
                return Err(format!(
                    "'{}': chunk sides must be even, 2 to 8192",
                    text.trim()
                ));
            }
        }
    }
    Ok(out)
}

/// The form field a structure error names.
fn field_named(name: &str) -> Field {
    match name {
        "crs" => Field::Crs,
        "origin" => Field::Origin,
        "cell_size" => Field::CellSize,
        "chunk" => Field::Chunk,
        "nodata" => Field::Nodata,
        "codec" => Field::Codec,
        "bands" => Field::Bands,
        "time" => Field::Time,
        _ => Field::DomainLevels,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Structure {
        Structure {
            crs: Crs {
                wkt: "PROJCS[\"WGS 84 / UTM zone 31N\"]".into(),
                epsg: Some(32631),
                name: "WGS 84 / UTM zone 31N".into(),
            },
            anchor: [500_000.0, 5_000_000.0],
            cell_size: [10.0, 10.0],
            chunk: [256, 128],
            domain_levels: 10,
            dtype: DType::F32,
            // NaN would never compare equal; NaN nodata is checked below.
            nodata: Some(-9999.0),
            codec: Codec::Zstd { level: 5 },
            aggregate: Aggregator::Max,
            resampling: Resampling::Bilinear,
            bands: None,
            time: None,
            time_levels: Vec::new(),
        }
    }

    fn utm() -> Result<ResolvedCrs, String> {
        Ok(ResolvedCrs {
            crs: sample().crs,
            area: Some([166_000.0, 0.0, 834_000.0, 9_330_000.0]),
        })
    }

    #[test]
    fn a_structure_reads_back_through_the_form() {
        let mut s = sample();
        s.time = Some(TimeAxis::Regular {
            origin: 946_684_800,
            step: 3600,
        });
        s.bands = Some(3);
        s.codec = Codec::Lz4;
        let checked = Form::from_structure(&s).check(Some(&utm()));
        assert!(checked.errors.is_empty(), "{:?}", checked.errors);
        assert_eq!(checked.structure.unwrap(), s);
    }

    #[test]
    fn each_bad_field_is_named_with_its_reason() {
        let mut form = Form::from_structure(&sample());
        form.cell[1] = "-2".into();
        form.chunk[0] = "255".into();
        form.dtype = DType::U8;
        form.nodata = "300".into();
        form.zstd_level = "40".into();
        form.bands = "0".into();
        form.time = TimeKind::Regular;
        form.time_step = "1y".into();
        form.domain_levels = "99".into();
        form.origin[0] = "east".into();
        let checked = form.check(Some(&Err("not a CRS GDAL knows".into())));
        assert!(checked.structure.is_none());
        let fields: Vec<Field> = checked.errors.keys().copied().collect();
        assert_eq!(
            fields,
            [
                Field::Crs,
                Field::Origin,
                Field::CellSize,
                Field::Chunk,
                Field::Nodata,
                Field::Codec,
                Field::Bands,
                Field::Time,
                Field::DomainLevels
            ]
        );
        assert!(checked.errors[&Field::Nodata].contains("does not fit u8"));
        assert!(checked.errors[&Field::Chunk].contains("even"));
        assert!(checked.errors[&Field::Origin].contains("'east'"));
    }

    #[test]
    fn empty_fields_take_defaults_and_auto_domain() {
        let mut form = Form::from_structure(&sample());
        form.nodata.clear();
        form.domain_levels.clear();
        form.dtype = DType::I16;
        let s = form.check(Some(&utm())).structure.unwrap();
        assert_eq!(s.nodata, Some(f64::from(i16::MIN)));
        assert_eq!(
            s.domain_levels,
            domain_levels_covering(utm().unwrap().area, s.anchor, s.cell_size, s.chunk)
        );
        assert!(Form::describe(&s).contains("levels"));
        form.dtype = DType::F64;
        form.nodata = "nan".into();
        assert!(
            form.check(Some(&utm()))
                .structure
                .unwrap()
                .nodata
                .unwrap()
                .is_nan()
        );
    }

    #[test]
    fn a_pending_crs_blocks_creation_without_other_errors() {
        let checked = Form::from_structure(&sample()).check(None);
        assert!(checked.structure.is_none());
        assert_eq!(checked.errors.len(), 1);
        assert!(checked.errors[&Field::Crs].contains("checking"));
    }
}
