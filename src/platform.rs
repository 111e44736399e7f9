//! A build's OCI platform: `architecture: wasm`, `os: wasip1|wasip2|wasip3`,
//! and `os.features`, the WIT names it requires of the host.
//!
//! `os.features` lists the *target world(s)* first, at the highest version the
//! component uses on that world's track, then every import no target world
//! covers, sorted, then the engine features the build needs
//! (`wasm:feature/NAME`, see [`crate::engine_features`]), sorted. A target
//! world is a known world whose entry points the component exports and
//! which covers the most of its imports.

use crate::component::{Component, ItemName, Wasm};
use crate::engine_features::{EngineFeature, FeatureUse};
use crate::host::KnownWorld;
use crate::wit_name::{WitName, track_compatible};
use serde::{Deserialize, Serialize};

/// An OCI image-index platform for a wasm build.
///
/// Also read from other tools' index entries (a `linux/arm64/v8` image beside
/// the wasm builds), so the optional OCI fields are kept when present.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    /// `wasm` for wasm builds.
    pub architecture: String,
    /// `wasip1`, `wasip2` or `wasip3` for wasm builds.
    pub os: String,
    /// The OS version (not used for wasm).
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    /// The WIT names the build requires of its host.
    #[serde(rename = "os.features", default)]
    pub os_features: Vec<String>,
    /// The CPU variant (not used for wasm).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

/// How an index entry's `os`/`architecture` reads as a wasm platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WasmSpelling {
    /// The spelling names the WASI level: `wasip1`, `wasip2` or `wasip3`.
    Level(&'static str),
    /// The spelling says wasm but not which WASI (`wasi/wasm`,
    /// `wasm32/wasi`, `linux/wasm`, ...): the binary decides.
    Unversioned,
}

/// Reads the platform spellings wasm images are published with (the
/// table in docs/FORMAT.md, "Platform spellings"): `None` when the
/// platform isn't wasm (`linux/amd64`).
///
/// - `wasip1|wasip2|wasip3` with any architecture: that level (runwasi's
///   `oci-tar-builder` and worldfit write `wasm`; `wasm32` is read alike);
/// - `wasi` with `wasm` or `wasm32` (`docker buildx --platform wasi/wasm`,
///   buildah, the older Spin and wasm-to-oci images), the reversed
///   `wasm32/wasi` or `wasm/wasi`, and any `os` (`linux/wasm`, `unknown`)
///   on architecture `wasm`, `wasm32` or `wasm64`: unversioned.
pub fn wasm_spelling(os: &str, architecture: &str) -> Option<WasmSpelling> {
    match os {
        "wasip1" => return Some(WasmSpelling::Level("wasip1")),
        "wasip2" => return Some(WasmSpelling::Level("wasip2")),
        "wasip3" => return Some(WasmSpelling::Level("wasip3")),
        _ => {}
    }
    let wasm_arch = |a: &str| matches!(a, "wasm" | "wasm32" | "wasm64");
    if wasm_arch(architecture) || (architecture == "wasi" && wasm_arch(os)) || os == "wasi" {
        return Some(WasmSpelling::Unversioned);
    }
    None
}

/// The WASI level of a build: the OCI `os` value.
pub fn os_of(wasm: &Wasm) -> &'static str {
    match wasm {
        Wasm::Module(_) => "wasip1",
        Wasm::Component(c)
            if c.uses_async()
                || c.engine_features
                    .iter()
                    .any(|u| u.feature == EngineFeature::ComponentModelAsync) =>
        {
            "wasip3"
        }
        Wasm::Component(_) => "wasip2",
    }
}

fn interface_names<'a>(
    items: impl Iterator<Item = (ItemName, &'a wit_parser::WorldItem)>,
) -> Vec<WitName> {
    items
        .filter_map(|(n, _)| match n {
            ItemName::Interface(n) => Some(n),
            ItemName::Plain(_) => None,
        })
        .collect()
}

fn covers(list: &[WitName], name: &WitName) -> bool {
    list.iter().any(|k| k.same_track(name))
}

/// The known worlds a component targets, each at the highest version the
/// component uses on its track, plus the imports none of them covers.
pub fn targets(c: &Component, known: &[KnownWorld]) -> (Vec<WitName>, Vec<WitName>) {
    targets_of(
        &interface_names(c.imports()),
        &interface_names(c.exports()),
        known,
    )
}

