//! A progress line on stderr (spinner, what is happening, elapsed time) for
//! long calls. Drawn only when stderr is a terminal, so pipes and scripts see
//! nothing of it.
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

const FRAMES: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
const TICK: Duration = Duration::from_millis(120);
const DELAY: Duration = Duration::from_millis(300);

/// A running progress line; `finish` (or drop) erases it.
pub(super) struct Progress {
    message: Arc<Mutex<String>>,
    stopped: Arc<AtomicBool>,
    ticker: Option<JoinHandle<()>>,
}

impl Progress {
    /// Starts redrawing `message` with a spinner and the elapsed time, if
    /// stderr is a terminal.
    pub(super) fn start(message: impl Into<String>) -> Self {
        let message = Arc::new(Mutex::new(message.into()));
        let stopped = Arc::new(AtomicBool::new(false));
        let ticker = std::io::stderr().is_terminal().then(|| {
            let message = Arc::clone(&message);
            let stopped = Arc::clone(&stopped);
            tokio::spawn(async move {
                let started = Instant::now();
                // Quick calls finish before the first frame and draw nothing.
                let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + DELAY, TICK);
                for frame in FRAMES.iter().cycle() {
                    interval.tick().await;
                    let text = message.lock().unwrap_or_else(PoisonError::into_inner).clone();
                    let secs = started.elapsed().as_secs_f64();
                    // Checked under the stderr lock, so no frame lands after `stop` erased the line.
                    let mut err = std::io::stderr().lock();
                    if stopped.load(Ordering::SeqCst) {
                        return;
                    }
                    let _ = write!(err, "\r\x1b[2K{frame} {text} ({secs:.1}s)");
                    let _ = err.flush();
                }
            })
        });
        Self { message, stopped, ticker }
    }

    /// Replaces the text of the line (e.g. a new "n/total").
    pub(super) fn set(&self, message: impl Into<String>) {
        *self.message.lock().unwrap_or_else(PoisonError::into_inner) = message.into();
    }

    /// Stops the spinner and erases the line.
    pub(super) fn finish(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(ticker) = self.ticker.take() {
            ticker.abort();
            let mut err = std::io::stderr().lock();
            self.stopped.store(true, Ordering::SeqCst);
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop();
    }
}
