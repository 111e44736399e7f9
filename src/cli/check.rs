//! `worldfit check FILE`: will this binary run on the host?

use super::HostOpts;
use super::Named;
use super::output::{print, print_json, table};
use super::read_wasm;
use anyhow::Result;
use clap::Args;
use serde::Serialize;
use std::path::PathBuf;
use worldfit::host::profile::{FlagFit, Selection, flags_that_fit};
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
    /// Print machine-readable JSON (documented in docs/JSON.md).
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
    /// Compile the binary's real code to confirm, even when nothing in it
    /// runs while instantiating and a stub of it would confirm the same
    /// (the default then; docs/COMMANDS.md, "check"). Slower cold; the cache
    /// then holds the artifact a runtime loads.
    #[arg(long)]
    full_compile: bool,
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
            full: self.full_compile,
        })
    }
}

/// `check --json`.
#[derive(Serialize)]
struct Report {
    file: String,
    host: String,
    /// `embedded` (instantiated in worldfit's wasmtime), `profile` (a
    /// runtime's probed profile) or `wit`.
    host_kind: &'static str,
    compatible: bool,
    world: Option<String>,
    closest: Option<String>,
    confirmed: bool,
    /// How far the check went: `types` or `instantiate`.
    level: &'static str,
    problems: Vec<Problem>,
    /// For a runtime's profile the binary doesn't fit as invoked: the flags
    /// with which it fits, each with the command line that runs it.
    runs_with: Vec<FlagFit>,
    #[cfg(feature = "wasmtime")]
    confirmation: Option<worldfit::confirm::Confirmation>,
}

/// `check --json` for several hosts (`--host 'NAME@*'`).
#[derive(Serialize)]
struct Across {
    file: String,
    /// Whether some release runs the binary as invoked.
    compatible: bool,
    /// One line for people, e.g. "runs on wasmtime ≥ 46; ...".
    summary: String,
    hosts: Vec<Report>,
}

impl Opts {
    pub fn run(self) -> Result<u8> {
        self.sandbox.validate()?;
        let named = self.host.hosts()?;
        let selection = self.host.selection()?;
        let (bytes, wasm) = read_wasm(&self.file)?;
        let file = self.file.display().to_string();
        if named.len() > 1 {
            let reports: Vec<(&Named, Report)> = named
                .iter()
                .map(|n| Ok((n, self.judge(n, &selection, &bytes, &wasm, &file)?)))
                .collect::<Result<_>>()?;
            let summary = summarize(&reports);
            let compatible = reports.iter().any(|(_, r)| r.compatible);
            let code = if compatible { 0 } else { 1 };
            if self.json {
                print_json(&Across {
                    file,
                    compatible,
                    summary,
                    hosts: reports.into_iter().map(|(_, r)| r).collect(),
                })?;
                return Ok(code);
            }
            let rows: Vec<Vec<String>> = reports
                .iter()
                .map(|(_, r)| {
                    let what = if r.compatible {
                        format!("runs: world `{}`", r.world.as_deref().unwrap_or_default())
                    } else {
                        let lacks = lacking(&r.problems);
                        match r.runs_with.first() {
                            Some(f) => {
                                format!("runs with `{}`; as invoked it lacks {lacks}", f.command)
                            }
                            None => format!("doesn't run: lacks {lacks}"),
                        }
                    };
                    vec![r.host.clone(), what]
                })
                .collect();
            let mut text = format!("`{file}` on {} hosts:\n", reports.len());
            text.push_str(&table(&rows, "  "));
            text.push_str(&format!("{summary}\n"));
            print(&text)?;
            return Ok(code);
        }
        let n = &named[0];
        let report = self.judge(n, &selection, &bytes, &wasm, &file)?;
        let code = if report.compatible { 0 } else { 1 };
        if self.json {
            print_json(&report)?;
            return Ok(code);
        }
        #[cfg(feature = "wasmtime")]
        let stub = report
            .confirmation
            .as_ref()
            .is_some_and(|c| c.path == worldfit::confirm::Path::Stub);
        #[cfg(not(feature = "wasmtime"))]
        let stub = false;
        let how = match (report.level, report.host_kind) {
            ("instantiate", _) if stub => {
                "validated in full; its stub instantiated in the embedded wasmtime"
            }
            ("instantiate", _) => "instantiated in the embedded wasmtime",
            (_, "wit") => "types checked; a WIT host is confirmed at the type level",
            (_, "profile") => {
                "types checked against the runtime's probed profile; worldfit instantiates only in its embedded wasmtime"
            }
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
            for f in &report.runs_with {
                text.push_str(&format!(
                    "runs with `{}` (flag `{}`, world `{}`)\n",
                    f.command, f.flag, f.world
                ));
            }
            text
        };
        print(&text)?;
        Ok(code)
    }

