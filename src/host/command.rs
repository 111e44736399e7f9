//! Probing through a runtime's executable: `CMD [ARGS...] PROBE.wasm`.
//!
//! A command runtime (`wasmtime run`) runs each probe to its end: exit 0
//! means it linked (a probe's `run` returns `ok` at once). A server runtime
//! (`wasmtime serve`) never ends once it has linked: it is taken to have
//! linked when it has printed something (its "serving on ..." banner) and
//! is still running a moment later, then it is stopped. Anything else (a
//! non-zero exit, a signal, no word before the time limit) is a refusal,
//! quoted from what the runtime printed last.

use super::probe::{Probe, ProbeOutcome};
use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a server must keep running after its first output to count as
/// linked: link errors are printed and followed by exit within microseconds.
const SETTLE: Duration = Duration::from_millis(150);
/// How much of a probe's output is kept (for the refusal message).
const KEEP: usize = 16 * 1024;

/// Runs probes through an executable.
pub struct CommandLinker {
    program: String,
    args: Vec<String>,
    time_limit: Duration,
    dir: PathBuf,
    next: AtomicUsize,
    /// Set once a probe ran as a server: from then on probes run one at a
    /// time, since servers listen on a fixed address unless told otherwise.
    server: AtomicBool,
    serialize_servers: bool,
    one_at_a_time: Mutex<()>,
}

impl CommandLinker {
    /// `command` is the program and its arguments (the probe's path is
    /// appended); each probe may take at most `time_limit`. With
    /// `serialize_servers`, once the runtime shows itself a server, probes
    /// run one at a time (a server on a fixed port would refuse the next);
    /// without, the caller vouches that servers don't collide (e.g. they
    /// were given `--addr 127.0.0.1:0`).
    pub fn new(
        command: &[String],
        time_limit: Duration,
        serialize_servers: bool,
    ) -> std::io::Result<CommandLinker> {
        let (program, args) = command
            .split_first()
            .ok_or_else(|| std::io::Error::other("no command to probe"))?;
        let dir = std::env::temp_dir().join(format!(
            "worldfit-probe-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        std::fs::create_dir_all(&dir)?;
        Ok(CommandLinker {
            program: program.clone(),
            args: args.to_vec(),
            time_limit,
            dir,
            next: AtomicUsize::new(0),
            server: AtomicBool::new(false),
            serialize_servers,
            one_at_a_time: Mutex::new(()),
        })
    }

    /// The command as typed, for messages.
    pub fn display(&self) -> String {
        std::iter::once(&self.program)
            .chain(&self.args)
            .cloned()
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Links (runs) one probe.
    pub fn link(&self, probe: &Probe) -> ProbeOutcome {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let path = self.dir.join(format!("probe-{n}.wasm"));
        if let Err(e) = std::fs::write(&path, &probe.bytes) {
            return ProbeOutcome::Refused(format!("could not write the probe: {e}"));
        }
        let outcome = if self.serialize_servers && self.server.load(Ordering::Relaxed) {
            let _turn = self.one_at_a_time.lock().unwrap_or_else(|e| e.into_inner());
            self.run(&path)
        } else {
            self.run(&path)
        };
        let _ = std::fs::remove_file(&path);
        outcome
    }

    fn run(&self, path: &std::path::Path) -> ProbeOutcome {
        let mut child = match Command::new(&self.program)
            .args(&self.args)
            .arg(path)
            // Backtraces would bury the runtime's message.
            .env_remove("RUST_BACKTRACE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
        {
            Ok(c) => c,
            Err(e) => return ProbeOutcome::Refused(format!("cannot run `{}`: {e}", self.program)),
        };
        let output = Arc::new(Mutex::new((Vec::<u8>::new(), None::<Instant>)));
        let readers: Vec<_> = [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
        ]
        .into_iter()
        .flatten()
        .map(|mut pipe| {
            let output = Arc::clone(&output);
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = pipe.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    let mut o = output.lock().unwrap_or_else(|e| e.into_inner());
                    if o.0.len() < KEEP {
                        let room = KEEP - o.0.len();
                        o.0.extend_from_slice(&buf[..n.min(room)]);
                    }
                    o.1.get_or_insert_with(Instant::now);
                }
            })
        })
        .collect();
        let start = Instant::now();
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    for r in readers {
                        let _ = r.join();
                    }
                    let text = last_line(&output.lock().unwrap_or_else(|e| e.into_inner()).0);
                    break if status.success() {
                        ProbeOutcome::Linked
                    } else {
                        ProbeOutcome::Refused(match (text, status.code()) {
                            (Some(t), _) => t,
                            (None, Some(c)) => format!("exit status {c}"),
                            (None, None) => format!("ended by a signal ({status})"),
                        })
                    };
                }
                Ok(None) => {}
                Err(e) => break ProbeOutcome::Refused(format!("lost the runtime process: {e}")),
            }
            let first_output = output.lock().unwrap_or_else(|e| e.into_inner()).1;
            if first_output.is_some_and(|t| t.elapsed() >= SETTLE) {
                stop(&mut child);
                self.server.store(true, Ordering::Relaxed);
                break ProbeOutcome::Linked;
            }
            if start.elapsed() >= self.time_limit {
                stop(&mut child);
                break ProbeOutcome::Refused(format!(
                    "timed out: no exit and no output within {:.1} s",
                    self.time_limit.as_secs_f64()
                ));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for CommandLinker {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn stop(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// The last non-empty line a runtime printed, trimmed of `Error:` noise.
fn last_line(bytes: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(bytes);
    // wasmtime prints the error, then its causes; the first line says most.
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let pick = lines
        .iter()
        .find(|l| l.contains("matching implementation") || l.contains("not found"))
        .or(lines.first())?;
    Some(pick.to_string())
}
