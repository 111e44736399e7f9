//! `worldfit check FILE`: will this binary run on the host?

use super::HostOpts;
use super::output::{print, print_json, table};
use super::read_wasm;
use anyhow::Result;
use clap::Args;
use serde::Serialize;
use std::path::PathBuf;
use worldfit::verdict::{Problem, check};

/// Check whether a component or wasip1 module runs on a host
#[derive(Args)]
#[command(
    after_help = "Types are checked first; for the built-in host the binary is then linked and \
instantiated in the embedded wasmtime (sandboxed, nothing beyond start functions runs).\n\n\
Examples:\n  worldfit check app.wasm\n  worldfit check app.wasm --no-confirm --json\n  worldfit check app.wasm --wit wit/ --world my-host\n\n\
Exit status:\n  0  compatible\n  1  incompatible (every problem is listed)\n  2  error: the file or the host could not be read"
)]
pub struct Opts {
    /// The component or core module to check.
    file: PathBuf,
    #[command(flatten)]
    host: HostOpts,
    /// Check types only; do not instantiate.
    #[arg(long)]
    no_confirm: bool,
    /// Print machine-readable JSON (documented in README.md).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    sandbox: SandboxOpts,
}

/// Limits and cache of the embedded wasmtime.
#[derive(Args)]
pub struct SandboxOpts {
    /// Time limit for instantiation (start functions), in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    time_limit: f64,
    /// Largest size of any one linear memory, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 512)]
    memory_limit: usize,
    /// Compile cache directory [default: $XDG_CACHE_HOME/worldfit or ~/.cache/worldfit].
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Compile every time; don't read or write the cache.
    #[arg(long, conflicts_with = "cache_dir")]
    no_cache: bool,
}

impl SandboxOpts {
    /// Checks the limits; a bad flag is an error whatever the verdict would be.
    pub fn validate(&self) -> Result<()> {
        let t = self.time_limit;
        if !(t.is_finite() && t > 0.0 && t <= 3600.0) {
            anyhow::bail!("--time-limit must be more than 0 and at most 3600 seconds, not {t}");
        }
        Ok(())
    }

    /// The embedded wasmtime's limits and cache these flags select.
    #[cfg(feature = "wasmtime")]
    pub fn confirm_options(&self) -> Result<worldfit::confirm::ConfirmOptions> {
        use worldfit::confirm::{ConfirmOptions, Limits};
        self.validate()?;
        let cache = if self.no_cache {
            None
        } else {
            self.cache_dir
                .clone()
                .or_else(worldfit::cache::CompileCache::default_dir)
                .map(worldfit::cache::CompileCache::new)
        };
        Ok(ConfirmOptions {
            limits: Limits {
                memory_bytes: self.memory_limit.saturating_mul(1 << 20),
                time: std::time::Duration::from_secs_f64(self.time_limit),
                ..Limits::default()
            },
            cache,
        })
    }
}

/// `check --json`.
#[derive(Serialize)]
struct Report {
    file: String,
    host: String,
    compatible: bool,
    world: Option<String>,
    closest: Option<String>,
    confirmed: bool,
    /// How far the check went: `types` or `instantiate`.
    level: &'static str,
    problems: Vec<Problem>,
    #[cfg(feature = "wasmtime")]
    confirmation: Option<worldfit::confirm::Confirmation>,
}

impl Opts {
    pub fn run(self) -> Result<u8> {
        self.sandbox.validate()?;
        let host = self.host.host()?;
        let (bytes, wasm) = read_wasm(&self.file)?;
        let verdict = check(&wasm, &host);
        let file = self.file.display().to_string();
        #[cfg_attr(not(feature = "wasmtime"), allow(unused_mut))]
        let mut report = Report {
            file: file.clone(),
            host: host.name.clone(),
            compatible: verdict.compatible,
            world: verdict.world,
            closest: verdict.closest,
            confirmed: false,
            level: "types",
            problems: verdict.problems,
            #[cfg(feature = "wasmtime")]
            confirmation: None,
        };
        #[cfg(feature = "wasmtime")]
        if report.compatible && !self.no_confirm && host.builtin {
            self.confirm(&host, &bytes, &mut report)?;
        }
        let _ = &bytes;
        let code = if report.compatible { 0 } else { 1 };
        if self.json {
            print_json(&report)?;
            return Ok(code);
        }
        let how = match (report.level, host.builtin) {
            ("instantiate", _) => "instantiated in the embedded wasmtime",
            (_, false) => "types checked; a WIT host is confirmed at the type level",
            _ if cfg!(feature = "wasmtime") => "types checked; not instantiated (--no-confirm)",
            _ => "types checked; built without the `wasmtime` feature, so not instantiated",
        };
        let text = if report.compatible {
            format!(
                "compatible: `{file}` runs on `{}` world `{}` ({how})\n",
                report.host,
                report.world.as_deref().unwrap_or_default()
            )
        } else {
            let closest = report
                .closest
                .as_deref()
                .map(|c| format!("; closest world `{c}`"))
                .unwrap_or_default();
            let n = report.problems.len();
            let mut text = format!(
                "incompatible: `{file}` fits no world of `{}`{closest}, {n} problem{}:\n",
                report.host,
                if n == 1 { "" } else { "s" }
            );
            let rows: Vec<Vec<String>> = report
                .problems
                .iter()
                .map(|p| {
                    vec![
                        serde_json::to_value(p.kind)
                            .ok()
                            .and_then(|v| v.as_str().map(String::from))
                            .unwrap_or_default(),
                        p.name.clone(),
                        p.detail.clone(),
                    ]
                })
                .collect();
            text.push_str(&table(&rows, "  "));
            text
        };
        print(&text)?;
        Ok(code)
    }

    #[cfg(feature = "wasmtime")]
    fn confirm(&self, host: &worldfit::Host, bytes: &[u8], report: &mut Report) -> Result<()> {
        use worldfit::confirm::Failure;
        use worldfit::verdict::ProblemKind;
        let s = &self.sandbox;
        let options = s.confirm_options()?;
        let confirmation = {
            let _progress = super::progress::Progress::start(
                format!("compiling `{}`", report.file),
                !self.json,
            );
            host.confirm(bytes, &options)
                .expect("the built-in host confirms")
        };
        if let Some(note) = &confirmation.cache_note {
            eprintln!("warning: compile cache: {note}");
        }
        report.level = "instantiate";
        report.confirmed = confirmation.instantiated;
        if !confirmation.instantiated {
            report.compatible = false;
            report.closest = report.world.take();
            let message = confirmation.message.clone().unwrap_or_default();
            let (kind, detail) = match confirmation.failure {
                Some(Failure::TimedOut) => (
                    ProblemKind::TimedOut,
                    format!(
                        "timed out instantiating `{}` after {} s ({message})",
                        report.file, s.time_limit
                    ),
                ),
                Some(Failure::Compile) => (ProblemKind::CompileFailed, message),
                Some(Failure::MemoryLimit) => (
                    ProblemKind::MemoryLimit,
                    format!(
                        "a memory grew past the limit of {} MiB while instantiating ({message})",
                        s.memory_limit
                    ),
                ),
                _ => (ProblemKind::InstantiateFailed, message),
            };
            report.problems.push(Problem {
                kind,
                name: report.file.clone(),
                detail,
            });
        }
        report.confirmation = Some(confirmation);
        Ok(())
    }
}
