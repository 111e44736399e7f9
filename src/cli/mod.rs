//! One file per subcommand, each with an `Opts` struct and a `run()`.

#[cfg(all(feature = "registry", feature = "kubernetes"))]
mod affinity;
mod check;
mod host;
mod image;
mod inspect;
mod limits;
mod output;
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

/// Chooses the host profile: WIT (`--wit` + `--world`) or the built-in `wasmtime`.
#[derive(Args, Debug, Clone)]
pub struct HostOpts {
    /// A WIT directory (with `deps/`) or `.wit` file defining the host.
    #[arg(long, value_name = "PATH", requires = "world")]
    wit: Option<PathBuf>,
    /// A world the host runs: a bare name in the root package, or `ns:pkg/world@ver`.
    /// Repeat for hosts with several worlds.
    #[arg(long, value_name = "NAME", requires = "wit")]
    world: Vec<String>,
}

impl HostOpts {
    /// Builds the selected host profile.
    pub fn host(&self) -> Result<Host> {
        match &self.wit {
            Some(path) => Host::from_wit(path, &self.world),
            None => Ok(Host::wasmtime()),
        }
    }

    /// Whether the built-in host is selected.
    pub fn is_builtin(&self) -> bool {
        self.wit.is_none()
    }
}

/// Reads and decodes a wasm file, with errors that name it.
pub fn read_wasm(path: &Path) -> Result<(Vec<u8>, Wasm)> {
    let bytes =
        std::fs::read(path).with_context(|| format!("failed to read `{}`", path.display()))?;
    let wasm = worldfit::component::decode(&bytes).map_err(|e| match e {
        worldfit::component::DecodeError::Malformed(cause) => cause.context(format!(
            "`{}` is not a valid WebAssembly component or module",
            path.display()
        )),
        other => anyhow::anyhow!("`{}` {other}", path.display()),
    })?;
    Ok((bytes, wasm))
}
