//! Folder against packed storage: writing and reading 10,000 random
//! 256×256 f32 chunks (zstd-compressed as the store keeps them), and
//! opening a store of many chunks. `cargo bench --bench backends`.
#![allow(clippy::unwrap_used)]

use gridstore::engine::Codec;
use gridstore::engine::codec::encode;
use gridstore::storage::{Backend, DynStorage, StoreKey};
use std::path::Path;
use std::time::Instant;

const CHUNKS: usize = 10_000;
const SIDE: usize = 256;

/// A smooth surface with noise, like a DEM chunk, encoded as stored.
fn chunk(seed: usize) -> Vec<u8> {
    let mut raw = Vec::with_capacity(SIDE * SIDE * 4);
    let mut state = seed as u64 * 6_364_136_223_846_793_005 + 1;
    for i in 0..SIDE * SIDE {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let noise = (state >> 40) as f32 / (1u64 << 24) as f32;
        let (x, y) = ((i % SIDE) as f32, (i / SIDE) as f32);
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

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench/backends");
    std::fs::remove_dir_all(&dir).ok();
    std::fs::create_dir_all(&dir).unwrap();
    let distinct: Vec<Vec<u8>> = (0..64).map(chunk).collect();
    let chunks: Vec<Vec<u8>> = (0..CHUNKS).map(|i| distinct[i % 64].clone()).collect();
    let total: usize = chunks.iter().map(Vec::len).sum();
    println!(
        "{CHUNKS} chunks of {SIDE}x{SIDE} f32, zstd: {:.0} MB stored",
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
    for backend in [Backend::Folder, Backend::Packed] {
        let path = dir.join(format!("{backend}.gs"));
        let storage = gridstore::storage::create(&path, backend).unwrap();
        let w = write(&storage, &chunks);
        drop(storage);
        let storage = gridstore::storage::open(&path).unwrap();
        // Warm the OS cache, then time.
        read(&storage, &order);
        let r = read(&storage, &order);
        let start = Instant::now();
        let reopened = gridstore::storage::open(&path).unwrap();
        reopened.get(&key(CHUNKS / 2)).unwrap().unwrap();
        let open = start.elapsed().as_secs_f64();
        println!(
            "{backend:>6}: write {w:.2} s ({:.0} chunks/s), read {r:.3} s ({:.0} chunks/s), open + first read {:.2} ms",
            CHUNKS as f64 / w,
            CHUNKS as f64 / r,
            open * 1e3
        );
        figures.push((w, r));
    }
    let (fw, fr) = figures[0];
    let (pw, pr) = figures[1];
    println!(
        "packed vs folder: write {:.1}x faster, read {:.1}x faster",
        fw / pw,
        fr / pr
    );
}
