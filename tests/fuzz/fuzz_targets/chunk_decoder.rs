//! Any bytes, decoded as a stored chunk by every codec and for a few chunk
//! sizes: an error or exactly the declared size, never a panic, never more
//! memory than the shape allows; and what decodes is what an encode of the
//! decoded cells gives back.
#![no_main]

use gridstore::engine::Codec;
use gridstore::engine::persistence::codec::{decode, encode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let codecs = [Codec::Zstd { level: 3 }, Codec::Lz4, Codec::None];
    for codec in codecs {
        for expected in [0usize, 1, 64, 4096, 256 * 256 * 4] {
            if let Ok(raw) = decode(codec, data, expected) {
                assert_eq!(raw.len(), expected);
                let again = encode(codec, &raw).expect("encoding decoded cells");
                assert_eq!(decode(codec, &again, expected).expect("round trip"), raw);
            }
        }
    }
});
