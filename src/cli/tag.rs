//! `worldfit tag FILE... --layout DIR`: write builds into an OCI image layout,
//! one index entry per build, each with its platform.

use super::output::{print, print_json, table};
use super::read_wasm;
use anyhow::{Context, Result};
use clap::Args;
use serde::Serialize;
use std::path::PathBuf;
use worldfit::host::{KnownWorld, standard_worlds};
use worldfit::oci::artifact::{Descriptor, build};
use worldfit::oci::layout;

/// Write components and modules into an OCI image layout under one tag
#[derive(Args)]
#[command(
    after_help = "Each input becomes a manifest in the CNCF Wasm OCI artifact layout, listed in the \
tag's image index with its platform (os wasip1/wasip2/wasip3, os.features = the WIT worlds it needs). \
An existing layout keeps its other tags and platforms; an entry for the same platform (os, architecture and os.features) is replaced, so builds for one os that need different features sit side by side.\n\n\
Examples:\n  worldfit tag app-p2.wasm app-p3.wasm --layout ./oci --tag 1.0\n  \
SOURCE_DATE_EPOCH=0 worldfit tag app.wasm --layout ./oci --world-wit spin-wit/\n\n\
Exit status:\n  0  the layout was written\n  2  an input or the layout could not be read or written (nothing was changed)"
)]
pub struct Opts {
    /// Components or core modules, one per platform.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// The OCI image layout directory: created if missing; an existing
    /// directory must already be an OCI layout (it is added to).
    #[arg(long, value_name = "DIR")]
    layout: PathBuf,
    /// The tag (`org.opencontainers.image.ref.name`).
    #[arg(long, default_value = "latest")]
    tag: String,
    /// WIT (a directory or file) whose worlds with entry points are known
    /// targets too, e.g. a platform's own `spin:up/http-trigger`.
    #[arg(long, value_name = "PATH")]
    world_wit: Vec<PathBuf>,
    /// Print machine-readable JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Report {
    layout: String,
    tag: String,
    digest: String,
    entries: Vec<Descriptor>,
}

fn known_worlds(extra: &[PathBuf]) -> Result<Vec<KnownWorld>> {
    let mut known = standard_worlds();
    for path in extra {
        let mut resolve = wit_parser::Resolve::default();
        resolve
            .push_path(path)
            .with_context(|| format!("failed to parse world WIT `{}`", path.display()))?;
        for (id, w) in resolve.worlds.iter() {
            if w.exports.is_empty() {
                continue;
            }
            if let Some(k) = KnownWorld::from_resolve(&resolve, id)
                && !known.contains(&k)
            {
                known.push(k);
            }
        }
    }
    Ok(known)
}

/// `SOURCE_DATE_EPOCH`, the reproducible-builds convention for `created`.
fn source_date_epoch() -> Result<Option<u64>> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) => v
            .trim()
            .parse()
            .map(Some)
            .with_context(|| format!("SOURCE_DATE_EPOCH `{v}` is not a number of seconds")),
        Err(_) => Ok(None),
    }
}

/// Checks a tag against the distribution grammar's simple form (what
/// registries and `org.opencontainers.image.ref.name` both accept).
pub fn check_tag(tag: &str) -> Result<()> {
    if tag.is_empty()
        || tag.len() > 128
        || !tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        anyhow::bail!("invalid tag `{tag}` (up to 128 of [A-Za-z0-9._-])");
    }
    Ok(())
}

impl Opts {
    pub fn run(self) -> Result<u8> {
        check_tag(&self.tag)?;
        let known = known_worlds(&self.world_wit)?;
        let created = source_date_epoch()?;
        let mut artifacts = Vec::new();
        for file in &self.files {
            let (bytes, wasm) = read_wasm(file)?;
            artifacts.push(build(bytes, &wasm, &known, created));
        }
        let (index, written) =
            layout::tag(&self.layout, &self.tag, &artifacts).with_context(|| {
                format!(
                    "failed to write layout `{}`; it is unchanged",
                    self.layout.display()
                )
            })?;
        let entries = written.manifests;
        let report = Report {
            layout: self.layout.display().to_string(),
            tag: self.tag.clone(),
            digest: index.digest.clone(),
            entries,
        };
        if self.json {
            print_json(&report)?;
            return Ok(0);
        }
        let mut text = format!(
            "tagged `{}:{}` {}\n",
            report.layout, report.tag, report.digest
        );
        let rows: Vec<Vec<String>> = report
            .entries
            .iter()
            .map(|e| {
                let p = e.platform.as_ref();
                vec![
                    p.map(|p| format!("{}/{}", p.os, p.architecture))
                        .unwrap_or_else(|| "(no platform)".into()),
                    e.digest.clone(),
                    p.map(|p| p.os_features.join(", ")).unwrap_or_default(),
                ]
            })
            .collect();
        text.push_str(&table(&rows, "  "));
        text.push_str(&format!(
            "\ninspect it: skopeo inspect --raw oci:{}:{}\n",
            report.layout, report.tag
        ));
        print(&text)?;
        Ok(0)
    }
}
