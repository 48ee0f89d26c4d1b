//! Work the UI thread hands off: one result computed on a background
//! thread (file dialogs, opening a store) or on the worker pool (reading a
//! chunk), sent back over a bounded channel, with the UI woken when it is
//! there. The UI polls it each frame and never waits.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError, sync_channel};
use std::time::{Duration, Instant};

/// Background work under way (tasks, tile renders, quicklooks, jobs).
static WORKING: AtomicUsize = AtomicUsize::new(0);

/// Counts one piece of background work while it lives.
pub struct Working(());

impl Working {
    /// Work begins.
    pub fn begin() -> Self {
        WORKING.fetch_add(1, Ordering::SeqCst);
        Self(())
    }
}

impl Drop for Working {
    fn drop(&mut self) {
        WORKING.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Waits (up to `limit`) until no background work runs: the window has
/// closed, and the process must not exit while a thread is still inside
/// GDAL or HDF5, whose libraries tear down as it exits.
pub fn wait_idle(limit: Duration) {
    let start = Instant::now();
    while WORKING.load(Ordering::SeqCst) > 0 && start.elapsed() < limit {
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A result on its way from a background thread.
#[derive(Debug)]
pub struct Task<T> {
    result: Receiver<T>,
    /// The thread ended without a result (it panicked).
    lost: Cell<bool>,
}

impl<T: Send + 'static> Task<T> {
    /// Runs `work` on a new thread (it may block: a dialog, I/O); once it
    /// returns, its result waits here and `ctx` repaints.
    pub fn spawn(ctx: &egui::Context, work: impl FnOnce() -> T + Send + 'static) -> Self {
        let (sender, result) = sync_channel(1);
        let ctx = ctx.clone();
        let working = Working::begin();
        std::thread::spawn(move || {
            let _working = working;
            // The UI may have dropped the task meanwhile: nobody to tell.
            sender.send(work()).ok();
            ctx.request_repaint();
        });
        Self {
            result,
            lost: Cell::new(false),
        }
    }

    /// Runs `work` on the worker pool (compute and short reads, never
    /// anything that waits on a person); once it returns, its result waits
    /// here and `ctx` repaints.
    pub fn on_pool(ctx: &egui::Context, work: impl FnOnce() -> T + Send + 'static) -> Self {
        let (sender, result) = sync_channel(1);
        let ctx = ctx.clone();
        let working = Working::begin();
        rayon::spawn(move || {
            let _working = working;
            sender.send(work()).ok();
            ctx.request_repaint();
        });
        Self {
            result,
            lost: Cell::new(false),
        }
    }

    /// The result, once it is there (handed out once).
    pub fn poll(&self) -> Option<T> {
        match self.result.try_recv() {
            Ok(result) => Some(result),
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => {
                self.lost.set(true);
                None
            }
        }
    }

    /// Whether the thread ended without a result (a bug: it panicked), as
    /// the last [`Task::poll`] found.
    pub fn lost(&self) -> bool {
        self.lost.get()
    }
}
