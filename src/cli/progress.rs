//! A spinner for slow compiles: shown only on a terminal, only after a
//! second, never with `--json`.

use std::io::IsTerminal;
use std::sync::mpsc;
use std::time::Duration;

/// Shows a spinner with `message` if the returned guard lives longer than a second.
pub struct Progress {
    done: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Progress {
    /// Starts the delayed spinner (a no-op when `enabled` is false or stderr isn't a terminal).
    pub fn start(message: String, enabled: bool) -> Progress {
        if !enabled || !std::io::stderr().is_terminal() {
            return Progress {
                done: None,
                thread: None,
            };
        }
        let (tx, rx) = mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            if rx.recv_timeout(Duration::from_secs(1)) != Err(mpsc::RecvTimeoutError::Timeout) {
                return;
            }
            let bar = indicatif::ProgressBar::new_spinner().with_message(message);
            bar.enable_steady_tick(Duration::from_millis(100));
            let _ = rx.recv();
            bar.finish_and_clear();
        });
        Progress {
            done: Some(tx),
            thread: Some(thread),
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        drop(self.done.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
