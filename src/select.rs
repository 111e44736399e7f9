//! Choosing the entry of an image index a host should pull, and saying why
//! about every entry.
//!
//! The order of work follows cost: first the index alone (platforms and
//! `os.features`, no download), then, for entries the index says nothing
//! about, their manifest and CNCF wasm config, and only then layers: the top
//! candidate's, to confirm it by its types and (for the built-in host) by
//! instantiating it. A candidate that fails confirmation is recorded with
//! its reason and the next one is tried, so an index whose features lie is
//! never trusted blindly. Content that fails verification (a digest
//! mismatch, a malformed digest, a path out of the layout) aborts the whole
//! selection: that is tampering or corruption, not a reason to fall back.
//!
//! ```no_run
//! # async fn shim() -> anyhow::Result<()> {
//! use worldfit::Host;
//! use worldfit::oci::registry::RegistryOptions;
//! use worldfit::oci::source::Source;
//! use worldfit::select::{SelectOptions, select};
//!
//! // A runwasi-style `load_modules` step: before pulling layers, pick the
//! // manifest this host can run, and fail the container with the reason if
//! // there is none.
//! let source = Source::parse("registry.example/app:1.0", &RegistryOptions::default())?;
//! let host = Host::wasmtime();
//! let selection = select(&source, &host, &SelectOptions::default()).await?;
//! match selection.selected() {
//!     Some(entry) => {
//!         let layer: &[u8] = selection.layer.as_deref().expect("a confirmed selection has its layer");
//!         println!("run {} ({} bytes)", entry.digest, layer.len());
//!     }
//!     None => anyhow::bail!("no build of this image runs here:\n{}", selection.explain()),
//! }
//! # Ok(()) }
//! ```

use crate::host::Host;
use crate::oci::artifact::Descriptor;
use crate::oci::binary;
use crate::oci::image::{Declared, Entry, describe, index_decides, manifests};
use crate::oci::listed::{Listed, ListedPlatform};
use crate::oci::source::{Source, is_image_manifest};
use crate::os_features::{Level, OsFeatureLevel, os_feature_level};
use crate::platform::Platform;
use anyhow::Result;
use serde::Serialize;
use std::borrow::Cow;
use std::collections::HashMap;

/// What to select and how far to confirm.
#[derive(Default)]
pub struct SelectOptions {
    /// The WASI level to prefer (`wasip1`, `wasip2`, `wasip3`); by default
    /// the newest the host runs.
    pub prefer: Option<String>,
    /// Stop at the features (no layer is fetched, nothing is confirmed).
    pub no_confirm: bool,
    /// Sandbox and cache for instantiating, with the built-in host.
    #[cfg(feature = "wasmtime")]
    pub confirm: crate::confirm::ConfirmOptions,
}

/// The verdict on one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EntryVerdict {
    /// The entry to pull.
    Selected,
    /// The host runs it too (by its features), but another ranked higher.
    Compatible,
    /// Its features are on the host's tracks at older versions; only its
    /// types can tell.
    Maybe,
    /// The host can't run it (the reasons say why).
    Incompatible,
    /// Not a wasm build (a `linux/amd64` image, an unknown media type).
    NotWasm,
}

/// One entry and the verdict on it.
#[derive(Debug, Clone, Serialize)]
pub struct EntryReport {
    /// The manifest's digest.
    pub digest: String,
    /// Its platform: as the index declares it, or worked out from its
    /// config or layer (see `declared`).
    pub platform: Option<Platform>,
    /// The verdict.
    pub verdict: EntryVerdict,
    /// Why, in a few short phrases.
    pub reasons: Vec<String>,
    /// Where its requirements were read.
    pub declared: Declared,
    /// How far it was checked: `features`, `types` or `instantiated`.
    pub checked: &'static str,
    /// How the host meets its features (`yes`, `maybe`, `no`): its worst
    /// feature's level; `None` for entries the features didn't decide (not
    /// wasm, an `os` the host doesn't run, requirements unread).
    pub level: Option<Level>,
}

