//! The catalog: host profiles shipped in the binary, one per runtime
//! release, each written by `worldfit host --probe` against that release's
//! own executable (the files under `hosts/`; a CI test probes every release
//! again and fails on any drift).
//!
//! The embedded wasmtime that confirms verdicts is a host too, named
//! [`EMBEDDED`]: it is worldfit's wasmtime 48 *library* linker, which is
//! not what any wasmtime CLI release links.

use super::Host;
use super::profile::{HostSpec, Profile};
use anyhow::{Result, bail};
use std::sync::OnceLock;

/// The built-in host's name: worldfit's own wasmtime 48 library linker
/// (wasmtime-wasi and wasmtime-wasi-http, p2 and p3, default options).
pub const EMBEDDED: &str = "embedded-wasmtime";
/// The built-in host's version (the wasmtime crates' major version).
pub const EMBEDDED_VERSION: &str = "48";

/// The profile files, as `build.rs` found them under `hosts/`.
const FILES: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/catalog.rs"));

/// Every profile in the catalog, sorted by name, then version (oldest first).
pub fn profiles() -> &'static [Profile] {
    static PROFILES: OnceLock<Vec<Profile>> = OnceLock::new();
    PROFILES.get_or_init(|| {
        let mut out: Vec<Profile> = FILES
            .iter()
            .map(|(file, text)| {
                // The catalog is validated by a test (`every_catalog_file_is_valid`),
                // not at every start: checking each of its thousands of names
                // cost a twentieth of a `check --host 'wasmtime@*'`. A file
                // that doesn't parse is a build defect.
                serde_json::from_str(text).unwrap_or_else(|e| panic!("catalog file `{file}`: {e}"))
            })
            .collect();
        out.sort_by(|a, b| {
            a.name
                .cmp(&b.name)
                .then_with(|| version_key(&a.version).cmp(&version_key(&b.version)))
        });
        out
    })
}

/// A release's numeric parts, for ordering `9.0.0` before `10.0.0`.
fn version_key(v: &str) -> Vec<u64> {
    v.split(['.', '-'])
        .map(|p| p.parse().unwrap_or(0))
        .collect()
}

/// Whether a release matches a version as asked: equal, or a prefix of
/// whole parts (`49` and `49.0` match `49.0.3`).
fn version_matches(release: &str, asked: &str) -> bool {
    release == asked || release.starts_with(&format!("{asked}."))
}

/// The profiles a spec names: the newest release when no version is given,
/// the newest matching release for a version prefix, every release for
/// `*`. Errors list what the catalog has.
pub fn find(spec: &HostSpec) -> Result<Vec<&'static Profile>> {
    let same_name: Vec<&Profile> = profiles().iter().filter(|p| p.name == spec.name).collect();
    if same_name.is_empty() {
        bail!(
            "no host `{}` in the catalog (it has {}; see `worldfit host --list`)",
            spec.name,
            names().join(", ")
        );
    }
    let found: Vec<&Profile> = match spec.version.as_deref() {
        Some("*") => same_name,
        Some(v) => same_name
            .into_iter()
            .rfind(|p| version_matches(&p.version, v))
            .into_iter()
            .collect(),
        None => same_name.last().copied().into_iter().collect(),
    };
    if found.is_empty() {
        let versions: Vec<&str> = profiles()
            .iter()
            .filter(|p| p.name == spec.name)
            .map(|p| p.version.as_str())
            .collect();
        bail!(
            "no release {} of `{}` in the catalog (it has {})",
            spec.version.as_deref().unwrap_or_default(),
            spec.name,
            versions.join(", ")
        );
    }
    Ok(found)
}

/// The distinct runtime names in the catalog, plus the embedded host.
pub fn names() -> Vec<String> {
    let mut out = vec![EMBEDDED.to_string()];
    for p in profiles() {
        if !out.contains(&p.name) {
            out.push(p.name.clone());
        }
    }
    out
}

/// Whether a spec names the embedded host (`embedded-wasmtime`,
/// `embedded-wasmtime@48`, or `embedded`).
pub fn is_embedded(spec: &HostSpec) -> bool {
    (spec.name == EMBEDDED || spec.name == "embedded")
        && spec.version.as_deref().is_none_or(|v| {
            v == "*" || version_matches(EMBEDDED_VERSION, v) || v.starts_with(EMBEDDED_VERSION)
        })
}

/// One host a spec names, built: the embedded host, or a catalog profile
/// with the spec's invocation and flags.
pub struct Named {
    /// The profile, for a catalog host or a profile file (`None` for the
    /// embedded and WIT hosts): borrowed from the catalog, owned for a file.
    pub profile: Option<std::borrow::Cow<'static, Profile>>,
    /// The host as invoked.
    pub host: Host,
}

/// Builds every host a spec names (several for `NAME@*`).
pub fn hosts(spec: &HostSpec) -> Result<Vec<Named>> {
    if is_embedded(spec) {
        if spec.selection != Default::default() {
            bail!("the embedded host takes no invocation or flags");
        }
        return Ok(vec![Named {
            profile: None,
            host: Host::wasmtime(),
        }]);
    }
    find(spec)?
        .into_iter()
        .map(|p| {
            Ok(Named {
                profile: Some(std::borrow::Cow::Borrowed(p)),
                host: p.host(&spec.selection)?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_match_by_whole_parts() {
        assert!(version_matches("49.0.3", "49"));
        assert!(version_matches("49.0.3", "49.0"));
        assert!(version_matches("49.0.3", "49.0.3"));
        assert!(!version_matches("49.0.3", "4"));
        assert!(version_key("9.0.0") < version_key("10.0.0"));
    }

    #[test]
    fn every_catalog_file_is_valid() {
        assert_eq!(FILES.len(), 9, "one file per wasmtime release on PyPI");
        for (file, text) in FILES {
            Profile::parse(text).unwrap_or_else(|e| panic!("{file}: {e:#}"));
        }
    }

    #[test]
    fn every_catalog_profile_builds_a_host() {
        for p in profiles() {
            let h = p.host(&Default::default()).unwrap();
            assert!(!h.worlds.is_empty() || h.wasip1, "{}", p.id());
        }
    }
}
