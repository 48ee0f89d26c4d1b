//! Work the UI thread hands off: one result computed on a background
//! thread (file dialogs, opening a store, reading a chunk…), sent back
//! over a bounded channel, with the UI woken when it is there. The UI
//! polls it each frame and never waits.

use std::sync::mpsc::{Receiver, sync_channel};

/// A result on its way from a background thread.
#[derive(Debug)]
pub struct Task<T> {
    result: Receiver<T>,
}

impl<T: Send + 'static> Task<T> {
    /// Runs `work` on a new thread (it may block: a dialog, I/O); once it
    /// returns, its result waits here and `ctx` repaints.
    pub fn spawn(ctx: &egui::Context, work: impl FnOnce() -> T + Send + 'static) -> Self {
        let (sender, result) = sync_channel(1);
        let ctx = ctx.clone();
        std::thread::spawn(move || {
            // The UI may have dropped the task meanwhile: nobody to tell.
            sender.send(work()).ok();
            ctx.request_repaint();
        });
        Self { result }
    }

    /// The result, once it is there (handed out once).
    pub fn poll(&self) -> Option<T> {
        self.result.try_recv().ok()
    }
}
