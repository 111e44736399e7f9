//! The entries of an image, as a host would choose among them: each
//! manifest of an index (nested indexes followed), or the one manifest a
//! reference names, with the platform it declares and, for wasm builds, the
//! target world.
//!
//! Other tools don't write `os.features` (wkg pushes a bare manifest; most
//! indexes carry only os/architecture), so a wasm entry's platform is taken
//! from the first place that has it: the index, else the CNCF wasm config's
//! `os` and `component.imports`/`exports`, else the layer itself, decoded.

use super::artifact::{Descriptor, Manifest, WasmConfig};
use super::listed::{Listed, ListedIndex};
use super::source::{Source, is_image_manifest, is_index};
use super::{WASM_CONFIG_MEDIA_TYPE, WASM_LAYER_MEDIA_TYPE};
use crate::host::KnownWorld;
use crate::platform::{Platform, features_of, platform, targets, targets_of};
use crate::wit_name::WitName;
use anyhow::{Context, Result, bail};
use serde::Serialize;

/// Where an entry's platform came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Declared {
    /// The index entry's `platform`, with `os.features`.
    Index,
    /// The CNCF wasm config (`os`, `component.target`).
    Config,
    /// The wasm layer, decoded.
    Layer,
    /// Nowhere: not a wasm build (or it has no platform at all).
    None,
}

/// One entry of an image.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// The manifest's descriptor (its `platform` moved to the field below).
    pub descriptor: Descriptor,
    /// Whether the manifest is a wasm build (a wasm config or layer).
    pub wasm: bool,
    /// The platform: the index's, or worked out from the config or layer.
    pub platform: Option<Platform>,
    /// The target world, for components.
    pub target: Option<String>,
    /// Where `platform` came from.
    pub declared: Declared,
    /// The wasm layer, when it was read to describe the entry.
    #[serde(skip)]
    pub layer: Option<Vec<u8>>,
}

/// The manifests of an index (following nested indexes), each with the
/// platform its nearest index gives it; or the root itself when it is a
/// manifest. The root index's entries borrow from `root_bytes`.
pub async fn manifests<'a>(
    source: &Source,
    root: &Descriptor,
    root_bytes: &'a [u8],
) -> Result<Vec<Listed<'a>>> {
    if is_image_manifest(&root.media_type) {
        return Ok(vec![Listed::from(root)]);
    }
    if !is_index(&root.media_type) {
        bail!(
            "`{}` is a `{}`, not an image index or manifest",
            root.digest,
            root.media_type
        );
    }
    let mut out = Vec::new();
    let mut expanded = std::collections::HashSet::new();
    let limits = &source.limits;
    let mut stack = vec![(
        0usize,
        parse_index(source, &root.digest, root_bytes)?
            .manifests
            .into_iter(),
    )];
    while let Some((depth, mut rest)) = stack.pop() {
        let Some(d) = rest.next() else { continue };
        stack.push((depth, rest));
        // A malformed digest is an integrity failure wherever it appears,
        // even on an entry that would never be fetched.
        super::layout::check_digest(&d.digest)?;
        if is_index(&d.media_type) {
            // An index listed twice is read once: repeats can't multiply
            // the walk (a small index of a big index, many times over).
            if !expanded.insert(d.digest.clone()) {
                continue;
            }
            if depth + 1 >= limits.max_index_depth {
                bail!(
                    "index `{}` nests deeper than {} levels",
                    d.digest,
                    limits.max_index_depth
                );
            }
            let d = d.into_static().into_descriptor();
            let bytes = source
                .fetch(&d, limits.max_manifest_bytes, &mut |_| {})
                .await?;
            // Nested indexes are few: their entries own their strings.
            let nested = parse_index(source, &d.digest, &bytes)?.manifests;
            stack.push((
                depth + 1,
                nested
                    .into_iter()
                    .map(Listed::into_static)
                    .collect::<Vec<_>>()
                    .into_iter(),
            ));
        } else {
            out.push(d);
            // The entry limit holds for the whole walk, not each index.
            limits.check_entries(out.len())?;
        }
    }
    Ok(out)
}

/// A manifest's `application/wasm` layer: `None` without one, an error
/// with more than one (a wasm build is one binary).
pub fn wasm_layer_of<'m>(manifest: &'m Manifest, digest: &str) -> Result<Option<&'m Descriptor>> {
    let mut layers = manifest
        .layers
        .iter()
        .filter(|l| l.media_type == WASM_LAYER_MEDIA_TYPE);
    let first = layers.next();
    let more = layers.count();
    if more > 0 {
        bail!(
            "manifest `{digest}` has {} `application/wasm` layers, not one",
            more + 1
        );
    }
    Ok(first)
}

/// The platform a CNCF wasm config implies: its `os`, and features from
/// `component.imports`/`exports` (names only; the layer has the types).
/// `None` when the config doesn't say enough. Also the target world found.
fn platform_from_config(
    c: &WasmConfig,
    known: &[KnownWorld],
) -> Option<(Platform, Option<String>)> {
    let mut target = None;
    let os_features = match (&c.component, c.os.as_str()) {
        (None, "wasip1") => vec![],
        (None, _) => return None,
        (Some(comp), _) => {
            let names = |list: &[String]| -> Vec<WitName> {
                list.iter().filter_map(|n| n.parse().ok()).collect()
            };
            let (worlds, uncovered) =
                targets_of(&names(&comp.imports), &names(&comp.exports), known);
            target = worlds.first().map(ToString::to_string);
            features_of(&worlds, &uncovered)
        }
    };
    let platform = Platform {
        architecture: c.architecture.clone(),
        os: c.os.clone(),
        os_version: None,
        os_features,
        variant: None,
    };
    Some((platform, target))
}

