//! Replaying records onto the index: what each record did, applied to the
//! buffered index changes, as the writer did when it wrote it. The writer
//! replays the packs' tail when it opens; `repair` replays every record.

use super::index::{self, Changes, Location, Staged};
use crate::storage::StorageError;
use crate::storage::record::{self, Kind};
use std::path::Path;

/// Applies one record to buffered changes, as the writer did when it wrote it.
pub(super) fn replay(
    changes: &mut Changes,
    db: &redb::Database,
    index_path: &Path,
    pack: u32,
    record: &record::Record,
    value: &[u8],
) -> Result<(), StorageError> {
    let loc = Location {
        pack,
        value_at: record.value_at,
        len: record.value_len,
        crc: record.crc,
    };
    let key = record.key.clone();
    match record.kind {
        Kind::Put => {
            changes.live.insert(key, Some(loc));
        }
        Kind::Delete => {
            changes.live.insert(key, None);
        }
        Kind::Stage => {
            changes.staged.insert(
                key,
                Some(Staged {
                    sequence: record.sequence,
                    value: Some(loc),
                }),
            );
        }
        Kind::StageRemoval => {
            changes.staged.insert(
                key,
                Some(Staged {
                    sequence: record.sequence,
                    value: None,
                }),
            );
        }
        Kind::Commit | Kind::Discard => {
            let target = u64::from_le_bytes(value.try_into().unwrap_or([0; 8]));
            let staged = match changes.staged.get(&key) {
                Some(s) => *s,
                None => index::read_staged(db, index_path, &key)?,
            };
            if let Some(s) = staged.filter(|s| s.sequence == target) {
                if record.kind == Kind::Commit {
                    changes.live.insert(key.clone(), s.value);
                }
                changes.staged.insert(key, None);
            }
        }
    }
    Ok(())
}
