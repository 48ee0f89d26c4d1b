//! Exports served from the function cache: a request repeated on a store
//! whose contents have not changed (same state token) gets the files the
//! first one wrote, copied out of the cache, without reading the store or
//! running GDAL again.

use super::{ExportFormat, ExportReport, ExportRequest, Resolution};
use crate::engine::{Array, NotStored};
use crate::engine::{DType, Storable};
use crate::gdal_io::IoError;
use serde_json::{Value as Json, json};
use std::path::{Path, PathBuf};

/// The function name of cached exports.
pub const FUNCTION: &str = "export";

/// Largest export kept in the cache, all its files together.
pub const MAX_BYTES: u64 = 256 << 20;

/// An export's files and what its report said.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportedFiles {
    /// Each file: the extension it takes instead of the output's (`None`
    /// for the output itself), and its bytes.
    pub files: Vec<(Option<String>, Vec<u8>)>,
    /// Columns and rows.
    pub size: (usize, usize),
    /// Whether any cell holds data.
    pub has_data: bool,
    /// The level read.
    pub level: u8,
    /// The output geotransform.
    pub geotransform: [f64; 6],
}

impl Storable for ExportedFiles {
    fn to_stored(&self) -> (Array, Json) {
        let bytes: Vec<u8> = self
            .files
            .iter()
            .flat_map(|(_, b)| b.iter().copied())
            .collect();
        let (array, _) = bytes.to_stored();
        let files: Vec<Json> = self
            .files
            .iter()
            .map(|(ext, b)| json!({"extension": ext, "bytes": b.len()}))
            .collect();
        let extra = json!({
            "files": files,
            "size": [self.size.0, self.size.1],
            "has_data": self.has_data,
            "level": self.level,
            "geotransform": self.geotransform,
        });
        (array, extra)
    }

    fn from_stored(array: Array, extra: Json) -> Result<Self, NotStored> {
        if array.dtype() != DType::U8 {
            return Err("not an export's bytes".into());
        }
        let bytes = array.le_bytes();
        let mut at = 0usize;
        let mut files = Vec::new();
        for file in extra["files"].as_array().ok_or("no file list")? {
            let n = usize::try_from(file["bytes"].as_u64().ok_or("a file without its length")?)
                .map_err(|e| e.to_string())?;
            let part = at
                .checked_add(n)
                .and_then(|end| bytes.get(at..end))
                .ok_or("file lengths past the bytes")?;
            let ext = file["extension"].as_str().map(String::from);
            files.push((ext, part.to_vec()));
            at += n;
        }
        if at != bytes.len() {
            return Err("bytes left over after the files".into());
        }
        let number = |v: &Json| v.as_u64().ok_or("a bad number");
        let geotransform: Vec<f64> = extra["geotransform"]
            .as_array()
            .ok_or("no geotransform")?
            .iter()
            .filter_map(Json::as_f64)
            .collect();
        Ok(Self {
            files,
            size: (
                number(&extra["size"][0])? as usize,
                number(&extra["size"][1])? as usize,
            ),
            has_data: extra["has_data"].as_bool().ok_or("no has_data")?,
            level: u8::try_from(number(&extra["level"])?).map_err(|e| e.to_string())?,
            geotransform: geotransform
                .try_into()
                .map_err(|_| "a geotransform of other than 6 numbers")?,
        })
    }
}

