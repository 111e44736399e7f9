//! `worldfit host`: the worlds a host runs and the features it advertises.

use super::HostOpts;
use super::output::{print, print_json, table};
use anyhow::Result;
use clap::{Args, ValueEnum};
use serde::Serialize;
use worldfit::component::ItemName;
use worldfit::engine_features::OS_FEATURE_PREFIX;
use worldfit::host::Host;
use worldfit::platform::containerd_string;

/// Show the host's worlds and the platform features it advertises
#[derive(Args)]
#[command(
    after_help = "Examples:\n  worldfit host\n  worldfit host --host wasmtime@49\n  worldfit host --list\n  worldfit host --probe --flag '-S http' --output wasmtime.json -- wasmtime run\n  worldfit host --probe --flag '-S cli' --output wasmtime.json -- wasmtime serve --addr 127.0.0.1:0\n  worldfit host --wit wit/ --world my-host --json\n  worldfit host --format containerd\n  worldfit host --format nfd > /etc/kubernetes/node-feature-discovery/features.d/worldfit\n\n\
Exit status:\n  0  the host was described (or probed)\n  2  the host could not be read, or the command could not be probed"
)]
pub struct Opts {
    /// List the hosts in the catalog and exit.
    #[arg(long, conflicts_with_all = ["probe", "json"])]
    list: bool,
    /// Measure the profile of the runtime command given after `--` by running
    /// probe binaries through it (`-- wasmtime run`, `-- wasmtime serve --addr
    /// 127.0.0.1:0`); prints what it found.
    #[arg(long, requires = "command")]
    probe: bool,
    /// With --probe: a flag to measure on top of the command, one at a time
    /// (`--flag '-S http'`); repeat for several.
    #[arg(
        long = "flag",
        value_name = "FLAG",
        requires = "probe",
        allow_hyphen_values = true
    )]
    flags: Vec<String>,
    /// With --probe: write the profile to this file (atomically; an existing
    /// profile of the same release gets this invocation added or replaced).
    #[arg(long, value_name = "PATH", requires = "probe")]
    output: Option<std::path::PathBuf>,
    /// With --probe: the runtime's name [default: the program's file name].
    #[arg(long, value_name = "NAME", requires = "probe")]
    name: Option<String>,
    /// With --probe: its release [default: read from `PROGRAM --version`].
    #[arg(long, value_name = "VERSION", requires = "probe")]
    release: Option<String>,
    /// With --probe: the invocation's name [default: the command's first
    /// argument that isn't a flag, e.g. `run`].
    #[arg(long, value_name = "NAME", requires = "probe")]
    invocation: Option<String>,
    /// With --probe: the command line to record in the profile [default:
    /// the probed one, with the program's path shortened to its name], e.g.
    /// `'wasmtime serve'` when probing `-- /opt/wasmtime serve --addr 127.0.0.1:0`.
    #[arg(long, value_name = "COMMAND", requires = "probe")]
    record_command: Option<String>,
    /// With --probe: time limit per probe, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 10.0, requires = "probe")]
    time_limit: f64,
    /// With --probe: probes run at once [default: the number of CPUs, and
    /// one at a time once the runtime shows itself a server; give `--jobs`
    /// with a server told to listen on a free port, `--addr 127.0.0.1:0`].
    #[arg(long, value_name = "N", requires = "probe")]
    jobs: Option<usize>,
    /// The runtime command to probe (after `--`).
    #[arg(last = true, value_name = "CMD")]
    command: Vec<String>,
    #[command(flatten)]
    host: HostOpts,
    /// Print machine-readable JSON (same as `--format json`).
    #[arg(long, conflicts_with = "format")]
    json: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// Aligned text for people.
    Text,
    /// JSON (documented in docs/JSON.md).
    Json,
    /// One containerd platform string per OS the host runs.
    Containerd,
    /// A Node Feature Discovery feature file: Kubernetes node labels for
    /// each OS, world and interface (docs/FORMAT.md).
    Nfd,
}

/// `host --list`: one line per catalog profile.
fn list() -> Result<u8> {
    use worldfit::host::catalog;
    let mut rows = vec![vec![
        format!("{}@{}", catalog::EMBEDDED, catalog::EMBEDDED_VERSION),
        "the default: worldfit's embedded wasmtime 48 linker (the only host it instantiates in)"
            .into(),
    ]];
    for p in catalog::profiles() {
        let invocations: Vec<String> = p
            .invocations
            .iter()
            .map(|i| {
                let flags: Vec<String> = i.flags.iter().map(|f| f.text()).collect();
                if flags.is_empty() {
                    i.command.join(" ")
                } else {
                    format!("{} [{}]", i.command.join(" "), flags.join(", "))
                }
            })
            .collect();
        rows.push(vec![p.id(), invocations.join("; ")]);
    }
    print(&table(&rows, ""))?;
    Ok(0)
}

