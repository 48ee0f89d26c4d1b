//! Ingest jobs started from the explorer: queued, run one at a time on a
//! worker thread (the store has one writer), with progress, ETA, cancel and
//! a plain-words error per file.
//!
//! Jobs go through exactly the pipeline of `gridstore ingest`. Progress comes
//! back over a bounded channel (events may be skipped when it is full; the
//! final result never is), and each message wakes the UI.

use super::changes::Changes;
use crate::engine::{CancelToken, FunctionCache, JobEvent, Store};
use crate::gdal_io::{ExportRequest, IngestOptions, export_with, ingest};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::Duration;

/// Where a job stands.
#[derive(Debug, Clone, PartialEq)]
pub enum JobState {
    /// Waiting for the jobs before it.
    Queued,
    /// Running.
    Running,
    /// Finished; the summary line.
    Done(String),
    /// Failed; the error in plain words.
    Failed(String),
    /// Cancelled before it finished; the store is as it was.
    Cancelled,
}

/// One file being ingested.
#[derive(Debug)]
pub struct Job {
    /// The raster.
    pub file: PathBuf,
    /// The store it goes into.
    pub store: PathBuf,
    /// Whether the job exports the store to `file` (rather than ingesting it).
    pub exports: bool,
    /// The current phase ("ingest", "pyramid").
    pub phase: String,
    /// Work done in the phase.
    pub done: u64,
    /// Work in the phase.
    pub total: u64,
    /// Time left in the phase.
    pub eta: Option<Duration>,
    /// Where it stands.
    pub state: JobState,
    /// The chunks it is rewriting or has just replaced.
    pub changes: Changes,
    /// What went wrong without stopping it (cells that read as nodata, a
    /// history not recorded, a raster without a CRS), in plain words.
    pub warnings: Vec<String>,
    /// For an ingest refused because source cells hold the store's nodata
    /// value: how many would become nodata if it went ahead.
    pub losing: Option<u64>,
    /// Whether the job ingests even when cells become nodata.
    pub allow_nodata_loss: bool,
    cancel: CancelToken,
}

impl Job {
    /// The fraction of the current phase done.
    #[must_use]
    pub fn fraction(&self) -> f32 {
        #[allow(clippy::cast_precision_loss)]
        if self.total == 0 {
            0.0
        } else {
            (self.done as f32 / self.total as f32).min(1.0)
        }
    }

    /// Whether it is queued or running.
    #[must_use]
    pub fn is_active(&self) -> bool {
        matches!(self.state, JobState::Queued | JobState::Running)
    }
}

struct Request {
    index: usize,
    file: PathBuf,
    store: PathBuf,
    /// Set for an export of the store to `file`.
    export: Option<ExportRequest>,
    /// Ingest even when source cells become nodata.
    allow_nodata_loss: bool,
    /// The function cache exports are served from and kept in.
    cache: Option<FunctionCache>,
    cancel: CancelToken,
}

enum Message {
    Started,
    Event(JobEvent),
    Finished(Result<String, Failure>),
}

/// Why a job failed, in plain words, and whether ingesting anyway would
/// lose cells to nodata (how many).
struct Failure {
    text: String,
    losing: Option<u64>,
}

impl From<String> for Failure {
    fn from(text: String) -> Self {
        Self { text, losing: None }
    }
}

/// The job list and its worker.
pub struct Jobs {
    /// Every job of this session, oldest first.
    pub jobs: Vec<Job>,
    requests: Option<SyncSender<Request>>,
    messages: Receiver<(usize, Message)>,
    sender: SyncSender<(usize, Message)>,
    ctx: egui::Context,
    cache: Option<FunctionCache>,
}

impl Jobs {
    /// No jobs yet; the worker starts with the first. Exports go through
    /// `cache` when given.
    #[must_use]
    pub fn new(ctx: egui::Context, cache: Option<FunctionCache>) -> Self {
        let (sender, messages) = sync_channel(256);
        Self {
            jobs: Vec::new(),
            requests: None,
            messages,
            sender,
            ctx,
            cache,
        }
    }

    /// Queues an ingest of `file` into `store`.
    pub fn ingest(&mut self, file: PathBuf, store: PathBuf) {
        self.queue(file, store, None, false);
    }

    /// Queues job `index`'s ingest again, letting the cells that hold the
    /// store's nodata value become nodata.
    pub fn ingest_anyway(&mut self, index: usize) {
        if let Some(job) = self.jobs.get(index) {
            let (file, store) = (job.file.clone(), job.store.clone());
            self.queue(file, store, None, true);
        }
    }

    /// Queues an export of `store` to `out`.
    pub fn export(&mut self, store: PathBuf, out: PathBuf, request: ExportRequest) {
        self.queue(out, store, Some(request), false);
    }

    fn queue(
        &mut self,
        file: PathBuf,
        store: PathBuf,
        export: Option<ExportRequest>,
        allow_nodata_loss: bool,
    ) {
        let cancel = CancelToken::new();
        let index = self.jobs.len();
        self.jobs.push(Job {
            file: file.clone(),
            store: store.clone(),
            exports: export.is_some(),
            phase: "queued".into(),
            done: 0,
            total: 0,
            eta: None,
            state: JobState::Queued,
            changes: Changes::default(),
            warnings: Vec::new(),
            losing: None,
            allow_nodata_loss,
            cancel: cancel.clone(),
        });
        let requests = self
            .requests
            .get_or_insert_with(|| spawn_worker(self.sender.clone(), self.ctx.clone()));
        if requests
            .send(Request {
                index,
                file,
                store,
                export,
                allow_nodata_loss,
                cache: self.cache.clone(),
                cancel,
            })
            .is_err()
        {
            self.jobs[index].state = JobState::Failed("the job worker stopped".into());
        }
    }