    /// The verdict for one host: types, then (embedded host) instantiation,
    /// then (a runtime's profile) the flags that would make it fit.
    fn judge(
        &self,
        named: &Named,
        selection: &Selection,
        bytes: &[u8],
        wasm: &worldfit::Wasm,
        file: &str,
    ) -> Result<Report> {
        let host = &named.host;
        let verdict = check(wasm, host);
        #[cfg_attr(not(feature = "wasmtime"), allow(unused_mut))]
        let mut report = Report {
            file: file.to_string(),
            host: host.name.clone(),
            host_kind: if host.builtin {
                "embedded"
            } else if named.profile.is_some() {
                "profile"
            } else {
                "wit"
            },
            compatible: verdict.compatible,
            world: verdict.world,
            closest: verdict.closest,
            confirmed: false,
            level: "types",
            problems: verdict.problems,
            runs_with: Vec::new(),
            #[cfg(feature = "wasmtime")]
            confirmation: None,
        };
        #[cfg(feature = "wasmtime")]
        if report.compatible && !self.no_confirm && host.builtin {
            self.confirm(host, bytes, &mut report)?;
        }
        let _ = bytes;
        if !report.compatible
            && let Some(profile) = &named.profile
        {
            report.runs_with = flags_that_fit(profile, selection, wasm);
        }
        Ok(report)
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

/// What a host lacks, for one line: the names of its first problems.
fn lacking(problems: &[Problem]) -> String {
    let mut names: Vec<String> = problems
        .iter()
        .take(3)
        .map(|p| format!("`{}`", p.name))
        .collect();
    if problems.len() > 3 {
        names.push(format!("{} more", problems.len() - 3));
    }
    names.join(", ")
}

/// One line over every release, newest first: runs of releases that run
/// the binary as invoked, run it with the same flags, or don't run it, each
/// said once ("runs on wasmtime ≥ 46.0.1 with `wasmtime run -S http`;
/// 36.0.9 to 45.0.2 with `wasmtime run -S http -S cli-exit-with-code`").
fn summarize(reports: &[(&Named, Report)]) -> String {
    let name = reports
        .first()
        .and_then(|(n, _)| n.profile.as_ref().map(|p| p.name.clone()))
        .unwrap_or_default();
    let release = |n: &Named| {
        n.profile
            .as_ref()
            .map(|p| p.version.clone())
            .unwrap_or_default()
    };
    // How each release runs it: as invoked, with a command, or not.
    let class = |r: &Report| -> Option<String> {
        if r.compatible {
            Some(String::new())
        } else {
            r.runs_with.first().map(|f| f.command.clone())
        }
    };
    let mut groups: Vec<(usize, usize)> = Vec::new(); // (from, to) indexes, newest group first
    let mut i = reports.len();
    while i > 0 {
        let to = i - 1;
        let mut from = to;
        while from > 0 && class(&reports[from - 1].1) == class(&reports[to].1) {
            from -= 1;
        }
        groups.push((from, to));
        i = from;
    }
    let span = |from: usize, to: usize| -> String {
        let (lo, hi) = (release(reports[from].0), release(reports[to].0));
        match (from == 0, to + 1 == reports.len()) {
            (true, true) => format!("every {name} release in the catalog ({lo} to {hi})"),
            (_, true) => format!("{name} ≥ {lo}"),
            (true, false) if from == to => format!("{name} {lo}"),
            (true, false) => format!("{name} ≤ {hi}"),
            _ if from == to => format!("{name} {lo}"),
            _ => format!("{name} {lo} to {hi}"),
        }
    };
    if let [(from, to)] = groups[..]
        && class(&reports[to].1).is_none()
    {
        return format!(
            "runs on no {name} release in the catalog ({} to {}); the newest lacks {}",
            release(reports[from].0),
            release(reports[to].0),
            lacking(&reports[to].1.problems)
        );
    }
    let parts: Vec<String> = groups
        .iter()
        .enumerate()
        .map(|(k, &(from, to))| {
            let runs = if k == 0 { "runs on" } else { "on" };
            let r = &reports[to].1;
            match class(r) {
                Some(c) if c.is_empty() => format!("{runs} {} as invoked", span(from, to)),
                Some(c) => format!("{runs} {} with `{c}`", span(from, to)),
                None => format!(
                    "{} lack{} {}",
                    span(from, to),
                    if from == to { "s" } else { "" },
                    lacking(&r.problems)
                ),
            }
        })
        .collect();
    parts.join("; ")
}