fn parse_index<'a>(source: &Source, digest: &str, bytes: &'a [u8]) -> Result<ListedIndex<'a>> {
    let index: ListedIndex = source
        .limits
        .parse_json(bytes)
        .with_context(|| format!("index `{digest}` is not a valid OCI image index"))?;
    source
        .limits
        .check_entries(index.manifests.len())
        .with_context(|| format!("index `{digest}`"))?;
    Ok(index)
}

/// Describes each entry of an image, reading a manifest and config only
/// where the index doesn't say, and a layer only where the config doesn't.
pub async fn entries(
    source: &Source,
    root: &Descriptor,
    root_bytes: &[u8],
    known: &[KnownWorld],
) -> Result<Vec<Entry>> {
    let mut out = Vec::new();
    for d in manifests(source, root, root_bytes).await? {
        out.push(describe(source, d.into_descriptor(), known).await?);
    }
    Ok(out)
}

/// Whether the index alone decides what an entry is: `Some(false)` for a
/// platform that isn't wasm or a media type that isn't an image manifest,
/// `Some(true)` for a wasm platform in this encoding (`os.features`, or
/// `os` `wasip1`), `None` when its manifest must be read.
pub fn index_decides(media_type: &str, platform: Option<(&str, &str, bool)>) -> Option<bool> {
    let wasm_platform =
        |(arch, os, _): (&str, &str, bool)| arch == "wasm" || os.starts_with("wasip");
    if platform.is_some_and(|p| !wasm_platform(p)) || !is_image_manifest(media_type) {
        return Some(false);
    }
    let (_, os, has_features) = platform?;
    (has_features || os == "wasip1").then_some(true)
}

/// The entry as the index alone describes it, without fetching anything
/// (see [`index_decides`]); the descriptor back when its manifest must be
/// read. The target world is left for [`describe`] to name (selection
/// doesn't need it).
// The Err hands the descriptor back, moved; boxing it would allocate for every
// entry of a large index that needs its manifest read.
#[allow(clippy::result_large_err)]
pub fn from_index(mut d: Descriptor) -> Result<Entry, Descriptor> {
    let platform = d.platform.as_ref().map(|p| {
        (
            p.architecture.as_str(),
            p.os.as_str(),
            !p.os_features.is_empty(),
        )
    });
    let Some(wasm) = index_decides(&d.media_type, platform) else {
        return Err(d);
    };
    Ok(Entry {
        platform: d.platform.take(),
        descriptor: d,
        wasm,
        target: None,
        declared: if wasm {
            Declared::Index
        } else {
            Declared::None
        },
        layer: None,
    })
}

/// Describes an entry: from the index when it says enough, else from its
/// manifest and CNCF wasm config, else from its layer (kept in the entry,
/// so confirming it doesn't fetch it again).
pub async fn describe(source: &Source, d: Descriptor, known: &[KnownWorld]) -> Result<Entry> {
    let d = match from_index(d) {
        Ok(mut e) => {
            // The target world comes first in `os.features`, when there is one.
            e.target = e
                .platform
                .as_ref()
                .and_then(|p| p.os_features.first())
                .filter(|f| {
                    f.parse::<WitName>()
                        .is_ok_and(|n| known.iter().any(|k| k.name.same_name(&n)))
                })
                .cloned();
            return Ok(e);
        }
        Err(d) => d,
    };
    let limits = &source.limits;
    let bytes = source
        .fetch(&d, limits.max_manifest_bytes, &mut |_| {})
        .await?;
    let manifest: Manifest = limits
        .parse_json(&bytes)
        .with_context(|| format!("manifest `{}` is not a valid OCI manifest", d.digest))?;
    let layer = wasm_layer_of(&manifest, &d.digest)?;
    // A config that isn't the CNCF shape we know is passed over, not an
    // error: the layer still says what the build needs.
    let config = if manifest.config.media_type == WASM_CONFIG_MEDIA_TYPE {
        let bytes = source
            .fetch(&manifest.config, limits.max_config_bytes, &mut |_| {})
            .await?;
        limits.parse_json::<WasmConfig>(&bytes).ok()
    } else {
        None
    };
    let entry = |wasm: bool, platform: Option<Platform>, target: Option<String>, declared| Entry {
        descriptor: d.clone(),
        wasm,
        platform,
        target,
        declared,
        layer: None,
    };
    if config.is_none() && layer.is_none() {
        return Ok(entry(false, d.platform.clone(), None, Declared::None));
    }
    let config_target = config
        .as_ref()
        .and_then(|c| c.component.as_ref()?.target.clone());
    if let Some((p, target)) = config.as_ref().and_then(|c| platform_from_config(c, known)) {
        return Ok(entry(
            true,
            Some(p),
            config_target.or(target),
            Declared::Config,
        ));
    }
    let Some(layer) = layer else {
        return Ok(entry(true, d.platform.clone(), None, Declared::None));
    };
    let bytes = source
        .fetch(layer, limits.max_layer_bytes, &mut |_| {})
        .await?;
    // A layer that matches its digest but isn't wasm is a broken image.
    let wasm = crate::component::decode(&bytes)
        .map_err(|e| anyhow::anyhow!("layer `{}` of entry `{}` {e}", layer.digest, d.digest))?;
    let target = match &wasm {
        crate::component::Wasm::Component(c) => {
            targets(c, known).0.first().map(ToString::to_string)
        }
        crate::component::Wasm::Module(_) => None,
    };
    let mut e = entry(true, Some(platform(&wasm, known)), target, Declared::Layer);
    e.layer = Some(bytes);
    Ok(e)
}
