//! GDAL I/O: ingesting rasters into a store and exporting extents from it.
//!
//! This is the only module that uses GDAL. GDAL datasets are `Send` but not
//! `Sync`, so every worker thread opens its own.

pub(crate) mod cell;
mod error;
mod export;
mod ingest;
mod nodata;
mod source;
mod time_steps;
mod warp;

pub use error::{IoError, OutputError};
pub use export::{
    Between, ExportFormat, ExportReport, ExportRequest, Resolution, export, export_instants,
    export_with,
};
pub use ingest::{IngestOptions, IngestReport, ingest};
pub use nodata::{NodataChoice, choose_nodata};
pub(crate) use source::gdal_reason;
pub use source::{
    CrsError, Like, LikeOverrides, Source, area_of_use, crs_of, domain_levels_for, is_connection,
    parse_crs, resolve_crs, srs_from, structure_for, structure_like, wkt_keyword,
};
pub use time_steps::TimeSteps;

use crate::engine::DType;
use gdal::raster::GdalDataType;

/// Stops GDAL from printing its own messages to stderr. Every GDAL failure
/// that matters comes back as an error value naming the file, so the raw
/// multi-line output would only repeat it.
pub fn silence_gdal_messages() {
    gdal::config::set_error_handler(|_class, _code, _message| {});
}

/// The store data type matching a GDAL band type, if any.
#[must_use]
pub fn dtype_of(t: GdalDataType) -> Option<DType> {
    Some(match t {
        GdalDataType::UInt8 => DType::U8,
        GdalDataType::UInt16 => DType::U16,
        GdalDataType::Int16 => DType::I16,
        GdalDataType::UInt32 => DType::U32,
        GdalDataType::Int32 => DType::I32,
        GdalDataType::Float32 => DType::F32,
        GdalDataType::Float64 => DType::F64,
        _ => return None,
    })
}

/// Whether every value of `source` fits `store` without loss.
#[must_use]
pub fn fits(source: DType, store: DType) -> bool {
    if source == store {
        return true;
    }
    let (slo, shi) = source.range();
    let (dlo, dhi) = store.range();
    match (source.is_float(), store.is_float()) {
        (true, false) => false,
        (true, true) => store == DType::F64,
        (false, true) => store == DType::F64 || source.size() <= 2,
        (false, false) => slo >= dlo && shi <= dhi,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fits_is_lossless_only() {
        assert!(fits(DType::U8, DType::I16));
        assert!(fits(DType::I16, DType::F32));
        assert!(!fits(DType::I32, DType::F32));
        assert!(!fits(DType::F32, DType::U8));
        assert!(!fits(DType::I8, DType::U16));
        assert!(fits(DType::F32, DType::F64));
        assert!(!fits(DType::F64, DType::F32));
    }
}
