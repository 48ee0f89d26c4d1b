//! The structure editor: a new store field by field with inline errors, a
//! store made like a dropped raster, and an open store's structure read-only.

use super::{drop_files, explorer_on_data, finished, harness, run_until, s, util};
use egui_kittest::kittest::{NodeT as _, Queryable as _};
use gridstore::engine::{Codec, DType, TimeAxis};
use gridstore::gui::{Explorer, Field, GuiOptions, TimeKind};

/// The explorer opened on nothing (which it says), then its New store
/// dialog.
fn new_store_dialog(dir: &std::path::Path) -> egui_kittest::Harness<'static, Explorer> {
    let mut h = harness(&GuiOptions {
        store: Some(dir.join("nothing")),
        ..GuiOptions::default()
    });
    run_until(&mut h, "the error", |app| app.error().is_some());
    h.get_by_label("New store…").click();
    h.run_steps(3);
    h
}

#[test]
fn new_store_fields_are_checked_as_typed_then_the_store_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = new_store_dialog(dir.path());
    h.get_by_label("New store");
    // An empty CRS is explained inline, and nothing can be created yet.
    run_until(&mut h, "the CRS check", |app| !app.editor.busy());
    h.get_by_label("enter an EPSG code (e.g. EPSG:4326) or WKT");
    assert!(
        h.get_by_label("Create store")
            .accesskit_node()
            .is_disabled()
    );

    // Typed into the CRS field: GDAL reads it and names it.
    h.get_by_label("CRS (EPSG or WKT)").focus();
    h.run_steps(2);
    h.get_by_label("CRS (EPSG or WKT)").type_text("32631");
    h.run_steps(2);
    run_until(&mut h, "GDAL's reading of the CRS", |app| {
        !app.editor.busy() && !app.editor.checked().errors.contains_key(&Field::Crs)
    });
    h.get_by_label("WGS 84 / UTM zone 31N (EPSG:32631)");

    // Bad values: each field says what is wrong, in place.
    {
        let form = &mut h.state_mut().editor.form;
        form.chunk = ["255".into(), "256".into()];
        form.dtype = DType::U8;
        form.nodata = "-1".into();
        form.time = TimeKind::Regular;
        form.time_step = "1y".into();
    }
    h.run_steps(3);
    h.get_by_label("'255': chunk sides must be even, 2 to 8192");
    h.get_by_label("-1 does not fit u8");
    h.get_by_label("'1y': unknown unit 'y' (use s, m, h, d or w)");
    h.get_by_label("fix the fields marked above");
    assert!(
        h.get_by_label("Create store")
            .accesskit_node()
            .is_disabled()
    );

    // Fixed: the store is created where asked and opened.
    let target = dir.path().join("new.gs");
    {
        let editor = &mut h.state_mut().editor;
        editor.form.chunk = ["128".into(), "128".into()];
        editor.form.nodata = "255".into();
        editor.form.time_step = "6h".into();
        editor.form.cell = ["10".into(), "10".into()];
        editor.form.origin = ["500000".into(), "4000000".into()];
        editor.form.codec = gridstore::gui::CodecKind::Lz4;
        editor.backend = gridstore::storage::Backend::Packed;
        editor.target = target.display().to_string();
    }
    h.run_steps(3);
    h.get_by_label("Create store").click();
    run_until(&mut h, "the new store", |app| app.opened().is_some());
    let opened = h.state().opened().unwrap();
    let st = opened.store.structure();
    assert_eq!(st.crs.epsg, Some(32631));
    assert_eq!(st.chunk, [128, 128]);
    assert_eq!(st.dtype, DType::U8);
    assert_eq!(st.codec, Codec::Lz4);
    assert_eq!(st.nodata, Some(255.0));
    assert_eq!(
        st.time,
        Some(TimeAxis::Regular {
            origin: 946_684_800,
            step: 6 * 3600
        })
    );
    // Auto domain: the UTM zone's area of use, in 128-cell chunks of 10 m.
    assert!(st.domain_levels >= 10, "{}", st.domain_levels);
    assert_eq!(opened.path, std::fs::canonicalize(&target).unwrap());
    assert_eq!(opened.store.storage().backend_name(), "packed");
    assert!(!h.state().editor.open);
}