/// [`targets`] from interface names alone, as a CNCF wasm config lists them
/// (`component.imports`/`exports`) for a build whose bytes aren't at hand.
pub fn targets_of(
    imports: &[WitName],
    exports: &[WitName],
    known: &[KnownWorld],
) -> (Vec<WitName>, Vec<WitName>) {
    let mut candidates: Vec<&KnownWorld> = known
        .iter()
        .filter(|k| !k.exports.is_empty() && k.exports.iter().all(|e| covers(exports, e)))
        .collect();
    let mut chosen: Vec<&KnownWorld> = Vec::new();
    while !candidates.is_empty() {
        let score = |k: &KnownWorld| imports.iter().filter(|i| covers(&k.imports, i)).count();
        // Most imports covered; then the smallest world (the tightest fit); then by name.
        candidates.sort_by(|a, b| {
            score(b)
                .cmp(&score(a))
                .then(a.imports.len().cmp(&b.imports.len()))
                .then(a.name.cmp(&b.name))
        });
        let pick = candidates.remove(0);
        chosen.push(pick);
        // Keep only candidates that drive an entry point not yet covered.
        candidates.retain(|k| {
            k.exports
                .iter()
                .any(|e| !chosen.iter().any(|c| covers(&c.exports, e)))
        });
    }
    let worlds = chosen
        .iter()
        .map(|k| {
            let used = imports
                .iter()
                .filter(|i| covers(&k.imports, i))
                .chain(exports.iter().filter(|e| covers(&k.exports, e)))
                .filter_map(|n| n.version.as_ref())
                .filter(|v| track_compatible(Some(v), k.name.version.as_ref()))
                .max()
                .cloned();
            k.name.with_version(used.or_else(|| k.name.version.clone()))
        })
        .collect();
    let mut uncovered: Vec<WitName> = imports
        .iter()
        .filter(|i| !chosen.iter().any(|k| covers(&k.imports, i)))
        .cloned()
        .collect();
    uncovered.sort();
    uncovered.dedup();
    (worlds, uncovered)
}

/// `os.features`: the target worlds, then the uncovered imports.
pub fn features_of(worlds: &[WitName], uncovered: &[WitName]) -> Vec<String> {
    let mut out: Vec<String> = worlds.iter().map(ToString::to_string).collect();
    for u in uncovered {
        let s = u.to_string();
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

/// The `os.features` strings of the engine features a build needs,
/// `wasm:feature/NAME`, sorted: they follow the WIT names.
pub fn engine_os_features(uses: &[FeatureUse]) -> Vec<String> {
    let mut out: Vec<String> = uses.iter().map(|u| u.feature.os_feature()).collect();
    out.sort();
    out.dedup();
    out
}

/// Computes the platform of a build, choosing target worlds from `known`.
pub fn platform(wasm: &Wasm, known: &[KnownWorld]) -> Platform {
    let mut os_features = match wasm {
        Wasm::Module(_) => Vec::new(),
        Wasm::Component(c) => {
            let (worlds, uncovered) = targets(c, known);
            features_of(&worlds, &uncovered)
        }
    };
    os_features.extend(engine_os_features(wasm.engine_features()));
    Platform {
        architecture: "wasm".into(),
        os: os_of(wasm).into(),
        os_version: None,
        os_features,
        variant: None,
    }
}

/// Percent-encodes every byte outside `[A-Za-z0-9_.-]`, the only characters
/// containerd's platform parser accepts inside the parentheses.
pub fn containerd_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The containerd platform string: `os(+f1+f2)/arch`, features sorted and
/// deduplicated as containerd's `FormatAll` does, each percent-encoded.
pub fn containerd_string(os: &str, architecture: &str, features: &[String]) -> String {
    let mut features: Vec<&String> = features.iter().filter(|f| !f.is_empty()).collect();
    features.sort();
    features.dedup();
    if features.is_empty() {
        return format!("{os}/{architecture}");
    }
    let joined: String = features
        .iter()
        .map(|f| format!("+{}", containerd_escape(f)))
        .collect();
    format!("{os}({joined})/{architecture}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_published_spelling_reads_as_wasm() {
        use WasmSpelling::*;
        for (os, arch, want) in [
            ("wasip1", "wasm", Some(Level("wasip1"))),
            ("wasip2", "wasm", Some(Level("wasip2"))),
            ("wasip3", "wasm", Some(Level("wasip3"))),
            ("wasip2", "wasm32", Some(Level("wasip2"))),
            ("wasi", "wasm", Some(Unversioned)),
            ("wasi", "wasm32", Some(Unversioned)),
            ("wasm32", "wasi", Some(Unversioned)),
            ("wasm", "wasi", Some(Unversioned)),
            ("linux", "wasm", Some(Unversioned)),
            ("unknown", "wasm64", Some(Unversioned)),
            ("linux", "amd64", None),
            ("linux", "arm64", None),
            ("windows", "amd64", None),
            ("", "", None),
        ] {
            assert_eq!(wasm_spelling(os, arch), want, "{os}/{arch}");
        }
    }

    #[test]
    fn containerd_strings_use_the_parsers_alphabet() {
        assert_eq!(
            containerd_string("wasip2", "wasm", &["wasi:cli/command@0.2.6".into()]),
            "wasip2(+wasi%3Acli%2Fcommand%400.2.6)/wasm"
        );
        assert_eq!(containerd_string("wasip1", "wasm", &[]), "wasip1/wasm");
        assert_eq!(
            containerd_string(
                "wasip2",
                "wasm",
                &["b:c/d".into(), "a:b/c(1)+x%".into(), "b:c/d".into()]
            ),
            "wasip2(+a%3Ab%2Fc%281%29%2Bx%25+b%3Ac%2Fd)/wasm"
        );
    }
}
