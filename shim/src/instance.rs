//! A container's life as containerd's task API drives it (through
//! shimkit's `Instance`): `start` finds what to run, selects and confirms
//! it, compiles it (or loads it from the cache) and runs it on a thread of
//! its own; `wait` reports its exit status; `kill` stops it.
//!
//! What to run, in order:
//! 1. the image named by the container's `worldfit.image` label (containerd
//!    1.6 can't create a container from a wasm-only index, so the container
//!    is made from an empty root filesystem and the label names the image);
//! 2. else the container's image;
//! 3. else, with no image at all, the wasm file the first argument names in
//!    the root filesystem, run as given: no selection, no confirmation.
//!
//! For an image, the build comes from [`worldfit::preflight::preflight`]:
//! the index entry the embedded wasmtime's host profile supports, confirmed
//! by instantiating, and its layer's bytes read from containerd's content
//! store and checked against their digest. Nothing is read from the root
//! filesystem, and the guest doesn't get it. When no entry fits, the start fails with every entry's
//! reason, in the shim's log and as the task's error.

use crate::bundle;
use crate::run::{Loaded, Program, Runner};
use chrono::{DateTime, Utc};
use containerd_shimkit::sandbox::{Error, Instance, InstanceConfig, Result};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;
use tokio::sync::{oneshot, watch};
use worldfit::Host;
use worldfit::cache::{CompileCache, sha256_hex};
use worldfit::confirm::ConfirmOptions;
use worldfit::oci::containerd::{ContainerdOptions, container};
use worldfit::preflight::preflight;

/// The container label naming the image to select from (`ctr run --label
/// worldfit.image=docker.io/library/app:1.0`).
pub const IMAGE_LABEL: &str = "worldfit.image";

/// Exit status and time, once the guest has ended.
type Exit = Option<(u32, DateTime<Utc>)>;

/// One container.
pub struct WorldfitInstance {
    id: String,
    cfg: InstanceConfig,
    exit: watch::Sender<Exit>,
    stop: Mutex<Stop>,
}

/// Whether a kill has a guest to stop.
enum Stop {
    NotStarted,
    /// Running: the sender tells its thread to stop (with the signal).
    Running(oneshot::Sender<u32>),
    /// Told to stop, by the first kill.
    Signalled,
}

/// The shim's one engine, built at the first start.
fn runner() -> anyhow::Result<&'static Runner> {
    static RUNNER: OnceLock<std::result::Result<Runner, String>> = OnceLock::new();
    RUNNER
        .get_or_init(|| Runner::new().map_err(|e| format!("{e:#}")))
        .as_ref()
        .map_err(|e| anyhow::anyhow!("cannot start wasmtime: {e}"))
}

/// Where compiled code is kept: worldfit's default
/// (`$XDG_CACHE_HOME/worldfit`, else `$HOME/.cache/worldfit`), shared with
/// the CLI; else, for a containerd started without either (systemd gives a
/// system service no `HOME`), `/var/cache/worldfit`.
fn cache_dir() -> std::path::PathBuf {
    CompileCache::default_dir().unwrap_or_else(|| "/var/cache/worldfit".into())
}

/// Records the exit status, unless one is recorded already.
fn record_exit(exit: &watch::Sender<Exit>, status: u32) {
    exit.send_if_modified(|e| {
        let first = e.is_none();
        if first {
            *e = Some((status, Utc::now()));
        }
        first
    });
}

