//! Progress bars for long operations: drawn on stderr only when it is a terminal, so piped
//! and scripted runs stay quiet.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;

/// What a bar counts.
#[derive(Debug, Clone, Copy)]
pub enum Unit {
    /// Items (keys, versions).
    Items,
    /// Bytes read.
    Bytes,
}

/// A progress bar, or nothing when stderr is not a terminal.
pub struct Progress(Option<ProgressBar>);

impl Progress {
    /// A bar labelled `label`, shown only on a terminal.
    pub fn new(label: &str, unit: Unit) -> Progress {
        Progress::shown_if(std::io::stderr().is_terminal(), label, unit)
    }

    fn shown_if(terminal: bool, label: &str, unit: Unit) -> Progress {
        if !terminal {
            return Progress(None);
        }
        let template = match unit {
            Unit::Items => "{msg} [{bar:40}] {pos}/{len} ({eta})",
            Unit::Bytes => "{msg} [{bar:40}] {bytes}/{total_bytes} ({eta})",
        };
        let style = ProgressStyle::with_template(template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        let bar = ProgressBar::new(0).with_style(style);
        bar.set_message(label.to_owned());
        Progress(Some(bar))
    }

    /// Whether a bar is drawn.
    #[cfg(test)]
    fn is_shown(&self) -> bool {
        self.0.is_some()
    }

    /// Reports `done` of `total`.
    pub fn update(&self, done: u64, total: u64) {
        if let Some(bar) = &self.0 {
            bar.set_length(total);
            bar.set_position(done);
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_unless_on_a_terminal() {
        assert!(!Progress::shown_if(false, "x", Unit::Items).is_shown());
        let shown = Progress::shown_if(true, "x", Unit::Bytes);
        assert!(shown.is_shown());
        shown.update(5, 10);
    }
}
