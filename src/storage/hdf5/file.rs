//! The HDF5 file of an `hdf5` store: its datasets, how it is created, and
//! how it is opened for writing (SWMR) or reading (SWMR read), including
//! after a writer was killed.
//!
//! ```text
//! /                 attribute gridstore_hdf5_version = 1 (u32)
//! /log              u8 [n, unlimited], chunks of 1 MiB: the records
//! /state            u64 [8]: log head, last sequence, applied, active table,
//!                   table capacity, slots used, writer pid, 0
//! /table_a, /table_b  u64 [2 × capacity, unlimited], chunks of 8192: the
//!                   index (one of them active), slots of (hash, offset)
//! ```
//!
//! A writer opens the file in HDF5's single-writer/multiple-reader mode
//! from the first moment, which keeps it readable at every moment (HDF5
//! orders its metadata writes for that), so a killed writer leaves a file
//! that opens for reading. It leaves the superblock marked "open for
//! writing" and its end of allocation stale; the next writer (holding the
//! store's lock, so sure no writer lives) clears both, as `h5clear -s -i`
//! does.

use super::super::StorageError;
use hdf5::{Dataset, File};
use std::path::Path;

/// The format version of the file's layout.
pub const VERSION: u32 = 1;
const VERSION_ATTR: &str = "gridstore_hdf5_version";
/// Bytes per chunk of `/log`.
const LOG_CHUNK: usize = 1 << 20;
/// Elements per chunk of a table.
const TABLE_CHUNK: usize = 8192;
/// Slots of a new store's table.
pub const FIRST_CAPACITY: u64 = 1 << 14;

/// The first bytes of every HDF5 file.
pub const SIGNATURE: &[u8; 8] = b"\x89HDF\r\n\x1a\n";

/// The open datasets of a store's file.
pub struct Handles {
    /// The file, held open as long as its datasets.
    pub _file: File,
    /// The records.
    pub log: Dataset,
    /// The state vector.
    pub state: Dataset,
    /// The two tables.
    pub tables: [Dataset; 2],
}

/// An HDF5 failure on `path`, as a storage error; a full disk stays one.
pub fn h5_error(path: &Path, e: &hdf5::Error) -> StorageError {
    let text = e.to_string();
    if text.contains("errno = 28") || text.contains("No space left on device") {
        return StorageError::io(
            path,
            std::io::Error::new(std::io::ErrorKind::StorageFull, text),
        );
    }
    StorageError::Corrupt {
        path: path.to_path_buf(),
        reason: format!("HDF5: {text}"),
    }
}

/// Creates a new store file at `path`, which must not exist.
///
/// # Errors
/// An existing file, or HDF5 failures.
pub fn create(path: &Path) -> Result<(), StorageError> {
    if path.exists() {
        return Err(StorageError::NotEmpty {
            path: path.to_path_buf(),
        });
    }
    let err = |e: hdf5::Error| h5_error(path, &e);
    let file = File::with_options()
        .with_fapl(|f| f.file_locking(false).libver_v110())
        .create_excl(path)
        .map_err(err)?;
    file.new_attr::<u32>()
        .create(VERSION_ATTR)
        .and_then(|a| a.write_scalar(&VERSION))
        .map_err(err)?;
    file.new_dataset::<u8>()
        .chunk(LOG_CHUNK)
        .shape(0..)
        .create("log")
        .map_err(err)?;
    let state = file
        .new_dataset::<u64>()
        .shape(8)
        .create("state")
        .map_err(err)?;
    state
        .write(&[0, 0, 0, 0, FIRST_CAPACITY, 0, 0, 0])
        .map_err(err)?;
    for (name, len) in [("table_a", 2 * FIRST_CAPACITY as usize), ("table_b", 0)] {
        let table = file
            .new_dataset::<u64>()
            .chunk(TABLE_CHUNK)
            .shape(0..)
            .create(name)
            .map_err(err)?;
        table.resize(len).map_err(err)?;
    }
    file.close().map_err(err)
}

/// Whether the file at `path` starts like an HDF5 file.
#[must_use]
pub fn is_hdf5(path: &Path) -> bool {
    let mut start = [0u8; 8];
    std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut start))
        .is_ok()
        && &start == SIGNATURE
}

