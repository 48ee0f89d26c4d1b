//! The structure editor window: a new store's structure, field by field,
//! checked as it is typed; or an open store's structure, read-only.
//!
//! GDAL reads the CRS text, "From file…" reads a raster, and "Create"
//! writes the store, each on a background thread that wakes the UI.

use super::command::Command;
use super::form::{Checked, CodecKind, Field, Form, ResolvedCrs, TimeKind};
use super::task::Task;
use crate::engine::persistence::layout::Layout;
use crate::engine::{Aggregator, DType, Resampling, Store, Structure};
use crate::gdal_io::{Like, LikeOverrides, resolve_crs, structure_like};
use crate::storage::Backend;
use egui::{Color32, RichText};
use std::path::{Path, PathBuf};

/// GDAL's reading of the CRS field, redone whenever the text changes.
#[derive(Default)]
struct CrsLookup {
    /// The text the result (or the pending lookup) is for.
    text: Option<String>,
    result: Option<Result<ResolvedCrs, String>>,
    pending: Option<Task<Result<ResolvedCrs, String>>>,
}

impl CrsLookup {
    fn known(text: &str, resolved: ResolvedCrs) -> Self {
        Self {
            text: Some(text.to_string()),
            result: Some(Ok(resolved)),
            pending: None,
        }
    }

    /// Takes a finished lookup; starts one when the text changed.
    fn update(&mut self, text: &str, ctx: &egui::Context) {
        if let Some(rx) = &self.pending
            && let Some(result) = rx.poll()
        {
            self.result = Some(result);
            self.pending = None;
        }
        if self.text.as_deref() == Some(text) {
            return;
        }
        let owned = text.to_string();
        // A lookup for text since replaced is dropped with its task.
        let task = Task::spawn(ctx, move || {
            resolve_crs(&owned)
                .map(|(crs, area)| ResolvedCrs { crs, area })
                .map_err(|e| e.to_string())
        });
        self.text = Some(text.to_string());
        self.result = None;
        self.pending = Some(task);
    }
}

/// A raster's structure, read for "From file…" or a dropped raster.
struct FromFile {
    structure: Structure,
    nodata_note: Option<String>,
    area: Option<[f64; 4]>,
    target: PathBuf,
}

/// A store the editor created.
#[derive(Debug, Clone, PartialEq)]
pub struct Created {
    /// The new store.
    pub path: PathBuf,
    /// Rasters to ingest into it now.
    pub ingest: Vec<PathBuf>,
}

/// The structure editor and create-store dialog.
#[derive(Default)]
pub struct StructureEditor {
    /// Whether the window is shown.
    pub open: bool,
    /// The fields.
    pub form: Form,
    /// The open store whose structure is shown read-only, if that is the mode.
    pub read_only: Option<PathBuf>,
    /// The folder of the new store.
    pub target: String,
    /// How the new store is kept.
    pub backend: Backend,
    /// How the new store's chunks lie.
    pub layout: Layout,
    /// Rasters to ingest once the store exists.
    pub ingest_after: Vec<PathBuf>,
    /// The last failure of "From file…" or "Create", in plain words.
    pub error: Option<String>,
    /// How "From file…" chose the nodata value of a raster without one.
    pub nodata_note: Option<String>,
    crs: CrsLookup,
    from_file: Option<Task<Result<FromFile, String>>>,
    creating: Option<Task<Result<PathBuf, String>>>,
}

impl StructureEditor {
    /// Opens the editor for a new store.
    pub fn new_store(&mut self) {
        if self.read_only.take().is_some() {
            *self = Self::default();
        }
        self.open = true;
    }

    /// Shows the structure of the store at `path`, read-only.
    pub fn show_store(&mut self, path: &Path, structure: &Structure) {
        let form = Form::from_structure(structure);
        let resolved = ResolvedCrs {
            crs: structure.crs.clone(),
            area: None,
        };
        *self = Self {
            open: true,
            crs: CrsLookup::known(&form.crs, resolved),
            form,
            read_only: Some(path.to_path_buf()),
            ..Self::default()
        };
    }

