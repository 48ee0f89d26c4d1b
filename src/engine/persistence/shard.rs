//! A shard of the `zarr3` layout: the Zarr v3 `sharding_indexed` codec
//! with its index at the end (`index_codecs: [bytes, crc32c]`).
//!
//! A shard is its inner chunks' bytes one after the other, then the index:
//! for each inner chunk in C order, its offset and length (u64
//! little-endian each; both `u64::MAX` for an absent chunk), then the
//! CRC-32C of those index bytes (u32 little-endian). An inner chunk is the
//! store's codec output (`bytes`, then `zstd` with its content checksum,
//! or nothing for `none`) followed by its own CRC-32C (the `crc32c` codec).
//! So a reader fetches one inner chunk with two range reads (the index,
//! then the chunk), and every byte it uses is checked.
//!
//! Shards are written whole, once per write that changes them: new inner
//! chunks are spliced between the unchanged ones' bytes, never recompressed.

use crate::engine::Codec;
use crate::engine::persistence::codec::DecodeError;
use std::ops::Range;

/// Bytes of one index entry (offset and length).
const ENTRY: usize = 16;

/// Bytes of a CRC-32C.
const CRC: usize = 4;

/// An absent inner chunk's offset and length.
const ABSENT: u64 = u64::MAX;

/// Bytes of the index of a shard of `inner` chunks, checksum included.
#[must_use]
pub fn index_len(inner: usize) -> usize {
    inner * ENTRY + CRC
}

fn shard_error(reason: impl Into<String>) -> DecodeError {
    DecodeError::Shard(reason.into())
}

/// Where each inner chunk lies in a shard of `shard_len` bytes (`None`:
/// absent), from the shard's index (its last [`index_len`] bytes).
///
/// # Errors
/// An index of the wrong size, failing its checksum, or naming bytes
/// outside the shard (a truncated shard).
pub fn parse_index(
    index: &[u8],
    inner: usize,
    shard_len: u64,
) -> Result<Vec<Option<Range<u64>>>, DecodeError> {
    let want = index_len(inner);
    if shard_len < want as u64 || index.len() != want {
        return Err(shard_error(format!(
            "shard truncated: {shard_len} bytes, its index alone needs {want}"
        )));
    }
    let (entries, crc) = index.split_at(want - CRC);
    if crc32c::crc32c(entries).to_le_bytes() != crc {
        return Err(shard_error(
            "shard index fails its CRC-32C checksum (the shard is damaged or truncated)",
        ));
    }
    let data_end = shard_len - want as u64;
    entries
        .chunks_exact(ENTRY)
        .enumerate()
        .map(|(i, e)| {
            let offset = u64::from_le_bytes(e[..8].try_into().unwrap_or_default());
            let len = u64::from_le_bytes(e[8..].try_into().unwrap_or_default());
            if offset == ABSENT && len == ABSENT {
                return Ok(None);
            }
            match offset.checked_add(len) {
                Some(end) if end <= data_end => Ok(Some(offset..end)),
                _ => Err(shard_error(format!(
                    "shard truncated: inner chunk {i} lies at bytes {offset}..+{len}, past the {data_end} bytes of chunks"
                ))),
            }
        })
        .collect()
}

/// A whole shard of `inner` chunks (C order; `None`: absent), each already
/// an inner chunk (see [`seal`]). `None` when every chunk is absent: such a
/// shard is not stored.
#[must_use]
pub fn encode(inner: &[Option<&[u8]>]) -> Option<Vec<u8>> {
    if inner.iter().all(Option::is_none) {
        return None;
    }
    let data: usize = inner.iter().flatten().map(|c| c.len()).sum();
    let mut shard = Vec::with_capacity(data + index_len(inner.len()));
    let mut index = Vec::with_capacity(index_len(inner.len()));
    for chunk in inner {
        let (offset, len) = match chunk {
            Some(bytes) => {
                let at = shard.len() as u64;
                shard.extend_from_slice(bytes);
                (at, bytes.len() as u64)
            }
            None => (ABSENT, ABSENT),
        };
        index.extend_from_slice(&offset.to_le_bytes());
        index.extend_from_slice(&len.to_le_bytes());
    }
    let crc = crc32c::crc32c(&index);
    shard.extend_from_slice(&index);
    shard.extend_from_slice(&crc.to_le_bytes());
    Some(shard)
}

/// Every inner chunk of a stored shard, checked against its index (not
/// against the chunks' own checksums, which readers of them check).
///
/// # Errors
/// As [`parse_index`].
pub fn split(shard: &[u8], inner: usize) -> Result<Vec<Option<&[u8]>>, DecodeError> {
    let want = index_len(inner);
    let index = shard.get(shard.len().saturating_sub(want)..).unwrap_or(&[]);
    parse_index(index, inner, shard.len() as u64)?
        .into_iter()
        .map(|range| {
            Ok(range.map(|r| {
                // Within the shard by `parse_index`.
                let (start, end) = (
                    usize::try_from(r.start).unwrap_or(0),
                    usize::try_from(r.end).unwrap_or(0),
                );
                &shard[start..end]
            }))
        })
        .collect()
}

