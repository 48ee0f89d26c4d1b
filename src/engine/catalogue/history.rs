//! The store's ingest history and the notes users attach to it, kept as
//! list variables of the store's tree (`history/ingests`, `history/notes`).

use crate::engine::catalogue::tree::{Tree, TreeError, Value};
use crate::engine::{EngineError, Store};
use serde::{Deserialize, Serialize};

const INGESTS: &str = "history/ingests";
const NOTES: &str = "history/notes";

/// What a recorded write did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WriteKind {
    /// Cells of a source raster were written.
    #[default]
    Ingest,
    /// Cells were set to nodata (`gridstore clear`).
    Clear,
}

impl WriteKind {
    fn is_ingest(&self) -> bool {
        *self == Self::Ingest
    }
}

/// One ingest or clear, as recorded once its data committed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IngestRecord {
    /// An ingest or a clear (absent in the records of ingests, as in
    /// stores written before clears were recorded).
    #[serde(default, skip_serializing_if = "WriteKind::is_ingest")]
    pub kind: WriteKind,
    /// The source raster, as given (made absolute); empty for a clear.
    pub source: String,
    /// Its size in bytes.
    pub bytes: u64,
    /// `crc32:XXXXXXXX` of its bytes.
    pub checksum: String,
    /// When the ingest finished (UTC).
    pub finished: String,
    /// The cells written, in the store's CRS: min x, min y, max x, max y.
    pub extent: [f64; 4],
    /// The instant written, for stores with a time axis.
    #[serde(default)]
    pub instant: Option<String>,
    /// Base cells written.
    pub cells: u64,
    /// Base chunks written.
    pub base_chunks: u64,
    /// Pyramid chunks recomputed.
    pub pyramid_chunks: u64,
    /// Seconds the ingest took.
    pub seconds: f64,
    /// Whether the source was warped onto the grid.
    pub warped: bool,
    /// The gridstore version that wrote it.
    pub version: String,
}

/// A note a user attached to the store, or to one of its ingests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Note {
    /// When it was written (UTC).
    pub written: String,
    /// The ingest it is about (its number, from 1), if any.
    #[serde(default)]
    pub ingest: Option<u64>,
    /// The text.
    pub text: String,
}

impl Store {
    /// Appends an ingest to the history.
    ///
    /// # Errors
    /// A read-only store, or I/O.
    pub fn record_ingest(&self, record: &IngestRecord) -> Result<u64, EngineError> {
        self.check_writable()?;
        let json = serde_json::to_value(record).unwrap_or_default();
        let tree = Tree::new(self.storage().as_ref());
        Ok(tree.node(INGESTS)?.append(&Value::Json(json))? + 1)
    }

    /// Every recorded ingest, oldest first.
    ///
    /// # Errors
    /// A damaged record, or I/O.
    pub fn ingest_history(&self) -> Result<Vec<IngestRecord>, EngineError> {
        self.read_list(INGESTS)
    }

    /// Attaches a note to the store, or to ingest number `ingest` (from 1).
    ///
    /// # Errors
    /// A read-only store, an ingest number that is not recorded, or I/O.
    pub fn add_note(&self, text: &str, ingest: Option<u64>) -> Result<(), EngineError> {
        self.check_writable()?;
        if let Some(n) = ingest {
            let recorded = self.ingest_history()?.len() as u64;
            if n == 0 || n > recorded {
                return Err(EngineError::History(format!(
                    "there is no ingest {n} (the history holds {recorded})"
                )));
            }
        }
        let note = Note {
            written: crate::engine::grid::time::now_utc(),
            ingest,
            text: text.to_string(),
        };
        let tree = Tree::new(self.storage().as_ref());
        tree.node(NOTES)?.append(&Value::Json(
            serde_json::to_value(&note).unwrap_or_default(),
        ))?;
        Ok(())
    }

    /// Every note, oldest first.
    ///
    /// # Errors
    /// A damaged note, or I/O.
    pub fn notes(&self) -> Result<Vec<Note>, EngineError> {
        self.read_list(NOTES)
    }

    fn read_list<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<Vec<T>, EngineError> {
        let tree = Tree::new(self.storage().as_ref());
        let entries = match tree.node(path)?.read() {
            Ok(Value::List(entries)) => entries,
            Ok(_) => return Err(EngineError::History(format!("{path} is not a list"))),
            Err(TreeError::NotFound { .. }) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        entries
            .into_iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::Json(json) => serde_json::from_value(json)
                    .map_err(|e| EngineError::History(format!("{path} entry {i}: {e}"))),
                _ => Err(EngineError::History(format!(
                    "{path} entry {i} is not JSON"
                ))),
            })
            .collect()
    }
}