/// `host --json`.
#[derive(Serialize)]
struct Report {
    name: String,
    builtin: bool,
    os: Vec<&'static str>,
    wasip1: bool,
    core: Vec<worldfit::host::probe_wasm::CoreSupport>,
    engine: Vec<worldfit::engine_features::EngineFeature>,
    worlds: Vec<World>,
    features: Vec<String>,
}

#[derive(Serialize)]
struct World {
    name: String,
    drives: Vec<String>,
    supports: Vec<String>,
    provides: Vec<String>,
}

fn report(host: &Host, builtin: bool) -> Report {
    let names = |items: &[(ItemName, wit_parser::WorldKey)]| {
        items.iter().map(|(n, _)| n.to_string()).collect::<Vec<_>>()
    };
    let worlds = host
        .worlds
        .iter()
        .map(|w| {
            let mut provides = names(&w.provides);
            provides.sort();
            let mut supports: Vec<String> = host
                .known_worlds()
                .iter()
                .filter_map(|k| {
                    host.satisfies(w, k)
                        .map(|v| k.name.with_version(v).to_string())
                })
                .collect();
            supports.sort();
            supports.dedup();
            World {
                name: w.name.clone(),
                drives: names(&w.drives),
                supports,
                provides,
            }
        })
        .collect();
    Report {
        name: host.name.clone(),
        builtin,
        os: host.oses(),
        wasip1: host.wasip1,
        core: host.core.clone(),
        engine: host.engine.clone(),
        worlds,
        features: host.features().iter().map(ToString::to_string).collect(),
    }
}

impl Opts {
    pub fn run(self) -> Result<u8> {
        if self.list {
            return list();
        }
        if self.probe {
            let t = self.time_limit;
            if !(t.is_finite() && t > 0.0 && t <= 3600.0) {
                anyhow::bail!("--time-limit must be more than 0 and at most 3600 seconds, not {t}");
            }
            return super::probe::run(super::probe::Request {
                command: self.command,
                flags: self.flags,
                name: self.name,
                release: self.release,
                invocation: self.invocation,
                time_limit: std::time::Duration::from_secs_f64(t),
                jobs: self.jobs,
                output: self.output,
                record_command: self.record_command,
            });
        }
        if !self.command.is_empty() {
            anyhow::bail!("a command after `--` is only for --probe");
        }
        let host = self.host.host()?;
        let report = report(&host, self.host.is_builtin());
        let format = if self.json { Format::Json } else { self.format };
        match format {
            Format::Json => print_json(&report)?,
            Format::Nfd => print(&worldfit::labels::nfd_feature_file(&host))?,
            Format::Containerd => {
                let mut text = String::new();
                for os in &report.os {
                    // A wasip1 entry carries engine features only.
                    let features: Vec<String> = if *os == "wasip1" {
                        report
                            .features
                            .iter()
                            .filter(|f| f.starts_with(OS_FEATURE_PREFIX))
                            .cloned()
                            .collect()
                    } else {
                        report.features.clone()
                    };
                    text.push_str(&containerd_string(os, "wasm", &features));
                    text.push('\n');
                }
                print(&text)?;
            }
            Format::Text => {
                let kind = if report.builtin { " (built in)" } else { "" };
                let mut text = format!(
                    "host {}{kind}: runs {}\n",
                    report.name,
                    report.os.join(", ")
                );
                let mut rows = Vec::new();
                for w in &report.worlds {
                    rows.push(vec![
                        w.name.clone(),
                        format!(
                            "drives {}",
                            if w.drives.is_empty() {
                                "nothing".into()
                            } else {
                                w.drives.join(", ")
                            }
                        ),
                    ]);
                    if !w.supports.is_empty() {
                        rows.push(vec![
                            String::new(),
                            format!("supports {}", w.supports.join(", ")),
                        ]);
                    }
                    rows.push(vec![
                        String::new(),
                        format!("provides {} interfaces", w.provides.len()),
                    ]);
                }
                if report.wasip1 {
                    rows.push(vec![
                        "wasip1".into(),
                        "runs core modules importing wasi_snapshot_preview1, drives _start".into(),
                    ]);
                }
                text.push_str(&table(&rows, "  "));
                text.push_str(&format!(
                    "\n{} platform features; list them with --json, or as containerd platforms with --format containerd\n",
                    report.features.len()
                ));
                print(&text)?;
            }
        }
        Ok(0)
    }
}