fn handles(path: &Path, file: File) -> Result<Handles, StorageError> {
    let not_store = |what: String| StorageError::Corrupt {
        path: path.to_path_buf(),
        reason: format!("an HDF5 file, but not a gridstore store ({what})"),
    };
    let version = file
        .attr(VERSION_ATTR)
        .and_then(|a| a.read_scalar::<u32>())
        .map_err(|_| not_store(format!("no {VERSION_ATTR} attribute")))?;
    if version != VERSION {
        return Err(StorageError::Corrupt {
            path: path.to_path_buf(),
            reason: format!(
                "has hdf5 layout version {version}; this gridstore reads version {VERSION} (upgrade gridstore)"
            ),
        });
    }
    let dataset = |name: &str| {
        file.dataset(name)
            .map_err(|_| not_store(format!("no /{name}")))
    };
    Ok(Handles {
        log: dataset("log")?,
        state: dataset("state")?,
        tables: [dataset("table_a")?, dataset("table_b")?],
        _file: file,
    })
}

/// Opens the store file for reading beside a live writer (SWMR read).
///
/// # Errors
/// A file that is not a store, or HDF5 failures.
pub fn open_read(path: &Path) -> Result<Handles, StorageError> {
    if !is_hdf5(path) {
        return Err(StorageError::Corrupt {
            path: path.to_path_buf(),
            reason: "not an HDF5 file".into(),
        });
    }
    // No raw-data cache: the writer changes tables and the log's last
    // chunk under us, and a cached chunk would hide that.
    let file = File::with_options()
        .with_fapl(|f| f.file_locking(false).chunk_cache(0, 0, 1.0))
        .open_as(path, hdf5::file::OpenMode::ReadSWMR)
        .map_err(|e| h5_error(path, &e))?;
    handles(path, file)
}

/// Opens the store file for writing, in SWMR mode from the first moment
/// (so a writer killed at any point leaves a file readers can open). Call
/// it only holding the store's writer lock: a file marked open by a writer
/// is then one a killed writer left, and its marks are cleared.
///
/// # Errors
/// A file that is not a store, or HDF5 failures.
pub fn open_write(path: &Path) -> Result<Handles, StorageError> {
    let file = match open_raw(path, false) {
        Err(StorageError::Corrupt { reason, .. }) if left_by_a_killed_writer(&reason) => {
            open_raw(path, true)?
        }
        other => other?,
    };
    handles(path, file)
}

/// Whether an HDF5 error says the file is marked open by a writer.
#[must_use]
pub fn left_by_a_killed_writer(reason: &str) -> bool {
    reason.contains("already open for write")
        || reason.contains("not already open for SWMR writing")
}

// `H5Fincrement_filesize` (exported by libhdf5 1.10.2 and later, used by
// `h5clear -i`), which the bindings lack.
#[allow(unsafe_code)]
unsafe extern "C" {
    fn H5Fincrement_filesize(file_id: hdf5_sys::h5i::hid_t, increment: u64)
    -> hdf5_sys::h5::herr_t;
}

/// `H5Fopen(path, RDWR | SWMR_WRITE)`. With `clear`, first clears the
/// superblock's marks of a killed writer and then moves the end of
/// allocation past the end of the file (where that writer may have
/// allocated), as `h5clear -s -i` does.
#[allow(unsafe_code)]
fn open_raw(path: &Path, clear: bool) -> Result<File, StorageError> {
    let err = |e: hdf5::Error| h5_error(path, &e);
    let fapl = hdf5::plist::FileAccess::build()
        .file_locking(false)
        .libver_v110()
        .finish()
        .map_err(err)?;
    let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).map_err(|e| {
        StorageError::io(
            path,
            std::io::Error::new(std::io::ErrorKind::InvalidInput, e),
        )
    })?;
    hdf5::sync::sync(|| {
        if clear {
            let on = true;
            // SAFETY: `fapl` is a live file-access property list, and
            // "clear_status_flags" is the boolean property of that class
            // which h5clear sets; `on` outlives the call, which copies it.
            hdf5::h5check(unsafe {
                hdf5_sys::h5p::H5Pset(
                    fapl.id(),
                    c"clear_status_flags".as_ptr(),
                    std::ptr::from_ref(&on).cast_mut().cast(),
                )
            })
            .map_err(err)?;
        }
        let flags = hdf5_sys::h5f::H5F_ACC_RDWR | hdf5_sys::h5f::H5F_ACC_SWMR_WRITE;
        // SAFETY: a NUL-terminated path and a live property list.
        let id =
            hdf5::h5check(unsafe { hdf5_sys::h5f::H5Fopen(c_path.as_ptr(), flags, fapl.id()) })
                .map_err(err)?;
        // SAFETY: `id` is a file id just returned by H5Fopen, whose single
        // reference the File takes over.
        let file = unsafe { hdf5::from_id::<File>(id) }.map_err(err)?;
        if clear {
            // SAFETY: a valid, open file id.
            hdf5::h5check(unsafe { H5Fincrement_filesize(file.id(), 1 << 20) }).map_err(err)?;
        }
        Ok(file)
    })
}
