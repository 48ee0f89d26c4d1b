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
    let geokeys = epsg_geokeys(store);
    let grid = store.grid();
    let chunk_rows: Vec<Vec<ChunkLoc>> = {
        let locs: Vec<ChunkLoc> = grid.chunks_in(output.level, &window).collect();
        let across = output.cols.div_ceil(w as usize);
        locs.chunks(across).map(<[ChunkLoc]>::to_vec).collect()
    };
    // While GDAL writes the header (opening the PROJ database for the CRS
    // takes milliseconds), the first rows' chunks are fetched and checked.
    let (header, ahead) = std::thread::scope(|scope| {
        let header =
            scope.spawn(|| create_header::<T>(store, output, path, &options, geokeys.as_deref()));
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
    if let Some(keys) = &geokeys {
        add_geokeys(&mut file, keys)?;
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
/// With `geokeys` (see [`epsg_geokeys`]) its CRS is left to them, added
/// after the tiles; otherwise GDAL writes it.
fn create_header<T: GdalCell>(
    store: &Store,
    output: &OutputGrid,
    path: &str,
    options: &[&str],
    geokeys: Option<&[u16]>,
) -> Result<(), OutputError> {
    let create = || -> Result<Dataset, OutputError> {
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
    };
    let mut ds = if geokeys.is_some() {
        create()?
    } else {
        // GDAL registers its drivers and creates the file while this
        // thread builds the CRS, which opens the PROJ database: two waits
        // at once.
        let (created, srs) = std::thread::scope(|scope| {
            let created = scope.spawn(create);
            let srs = crate::gdal_io::source::srs_from(&store.structure().crs.wkt);
            let created = created
                .join()
                .unwrap_or_else(|_| Err(OutputError::Format("creating the GeoTIFF failed".into())));
            (created, srs)
        });
        let mut ds = created?;
        ds.set_spatial_ref(&srs?)?;
        ds
    };
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

/// The first IFD of a little-endian classic or BigTIFF file.
struct FirstIfd {
    /// Whether the file is BigTIFF.
    big: bool,
    /// Where the directory starts.
    at: u64,
    /// Its entries, as stored (12 or 20 bytes each).
    table: Vec<u8>,
    /// The offset of the next directory, as stored (4 or 8 bytes).
    next: Vec<u8>,
}

impl FirstIfd {
    fn read(file: &mut std::fs::File) -> Result<Self, OutputError> {
        let mut head = [0u8; 16];
        file.seek(SeekFrom::Start(0))?;
        file.read_exact(&mut head)?;
        if &head[..2] != b"II" {
            return Err(OutputError::Format("GDAL wrote a big-endian TIFF".into()));
        }
        let big = match le16(&head[2..4]) {
            42 => false,
            43 => true,
            v => return Err(OutputError::Format(format!("not a TIFF (version {v})"))),
        };
        let at = if big {
            le64(&head[8..16])
        } else {
            u64::from(le32(&head[4..8]))
        };
        let mut count_bytes = vec![0u8; Self::count_len(big)];
        file.seek(SeekFrom::Start(at))?;
        file.read_exact(&mut count_bytes)?;
        let entries = if big {
            le64(&count_bytes)
        } else {
            u64::from(le16(&count_bytes))
        };
        let entries = usize::try_from(entries)
            .ok()
            .filter(|&n| n < 4096)
            .ok_or_else(|| OutputError::Format(format!("a TIFF directory of {entries} entries")))?;
        let mut table = vec![0u8; entries * Self::entry_len(big)];
        file.read_exact(&mut table)?;
        let mut next = vec![0u8; if big { 8 } else { 4 }];
        file.read_exact(&mut next)?;
        Ok(Self {
            big,
            at,
            table,
            next,
        })
    }

    fn count_len(big: bool) -> usize {
        if big { 8 } else { 2 }
    }

    fn entry_len(big: bool) -> usize {
        if big { 20 } else { 12 }
    }

    fn entries(&self) -> impl Iterator<Item = (usize, &[u8])> {
        self.table
            .chunks_exact(Self::entry_len(self.big))
            .enumerate()
    }
}

fn le16(b: &[u8]) -> u16 {
    u16::from_le_bytes([b[0], b[1]])
}

fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

fn le64(b: &[u8]) -> u64 {
    u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
}

/// Finds TileOffsets and TileByteCounts in the first IFD of a little-endian
/// classic or BigTIFF file. Returns them and whether the file is BigTIFF.
fn tile_arrays(file: &mut std::fs::File) -> Result<([TagArray; 2], bool), OutputError> {
    let ifd = FirstIfd::read(file)?;
    let big = ifd.big;
    let (count_len, entry_len) = (FirstIfd::count_len(big), FirstIfd::entry_len(big));
    let mut found: [Option<TagArray>; 2] = [None, None];
    for (i, entry) in ifd.entries() {
        let slot = match le16(&entry[0..2]) {
            TILE_OFFSETS => 0,
            TILE_BYTE_COUNTS => 1,
            _ => continue,
        };
        let count = if big {
            le64(&entry[4..12])
        } else {
            u64::from(le32(&entry[4..8]))
        };
        let entry_at = ifd.at + count_len as u64 + (i * entry_len) as u64;
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

/// The GeoTIFF keys of the store's CRS when they are just its EPSG code:
/// a two-dimensional projected or geographic CRS whose WKT names that code
/// as its own (its last, root, identifier), with no datum shift of its own,
/// and a code GeoTIFF reads as EPSG's (1024–32766). As GDAL writes them, but
/// without opening the PROJ database, which costs an export of a few chunks
/// a third of its time. `None`: GDAL writes the CRS.
fn epsg_geokeys(store: &Store) -> Option<Vec<u16>> {
    let crs = &store.structure().crs;
    let code = u16::try_from(crs.epsg?)
        .ok()
        .filter(|c| (1024..=32766).contains(c))?;
    let wkt = crs.wkt.trim();
    let (model, key) = match crate::gdal_io::source::wkt_keyword(wkt).as_str() {
        "PROJCS" | "PROJCRS" => (1, 3072),
        "GEOGCS" | "GEOGCRS" => (2, 2048),
        _ => return None,
    };
    let names_code = wkt.ends_with(&format!("AUTHORITY[\"EPSG\",\"{code}\"]]"))
        || wkt.ends_with(&format!("ID[\"EPSG\",{code}]]"));
    let three_d = wkt.to_ascii_lowercase().contains("ellipsoidal height");
    if !names_code || three_d || wkt.contains("TOWGS84") {
        return None;
    }
    // GeoTIFF 1.0 (key directory 1, revision 1.0), three keys: model type,
    // raster type (pixel is area), and the CRS's code.
    Some(vec![
        1, 1, 0, 3, 1024, 0, 1, model, 1025, 0, 1, 1, key, 0, 1, code,
    ])
}

/// Adds a GeoKeyDirectory of `keys` to the file's first IFD: the directory
/// is written anew at the end with the entry in its place (entries point
/// at data that stays where it is), and the header points at it.
fn add_geokeys(file: &mut std::fs::File, keys: &[u16]) -> Result<(), OutputError> {
    const GEO_KEY_DIRECTORY: u16 = 34735;
    const GEO_ASCII_PARAMS: u16 = 34737;
    const SHORT: u16 = 3;
    let ifd = FirstIfd::read(file)?;
    let big = ifd.big;
    let beyond = |what: &str| OutputError::Format(format!("{what} beyond 4 GB in a classic TIFF"));
    let mut end = file.seek(SeekFrom::End(0))?;
    if end % 2 == 1 {
        file.write_all(&[0])?;
        end += 1;
    }
    let data: Vec<u8> = keys.iter().flat_map(|k| k.to_le_bytes()).collect();
    file.write_all(&data)?;
    let keys_at = end;
    end += data.len() as u64;
    let mut entry = Vec::with_capacity(FirstIfd::entry_len(big));
    entry.extend_from_slice(&GEO_KEY_DIRECTORY.to_le_bytes());
    entry.extend_from_slice(&SHORT.to_le_bytes());
    if big {
        entry.extend_from_slice(&(keys.len() as u64).to_le_bytes());
        entry.extend_from_slice(&keys_at.to_le_bytes());
    } else {
        let count = u32::try_from(keys.len()).map_err(|_| beyond("GeoKeys"))?;
        let at = u32::try_from(keys_at).map_err(|_| beyond("GeoKeys"))?;
        entry.extend_from_slice(&count.to_le_bytes());
        entry.extend_from_slice(&at.to_le_bytes());
    }
    let mut entries: Vec<&[u8]> = ifd
        .entries()
        .map(|(_, e)| e)
        // The keys, and any parameters of keys GDAL may have written.
        .filter(|e| !(GEO_KEY_DIRECTORY..=GEO_ASCII_PARAMS).contains(&le16(&e[0..2])))
        .collect();
    entries.push(&entry);
    entries.sort_by_key(|e| le16(&e[0..2]));
    let mut directory = Vec::new();
    if big {
        directory.extend_from_slice(&(entries.len() as u64).to_le_bytes());
    } else {
        let n = u16::try_from(entries.len()).map_err(|_| beyond("a directory"))?;
        directory.extend_from_slice(&n.to_le_bytes());
    }
    entries.iter().for_each(|e| directory.extend_from_slice(e));
    directory.extend_from_slice(&ifd.next);
    file.write_all(&directory)?;
    // The header's pointer last: until then the old directory holds.
    if big {
        file.seek(SeekFrom::Start(8))?;
        file.write_all(&end.to_le_bytes())?;
    } else {
        let at = u32::try_from(end).map_err(|_| beyond("the directory"))?;
        file.seek(SeekFrom::Start(4))?;
        file.write_all(&at.to_le_bytes())?;
    }
    Ok(())
}