    /// Opens the editor filled from `file` (read in the background); when
    /// `ingest`, the new store ingests `file` once created.
    pub fn from_file(&mut self, file: PathBuf, ingest: bool, ctx: &egui::Context) {
        self.new_store();
        self.ingest_after = if ingest {
            vec![file.clone()]
        } else {
            Vec::new()
        };
        self.read_structure_of(file, ctx);
    }

    /// Whether the editor waits for a background task.
    #[must_use]
    pub fn busy(&self) -> bool {
        self.crs.pending.is_some() || self.from_file.is_some() || self.creating.is_some()
    }

    /// The form checked against GDAL's reading of its CRS.
    #[must_use]
    pub fn checked(&self) -> Checked {
        self.form.check(self.crs.result.as_ref())
    }

    /// Fills the fields from `file`'s structure (read in the background).
    pub fn read_structure_of(&mut self, file: PathBuf, ctx: &egui::Context) {
        self.error = None;
        self.from_file = Some(Task::spawn(ctx, move || read_from_file(&file)));
    }

    /// Applies finished background work: a raster read, a chosen folder,
    /// a created store. Returns the store once created.
    fn poll(&mut self, ctx: &egui::Context) -> Option<Created> {
        if self.read_only.is_none() {
            self.crs.update(&self.form.crs, ctx);
        }
        if let Some(rx) = &self.from_file
            && let Some(result) = rx.poll()
        {
            self.from_file = None;
            match result {
                Ok(read) => {
                    let mut form = Form::from_structure(&read.structure);
                    // Recomputed from the area of use as the chunk changes.
                    form.domain_levels.clear();
                    let resolved = ResolvedCrs {
                        crs: read.structure.crs,
                        area: read.area,
                    };
                    self.crs = CrsLookup::known(&form.crs, resolved);
                    self.form = form;
                    self.nodata_note = read.nodata_note;
                    self.target = read.target.display().to_string();
                }
                Err(e) => self.error = Some(e),
            }
        }
        if let Some(rx) = &self.creating
            && let Some(result) = rx.poll()
        {
            self.creating = None;
            match result {
                Ok(path) => {
                    self.open = false;
                    return Some(Created {
                        path,
                        ingest: std::mem::take(&mut self.ingest_after),
                    });
                }
                Err(e) => self.error = Some(e),
            }
        }
        None
    }

    /// Starts creating the store, if the form is complete.
    pub fn create(&mut self, ctx: &egui::Context) {
        let Some(structure) = self.checked().structure else {
            return;
        };
        let target = PathBuf::from(self.target.trim());
        if target.as_os_str().is_empty() {
            self.error = Some("choose where the new store goes".into());
            return;
        }
        let (backend, layout) = (self.backend, self.layout);
        let task = Task::spawn(ctx, move || {
            create_store(&target, structure, backend, layout)
        });
        self.error = None;
        self.creating = Some(task);
    }

    /// Shows the window; returns a store once it has been created.
    pub fn show(&mut self, ctx: &egui::Context, commands: &mut Vec<Command>) -> Option<Created> {
        let created = self.poll(ctx);
        if !self.open {
            return created;
        }
        let mut open = true;
        let title = if self.read_only.is_some() {
            "Store structure"
        } else {
            "New store"
        };
        egui::Window::new(title)
            .open(&mut open)
            .default_width(460.0)
            .show(ctx, |ui| self.contents(ui, ctx, commands));
        self.open &= open;
        created
    }

