//! `worldfit affinity`: the node affinity that places a pod on nodes whose
//! host runs one of the image's wasm builds (by the labels `host --format
//! nfd` publishes).

use super::output::print;
use super::remote::block_on;
use anyhow::{Context, Result};
use clap::Args;
use worldfit::affinity::{NoTerm, affinity};
use worldfit::host::standard_worlds;
use worldfit::oci::image::entries;

/// Print the Kubernetes node affinity that places a pod where one of an image's wasm builds runs
#[derive(Args)]
#[command(
    after_help = "SOURCE is an image, named as for `select`. Each wasm entry becomes one \
nodeSelectorTerm (Kubernetes ORs them) requiring the node labels that `worldfit host --format \
nfd` publishes for a host that meets the entry's os and every feature at the yes level; \
docs/FORMAT.md defines the labels. Paste the output under a pod's `spec.affinity`.\n\n\
Examples:\n  worldfit affinity ./oci:1.0\n  worldfit affinity ghcr.io/me/app:1.0 --json\n\n\
Exit status:\n  0  the affinity was printed\n  1  no entry is a wasm build a node could run (nothing printed)\n  \
2  error: the source could not be read"
)]
pub struct Opts {
    /// The image: an OCI layout, a registry reference or containerd://IMAGE.
    #[arg(value_name = "SOURCE")]
    source: String,
    #[command(flatten)]
    registry: super::remote::RegistryFlags,
    #[command(flatten)]
    limits: super::limits::LimitFlags,
    /// Print JSON instead of YAML (the same `Affinity` object).
    #[arg(long)]
    json: bool,
}

impl Opts {
    pub fn run(self) -> Result<u8> {
        let source = self
            .registry
            .source(&self.source)?
            .with_limits(self.limits.limits());
        let known = standard_worlds();
        let list = block_on(async {
            let (root, bytes) = source.root().await?;
            entries(&source, &root, &bytes, &known).await
        })?
        .with_context(|| format!("failed to read `{}`", source.name()))?;
        let platforms: Vec<_> = list
            .iter()
            .map(|e| {
                e.platform
                    .as_ref()
                    .filter(|_| e.wasm && e.unjudged.is_none())
            })
            .collect();
        let affinity = match affinity(&platforms) {
            Ok(a) => a,
            Err(_) => {
                // Each entry's reason, in index order: why it isn't judged,
                // isn't wasm, or has no term.
                let reasons: Vec<String> = list
                    .iter()
                    .map(|e| match (&e.unjudged, e.wasm, &e.platform) {
                        (Some(why), true, _) => format!("not judged: {why}"),
                        (_, true, Some(p)) => match affinity(&[Some(p)]) {
                            Err(w) => match w.first() {
                                Some(NoTerm::Unreadable(f)) => {
                                    format!("feature `{f}` is not a WIT name")
                                }
                                _ => "not a wasm build".to_string(),
                            },
                            Ok(_) => "no term".to_string(),
                        },
                        _ => "not a wasm build".to_string(),
                    })
                    .collect();
                eprintln!(
                    "no entry of `{}` is a wasm build a node could run ({}); nothing to place",
                    source.name(),
                    if reasons.is_empty() {
                        "it has no entries".to_string()
                    } else {
                        reasons.join("; ")
                    }
                );
                return Ok(1);
            }
        };
        if self.json {
            super::output::print_json(&affinity)?;
        } else {
            let yaml = serde_norway::to_string(&affinity)?;
            print(&format!(
                "# worldfit affinity {}: one term per wasm entry (ORed); labels from \
                 `worldfit host --format nfd`\n{yaml}",
                source.name()
            ))?;
        }
        Ok(0)
    }
}
