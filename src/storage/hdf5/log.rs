//! An hdf5 store's record log (`/log`): reading the record at an offset,
//! and replaying records onto the index changes they make. The writer and
//! readers both use it; neither uses the other's code for it.

use super::super::StorageError;
use super::file::{Handles, h5_error};
use crate::storage::record::{self, Kind};
use std::collections::BTreeMap;
use std::ops::Not as _;
use std::path::Path;

/// Changes not yet in the index: record offsets, `None` removing the entry.
#[derive(Debug, Default)]
pub struct Changes {
    pub live: BTreeMap<String, Option<u64>>,
    pub staged: BTreeMap<String, Option<u64>>,
}

/// A record read back.
pub struct Read {
    pub head: record::RecordHead,
    pub key: String,
    /// The value, when asked for.
    pub value: Option<Vec<u8>>,
}

/// Reads the record at `offset` from the log of `h`, or from `buffer` at
/// offsets from `log_len` on.
pub fn read_record(
    h: &Handles,
    buffer: &[u8],
    log_len: u64,
    offset: u64,
    with_value: bool,
    path: &Path,
) -> Result<Read, StorageError> {
    let damaged = |reason: String| StorageError::Corrupt {
        path: path.to_path_buf(),
        reason: format!("record at {offset} of /log: {reason}"),
    };
    let bytes = |from: u64, len: u64| log_bytes(h, buffer, log_len, from, len, path, offset);
    let head = record::parse_head(&bytes(offset, record::RECORD_HEADER_LEN)?)
        .map_err(|e| damaged(e.to_string()))?;
    let key_len = u64::from(head.key_len);
    // The key, padded, then the value: lengths from a damaged header may be
    // anything, so every sum is checked before it sizes a read.
    let value_at = head.value_offset() - record::RECORD_HEADER_LEN;
    let wanted = if with_value {
        value_at.checked_add(head.value_len)
    } else {
        Some(key_len)
    };
    let wanted = wanted
        .filter(|w| {
            offset
                .saturating_add(record::RECORD_HEADER_LEN)
                .saturating_add(*w)
                <= log_len + buffer.len() as u64
        })
        .ok_or_else(|| {
            damaged(format!(
                "declares {} value bytes, past the end of the log",
                head.value_len
            ))
        })?;
    let rest = bytes(offset + record::RECORD_HEADER_LEN, wanted)?;
    let key = rest
        .get(..head.key_len as usize)
        .and_then(|k| std::str::from_utf8(k).ok())
        .ok_or_else(|| damaged("a key that is not UTF-8".into()))?
        .to_string();
    let value = match with_value {
        true => Some(
            rest.get(value_at as usize..)
                .ok_or_else(|| damaged("cut short".into()))?
                .to_vec(),
        ),
        false => None,
    };
    if let Some(v) = &value
        && record::checksum(&key, v) != head.crc
    {
        return Err(StorageError::Corrupt {
            path: path.to_path_buf(),
            reason: format!("{key} fails its checksum (record at {offset} of /log)"),
        });
    }
    Ok(Read { head, key, value })
}

/// `len` bytes of the log from `from` on (from `buffer` at offsets from
/// `log_len` on), for the record at `record`.
fn log_bytes(
    h: &Handles,
    buffer: &[u8],
    log_len: u64,
    from: u64,
    len: u64,
    path: &Path,
    record: u64,
) -> Result<Vec<u8>, StorageError> {
    let damaged = |reason: String| StorageError::Corrupt {
        path: path.to_path_buf(),
        reason: format!("record at {record} of /log: {reason}"),
    };
    if from >= log_len {
        let start = usize::try_from(from - log_len).unwrap_or(usize::MAX);
        let end = start.saturating_add(usize::try_from(len).unwrap_or(usize::MAX));
        return buffer
            .get(start..end)
            .map(<[u8]>::to_vec)
            .ok_or_else(|| damaged("past the end of the log".into()));
    }
    let end = from.saturating_add(len);
    if end > log_len {
        return Err(damaged(format!(
            "bytes {from}..{end} lie past the end of the log ({log_len} bytes)"
        )));
    }
    let (from, end) = (
        usize::try_from(from).unwrap_or(usize::MAX),
        usize::try_from(end).unwrap_or(usize::MAX),
    );
    h.log
        .read_slice_1d::<u8, _>(from..end)
        .map(|a| a.to_vec())
        .map_err(|e| h5_error(path, &e))
}

/// The bytes `range` names of the value of the record at `offset`, and
/// the value's length, reading only those bytes (unchecked: values read in
/// part carry their own checksums, as shards do).
pub fn read_value_range(
    h: &Handles,
    buffer: &[u8],
    log_len: u64,
    offset: u64,
    range: crate::storage::ByteRange,
    path: &Path,
) -> Result<(Vec<u8>, u64), StorageError> {
    let head = read_record(h, buffer, log_len, offset, false, path)?.head;
    let span = range.within(head.value_len);
    let bytes = log_bytes(
        h,
        buffer,
        log_len,
        offset + head.value_offset() + span.start as u64,
        span.len() as u64,
        path,
        offset,
    )?;
    Ok((bytes, head.value_len))
}

/// Applies the record at `offset` to `changes`, as its writer did. Records
/// are replayed in log order, and a commit or discard record names the
/// stage record it acts on (its sequence and offset), so nothing here
/// depends on the index, whose slots may be written in any order.
pub fn replay(changes: &mut Changes, offset: u64, record: &Read) {
    let key = record.key.clone();
    match record.head.kind {
        Kind::Put => {
            changes.live.insert(key, Some(offset));
        }
        Kind::Delete => {
            changes.live.insert(key, None);
        }
        Kind::Stage | Kind::StageRemoval => {
            changes.staged.insert(key, Some(offset));
        }
        Kind::Commit => {
            if let Some(target) = record.value.as_deref().and_then(Target::decode) {
                let live = target.removal.not().then_some(target.offset);
                changes.live.insert(key.clone(), live);
            }
            changes.staged.insert(key, None);
        }
        Kind::Discard => {
            changes.staged.insert(key, None);
        }
    }
}

/// The stage record a commit or discard acts on: the value of those
/// records in an hdf5 store's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    /// Its sequence.
    pub sequence: u64,
    /// Its offset in the log.
    pub offset: u64,
    /// Whether it stages a removal.
    pub removal: bool,
}

impl Target {
    /// 17 bytes: sequence, offset (little-endian u64s), removal (0 or 1).
    #[must_use]
    pub fn encode(self) -> Vec<u8> {
        let mut out = self.sequence.to_le_bytes().to_vec();
        out.extend_from_slice(&self.offset.to_le_bytes());
        out.push(u8::from(self.removal));
        out
    }

    /// The target, from a record's value.
    #[must_use]
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let bytes: &[u8; 17] = bytes.try_into().ok()?;
        Some(Self {
            sequence: u64::from_le_bytes(bytes[..8].try_into().ok()?),
            offset: u64::from_le_bytes(bytes[8..16].try_into().ok()?),
            removal: bytes[16] == 1,
        })
    }
}