/// The inner chunk of the store's codec output `encoded` (as
/// [`super::codec::encode`] makes it): its Zarr v3 form, with the CRC-32C
/// appended.
///
/// # Errors
/// `encoded` that is not the codec's output (a `none` chunk without its
/// CRC-32 filter header, or failing it).
pub fn seal(codec: Codec, encoded: &[u8]) -> Result<Vec<u8>, DecodeError> {
    // v2's `none` is numcodecs' CRC-32 filter: v3 has the raw bytes.
    let body = match codec {
        Codec::None => unwrap_crc32(encoded)?,
        Codec::Zstd { .. } | Codec::Lz4 => encoded,
    };
    let mut inner = Vec::with_capacity(body.len() + CRC);
    inner.extend_from_slice(body);
    inner.extend_from_slice(&crc32c::crc32c(body).to_le_bytes());
    Ok(inner)
}

/// The store's codec output of an inner chunk, its CRC-32C checked: the
/// inverse of [`seal`].
///
/// # Errors
/// A chunk shorter than its checksum, or failing it.
pub fn unseal(codec: Codec, mut inner: Vec<u8>) -> Result<Vec<u8>, DecodeError> {
    let Some(split) = inner.len().checked_sub(CRC) else {
        return Err(shard_error("inner chunk shorter than its CRC-32C"));
    };
    let (body, crc) = inner.split_at(split);
    if crc32c::crc32c(body).to_le_bytes() != crc {
        return Err(shard_error("inner chunk fails its CRC-32C checksum"));
    }
    Ok(match codec {
        Codec::None => {
            let mut v2 = Vec::with_capacity(body.len() + 4);
            v2.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
            v2.extend_from_slice(body);
            v2
        }
        // The codec's output is the inner chunk without its checksum.
        Codec::Zstd { .. } | Codec::Lz4 => {
            inner.truncate(split);
            inner
        }
    })
}

fn unwrap_crc32(encoded: &[u8]) -> Result<&[u8], DecodeError> {
    match encoded.split_at_checked(4) {
        Some((crc, body)) if crc32fast::hash(body).to_le_bytes() == crc => Ok(body),
        Some(_) => Err(DecodeError::Checksum),
        None => Err(shard_error("chunk shorter than its CRC-32")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::persistence::codec;

    #[test]
    fn a_shard_round_trips_with_absent_chunks() {
        let (a, b) = (b"first".as_slice(), b"second one".as_slice());
        let shard = encode(&[Some(a), None, Some(b), None]).unwrap();
        assert_eq!(shard.len(), a.len() + b.len() + index_len(4));
        assert_eq!(
            split(&shard, 4).unwrap(),
            vec![Some(a), None, Some(b), None]
        );
        assert_eq!(encode(&[None, None]), None);
    }

    #[test]
    fn damage_is_named() {
        let shard = encode(&[Some(b"abc".as_slice()), Some(b"de".as_slice())]).unwrap();
        let mut flipped = shard.clone();
        let at = flipped.len() - 10;
        flipped[at] ^= 1;
        let e = split(&flipped, 2).unwrap_err().to_string();
        assert!(e.contains("index fails its CRC-32C"), "{e}");
        let e = split(&shard[2..], 2).unwrap_err().to_string();
        assert!(e.contains("truncated"), "{e}");
        let e = split(&shard[shard.len() - 3..], 2).unwrap_err().to_string();
        assert!(e.contains("truncated"), "{e}");
    }

    #[test]
    fn inner_chunks_carry_a_crc32c_over_the_codec_output() {
        let raw: Vec<u8> = (0..64u8).collect();
        for c in [Codec::Zstd { level: 3 }, Codec::None] {
            let encoded = codec::encode(c, &raw).unwrap();
            let inner = seal(c, &encoded).unwrap();
            assert_eq!(unseal(c, inner.clone()).unwrap(), encoded);
            let mut bad = inner.clone();
            bad[1] ^= 0x40;
            assert!(unseal(c, bad).unwrap_err().to_string().contains("CRC-32C"));
        }
        // `none` in v3 is the raw bytes and their CRC-32C.
        let inner = seal(Codec::None, &codec::encode(Codec::None, &raw).unwrap()).unwrap();
        assert_eq!(&inner[..64], raw.as_slice());
        // CRC-32C of "123456789" (the Castagnoli check value).
        assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
    }
}
