//! The explorer's left panel: opening and creating stores, the open
//! store's summary, quicklook and history, the view's controls (level,
//! colours, stretch, grid, time) and export settings, and the level
//! browser. It changes view settings in place and asks for everything else
//! with [`Command`]s.

use super::app::{Explorer, StoreState, time_range};
use super::command::Command;
use crate::format::short_number;
use crate::render::{Bands, ColorMap};
use egui::RichText;

impl Explorer {
    pub(super) fn side_panel(&mut self, ui: &mut egui::Ui, commands: &mut Vec<Command>) {
        ui.heading("gridstore");
        ui.horizontal(|ui| {
            if ui.button("Open store…").clicked() {
                commands.push(Command::PickStore { file: false });
            }
            if ui
                .button("Open file…")
                .on_hover_text(
                    "an hdf5 store (one file), or any raster GDAL reads (GeoTIFF, COG, NetCDF…), read-only",
                )
                .clicked()
            {
                commands.push(Command::PickStore { file: true });
            }
            if ui.button("New store…").clicked() {
                commands.push(Command::NewStore);
            }
            if ui.button("Ingest files…").clicked() {
                commands.push(Command::PickRasters);
            }
        });
        self.recent_list(ui, commands);
        ui.separator();
        let Some(opened) = self.opened() else {
            match &self.state {
                StoreState::Loading(what, _) => ui.label(format!("opening {what}…")),
                StoreState::Failed(e) => ui.colored_label(egui::Color32::LIGHT_RED, e.clone()),
                _ => ui.label("no store"),
            };
            return;
        };
        let s = opened.store.structure();
        ui.horizontal(|ui| {
            ui.label(RichText::new(opened.path.display().to_string()).strong());
            if opened.read_only {
                ui.label(RichText::new("read-only").color(egui::Color32::from_rgb(255, 200, 80)))
                    .on_hover_text(
                        "A raster gridstore did not write, read through GDAL: nothing is written into it",
                    );
            } else if ui.button("Structure…").clicked() {
                commands.push(Command::ShowStructure);
            }
        });
        if opened.read_only && ui.button("Ingest into a store…").clicked() {
            commands.push(Command::IngestIntoStore(opened.path.clone()));
        }
        self.quicklooks.show(ui, &opened.path, 64.0);

        egui::Grid::new("structure").num_columns(2).show(ui, |ui| {
            let crs = s.crs.epsg.map_or_else(
                || s.crs.name.clone(),
                |c| format!("EPSG:{c} {}", s.crs.name),
            );
            for (k, v) in [
                ("CRS", crs),
                (
                    "cell size",
                    format!(
                        "{} × {}",
                        short_number(s.cell_size[0]),
                        short_number(s.cell_size[1])
                    ),
                ),
                ("chunk", format!("{} × {}", s.chunk[0], s.chunk[1])),
                ("type", format!("{}  nodata {}", s.dtype, s.nodata_text())),
                ("aggregate", s.aggregate.to_string()),
                (
                    "codec",
                    if opened.read_only {
                        "the raster's own".into()
                    } else {
                        s.codec.to_string()
                    },
                ),
                (
                    "layout",
                    if let Some(what) = &opened.source {
                        what.clone()
                    } else {
                        layout_text(opened.store.layout())
                    },
                ),
                ("bands", s.band_count().to_string()),
                (
                    "master chunk",
                    opened
                        .master
                        .map_or_else(|| "none (empty store)".into(), |m| m.to_string()),
                ),
            ]
            .into_iter()
            .chain(time_range(&opened.store).map(|t| ("time range", t)))
            {
                ui.label(k);
                ui.label(v);
                ui.end_row();
            }
        });
        if let StoreState::Open(opened) = &self.state
            && !opened.read_only
            && self
                .history
                .ui(ui, &opened.path, &opened.history, &opened.notes)
        {
            commands.push(Command::Reload);
        }
        ui.separator();
        self.view_controls(ui, commands);
        let Some(opened) = self.opened() else { return };
        let (store, levels) = (opened.store.clone(), opened.levels.clone());
        ui.separator();
        let selected = self.inspector.selected;
        if let Some(key) = self.levels.ui(ui, &store, &levels, selected) {
            commands.push(Command::Inspect(key));
        }
    }

