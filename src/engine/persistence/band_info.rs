//! What each band of a store is: its name, its unit, and the colour it
//! stands for (GDAL's colour interpretation), as the first ingested raster
//! that described its bands gave them.
//!
//! Presentation only, like the colour table: the structure stays as
//! created. Saved whole as `bands.json` at the store root (docs/FORMAT.md).

use serde::{Deserialize, Serialize};

/// The store key of the band descriptions.
pub const BAND_INFO_KEY: &str = "bands.json";

/// The colour a band stands for in an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColourRole {
    /// Red.
    Red,
    /// Green.
    Green,
    /// Blue.
    Blue,
    /// Opacity.
    Alpha,
    /// Grey levels.
    Gray,
    /// Indices into a colour table.
    Palette,
}

/// One band's description; every field may be unknown.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BandInfo {
    /// Its name ("NIR", "precipitation" …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The unit of its values ("m", "mm/h" …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// The colour it stands for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub colour: Option<ColourRole>,
}

impl BandInfo {
    /// Whether nothing about the band is known.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.name.is_none() && self.unit.is_none() && self.colour.is_none()
    }
}

/// Why bytes are not band descriptions.
#[derive(Debug, thiserror::Error)]
pub enum BandInfoError {
    /// Not the JSON of band descriptions.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// Descriptions of a version this gridstore does not read.
    #[error("band descriptions version {0} (this gridstore reads 1)")]
    Version(u32),
}

/// The descriptions as saved.
#[must_use]
pub fn to_json(bands: &[BandInfo]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ "gridstore_bands": 1, "bands": bands }))
        .unwrap_or_default()
}

/// Reads saved descriptions.
///
/// # Errors
/// When the bytes are not band descriptions of version 1.
pub fn from_json(bytes: &[u8]) -> Result<Vec<BandInfo>, BandInfoError> {
    #[derive(Deserialize)]
    struct Saved {
        gridstore_bands: u32,
        bands: Vec<BandInfo>,
    }
    let saved: Saved = serde_json::from_slice(bytes)?;
    if saved.gridstore_bands != 1 {
        return Err(BandInfoError::Version(saved.gridstore_bands));
    }
    Ok(saved.bands)
}

/// Band `b` (0-based) as people call it: "band 3", with its name when it
/// has one ("band 3 · red").
#[must_use]
pub fn label(bands: &[BandInfo], b: usize) -> String {
    match bands.get(b).and_then(|i| i.name.as_deref()) {
        Some(name) => format!("band {} · {name}", b + 1),
        None => format!("band {}", b + 1),
    }
}

/// The unit of band `b` (0-based), when known.
#[must_use]
pub fn unit(bands: &[BandInfo], b: usize) -> Option<&str> {
    bands.get(b).and_then(|i| i.unit.as_deref())
}

/// The bands (0-based) standing for red, green and blue, when each of the
/// three colours is given to exactly one band.
#[must_use]
pub fn rgb_bands(bands: &[BandInfo]) -> Option<[usize; 3]> {
    let only = |role: ColourRole| {
        let mut found = bands
            .iter()
            .enumerate()
            .filter(|(_, b)| b.colour == Some(role));
        let first = found.next()?.0;
        found.next().is_none().then_some(first)
    };
    Some([
        only(ColourRole::Red)?,
        only(ColourRole::Green)?,
        only(ColourRole::Blue)?,
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_round_trip_and_other_versions_are_refused() {
        let bands = vec![
            BandInfo {
                name: Some("blue".into()),
                unit: None,
                colour: Some(ColourRole::Blue),
            },
            BandInfo::default(),
        ];
        let json = to_json(&bands);
        let saved: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(
            saved,
            serde_json::json!({"gridstore_bands": 1, "bands": [{"colour": "blue", "name": "blue"}, {}]})
        );
        assert_eq!(from_json(&json).unwrap(), bands);
        assert!(from_json(br#"{"gridstore_bands": 2, "bands": []}"#).is_err());
        assert!(from_json(b"{").is_err());
    }

    #[test]
    fn bands_are_labelled_by_number_and_name() {
        let bands = [
            BandInfo {
                name: Some("NIR".into()),
                unit: Some("DN".into()),
                colour: None,
            },
            BandInfo::default(),
        ];
        assert_eq!(label(&bands, 0), "band 1 · NIR");
        assert_eq!(label(&bands, 1), "band 2");
        assert_eq!(label(&[], 4), "band 5");
        assert_eq!(unit(&bands, 0), Some("DN"));
        assert_eq!(unit(&bands, 1), None);
    }

    #[test]
    fn the_composite_follows_the_colour_roles() {
        let role = |colour| BandInfo {
            colour: Some(colour),
            ..BandInfo::default()
        };
        let bgr = [
            role(ColourRole::Blue),
            role(ColourRole::Green),
            role(ColourRole::Red),
        ];
        assert_eq!(rgb_bands(&bgr), Some([2, 1, 0]));
        assert_eq!(rgb_bands(&bgr[..2]), None, "no red");
        let twice = [
            role(ColourRole::Red),
            role(ColourRole::Red),
            role(ColourRole::Green),
            role(ColourRole::Blue),
        ];
        assert_eq!(rgb_bands(&twice), None, "red twice");
    }
}
