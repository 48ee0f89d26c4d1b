//! File dialogs that always open: the system's where there is one (the
//! desktop portal or zenity, through rfd; or kdialog), and otherwise a file
//! browser inside the window.
//!
//! Which one is probed on the dialog's own background thread (looking for
//! programs on `PATH` is I/O). A system dialog that answers "nothing
//! chosen" within [`UNAVAILABLE_WITHIN`] was never shown (no portal, no
//! zenity): nobody dismisses a dialog that fast, so the in-window browser
//! opens instead of the explorer reporting that nothing was chosen.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What a dialog asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PickKind {
    /// One existing file.
    File,
    /// One or more existing files.
    Files,
    /// One existing folder.
    Folder,
    /// A file to write (it may exist).
    Save,
}

/// One file dialog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pick {
    /// Its title.
    pub title: &'static str,
    /// What it asks for.
    pub kind: PickKind,
    /// A filter's name and file extensions (without dots), if any.
    pub filter: Option<(&'static str, Vec<&'static str>)>,
    /// The file name a save dialog proposes.
    pub file_name: Option<String>,
}

/// What a dialog gave back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Picked {
    /// These paths (one, except for [`PickKind::Files`]).
    Chosen(Vec<PathBuf>),
    /// The dialog was dismissed.
    Dismissed,
    /// No system dialog could be shown: ask in the window.
    Unavailable,
}

/// Where dialogs come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// rfd: the desktop portal, then zenity.
    System,
    /// KDE's kdialog.
    Kdialog,
    /// The file browser inside the window.
    InWindow,
}

impl Backend {
    /// The backend a `GRIDSTORE_DIALOG` value names.
    #[must_use]
    pub fn named(name: &str) -> Option<Self> {
        match name {
            "portal" | "zenity" | "system" => Some(Self::System),
            "kdialog" => Some(Self::Kdialog),
            "window" | "in-window" => Some(Self::InWindow),
            _ => None,
        }
    }
}

/// A system dialog answering "nothing" faster than this was not shown.
pub const UNAVAILABLE_WITHIN: Duration = Duration::from_millis(300);

/// What the choice of dialog depends on, read from the environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Probe {
    /// `GRIDSTORE_DIALOG`: a backend chosen by the user.
    pub forced: Option<Backend>,
    /// The programs' search path.
    pub path: Option<OsString>,
    /// Whether a D-Bus session bus (where the portal lives) is announced.
    pub session_bus: bool,
    /// `XDG_RUNTIME_DIR`, where a session bus's socket may be.
    pub runtime_dir: Option<OsString>,
}

impl Probe {
    /// The process's environment (no I/O: the files are looked for when a
    /// dialog is asked, off the UI thread).
    #[must_use]
    pub fn from_env() -> Self {
        Self {
            forced: std::env::var("GRIDSTORE_DIALOG")
                .ok()
                .as_deref()
                .and_then(Backend::named),
            path: std::env::var_os("PATH"),
            session_bus: std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some(),
            runtime_dir: std::env::var_os("XDG_RUNTIME_DIR"),
        }
    }

    /// Whether `program` is on the search path.
    fn has(&self, program: &str) -> bool {
        self.path
            .as_ref()
            .is_some_and(|path| std::env::split_paths(path).any(|dir| dir.join(program).is_file()))
    }

    /// The backend to try first: the one forced, zenity (through rfd,
    /// after the portal), kdialog, the portal alone when a session bus
    /// is there, else the window.
    #[must_use]
    pub fn backend(&self) -> Backend {
        if let Some(forced) = self.forced {
            return forced;
        }
        if self.has("zenity") {
            Backend::System
        } else if self.has("kdialog") {
            Backend::Kdialog
        } else if self.session_bus
            || self
                .runtime_dir
                .as_ref()
                .is_some_and(|dir| Path::new(dir).join("bus").exists())
        {
            Backend::System
        } else {
            Backend::InWindow
        }
    }
}

