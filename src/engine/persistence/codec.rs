//! Chunk encoding: raw little-endian cells to stored bytes and back.
//!
//! Every codec carries a checksum that is checked on decode, and no decode
//! ever allocates more than the chunk's declared shape allows:
//! - `zstd`: one Zstandard frame with its content size and content checksum;
//!   any zstd decoder (numcodecs, GDAL) checks the checksum.
//! - `lz4`: numcodecs' CRC-32 filter (4-byte little-endian CRC-32 of the data,
//!   then the data) compressed by numcodecs' LZ4 (4-byte little-endian
//!   decompressed size, then one LZ4 block).
//! - `none`: the CRC-32 filter alone.

use crate::engine::Codec;

/// Why stored bytes do not decode to a chunk.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The checksum does not match the contents.
    #[error("checksum mismatch")]
    Checksum,
    /// The bytes declare a size other than the chunk's shape.
    #[error("declares {declared} bytes, the chunk shape holds {expected}")]
    Size {
        /// What the stored bytes declare.
        declared: u64,
        /// What the chunk's shape holds.
        expected: u64,
    },
    /// A shard or inner chunk of the `zarr3` layout is damaged.
    #[error("{0}")]
    Shard(String),
    /// The bytes are not a valid stream of this codec.
    #[error("not a valid {codec} stream: {reason}")]
    Malformed {
        /// The codec.
        codec: &'static str,
        /// The decoder's complaint.
        reason: String,
    },
}

thread_local! {
    /// This thread's zstd compressor and the level it compresses at.
    static ZSTD: std::cell::RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> =
        const { std::cell::RefCell::new(None) };
}

/// Encodes raw chunk bytes.
///
/// # Errors
/// Only if the compressor itself fails (it does not for valid levels).
pub fn encode(codec: Codec, raw: &[u8]) -> std::io::Result<Vec<u8>> {
    match codec {
        Codec::Zstd { level } => ZSTD.with(|cell| {
            // One compression context per thread and level, not per chunk.
            let mut cached = cell.borrow_mut();
            if cached.as_ref().is_none_or(|(l, _)| *l != level) {
                let mut c = zstd::bulk::Compressor::new(level)?;
                c.include_checksum(true)?;
                c.include_contentsize(true)?;
                *cached = Some((level, c));
            }
            match cached.as_mut() {
                Some((_, c)) => c.compress(raw),
                None => Err(std::io::Error::other("no zstd context")),
            }
        }),
        Codec::Lz4 => Ok(lz4_flex::block::compress_prepend_size(&with_crc(raw))),
        Codec::None => Ok(with_crc(raw)),
    }
}

/// Decodes stored bytes into exactly `expected` raw bytes.
///
/// # Errors
/// [`DecodeError`] when the checksum fails, the declared size is wrong, or
/// the stream is malformed.
pub fn decode(codec: Codec, stored: &[u8], expected: usize) -> Result<Vec<u8>, DecodeError> {
    match codec {
        Codec::Zstd { .. } => decode_zstd(stored, expected),
        Codec::Lz4 => {
            let declared = stored
                .get(..4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
            let Some(declared) = declared else {
                return Err(malformed("lz4", "shorter than its size header"));
            };
            check_size(u64::from(declared), expected as u64 + 4)?;
            let inner = lz4_flex::block::decompress(&stored[4..], expected + 4)
                .map_err(|e| malformed("lz4", e.to_string()))?;
            strip_crc(&inner, expected)
        }
        Codec::None => strip_crc(stored, expected),
    }
}

fn decode_zstd(stored: &[u8], expected: usize) -> Result<Vec<u8>, DecodeError> {
    // Frame header: 4-byte magic, then the descriptor whose bit 2 says the
    // frame ends with a content checksum. Without it nothing would be checked.
    const MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];
    match stored.get(..5) {
        Some(head) if head[..4] == MAGIC && head[4] & 0x04 != 0 => {}
        Some(head) if head[..4] == MAGIC => {
            return Err(malformed("zstd", "frame has no content checksum"));
        }
        _ => return Err(malformed("zstd", "no zstd frame header")),
    }
    let declared = zstd::zstd_safe::get_frame_content_size(stored)
        .map_err(|_| malformed("zstd", "no valid frame header"))?
        .ok_or_else(|| malformed("zstd", "frame does not declare its size"))?;
    check_size(declared, expected as u64)?;
    thread_local! {
        // One decompression context per thread, reused: making one per
        // chunk costs more than decoding a small chunk.
        static CONTEXT: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
            const { std::cell::RefCell::new(None) };
    }
    let decoded = CONTEXT.with(|cell| {
        let mut slot = cell.borrow_mut();
        let context = match slot.as_mut() {
            Some(context) => context,
            None => slot.insert(
                zstd::bulk::Decompressor::new().map_err(|e| malformed("zstd", e.to_string()))?,
            ),
        };
        Ok::<_, DecodeError>(context.decompress(stored, expected))
    })?;
    let raw = decoded.map_err(|e| {
        let text = e.to_string();
        if text.to_ascii_lowercase().contains("checksum") {
            DecodeError::Checksum
        } else {
            malformed("zstd", text)
        }
    })?;
    check_size(raw.len() as u64, expected as u64)?;
    Ok(raw)
}

