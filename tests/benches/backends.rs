//! Folder against packed and hdf5 storage: writing and reading 10,000
//! random 256×256 f32 chunks (zstd-compressed as the store keeps them),
//! then the same with 64×64 chunks (where the cost per chunk, not per
//! byte, shows), and opening a store of many chunks and of a tenth as many.
//! Then rewriting one inner chunk of a shard of 64 as gridstore does
//! (spliced between the others' bytes) against what an encoder from the
//! shard's cells does (every inner chunk compressed again).
//! `cargo bench --bench backends`.
#![allow(clippy::unwrap_used)]

use gridstore::engine::Codec;
use gridstore::engine::persistence::codec::encode;
use gridstore::storage::{Backend, DynStorage, StoreKey};
use std::path::Path;
use std::time::Instant;

const CHUNKS: usize = 10_000;

/// A smooth surface with noise, like a DEM chunk, encoded as stored.
fn chunk(seed: usize, side: usize) -> Vec<u8> {
    let mut raw = Vec::with_capacity(side * side * 4);
    let mut state = seed as u64 * 6_364_136_223_846_793_005 + 1;
    for i in 0..side * side {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let noise = (state >> 40) as f32 / (1u64 << 24) as f32;
        let (x, y) = ((i % side) as f32, (i / side) as f32);
        let v = (x * 0.05 + seed as f32).sin() * 50.0 + y * 0.3 + noise;
        raw.extend_from_slice(&v.to_le_bytes());
    }
    encode(Codec::Zstd { level: 3 }, &raw).unwrap()
}

fn key(i: usize) -> StoreKey {
    StoreKey::new(format!("0/data/{}/{}", i / 100, i % 100)).unwrap()
}

/// Seconds to put every chunk (and make them durable for other processes).
fn write(storage: &DynStorage, chunks: &[Vec<u8>]) -> f64 {
    let start = Instant::now();
    for (i, bytes) in chunks.iter().enumerate() {
        storage.put(&key(i), bytes).unwrap();
    }
    storage.sync().unwrap();
    start.elapsed().as_secs_f64()
}

/// Seconds to get `CHUNKS` chunks in a random order.
fn read(storage: &DynStorage, order: &[usize]) -> f64 {
    let start = Instant::now();
    let mut bytes = 0;
    let mut sum = 0u64;
    for &i in order {
        // As the store reads chunks: a view where the backend can give one
        // (their codecs check them), touching every cache line (a sum).
        let value = storage.get_view(&key(i)).unwrap().unwrap();
        bytes += value.len();
        sum = sum.wrapping_add(value.iter().step_by(64).map(|b| u64::from(*b)).sum::<u64>());
    }
    assert!(bytes > 0 && sum > 0);
    start.elapsed().as_secs_f64()
}

