//! Progress reporting and cancellation for long jobs.
//!
//! Engine entry points take a `&dyn ProgressSink` and a [`CancelToken`]; they
//! know nothing about who listens. The command line draws a bar, the GUI
//! forwards events over a bounded channel.

use crate::engine::grid::Window;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What a running job reports.
#[derive(Debug, Clone, PartialEq)]
pub enum JobEvent {
    /// A new phase starts, with `total` units of work.
    Phase {
        /// A short name, e.g. "ingest" or "pyramid".
        name: &'static str,
        /// Units of work in the phase.
        total: u64,
    },
    /// Work done so far in the current phase.
    Progress {
        /// Units done.
        done: u64,
        /// Units in all.
        total: u64,
        /// Bytes processed so far.
        bytes: u64,
        /// Estimated time left in this phase.
        eta: Option<Duration>,
    },
    /// Something went wrong but the job goes on.
    Warning(String),
    /// The chunks over `window` (base cells) at levels `levels[0]..=levels[1]`
    /// of time index `t` are being rewritten (`done` false: readers still
    /// see their old versions) or have just been replaced (`done` true).
    Chunks {
        /// Time index.
        t: u32,
        /// The base cells written.
        window: Window,
        /// The lowest and highest level concerned.
        levels: [u8; 2],
        /// Whether the new versions are in place.
        done: bool,
    },
}

/// Receives job events. Implementations must be cheap and never block long.
pub trait ProgressSink: Send + Sync {
    /// Handles one event.
    fn event(&self, event: JobEvent);
}

/// A sink that drops every event.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl ProgressSink for NoProgress {
    fn event(&self, _event: JobEvent) {}
}

impl<F: Fn(JobEvent) + Send + Sync> ProgressSink for F {
    fn event(&self, event: JobEvent) {
        self(event);
    }
}

/// Shared flag that asks a job to stop at its next checkpoint.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    /// A token that is not cancelled.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the job to stop.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether cancellation was asked for.
    #[must_use]
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// `Err(Cancelled)` once cancellation was asked for.
    ///
    /// # Errors
    /// [`crate::engine::EngineError::Cancelled`].
    pub fn check(&self) -> Result<(), crate::engine::EngineError> {
        if self.is_cancelled() {
            Err(crate::engine::EngineError::Cancelled)
        } else {
            Ok(())
        }
    }
}

/// Counts work from many threads and emits throttled progress events.
pub struct Progress<'a> {
    sink: &'a dyn ProgressSink,
    total: u64,
    done: AtomicU64,
    bytes: AtomicU64,
    start: Instant,
    last: Mutex<Instant>,
}

/// Minimum time between two progress events.
const THROTTLE: Duration = Duration::from_millis(50);

impl<'a> Progress<'a> {
    /// Starts a phase and announces it.
    pub fn phase(sink: &'a dyn ProgressSink, name: &'static str, total: u64) -> Self {
        sink.event(JobEvent::Phase { name, total });
        let now = Instant::now();
        Self {
            sink,
            total,
            done: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            start: now,
            last: Mutex::new(now.checked_sub(THROTTLE).unwrap_or(now)),
        }
    }

    /// Records `units` of work and `bytes` processed.
    pub fn add(&self, units: u64, bytes: u64) {
        let done = self.done.fetch_add(units, Ordering::Relaxed) + units;
        let bytes = self.bytes.fetch_add(bytes, Ordering::Relaxed) + bytes;
        let now = Instant::now();
        let due = {
            let mut last = self
                .last
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let due = done >= self.total || now.duration_since(*last) >= THROTTLE;
            if due {
                *last = now;
            }
            due
        };
        if due {
            let elapsed = now.duration_since(self.start).as_secs_f64();
            #[allow(clippy::cast_precision_loss)]
            let eta = (done > 0 && done < self.total).then(|| {
                Duration::from_secs_f64(elapsed * (self.total - done) as f64 / done as f64)
            });
            self.sink.event(JobEvent::Progress {
                done,
                total: self.total,
                bytes,
                eta,
            });
        }
    }

    /// Sends a warning.
    pub fn warn(&self, text: String) {
        self.sink.event(JobEvent::Warning(text));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_is_throttled_but_reports_the_end() {
        let events = Mutex::new(Vec::new());
        let sink = |e: JobEvent| events.lock().unwrap().push(e);
        let p = Progress::phase(&sink, "x", 1000);
        for _ in 0..1000 {
            p.add(1, 10);
        }
        let events = events.into_inner().unwrap();
        assert!(events.len() < 50, "{} events", events.len());
        assert_eq!(
            events.last(),
            Some(&JobEvent::Progress {
                done: 1000,
                total: 1000,
                bytes: 10_000,
                eta: None
            })
        );
    }

    #[test]
    fn cancel_token_is_shared() {
        let t = CancelToken::new();
        let u = t.clone();
        assert!(t.check().is_ok());
        u.cancel();
        assert!(t.check().is_err());
    }
}