fn with_crc(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + 4);
    out.extend_from_slice(&crc32fast::hash(raw).to_le_bytes());
    out.extend_from_slice(raw);
    out
}

fn strip_crc(bytes: &[u8], expected: usize) -> Result<Vec<u8>, DecodeError> {
    let Some((crc, data)) = bytes.split_at_checked(4) else {
        return Err(malformed("crc32", "shorter than its checksum"));
    };
    check_size(data.len() as u64, expected as u64)?;
    if crc32fast::hash(data).to_le_bytes() != crc {
        return Err(DecodeError::Checksum);
    }
    Ok(data.to_vec())
}

fn check_size(declared: u64, expected: u64) -> Result<(), DecodeError> {
    if declared == expected {
        Ok(())
    } else {
        Err(DecodeError::Size { declared, expected })
    }
}

fn malformed(codec: &'static str, reason: impl Into<String>) -> DecodeError {
    DecodeError::Malformed {
        codec,
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const CODECS: [Codec; 3] = [Codec::Zstd { level: 3 }, Codec::Lz4, Codec::None];

    #[test]
    fn bytes_shorter_than_a_checksum_are_malformed_not_a_panic() {
        // Found by the chunk_decoder fuzz target: an empty input.
        for codec in CODECS {
            for stored in [&[][..], &[1, 2, 3][..]] {
                for expected in [0, 3, 64] {
                    assert!(
                        decode(codec, stored, expected).is_err(),
                        "{codec:?} {stored:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn every_flipped_byte_is_caught() {
        let raw: Vec<u8> = (0..4096u32)
            .flat_map(|i| (i * 7919 % 1000).to_le_bytes())
            .collect();
        for codec in CODECS {
            let stored = encode(codec, &raw).unwrap();
            for i in (0..stored.len()).step_by(7) {
                let mut bad = stored.clone();
                bad[i] ^= 0x40;
                assert!(decode(codec, &bad, raw.len()).is_err(), "{codec} byte {i}");
            }
            assert!(
                decode(codec, &stored[..stored.len() / 2], raw.len()).is_err(),
                "{codec} truncated"
            );
        }
    }

    #[test]
    fn a_frame_without_checksum_is_refused() {
        let raw = vec![7u8; 1000];
        let plain = zstd::bulk::compress(&raw, 3).unwrap();
        assert!(matches!(
            decode(Codec::Zstd { level: 3 }, &plain, raw.len()),
            Err(DecodeError::Malformed { .. })
        ));
    }

    #[test]
    fn a_bomb_is_refused_before_decompressing() {
        let huge = vec![0u8; 1 << 20];
        for codec in CODECS {
            let stored = encode(codec, &huge).unwrap();
            assert!(
                matches!(decode(codec, &stored, 1024), Err(DecodeError::Size { .. })),
                "{codec}"
            );
        }
    }

    proptest! {
        #[test]
        fn round_trip(raw in proptest::collection::vec(any::<u8>(), 0..2000)) {
            for codec in CODECS {
                let stored = encode(codec, &raw).unwrap();
                prop_assert_eq!(decode(codec, &stored, raw.len()).unwrap(), raw.clone());
            }
        }
    }
}