impl WorldfitInstance {
    /// Everything before the guest runs: what to run, its bytes, the
    /// compiled code, and the program's args, env and stdio. Runs on a
    /// blocking thread with a runtime of its own: worldfit's selection
    /// reads content stores through futures that are not `Send`, and
    /// compiling is long CPU work.
    fn prepare(id: &str, cfg: &InstanceConfig) -> anyhow::Result<(Loaded, Program)> {
        let began = Instant::now();
        let bundle = bundle::read(&cfg.bundle)?;
        let containerd = ContainerdOptions {
            address: cfg.containerd_address.clone().into(),
            namespace: Some(cfg.namespace.clone()),
            ..ContainerdOptions::default()
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let record = rt.block_on(container(id, &cfg.namespace, &containerd))?;
        let image = match record.labels.get(IMAGE_LABEL) {
            Some(label) if !label.is_empty() => label.clone(),
            _ => record.image,
        };
        let cache = Some(CompileCache::new(cache_dir()));
        let selected = !image.is_empty();
        let (bytes, sha, what) = if selected {
            let confirm = ConfirmOptions {
                cache: cache.clone(),
                ..ConfirmOptions::default()
            };
            let chosen = rt.block_on(preflight(&image, &containerd, &Host::wasmtime(), confirm))?;
            let platform = chosen
                .selection
                .selected()
                .map(|e| worldfit::select::platform_name(e.platform.as_ref()))
                .unwrap_or_default();
            (
                chosen.layer,
                chosen.layer_sha256,
                format!(
                    "image `{image}` entry {} ({platform}), selected and confirmed for host `{}`",
                    chosen.digest, chosen.selection.host
                ),
            )
        } else {
            let (root, program) = match (&bundle.root, bundle.args.first()) {
                (Some(root), Some(program)) => (root, program),
                _ => anyhow::bail!(
                    "container `{id}` has no image, no `{IMAGE_LABEL}` label, and no program \
                     in its root filesystem to run"
                ),
            };
            let path = bundle::program_path(root, program)?;
            let bytes = std::fs::read(&path).map_err(|e| {
                anyhow::anyhow!("cannot read `{program}` in the root filesystem: {e}")
            })?;
            let sha = sha256_hex(&bytes);
            (
                bytes,
                sha,
                format!("`{program}` from the root filesystem (no image: not selected)"),
            )
        };
        let (loaded, cached) = runner()?.load(&bytes, &sha, cache.as_ref())?;
        log::info!(
            "worldfit: container {id}: running {what}: layer sha256:{sha} ({}; ready in {} ms)",
            if cached {
                "compiled code from the cache"
            } else {
                "compiled now"
            },
            began.elapsed().as_millis()
        );
        let program = Program {
            args: bundle.args,
            env: bundle.env,
            // A selected build gets no root filesystem: what containerd
            // unpacked there belongs to another entry of the index (and
            // may hold device nodes); a program from the root filesystem
            // gets it as `/`.
            root: if selected { None } else { bundle.root },
            ..Program::default()
        };
        Ok((loaded, program))
    }
}

impl Instance for WorldfitInstance {
    async fn new(id: String, cfg: &InstanceConfig) -> Result<Self> {
        Ok(WorldfitInstance {
            id,
            cfg: cfg.clone(),
            exit: watch::channel(None).0,
            stop: Mutex::new(Stop::NotStarted),
        })
    }

    async fn start(&self) -> Result<u32> {
        let (id, cfg) = (self.id.clone(), self.cfg.clone());
        let prepared = tokio::task::spawn_blocking(move || Self::prepare(&id, &cfg))
            .await
            .unwrap_or_else(|e| Err(anyhow::anyhow!("preparing the start failed: {e}")));
        let (loaded, program) = match prepared {
            Ok(ready) => ready,
            Err(e) => {
                let message = format!("{e:#}");
                log::error!("worldfit: container {}: {message}", self.id);
                record_exit(&self.exit, 1);
                return Err(Error::FailedPrecondition(message));
            }
        };
        let runner = runner().map_err(Error::Any)?;
        let (stop, stopped) = oneshot::channel::<u32>();
        *self.stop.lock().expect("the stop lock") = Stop::Running(stop);
        let exit = self.exit.clone();
        let id = self.id.clone();
        let stdio = [
            self.cfg.stdin.clone(),
            self.cfg.stdout.clone(),
            self.cfg.stderr.clone(),
        ];
        let spawned = std::thread::Builder::new()
            .name(format!("wasm-{id}"))
            .spawn(move || {
                let mut program = program;
                let guest = async {
                    program.open_stdio(&stdio[0], &stdio[1], &stdio[2])?;
                    runner.run(&loaded, program).await
                };
                let status = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt.block_on(async {
                        tokio::select! {
                            ran = guest => ran.unwrap_or_else(|e| {
                                log::error!("worldfit: container {id}: {e:#}");
                                1
                            }),
                            signal = stopped => 128 + signal.unwrap_or(9),
                        }
                    }),
                    Err(e) => {
                        log::error!("worldfit: container {id}: cannot start a runtime: {e}");
                        1
                    }
                };
                log::info!("worldfit: container {id}: exited with status {status}");
                record_exit(&exit, status);
            });
        if let Err(e) = spawned {
            record_exit(&self.exit, 1);
            return Err(Error::Others(format!(
                "cannot start the guest's thread: {e}"
            )));
        }
        Ok(std::process::id())
    }

    async fn kill(&self, signal: u32) -> Result<()> {
        // As runwasi's shims: the signals that end a process; others can't
        // be delivered to a guest.
        if ![2, 9, 15].contains(&signal) {
            return Err(Error::InvalidArgument(format!(
                "signal {signal} can't be delivered to a wasm guest (only SIGINT, SIGTERM, SIGKILL)"
            )));
        }
        let mut state = self.stop.lock().expect("the stop lock");
        match std::mem::replace(&mut *state, Stop::Signalled) {
            // The guest's thread records the exit once the guest is gone.
            Stop::Running(stop) => {
                let _ = stop.send(signal);
            }
            // A second signal to a guest already stopping changes nothing.
            Stop::Signalled => {}
            // Never started: nothing runs, so it has ended.
            Stop::NotStarted => record_exit(&self.exit, 128 + signal),
        }
        Ok(())
    }

    async fn delete(&self) -> Result<()> {
        Ok(())
    }

    async fn wait(&self) -> (u32, DateTime<Utc>) {
        let mut rx = self.exit.subscribe();
        match rx.wait_for(Option::is_some).await {
            Ok(exit) => exit.expect("waited for it"),
            // The sender lives in `self`, so it can't be gone while we wait.
            Err(_) => (137, Utc::now()),
        }
    }
}