/// The layout is chosen beside the backend: zarr3 with lz4 is explained
/// in place and cannot be created; with zstd the store is zarr3.
#[test]
fn the_new_store_layout_is_chosen_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = new_store_dialog(dir.path());
    let target = dir.path().join("v3.gs");
    {
        let editor = &mut h.state_mut().editor;
        editor.form.crs = "EPSG:32631".into();
        editor.form.cell = ["10".into(), "10".into()];
        editor.form.origin = ["500000".into(), "4000000".into()];
        editor.form.codec = gridstore::gui::CodecKind::Lz4;
        editor.target = target.display().to_string();
    }
    h.run_steps(3);
    run_until(&mut h, "GDAL's reading of the CRS", |app| {
        !app.editor.busy() && app.editor.checked().structure.is_some()
    });
    h.get_by_label("layout").click();
    h.run_steps(2);
    h.get_by_label("zarr3 (shards of 8 × 8 chunks; Zarr v3 readers)")
        .click();
    h.run_steps(3);
    h.get_by_label(
        "the zarr3 layout has no lz4 codec (Zarr v3 knows zstd, not numcodecs' lz4): choose zstd or none",
    );
    assert!(
        h.get_by_label("Create store")
            .accesskit_node()
            .is_disabled()
    );
    h.state_mut().editor.form.codec = gridstore::gui::CodecKind::Zstd;
    h.run_steps(3);
    h.get_by_label("Create store").click();
    run_until(&mut h, "the new store", |app| app.opened().is_some());
    let opened = h.state().opened().unwrap();
    assert_eq!(
        opened.store.layout(),
        gridstore::engine::persistence::layout::Layout::Zarr3 { shard: 8 }
    );
    assert!(target.join("zarr.json").exists());
}

#[test]
fn creating_over_a_folder_with_files_is_refused_and_leaves_it_alone() {
    let dir = tempfile::tempdir().unwrap();
    let busy = dir.path().join("busy");
    std::fs::create_dir(&busy).unwrap();
    std::fs::write(busy.join("notes.txt"), "mine").unwrap();
    let before = util::snapshot(&busy);
    let mut h = harness(&GuiOptions {
        store: Some(dir.path().join("nothing")),
        ..GuiOptions::default()
    });
    run_until(&mut h, "the error", |app| app.error().is_some());
    {
        let editor = &mut h.state_mut().editor;
        editor.new_store();
        editor.form.crs = "EPSG:4326".into();
        editor.form.cell = ["0.01".into(), "0.01".into()];
        editor.target = busy.display().to_string();
    }
    run_until(&mut h, "the CRS check", |app| {
        !app.editor.busy() && app.editor.checked().structure.is_some()
    });
    h.get_by_label("Create store").click();
    run_until(&mut h, "the refusal", |app| app.editor.error.is_some());
    let error = h.state().editor.error.clone().unwrap();
    assert!(error.contains("exists and is not empty"), "{error}");
    assert!(error.contains("busy"), "{error}");
    h.get_by_label(&error);
    assert_eq!(util::snapshot(&busy), before);
    assert!(h.state().opened().is_none());
}

#[test]
fn a_dropped_raster_with_no_store_offers_a_store_like_it() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("meuse.tif");
    std::fs::copy(util::data("terra_meuse.tif"), &src).unwrap();
    let mut h = harness(&GuiOptions {
        store: Some(dir.path().join("nothing")),
        ..GuiOptions::default()
    });
    run_until(&mut h, "the error", |app| app.error().is_some());
    drop_files(&mut h, &[&src]);
    run_until(&mut h, "the raster's structure", |app| {
        !app.editor.busy() && app.editor.checked().structure.is_some()
    });
    // Nothing is created until the user says so.
    assert!(!dir.path().join("meuse.gs").exists());
    util::ok(&["create", s(&dir.path().join("cli.gs")), "--like", s(&src)]);
    let expected = gridstore::engine::Store::open(std::sync::Arc::new(
        gridstore::storage::FolderStorage::open(dir.path().join("cli.gs")).unwrap(),
    ))
    .unwrap()
    .structure()
    .clone();
    assert_eq!(h.state().editor.checked().structure.unwrap(), expected);
    assert_eq!(
        h.state().editor.target,
        dir.path().join("meuse.gs").display().to_string()
    );
    h.get_by_label("Create and ingest 1 file").click();
    run_until(&mut h, "the ingest", |app| {
        finished(app) && app.opened().is_some_and(|o| o.levels[0].1 > 0)
    });
    assert_eq!(
        h.state().opened().unwrap().path,
        std::fs::canonicalize(dir.path().join("meuse.gs")).unwrap()
    );
}

#[test]
fn an_open_stores_structure_is_shown_read_only() {
    let (_dir, mut h) = explorer_on_data();
    run_until(&mut h, "the store", |app| app.opened().is_some());
    h.get_by_label("Structure…").click();
    h.run_steps(3);
    h.get_by_label("Store structure");
    h.get_by_label("A store's structure is fixed when it is created; it is shown read-only.");
    assert!(
        h.get_by_label("CRS (EPSG or WKT)")
            .accesskit_node()
            .is_disabled()
    );
    assert!(h.query_by_label("Create store").is_none());
    let app = h.state();
    let shown = app.editor.checked().structure.unwrap();
    assert_eq!(&shown, app.opened().unwrap().store.structure());
    // Typing changes nothing.
    h.get_by_label("CRS (EPSG or WKT)").type_text("4326");
    h.run_steps(2);
    assert_eq!(
        h.state().editor.checked().structure.unwrap(),
        *h.state().opened().unwrap().store.structure()
    );
}
