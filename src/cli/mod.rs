//! One file per subcommand, each with an `Opts` struct and a `run()`.

#[cfg(all(feature = "registry", feature = "kubernetes"))]
mod affinity;
mod check;
mod host;
mod image;
mod inspect;
mod limits;
mod output;
mod probe;
#[cfg(feature = "wasmtime")]
mod progress;
#[cfg(feature = "registry")]
mod pull;
#[cfg(feature = "registry")]
mod push;
#[cfg(feature = "registry")]
mod remote;
#[cfg(feature = "registry")]
mod select;
mod tag;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use std::path::{Path, PathBuf};
use worldfit::component::Wasm;
use worldfit::host::Host;
use worldfit::host::catalog::{self, Named};
use worldfit::host::profile::{HostSpec, Profile};

/// Will this WebAssembly component run on this host?
#[derive(Parser)]
#[command(name = "worldfit", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Inspect(inspect::Opts),
    Host(host::Opts),
    Check(check::Opts),
    Tag(tag::Opts),
    #[cfg(feature = "registry")]
    Push(push::Opts),
    #[cfg(feature = "registry")]
    Pull(pull::Opts),
    #[cfg(feature = "registry")]
    Select(select::Opts),
    #[cfg(all(feature = "registry", feature = "kubernetes"))]
    Affinity(affinity::Opts),
}

/// Runs the command line; returns the exit code.
pub fn run() -> Result<u8> {
    let cli = Cli::parse();
    match cli.command {
        Command::Inspect(o) => o.run(),
        Command::Host(o) => o.run(),
        Command::Check(o) => o.run(),
        Command::Tag(o) => o.run(),
        #[cfg(feature = "registry")]
        Command::Push(o) => o.run(),
        #[cfg(feature = "registry")]
        Command::Pull(o) => o.run(),
        #[cfg(feature = "registry")]
        Command::Select(o) => o.run(),
        #[cfg(all(feature = "registry", feature = "kubernetes"))]
        Command::Affinity(o) => o.run(),
    }
}

/// Chooses the host: the embedded wasmtime (the default), a runtime from
/// the catalog (`--host`), a profile file (`--host-file`) or WIT (`--wit`).
#[derive(Args, Debug, Clone, Default)]
pub struct HostOpts {
    /// A host from the catalog: `NAME[@VERSION] [INVOCATION] [FLAGS...]`,
    /// e.g. `wasmtime@49`, `'wasmtime@49 run -S http'`, `'wasmtime@*'`
    /// (every release; `check` only). Default: `embedded-wasmtime`, the
    /// embedded wasmtime 48 linker (`worldfit host --list` shows the catalog).
    #[arg(long, value_name = "SPEC", conflicts_with_all = ["wit", "host_file"])]
    host: Option<String>,
    /// A host profile file (docs/HOSTS.md), e.g. one written by `host --probe`.
    #[arg(long, value_name = "PATH", conflicts_with = "wit")]
    host_file: Option<PathBuf>,
    /// A WIT directory (with `deps/`) or `.wit` file defining the host.
    #[arg(long, value_name = "PATH", requires = "world")]
    wit: Option<PathBuf>,
    /// A world the host runs: a bare name in the root package, or `ns:pkg/world@ver`.
    /// Repeat for hosts with several worlds.
    #[arg(long, value_name = "NAME", requires = "wit")]
    world: Vec<String>,
}

impl HostOpts {
    /// Builds the selected host; a spec naming several releases is an
    /// error here (only `check` answers for several hosts).
    pub fn host(&self) -> Result<Host> {
        let mut hosts = self.hosts()?;
        if hosts.len() != 1 {
            anyhow::bail!(
                "`--host {}` names {} releases; give one (e.g. `{}`)",
                self.host.as_deref().unwrap_or_default(),
                hosts.len(),
                hosts
                    .last()
                    .and_then(|n| n.profile.as_deref())
                    .map(|p| p.id())
                    .unwrap_or_default()
            );
        }
        Ok(hosts.remove(0).host)
    }

    /// Builds every host selected (several for `--host NAME@*`).
    pub fn hosts(&self) -> Result<Vec<Named>> {
        if let Some(path) = &self.wit {
            return Ok(vec![Named {
                profile: None,
                host: Host::from_wit(path, &self.world)?,
            }]);
        }
        if let Some(path) = &self.host_file {
            let profile = Profile::load(path)?;
            let host = profile
                .host(&Default::default())
                .map_err(|e| anyhow::anyhow!("host profile `{}`: {e:#}", path.display()))?;
            return Ok(vec![Named {
                profile: Some(std::borrow::Cow::Owned(profile)),
                host,
            }]);
        }
        match &self.host {
            Some(spec) => {
                let spec: HostSpec = spec.parse()?;
                catalog::hosts(&spec)
            }
            None => Ok(vec![Named {
                profile: None,
                host: Host::wasmtime(),
            }]),
        }
    }

    /// The invocation and flags `--host` gives (none for other hosts).
    pub fn selection(&self) -> Result<worldfit::host::profile::Selection> {
        Ok(match &self.host {
            Some(spec) => spec.parse::<HostSpec>()?.selection,
            None => Default::default(),
        })
    }

    /// Whether the embedded host (the built-in profile) is selected.
    pub fn is_builtin(&self) -> bool {
        self.wit.is_none()
            && self.host_file.is_none()
            && self
                .host
                .as_deref()
                .and_then(|s| s.parse::<HostSpec>().ok())
                .is_none_or(|s| catalog::is_embedded(&s))
    }
}

/// Reads and decodes a wasm file, with errors that name it.
pub fn read_wasm(path: &Path) -> Result<(Vec<u8>, Wasm)> {
    let bytes =
        std::fs::read(path).with_context(|| format!("failed to read `{}`", path.display()))?;
    let wasm = worldfit::component::decode(&bytes).map_err(|e| match e {
        // wasmparser's message names what it couldn't read, and where.
        worldfit::component::DecodeError::Malformed(cause) => anyhow::anyhow!(
            "`{}` can't be decoded: {cause:#} (worldfit reads what wasm-tools {} reads, every proposal on: the file is damaged or uses something newer)",
            path.display(),
            worldfit::component::WASM_TOOLS
        ),
        other => anyhow::anyhow!("`{}` {other}", path.display()),
    })?;
    Ok((bytes, wasm))
}