    fn contents(&mut self, ui: &mut egui::Ui, ctx: &egui::Context, commands: &mut Vec<Command>) {
        let checked = self.checked();
        if let Some(path) = &self.read_only {
            ui.label(RichText::new(path.display().to_string()).strong());
            ui.label("A store's structure is fixed when it is created; it is shown read-only.");
        } else {
            ui.horizontal(|ui| {
                if ui.button("From file…").clicked() {
                    commands.push(Command::PickStructureSource);
                }
                if self.from_file.is_some() {
                    ui.spinner();
                }
            });
            if let Some(note) = &self.nodata_note {
                ui.label(format!("nodata: {note}"));
            }
        }
        // The fields scroll; the summary and the create button stay in view.
        egui::ScrollArea::vertical()
            .max_height((ui.ctx().content_rect().height() - 260.0).max(120.0))
            .show(ui, |ui| {
                ui.add_enabled_ui(self.read_only.is_none(), |ui| {
                    egui::Grid::new("structure-editor")
                        .num_columns(2)
                        .spacing([8.0, 4.0])
                        .show(ui, |ui| self.fields(ui, &checked));
                });
            });
        match (&checked.structure, &self.read_only) {
            (Some(s), _) => {
                ui.label(Form::describe(s));
            }
            (None, None) => {
                ui.colored_label(Color32::LIGHT_RED, "fix the fields marked above");
            }
            (None, Some(_)) => {}
        }
        if self.read_only.is_none() {
            ui.separator();
            // A layout the structure cannot take (lz4 in zarr3) says so.
            let layout_error = checked
                .structure
                .as_ref()
                .and_then(|s| self.layout.check(s).err());
            self.create_row(ui, ctx, checked.structure.is_some(), layout_error, commands);
        }
        if let Some(e) = &self.error {
            ui.colored_label(Color32::LIGHT_RED, e);
        }
    }

    fn create_row(
        &mut self,
        ui: &mut egui::Ui,
        ctx: &egui::Context,
        valid: bool,
        layout_error: Option<String>,
        commands: &mut Vec<Command>,
    ) {
        ui.horizontal(|ui| {
            let label = ui.label("new store");
            ui.text_edit_singleline(&mut self.target)
                .labelled_by(label.id);
            if ui.button("Choose…").clicked() {
                // An hdf5 store is one file; the others are folders.
                let file_name = if self.backend == Backend::Hdf5 {
                    "new.h5"
                } else {
                    "new.gs"
                };
                commands.push(Command::PickNewStoreTarget { file_name });
            }
        });
        ui.horizontal(|ui| {
            let label = ui.label("kept as");
            egui::ComboBox::from_id_salt("backend")
                .selected_text(backend_label(self.backend))
                .show_ui(ui, |ui| {
                    for backend in [Backend::Folder, Backend::Packed, Backend::Hdf5] {
                        ui.selectable_value(&mut self.backend, backend, backend_label(backend));
                    }
                })
                .response
                .labelled_by(label.id);
        });
        ui.horizontal(|ui| {
            let label = ui.label("layout");
            egui::ComboBox::from_id_salt("layout")
                .selected_text(layout_label(self.layout))
                .show_ui(ui, |ui| {
                    let sharded = Layout::Zarr3 {
                        shard: Layout::DEFAULT_SHARD,
                    };
                    for layout in [Layout::Zarr2, sharded] {
                        ui.selectable_value(&mut self.layout, layout, layout_label(layout));
                    }
                })
                .response
                .labelled_by(label.id);
        });
        let valid = valid && layout_error.is_none();
        if let Some(e) = layout_error {
            ui.colored_label(Color32::LIGHT_RED, e);
        }
        let text = match self.ingest_after.len() {
            0 => "Create store".to_string(),
            1 => "Create and ingest 1 file".to_string(),
            n => format!("Create and ingest {n} files"),
        };
        ui.horizontal(|ui| {
            let ready = valid && !self.target.trim().is_empty() && self.creating.is_none();
            if ui.add_enabled(ready, egui::Button::new(text)).clicked() {
                self.create(ctx);
            }
            if self.creating.is_some() {
                ui.spinner();
            }
        });
    }

