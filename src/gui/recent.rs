//! The recent-stores list, remembered between runs in a small JSON file
//! (`$XDG_CONFIG_HOME/gridstore/recent.json`, or `~/.config/…`).

use std::path::{Path, PathBuf};

/// Most stores remembered.
const KEEP: usize = 8;

/// Where the list lives by default.
#[must_use]
pub fn default_file() -> Option<PathBuf> {
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(config.join("gridstore").join("recent.json"))
}

/// The remembered stores, most recent first (empty when there is no list).
#[must_use]
pub fn load(file: &Path) -> Vec<PathBuf> {
    std::fs::read(file)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Vec<PathBuf>>(&bytes).ok())
        .unwrap_or_default()
}

/// `list` with `store` moved to the front, at most [`KEEP`] long.
#[must_use]
pub fn remember(list: &[PathBuf], store: &Path) -> Vec<PathBuf> {
    let mut next = vec![store.to_path_buf()];
    next.extend(
        list.iter()
            .filter(|p| p.as_path() != store)
            .take(KEEP - 1)
            .cloned(),
    );
    next
}

/// Saves the list (atomically: a temporary file renamed over the old one).
///
/// # Errors
/// The folder or file cannot be written.
pub fn save(file: &Path, list: &[PathBuf]) -> std::io::Result<()> {
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = file.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(list).unwrap_or_default())?;
    std::fs::rename(tmp, file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remember_moves_to_front_and_bounds_the_list() {
        let list: Vec<PathBuf> = (0..10).map(|i| PathBuf::from(format!("/s{i}"))).collect();
        let next = remember(&list, Path::new("/s5"));
        assert_eq!(next[0], PathBuf::from("/s5"));
        assert_eq!(next.len(), KEEP);
        assert_eq!(
            next.iter()
                .filter(|p| p.as_path() == Path::new("/s5"))
                .count(),
            1
        );
    }

    #[test]
    fn save_and_load_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a/recent.json");
        assert!(load(&file).is_empty());
        save(&file, &[PathBuf::from("/x.gs")]).unwrap();
        assert_eq!(load(&file), vec![PathBuf::from("/x.gs")]);
    }
}
