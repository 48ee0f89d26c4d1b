//! Exports whose tiles are the store's chunks, copied without recompressing.
//!
//! When a GeoTIFF export lines up with a level's chunk grid (same cell size,
//! origin on a chunk corner, one band, zstd chunks whose sides are multiples
//! of 16), every output tile is exactly one stored chunk: a zstd frame of
//! little-endian cells in row-major order, which is what a ZSTD-compressed
//! TIFF tile holds. GDAL writes the header, georeferencing and nodata of a
//! sparse tiled file with no tiles; the checked chunk bytes are then appended
//! and the TileOffsets / TileByteCounts arrays filled in. Absent chunks all
//! point at one all-nodata tile. Every chunk's checksum is checked before
//! its bytes are copied (a shard's inner chunk by its CRC-32C, a chunk of
//! its own by decoding it), so a corrupt chunk still fails the export.

use super::OutputGrid;
use crate::engine::persistence::codec;
use crate::engine::{ChunkLoc, Codec, DType, EngineError, Store, Window};
use crate::gdal_io::OutputError;
use crate::gdal_io::cell::GdalCell;
use gdal::raster::RasterCreationOptions;
use gdal::{Dataset, DriverManager};
use rayon::prelude::*;
use std::fs::OpenOptions;
use std::io::{Read as _, Seek, SeekFrom, Write as _};

const TILE_OFFSETS: u16 = 324;
const TILE_BYTE_COUNTS: u16 = 325;

/// The chunk window the output covers, when it can be copied chunk for chunk.
fn aligned_window(store: &Store, output: &OutputGrid) -> Option<Window> {
    let s = store.structure();
    let grid = store.grid();
    let [w, h] = s.chunk;
    let fits = s.bands.is_none_or(|b| b == 1)
        && matches!(s.codec, Codec::Zstd { .. })
        && s.dtype != DType::I8
        && w % 16 == 0
        && h % 16 == 0;
    let level_cell = grid.cell_size(output.level);
    let same_cell = (0..2).all(|i| (level_cell[i] - output.cell[i]).abs() <= output.cell[i] * 1e-9);
    let (c, r) = grid.fractional_cell(output.level, output.extent.min_x, output.extent.max_y);
    let on_chunk = c >= 0.0 && r >= 0.0 && c % f64::from(w) == 0.0 && r % f64::from(h) == 0.0;
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let window = Window {
        row: r as u64,
        col: c as u64,
        rows: output.rows as u64,
        cols: output.cols as u64,
    };
    let inside = window.intersect(&grid.full_window(output.level)) == Some(window);
    (fits && same_cell && on_chunk && inside).then_some(window)
}

/// Writes the export by copying chunks and returns whether any chunk held
/// data, or returns `Ok(None)` when the output does not line up with the
/// chunks.
///
/// # Errors
/// GDAL or I/O failures, or a chunk that fails its checksum.
pub fn try_write<T: GdalCell>(
    store: &Store,
    output: &OutputGrid,
    path: &str,
    creation: &[&str],
) -> Result<Option<bool>, OutputError> {
    let Some(window) = aligned_window(store, output) else {
        return Ok(None);
    };
    let s = store.structure();
    let [w, h] = s.chunk;
    let (block_x, block_y) = (format!("BLOCKXSIZE={w}"), format!("BLOCKYSIZE={h}"));
    let mut options: Vec<&str> = creation
        .iter()
        .copied()
        .filter(|o| !o.starts_with("NUM_THREADS"))
        .collect();
    options.extend(["SPARSE_OK=TRUE", &block_x, &block_y]);
    let grid = store.grid();
    let chunk_rows: Vec<Vec<ChunkLoc>> = {
        let locs: Vec<ChunkLoc> = grid.chunks_in(output.level, &window).collect();
        let across = output.cols.div_ceil(w as usize);
        locs.chunks(across).map(<[ChunkLoc]>::to_vec).collect()
    };
    // While GDAL writes the header (opening the PROJ database for the CRS
    // takes milliseconds), the first rows' chunks are fetched and checked.
    let (header, ahead) = std::thread::scope(|scope| {
        let header = scope.spawn(|| create_header::<T>(store, output, path, &options));
        let ahead = fetch_ahead(store, output.t, &chunk_rows);
        let header = header.join().unwrap_or_else(|_| {
            Err(OutputError::Format(
                "writing the GeoTIFF's header failed".into(),
            ))
        });
        (header, ahead)
    });
    header?;
    let mut ahead = ahead?.into_iter();
    let mut file = OpenOptions::new().read(true).write(true).open(path)?;
    let (arrays, big) = tile_arrays(&mut file)?;
    let tiles = chunk_rows.iter().map(Vec::len).sum::<usize>();
    if arrays.iter().any(|a| a.count != tiles as u64) {
        return Err(OutputError::Format(format!(
            "GDAL wrote {} tile slots, expected {tiles}",
            arrays[0].count
        )));
    }
    let mut end = file.seek(SeekFrom::End(0))?;
    let mut offsets = Vec::with_capacity(tiles);
    let mut counts = Vec::with_capacity(tiles);
    let mut empty_tile: Option<(u64, u64)> = None;
    for row in &chunk_rows {
        let fetched = match ahead.next() {
            Some(fetched) => fetched,
            None => fetch_row(store, output.t, row)?,
        };
        for bytes in fetched {
            let (offset, len) = match bytes {
                Some(bytes) => {
                    file.write_all(&bytes)?;
                    let placed = (end, bytes.len() as u64);
                    end += bytes.len() as u64;
                    placed
                }
                None => match empty_tile {
                    Some(placed) => placed,
                    None => {
                        let bytes = nodata_tile(store)?;
                        file.write_all(&bytes)?;
                        let placed = (end, bytes.len() as u64);
                        end += bytes.len() as u64;
                        empty_tile = Some(placed);
                        placed
                    }
                },
            };
            offsets.push(offset);
            counts.push(len);
        }
    }
    if !big && end > u64::from(u32::MAX) {
        return Err(OutputError::Format(
            "the output exceeds 4 GB in a classic TIFF".into(),
        ));
    }
    for (array, values) in arrays.iter().zip([&offsets, &counts]) {
        array.write(&mut file, values)?;
    }
    Ok(Some(
        empty_tile.is_none() || offsets.iter().any(|o| Some(*o) != empty_tile.map(|e| e.0)),
    ))
}

