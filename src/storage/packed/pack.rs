//! Pack files: large, sparse files of appended records, each carrying its
//! own key, kind, sequence number and checksum, so that the index can always
//! be rebuilt from the packs alone.
//!
//! ```text
//! header (64 bytes)   b"GSPACK01", capacity u64, head u64, last sequence u64,
//!                     pack number u32, 28 bytes zero
//! record (at head, 16-byte aligned)
//!   b"GSRC", key length u32, value length u64, CRC-32 of key ‖ value u32,
//!   kind u32, sequence u64                                  (32 bytes)
//!   key bytes, zero padding to 16
//!   value bytes (16-byte aligned), zero padding to 16
//! ```
//!
//! All integers are little-endian. `head` is the offset of the next record;
//! everything from it to `capacity` is unwritten (a hole in the sparse file).

use super::super::StorageError;
use std::fs::File;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};

/// Bytes of the pack header.
pub const HEADER_LEN: u64 = 64;
/// Bytes of a record header.
pub const RECORD_HEADER_LEN: u64 = 32;
const PACK_MAGIC: &[u8; 8] = b"GSPACK01";
const RECORD_MAGIC: &[u8; 4] = b"GSRC";
/// Longest key a record may carry.
pub const MAX_KEY_LEN: u32 = 4096;

/// What a record does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `put`: the value of the key, visible at once.
    Put,
    /// `delete`: the key is removed.
    Delete,
    /// `stage`: a value invisible until committed.
    Stage,
    /// `stage(None)`: a removal invisible until committed.
    StageRemoval,
    /// `commit`: the staged record whose sequence is the value takes effect.
    Commit,
    /// `discard`: the staged record whose sequence is the value is dropped.
    Discard,
}

impl Kind {
    fn code(self) -> u32 {
        match self {
            Self::Put => 1,
            Self::Delete => 2,
            Self::Stage => 3,
            Self::StageRemoval => 4,
            Self::Commit => 5,
            Self::Discard => 6,
        }
    }

    fn from_code(code: u32) -> Option<Self> {
        Some(match code {
            1 => Self::Put,
            2 => Self::Delete,
            3 => Self::Stage,
            4 => Self::StageRemoval,
            5 => Self::Commit,
            6 => Self::Discard,
            _ => return None,
        })
    }
}

/// A record as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// What it does.
    pub kind: Kind,
    /// Its place in the order of all records of the store.
    pub sequence: u64,
    /// The key.
    pub key: String,
    /// Where its value starts in the pack.
    pub value_at: u64,
    /// Value bytes.
    pub value_len: u64,
    /// CRC-32 of key ‖ value.
    pub crc: u32,
    /// Where the next record starts.
    pub next: u64,
}

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

fn align(n: u64) -> u64 {
    n.div_ceil(16) * 16
}

/// The bytes a record with this key and value takes.
#[must_use]
pub fn record_len(key_len: usize, value_len: usize) -> u64 {
    RECORD_HEADER_LEN + align(key_len as u64) + align(value_len as u64)
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

/// A record's header and key, zero-padded to 16 bytes: what precedes its
/// value.
#[must_use]
pub fn encode_head(kind: Kind, sequence: u64, key: &str, value_len: usize, crc: u32) -> Vec<u8> {
    let key_len = u32::try_from(key.len()).unwrap_or(u32::MAX);
    let mut head = Vec::with_capacity((RECORD_HEADER_LEN + align(key.len() as u64)) as usize);
    head.extend_from_slice(RECORD_MAGIC);
    head.extend_from_slice(&key_len.to_le_bytes());
    head.extend_from_slice(&(value_len as u64).to_le_bytes());
    head.extend_from_slice(&crc.to_le_bytes());
    head.extend_from_slice(&kind.code().to_le_bytes());
    head.extend_from_slice(&sequence.to_le_bytes());
    head.extend_from_slice(key.as_bytes());
    head.resize((RECORD_HEADER_LEN + align(key.len() as u64)) as usize, 0);
    head
}

/// A whole record: [`encode_head`], the value, zero padding to 16 bytes.
#[must_use]
pub fn encode(kind: Kind, sequence: u64, key: &str, value: &[u8], crc: u32) -> Vec<u8> {
    let mut out = encode_head(kind, sequence, key, value.len(), crc);
    out.extend_from_slice(value);
    out.resize(
        out.len() + (align(value.len() as u64) as usize - value.len()),
        0,
    );
    out
}

/// The fixed header of a record, as read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHead {
    /// What the record does.
    pub kind: Kind,
    /// Its sequence.
    pub sequence: u64,
    /// Key bytes.
    pub key_len: u32,
    /// Value bytes.
    pub value_len: u64,
    /// CRC-32 of key ‖ value.
    pub crc: u32,
}