    fn recent_list(&mut self, ui: &mut egui::Ui, commands: &mut Vec<Command>) {
        if self.recent.is_empty() {
            return;
        }
        let current = self.opened().map(|o| o.path.clone());
        let mut chosen = None;
        let open_first = self.opened().is_none();
        let quicklooks = &mut self.quicklooks;
        egui::CollapsingHeader::new("Recent stores")
            .default_open(open_first)
            .show(ui, |ui| {
                for path in &self.recent {
                    quicklooks.request(path);
                    let name = path.display().to_string();
                    ui.horizontal(|ui| {
                        quicklooks.show(ui, path, 24.0);
                        if ui
                            .add_enabled(
                                current.as_ref() != Some(path),
                                egui::Button::new(&name).small(),
                            )
                            .clicked()
                        {
                            chosen = Some(path.clone());
                        }
                    });
                }
            });
        commands.extend(chosen.map(Command::Open));
    }

    fn view_controls(&mut self, ui: &mut egui::Ui, commands: &mut Vec<Command>) {
        let Some(top) = self.opened().map(|o| o.store.grid().top_level()) else {
            return;
        };
        let mut pinned = self.map.pinned;
        egui::ComboBox::from_label("level")
            .selected_text(pinned.map_or_else(|| "follow zoom".into(), |l| format!("pinned {l}")))
            .show_ui(ui, |ui| {
                ui.selectable_value(&mut pinned, None, "follow zoom");
                for l in 0..=top {
                    ui.selectable_value(&mut pinned, Some(l), format!("level {l}"));
                }
            });
        self.map.pinned = pinned;
        self.band_picker(ui);
        let has_palette = self.opened().is_some_and(|o| o.store.palette().is_some());
        let single = matches!(self.bands, Bands::Single(_));
        let mut choice = (self.use_palette && has_palette, self.color_map);
        ui.add_enabled_ui(single, |ui| {
            egui::ComboBox::from_label("colours")
                .selected_text(if !single {
                    "RGB composite".to_string()
                } else if choice.0 {
                    "colour table".to_string()
                } else {
                    choice.1.name().to_string()
                })
                .show_ui(ui, |ui| {
                    if has_palette {
                        ui.selectable_value(&mut choice, (true, self.color_map), "colour table");
                    }
                    for m in ColorMap::ALL {
                        ui.selectable_value(&mut choice, (false, m), m.name());
                    }
                });
        });
        if choice != (self.use_palette && has_palette, self.color_map) {
            (self.use_palette, self.color_map) = choice;
            // Recoloured in place: old tiles stay until the new ones arrive.
            self.tiles.refresh();
        }
        // A colour table needs no stretch.
        if !(single && self.use_palette && has_palette) && self.stretch.ui(ui) {
            self.tiles.refresh();
        }
        self.shading_controls(ui);
        ui.horizontal(|ui| {
            ui.checkbox(&mut self.map.grid, "chunk grid");
            ui.checkbox(&mut self.furniture, "legend, scale and ticks");
        });
        let loaded = self.drawn.missing == 0;
        if let Some(store) = self.opened().map(|o| o.store.clone())
            && self.time.ui(ui, &store, loaded)
        {
            if self.time.take_period_change() {
                // Other maps, numbered otherwise: none of the tiles holds.
                self.tiles.clear();
                self.inspector.selected = None;
            } else {
                // Another instant: its tiles load while the old ones stay.
                self.tiles.refresh();
            }
        }
        if self.time.take_area_request() {
            commands.push(Command::DrawSeriesArea);
        }
        ui.separator();
        self.export_controls(ui, top, commands);
    }

