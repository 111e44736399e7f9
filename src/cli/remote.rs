//! What the registry-facing commands share: `--plain-http`/`--timeout`, a
//! runtime to drive `oci-client`, and a byte progress bar on a terminal.

use anyhow::{Result, bail};
use clap::Args;
use std::io::IsTerminal;
use std::time::Duration;
use worldfit::oci::registry::RegistryOptions;
use worldfit::oci::source::Source;
use worldfit::oci::transfer::Progress;

/// How to reach a registry.
#[derive(Args, Debug, Clone)]
pub struct RegistryFlags {
    /// Speak plain HTTP to the registry (a loopback or in-cluster registry without TLS).
    #[arg(long)]
    plain_http: bool,
    /// Seconds to wait for a connection or for the next bytes of a
    /// response; requests that fail with 5xx or a broken connection are
    /// tried 3 times in all.
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    timeout: f64,
    /// containerd's socket, for `containerd://` sources.
    #[cfg(feature = "containerd")]
    #[arg(
        long,
        value_name = "SOCKET",
        env = "CONTAINERD_ADDRESS",
        default_value = worldfit::oci::containerd::DEFAULT_ADDRESS
    )]
    containerd_address: std::path::PathBuf,
    /// containerd's namespace, for `containerd://` sources (default: the
    /// one in the source name, else `default`).
    #[cfg(feature = "containerd")]
    #[arg(long, value_name = "NAMESPACE", env = "CONTAINERD_NAMESPACE")]
    containerd_namespace: Option<String>,
}

impl RegistryFlags {
    /// The registry options these flags select.
    pub fn options(&self) -> Result<RegistryOptions> {
        if !(self.timeout.is_finite() && self.timeout > 0.0 && self.timeout <= 3600.0) {
            bail!(
                "--timeout must be between 0 and 3600 seconds, not {}",
                self.timeout
            );
        }
        Ok(RegistryOptions {
            plain_http: self.plain_http,
            timeout: Duration::from_secs_f64(self.timeout),
            ..RegistryOptions::default()
        })
    }

    /// Opens a source (layout, registry or containerd) with these options.
    pub fn source(&self, text: &str) -> Result<Source> {
        #[cfg(feature = "containerd")]
        {
            let containerd = worldfit::oci::containerd::ContainerdOptions {
                address: self.containerd_address.clone(),
                namespace: self.containerd_namespace.clone(),
                timeout: self.options()?.timeout,
            };
            Source::parse_with(text, &self.options()?, &containerd)
        }
        #[cfg(not(feature = "containerd"))]
        Source::parse(text, &self.options()?)
    }
}

/// Drives one future to completion on a current-thread runtime.
pub fn block_on<F: std::future::Future>(f: F) -> Result<F::Output> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok(rt.block_on(f))
}

/// A byte progress bar on stderr, only on a terminal and never with `--json`.
pub struct Bar {
    bar: Option<indicatif::ProgressBar>,
    label: &'static str,
    enabled: bool,
}

impl Bar {
    /// A bar labelled `label` (e.g. "pushing"), shown when `enabled` and stderr is a terminal.
    pub fn new(label: &'static str, enabled: bool) -> Bar {
        Bar {
            bar: None,
            label,
            enabled: enabled && std::io::stderr().is_terminal(),
        }
    }

    fn bar(&mut self, total: Option<u64>) -> Option<&indicatif::ProgressBar> {
        if !self.enabled {
            return None;
        }
        if self.bar.is_none() {
            let (bar, template) = match total {
                Some(n) => (
                    indicatif::ProgressBar::new(n),
                    "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
                ),
                None => (
                    indicatif::ProgressBar::no_length(),
                    "{msg} {bytes} {bytes_per_sec}",
                ),
            };
            if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_message(self.label);
            self.bar = Some(bar);
        }
        self.bar.as_ref()
    }
}

impl Progress for Bar {
    fn start(&mut self, total: u64) {
        self.bar(Some(total));
    }
    fn advance(&mut self, n: u64) {
        if let Some(b) = self.bar(None) {
            b.inc(n);
        }
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}