/// The cache arguments of `request` on the store at `place` in state
/// `token`: every input the files depend on, including the gridstore and
/// GDAL versions that wrote them.
#[must_use]
pub fn args(token: &str, place: &str, request: &ExportRequest) -> Json {
    let ExportRequest {
        bbox,
        bbox_crs,
        resolution,
        format,
        instant,
        resampling,
        crs,
        snap,
        interpolate,
        allow_empty,
        period,
    } = request;
    json!({
        "store": token,
        "at": place,
        "bbox": bbox,
        "bbox_crs": bbox_crs,
        "resolution": match resolution {
            Resolution::Level(l) => json!({"level": l}),
            Resolution::Cell(c) => json!({"cell": c}),
            Resolution::Size(w, h) => json!({"size": [w, h]}),
        },
        "format": match format {
            ExportFormat::GTiff => "gtiff",
            ExportFormat::Cog => "cog",
            ExportFormat::NetCdf => "netcdf",
            ExportFormat::Png => "png",
        },
        "instant": instant,
        "period": period,
        "resampling": resampling,
        "crs": crs,
        "snap": snap,
        "allow_empty": allow_empty,
        "interpolate": interpolate,
        "gridstore": env!("CARGO_PKG_VERSION"),
        // 2: a PNG's files include its .aux.xml.
        "outputs": 2,
        "gdal": gdal::version::version_info("RELEASE_NAME"),
    })
}

/// The files an export to `out` in `format` writes.
fn file_paths(out: &Path, format: ExportFormat) -> Vec<(Option<String>, PathBuf)> {
    let mut paths = vec![(None, out.to_path_buf())];
    if format == ExportFormat::Png {
        for ext in [WORLD_FILE, AUX_XML] {
            paths.push((Some(ext.into()), sidecar(out, ext)));
        }
    }
    paths
}

/// The world file beside a PNG: its extension replaces the PNG's.
const WORLD_FILE: &str = "pgw";

/// GDAL's auxiliary file: its name is the output's with this appended.
const AUX_XML: &str = "aux.xml";

/// The file beside `out` that `ext` names.
fn sidecar(out: &Path, ext: &str) -> PathBuf {
    if ext == AUX_XML {
        super::png::aux_xml_path(out)
    } else {
        out.with_extension(ext)
    }
}

/// Reads back the files of an export to `out`, for the cache; `None` when
/// they are too large to keep.
///
/// # Errors
/// I/O, naming the file.
pub fn collect(
    report: &ExportReport,
    format: ExportFormat,
) -> Result<Option<ExportedFiles>, IoError> {
    let file_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| IoError::File { path, source }
    };
    let paths = file_paths(&report.path, format);
    let mut total = 0;
    for (_, p) in &paths {
        total += std::fs::metadata(p).map_err(file_error(p))?.len();
    }
    if total > MAX_BYTES {
        return Ok(None);
    }
    let mut files = Vec::new();
    for (ext, p) in paths {
        files.push((ext, std::fs::read(&p).map_err(file_error(&p))?));
    }
    Ok(Some(ExportedFiles {
        files,
        size: report.size,
        has_data: report.has_data,
        level: report.level,
        geotransform: report.geotransform,
    }))
}

/// Writes cached files to `out`, each under a temporary name renamed into
/// place. Returns the report the first export gave.
///
/// # Errors
/// I/O, naming the file.
pub fn restore(files: &ExportedFiles, out: &Path) -> Result<ExportReport, IoError> {
    for (ext, bytes) in &files.files {
        let target = match ext {
            None => out.to_path_buf(),
            Some(ext) => sidecar(out, ext),
        };
        let tmp = super::temporary_path(&target)?;
        let written = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, &target));
        if let Err(source) = written {
            std::fs::remove_file(&tmp).ok();
            return Err(IoError::File {
                path: target,
                source,
            });
        }
    }
    Ok(ExportReport {
        path: out.into(),
        size: files.size,
        has_data: files.has_data,
        level: files.level,
        geotransform: files.geotransform,
        from_cache: true,
        between: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exported_files_come_back_from_storage() {
        let files = ExportedFiles {
            files: vec![
                (None, vec![1, 2, 3]),
                (Some("pgw".into()), b"1\n0\n".to_vec()),
            ],
            size: (3, 1),
            has_data: true,
            level: 2,
            geotransform: [0.0, 1.0, 0.0, 5.0, 0.0, -1.0],
        };
        let (array, extra) = files.to_stored();
        assert_eq!(
            ExportedFiles::from_stored(array.clone(), extra.clone()).unwrap(),
            files
        );
        let mut bad = extra;
        bad["files"][0]["bytes"] = json!(99);
        assert!(ExportedFiles::from_stored(array, bad).is_err());
    }
}
