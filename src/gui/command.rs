//! What panels ask the explorer to do. Panels draw, read the state they are
//! given and push [`Command`]s; the explorer carries them out once the
//! frame's panels are drawn: opening stores, starting and cancelling jobs,
//! and the file dialogs. Dialogs block, so each runs as a background
//! [`Task`] and its answer is applied when it arrives; only one is open at
//! a time.

use super::app::Explorer;
use super::dialog::{InWindow, Pick, PickKind, Picked, ask_system};
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
    /// Open the structure editor for a new store made like this raster,
    /// which ingests it once created.
    IngestIntoStore(PathBuf),
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
    /// Start drawing the area whose time series is plotted.
    DrawSeriesArea,
    /// Cancel the job at this index of the jobs list.
    CancelJob(usize),
    /// Run the refused ingest at this index again, letting the source cells
    /// that hold the store's nodata value become nodata.
    IngestAnyway(usize),
}

/// What a file dialog's answer is for.
#[derive(Debug, Clone)]
pub enum Purpose {
    /// A store to open.
    Store,
    /// Rasters to ingest, into the store open when they were asked for
    /// (none: a new store made like the first).
    Rasters(Option<PathBuf>),
    /// Where to export the store, with the request, as they were when asked.
    ExportPath(Option<(PathBuf, ExportRequest)>),
    /// A raster for the structure editor.
    StructureSource,
    /// Where the editor's new store goes.
    NewStoreTarget,
}

/// A file dialog's answer, with what it was asked for.
#[derive(Debug)]
pub struct Answer {
    /// What it was for.
    pub purpose: Purpose,
    /// The dialog it was.
    pub pick: Pick,
    /// What came back.
    pub picked: Picked,
}

/// The file dialog open, if any: a system one on its thread, or the
/// browser in the window.
pub enum OpenDialog {
    /// A system dialog, answered on its own thread.
    System(Task<Answer>),
    /// The browser in the window.
    InWindow(Box<InWindow>, Purpose),
}

impl Explorer {
    /// Carries out what the panels asked for this frame.
    pub(super) fn carry_out(&mut self, commands: Vec<Command>) {
        for command in commands {
            match command {
                Command::PickStore { file } => {
                    let pick = if file {
                        Pick {
                            title: "Open an .h5 store, or any raster (read-only)",
                            kind: PickKind::File,
                            filter: None,
                            file_name: None,
                        }
                    } else {
                        Pick {
                            title: "Open a gridstore folder",
                            kind: PickKind::Folder,
                            filter: None,
                            file_name: None,
                        }
                    };
                    self.ask(pick, Purpose::Store);
                }
                Command::PickRasters => {
                    let target = self
                        .opened()
                        .filter(|o| !o.read_only)
                        .map(|o| o.path.clone());
                    let pick = Pick {
                        title: "Rasters to ingest",
                        kind: PickKind::Files,
                        filter: None,
                        file_name: None,
                    };
                    self.ask(pick, Purpose::Rasters(target));
                }
                Command::PickExportPath { name, extension } => {
                    let export = self.export_request();
                    let pick = Pick {
                        title: "Export to",
                        kind: PickKind::Save,
                        filter: Some((name, vec![extension])),
                        file_name: None,
                    };
                    self.ask(pick, Purpose::ExportPath(export));
                }
                Command::PickStructureSource => {
                    let pick = Pick {
                        title: "A raster to take the structure from",
                        kind: PickKind::File,
                        filter: None,
                        file_name: None,
                    };
                    self.ask(pick, Purpose::StructureSource);
                }
                Command::PickNewStoreTarget { file_name } => {
                    let pick = Pick {
                        title: "Where the new store goes",
                        kind: PickKind::Save,
                        filter: None,
                        file_name: Some(file_name.to_string()),
                    };
                    self.ask(pick, Purpose::NewStoreTarget);
                }
                Command::Open(path) => self.open(path),
                Command::NewStore => self.editor.new_store(),
                Command::IngestIntoStore(raster) => {
                    self.editor.from_file(raster, true, &self.ctx);
                }
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
                Command::DrawExportExtent => {
                    self.map.drawing = Some(super::map::Drawing::ExportExtent);
                }
                Command::DrawSeriesArea => self.map.drawing = Some(super::map::Drawing::SeriesArea),
                Command::CancelJob(index) => self.jobs.cancel(index),
                Command::IngestAnyway(index) => self.jobs.ingest_anyway(index),
            }
        }
    }