/// Chunk bytes fetched ahead of the header: at most this many.
const AHEAD_BYTES: usize = 64 << 20;

/// The first rows' chunks, fetched and checked, up to [`AHEAD_BYTES`].
fn fetch_ahead(
    store: &Store,
    t: u32,
    rows: &[Vec<ChunkLoc>],
) -> Result<Vec<Vec<Option<Vec<u8>>>>, OutputError> {
    let mut ahead = Vec::new();
    let mut bytes = 0;
    for row in rows {
        if bytes >= AHEAD_BYTES {
            break;
        }
        let fetched = fetch_row(store, t, row)?;
        bytes += fetched.iter().flatten().map(Vec::len).sum::<usize>();
        ahead.push(fetched);
    }
    Ok(ahead)
}

/// One row of chunks' stored bytes, in parallel, each checked: an inner
/// chunk of a shard by the CRC-32C its fetch checks over exactly these
/// bytes, a chunk of its own by decoding it (its zstd checksum).
fn fetch_row(store: &Store, t: u32, row: &[ChunkLoc]) -> Result<Vec<Option<Vec<u8>>>, OutputError> {
    let codec = store.structure().codec;
    let checked_by_fetch = store.layout().sharded();
    row.par_iter()
        .map(|loc| {
            let stored = store.stored_chunk(t, *loc)?;
            if let Some(bytes) = stored.as_ref().filter(|_| !checked_by_fetch) {
                codec::decode(codec, bytes, store.chunk_bytes()).map_err(|reason| {
                    EngineError::Corrupt {
                        key: store.chunk_name(t, *loc),
                        store: store.location(),
                        reason,
                    }
                })?;
            }
            Ok(stored)
        })
        .collect()
}

/// One encoded chunk of nodata cells (of 0 in a store without nodata).
fn nodata_tile(store: &Store) -> Result<Vec<u8>, OutputError> {
    let s = store.structure();
    let raw: Vec<u8> = crate::with_dtype!(s.dtype, T => {
        let fill = store.nodata::<T>().fill();
        let mut raw = Vec::with_capacity(store.chunk_bytes());
        for _ in 0..store.chunk_bytes() / s.dtype.size() {
            crate::engine::Element::write_le(fill, &mut raw);
        }
        raw
    });
    Ok(codec::encode(s.codec, &raw)?)
}

/// A sparse tiled GeoTIFF of the output's size, georeferencing and nodata.
fn create_header<T: GdalCell>(
    store: &Store,
    output: &OutputGrid,
    path: &str,
    options: &[&str],
) -> Result<(), OutputError> {
    // GDAL registers its drivers and creates the file while this thread
    // builds the CRS, which opens the PROJ database: two waits at once.
    let (created, srs) = std::thread::scope(|scope| {
        let created = scope.spawn(|| -> Result<Dataset, OutputError> {
            let driver = DriverManager::get_driver_by_name("GTiff")?;
            let options = RasterCreationOptions::from_iter(options.iter().copied());
            let mut ds = driver.create_with_band_type_with_options::<T::Io, _>(
                path,
                output.cols,
                output.rows,
                1,
                &options,
            )?;
            ds.set_geo_transform(&output.geotransform())?;
            Ok(ds)
        });
        let srs = crate::gdal_io::source::srs_from(&store.structure().crs.wkt);
        let created = created
            .join()
            .unwrap_or_else(|_| Err(OutputError::Format("creating the GeoTIFF failed".into())));
        (created, srs)
    });
    let mut ds = created?;
    ds.set_spatial_ref(&srs?)?;
    super::describe(&mut ds, store, output)?;
    Ok(ds.close()?)
}

