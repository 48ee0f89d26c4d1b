//! `gdalwarp` as a library call (`GDALWarp`), which the gdal crate does not
//! wrap with a choice of resampling.

use super::OutputError;
use gdal::Dataset;
use std::ffi::{CStr, CString, c_char};

/// Runs `GDALWarp` from `source` to a new dataset at `dest` with
/// gdalwarp-style `args` (e.g. `["-of", "VRT", "-r", "near", …]`).
///
/// # Errors
/// GDAL's message when the options are invalid or the warp fails.
#[allow(unsafe_code)]
pub fn warp(source: &Dataset, dest: &str, args: &[String]) -> Result<Dataset, OutputError> {
    let owned: Vec<CString> = args
        .iter()
        .map(|a| {
            CString::new(a.as_str())
                .map_err(|_| OutputError::Warp(format!("argument '{a}' contains a NUL byte")))
        })
        .collect::<Result<_, _>>()?;
    let mut argv: Vec<*mut c_char> = owned.iter().map(|a| a.as_ptr().cast_mut()).collect();
    argv.push(std::ptr::null_mut());
    let dest = CString::new(dest)
        .map_err(|_| OutputError::Warp("the destination contains a NUL byte".into()))?;
    // SAFETY: `argv` is a NULL-terminated array of valid C strings that
    // outlive the call (`owned`); GDAL copies them into the options. The
    // source handle is valid for the borrow of `source`. A non-null result
    // is a new dataset that we own and hand to `Dataset`, which closes it.
    unsafe {
        let options = gdal_sys::GDALWarpAppOptionsNew(argv.as_mut_ptr(), std::ptr::null_mut());
        if options.is_null() {
            return Err(OutputError::Warp(last_error("invalid warp options")));
        }
        let mut sources = [source.c_dataset()];
        let mut usage_error = 0;
        let handle = gdal_sys::GDALWarp(
            dest.as_ptr(),
            std::ptr::null_mut(),
            1,
            sources.as_mut_ptr(),
            options,
            &raw mut usage_error,
        );
        gdal_sys::GDALWarpAppOptionsFree(options);
        if handle.is_null() {
            return Err(OutputError::Warp(last_error("warp failed")));
        }
        Ok(Dataset::from_c_dataset(handle))
    }
}

#[allow(unsafe_code)]
fn last_error(fallback: &str) -> String {
    // SAFETY: CPLGetLastErrorMsg returns a pointer to a thread-local,
    // NUL-terminated buffer that stays valid until the next GDAL call here.
    let message = unsafe { CStr::from_ptr(gdal_sys::CPLGetLastErrorMsg()) }
        .to_string_lossy()
        .into_owned();
    if message.trim().is_empty() {
        fallback.to_string()
    } else {
        super::source::one_line(&message)
    }
}
