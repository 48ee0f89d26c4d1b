//! Reclaiming the space of overwritten and removed values.
//!
//! Packs are append-only, so a rewritten chunk leaves its old record behind.
//! [`PackedStorage::compact`] copies the live values out of every pack that
//! holds anything else, in ascending pack order, to the end of the newest
//! pack, makes the index durable, and only then deletes the old pack.
//!
//! Why ascending order keeps `repair` right: a dead record is only harmful
//! to a rebuild if it survives while the record that superseded it (a later
//! put or delete, always in the same or a later pack) is gone. Compaction
//! deletes a pack only once every earlier pack is deleted or holds nothing
//! but live values, so no surviving record is ever superseded by a deleted
//! one, whenever the process stops. A pack holding only live values is kept
//! as it is.

use super::pack;
use super::{PackedStorage, Writer, pack_numbers};
use crate::storage::StorageError;
use crate::storage::record::{self, Kind, Walk};
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;

/// What [`PackedStorage::compact`] found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactReport {
    /// Packs before compacting.
    pub packs_before: usize,
    /// Packs whose live values were moved and which were then deleted.
    pub packs_rewritten: usize,
    /// Live values moved.
    pub values_moved: u64,
    /// Disk space the packs used before (allocated blocks, not file sizes:
    /// packs are sparse).
    pub disk_before: u64,
    /// Disk space the packs use now.
    pub disk_after: u64,
}

/// What a scanned pack holds.
struct Scan {
    /// Records that are a key's live value or pending staged change.
    live: Vec<Keep>,
    /// Whether every record is a live `put`: then the pack stays.
    clean: bool,
}

/// A record to carry over, with what it is.
struct Keep {
    kind: Kind,
    record: record::Record,
}

impl PackedStorage {
    /// Copies the live values out of every pack holding dead records, then
    /// deletes those packs, so the store uses only the space its current
    /// values need. Holds the writer lock throughout; readers in other
    /// processes go on reading (one that finds a pack gone looks its key up
    /// again); those in this process wait until it ends.
    ///
    /// # Errors
    /// Another writer holds the store, I/O (the disk may need room for one
    /// pack's live values), or a damaged record (run `gridstore repair`
    /// first). Whatever step fails, the store holds all its values.
    pub fn compact(&self) -> Result<CompactReport, StorageError> {
        let numbers = pack_numbers(&self.packs_dir())?;
        let mut report = CompactReport {
            packs_before: numbers.len(),
            disk_before: self.disk_usage()?,
            ..CompactReport::default()
        };
        self.with_writer(|w| {
            w.flush_always(&self.index_path())?;
            // New records go to a fresh pack, so every existing one may go.
            let first_new = self.start_pack(w, 0)?;
            for number in numbers.into_iter().filter(|n| *n < first_new) {
                let scan = self.scan(w, number)?;
                if scan.clean {
                    continue;
                }
                report.values_moved += self.carry_over(w, number, &scan.live)?;
                // The copies on disk, then the index pointing at them, and
                // only then the old pack goes: even a power cut between
                // any two steps loses nothing.
                self.sync_packs(first_new..=w.pack)?;
                w.flush_always(&self.index_path())?;
                self.delete_pack(number)?;
                report.packs_rewritten += 1;
            }
            Ok(())
        })?;
        report.disk_after = self.disk_usage()?;
        Ok(report)
    }

    /// Classifies every record of pack `number` against the index.
    fn scan(&self, w: &Writer, number: u32) -> Result<Scan, StorageError> {
        let mapped = self.mapped(number)?;
        let head = pack::read_head(&mapped.file, &mapped.path)?;
        let bytes = mapped.map.get(..head.head as usize).unwrap_or(&[]);
        let damaged = |reason: String| StorageError::Corrupt {
            path: mapped.path.clone(),
            reason: format!("{reason}; run `gridstore repair` before compacting"),
        };
        // An empty pack goes too.
        let mut scan = Scan {
            live: Vec::new(),
            clean: head.head > pack::HEADER_LEN,
        };
        for record in Walk::new(bytes, pack::HEADER_LEN, head.head) {
            let record = record.map_err(|e| damaged(e.to_string()))?;
            let live = match record.kind {
                Kind::Put | Kind::Stage => self
                    .live_location(w, &record.key)?
                    .is_some_and(|loc| loc.pack == number && loc.value_at == record.value_at),
                _ => false,
            };
            let pending = match record.kind {
                Kind::Stage | Kind::StageRemoval => self
                    .staged_entry(w, &record.key)?
                    .is_some_and(|s| s.sequence == record.sequence),
                _ => false,
            };
            scan.clean &= live && record.kind == Kind::Put;
            if live {
                scan.live.push(Keep {
                    kind: Kind::Put,
                    record: record.clone(),
                });
            }
            if pending {
                scan.live.push(Keep {
                    kind: record.kind,
                    record,
                });
            }
        }
        Ok(scan)
    }