/// A TileOffsets or TileByteCounts entry of the first IFD.
struct TagArray {
    /// Byte position of the 12- (classic) or 20-byte (BigTIFF) entry.
    entry_at: u64,
    /// Number of elements.
    count: u64,
    /// Whether the file is BigTIFF.
    big: bool,
}

impl TagArray {
    /// Stores `values` as LONG (classic) or LONG8 (BigTIFF): inline in the
    /// entry when they fit, else appended at the end of the file, with the
    /// entry's type and pointer rewritten (GDAL may have chosen SHORT for a
    /// sparse file's zero byte counts).
    fn write(&self, file: &mut std::fs::File, values: &[u64]) -> Result<(), OutputError> {
        let mut bytes = Vec::with_capacity(values.len() * 8);
        for v in values {
            if self.big {
                bytes.extend_from_slice(&v.to_le_bytes());
            } else {
                let v = u32::try_from(*v).map_err(|_| {
                    OutputError::Format("a tile offset beyond 4 GB in a classic TIFF".into())
                })?;
                bytes.extend_from_slice(&v.to_le_bytes());
            }
        }
        let (kind, value_at, inline): (u16, u64, usize) =
            if self.big { (16, 12, 8) } else { (4, 8, 4) };
        let value = if bytes.len() <= inline {
            bytes.resize(inline, 0);
            bytes
        } else {
            let mut at = file.seek(SeekFrom::End(0))?;
            if at % 2 == 1 {
                // TIFF wants arrays on word boundaries.
                file.write_all(&[0])?;
                at += 1;
            }
            file.write_all(&bytes)?;
            if self.big {
                at.to_le_bytes().to_vec()
            } else {
                u32::try_from(at)
                    .map_err(|_| {
                        OutputError::Format("tile data beyond 4 GB in a classic TIFF".into())
                    })?
                    .to_le_bytes()
                    .to_vec()
            }
        };
        file.seek(SeekFrom::Start(self.entry_at + 2))?;
        file.write_all(&kind.to_le_bytes())?;
        file.seek(SeekFrom::Start(self.entry_at + value_at))?;
        Ok(file.write_all(&value)?)
    }
}

/// Finds TileOffsets and TileByteCounts in the first IFD of a little-endian
/// classic or BigTIFF file. Returns them and whether the file is BigTIFF.
fn tile_arrays(file: &mut std::fs::File) -> Result<([TagArray; 2], bool), OutputError> {
    let mut head = [0u8; 16];
    file.seek(SeekFrom::Start(0))?;
    file.read_exact(&mut head)?;
    if &head[..2] != b"II" {
        return Err(OutputError::Format("GDAL wrote a big-endian TIFF".into()));
    }
    let le16 = |b: &[u8]| u16::from_le_bytes([b[0], b[1]]);
    let le32 = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    let le64 = |b: &[u8]| u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
    let big = match le16(&head[2..4]) {
        42 => false,
        43 => true,
        v => return Err(OutputError::Format(format!("not a TIFF (version {v})"))),
    };
    let ifd = if big {
        le64(&head[8..16])
    } else {
        u64::from(le32(&head[4..8]))
    };
    let (count_len, entry_len) = if big { (8, 20) } else { (2, 12) };
    let mut count_bytes = vec![0u8; count_len];
    file.seek(SeekFrom::Start(ifd))?;
    file.read_exact(&mut count_bytes)?;
    let entries = if big {
        le64(&count_bytes)
    } else {
        u64::from(le16(&count_bytes))
    };
    let entries = usize::try_from(entries)
        .map_err(|_| OutputError::Format(format!("a TIFF directory of {entries} entries")))?;
    let mut table = vec![0u8; entries * entry_len];
    file.read_exact(&mut table)?;
    let mut found: [Option<TagArray>; 2] = [None, None];
    for (i, entry) in table.chunks_exact(entry_len).enumerate() {
        let tag = le16(&entry[0..2]);
        let slot = match tag {
            TILE_OFFSETS => 0,
            TILE_BYTE_COUNTS => 1,
            _ => continue,
        };
        let count = if big {
            le64(&entry[4..12])
        } else {
            u64::from(le32(&entry[4..8]))
        };
        let entry_at = ifd + count_len as u64 + (i * entry_len) as u64;
        found[slot] = Some(TagArray {
            entry_at,
            count,
            big,
        });
    }
    match found {
        [Some(a), Some(b)] => Ok(([a, b], big)),
        _ => Err(OutputError::Format("GDAL wrote no tile arrays".into())),
    }
}
