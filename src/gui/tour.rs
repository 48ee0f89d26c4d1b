//! `--tour`: a fixed pan/zoom tour across every level, with the UI update
//! time of each frame logged, to measure smoothness.
//!
//! The tour fits the data, zooms in to the base level around the data's
//! centre, pans across, then zooms out to the root; with `--tour-ingest FILE`
//! it also starts that ingest halfway and keeps touring while it runs. A
//! store with a time axis is then played for a leg at the fitted view. Each
//! frame's line is `frame <n> level <l> t <index> ingest <0|1> play <0|1>
//! <ms>`, the last field being the time `Explorer::show` took. It ends with jumps to
//! new viewports at every scale, each held until its full-quality tiles are
//! all drawn: `jump <n> level <l> settle <ms>`. The view's style (bands,
//! colours, hillshade) is the one given on the command line.

use crate::engine::Extent;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Frames of each leg of the tour.
const LEG: u32 = 120;

/// Jumps to new viewports at the end of the tour.
const JUMPS: u32 = 24;

/// A jump that has not settled by then is logged with this time.
const JUMP_LIMIT: Duration = Duration::from_secs(5);

/// The tour's progress and the frame log.
pub struct Tour {
    frame: u32,
    start: Option<([f64; 2], f64)>,
    /// One line per frame.
    pub lines: Vec<String>,
    /// Where the log goes when the tour ends.
    pub log: PathBuf,
    /// A raster to ingest halfway.
    pub ingest: Option<PathBuf>,
    ingest_started: bool,
    /// The jump under way: its number, view and start.
    jump: Option<(u32, [f64; 2], f64, Instant)>,
    jumps_done: u32,
}

/// What the tour wants this frame.
pub enum Step {
    /// Show this centre and scale.
    View([f64; 2], f64),
    /// Show this centre and scale, playing the instants (or not).
    Play([f64; 2], f64, bool),
    /// Start the ingest now (and keep the view).
    Ingest(PathBuf),
    /// The tour is over.
    Done,
}

impl Tour {
    /// A tour logging to `log`.
    #[must_use]
    pub fn new(log: PathBuf, ingest: Option<PathBuf>) -> Self {
        Self {
            frame: 0,
            start: None,
            lines: Vec::new(),
            log,
            ingest,
            ingest_started: false,
            jump: None,
            jumps_done: 0,
        }
    }

    /// The next step, given the data extent, the fitted scale, whether
    /// the last frame drew every visible tile at full quality at `level`,
    /// and whether the store has instants to play.
    pub fn next(
        &mut self,
        data: &Extent,
        fitted: ([f64; 2], f64),
        base_cell: f64,
        complete: Option<u8>,
        playable: bool,
    ) -> Step {
        let (center, fit_scale) = *self.start.get_or_insert(fitted);
        self.frame += 1;
        let f = self.frame;
        if f == 2 * LEG
            && !self.ingest_started
            && let Some(file) = self.ingest.clone()
        {
            self.ingest_started = true;
            return Step::Ingest(file);
        }
        // Scales from the whole data down to one base cell per point.
        let deep = base_cell.min(fit_scale);
        let lerp = |a: f64, b: f64, t: f64| a + (b - a) * t;
        let geo = |a: f64, b: f64, t: f64| (a.ln() + (b.ln() - a.ln()) * t).exp();
        let t = f64::from(f % LEG) / f64::from(LEG);
        match f / LEG {
            // Zoom in to the base level.
            0 => Step::View(center, geo(fit_scale, deep, t)),
            // Pan west to east across the data at the base level.
            1 | 2 => {
                let x = lerp(
                    data.min_x,
                    data.max_x,
                    f64::from(f - LEG) / f64::from(2 * LEG),
                );
                Step::View([x, center[1]], deep)
            }
            // Zoom out past the whole data, towards the root.
            3 => Step::View(center, geo(deep, fit_scale * 64.0, t)),
            // Back to the data.
            4 => Step::View(center, geo(fit_scale * 64.0, fit_scale, t)),
            // Play the instants at the fitted view; stop on the leg's last frame.
            5 if playable => Step::Play(center, fit_scale, f % LEG != LEG - 1),
            _ => self.jump_step(data, deep, fit_scale, complete),
        }
    }

