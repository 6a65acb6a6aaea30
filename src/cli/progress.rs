//! The progress display on stderr: a spinner while the size of the work is
//! not known, then a bar in bytes. Hidden when stderr is not a terminal or
//! with `--quiet`.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// A progress display.
pub struct Bar(ProgressBar);

impl Bar {
    /// A display on stderr if it is a terminal and not `quiet`.
    pub fn new(quiet: bool) -> Self {
        let bar = if !quiet && std::io::stderr().is_terminal() {
            ProgressBar::new_spinner()
        } else {
            ProgressBar::hidden()
        };
        bar.enable_steady_tick(Duration::from_millis(200));
        Bar(bar)
    }

    /// A phase of unknown size: a spinner and `msg`.
    pub fn phase(&self, msg: &str) {
        self.0.set_style(
            ProgressStyle::with_template("{spinner} {msg} {elapsed}").expect("a valid template"),
        );
        self.0.set_message(msg.to_string());
    }

    /// Work of `total` bytes starts: a bar.
    pub fn start_bytes(&self, msg: &str, total: u64) {
        self.0.set_style(
            ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .expect("a valid template")
            .progress_chars("=> "),
        );
        self.0.set_length(total);
        self.0.set_position(0);
        self.0.set_message(msg.to_string());
    }

    /// Work of `total` items starts: a bar counting them.
    pub fn start_items(&self, msg: &str, total: u64) {
        self.0.set_style(
            ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} eta {eta}")
                .expect("a valid template")
                .progress_chars("=> "),
        );
        self.0.set_length(total);
        self.0.set_message(msg.to_string());
    }

    /// `done` items are done in all.
    pub fn set_position(&self, done: u64) {
        self.0.set_position(done);
    }

    /// A new message beside the bar.
    pub fn message(&self, msg: String) {
        self.0.set_message(msg);
    }

    /// `bytes` more are done.
    pub fn advance(&self, bytes: u64) {
        self.0.inc(bytes);
    }

    /// The work is done: the display goes.
    pub fn finish(&self) {
        self.0.finish_and_clear();
    }
}
