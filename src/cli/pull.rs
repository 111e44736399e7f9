//! `worldfit pull REF --layout DIR`: copy an image from a registry into a layout.

use super::output::{print, print_json, shell_word};
use super::remote::{Bar, RegistryFlags, block_on};
use anyhow::{Context, Result, bail};
use clap::Args;
use serde::Serialize;
use std::path::PathBuf;
use worldfit::oci::registry::{Registry, looks_like_registry, parse_reference};
use worldfit::oci::source::{Origin, RegistryImage, Source};
use worldfit::oci::transfer::{TransferReport, pull};

/// Pull an image (an index with all its entries, or one manifest) from a registry into an OCI layout
#[derive(Args)]
#[command(
    after_help = "Every manifest and blob is checked against its digest before the layout is \
touched; index.json is written last, so a failed pull leaves the layout as it was.\n\n\
Examples:\n  worldfit pull ghcr.io/me/app:1.0 --layout ./oci\n  \
worldfit pull localhost:5000/app@sha256:... --layout ./oci --tag app --plain-http\n\n\
Exit status:\n  0  the image was pulled\n  2  the registry or the layout failed (the error says which)"
)]
pub struct Opts {
    /// What to pull: `HOST[:PORT]/REPO[:TAG|@DIGEST]`.
    #[arg(value_name = "REF")]
    reference: String,
    /// The OCI image layout directory: created if missing; an existing
    /// directory must already be an OCI layout (it is added to).
    #[arg(long, value_name = "DIR")]
    layout: PathBuf,
    /// The name in the layout (`org.opencontainers.image.ref.name`);
    /// defaults to the reference's tag, or `latest`.
    #[arg(long)]
    tag: Option<String>,
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
    layout: String,
    tag: String,
    #[serde(flatten)]
    transfer: TransferReport,
}

impl Opts {
    pub fn run(self) -> Result<u8> {
        if !looks_like_registry(&self.reference) {
            bail!(
                "`{}` is not a registry reference (HOST[:PORT]/REPO[:TAG|@DIGEST])",
                self.reference
            );
        }
        let reference = parse_reference(&self.reference)?;
        let tag = self
            .tag
            .clone()
            .unwrap_or_else(|| reference.tag().unwrap_or("latest").to_string());
        super::tag::check_tag(&tag)?;
        let source = Source::new(Origin::Registry(RegistryImage {
            registry: Box::new(Registry::open(&reference, self.registry.options()?)?),
            reference: reference
                .digest()
                .or(reference.tag())
                .unwrap_or("latest")
                .to_string(),
        }))
        .with_limits(self.limits.limits());
        let mut bar = Bar::new("pulling", !self.json);
        let transfer = block_on(pull(&source, &self.layout, &tag, &mut bar))?
            .with_context(|| format!("failed to pull `{}`", source.name()))?;
        drop(bar);
        let report = Report {
            source: source.name(),
            layout: self.layout.display().to_string(),
            tag,
            transfer,
        };
        if self.json {
            print_json(&report)?;
            return Ok(0);
        }
        let t = &report.transfer;
        print(&format!(
            "pulled `{}` into `{}:{}`\n  digest     {}\n  blobs      {} ({} bytes)\n  manifests  {}\n\nsee what it holds: worldfit inspect {}\n",
            report.source,
            report.layout,
            report.tag,
            t.digest,
            t.blobs_transferred,
            t.bytes,
            t.manifests,
            shell_word(&format!("{}:{}", report.layout, report.tag)),
        ))?;
        Ok(0)
    }
}
