//! Pack files: large, sparse files of appended records (the format of
//! [`crate::storage::record`]), so that the index can always be rebuilt
//! from the packs alone.
//!
//! ```text
//! header (64 bytes)   b"GSPACK01", capacity u64, head u64, last sequence u64,
//!                     pack number u32, 28 bytes zero
//! records, from byte 64 to head
//! ```
//!
//! All integers are little-endian. `head` is the offset of the next record;
//! everything from it to `capacity` is unwritten (a hole in the sparse file).

use super::super::StorageError;
use crate::storage::record::{Kind, align, encode_head};
use std::fs::File;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};

/// Bytes of the pack header.
pub const HEADER_LEN: u64 = 64;
const PACK_MAGIC: &[u8; 8] = b"GSPACK01";

/// The header fields that change as records are appended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// Total file size (sparse).
    pub capacity: u64,
    /// Offset of the next record.
    pub head: u64,
    /// Sequence of the last record written.
    pub last_sequence: u64,
}

/// The path of pack `number` in `dir`.
#[must_use]
pub fn pack_path(dir: &Path, number: u32) -> PathBuf {
    dir.join(format!("{number:08}.pack"))
}

/// Creates an empty sparse pack.
///
/// # Errors
/// I/O.
pub fn create(path: &Path, number: u32, capacity: u64) -> Result<File, StorageError> {
    let file = File::options()
        .read(true)
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| StorageError::io(path, e))?;
    let mut header = [0u8; HEADER_LEN as usize];
    header[..8].copy_from_slice(PACK_MAGIC);
    header[8..16].copy_from_slice(&capacity.to_le_bytes());
    header[16..24].copy_from_slice(&HEADER_LEN.to_le_bytes());
    header[32..36].copy_from_slice(&number.to_le_bytes());
    let made = file
        .set_len(capacity)
        .and_then(|()| file.write_all_at(&header, 0));
    if let Err(e) = made {
        // A pack without its header would stop every later writer.
        drop(file);
        std::fs::remove_file(path).ok();
        return Err(StorageError::io(path, e));
    }
    Ok(file)
}

/// Reads and checks a pack's header.
///
/// # Errors
/// I/O, or a header that is not a pack's.
pub fn read_head(file: &File, path: &Path) -> Result<Head, StorageError> {
    let mut header = [0u8; HEADER_LEN as usize];
    file.read_exact_at(&mut header, 0)
        .map_err(|e| corrupt(path, format!("no pack header ({e})")))?;
    if &header[..8] != PACK_MAGIC {
        return Err(corrupt(path, "not a gridstore pack (bad magic)".into()));
    }
    let word = |at: usize| u64::from_le_bytes(header[at..at + 8].try_into().unwrap_or([0; 8]));
    let head = Head {
        capacity: word(8),
        head: word(16),
        last_sequence: word(24),
    };
    let size = file
        .metadata()
        .map_err(|e| StorageError::io(path, e))?
        .len();
    if head.head < HEADER_LEN || head.head > head.capacity || head.capacity > size {
        return Err(corrupt(
            path,
            format!(
                "header says head {} of capacity {}, but the file holds {size} bytes",
                head.head, head.capacity
            ),
        ));
    }
    Ok(head)
}

/// Writes a record (whose [`checksum`] is `crc`) at `at`, then the header's
/// head and last sequence. Returns where its value starts.
///
/// # Errors
/// I/O.
#[allow(clippy::too_many_arguments)]
pub fn append(
    file: &File,
    path: &Path,
    at: u64,
    kind: Kind,
    sequence: u64,
    key: &str,
    value: &[u8],
    crc: u32,
) -> Result<u64, StorageError> {
    let head = encode_head(kind, sequence, key, value.len(), crc);
    let value_at = at + head.len() as u64;
    let io = |e| StorageError::io(path, e);
    file.write_all_at(&head, at).map_err(io)?;
    file.write_all_at(value, value_at).map_err(io)?;
    let next = value_at + align(value.len() as u64);
    let mut fields = [0u8; 16];
    fields[..8].copy_from_slice(&next.to_le_bytes());
    fields[8..].copy_from_slice(&sequence.to_le_bytes());
    file.write_all_at(&fields, 16).map_err(io)?;
    Ok(value_at)
}

fn corrupt(path: &Path, reason: String) -> StorageError {
    StorageError::Corrupt {
        path: path.to_path_buf(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::record::{checksum, parse, record_len};

    #[test]
    fn records_round_trip_and_damage_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = pack_path(dir.path(), 1);
        let file = create(&path, 1, 1 << 16).unwrap();
        let mut at = HEADER_LEN;
        for (i, (key, value)) in [
            ("0/data/0/0", &b"abc"[..]),
            ("journal/.zattrs", &[7u8; 40][..]),
        ]
        .iter()
        .enumerate()
        {
            let crc = checksum(key, value);
            let value_at =
                append(&file, &path, at, Kind::Put, i as u64 + 1, key, value, crc).unwrap();
            assert_eq!(value_at % 16, 0, "values are 16-byte aligned");
            at += record_len(key.len(), value.len());
        }
        let head = read_head(&file, &path).unwrap();
        assert_eq!((head.head, head.last_sequence), (at, 2));
        let bytes = std::fs::read(&path).unwrap();
        let first = parse(&bytes[..at as usize], HEADER_LEN).unwrap();
        assert_eq!(
            (first.key.as_str(), first.value_len, first.sequence),
            ("0/data/0/0", 3, 1)
        );
        let second = parse(&bytes[..at as usize], first.next).unwrap();
        assert_eq!(second.next, at);
        // A flipped value byte fails the checksum; a cut file is named.
        let mut damaged = bytes.clone();
        damaged[second.value_at as usize] ^= 1;
        assert!(
            parse(&damaged, first.next)
                .unwrap_err()
                .to_string()
                .contains("checksum")
        );
        assert!(
            parse(&bytes[..(at - 16) as usize], first.next)
                .unwrap_err()
                .to_string()
                .contains("past the end")
        );
        assert!(
            parse(&bytes, at)
                .unwrap_err()
                .to_string()
                .contains("bad magic")
        );
    }
}
