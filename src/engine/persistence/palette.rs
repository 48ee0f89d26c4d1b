//! A categorical store's colour table: the colour of each class value, as
//! the first ingested raster with a colour table gave it.
//!
//! Presentation only: the structure stays as created. Saved as
//! `palette.json` at the store root (docs/FORMAT.md).

use serde::{Deserialize, Serialize};

/// The store key of the colour table.
pub const PALETTE_KEY: &str = "palette.json";

/// Most entries a colour table may hold (values 0 to 65535).
pub const MAX_PALETTE_ENTRIES: usize = 65_536;

/// The colour of each class value: entry `i` is the RGBA of value `i`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Palette {
    /// RGBA per value, from value 0 up.
    colors: Vec<[u8; 4]>,
}

/// Why bytes or entries are not a colour table.
#[derive(Debug, thiserror::Error)]
pub enum PaletteError {
    /// No entries, or too many.
    #[error("a colour table holds 1 to {MAX_PALETTE_ENTRIES} entries, not {0}")]
    Entries(usize),
    /// Not the JSON of a colour table.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// A table of a version this gridstore does not read.
    #[error("colour table version {0} (this gridstore reads 1)")]
    Version(u32),
}

impl Palette {
    /// A colour table of `colors` (entry `i` for value `i`).
    ///
    /// # Errors
    /// [`PaletteError::Entries`] when there are no entries or more than
    /// [`MAX_PALETTE_ENTRIES`].
    pub fn new(colors: Vec<[u8; 4]>) -> Result<Self, PaletteError> {
        if colors.is_empty() || colors.len() > MAX_PALETTE_ENTRIES {
            return Err(PaletteError::Entries(colors.len()));
        }
        Ok(Self { colors })
    }

    /// The entries, from value 0 up.
    #[must_use]
    pub fn colors(&self) -> &[[u8; 4]] {
        &self.colors
    }

    /// The colour of `value`; `None` for a value without an entry
    /// (negative, fractional or past the table).
    #[must_use]
    pub fn color(&self, value: f64) -> Option<[u8; 4]> {
        if value < 0.0 || value.fract() != 0.0 {
            return None;
        }
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        self.colors.get(value as usize).copied()
    }

    /// The table as saved.
    #[must_use]
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({ "gridstore_palette": 1, "colors": self.colors }))
            .unwrap_or_default()
    }

    /// Reads a saved table.
    ///
    /// # Errors
    /// When the bytes are not a colour table of version 1.
    pub fn from_json(bytes: &[u8]) -> Result<Self, PaletteError> {
        #[derive(Deserialize)]
        struct Saved {
            gridstore_palette: u32,
            colors: Vec<[u8; 4]>,
        }
        let saved: Saved = serde_json::from_slice(bytes)?;
        if saved.gridstore_palette != 1 {
            return Err(PaletteError::Version(saved.gridstore_palette));
        }
        Self::new(saved.colors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_map_to_their_entries_and_round_trip() {
        let p = Palette::new(vec![[0, 0, 0, 0], [10, 20, 30, 255]]).unwrap();
        assert_eq!(p.color(1.0), Some([10, 20, 30, 255]));
        assert_eq!(p.color(2.0), None);
        assert_eq!(p.color(-1.0), None);
        assert_eq!(p.color(0.5), None);
        assert_eq!(Palette::from_json(&p.to_json()).unwrap(), p);
        assert!(Palette::from_json(br#"{"gridstore_palette": 2, "colors": [[1,2,3,4]]}"#).is_err());
        assert!(Palette::from_json(b"[1, 2").is_err());
        assert!(Palette::new(Vec::new()).is_err());
    }
}
