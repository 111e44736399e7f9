//! The entries of an image, as a host would choose among them: each
//! manifest of an index (nested indexes followed), or the one manifest a
//! reference names, with the platform it declares and, for wasm builds, the
//! target world.
//!
//! Other tools don't write `os.features` (wkg pushes a bare manifest; most
//! indexes carry only os/architecture, in several spellings: see
//! [`wasm_spelling`]), so a wasm entry's platform is taken from the first
//! place that has it: the index, else the CNCF wasm config's `os` and
//! `component.imports`/`exports`, else the binary itself, decoded (a wasm
//! layer of any of the types in use, or the entrypoint file of filesystem
//! layers: see [`super::binary`]).

use super::artifact::{Descriptor, WasmConfig};
use super::binary::{
    Config, Location, WASM_CONFIG_V1_MEDIA_TYPE, is_wasm_layer, locate, manifest_and_config, read,
};
use super::listed::{Listed, ListedIndex};
use super::rootfs;
use super::source::{Source, is_image_manifest, is_index};
use crate::host::KnownWorld;
use crate::platform::{
    Platform, WasmSpelling, features_of, platform, targets, targets_of, wasm_spelling,
};
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
    /// The file its image config's `Entrypoint` names in its filesystem
    /// layers, decoded.
    Filesystem,
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
    /// Why worldfit can't judge this entry, in one line naming what it saw
    /// (a layer type, a config) and what to do; `None` when it can.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unjudged: Option<String>,
    /// The wasm binary (a layer, or the entrypoint file of its filesystem
    /// layers), when it was read to describe the entry.
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
/// platform that isn't wasm (see [`wasm_spelling`]) or a media type that
/// isn't an image manifest, `Some(true)` for a wasm platform in this
/// encoding (a WASI level with `os.features`, or a bare `wasip1`), `None`
/// when its manifest must be read: no platform, a `wasip2`/`wasip3` without
/// features, or a spelling such as `wasi/wasm` that leaves the WASI level
/// to the binary.
///
/// A bare `wasip1` is taken at its word, as this encoding means it (a core
/// module that needs no engine feature), so selecting by features never
/// reads its manifest. runwasi's `oci-tar-builder` writes `wasip1/wasm` for
/// components too: confirmation decodes the binary and reports what it is.
pub fn index_decides(media_type: &str, platform: Option<(&str, &str, bool)>) -> Option<bool> {
    if !is_image_manifest(media_type) {
        return Some(false);
    }
    let (arch, os, has_features) = platform?;
    match wasm_spelling(os, arch) {
        None => Some(false),
        Some(WasmSpelling::Level(level)) => (has_features || level == "wasip1").then_some(true),
        Some(WasmSpelling::Unversioned) => None,
    }
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
        unjudged: None,
        layer: None,
    })
}

/// Describes an entry: from the index when it says enough, else from its
/// manifest and CNCF wasm config, else from its binary (a wasm layer, or
/// the entrypoint file of its filesystem layers; kept in the entry, so
/// confirming it doesn't read it again). An entry whose binary can't be
/// found is described with the reason in `unjudged`; content that fails
/// verification, or a binary that isn't wasm, is an error.
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
    let (manifest, config) = manifest_and_config(source, &d, true).await?;
    let entry = |wasm: bool, platform: Option<Platform>, target: Option<String>, declared| Entry {
        descriptor: d.clone(),
        wasm,
        platform,
        target,
        declared,
        unjudged: None,
        layer: None,
    };
    if let Config::Wasm(c) = &config
        && let Some((p, target)) = platform_from_config(c, known)
    {
        let config_target = c.component.as_ref().and_then(|c| c.target.clone());
        return Ok(entry(
            true,
            Some(p),
            config_target.or(target),
            Declared::Config,
        ));
    }
    let location = match locate(&manifest, &config) {
        Ok(l) => l,
        Err(why) => {
            // Wasm by its platform, its config or a layer: a build worldfit
            // can't judge, said so; else not a wasm build at all.
            let spelled_wasm = |os: &str, arch: &str| wasm_spelling(os, arch).is_some();
            let wasm = d
                .platform
                .as_ref()
                .is_some_and(|p| spelled_wasm(&p.os, &p.architecture))
                || config
                    .image()
                    .is_some_and(|c| spelled_wasm(&c.os, &c.architecture))
                || matches!(config, Config::Wasm(_))
                || manifest.config.media_type == WASM_CONFIG_V1_MEDIA_TYPE
                || manifest.layers.iter().any(|l| is_wasm_layer(&l.media_type));
            let mut e = entry(wasm, d.platform.clone(), None, Declared::None);
            e.unjudged = Some(why);
            return Ok(e);
        }
    };
    let binary = read(source, &location, &d.digest).await?;
    // A binary that matches its digest but isn't wasm is a broken image.
    let wasm = crate::component::decode(&binary.bytes).map_err(|e| {
        let what = match &location {
            Location::Layer(l) => format!("layer `{}`", l.digest),
            Location::File { path, .. } => format!("file `{}`", rootfs::display_path(path)),
        };
        anyhow::anyhow!("{what} of entry `{}` {e}", d.digest)
    })?;
    let target = match &wasm {
        crate::component::Wasm::Component(c) => {
            targets(c, known).0.first().map(ToString::to_string)
        }
        crate::component::Wasm::Module(_) => None,
    };
    let declared = match location {
        Location::Layer(_) => Declared::Layer,
        Location::File { .. } => Declared::Filesystem,
    };
    let mut e = entry(true, Some(platform(&wasm, known)), target, declared);
    e.layer = Some(binary.bytes);
    Ok(e)
}