    fn fields(&mut self, ui: &mut egui::Ui, checked: &Checked) {
        let form = &mut self.form;
        row(ui, "CRS (EPSG or WKT)", checked, Field::Crs, |ui| {
            ui.add(
                egui::TextEdit::singleline(&mut form.crs)
                    .hint_text("EPSG:32631, or WKT")
                    .desired_width(260.0),
            )
        });
        if let Some(Ok(resolved)) = &self.crs.result {
            ui.label("");
            let epsg = resolved
                .crs
                .epsg
                .map_or_else(String::new, |c| format!(" (EPSG:{c})"));
            ui.label(RichText::new(format!("{}{epsg}", resolved.crs.name)).italics());
            ui.end_row();
        }
        row(ui, "origin x, y", checked, Field::Origin, |ui| {
            two(ui, &mut form.origin)
        });
        row(ui, "cell size x, y", checked, Field::CellSize, |ui| {
            two(ui, &mut form.cell)
        });
        row(ui, "chunk w × h", checked, Field::Chunk, |ui| {
            two(ui, &mut form.chunk)
        });
        labelled(ui, "type", |ui| {
            choice(ui, "dtype", &mut form.dtype, &DType::ALL, |d| d.to_string())
        });
        row(ui, "nodata", checked, Field::Nodata, |ui| {
            ui.add(
                egui::TextEdit::singleline(&mut form.nodata)
                    .hint_text(format!("default: {}", form.dtype.default_nodata()))
                    .desired_width(226.0),
            )
        });
        labelled(ui, "aggregate", |ui| {
            choice(
                ui,
                "aggregate",
                &mut form.aggregate,
                &Aggregator::ALL,
                |a| a.to_string(),
            )
        });
        labelled(ui, "resampling", |ui| {
            choice(
                ui,
                "resampling",
                &mut form.resampling,
                &[
                    Resampling::Nearest,
                    Resampling::Average,
                    Resampling::Bilinear,
                ],
                |r| r.to_string(),
            )
        });
        row(ui, "codec", checked, Field::Codec, |ui| {
            ui.horizontal(|ui| {
                choice(
                    ui,
                    "codec",
                    &mut form.codec,
                    &[CodecKind::Zstd, CodecKind::Lz4, CodecKind::None],
                    |c| format!("{c:?}").to_lowercase(),
                );
                if form.codec == CodecKind::Zstd {
                    let level = ui.label("level");
                    ui.add(egui::TextEdit::singleline(&mut form.zstd_level).desired_width(40.0))
                        .labelled_by(level.id);
                }
            })
            .response
        });
        row(ui, "bands", checked, Field::Bands, |ui| {
            ui.add(
                egui::TextEdit::singleline(&mut form.bands)
                    .hint_text("none: a single band")
                    .desired_width(226.0),
            )
        });
        row(ui, "time axis", checked, Field::Time, |ui| {
            ui.horizontal(|ui| {
                choice(
                    ui,
                    "time",
                    &mut form.time,
                    &[TimeKind::None, TimeKind::Regular, TimeKind::Irregular],
                    |t| format!("{t:?}").to_lowercase(),
                );
                if form.time == TimeKind::Regular {
                    let origin = ui.label("from");
                    ui.add(egui::TextEdit::singleline(&mut form.time_origin).desired_width(110.0))
                        .labelled_by(origin.id);
                    let step = ui.label("every");
                    ui.add(egui::TextEdit::singleline(&mut form.time_step).desired_width(50.0))
                        .labelled_by(step.id);
                }
            })
            .response
        });
        row(ui, "domain levels", checked, Field::DomainLevels, |ui| {
            ui.add(
                egui::TextEdit::singleline(&mut form.domain_levels)
                    .hint_text("auto: cover the CRS's area of use")
                    .desired_width(226.0),
            )
        });
    }
}