    /// Shaded relief: on, the sun, the z-factor, alone or blended.
    fn shading_controls(&mut self, ui: &mut egui::Ui) {
        let mut shading = self.shading;
        ui.horizontal(|ui| {
            ui.checkbox(&mut shading.on, "hillshade");
            if shading.on {
                ui.checkbox(&mut shading.alone, "alone");
            }
        });
        if shading.on {
            ui.horizontal(|ui| {
                let sun = ui.label("sun");
                ui.add(
                    egui::DragValue::new(&mut shading.sun.azimuth)
                        .range(0.0..=360.0)
                        .suffix("° azimuth"),
                )
                .labelled_by(sun.id);
                ui.add(
                    egui::DragValue::new(&mut shading.sun.altitude)
                        .range(0.0..=90.0)
                        .suffix("° altitude"),
                )
                .labelled_by(sun.id);
            });
            ui.horizontal(|ui| {
                let z = ui.label("z-factor");
                ui.add(
                    egui::DragValue::new(&mut shading.sun.z_factor)
                        .range(0.001..=1000.0)
                        .speed(0.05),
                )
                .labelled_by(z.id);
            });
        }
        if shading != self.shading {
            self.shading = shading;
            // Old tiles stay until the new ones arrive.
            self.tiles.refresh();
        }
    }

    /// One band with a colour map, or three as red, green and blue.
    fn band_picker(&mut self, ui: &mut egui::Ui) {
        let Some((count, info)) = self
            .opened()
            .map(|o| (o.store.structure().band_count(), o.store.band_info()))
        else {
            return;
        };
        if count < 2 {
            return;
        }
        let mut bands = self.bands;
        let mut rgb = matches!(bands, Bands::Rgb(_));
        ui.horizontal(|ui| {
            ui.label("bands");
            if ui.radio_value(&mut rgb, false, "one").clicked() {
                bands = Bands::Single(bands.indices()[0]);
            }
            if count >= 3 && ui.radio_value(&mut rgb, true, "RGB").clicked() {
                bands = match bands {
                    Bands::Single(b) => Bands::Rgb(if b + 2 < count {
                        [b, b + 1, b + 2]
                    } else {
                        [0, 1, 2]
                    }),
                    rgb => rgb,
                };
            }
        });
        let name = |b: usize| crate::engine::persistence::band_info::label(&info, b);
        let pick = |ui: &mut egui::Ui, label: &str, band: &mut usize| {
            egui::ComboBox::from_label(label)
                .selected_text(name(*band))
                .show_ui(ui, |ui| {
                    for b in 0..count {
                        ui.selectable_value(band, b, name(b));
                    }
                });
        };
        match &mut bands {
            Bands::Single(b) => pick(ui, "band", b),
            Bands::Rgb(rgb) => {
                for (band, label) in rgb.iter_mut().zip(["red", "green", "blue"]) {
                    pick(ui, label, band);
                }
            }
        }
        self.show_bands(bands);
    }

    fn export_controls(&mut self, ui: &mut egui::Ui, top: u8, commands: &mut Vec<Command>) {
        let view = self.drawn.view;
        let base_cell = self
            .opened()
            .map_or(1.0, |o| o.store.grid().cell_size(0)[0]);
        let asking = self.dialog_open();
        let drawing = self.map.drawing == Some(super::map::Drawing::ExportExtent);
        let action = self.export.ui(ui, top, base_cell, drawing, view, asking);
        match action {
            Some(super::export::Action::Draw) => commands.push(Command::DrawExportExtent),
            Some(super::export::Action::Save) => {
                let (name, extension) = self.export.file_type();
                commands.push(Command::PickExportPath { name, extension });
            }
            None => {}
        }
    }
}

/// How a store's chunks lie, for the summary.
fn layout_text(layout: crate::engine::persistence::layout::Layout) -> String {
    use crate::engine::persistence::layout::Layout;
    match layout {
        Layout::Zarr2 => "Zarr v2, a file per chunk".into(),
        Layout::Zarr3 { shard } => format!("Zarr v3, shards of {shard} × {shard} chunks"),
    }
}