    /// Applies a dialog's answer once it is there; draws the in-window
    /// browser while it is open.
    pub(super) fn take_answer(&mut self, ctx: &egui::Context) {
        let answer = match &mut self.dialog {
            None => return,
            Some(OpenDialog::System(task)) => {
                let Some(answer) = task.poll() else {
                    if task.lost() {
                        // The dialog's thread died: let the buttons ask again.
                        self.dialog = None;
                    }
                    return;
                };
                answer
            }
            Some(OpenDialog::InWindow(browser, purpose)) => {
                let Some(picked) = browser.show(ctx) else {
                    return;
                };
                Answer {
                    purpose: purpose.clone(),
                    // Only the system's unavailability needs the pick again.
                    pick: Pick {
                        title: "",
                        kind: PickKind::File,
                        filter: None,
                        file_name: None,
                    },
                    picked,
                }
            }
        };
        self.dialog = None;
        let paths = match answer.picked {
            Picked::Chosen(paths) => paths,
            // Dismissed: nothing changes (an open store stays open).
            Picked::Dismissed => return,
            Picked::Unavailable => {
                let start = self
                    .opened()
                    .and_then(|o| o.path.parent().map(std::path::Path::to_path_buf));
                self.dialog = Some(OpenDialog::InWindow(
                    Box::new(InWindow::open(&answer.pick, start.as_deref())),
                    answer.purpose,
                ));
                return;
            }
        };
        let first = paths.first().cloned();
        match (answer.purpose, first) {
            (Purpose::Store, Some(path)) => self.open(path),
            (Purpose::Rasters(Some(store)), _) => {
                for file in paths {
                    self.jobs.ingest(file, store.clone());
                }
            }
            (Purpose::Rasters(None), _) => self.ingest_files(paths),
            (Purpose::ExportPath(Some((store, request))), Some(path)) => {
                self.jobs.export(store, path, request);
            }
            (Purpose::StructureSource, Some(file)) => {
                self.editor.read_structure_of(file, &self.ctx);
            }
            (Purpose::NewStoreTarget, Some(path)) => {
                self.editor.target = path.display().to_string();
            }
            _ => {}
        }
    }

    /// Whether a file dialog is open.
    #[must_use]
    pub fn dialog_open(&self) -> bool {
        self.dialog.is_some()
    }

    /// Whether the file browser inside the window is open.
    #[must_use]
    pub fn browser_open(&self) -> bool {
        matches!(self.dialog, Some(OpenDialog::InWindow(..)))
    }

    /// Moves the in-window browser to `folder`, if it is open.
    pub fn browse_to(&mut self, folder: &std::path::Path) {
        if let Some(OpenDialog::InWindow(browser, _)) = &mut self.dialog {
            browser.go_to(folder);
        }
    }

    /// Asks `pick` for `purpose`, unless a dialog is open: through the
    /// system on a background thread, or in the window when it has none.
    fn ask(&mut self, pick: Pick, purpose: Purpose) {
        if self.dialog.is_some() {
            return;
        }
        let probe = self.dialog_probe.clone();
        self.dialog = Some(OpenDialog::System(Task::spawn(&self.ctx, move || {
            let picked = ask_system(&pick, &probe);
            Answer {
                purpose,
                pick,
                picked,
            }
        })));
    }
}
