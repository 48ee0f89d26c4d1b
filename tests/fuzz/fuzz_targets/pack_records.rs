//! Any bytes as the contents of a pack: every record the walk finds (as the
//! index replay, compaction and repair walk them) lies within the bytes,
//! moves the walk forward and carries a checksum that matched; nothing
//! panics, however the lengths and kinds are set.
#![no_main]

use gridstore::storage::packed::pack::HEADER_LEN;
use gridstore::storage::record::Walk;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut walk = Walk::new(data, HEADER_LEN, data.len() as u64);
    let mut at = walk.position();
    while let Some(found) = walk.next() {
        if let Ok(record) = found {
            assert!(record.value_at + record.value_len <= data.len() as u64);
            assert!(record.next > at);
        }
        assert!(walk.position() > at, "the walk always moves on");
        at = walk.position();
    }
});