/// The result of a selection.
#[derive(Debug, Clone, Serialize)]
pub struct Selection {
    /// The source, as named.
    pub source: String,
    /// The digest of what the source names (an index or one manifest).
    pub digest: String,
    /// The host's name.
    pub host: String,
    /// The position of the selected entry in `entries`.
    pub selected: Option<usize>,
    /// Every entry, in index order.
    pub entries: Vec<EntryReport>,
    /// The selected entry's wasm binary, verified: its wasm layer, or the
    /// file its config's `Entrypoint` names in its filesystem layers
    /// (absent with `no_confirm`).
    #[serde(skip)]
    pub layer: Option<Vec<u8>>,
    /// The digest of `layer` when it is the entry's wasm layer (checked
    /// against it as it was read); `None` for a binary read out of a
    /// filesystem layer, and with `no_confirm`.
    #[serde(skip)]
    pub layer_digest: Option<String>,
    /// The instantiation that confirmed the selected entry (built-in host).
    #[cfg(feature = "wasmtime")]
    #[serde(skip)]
    pub confirmation: Option<crate::confirm::Confirmation>,
}

impl Selection {
    /// The selected entry.
    pub fn selected(&self) -> Option<&EntryReport> {
        self.entries.get(self.selected?)
    }

    /// Whether the selected entry was confirmed by instantiating its stub
    /// (see [`crate::stub`]).
    pub fn stub_confirmed(&self) -> bool {
        #[cfg(feature = "wasmtime")]
        return self
            .confirmation
            .as_ref()
            .is_some_and(|c| c.path == crate::confirm::Path::Stub);
        #[cfg(not(feature = "wasmtime"))]
        false
    }

    /// The verdict on every entry, aligned for people: the choice first,
    /// then one row per entry.
    pub fn explain(&self) -> String {
        let mut out = match self.selected() {
            Some(e) => format!(
                "selected {} {} from `{}` for host `{}` ({})\n",
                e.digest,
                platform_name(e.platform.as_ref()),
                self.source,
                self.host,
                match e.checked {
                    "instantiated" if self.stub_confirmed() => {
                        "confirmed: validated in full, its stub instantiated in the embedded wasmtime"
                    }
                    "instantiated" => "confirmed: instantiated in the embedded wasmtime",
                    "types" => "confirmed: types checked",
                    _ => "by its features; not confirmed",
                }
            ),
            None => format!(
                "no entry of `{}` runs on host `{}`\n",
                self.source, self.host
            ),
        };
        let rows: Vec<Vec<String>> = self
            .entries
            .iter()
            .map(|e| {
                vec![
                    platform_name(e.platform.as_ref()),
                    serde_json::to_value(e.verdict)
                        .ok()
                        .and_then(|v| v.as_str().map(|s| s.replace('-', " ")))
                        .unwrap_or_default(),
                    short(&e.digest),
                    e.reasons.join("; "),
                ]
            })
            .collect();
        let widths: Vec<usize> = (0..3)
            .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
            .collect();
        for r in rows {
            out.push_str("  ");
            for (c, cell) in r.iter().enumerate() {
                if c < 3 {
                    out.push_str(&format!("{cell:<w$}  ", w = widths[c]));
                } else {
                    out.push_str(cell);
                }
            }
            let trimmed = out.trim_end().len();
            out.truncate(trimmed);
            out.push('\n');
        }
        out
    }
}

/// `os/architecture[/variant]`.
pub fn platform_name(p: Option<&Platform>) -> String {
    match p {
        Some(p) => match &p.variant {
            Some(v) => format!("{}/{}/{v}", p.os, p.architecture),
            None => format!("{}/{}", p.os, p.architecture),
        },
        None => "(no platform)".into(),
    }
}

