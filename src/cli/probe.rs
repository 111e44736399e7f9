//! `worldfit host --probe -- CMD [ARGS...]`: measure a runtime's profile by
//! running probe binaries through it, and write it as a profile file.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use worldfit::host::command::CommandLinker;
use worldfit::host::probe::{Probed, probe};
use worldfit::host::probe_wasm::core_feature_wat;
use worldfit::host::profile::{FORMAT, Flag, Invocation, Profile, Support};

/// What `host --probe` was asked.
pub struct Request {
    /// The runtime's command line, without the probe's path.
    pub command: Vec<String>,
    /// Flags to measure one at a time on top of the command (`-S http`).
    pub flags: Vec<String>,
    /// The runtime's name; default: the program's file name.
    pub name: Option<String>,
    /// The release; default: read from `PROGRAM --version`.
    pub release: Option<String>,
    /// The invocation's name; default: the first argument that isn't a flag.
    pub invocation: Option<String>,
    /// Time limit per probe.
    pub time_limit: Duration,
    /// Probes in flight at once; `None`: the number of CPUs, and one at a
    /// time once the runtime shows itself a server.
    pub jobs: Option<usize>,
    /// The profile file to write (or add the invocation to).
    pub output: Option<PathBuf>,
    /// The command line to record; default: the probed one with the
    /// program's path shortened to the runtime's name.
    pub record_command: Option<String>,
}