/// Median milliseconds to open the store at `path` (nothing of it open in
/// this process) and read chunk `i`.
fn open_ms(path: &Path, i: usize) -> f64 {
    let mut times: Vec<f64> = (0..11)
        .map(|_| {
            let start = Instant::now();
            let storage = gridstore::storage::open(path).unwrap();
            storage.get(&key(i)).unwrap().unwrap();
            let ms = start.elapsed().as_secs_f64() * 1e3;
            drop(storage);
            ms
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[5]
}

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench/backends");
    std::fs::remove_dir_all(&dir).ok();
    std::fs::create_dir_all(&dir).unwrap();
    for side in [256, 64] {
        scenario(&dir.join(side.to_string()), side);
    }
    shard_rewrite();
}

/// Milliseconds (median of 21) to rewrite a shard of 64 chunks of 256²
/// f32 with one inner chunk changed: spliced, and recompressed whole.
fn shard_rewrite() {
    use gridstore::engine::persistence::shard;
    let codec = Codec::Zstd { level: 3 };
    let raw: Vec<Vec<u8>> = (0..64)
        .map(|i| {
            gridstore::engine::persistence::codec::decode(codec, &chunk(i, 256), 256 * 256 * 4)
                .unwrap()
        })
        .collect();
    let sealed: Vec<Vec<u8>> = (0..64)
        .map(|i| shard::seal(codec, &chunk(i, 256)).unwrap())
        .collect();
    let stored = shard::encode(
        &sealed
            .iter()
            .map(|c| Some(c.as_slice()))
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let changed = shard::seal(codec, &chunk(99, 256)).unwrap();
    let median = |f: &dyn Fn() -> usize| {
        let mut times: Vec<f64> = (0..21)
            .map(|_| {
                let start = Instant::now();
                assert!(f() > 0);
                start.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        times.sort_by(f64::total_cmp);
        times[10]
    };
    let splice = median(&|| {
        let mut chunks = shard::split(&stored, 64).unwrap();
        chunks[17] = Some(changed.as_slice());
        shard::encode(&chunks).unwrap().len()
    });
    let recompress = median(&|| {
        let chunks: Vec<Vec<u8>> = raw
            .iter()
            .map(|r| shard::seal(codec, &encode(codec, r).unwrap()).unwrap())
            .collect();
        shard::encode(
            &chunks
                .iter()
                .map(|c| Some(c.as_slice()))
                .collect::<Vec<_>>(),
        )
        .unwrap()
        .len()
    });
    println!(
        "shard of 64 chunks of 256x256 f32, one chunk changed: spliced {splice:.2} ms, recompressed whole {recompress:.1} ms ({:.0}x)",
        recompress / splice
    );
}

/// Every backend writing, reading and opening `CHUNKS` chunks of
/// `side`×`side` f32, with the ratios against the folder backend.
fn scenario(dir: &Path, side: usize) {
    std::fs::create_dir_all(dir).unwrap();
    let distinct: Vec<Vec<u8>> = (0..64).map(|i| chunk(i, side)).collect();
    let chunks: Vec<Vec<u8>> = (0..CHUNKS).map(|i| distinct[i % 64].clone()).collect();
    let total: usize = chunks.iter().map(Vec::len).sum();
    println!(
        "{CHUNKS} chunks of {side}x{side} f32, zstd: {:.0} MB stored",
        total as f64 / 1e6
    );
    let mut order: Vec<usize> = (0..CHUNKS).collect();
    let mut state = 42u64;
    for i in (1..order.len()).rev() {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        order.swap(i, (state >> 33) as usize % (i + 1));
    }
    let mut figures = Vec::new();
    for backend in [Backend::Folder, Backend::Packed, Backend::Hdf5] {
        let path = dir.join(format!("{backend}.gs"));
        let storage = gridstore::storage::create(&path, backend).unwrap();
        let w = write(&storage, &chunks);
        drop(storage);
        let storage = gridstore::storage::open(&path).unwrap();
        // Warm the OS cache, then time.
        read(&storage, &order);
        let r = read(&storage, &order);
        drop(storage);
        // Opening does not depend on the number of chunks: a store of a
        // tenth as many opens as fast.
        let small = dir.join(format!("{backend}-small.gs"));
        let few = gridstore::storage::create(&small, backend).unwrap();
        write(&few, &chunks[..CHUNKS / 10]);
        drop(few);
        let (open_small, open_all) = (open_ms(&small, CHUNKS / 20), open_ms(&path, CHUNKS / 2));
        println!(
            "{backend:>6}: write {w:.2} s ({:.0} chunks/s), read {r:.3} s ({:.0} chunks/s), open + first read {open_all:.2} ms ({open_small:.2} ms at {} chunks)",
            CHUNKS as f64 / w,
            CHUNKS as f64 / r,
            CHUNKS / 10
        );
        figures.push((w, r));
    }
    let (fw, fr) = figures[0];
    for (name, (w, r)) in [("packed", figures[1]), ("hdf5", figures[2])] {
        println!(
            "{side}x{side}: {name} vs folder: write {:.1}x faster, read {:.1}x faster",
            fw / w,
            fr / r
        );
    }
}
