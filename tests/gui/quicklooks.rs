//! Quicklooks of the open and recent stores: rendered once per state of a
//! store and served from the function cache afterwards, also in a new run
//! of the explorer; a write makes a new one.

use super::{harness, run_until, store_with_data};
use gridstore::gui::GuiOptions;
use gridstore::gui::quicklooks::Entry;
use std::path::Path;

/// Whether `path`'s quicklook is shown, and whether it came from the cache.
fn shown(app: &gridstore::gui::Explorer, path: &Path) -> Option<bool> {
    match app.quicklooks.entry(path) {
        Some(Entry::Ready { texture, hit }) => {
            let [w, h] = texture.size();
            assert!(w.max(h) <= gridstore::gui::quicklooks::SIZE && w.min(h) > 0);
            Some(*hit)
        }
        Some(Entry::Failed(e)) => panic!("{e}"),
        _ => None,
    }
}

#[test]
fn quicklooks_come_from_the_cache_until_the_store_changes() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_data(dir.path());
    let canonical = std::fs::canonicalize(&store).unwrap();
    let options = GuiOptions {
        store: Some(store.clone()),
        recent_file: Some(dir.path().join("recent.json")),
        cache_dir: Some(dir.path().join("cache")),
        ..GuiOptions::default()
    };
    let mut h = harness(&options);
    run_until(&mut h, "the quicklook", |app| {
        shown(app, &canonical).is_some()
    });
    assert_eq!(
        shown(h.state(), &canonical),
        Some(false),
        "rendered the first time"
    );
    drop(h);

    // A new run: the same picture, from the cache, without rendering.
    let mut h = harness(&options);
    run_until(&mut h, "the quicklook", |app| {
        shown(app, &canonical).is_some()
    });
    assert_eq!(shown(h.state(), &canonical), Some(true), "from the cache");

    // A write gives the store a new state, and a new quicklook.
    h.state_mut().jobs.ingest(
        super::util::inverted("terra_meuse.tif", dir.path()),
        store.clone(),
    );
    run_until(&mut h, "the new quicklook", |app| {
        !app.jobs.jobs.iter().any(gridstore::gui::Job::is_active)
            && shown(app, &canonical) == Some(false)
    });
    drop(h);

    // Listed among the recent stores while another is open: from the cache.
    let other = dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    let second = store_with_data(&other);
    let mut h = harness(&GuiOptions {
        store: Some(second),
        ..options
    });
    run_until(&mut h, "the recent store's quicklook", |app| {
        app.opened().is_some() && shown(app, &canonical).is_some()
    });
    assert_eq!(shown(h.state(), &canonical), Some(true));
}
