//! Rebuilding a packed store's index from its packs alone: every record
//! carries its key, kind, sequence and checksum, so losing or damaging the
//! index loses nothing.

use super::index::{self, Applied, Changes};
use super::pack::{self, HEADER_LEN};
use super::{INDEX_FILE, PACKS_DIR, map_pack, pack_numbers, replay, take_writer_lock};
use crate::storage::StorageError;
use crate::storage::record::{Kind, Walk};
use std::fs::{self, File};
use std::path::Path;

/// What [`repair`] found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepairReport {
    /// Packs scanned.
    pub packs: usize,
    /// Valid records read.
    pub records: u64,
    /// Keys with a value in the rebuilt index.
    pub live_keys: u64,
    /// Damaged stretches skipped, as "pack: reason".
    pub damaged: Vec<String>,
}

/// Rebuilds the index of the packed store at `root` from its packs, under
/// the writer lock, and swaps it in atomically. Damaged records are
/// skipped (and reported); the scan picks up at the next valid record.
///
/// # Errors
/// Another writer holds the store, or I/O.
pub fn repair(root: &Path) -> Result<RepairReport, StorageError> {
    let lock = take_writer_lock(root)?;
    let dir = root.join(PACKS_DIR);
    let mut report = RepairReport::default();
    let mut records = Vec::new();
    let mut last = Applied::default();
    for number in pack_numbers(&dir)? {
        report.packs += 1;
        let path = pack::pack_path(&dir, number);
        let file = File::open(&path).map_err(|e| StorageError::io(&path, e))?;
        let map = map_pack(&file, &path)?;
        // A readable header bounds the scan; without one, the whole file.
        let (limit, header_ok) = match pack::read_head(&file, &path) {
            Ok(head) => (head.head, true),
            Err(e) => {
                report.damaged.push(format!("{e}"));
                (map.len() as u64, false)
            }
        };
        let bytes = map.get(..limit as usize).unwrap_or(&map[..]);
        let mut skipping: Option<String> = None;
        // Damaged places are skipped, 16 bytes at a time, to the next record.
        for found in Walk::new(bytes, HEADER_LEN, limit) {
            let record = match found {
                Ok(record) => record,
                Err(reason) => {
                    skipping.get_or_insert(reason.to_string());
                    continue;
                }
            };
            if let Some(reason) = skipping.take() {
                report.damaged.push(format!("{}: {reason}", path.display()));
            }
            // Only commits and discards need their value (a sequence) to be
            // replayed: never hold the data.
            let value = if matches!(record.kind, Kind::Commit | Kind::Discard) {
                bytes[record.value_at as usize..(record.value_at + record.value_len) as usize]
                    .to_vec()
            } else {
                Vec::new()
            };
            last = Applied {
                sequence: last.sequence.max(record.sequence),
                pack: number,
                offset: record.next,
            };
            records.push((number, record, value));
        }
        // Without a header the scan runs into the file's unwritten (zero)
        // tail, which is not damage; below a valid head everything is.
        if let Some(reason) = skipping.filter(|_| header_ok) {
            report.damaged.push(format!("{}: {reason}", path.display()));
        }
    }
    records.sort_by_key(|(_, record, _)| record.sequence);
    report.records = records.len() as u64;
    // Build the new index beside the old one, then swap it in.
    let fresh = root.join(format!("{INDEX_FILE}.rebuild"));
    fs::remove_file(&fresh).ok();
    let db = index::open_writable(&fresh)?;
    let mut changes = Changes::default();
    for (number, record, value) in &records {
        replay(&mut changes, &db, &fresh, *number, record, value)?;
    }
    report.live_keys = changes.live.values().filter(|v| v.is_some()).count() as u64;
    index::apply(&db, &fresh, &changes, last)?;
    drop(db);
    let target = root.join(INDEX_FILE);
    fs::rename(&fresh, &target).map_err(|e| StorageError::io(&target, e))?;
    drop(lock);
    Ok(report)
}