    /// Jumps to the next new viewport once the last one settled.
    fn jump_step(
        &mut self,
        data: &Extent,
        deep: f64,
        fit_scale: f64,
        complete: Option<u8>,
    ) -> Step {
        if let Some((n, center, scale, started)) = self.jump {
            let waited = started.elapsed();
            let settled = match complete {
                Some(level) if self.frame > n => Some(level),
                _ => None,
            };
            if settled.is_none() && waited < JUMP_LIMIT {
                return Step::View(center, scale);
            }
            self.lines.push(format!(
                "jump {} level {} settle {:.1}",
                self.jumps_done + 1,
                settled.map_or_else(|| "-".to_string(), |l| l.to_string()),
                waited.as_secs_f64() * 1000.0
            ));
            self.jumps_done += 1;
            self.jump = None;
        }
        if self.jumps_done >= JUMPS {
            return Step::Done;
        }
        // Spread over the data (a low-discrepancy walk) and over scales from
        // one base cell per point to four times the whole data.
        let i = f64::from(self.jumps_done);
        let (fx, fy) = ((i * 0.618_034).fract(), (i * 0.414_214 + 0.5).fract());
        let center = [
            data.min_x + fx * (data.max_x - data.min_x),
            data.min_y + fy * (data.max_y - data.min_y),
        ];
        let steps = f64::from(JUMPS - 1);
        let scale =
            (deep.ln() + ((fit_scale * 4.0).ln() - deep.ln()) * ((i * 5.0) % steps) / steps).exp();
        self.jump = Some((self.frame, center, scale, Instant::now()));
        Step::View(center, scale)
    }

    /// Whether the tour is held at a new viewport, waiting for it to load.
    #[must_use]
    pub fn holding(&self) -> bool {
        self.jump.is_some()
    }

    /// Records one frame: the level and instant shown, and what ran.
    pub fn record(
        &mut self,
        (level, t): (u8, u32),
        ingesting: bool,
        playing: bool,
        took: Duration,
    ) {
        self.lines.push(format!(
            "frame {} level {level} t {t} ingest {} play {} {:.3}",
            self.frame,
            u8::from(ingesting),
            u8::from(playing),
            took.as_secs_f64() * 1000.0
        ));
    }

    /// Writes the log.
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn write(&self) -> std::io::Result<()> {
        std::fs::write(&self.log, self.lines.join("\n") + "\n")
    }
}

/// p50 and p99 (milliseconds) of the last field of each line of a frame log,
/// overall and for the frames logged during an ingest.
///
/// # Errors
/// The file cannot be read or holds no frame lines.
pub fn frame_stats(text: &str) -> Result<String, String> {
    let mut all = Vec::new();
    let mut ingest = Vec::new();
    let mut playing = Vec::new();
    let mut settles = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.first() == Some(&"jump") {
            if let Some(ms) = fields.last().and_then(|v| v.parse::<f64>().ok()) {
                settles.push(ms);
            }
            continue;
        }
        let Some(ms) = fields.last().and_then(|v| v.parse::<f64>().ok()) else {
            continue;
        };
        all.push(ms);
        if fields.windows(2).any(|w| w == ["ingest", "1"]) {
            ingest.push(ms);
        }
        if fields.windows(2).any(|w| w == ["play", "1"]) {
            playing.push(ms);
        }
    }
    if all.is_empty() {
        return Err("no frame lines".into());
    }
    let describe = |name: &str, unit: &str, v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        let at = |p: f64| {
            #[allow(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                clippy::cast_precision_loss
            )]
            let i = ((p * (v.len() - 1) as f64).round() as usize).min(v.len() - 1);
            v[i]
        };
        format!(
            "{name}: {} {unit}, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            v.len(),
            at(0.5),
            at(0.99),
            v[v.len() - 1]
        )
    };
    let mut out = describe("all frames", "frames", &mut all);
    if !ingest.is_empty() {
        out.push('\n');
        out.push_str(&describe("during ingest", "frames", &mut ingest));
    }
    if !playing.is_empty() {
        out.push('\n');
        out.push_str(&describe("during playback", "frames", &mut playing));
    }
    if !settles.is_empty() {
        out.push('\n');
        out.push_str(&describe(
            "new viewport to full quality",
            "jumps",
            &mut settles,
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_read_the_last_field() {
        let log = "frame 1 level 3 ingest 0 play 0 1.0\nframe 2 level 3 ingest 1 play 0 3.0\nframe 3 level 2 ingest 1 play 1 2.0\njump 1 level 2 settle 40.0\njump 2 level - settle 5000.0\n";
        let s = frame_stats(log).unwrap();
        assert!(
            s.contains("all frames: 3 frames, p50 2.00 ms, p99 3.00 ms"),
            "{s}"
        );
        assert!(s.contains("during ingest: 2 frames"), "{s}");
        assert!(s.contains("during playback: 1 frames, p50 2.00 ms"), "{s}");
        assert!(
            s.contains("new viewport to full quality: 2 jumps, p50 5000.00 ms"),
            "{s}"
        );
        assert!(frame_stats("nothing here").is_err());
    }
}
