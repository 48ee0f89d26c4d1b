//! The export panel: an extent (drawn on the map, taken from the view, or
//! typed), a level or a cell size, a format; the explorer asks where to
//! save it, and the export runs as a job.

use crate::engine::Extent;
use crate::gdal_io::{ExportFormat, ExportRequest, Resolution};

/// What the panel asks the explorer to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Let the next drag on the map draw the extent.
    Draw,
    /// Ask where to save, then export.
    Save,
}

/// The export settings.
pub struct ExportPanel {
    /// The extent to export (store CRS); `None` exports all data.
    pub extent: Option<Extent>,
    /// The level whose cells are exported.
    pub level: u8,
    /// Export at `cell` (CRS units) rather than at a level's cells.
    pub by_cell: bool,
    /// The output cell size when `by_cell`.
    pub cell: f64,
    /// The output format.
    pub format: ExportFormat,
}

impl Default for ExportPanel {
    fn default() -> Self {
        Self {
            extent: None,
            level: 0,
            by_cell: false,
            cell: 0.0,
            format: ExportFormat::GTiff,
        }
    }
}

const FORMATS: [(ExportFormat, &str, &str); 4] = [
    (ExportFormat::GTiff, "GeoTIFF", "tif"),
    (ExportFormat::Cog, "COG", "tif"),
    (ExportFormat::NetCdf, "NetCDF", "nc"),
    (ExportFormat::Png, "PNG", "png"),
];

impl ExportPanel {
    /// The request the settings describe.
    #[must_use]
    pub fn request(&self) -> ExportRequest {
        ExportRequest {
            bbox: self.extent,
            bbox_crs: None,
            resolution: if self.by_cell && self.cell > 0.0 {
                Resolution::Cell(self.cell)
            } else {
                Resolution::Level(self.level)
            },
            format: self.format,
            instant: None,
            period: None,
            resampling: None,
            crs: None,
            snap: false,
            interpolate: false,
            // A drawn rectangle is what the user sees: written as drawn.
            allow_empty: true,
        }
    }

    /// The chosen format's name and file extension, for the save dialog.
    #[must_use]
    pub fn file_type(&self) -> (&'static str, &'static str) {
        FORMATS
            .iter()
            .find(|f| f.0 == self.format)
            .map_or(("GeoTIFF", "tif"), |f| (f.1, f.2))
    }

    /// The panel; returns what the user asked for.
    pub fn ui(
        &mut self,
        ui: &mut egui::Ui,
        top: u8,
        base_cell: f64,
        drawing: bool,
        view: Option<Extent>,
        asking: bool,
    ) -> Option<Action> {
        ui.label(egui::RichText::new("Export").strong());
        let mut action = None;
        ui.horizontal(|ui| {
            let draw = if drawing {
                "drag on the map…"
            } else {
                "Draw extent"
            };
            if ui.add_enabled(!drawing, egui::Button::new(draw)).clicked() {
                action = Some(Action::Draw);
            }
            if ui
                .add_enabled(view.is_some(), egui::Button::new("Use view"))
                .clicked()
            {
                self.extent = view;
            }
            if ui
                .add_enabled(self.extent.is_some(), egui::Button::new("All data"))
                .clicked()
            {
                self.extent = None;
            }
        });
        match &mut self.extent {
            Some(e) => {
                egui::Grid::new("export extent")
                    .num_columns(2)
                    .show(ui, |ui| {
                        for (name, value) in [
                            ("min x", &mut e.min_x),
                            ("min y", &mut e.min_y),
                            ("max x", &mut e.max_x),
                            ("max y", &mut e.max_y),
                        ] {
                            let label = ui.label(name);
                            ui.add(egui::DragValue::new(value).speed(1.0))
                                .labelled_by(label.id);
                            ui.end_row();
                        }
                    });
            }
            None => {
                ui.label("extent: all data");
            }
        }
        ui.horizontal(|ui| {
            ui.radio_value(&mut self.by_cell, false, "at a level");
            ui.radio_value(&mut self.by_cell, true, "at a cell size");
        });
        if self.by_cell {
            if self.cell <= 0.0 {
                self.cell = base_cell;
            }
            ui.horizontal(|ui| {
                let label = ui.label("cell size");
                ui.add(
                    egui::DragValue::new(&mut self.cell)
                        .range(base_cell * 1e-3..=f64::MAX)
                        .speed(base_cell / 10.0),
                )
                .labelled_by(label.id);
            });
            if let Some(e) = self.extent {
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let size = |span: f64| (span / self.cell).round().max(1.0) as u64;
                ui.label(format!(
                    "{} × {} cells",
                    size(e.max_x - e.min_x),
                    size(e.max_y - e.min_y)
                ));
            }
        } else {
            egui::ComboBox::from_label("export level")
                .selected_text(format!("level {}", self.level))
                .show_ui(ui, |ui| {
                    for l in 0..=top {
                        ui.selectable_value(&mut self.level, l, format!("level {l}"));
                    }
                });
        }
        let name = FORMATS
            .iter()
            .find(|f| f.0 == self.format)
            .map_or("GeoTIFF", |f| f.1);
        egui::ComboBox::from_label("format")
            .selected_text(name)
            .show_ui(ui, |ui| {
                for (format, name, _) in FORMATS {
                    ui.selectable_value(&mut self.format, format, name);
                }
            });
        let valid = self
            .extent
            .is_none_or(|e| e.min_x < e.max_x && e.min_y < e.max_y);
        if ui
            .add_enabled(valid && !asking, egui::Button::new("Export…"))
            .clicked()
        {
            action = Some(Action::Save);
        }
        action
    }
}
