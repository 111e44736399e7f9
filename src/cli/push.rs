//! `worldfit push DIR[:TAG] REF`: copy an image from a layout to a registry.

use super::output::{print, print_json};
use super::remote::{Bar, RegistryFlags, block_on};
use anyhow::{Context, Result, bail};
use clap::Args;
use serde::Serialize;
use worldfit::oci::registry::{Registry, parse_reference};
use worldfit::oci::source::Source;
use worldfit::oci::transfer::{TransferReport, push};

/// Push an image (an index with its manifests, configs and layers) from an OCI layout to a registry
#[derive(Args)]
#[command(
    after_help = "Blobs the repository already has are not sent again; manifests and the index are \
sent byte for byte, so digests are the same in the registry as in the layout. Credentials come \
from the Docker config (~/.docker/config.json or $DOCKER_CONFIG, with credential helpers).\n\n\
Examples:\n  worldfit push ./oci:1.0 ghcr.io/me/app:1.0\n  \
worldfit push ./oci localhost:5000/app --plain-http\n\n\
Exit status:\n  0  the image was pushed\n  2  the layout or the registry failed (the error says which)"
)]
pub struct Opts {
    /// The layout, and which image in it: `DIR`, `DIR:TAG` or `DIR@sha256:...`.
    #[arg(value_name = "DIR[:TAG]")]
    layout: String,
    /// Where to: `HOST[:PORT]/REPO[:TAG|@DIGEST]` (the tag defaults to the layout's).
    #[arg(value_name = "REF")]
    reference: String,
    #[command(flatten)]
    registry: RegistryFlags,
    #[command(flatten)]
    limits: super::limits::LimitFlags,
    /// Print machine-readable JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Report {
    source: String,
    destination: String,
    #[serde(flatten)]
    transfer: TransferReport,
}

impl Opts {
    pub fn run(self) -> Result<u8> {
        let Some(source) = Source::parse_layout(&self.layout)? else {
            bail!("`{}` is not an OCI layout directory", self.layout);
        };
        let source = source.with_limits(self.limits.limits());
        let reference = parse_reference(&self.reference)?;
        let registry = Registry::open(&reference, self.registry.options()?)?;
        // `REPO` alone takes the layout's tag, as `docker push` would.
        let explicit = self
            .reference
            .rsplit('/')
            .next()
            .is_some_and(|last| last.contains(':') || last.contains('@'));
        let target = match (reference.digest(), explicit, source.tag()) {
            (Some(d), _, _) => d.to_string(),
            (None, false, Some(t)) => t.to_string(),
            _ => reference.tag().unwrap_or("latest").to_string(),
        };
        let sep = if target.starts_with("sha256:") {
            '@'
        } else {
            ':'
        };
        let destination = format!("{}{sep}{target}", registry.repository());
        let mut bar = Bar::new("pushing", !self.json);
        let transfer = block_on(push(&source, &registry, &target, &mut bar))?
            .with_context(|| format!("failed to push `{}` to `{destination}`", source.name()))?;
        drop(bar);
        let report = Report {
            source: source.name(),
            destination,
            transfer,
        };
        if self.json {
            print_json(&report)?;
            return Ok(0);
        }
        let t = &report.transfer;
        print(&format!(
            "pushed `{}` to `{}`\n  digest     {}\n  blobs      {} sent ({} bytes), {} already there\n  manifests  {}\n\nread it back: skopeo inspect --raw{} docker://{}\n",
            report.source,
            report.destination,
            t.digest,
            t.blobs_transferred,
            t.bytes,
            t.blobs_skipped,
            t.manifests,
            if self.registry_is_plain() {
                " --tls-verify=false"
            } else {
                ""
            },
            report.destination,
        ))?;
        Ok(0)
    }

    fn registry_is_plain(&self) -> bool {
        self.registry
            .options()
            .map(|o| o.plain_http)
            .unwrap_or(false)
    }
}