/// Shows `pick` through the system (blocks until it is answered: run it
/// off the UI thread).
#[must_use]
pub fn ask_system(pick: &Pick, probe: &Probe) -> Picked {
    match probe.backend() {
        Backend::InWindow => Picked::Unavailable,
        Backend::Kdialog => kdialog(pick),
        Backend::System => {
            let started = Instant::now();
            let chosen = rfd_pick(pick);
            judge(chosen, started.elapsed())
        }
    }
}

/// A system dialog's answer: paths, or nothing after `took` (dismissed by
/// a person, or never shown when that fast).
#[must_use]
pub fn judge(chosen: Vec<PathBuf>, took: Duration) -> Picked {
    if !chosen.is_empty() {
        Picked::Chosen(chosen)
    } else if took < UNAVAILABLE_WITHIN {
        Picked::Unavailable
    } else {
        Picked::Dismissed
    }
}

fn rfd_pick(pick: &Pick) -> Vec<PathBuf> {
    let mut dialog = rfd::FileDialog::new().set_title(pick.title);
    if let Some((name, extensions)) = &pick.filter {
        dialog = dialog.add_filter(*name, extensions);
    }
    if let Some(name) = &pick.file_name {
        dialog = dialog.set_file_name(name);
    }
    match pick.kind {
        PickKind::File => dialog.pick_file().into_iter().collect(),
        PickKind::Files => dialog.pick_files().unwrap_or_default(),
        PickKind::Folder => dialog.pick_folder().into_iter().collect(),
        PickKind::Save => dialog.save_file().into_iter().collect(),
    }
}

/// kdialog's arguments for `pick`, starting in `start`.
#[must_use]
pub fn kdialog_args(pick: &Pick, start: &Path) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec!["--title".into(), pick.title.into()];
    let mut start = start.as_os_str().to_owned();
    if let Some(name) = &pick.file_name {
        start = Path::new(&start).join(name).into_os_string();
    }
    let filter = pick.filter.as_ref().map(|(name, extensions)| {
        let patterns: Vec<String> = extensions.iter().map(|e| format!("*.{e}")).collect();
        OsString::from(format!("{} ({})", name, patterns.join(" ")))
    });
    match pick.kind {
        PickKind::File => args.extend(["--getopenfilename".into(), start]),
        PickKind::Files => args.extend([
            "--getopenfilename".into(),
            start,
            "--multiple".into(),
            "--separate-output".into(),
        ]),
        PickKind::Folder => args.extend(["--getexistingdirectory".into(), start]),
        PickKind::Save => args.extend(["--getsavefilename".into(), start]),
    }
    // The filter follows the start folder.
    if pick.kind != PickKind::Folder
        && let Some(filter) = filter
    {
        let at = args
            .iter()
            .position(|a| a.to_str().is_some_and(|a| a.starts_with("--get")))
            .map_or(args.len(), |i| i + 2);
        args.insert(at.min(args.len()), filter);
    }
    args
}

fn kdialog(pick: &Pick) -> Picked {
    let start = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let started = Instant::now();
    match std::process::Command::new("kdialog")
        .args(kdialog_args(pick, &start))
        .output()
    {
        // Exit status 1: the user cancelled.
        Ok(out) if out.status.code() == Some(1) => judge(Vec::new(), started.elapsed()),
        Ok(out) if out.status.success() => {
            let chosen = String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|l| !l.is_empty())
                .map(PathBuf::from)
                .collect();
            judge(chosen, started.elapsed())
        }
        _ => Picked::Unavailable,
    }
}

/// The file browser inside the window, for one pick.
pub struct InWindow {
    dialog: egui_file::FileDialog,
    kind: PickKind,
}