    /// Asks job `index` to stop; a queued job never starts.
    pub fn cancel(&mut self, index: usize) {
        if let Some(job) = self.jobs.get(index) {
            job.cancel.cancel();
        }
    }

    /// Takes the messages that arrived; returns the stores that changed.
    pub fn poll(&mut self) -> Vec<PathBuf> {
        let mut changed = Vec::new();
        let now = std::time::Instant::now();
        while let Ok((index, message)) = self.messages.try_recv() {
            let Some(job) = self.jobs.get_mut(index) else {
                continue;
            };
            match message {
                Message::Started => job.state = JobState::Running,
                Message::Event(JobEvent::Phase { name, total }) => {
                    job.phase = name.to_string();
                    (job.done, job.total, job.eta) = (0, total, None);
                }
                Message::Event(JobEvent::Progress {
                    done, total, eta, ..
                }) => {
                    (job.done, job.total, job.eta) = (done, total, eta);
                    if job.phase == "pyramid" {
                        changed.push(job.store.clone());
                    }
                }
                Message::Event(JobEvent::Warning(text)) => job.warnings.push(text),
                Message::Event(JobEvent::Chunks {
                    t,
                    window,
                    levels,
                    done,
                }) => {
                    job.changes.record(t, window, levels, done, now);
                    if done {
                        changed.push(job.store.clone());
                    }
                }
                Message::Finished(result) => {
                    job.changes.end();
                    job.state = match result {
                        Ok(summary) => {
                            if !job.exports {
                                changed.push(job.store.clone());
                            }
                            JobState::Done(summary)
                        }
                        Err(_) if job.cancel.is_cancelled() => JobState::Cancelled,
                        Err(failure) => {
                            job.losing = failure.losing;
                            JobState::Failed(failure.text)
                        }
                    };
                }
            }
        }
        let mut marked = false;
        for job in &mut self.jobs {
            marked |= job.changes.prune(now);
        }
        if marked || self.jobs.iter().any(Job::is_active) {
            self.ctx.request_repaint_after(Duration::from_millis(100));
        }
        changed.dedup();
        changed
    }
}

fn spawn_worker(sender: SyncSender<(usize, Message)>, ctx: egui::Context) -> SyncSender<Request> {
    let (requests, incoming) = sync_channel::<Request>(1024);
    std::thread::spawn(move || {
        crate::storage::hdf5::quiet_thread();
        for request in incoming {
            let _working = super::task::Working::begin();
            let index = request.index;
            let result = if request.cancel.is_cancelled() {
                Err(Failure::from("cancelled".to_string()))
            } else {
                sender.send((index, Message::Started)).ok();
                ctx.request_repaint();
                run(&request, &sender, &ctx)
            };
            sender.send((index, Message::Finished(result))).ok();
            ctx.request_repaint();
        }
    });
    requests
}

fn run(
    request: &Request,
    sender: &SyncSender<(usize, Message)>,
    ctx: &egui::Context,
) -> Result<String, Failure> {
    let index = request.index;
    let sink = |event: JobEvent| {
        // Progress may be skipped when the UI is behind; never block the
        // pool for it. The rare events that change state always arrive.
        let delivered = if matches!(event, JobEvent::Progress { .. }) {
            sender.try_send((index, Message::Event(event))).is_ok()
        } else {
            sender.send((index, Message::Event(event))).is_ok()
        };
        if delivered {
            ctx.request_repaint();
        }
    };
    if let Some(export_request) = &request.export {
        let store = crate::foreign::open_store_or_raster(&request.store, false)?;
        let (report, warning) = export_with(
            &store,
            export_request,
            &request.file,
            request.cache.as_ref(),
            &sink,
            &request.cancel,
        )
        .map_err(|e| e.to_string())?;
        if let Some(w) = warning {
            sink(JobEvent::Warning(w));
        }
        return Ok(format!(
            "{} × {} cells from level {} to {}{}",
            report.size.0,
            report.size.1,
            report.level,
            report.path.display(),
            if report.from_cache {
                " (from the cache)"
            } else {
                ""
            }
        ));
    }
    let store = open_writer(&request.store)?;
    let options = IngestOptions {
        allow_nodata_loss: request.allow_nodata_loss,
        ..IngestOptions::default()
    };
    let report =
        ingest(&store, &request.file, &options, &sink, &request.cancel).map_err(|e| Failure {
            losing: match &e {
                crate::gdal_io::IoError::NodataCollision { cells, .. } => Some(*cells),
                _ => None,
            },
            text: e.to_string(),
        })?;
    Ok(format!(
        "{} × {} cells{}, {} chunks, {:.1} s",
        report.window.cols,
        report.window.rows,
        if report.warped { " (warped)" } else { "" },
        report.base_chunks,
        report.seconds
    ))
}

fn open_writer(path: &Path) -> Result<Store, String> {
    crate::foreign::open_store_or_raster(path, true)
}
