//! Progress bars on stderr (indicatif) for engine jobs.

use crate::engine::{JobEvent, ProgressSink};
use indicatif::{ProgressBar, ProgressStyle};
use std::sync::Mutex;

/// Draws one bar per job phase.
pub struct BarSink {
    label: String,
    bar: Mutex<Option<ProgressBar>>,
}

impl BarSink {
    /// A sink whose bars are labelled `label` (e.g. the file name).
    pub fn new(label: impl Into<String>) -> Self {
        Self {
            label: label.into(),
            bar: Mutex::new(None),
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Some(bar) = self
            .bar
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
        {
            bar.finish_and_clear();
        }
    }
}

impl ProgressSink for BarSink {
    fn event(&self, event: JobEvent) {
        let mut slot = self
            .bar
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match event {
            JobEvent::Phase { name, total } => {
                if let Some(old) = slot.take() {
                    old.finish_and_clear();
                }
                let bar = ProgressBar::new(total);
                let style = ProgressStyle::with_template(
                    "{msg:30} [{bar:30}] {pos}/{len} {binary_bytes} eta {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
                bar.set_style(style);
                bar.set_message(format!("{} {name}", self.label));
                *slot = Some(bar);
            }
            JobEvent::Progress { done, bytes, .. } => {
                if let Some(bar) = slot.as_ref() {
                    bar.set_position(done);
                    bar.set_message(format!("{} {}", self.label, indicatif::HumanBytes(bytes)));
                }
            }
            JobEvent::Chunks { .. } => {}
            // Warnings always reach stderr, also when no bar is drawn.
            JobEvent::Warning(text) => match slot.as_ref() {
                Some(bar) => bar.suspend(|| eprintln!("warning: {text}")),
                None => eprintln!("warning: {text}"),
            },
        }
    }
}