impl InWindow {
    /// Opens the browser for `pick`, in `start`.
    #[must_use]
    pub fn open(pick: &Pick, start: Option<&Path>) -> Self {
        let mut dialog = match pick.kind {
            PickKind::File | PickKind::Files => egui_file::FileDialog::open_file(),
            PickKind::Folder => egui_file::FileDialog::select_folder(),
            PickKind::Save => egui_file::FileDialog::save_file(),
        }
        .title(pick.title)
        .multi_select(pick.kind == PickKind::Files)
        .show_rename(false);
        if let Some(start) = start {
            dialog = dialog.initial_path(start);
        }
        if let Some(name) = &pick.file_name {
            dialog = dialog.default_filename(name.clone());
        }
        if let Some((_, extensions)) = &pick.filter {
            let extensions: Vec<String> = extensions.iter().map(|e| e.to_string()).collect();
            dialog = dialog.show_files_filter(Box::new(move |path: &Path| {
                path.extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| extensions.iter().any(|x| x.eq_ignore_ascii_case(e)))
            }));
        }
        dialog.open();
        Self {
            dialog,
            kind: pick.kind,
        }
    }

    /// Draws the browser; its answer once it has one.
    pub fn show(&mut self, ctx: &egui::Context) -> Option<Picked> {
        self.dialog.show(ctx);
        match self.dialog.state() {
            egui_file::State::Open => None,
            egui_file::State::Selected => {
                let chosen: Vec<PathBuf> = if self.kind == PickKind::Files {
                    let many: Vec<PathBuf> = self
                        .dialog
                        .selection()
                        .into_iter()
                        .map(Path::to_path_buf)
                        .collect();
                    if many.is_empty() {
                        self.dialog
                            .path()
                            .map(Path::to_path_buf)
                            .into_iter()
                            .collect()
                    } else {
                        many
                    }
                } else {
                    self.dialog
                        .path()
                        .map(Path::to_path_buf)
                        .into_iter()
                        .collect()
                };
                Some(if chosen.is_empty() {
                    Picked::Dismissed
                } else {
                    Picked::Chosen(chosen)
                })
            }
            egui_file::State::Cancelled | egui_file::State::Closed => Some(Picked::Dismissed),
        }
    }

    /// Moves the browser to `folder` (for tests and the path field).
    pub fn go_to(&mut self, folder: &Path) {
        self.dialog.set_path(folder);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(programs: &[&str], session_bus: bool) -> (tempfile::TempDir, Probe) {
        let dir = tempfile::tempdir().unwrap();
        for p in programs {
            std::fs::write(dir.path().join(p), "").unwrap();
        }
        let probe = Probe {
            forced: None,
            path: Some(dir.path().as_os_str().to_owned()),
            session_bus,
            runtime_dir: None,
        };
        (dir, probe)
    }

    #[test]
    fn the_backend_follows_what_the_desktop_has() {
        assert_eq!(
            probe(&["zenity", "kdialog"], false).1.backend(),
            Backend::System
        );
        assert_eq!(probe(&["kdialog"], false).1.backend(), Backend::Kdialog);
        assert_eq!(probe(&[], true).1.backend(), Backend::System);
        assert_eq!(probe(&[], false).1.backend(), Backend::InWindow);
        let (_dir, mut forced) = probe(&["zenity"], true);
        forced.forced = Backend::named("window");
        assert_eq!(forced.backend(), Backend::InWindow);
        assert_eq!(Backend::named("nonsense"), None);
    }

    #[test]
    fn nothing_chosen_at_once_means_no_dialog_was_shown() {
        let file = vec![PathBuf::from("/a")];
        assert_eq!(judge(file.clone(), Duration::ZERO), Picked::Chosen(file));
        assert_eq!(
            judge(Vec::new(), Duration::from_millis(20)),
            Picked::Unavailable
        );
        assert_eq!(judge(Vec::new(), Duration::from_secs(2)), Picked::Dismissed);
    }

    #[test]
    fn kdialog_is_asked_in_its_own_words() {
        let pick = Pick {
            title: "Export to",
            kind: PickKind::Save,
            filter: Some(("GeoTIFF", vec!["tif", "tiff"])),
            file_name: Some("out.tif".into()),
        };
        let args: Vec<String> = kdialog_args(&pick, Path::new("/data"))
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        assert_eq!(
            args,
            [
                "--title",
                "Export to",
                "--getsavefilename",
                "/data/out.tif",
                "GeoTIFF (*.tif *.tiff)"
            ]
        );
        let folder = Pick {
            title: "Open",
            kind: PickKind::Folder,
            filter: None,
            file_name: None,
        };
        let args = kdialog_args(&folder, Path::new("/data"));
        assert_eq!(args[2], "--getexistingdirectory");
    }
}
