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
#[command(after_help = "Examples:\n  worldfit check app.wasm\n  worldfit check app.wasm --wit wit/ --world my-host --json\n\n\
Exit status:\n  0  compatible\n  1  incompatible (every problem is listed)\n  2  error: the file or the host could not be read")]
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
    /// How far the check went: `types` (the type-level verdict) or `instantiate`.
    level: &'static str,
    problems: Vec<Problem>,
}

impl Opts {
    pub fn run(self) -> Result<u8> {
        let host = self.host.host()?;
        let wasm = read_wasm(&self.file)?;
        let verdict = check(&wasm, &host);
        // Instantiation arrives with the embedded wasmtime; until then every
        // answer is the type-level one, and says so.
        let _ = self.no_confirm;
        let report = Report {
            file: self.file.display().to_string(),
            host: host.name.clone(),
            compatible: verdict.compatible,
            world: verdict.world,
            closest: verdict.closest,
            confirmed: false,
            level: "types",
            problems: verdict.problems,
        };
        let code = if report.compatible { 0 } else { 1 };
        if self.json {
            print_json(&report)?;
            return Ok(code);
        }
        let text = if report.compatible {
            format!(
                "compatible: `{}` runs on `{}` world `{}` (types checked; not instantiated)\n",
                report.file,
                report.host,
                report.world.as_deref().unwrap_or_default()
            )
        } else {
            let closest = report.closest.as_deref().map(|c| format!("; closest world `{c}`")).unwrap_or_default();
            let n = report.problems.len();
            let mut text = format!(
                "incompatible: `{}` fits no world of `{}`{closest}, {n} problem{}:\n",
                report.file,
                report.host,
                if n == 1 { "" } else { "s" }
            );
            let rows: Vec<Vec<String>> = report
                .problems
                .iter()
                .map(|p| vec![serde_json::to_value(p.kind).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default(), p.name.clone(), p.detail.clone()])
                .collect();
            text.push_str(&table(&rows, "  "));
            text
        };
        print(&text)?;
        Ok(code)
    }
}
