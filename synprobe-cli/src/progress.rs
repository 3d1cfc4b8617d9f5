//! The replay's progress bar: bytes of the capture read, on stderr.
//!
//! Shown only when stderr is a terminal, `--quiet` was not given, and the replay has run for about a second
//! (short replays never flash a bar). The count comes from the bytes the capture reader pulls from the file,
//! so it moves however the file is laid out; a file of known size gets a bar with an ETA, standard input or a
//! pipe a byte counter.

use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How long a replay runs before the bar appears.
const SHOW_AFTER: Duration = Duration::from_secs(1);

/// Counts the bytes read and draws the bar once it is due. Clones share one bar, across threads (the capture is
/// read on one thread, the report written on another).
#[derive(Clone)]
pub struct Meter(Arc<Shared>);

struct Shared {
    enabled: bool,
    stdout_is_terminal: bool,
    total: Option<u64>,
    start: Instant,
    read: AtomicU64,
    bar: OnceLock<ProgressBar>,
}

impl Meter {
    /// A meter for reading a capture of `total` bytes when known. `enabled`: stderr is a terminal and the user
    /// did not ask for quiet. `stdout_is_terminal`: the report shares the screen with the bar, so each write to
    /// stdout first lifts the bar.
    pub fn new(enabled: bool, stdout_is_terminal: bool, total: Option<u64>) -> Self {
        Meter(Arc::new(Shared {
            enabled,
            stdout_is_terminal,
            total,
            start: Instant::now(),
            read: AtomicU64::new(0),
            bar: OnceLock::new(),
        }))
    }

    /// Wrap the capture's source: every byte read moves the bar.
    pub fn reader<R: Read>(&self, inner: R) -> CountingReader<R> {
        CountingReader {
            inner,
            meter: self.clone(),
        }
    }

    /// Wrap stdout, so that the report's lines are not drawn over by the bar.
    pub fn writer<W: Write>(&self, inner: W) -> LiftingWriter<W> {
        LiftingWriter {
            inner,
            meter: self.clone(),
        }
    }

    /// Remove the bar (if it was shown): the replay is over.
    pub fn finish(&self) {
        if let Some(bar) = self.0.bar.get() {
            bar.finish_and_clear();
        }
    }

    fn advance(&self, n: usize) {
        let s = &self.0;
        // Only the reading thread adds to the count.
        let read = s.read.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
        if let Some(bar) = s.bar.get() {
            bar.set_position(read);
        } else if s.enabled && s.start.elapsed() >= SHOW_AFTER {
            let bar = self.new_bar(read);
            let _ = s.bar.set(bar);
        }
    }

    fn new_bar(&self, read: u64) -> ProgressBar {
        let s = &self.0;
        let style = match s.total {
            Some(_) => ProgressStyle::with_template(
                "synprobe: replaying [{wide_bar}] {percent:>3}% of {total_bytes} ({bytes_per_sec}, {eta} left)",
            ),
            None => ProgressStyle::with_template(
                "synprobe: replaying {spinner} {bytes} read ({bytes_per_sec})",
            ),
        }
        .map(|st| st.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        let bar = ProgressBar::with_draw_target(s.total, ProgressDrawTarget::hidden())
            .with_style(style)
            .with_elapsed(s.start.elapsed());
        // The bytes read before the bar appeared are not a rate: count them, then start the estimate afresh.
        bar.set_position(read);
        bar.reset_eta();
        bar.set_draw_target(ProgressDrawTarget::stderr());
        // Redrawn on its own while the reader waits (a slow pipe) or the engine works through a buffer.
        bar.enable_steady_tick(Duration::from_millis(200));
        bar.force_draw();
        bar
    }

    fn lifted<T>(&self, f: impl FnOnce() -> T) -> T {
        match self.0.bar.get() {
            Some(bar) if self.0.stdout_is_terminal && !bar.is_finished() => bar.suspend(f),
            _ => f(),
        }
    }
}

/// The capture source, counting what is read.
pub struct CountingReader<R> {
    inner: R,
    meter: Meter,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.meter.advance(n);
        Ok(n)
    }
}

/// Stdout, lifting the bar out of the way of each write when both share a terminal.
pub struct LiftingWriter<W> {
    inner: W,
    meter: Meter,
}

impl<W: Write> Write for LiftingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let inner = &mut self.inner;
        self.meter.lifted(|| inner.write(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        let inner = &mut self.inner;
        self.meter.lifted(|| inner.flush())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_bytes_and_passes_them_through() {
        let meter = Meter::new(false, false, Some(10));
        let mut r = meter.reader(&b"0123456789"[..]);
        let mut out = Vec::new();
        r.read_to_end(&mut out).expect("read");
        assert_eq!(out, b"0123456789");
        assert_eq!(meter.0.read.load(Ordering::Relaxed), 10);
        assert!(meter.0.bar.get().is_none(), "disabled: no bar");
        let mut w = meter.writer(Vec::new());
        w.write_all(b"report").expect("write");
        assert_eq!(w.inner, b"report");
        meter.finish();
    }
}