fn short(digest: &str) -> String {
    // Digests in an index aren't validated until fetched: never slice bytes.
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    hex.chars().take(12).collect()
}

/// An entry on its way through the selection: its report, and what
/// ranking and confirming it need. Kept small (the report plus a few
/// words): a selection over a big index moves thousands of these.
struct Judged<'a> {
    report: EntryReport,
    /// The manifest's media type and size, to fetch it for confirming
    /// (borrowed from the index, mostly).
    media_type: Cow<'a, str>,
    size: u64,
    /// The layer, when describing the entry already read it.
    layer: Option<Vec<u8>>,
}

impl Judged<'_> {
    fn os(&self) -> &str {
        self.report.platform.as_ref().map_or("", |p| p.os.as_str())
    }

    /// How specific the build is: how many `os.features` it declares.
    fn specificity(&self) -> usize {
        self.report
            .platform
            .as_ref()
            .map_or(0, |p| p.os_features.len())
    }

    /// The manifest's descriptor, to fetch it.
    fn manifest(&self) -> Descriptor {
        Descriptor {
            media_type: self.media_type.to_string(),
            digest: self.report.digest.clone(),
            size: self.size,
            platform: None,
            annotations: Default::default(),
        }
    }
}

/// What [`judge`] remembers across the entries of one selection: indexes
/// repeat the same few features and oses across many entries.
#[derive(Default)]
struct Memo {
    features: HashMap<String, (Level, Option<String>)>,
    other_os: HashMap<String, String>,
}

/// An entry before judging: what the index or [`describe`] said about it.
struct Described<'a> {
    digest: String,
    media_type: Cow<'a, str>,
    size: u64,
    wasm: bool,
    platform: Option<Platform>,
    declared: Declared,
    unjudged: Option<String>,
    layer: Option<Vec<u8>>,
}

impl<'a> Described<'a> {
    /// An entry the index decides (see [`index_decides`]); the entry back
    /// when its manifest must be read.
    // The Err hands the entry back, moved; boxing it would allocate for
    // every entry of a large index that needs its manifest read.
    #[allow(clippy::result_large_err)]
    fn from_index(l: Listed<'a>) -> Result<Described<'a>, Listed<'a>> {
        let platform = l
            .platform
            .as_ref()
            .map(|p| (&*p.architecture, &*p.os, !p.os_features.is_empty()));
        let Some(wasm) = index_decides(&l.media_type, platform) else {
            return Err(l);
        };
        Ok(Described {
            digest: l.digest.into_owned(),
            media_type: l.media_type,
            size: l.size,
            wasm,
            platform: l.platform.map(ListedPlatform::into_platform),
            declared: if wasm {
                Declared::Index
            } else {
                Declared::None
            },
            unjudged: None,
            layer: None,
        })
    }

    fn from_entry(e: Entry) -> Described<'static> {
        Described {
            digest: e.descriptor.digest,
            media_type: Cow::Owned(e.descriptor.media_type),
            size: e.descriptor.size,
            wasm: e.wasm,
            platform: e.platform,
            declared: e.declared,
            unjudged: e.unjudged,
            layer: e.layer,
        }
    }
}