    /// Appends `keep` (records of pack `number`) anew and points the index
    /// at the copies. Returns how many were copied.
    fn carry_over(&self, w: &mut Writer, number: u32, keep: &[Keep]) -> Result<u64, StorageError> {
        let mapped = self.mapped(number)?;
        for Keep { kind, record } in keep {
            let range = record.value_at as usize..(record.value_at + record.value_len) as usize;
            let value = mapped.map.get(range).ok_or_else(|| StorageError::Corrupt {
                path: mapped.path.clone(),
                reason: format!("{} lies past the end of the pack", record.key),
            })?;
            let (sequence, loc) = self.append(w, *kind, &record.key, value)?;
            match kind {
                Kind::Put => {
                    w.changes.live.insert(record.key.clone(), Some(loc));
                }
                _ => {
                    let value = (*kind == Kind::Stage).then_some(loc);
                    w.changes
                        .staged
                        .insert(record.key.clone(), Some(super::Staged { sequence, value }));
                }
            }
        }
        Ok(keep.len() as u64)
    }

    /// Where `key`'s live value is, as the writer sees it.
    fn live_location(
        &self,
        w: &Writer,
        key: &str,
    ) -> Result<Option<super::Location>, StorageError> {
        match w.changes.live.get(key) {
            Some(change) => Ok(*change),
            None => super::index::read_live(&w.db, &self.index_path(), key),
        }
    }

    /// Flushes packs `numbers` and the packs folder to the disk.
    fn sync_packs(&self, numbers: std::ops::RangeInclusive<u32>) -> Result<(), StorageError> {
        let dir = self.packs_dir();
        for number in numbers {
            let path = pack::pack_path(&dir, number);
            std::fs::File::open(&path)
                .and_then(|f| f.sync_all())
                .map_err(|e| StorageError::io(&path, e))?;
        }
        std::fs::File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| StorageError::io(&dir, e))
    }

    /// Removes pack `number` and forgets its map.
    fn delete_pack(&self, number: u32) -> Result<(), StorageError> {
        let path = pack::pack_path(&self.packs_dir(), number);
        std::fs::remove_file(&path).map_err(|e| StorageError::io(&path, e))?;
        self.forget_map(number);
        Ok(())
    }

    /// Bytes the packs occupy on disk.
    fn disk_usage(&self) -> Result<u64, StorageError> {
        let dir = self.packs_dir();
        pack_numbers(&dir)?
            .into_iter()
            .map(|n| allocated(&pack::pack_path(&dir, n)))
            .sum()
    }
}

