//! Any bytes as the contents of a pack: every record parsed from its header
//! on lies within the bytes and carries a checksum that matched; nothing
//! panics, however the lengths and kinds are set.
#![no_main]

use gridstore::storage::packed::pack::{HEADER_LEN, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut at = HEADER_LEN;
    // Walk records as the index replay does, and resynchronise past damage
    // as repair does.
    while at < data.len() as u64 {
        match parse(data, at) {
            Ok(record) => {
                assert!(record.value_at + record.value_len <= data.len() as u64);
                assert!(record.next > at);
                at = record.next;
            }
            Err(_) => at += 16,
        }
    }
});
