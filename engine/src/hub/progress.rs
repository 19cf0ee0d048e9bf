//! Progress reporting on stderr.
//!
//! On a terminal, byte transfers draw a one-line bar redrawn in place (at most ~10 times a
//! second). When stderr is not a terminal (logs, CI) only one line per stage is written, so
//! logs are not flooded with carriage returns. Hand-rolled: a single bar needs ~60 lines,
//! not a dependency.

use std::io::{self, IsTerminal, Write};
use std::time::{Duration, Instant};

const REDRAW_EVERY: Duration = Duration::from_millis(100);
const BAR_WIDTH: usize = 30;

/// Where fetch progress goes: nowhere, stage lines only, or stage lines plus live bars.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    enabled: bool,
    live_bars: bool,
}

impl Progress {
    /// `enabled = false` prints nothing at all; otherwise bars appear only on a terminal.
    pub fn new(enabled: bool) -> Self {
        Progress { enabled, live_bars: enabled && io::stderr().is_terminal() }
    }

    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// True when a live subprocess display (pip's own bar) may be shown on stderr.
    pub fn is_live(&self) -> bool {
        self.live_bars
    }

    /// One line announcing a stage, e.g. "fetching smollm2-135m from pypi".
    pub fn stage(&self, message: &str) {
        if self.enabled {
            eprintln!("fovea: {message}");
        }
    }

    /// A bar over `total` bytes; a no-op unless live bars are on.
    pub fn bytes(&self, label: &str, total: u64) -> ByteBar {
        ByteBar {
            live: self.live_bars,
            label: label.to_owned(),
            total,
            done: 0,
            started: Instant::now(),
            last_draw: None,
        }
    }
}

/// A live byte counter drawn as `label [#####.....] 45.1/98.4 MB 120.3 MB/s`.
pub struct ByteBar {
    live: bool,
    label: String,
    total: u64,
    done: u64,
    started: Instant,
    last_draw: Option<Instant>,
}

impl ByteBar {
    pub fn advance(&mut self, bytes: u64) {
        self.done += bytes;
        if !self.live {
            return;
        }
        let now = Instant::now();
        if self.last_draw.is_none_or(|t| now.duration_since(t) >= REDRAW_EVERY) {
            self.last_draw = Some(now);
            self.draw();
        }
    }

    /// Draws the final state and ends the line.
    pub fn finish(mut self) {
        if self.live && self.last_draw.is_some() {
            self.draw();
            eprintln!();
        }
        self.live = false;
    }

    fn draw(&self) {
        const MB: f64 = 1e6;
        let fraction = if self.total == 0 { 1.0 } else { (self.done as f64 / self.total as f64).min(1.0) };
        let filled = (fraction * BAR_WIDTH as f64) as usize;
        let seconds = self.started.elapsed().as_secs_f64().max(1e-3);
        let line = format!(
            "\r{} [{}{}] {:.1}/{:.1} MB {:.1} MB/s ",
            self.label,
            "#".repeat(filled),
            ".".repeat(BAR_WIDTH - filled),
            self.done as f64 / MB,
            self.total as f64 / MB,
            self.done as f64 / MB / seconds,
        );
        let mut err = io::stderr().lock();
        // Progress output is best effort: a closed stderr must not fail the fetch.
        let _ = err.write_all(line.as_bytes());
        let _ = err.flush();
    }
}

impl Drop for ByteBar {
    fn drop(&mut self) {
        // An abandoned bar (error mid-transfer) ends its line so the error starts cleanly.
        if self.live && self.last_draw.is_some() {
            eprintln!();
        }
    }
}