impl RecordHead {
    /// Where the value starts, from the record's start.
    #[must_use]
    pub fn value_offset(&self) -> u64 {
        RECORD_HEADER_LEN + align(u64::from(self.key_len))
    }

    /// The whole record's length in bytes.
    #[must_use]
    pub fn record_len(&self) -> u64 {
        self.value_offset() + align(self.value_len)
    }
}

/// Checks and reads a record's fixed header (its first
/// [`RECORD_HEADER_LEN`] bytes).
///
/// # Errors
/// A reason: too short, bad magic, a bad key length or kind.
pub fn parse_head(header: &[u8]) -> Result<RecordHead, String> {
    let header = header
        .get(..RECORD_HEADER_LEN as usize)
        .ok_or("the record is cut short")?;
    if &header[..4] != RECORD_MAGIC {
        return Err("no record there (bad magic)".into());
    }
    let u32_at = |i: usize| u32::from_le_bytes(header[i..i + 4].try_into().unwrap_or([0; 4]));
    let u64_at = |i: usize| u64::from_le_bytes(header[i..i + 8].try_into().unwrap_or([0; 8]));
    let (key_len, value_len, crc, code, sequence) =
        (u32_at(4), u64_at(8), u32_at(16), u32_at(20), u64_at(24));
    if key_len == 0 || key_len > MAX_KEY_LEN {
        return Err(format!("the record declares a key of {key_len} bytes"));
    }
    let kind = Kind::from_code(code).ok_or_else(|| format!("the record has kind {code}"))?;
    Ok(RecordHead {
        kind,
        sequence,
        key_len,
        value_len,
        crc,
    })
}

/// Parses the record at `at` of `bytes` (a pack's contents up to its head).
///
/// # Errors
/// A reason when there is no whole, valid record there.
pub fn parse(bytes: &[u8], at: u64) -> Result<Record, String> {
    let start = usize::try_from(at).map_err(|e| e.to_string())?;
    let RecordHead {
        kind,
        sequence,
        key_len,
        value_len,
        crc,
    } = parse_head(bytes.get(start..).unwrap_or(&[]))
        .map_err(|reason| format!("record at {at}: {reason}"))?;
    let key_at = start + RECORD_HEADER_LEN as usize;
    let value_at = key_at as u64 + align(u64::from(key_len));
    let end = value_at
        .checked_add(value_len)
        .filter(|end| *end <= bytes.len() as u64)
        .ok_or_else(|| {
            format!("record at {at} declares {value_len} value bytes, past the end of the pack")
        })?;
    let key = std::str::from_utf8(&bytes[key_at..key_at + key_len as usize])
        .map_err(|_| format!("record at {at} has a key that is not UTF-8"))?
        .to_string();
    let value = &bytes[value_at as usize..end as usize];
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(key.as_bytes());
    hasher.update(value);
    if hasher.finalize() != crc {
        return Err(format!("record at {at} ({key}) fails its checksum"));
    }
    Ok(Record {
        kind,
        sequence,
        key,
        value_at,
        value_len,
        crc,
        next: value_at + align(value_len),
    })
}

/// The CRC-32 a record of `key` and `value` carries.
#[must_use]
pub fn checksum(key: &str, value: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(key.as_bytes());
    hasher.update(value);
    hasher.finalize()
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
                .contains("checksum")
        );
        assert!(
            parse(&bytes[..(at - 16) as usize], first.next)
                .unwrap_err()
                .contains("past the end")
        );
        assert!(parse(&bytes, at).unwrap_err().contains("bad magic"));
    }
}