/// Judges an entry's features (or what its config/layer implied) against
/// the host, which runs `oses`.
fn judge<'a>(e: Described<'a>, host: &Host, oses: &[&str], memo: &mut Memo) -> Judged<'a> {
    let wasm = e.wasm;
    let mut j = Judged {
        report: EntryReport {
            digest: e.digest,
            platform: e.platform,
            verdict: EntryVerdict::NotWasm,
            reasons: vec![],
            declared: e.declared,
            checked: "features",
            level: None,
        },
        media_type: e.media_type,
        size: e.size,
        layer: e.layer,
    };
    let r = &mut j.report;
    if !wasm {
        r.reasons.push(if !is_image_manifest(&j.media_type) {
            format!("unknown media type `{}`; skipped", j.media_type)
        } else if r.platform.is_some() {
            "not a wasm platform".into()
        } else {
            e.unjudged
                .unwrap_or_else(|| "no wasm config or layer".into())
        });
        return j;
    }
    r.verdict = EntryVerdict::Incompatible;
    if let Some(why) = e.unjudged {
        r.reasons.push(why);
        return j;
    }
    let Some(p) = &r.platform else {
        r.reasons.push("its requirements could not be read".into());
        return j;
    };
    if !oses.contains(&p.os.as_str()) {
        let reason = memo.other_os.entry(p.os.clone()).or_insert_with(|| {
            format!(
                "needs {}; host runs {} only",
                p.os,
                if oses.is_empty() {
                    "nothing".to_string()
                } else {
                    oses.join(", ")
                }
            )
        });
        r.reasons.push(reason.clone());
        return j;
    }
    let mut level = Level::Yes;
    for f in &p.os_features {
        let (l, reason) = match memo.features.get(f.as_str()) {
            Some(x) => x,
            None => memo
                .features
                .entry(f.clone())
                .or_insert_with(|| judge_feature(os_feature_level(f, host))),
        };
        level = level.min(*l);
        if let Some(reason) = reason {
            r.reasons.push(reason.clone());
        }
    }
    r.verdict = match level {
        Level::Yes => EntryVerdict::Compatible,
        Level::Maybe => EntryVerdict::Maybe,
        Level::No => EntryVerdict::Incompatible,
    };
    r.level = Some(level);
    j
}

/// A feature's level and, unless it is *yes*, the reason to show.
fn judge_feature(l: OsFeatureLevel) -> (Level, Option<String>) {
    let reason = match (l.level, &l.host_has) {
        (Level::No, Some(h)) => Some(format!("needs {}; host has {h}", l.feature)),
        (Level::No, None) => Some(
            match crate::engine_features::EngineFeature::from_os_feature(&l.feature) {
                Some(f) => format!(
                    "needs {}; host doesn't enable the engine feature `{f}` (wasmtime: `{}`)",
                    l.feature,
                    f.cli_flag()
                ),
                None => format!("needs {}; host lacks it", l.feature),
            },
        ),
        (Level::Maybe, Some(h)) => Some(format!("needs {}; host has older {h}", l.feature)),
        _ => None,
    };
    (l.level, reason)
}

/// How much the ranking likes an os: the preferred one most, then newer WASI.
fn os_rank(os: &str, prefer: Option<&str>) -> u8 {
    let base = match os {
        "wasip3" => 3,
        "wasip2" => 2,
        "wasip1" => 1,
        _ => 0,
    };
    if prefer == Some(os) { 10 } else { base }
}

/// Selects the entry of `source` that `host` should run.
pub async fn select(source: &Source, host: &Host, opts: &SelectOptions) -> Result<Selection> {
    let root = source.root().await?;
    select_from_root(source, root, host, opts).await
}