fn allocated(path: &Path) -> Result<u64, StorageError> {
    let meta = std::fs::metadata(path).map_err(|e| StorageError::io(path, e))?;
    Ok(meta.blocks() * 512)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{Storage as _, StoreKey};
    use std::collections::BTreeMap;

    fn key(s: &str) -> StoreKey {
        StoreKey::new(s).unwrap()
    }

    fn everything(s: &PackedStorage) -> BTreeMap<String, Vec<u8>> {
        s.list("")
            .unwrap()
            .into_iter()
            .map(|(k, _)| (k.to_string(), s.get(&k).unwrap().unwrap()))
            .collect()
    }

    #[test]
    fn compacting_reclaims_rewritten_values_and_keeps_every_live_one() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("p");
        let s = PackedStorage::create_with_capacity(&root, 1 << 20).unwrap();
        // Ten rounds of rewriting 20 chunks of 20 KB: 4 MB written, 400 KB live.
        for round in 0..10u8 {
            for i in 0..20 {
                s.put(&key(&format!("0/data/0/{i}")), &vec![round; 20_000])
                    .unwrap();
            }
        }
        s.put(&key("gone"), b"x").unwrap();
        s.delete(&key("gone")).unwrap();
        s.stage(&key("pending"), Some(b"staged value")).unwrap();
        s.stage(&key("0/data/0/0"), None).unwrap();
        let before = everything(&s);
        let report = s.compact().unwrap();
        assert!(report.packs_rewritten >= 4, "{report:?}");
        assert_eq!(report.values_moved, 20 + 2, "{report:?}");
        assert!(
            report.disk_after * 5 < report.disk_before,
            "4 MB of records down to what 400 KB of values need: {report:?}"
        );
        assert_eq!(everything(&s), before);
        // Staged changes survive, and still commit.
        assert!(s.commit(&key("pending")).unwrap());
        assert!(s.commit(&key("0/data/0/0")).unwrap());
        assert!(s.get(&key("0/data/0/0")).unwrap().is_none());
        drop(s);

        // A rebuilt index sees exactly what the compacted one does.
        let s = PackedStorage::open(&root).unwrap();
        let after = everything(&s);
        drop(s);
        std::fs::remove_file(root.join(super::super::INDEX_FILE)).unwrap();
        let repaired = super::super::repair(&root).unwrap();
        assert!(repaired.damaged.is_empty(), "{repaired:?}");
        let s = PackedStorage::open(&root).unwrap();
        assert_eq!(everything(&s), after);
        // The commits made garbage of the staged records; once that is
        // reclaimed, a second run finds nothing to do.
        assert!(s.compact().unwrap().packs_rewritten > 0);
        let again = s.compact().unwrap();
        assert_eq!((again.packs_rewritten, again.values_moved), (0, 0));
    }

    #[test]
    fn a_compaction_stopped_after_any_pack_leaves_every_value_and_a_sound_rebuild() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("p");
        let s = PackedStorage::create_with_capacity(&root, 64 * 1024).unwrap();
        for round in 0..6u8 {
            for i in 0..12 {
                if (i + usize::from(round)) % 5 == 0 {
                    s.delete(&key(&format!("k/{i}"))).unwrap();
                } else {
                    s.put(&key(&format!("k/{i}")), &vec![round; 9_000]).unwrap();
                }
            }
        }
        let expected = everything(&s);
        drop(s);
        let packs = pack_numbers(&root.join(super::super::PACKS_DIR)).unwrap();
        assert!(packs.len() > 3);
        // Stop after k packs: a copy of the store, compacted by hand that far.
        for stop in 1..packs.len() {
            let copy = dir.path().join(format!("c{stop}"));
            copy_dir(&root, &copy);
            let s = PackedStorage::open(&copy).unwrap();
            s.with_writer(|w| {
                w.flush_always(&s.index_path())?;
                let first_new = s.start_pack(w, 0)?;
                for &number in packs.iter().filter(|n| **n < first_new).take(stop) {
                    let scan = s.scan(w, number)?;
                    s.carry_over(w, number, &scan.live)?;
                    w.flush_always(&s.index_path())?;
                    s.delete_pack(number)?;
                }
                Ok(())
            })
            .unwrap();
            assert_eq!(everything(&s), expected, "stopped after {stop} packs");
            drop(s);
            std::fs::remove_file(copy.join(super::super::INDEX_FILE)).unwrap();
            super::super::repair(&copy).unwrap();
            let s = PackedStorage::open(&copy).unwrap();
            assert_eq!(everything(&s), expected, "rebuilt after {stop} packs");
        }
    }

    /// Eight rounds of 16 keys of 30 kB, the last holding 7s, and k/0
    /// written once more: the pack of k/0..k/7's last values then holds a
    /// dead record too, so compaction moves them.
    fn rewrite_sixteen_keys(s: &PackedStorage) {
        for round in 0..8u8 {
            for i in 0..16 {
                s.put(&key(&format!("k/{i}")), &vec![round; 30_000])
                    .unwrap();
            }
        }
        s.put(&key("k/0"), &[7u8; 30_000]).unwrap();
        s.sync().unwrap();
    }

    #[test]
    fn a_reader_of_another_instance_reads_every_value_during_a_compaction() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("p");
        let s = PackedStorage::create_with_capacity(&root, 256 * 1024).unwrap();
        rewrite_sixteen_keys(&s);
        // As another process would: its own index handle and maps.
        let reader = PackedStorage::open(&root).unwrap();
        // The race made certain: the value is looked up, then its pack is
        // compacted away before the reader maps it.
        let compacted = std::cell::Cell::new(false);
        let value = reader
            .read_located("k/3", |loc| {
                if !compacted.replace(true) {
                    assert!(s.compact().unwrap().packs_rewritten > 2);
                }
                reader.read_value("k/3", loc)
            })
            .unwrap()
            .unwrap();
        assert_eq!(value, vec![7u8; 30_000]);
        rewrite_sixteen_keys(&s);
        let done = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|scope| {
            scope.spawn(|| {
                let mut reads = 0;
                while !done.load(std::sync::atomic::Ordering::Relaxed) || reads < 200 {
                    let i = reads % 16;
                    let v = reader.get(&key(&format!("k/{i}"))).unwrap().unwrap();
                    assert_eq!(v, vec![7u8; 30_000]);
                    reads += 1;
                }
            });
            let report = s.compact().unwrap();
            assert!(report.packs_rewritten > 2, "{report:?}");
            done.store(true, std::sync::atomic::Ordering::Relaxed);
        });
    }

    fn copy_dir(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                copy_dir(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), target).unwrap();
            }
        }
    }
}
