//! The record format that the packed and hdf5 backends share: every value
//! written is a record that carries its own key, kind, sequence number and
//! checksum, so that an index can always be rebuilt from the records alone.
//!
//! ```text
//! record (16-byte aligned)
//!   b"GSRC", key length u32, value length u64, CRC-32 of key ‖ value u32,
//!   kind u32, sequence u64                                  (32 bytes)
//!   key bytes, zero padding to 16
//!   value bytes (16-byte aligned), zero padding to 16
//! ```
//!
//! All integers are little-endian. [`Walk`] is the one way to go through a
//! run of records (replaying an index, compacting, repairing).

/// Bytes of a record header.
pub const RECORD_HEADER_LEN: u64 = 32;
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

/// `n` rounded up to a multiple of 16.
#[must_use]
pub fn align(n: u64) -> u64 {
    n.div_ceil(16) * 16
}

/// The bytes a record with this key and value takes.
#[must_use]
pub fn record_len(key_len: usize, value_len: usize) -> u64 {
    RECORD_HEADER_LEN + align(key_len as u64) + align(value_len as u64)
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

/// Why there is no whole, valid record at a place.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// Fewer bytes than a record header.
    #[error("the record is cut short")]
    CutShort,
    /// The bytes do not start with a record's magic.
    #[error("no record there (bad magic)")]
    BadMagic,
    /// A key length of 0 or beyond [`MAX_KEY_LEN`].
    #[error("the record declares a key of {0} bytes")]
    KeyLength(u32),
    /// A kind code that is not known.
    #[error("the record has kind {0}")]
    Kind(u32),
    /// A record whose header is bad, at an offset.
    #[error("record at {at}: {reason}")]
    At {
        /// The record's offset.
        at: u64,
        /// What is wrong with its header.
        reason: Box<RecordError>,
    },
    /// A value that reaches past the bytes.
    #[error("record at {at} declares {len} value bytes, past the end of the pack")]
    PastEnd {
        /// The record's offset.
        at: u64,
        /// Its value's length.
        len: u64,
    },
    /// A key that is not UTF-8.
    #[error("record at {0} has a key that is not UTF-8")]
    KeyNotUtf8(u64),
    /// A record whose CRC-32 does not match its key and value.
    #[error("record at {at} ({key}) fails its checksum")]
    Checksum {
        /// The record's offset.
        at: u64,
        /// Its key.
        key: String,
    },
}

/// Checks and reads a record's fixed header (its first
/// [`RECORD_HEADER_LEN`] bytes).
///
/// # Errors
/// Too short, bad magic, a bad key length or kind.
pub fn parse_head(header: &[u8]) -> Result<RecordHead, RecordError> {
    let header = header
        .get(..RECORD_HEADER_LEN as usize)
        .ok_or(RecordError::CutShort)?;
    if &header[..4] != RECORD_MAGIC {
        return Err(RecordError::BadMagic);
    }
    let u32_at = |i: usize| u32::from_le_bytes(header[i..i + 4].try_into().unwrap_or([0; 4]));
    let u64_at = |i: usize| u64::from_le_bytes(header[i..i + 8].try_into().unwrap_or([0; 8]));
    let (key_len, value_len, crc, code, sequence) =
        (u32_at(4), u64_at(8), u32_at(16), u32_at(20), u64_at(24));
    if key_len == 0 || key_len > MAX_KEY_LEN {
        return Err(RecordError::KeyLength(key_len));
    }
    let kind = Kind::from_code(code).ok_or(RecordError::Kind(code))?;
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
/// Why there is no whole, valid record there.
pub fn parse(bytes: &[u8], at: u64) -> Result<Record, RecordError> {
    let start = usize::try_from(at).map_err(|_| RecordError::PastEnd { at, len: 0 })?;
    let RecordHead {
        kind,
        sequence,
        key_len,
        value_len,
        crc,
    } = parse_head(bytes.get(start..).unwrap_or(&[])).map_err(|reason| RecordError::At {
        at,
        reason: Box::new(reason),
    })?;
    let key_at = start + RECORD_HEADER_LEN as usize;
    let value_at = key_at as u64 + align(u64::from(key_len));
    let end = value_at
        .checked_add(value_len)
        .filter(|end| *end <= bytes.len() as u64)
        .ok_or(RecordError::PastEnd { at, len: value_len })?;
    let key = std::str::from_utf8(&bytes[key_at..key_at + key_len as usize])
        .map_err(|_| RecordError::KeyNotUtf8(at))?
        .to_string();
    let value = &bytes[value_at as usize..end as usize];
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(key.as_bytes());
    hasher.update(value);
    if hasher.finalize() != crc {
        return Err(RecordError::Checksum { at, key });
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

/// The records of a run of bytes (a pack up to its head, say), in order:
/// each item a record, or the reason there is none at that place. After a
/// damaged place the walk moves on 16 bytes, so a walk that goes on past
/// errors finds the next whole record (as `repair` does); one that stops at
/// the first error reads only whole, valid records.
#[derive(Debug, Clone)]
pub struct Walk<'a> {
    bytes: &'a [u8],
    at: u64,
    end: u64,
}

impl<'a> Walk<'a> {
    /// The records of `bytes` from offset `from` up to `end`.
    #[must_use]
    pub fn new(bytes: &'a [u8], from: u64, end: u64) -> Self {
        Self {
            bytes,
            at: from,
            end: end.min(bytes.len() as u64),
        }
    }

    /// Where the next record would start: after the last one read.
    #[must_use]
    pub fn position(&self) -> u64 {
        self.at
    }
}

impl Iterator for Walk<'_> {
    type Item = Result<Record, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.at >= self.end {
            return None;
        }
        let within = self.bytes.get(..self.end as usize).unwrap_or(self.bytes);
        Some(match parse(within, self.at) {
            Ok(record) => {
                self.at = record.next;
                Ok(record)
            }
            Err(reason) => {
                self.at += 16;
                Err(reason)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_walk_reads_records_in_order_and_resynchronises_after_damage() {
        let mut bytes = Vec::new();
        for (i, key) in ["a", "bb", "ccc"].iter().enumerate() {
            let value = vec![i as u8; 20 * i];
            bytes.extend(encode(
                Kind::Put,
                i as u64 + 1,
                key,
                &value,
                checksum(key, &value),
            ));
        }
        let keys: Vec<String> = Walk::new(&bytes, 0, bytes.len() as u64)
            .map(|r| r.unwrap().key)
            .collect();
        assert_eq!(keys, ["a", "bb", "ccc"]);
        // Damage the second record's magic: a strict walk stops there, a
        // resynchronising one finds the third.
        let second = Walk::new(&bytes, 0, bytes.len() as u64)
            .next()
            .unwrap()
            .unwrap()
            .next;
        bytes[second as usize] ^= 0xff;
        let mut walk = Walk::new(&bytes, 0, bytes.len() as u64);
        assert!(walk.next().unwrap().is_ok());
        assert!(
            walk.next()
                .unwrap()
                .unwrap_err()
                .to_string()
                .contains("bad magic")
        );
        let found: Vec<String> = walk.filter_map(Result::ok).map(|r| r.key).collect();
        assert_eq!(found, ["ccc"]);
    }
}
