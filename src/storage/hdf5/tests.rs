use super::file::h5_error;
use super::*;

fn key(s: &str) -> StoreKey {
    StoreKey::new(s).unwrap()
}

#[test]
fn passes_the_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let n = std::sync::atomic::AtomicU32::new(0);
    crate::storage::conformance::run_all(&|| {
        let i = n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Box::new(Hdf5Storage::create(dir.path().join(format!("s{i}.h5"))).unwrap())
    });
}

#[test]
fn a_writer_killed_before_applying_its_index_loses_nothing_it_logged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.h5");
    let s = Hdf5Storage::create(&path).unwrap();
    s.put(&key("a/1"), b"one").unwrap();
    s.sync().unwrap();
    s.put(&key("a/1"), b"uno").unwrap();
    s.put(&key("a/2"), &[9u8; 5000]).unwrap();
    s.stage(&key("a/3"), Some(b"three")).unwrap();
    s.commit(&key("a/3")).unwrap();
    s.stage(&key("a/4"), Some(b"never")).unwrap();
    s.delete(&key("a/1")).unwrap();
    // Another storage of the file in this process shares the writer's view.
    let other = Hdf5Storage::open(&path).unwrap();
    assert_eq!(other.get(&key("a/2")).unwrap().unwrap(), vec![9u8; 5000]);
    assert!(matches!(
        other.lock_writer(),
        Err(StorageError::Locked { .. })
    ));
    drop(other);
    // Killed after writing the log and its head, before applying the
    // index: the next writer replays the records.
    {
        let mut open = s.lock();
        let Open::Writing(w, _) = &mut *open else {
            panic!("not writing")
        };
        let err = |e: hdf5::Error| h5_error(&path, &e);
        let start = usize::try_from(w.log_len).unwrap();
        let end = start + w.buffer.len();
        w.h.log.resize(end).map_err(err).unwrap();
        w.h.log
            .write_slice(&w.buffer, start..end)
            .map_err(err)
            .unwrap();
        w.h.log.flush().unwrap();
        w.state.head = end as u64;
        w.state.last_sequence = w.next_sequence - 1;
        w.state.write(&w.h, &path).unwrap();
        // Gone without applying its index changes.
        *open = Open::Closed;
    }
    drop(s);
    // A reader sees the store as of the head already: the records past
    // "applied" are read over the index.
    let reader = Hdf5Storage::open(&path).unwrap();
    assert!(reader.get(&key("a/1")).unwrap().is_none());
    assert_eq!(reader.get(&key("a/3")).unwrap().unwrap(), b"three");
    assert!(reader.get(&key("a/4")).unwrap().is_none());
    let listed: Vec<String> = reader
        .list("a")
        .unwrap()
        .into_iter()
        .map(|(k, _)| k.to_string())
        .collect();
    assert_eq!(listed, ["a/2", "a/3"]);
    drop(reader);
    let s = Hdf5Storage::open(&path).unwrap();
    s.lock_writer().unwrap();
    assert!(s.get(&key("a/1")).unwrap().is_none());
    assert_eq!(s.get(&key("a/2")).unwrap().unwrap(), vec![9u8; 5000]);
    assert_eq!(s.get(&key("a/3")).unwrap().unwrap(), b"three");
    assert!(
        s.get(&key("a/4")).unwrap().is_none(),
        "staged, never committed"
    );
    assert!(s.commit(&key("a/4")).unwrap(), "still staged");
    assert_eq!(s.get(&key("a/4")).unwrap().unwrap(), b"never");
}

#[test]
fn a_file_that_is_not_a_store_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain.h5");
    let f = hdf5::File::create(&plain).unwrap();
    f.new_dataset::<u8>().shape(4).create("x").unwrap();
    drop(f);
    let err = Hdf5Storage::open(&plain).unwrap_err().to_string();
    assert!(
        err.contains("plain.h5") && err.contains("not a gridstore store"),
        "{err}"
    );
    let text = dir.path().join("text.h5");
    std::fs::write(&text, b"hello").unwrap();
    let err = Hdf5Storage::open(&text).unwrap_err().to_string();
    assert!(
        err.contains("text.h5") && err.contains("not an HDF5 file"),
        "{err}"
    );
}

#[test]
fn the_index_grows_and_every_value_stays() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.h5");
    let s = Hdf5Storage::create(&path).unwrap();
    for i in 0..30_000u32 {
        s.put(
            &key(&format!("0/data/{}/{}", i / 100, i % 100)),
            &i.to_le_bytes(),
        )
        .unwrap();
    }
    s.sync().unwrap();
    drop(s);
    let s = Hdf5Storage::open(&path).unwrap();
    for i in (0..30_000u32).step_by(997) {
        let v = s
            .get(&key(&format!("0/data/{}/{}", i / 100, i % 100)))
            .unwrap()
            .unwrap();
        assert_eq!(v, i.to_le_bytes());
    }
    assert_eq!(s.list("0").unwrap().len(), 30_000);
}

#[test]
fn an_index_pointing_past_the_log_is_named_never_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.h5");
    let s = Hdf5Storage::create(&path).unwrap();
    for i in 0..20u8 {
        s.put(&key(&format!("k/{i}")), &[i; 300]).unwrap();
    }
    drop(s);
    // The log's head moved back, as a truncated copy of the file would say.
    {
        let file = hdf5::File::with_options()
            .with_fapl(|f| f.file_locking(false))
            .open_rw(&path)
            .unwrap();
        let state = file.dataset("state").unwrap();
        let mut v: Vec<u64> = state.read_raw().unwrap();
        v[0] = 64;
        v[2] = 64;
        state.write(&v).unwrap();
    }
    let s = Hdf5Storage::open(&path).unwrap();
    let err = s.get(&key("k/19")).unwrap_err().to_string();
    assert!(
        err.contains("s.h5") && err.contains("past the end of the log"),
        "{err}"
    );
    assert!(s.list("").is_err());
}