/// [`select`] from the source's root already read by [`Source::root`], so a
/// caller can read it while it builds the host (the built-in profile parses
/// its WIT in about 10 ms; the CLI overlaps the two).
pub async fn select_from_root(
    source: &Source,
    (root, root_bytes): (Descriptor, Vec<u8>),
    host: &Host,
    opts: &SelectOptions,
) -> Result<Selection> {
    let known = host.known_worlds();
    let oses = host.oses();
    let listed = manifests(source, &root, &root_bytes).await?;
    let mut judged = Vec::with_capacity(listed.len());
    let mut memo = Memo::default();
    for l in listed {
        // The index decides most entries; the rest need their manifest and config.
        let entry = match Described::from_index(l) {
            Ok(e) => e,
            Err(l) => Described::from_entry(describe(source, l.into_descriptor(), known).await?),
        };
        judged.push(judge(entry, host, &oses, &mut memo));
    }
    let prefer = opts.prefer.as_deref();
    // Features yes before maybe; then the preferred/newest WASI; then the
    // more specific build (more `os.features`, all met: a build for one os
    // that also uses `wasi:http` beside a lean one); then index order.
    use std::cmp::Reverse;
    // (level, os rank, specificity, index position): sorted ascending.
    type Rank = (Reverse<Level>, Reverse<u8>, Reverse<usize>, usize);
    let mut ranked: Vec<Rank> = judged
        .iter()
        .enumerate()
        .filter(|(_, j)| j.report.verdict != EntryVerdict::Incompatible)
        .filter_map(|(i, j)| {
            let level = j.report.level.filter(|l| *l != Level::No)?;
            Some((
                Reverse(level),
                Reverse(os_rank(j.os(), prefer)),
                Reverse(j.specificity()),
                i,
            ))
        })
        .collect();
    ranked.sort_unstable();
    let order: Vec<usize> = ranked.into_iter().map(|(_, _, _, i)| i).collect();
    let mut selected = None;
    let (mut layer, mut chosen_layer_digest) = (None, None);
    #[cfg(feature = "wasmtime")]
    let mut confirmation = None;
    for &i in &order {
        let j = &mut judged[i];
        if opts.no_confirm {
            if j.report.reasons.is_empty() {
                j.report.reasons.push("every feature is on the host".into());
            }
            selected = Some(i);
            break;
        }
        #[cfg(feature = "wasmtime")]
        let mut ahead = None;
        let (layer_digest, bytes) = match j.layer.take() {
            Some(bytes) => (None, bytes),
            None => {
                let manifest = j.manifest();
                let location = match binary::find(source, &manifest).await? {
                    Ok(l) => l,
                    // Not judged, said so: the next candidate is tried.
                    Err(why) => {
                        reject(&mut j.report, why, "features");
                        continue;
                    }
                };
                // Look the compile cache up while the layer is fetched.
                #[cfg(feature = "wasmtime")]
                if let binary::Location::Layer(layer) = &location {
                    ahead = layer
                        .digest
                        .strip_prefix("sha256:")
                        .and_then(|hex| host.lookup_ahead(hex, &opts.confirm));
                }
                let binary = binary::read(source, &location, &manifest.digest).await?;
                (binary.layer_digest, binary.bytes)
            }
        };
        let what = match &layer_digest {
            Some(d) => format!("layer `{d}`"),
            None => "its wasm binary".to_string(),
        };
        let r = &mut j.report;
        #[cfg(feature = "wasmtime")]
        let layer_hex = layer_digest
            .as_deref()
            .and_then(|d| d.strip_prefix("sha256:"));
        // A bare `wasip1` may be a component (runwasi's builder labels
        // every build so): its binary is always decoded, to say what it is.
        let declared_p1 = r.platform.as_ref().is_some_and(|p| p.os == "wasip1");
        let mut relabelled = None;
        // A fit remembered by an earlier run spares decoding the layer again
        // (see `fit_record`); the instantiation below still runs.
        #[cfg(feature = "wasmtime")]
        let remembered = layer_hex
            .zip(opts.confirm.cache.as_ref())
            .filter(|_| !declared_p1)
            .and_then(|(hex, cache)| crate::fit_record::recall(host, hex, cache));
        #[cfg(not(feature = "wasmtime"))]
        let remembered: Option<String> = None;
        let world = match remembered {
            Some(world) => Some(world),
            None => {
                // A layer that matches its digest but isn't wasm is a broken
                // image, not a build for another host: an error, like any
                // other bad input.
                let wasm = crate::component::decode(&bytes)
                    .map_err(|e| anyhow::anyhow!("{what} of entry `{}` {e}", r.digest))?;
                if declared_p1 && matches!(wasm, crate::component::Wasm::Component(_)) {
                    let actual = crate::platform::platform(&wasm, known);
                    relabelled = Some(format!(
                        "its index says wasip1, but its binary is a {} component",
                        actual.os
                    ));
                    r.platform = Some(actual);
                }
                let verdict = crate::verdict::check(&wasm, host);
                if !verdict.compatible {
                    let mut reasons: Vec<String> = verdict
                        .problems
                        .iter()
                        .take(3)
                        .map(|p| p.detail.clone())
                        .collect();
                    if verdict.problems.len() > 3 {
                        reasons.push(format!("{} more problems", verdict.problems.len() - 3));
                    }
                    r.verdict = EntryVerdict::Incompatible;
                    r.checked = "types";
                    r.reasons =
                        std::iter::once("its features fit, but its types don't".to_string())
                            .chain(reasons)
                            .collect();
                    continue;
                }
                #[cfg(feature = "wasmtime")]
                if let (Some(hex), Some(cache), Some(world)) = (
                    layer_hex,
                    opts.confirm.cache.as_ref(),
                    verdict.world.as_deref(),
                ) {
                    crate::fit_record::remember(host, hex, world, cache);
                }
                verdict.world
            }
        };
        r.checked = "types";
        r.reasons = vec![format!("fits {}", world.as_deref().unwrap_or("the host"))];
        r.reasons.extend(relabelled);
        // The layer was verified against its digest as it was read: the
        // compile cache can be keyed by it without hashing the bytes again.
        #[cfg(feature = "wasmtime")]
        let confirmed = match layer_hex {
            Some(hex) => {
                host.confirm_verified_async(&bytes, hex, &opts.confirm, ahead)
                    .await
            }
            None => host.confirm_async(&bytes, &opts.confirm).await,
        };
        #[cfg(feature = "wasmtime")]
        if let Some(c) = confirmed {
            if !c.instantiated {
                let message = c.message.clone().unwrap_or_default();
                reject(
                    r,
                    format!("instantiation failed: {message}"),
                    "instantiated",
                );
                continue;
            }
            r.checked = "instantiated";
            r.reasons.push(format!(
                "instantiated{} in {} ms",
                if c.path == crate::confirm::Path::Stub {
                    " (stub)"
                } else {
                    ""
                },
                (c.compile + c.instantiate).as_millis()
            ));
            confirmation = Some(c);
        }
        selected = Some(i);
        layer = Some(bytes);
        chosen_layer_digest = layer_digest;
        break;
    }
    // Say why the entries that could run weren't chosen.
    if let Some(s) = selected {
        let chosen_os = judged[s].os().to_string();
        let chosen_level = judged[s].report.level;
        let chosen_specificity = judged[s].specificity();
        let (worse, other_os, specific, later) = (
            "a better-fitting entry was selected".to_string(),
            format!("{chosen_os} is preferred"),
            "a more specific build (more os.features, all met) was selected".to_string(),
            "an earlier entry was selected".to_string(),
        );
        for &i in &order {
            if i == s || judged[i].report.verdict == EntryVerdict::Incompatible {
                continue;
            }
            let j = &mut judged[i];
            let why = if j.report.level < chosen_level {
                &worse
            } else if j.os() != chosen_os {
                &other_os
            } else if j.specificity() < chosen_specificity {
                &specific
            } else {
                &later
            };
            j.report.reasons.push(why.clone());
        }
        judged[s].report.verdict = EntryVerdict::Selected;
    }
    let entries = judged.into_iter().map(|j| j.report).collect();
    Ok(Selection {
        source: source.name(),
        digest: root.digest,
        host: host.name.clone(),
        selected,
        entries,
        layer,
        layer_digest: chosen_layer_digest,
        #[cfg(feature = "wasmtime")]
        confirmation,
    })
}

fn reject(r: &mut EntryReport, why: String, checked: &'static str) {
    r.verdict = EntryVerdict::Incompatible;
    r.checked = checked;
    r.reasons = vec![why];
}
