//! What panels ask the explorer to do. Panels draw, read the state they are
//! given and push [`Command`]s; the explorer carries them out once the
//! frame's panels are drawn: opening stores, starting and cancelling jobs,
//! and the file dialogs. Dialogs block, so each runs as a background
//! [`Task`] and its answer is applied when it arrives; only one is open at
//! a time.

use super::app::Explorer;
use super::task::Task;
use super::tiles::TileKey;
use crate::gdal_io::ExportRequest;
use std::path::PathBuf;

/// A request from a panel.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Ask for a store to open: a folder, or with `file` an .h5 file.
    PickStore {
        /// An hdf5 store (one file) rather than a folder.
        file: bool,
    },
    /// Ask for rasters to ingest into the open store.
    PickRasters,
    /// Ask where to export the open store, then export it there.
    PickExportPath {
        /// The format's name, for the dialog's filter.
        name: &'static str,
        /// The format's file extension.
        extension: &'static str,
    },
    /// Ask for a raster to fill the structure editor from.
    PickStructureSource,
    /// Ask where the editor's new store goes.
    PickNewStoreTarget {
        /// The name the dialog proposes.
        file_name: &'static str,
    },
    /// Open the store at this path.
    Open(PathBuf),
    /// Open the structure editor for a new store.
    NewStore,
    /// Show the open store's structure, read-only.
    ShowStructure,
    /// Re-read the open store's summary (history, levels).
    Reload,
    /// Select a chunk in the inspector and centre the map on it.
    Inspect(TileKey),
    /// Select a chunk in the inspector (a step through the pyramid).
    Select(TileKey),
    /// Start drawing an export rectangle on the map.
    DrawExportExtent,
    /// Cancel the job at this index of the jobs list.
    CancelJob(usize),
    /// Run the refused ingest at this index again, letting the source cells
    /// that hold the store's nodata value become nodata.
    IngestAnyway(usize),
}

/// A file dialog's answer, with what it was asked for.
#[derive(Debug)]
pub enum Answer {
    /// A store to open (none: the dialog was dismissed).
    Store(Option<PathBuf>),
    /// Rasters to ingest, into the store open when they were asked for
    /// (none: a new store made like the first).
    Rasters(Option<PathBuf>, Vec<PathBuf>),
    /// Where to export the store and request of when it was asked.
    ExportPath(Option<(PathBuf, ExportRequest)>, Option<PathBuf>),
    /// A raster for the structure editor.
    StructureSource(Option<PathBuf>),
    /// Where the editor's new store goes.
    NewStoreTarget(Option<PathBuf>),
}

impl Explorer {
    /// Carries out what the panels asked for this frame.
    pub(super) fn carry_out(&mut self, commands: Vec<Command>) {
        for command in commands {
            match command {
                Command::PickStore { file } => self.ask(move || Answer::Store(pick_store(file))),
                Command::PickRasters => {
                    let target = self.opened().map(|o| o.path.clone());
                    self.ask(move || {
                        Answer::Rasters(
                            target,
                            rfd::FileDialog::new()
                                .set_title("Rasters to ingest")
                                .pick_files()
                                .unwrap_or_default(),
                        )
                    });
                }
                Command::PickExportPath { name, extension } => {
                    let export = self.export_request();
                    self.ask(move || {
                        Answer::ExportPath(
                            export,
                            rfd::FileDialog::new()
                                .set_title("Export to")
                                .add_filter(name, &[extension])
                                .save_file(),
                        )
                    });
                }
                Command::PickStructureSource => self.ask(|| {
                    Answer::StructureSource(
                        rfd::FileDialog::new()
                            .set_title("A raster to take the structure from")
                            .pick_file(),
                    )
                }),
                Command::PickNewStoreTarget { file_name } => self.ask(move || {
                    Answer::NewStoreTarget(
                        rfd::FileDialog::new()
                            .set_title("Where the new store goes")
                            .set_file_name(file_name)
                            .save_file(),
                    )
                }),
                Command::Open(path) => self.open(path),
                Command::NewStore => self.editor.new_store(),
                Command::ShowStructure => {
                    if let Some(opened) = self.opened() {
                        let (path, structure) =
                            (opened.path.clone(), opened.store.structure().clone());
                        self.editor.show_store(&path, &structure);
                    }
                }
                Command::Reload => {
                    if let Some(path) = self.opened().map(|o| o.path.clone()) {
                        self.reload(path);
                    }
                }
                Command::Inspect(key) => self.inspect(key, true),
                Command::Select(key) => self.inspect(key, false),
                Command::DrawExportExtent => self.map.drawing = true,
                Command::CancelJob(index) => self.jobs.cancel(index),
                Command::IngestAnyway(index) => self.jobs.ingest_anyway(index),
            }
        }
    }

    /// Applies a dialog's answer once it is there.
    pub(super) fn take_answer(&mut self) {
        let Some(task) = &self.dialog else {
            return;
        };
        let Some(answer) = task.poll() else {
            if task.lost() {
                // The dialog's thread died: let the buttons ask again.
                self.dialog = None;
            }
            return;
        };
        self.dialog = None;
        match answer {
            Answer::Store(Some(path)) => self.open(path),
            Answer::Rasters(Some(store), files) => {
                for file in files {
                    self.jobs.ingest(file, store.clone());
                }
            }
            Answer::Rasters(None, files) => self.ingest_files(files),
            Answer::ExportPath(Some((store, request)), Some(path)) => {
                self.jobs.export(store, path, request);
            }
            Answer::StructureSource(Some(file)) => self.editor.read_structure_of(file, &self.ctx),
            Answer::NewStoreTarget(Some(path)) => self.editor.target = path.display().to_string(),
            // Dismissed: nothing changes (an open store stays open).
            _ => {}
        }
    }

    /// Whether a file dialog is open.
    #[must_use]
    pub fn dialog_open(&self) -> bool {
        self.dialog.is_some()
    }

    /// Runs a file dialog on a background task, unless one is open.
    fn ask(&mut self, dialog: impl FnOnce() -> Answer + Send + 'static) {
        if self.dialog.is_none() {
            self.dialog = Some(Task::spawn(&self.ctx, dialog));
        }
    }
}

fn pick_store(file: bool) -> Option<PathBuf> {
    let dialog = rfd::FileDialog::new();
    if file {
        dialog
            .set_title("Open a gridstore .h5 file")
            .add_filter("HDF5 store", &["h5", "hdf5"])
            .pick_file()
    } else {
        dialog.set_title("Open a gridstore folder").pick_folder()
    }
}
