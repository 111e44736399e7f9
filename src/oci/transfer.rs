//! `push` (layout → registry) and `pull` (registry → layout), byte for
//! byte, so every digest survives the trip and a pulled image is the image
//! that was pushed.

use super::artifact::Descriptor;
use super::layout;
use super::registry::{self, Registry};
use super::source::{Source, collect};
use anyhow::{Context, Result};
use serde::Serialize;
use std::path::Path;

/// What a push or pull moved.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TransferReport {
    /// The image's digest (its index or manifest).
    pub digest: String,
    /// The image's media type.
    pub media_type: String,
    /// Blobs (configs and layers) sent or received.
    pub blobs_transferred: usize,
    /// Blobs the destination already had, so not sent.
    pub blobs_skipped: usize,
    /// Manifests and indexes written.
    pub manifests: usize,
    /// Bytes sent or received (blobs and manifests).
    pub bytes: u64,
}

/// A sink for transfer progress (bytes so far, out of a total).
pub trait Progress {
    /// The total is known.
    fn start(&mut self, total: u64);
    /// `n` more bytes moved.
    fn advance(&mut self, n: u64);
}

impl Progress for () {
    fn start(&mut self, _: u64) {}
    fn advance(&mut self, _: u64) {}
}

/// Pushes the image `source` (a layout) names to `registry` under
/// `tag_or_digest`: blobs the repository lacks, then manifests by digest
/// (children before the indexes that list them), then the root under the
/// tag. Blobs already there are not sent again.
pub async fn push(
    source: &Source,
    registry: &Registry,
    tag_or_digest: &str,
    progress: &mut dyn Progress,
) -> Result<TransferReport> {
    let (root, root_bytes) = source.root().await?;
    let blobs = collect(source, &root, root_bytes, &mut |_| {}).await?;
    let mut report = TransferReport {
        digest: root.digest.clone(),
        media_type: root.media_type.clone(),
        ..TransferReport::default()
    };
    let (manifests, plain): (Vec<_>, Vec<_>) = blobs
        .iter()
        .partition(|b| registry::is_manifest(&b.descriptor.media_type));
    let mut missing = Vec::new();
    for b in &plain {
        if registry.has_blob(&b.descriptor.digest).await? {
            report.blobs_skipped += 1;
        } else {
            missing.push(*b);
        }
    }
    progress.start(missing.iter().map(|b| b.descriptor.size).sum());
    for b in missing {
        registry.push_blob(&b.descriptor, &b.bytes).await?;
        report.blobs_transferred += 1;
        report.bytes += b.descriptor.size;
        progress.advance(b.descriptor.size);
    }
    for m in &manifests {
        let name = if m.descriptor.digest == root.digest {
            tag_or_digest
        } else {
            &m.descriptor.digest
        };
        registry
            .push_manifest(name, &m.descriptor.media_type, &m.bytes)
            .await?;
        report.manifests += 1;
        report.bytes += m.descriptor.size;
    }
    Ok(report)
}

/// Pulls the image `source` names into the layout at `dir` under `tag`,
/// creating the layout or adding to it (other tags are kept). Everything is
/// verified before the layout is touched; `index.json` is written last.
pub async fn pull(
    source: &Source,
    dir: &Path,
    tag: &str,
    progress: &mut dyn Progress,
) -> Result<TransferReport> {
    let (root, root_bytes) = source.root().await?;
    let mut moved = 0u64;
    let blobs = collect(source, &root, root_bytes, &mut |n| {
        moved += n;
        progress.advance(n)
    })
    .await?;
    let refs: Vec<_> = blobs.iter().collect();
    let manifests = blobs
        .iter()
        .filter(|b| registry::is_manifest(&b.descriptor.media_type))
        .count();
    let root_descriptor = Descriptor {
        platform: None,
        annotations: Default::default(),
        ..root.clone()
    };
    layout::write_tagged(dir, tag, &refs, &root_descriptor)
        .with_context(|| format!("failed to write layout `{}`", dir.display()))?;
    Ok(TransferReport {
        digest: root.digest,
        media_type: root.media_type,
        blobs_transferred: blobs.len() - manifests,
        blobs_skipped: 0,
        manifests,
        bytes: moved,
    })
}