/// A labelled row and, under it, the field's error in red.
fn row(
    ui: &mut egui::Ui,
    label: &str,
    checked: &Checked,
    field: Field,
    widget: impl FnOnce(&mut egui::Ui) -> egui::Response,
) {
    let label = ui.label(label);
    widget(ui).labelled_by(label.id);
    ui.end_row();
    if let Some(error) = checked.errors.get(&field) {
        ui.label("");
        ui.colored_label(Color32::LIGHT_RED, error);
        ui.end_row();
    }
}

fn labelled(ui: &mut egui::Ui, label: &str, widget: impl FnOnce(&mut egui::Ui)) {
    ui.label(label);
    widget(ui);
    ui.end_row();
}

fn two(ui: &mut egui::Ui, texts: &mut [String; 2]) -> egui::Response {
    ui.horizontal(|ui| {
        for text in texts {
            ui.add(egui::TextEdit::singleline(text).desired_width(110.0));
        }
    })
    .response
}

fn choice<T: Copy + PartialEq>(
    ui: &mut egui::Ui,
    id: &str,
    value: &mut T,
    options: &[T],
    name: impl Fn(&T) -> String,
) {
    egui::ComboBox::from_id_salt(id)
        .selected_text(name(value))
        .show_ui(ui, |ui| {
            for option in options {
                ui.selectable_value(value, *option, name(option));
            }
        });
}

/// Reads a raster's structure, its CRS's area of use, and where a store made
/// from it goes by default.
fn read_from_file(file: &Path) -> Result<FromFile, String> {
    let Like {
        structure,
        nodata_note,
        ..
    } = structure_like(file, &LikeOverrides::default()).map_err(|e| e.to_string())?;
    let text = structure
        .crs
        .epsg
        .map_or_else(|| structure.crs.wkt.clone(), |c| format!("EPSG:{c}"));
    let area = resolve_crs(&text).ok().and_then(|(_, area)| area);
    Ok(FromFile {
        structure,
        nodata_note,
        area,
        target: store_beside(file),
    })
}

/// Creates the store folder; leaves nothing behind when that fails.
fn create_store(
    target: &Path,
    structure: Structure,
    backend: Backend,
    layout: Layout,
) -> Result<PathBuf, String> {
    let existed = target.exists();
    let storage =
        crate::storage::create(target, backend).map_err(|e| format!("cannot create store {e}"))?;
    match Store::create_with_layout(storage, structure, layout) {
        // The store's writer lock is released here, before it is reopened.
        Ok(_store) => Ok(std::fs::canonicalize(target).unwrap_or_else(|_| target.to_path_buf())),
        Err(e) => {
            // The folder was absent or empty: make it so again.
            std::fs::remove_dir_all(target).ok();
            if existed {
                std::fs::create_dir(target).ok();
            }
            Err(format!("cannot create store {}: {e}", target.display()))
        }
    }
}

/// Where a store made from a raster goes by default: beside it, named after it.
#[must_use]
pub fn store_beside(file: &Path) -> PathBuf {
    let mut path = file.with_extension("gs");
    let mut n = 2;
    while path.exists() {
        let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or("store");
        path = file.with_file_name(format!("{stem}-{n}.gs"));
        n += 1;
    }
    path
}

/// How the editor names a layout.
fn layout_label(layout: Layout) -> String {
    match layout {
        Layout::Zarr2 => "zarr2 (every Zarr reader, GDAL 3.4+)".into(),
        Layout::Zarr3 { shard } => {
            format!("zarr3 (shards of {shard} × {shard} chunks; Zarr v3 readers)")
        }
    }
}

/// How the editor names a backend.
fn backend_label(backend: Backend) -> &'static str {
    match backend {
        Backend::Folder => "folder (Zarr-readable)",
        Backend::Packed => "packed (pack files + index)",
        Backend::Hdf5 => "hdf5 (one .h5 file)",
    }
}
