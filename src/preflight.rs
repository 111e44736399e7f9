//! The check a runwasi-style shim makes when a container starts: containerd
//! already holds the image's index, so pick the entry this host runs from
//! containerd's content store, confirm it (types, then instantiation in the
//! embedded wasmtime, through the compile cache), and hand back the chosen
//! layer's bytes, or one line the shim can report as the container's
//! failure reason.
//!
//! Cheap to repeat: the connection is made per call (a few hundred µs over
//! the socket), the index and manifest are small, and a second start of the
//! same image loads the compiled code from the cache instead of compiling.
//! `examples/shim_preflight.rs` runs it.

use crate::confirm::ConfirmOptions;
use crate::host::Host;
use crate::oci::containerd::{ContainerdImage, ContainerdOptions};
use crate::oci::source::{Origin, Source};
use crate::select::{SelectOptions, Selection, select};
use anyhow::{Result, anyhow};

/// What the shim runs.
pub struct Preflight {
    /// The chosen manifest's digest.
    pub digest: String,
    /// Its wasm binary (its wasm layer, or the file its entrypoint names in
    /// its filesystem layers), verified against its digest.
    pub layer: Vec<u8>,
    /// The SHA-256 of `layer`, 64 hex digits: the wasm layer's digest,
    /// checked as it was read, so a shim can key its own compile cache
    /// without hashing the bytes again (computed for a binary read out of a
    /// filesystem layer).
    pub layer_sha256: String,
    /// The whole selection: every entry's verdict, the confirmation.
    pub selection: Selection,
}

/// Selects and confirms the entry of containerd's `image` (`[NAMESPACE/]IMAGE`)
/// that `host` runs. `Err` is one line naming the image: no entry fits (with
/// each entry's reason), or the image, its content or containerd itself
/// couldn't be read.
///
/// The selection always confirms (a shim needs the layer, and an index's
/// features alone aren't trusted); `confirm` gives the sandbox and cache.
pub async fn preflight(
    image: &str,
    containerd: &ContainerdOptions,
    host: &Host,
    confirm: ConfirmOptions,
) -> Result<Preflight> {
    let options = SelectOptions {
        confirm,
        ..SelectOptions::default()
    };
    let source = Source::new(Origin::Containerd(Box::new(ContainerdImage::new(
        image, containerd,
    )?)));
    let name = source.name();
    let mut selection = select(&source, host, &options)
        .await
        .map_err(|e| anyhow!("cannot start `{name}`: {e:#}"))?;
    let Some(chosen) = selection.selected() else {
        let reasons: Vec<String> = selection
            .entries
            .iter()
            .map(|e| {
                format!(
                    "{}: {}",
                    crate::select::platform_name(e.platform.as_ref()),
                    e.reasons.join(", ")
                )
            })
            .collect();
        return Err(anyhow!(
            "no build of `{name}` runs on host `{}`: {}",
            selection.host,
            reasons.join("; ")
        ));
    };
    let digest = chosen.digest.clone();
    let layer = selection
        .layer
        .take()
        .ok_or_else(|| anyhow!("cannot start `{name}`: the selection kept no layer"))?;
    let layer_sha256 = match selection
        .layer_digest
        .as_deref()
        .and_then(|d| d.strip_prefix("sha256:"))
    {
        Some(hex) => hex.to_string(),
        None => crate::cache::sha256_hex(&layer),
    };
    Ok(Preflight {
        digest,
        layer,
        layer_sha256,
        selection,
    })
}
