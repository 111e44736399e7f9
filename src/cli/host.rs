//! `worldfit host`: the worlds a host runs and the features it advertises.

use super::HostOpts;
use super::output::{print, print_json, table};
use anyhow::Result;
use clap::{Args, ValueEnum};
use serde::Serialize;
use worldfit::component::ItemName;
use worldfit::host::Host;
use worldfit::platform::containerd_string;

/// Show the host's worlds and the platform features it advertises
#[derive(Args)]
#[command(
    after_help = "Examples:\n  worldfit host\n  worldfit host --wit wit/ --world my-host --json\n  worldfit host --format containerd\n  worldfit host --format nfd > /etc/kubernetes/node-feature-discovery/features.d/worldfit\n\n\
Exit status:\n  0  the host was described\n  2  the WIT could not be read or a world was not found"
)]
pub struct Opts {
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
    /// JSON (documented in README.md).
    Json,
    /// One containerd platform string per OS the host runs.
    Containerd,
    /// A Node Feature Discovery feature file: Kubernetes node labels for
    /// each OS, world and interface (docs/FORMAT.md).
    Nfd,
}

/// `host --json`.
#[derive(Serialize)]
struct Report {
    name: String,
    builtin: bool,
    os: Vec<&'static str>,
    wasip1: bool,
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
        worlds,
        features: host.features().iter().map(ToString::to_string).collect(),
    }
}

impl Opts {
    pub fn run(self) -> Result<u8> {
        let host = self.host.host()?;
        let report = report(&host, self.host.is_builtin());
        let format = if self.json { Format::Json } else { self.format };
        match format {
            Format::Json => print_json(&report)?,
            Format::Nfd => print(&worldfit::labels::nfd_feature_file(&host))?,
            Format::Containerd => {
                let mut text = String::new();
                for os in &report.os {
                    let features: &[String] = if *os == "wasip1" {
                        &[]
                    } else {
                        &report.features
                    };
                    text.push_str(&containerd_string(os, "wasm", features));
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