/// Measures and reports; writes the file only when everything succeeded.
pub fn run(req: Request) -> Result<u8> {
    let started = Instant::now();
    let program = req
        .command
        .first()
        .context("nothing to probe: give the runtime's command after `--`")?;
    let name = match &req.name {
        Some(n) => n.clone(),
        None => Path::new(program)
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_else(|| program.clone()),
    };
    let release = match &req.release {
        Some(r) => r.clone(),
        None => release_of(program)?,
    };
    let invocation = req.invocation.clone().unwrap_or_else(|| {
        req.command[1..]
            .iter()
            .find(|a| !a.starts_with('-'))
            .cloned()
            .unwrap_or_else(|| "run".into())
    });
    let shown = req.command.join(" ");

    let base = measure(&req.command, &req, &shown)?;
    let mut all_probes = base.probes;
    let mut flags = Vec::new();
    for flag in &req.flags {
        let words: Vec<String> = flag.split_whitespace().map(String::from).collect();
        let mut command = req.command.clone();
        command.extend(words.iter().cloned());
        match measure(&command, &req, &command.join(" ")) {
            Ok(with) => {
                let probes = with.probes;
                all_probes += probes;
                let (with, base) = (Support::from_probed(&with), Support::from_probed(&base));
                let adds = with.minus(&base);
                let mut removes = base.minus(&with);
                if with.core.is_empty() {
                    // Core features are probed with core modules: a flag
                    // that refuses core modules (`wasmtime run -S http`)
                    // says nothing about them.
                    removes.engine.retain(|e| core_feature_wat(*e).is_none());
                }
                let mut said = Vec::new();
                if !adds.is_empty() {
                    said.push(describe(&adds));
                }
                if !removes.is_empty() {
                    said.push(format!("takes away: {}", describe(&removes)));
                }
                if said.is_empty() {
                    said.push("changes nothing".into());
                }
                eprintln!("  {flag}: {} ({probes} probes)", said.join("; "));
                if !adds.is_empty() || !removes.is_empty() {
                    flags.push(Flag {
                        flag: words,
                        adds,
                        removes,
                    });
                }
            }
            // A flag this release doesn't know is a fact about it, not an
            // error: it is left out of the profile.
            Err(e) => eprintln!("  {flag}: not accepted ({e:#})"),
        }
    }
    let flags = without_redundant(flags);
    let command = match &req.record_command {
        Some(c) => c.split_whitespace().map(String::from).collect(),
        None => {
            let mut command = req.command.clone();
            if let Some(first) = command.first_mut() {
                *first = name.clone();
            }
            command
        }
    };
    let inv = Invocation {
        name: invocation.clone(),
        command,
        support: Support::from_probed(&base),
        flags,
    };
    let took = started.elapsed();
    let counted = if req.flags.is_empty() {
        format!("{} probes", base.probes)
    } else {
        format!("{} probes, {all_probes} with the flags", base.probes)
    };
    println!(
        "{name}@{release} {invocation}: {} ({counted}, {:.1} s)",
        describe(&inv.support),
        took.as_secs_f64()
    );
    if let Some(path) = &req.output {
        let mut profile = match std::fs::read_to_string(path) {
            Ok(text) => {
                let p = Profile::parse(&text)
                    .map_err(|e| anyhow::anyhow!("host profile `{}`: {e:#}", path.display()))?;
                if p.name != name || p.version != release {
                    bail!(
                        "`{}` is the profile of {}, not {name}@{release}: choose another --output",
                        path.display(),
                        p.id()
                    );
                }
                p
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Profile {
                worldfit_host_profile: FORMAT,
                name: name.clone(),
                version: release.clone(),
                source: None,
                invocations: vec![],
            },
            Err(e) => return Err(e).with_context(|| format!("cannot read `{}`", path.display())),
        };
        profile.source = Some(format!(
            "probed with worldfit {}",
            env!("CARGO_PKG_VERSION")
        ));
        match profile
            .invocations
            .iter_mut()
            .find(|i| i.name == invocation)
        {
            Some(old) => *old = inv,
            None => profile.invocations.push(inv),
        }
        profile.invocations.sort_by(|a, b| a.name.cmp(&b.name));
        profile.validate()?;
        write_atomically(path, &(serde_json::to_string_pretty(&profile)? + "\n"))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(0)
}

fn measure(command: &[String], req: &Request, shown: &str) -> Result<Probed> {
    let linker = CommandLinker::new(command, req.time_limit, req.jobs.is_none())
        .with_context(|| format!("cannot prepare probing `{shown}`"))?;
    let jobs = req
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
        .max(1);
    probe(|p| linker.link(p), jobs).with_context(|| format!("`{shown}`"))
}

/// Drops a combined flag (`-S cli -S p3`) that adds nothing beyond what
/// the flags it combines add on their own: the profile keeps the smallest
/// flags that explain what was measured.
fn without_redundant(flags: Vec<Flag>) -> Vec<Flag> {
    let keep: Vec<bool> = flags
        .iter()
        .map(|f| {
            let units = f.units();
            let parts: Vec<&Flag> = flags
                .iter()
                .filter(|g| {
                    let g_units = g.units();
                    g.flag != f.flag
                        && g_units.len() < units.len()
                        && g_units.iter().all(|u| units.contains(u))
                })
                .collect();
            if parts.is_empty() {
                return true;
            }
            let mut covered = Support::default();
            let mut covered_removes = Support::default();
            for g in parts {
                covered.drives.extend(g.adds.drives.iter().cloned());
                covered.provides.extend(g.adds.provides.iter().cloned());
                covered.engine.extend(g.adds.engine.iter().cloned());
                covered.core.extend(g.adds.core.iter().cloned());
                covered_removes
                    .drives
                    .extend(g.removes.drives.iter().cloned());
                covered_removes
                    .provides
                    .extend(g.removes.provides.iter().cloned());
                covered_removes
                    .engine
                    .extend(g.removes.engine.iter().cloned());
                covered_removes.core.extend(g.removes.core.iter().cloned());
            }
            !f.adds.minus(&covered).is_empty() || !f.removes.minus(&covered_removes).is_empty()
        })
        .collect();
    flags
        .into_iter()
        .zip(keep)
        .filter_map(|(f, k)| k.then_some(f))
        .collect()
}

/// A one-line summary of what an invocation supports.
fn describe(s: &Support) -> String {
    let mut parts = Vec::new();
    if !s.drives.is_empty() {
        parts.push(format!("drives {}", s.drives.join(", ")));
    }
    if !s.provides.is_empty() {
        parts.push(format!("provides {} interfaces", s.provides.len()));
    }
    if !s.core.is_empty() {
        let core: Vec<String> = s
            .core
            .iter()
            .map(|c| {
                serde_json::to_value(c)
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
                    .unwrap_or_default()
            })
            .collect();
        parts.push(format!("core modules {}", core.join(", ")));
    }
    if !s.engine.is_empty() {
        let names: Vec<&str> = s.engine.iter().map(|e| e.name()).collect();
        parts.push(format!("enables {}", names.join(", ")));
    }
    parts.join("; ")
}

/// The release a program reports: the first word of `PROGRAM --version`
/// that starts with a digit (`wasmtime 49.0.3 (...)` gives `49.0.3`).
fn release_of(program: &str) -> Result<String> {
    let out = std::process::Command::new(program)
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .output()
        .with_context(|| format!("cannot run `{program} --version` (give --release)"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .find(|w| w.starts_with(|c: char| c.is_ascii_digit()) && w.contains('.'))
        .map(String::from)
        .with_context(|| format!("`{program} --version` printed no version (give --release)"))
}

/// Writes a file by renaming a complete temporary file over it: a reader
/// sees the old profile or the new one, never half of one.
fn write_atomically(path: &Path, text: &str) -> Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::process::id()
    ));
    std::fs::write(&tmp, text).with_context(|| format!("cannot write `{}`", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        anyhow::anyhow!("cannot write `{}`: {e}", path.display())
    })
}
