//! Host worlds as Kubernetes node labels, and an entry's features as the
//! node requirements that match exactly the hosts that meet them at the
//! *yes* level. docs/FORMAT.md ("Kubernetes node labels") is the contract.
//!
//! The scheduler compares label values with `In`, `Exists` and `Gt` only,
//! so the semver track goes in the key and the version within the track is
//! an integer value: host `wasi:cli/command@0.2.12` is labelled
//! `…/wasi_cli.command.v0.2=12`, and an entry needing `@0.2.6` requires that
//! key `Gt 5`. Versions that match only themselves (prereleases, `0.0.z`)
//! get a key of their own. Node Feature Discovery publishes the labels from
//! a feature file (`worldfit host --format nfd`).

use crate::host::Host;
use crate::wit_name::{Track, WitName};
use semver::Version;
use std::collections::BTreeMap;

/// The label prefix: a sub-namespace of NFD's `feature.node.kubernetes.io`,
/// which NFD accepts without extra configuration.
pub const PREFIX: &str = "worldfit.feature.node.kubernetes.io/";

/// The longest label name Kubernetes accepts (after the prefix).
pub const MAX_NAME: usize = 63;

/// The value of presence labels.
pub const TRUE: &str = "true";

/// Minor versions are scaled by this in a major track's value (`x.y.z` →
/// `y × 1,000,000 + z`), so one integer orders them; a patch at or past it
/// is clamped (no real interface gets there).
pub const MINOR_SCALE: u64 = 1_000_000;

/// A label key (prefix included) that stays within Kubernetes' limits:
/// `name` as is when it fits, else cut at 52 characters and ended with
/// `-` and 10 hex digits of its SHA-256 (stable, and two names don't share
/// a key but with odds of 2⁻⁴⁰).
pub fn key(name: &str) -> String {
    if name.len() <= MAX_NAME {
        return format!("{PREFIX}{name}");
    }
    let digest = crate::cache::sha256_hex(name.as_bytes());
    let mut cut: String = name.chars().take(52).collect();
    // A name must end with a letter or digit before the `-`.
    while cut.ends_with(|c: char| !c.is_ascii_alphanumeric()) {
        cut.pop();
    }
    format!("{PREFIX}{cut}-{}", &digest[..10])
}

/// The unversioned part of a name's label: `ns_pkg.item` (`ns_pkg` for a
/// package). WIT identifiers are kebab-case (letters, digits, `-`), so `_`
/// and `.` can't collide with anything inside them.
fn base(name: &WitName) -> String {
    match &name.item {
        Some(item) => format!("{}_{}.{item}", name.namespace, name.package),
        None => format!("{}_{}", name.namespace, name.package),
    }
}

/// A version as a label-name fragment: `+` (build metadata) becomes `_`,
/// which a version can't otherwise hold.
fn version_fragment(v: &Version) -> String {
    v.to_string().replace('+', "_")
}

/// The integer a version has within its (non-exact) track.
pub fn within_track(v: &Version) -> u64 {
    if v.major != 0 {
        v.minor
            .saturating_mul(MINOR_SCALE)
            .saturating_add(v.patch.min(MINOR_SCALE - 1))
    } else {
        v.patch
    }
}

/// How a host has, or an entry needs, one name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Label {
    /// The name at any version: `key` exists.
    Name {
        /// The label key.
        key: String,
    },
    /// A version on a track: `key`'s value is the version within the track.
    Track {
        /// The label key (the track in it).
        key: String,
        /// The version within the track ([`within_track`]).
        value: u64,
    },
    /// One exact version (prerelease or `0.0.z`): `key` is `true`.
    Exact {
        /// The label key (the version in it).
        key: String,
    },
}

/// The label for the name itself (any version).
pub fn name_label(name: &WitName) -> Label {
    Label::Name {
        key: key(&base(name)),
    }
}

/// The label for a name's version: its track's, or its exact version's.
/// `None` for an unversioned name.
pub fn version_label(name: &WitName) -> Option<Label> {
    let v = name.version.as_ref()?;
    Some(match Track::of(v) {
        Track::Exact(v) => Label::Exact {
            key: key(&format!("{}.v{}", base(name), version_fragment(&v))),
        },
        track => Label::Track {
            key: key(&format!("{}.v{track}", base(name))),
            value: within_track(v),
        },
    })
}

/// The label saying a host runs an OCI `os` (`wasip1`, `wasip2`, `wasip3`).
pub fn os_key(os: &str) -> String {
    key(&format!("os.{os}"))
}

/// A host's labels: each `os` it runs, each name it advertises (any
/// version), and per track the highest version it has. Keys sorted.
pub fn node_labels(host: &Host) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    for os in host.oses() {
        labels.insert(os_key(os), TRUE.to_string());
    }
    for name in host.features() {
        if let Label::Name { key } = name_label(name) {
            labels.insert(key, TRUE.to_string());
        }
        match version_label(name) {
            Some(Label::Track { key, value }) => {
                let best = labels
                    .get(&key)
                    .and_then(|v| v.parse::<u64>().ok())
                    .map_or(value, |old| old.max(value));
                labels.insert(key, best.to_string());
            }
            Some(Label::Exact { key }) => {
                labels.insert(key, TRUE.to_string());
            }
            _ => {}
        }
    }
    labels
}

/// The labels as a Node Feature Discovery local feature file (for its
/// `features.d` directory): one `key=value` per line, after a comment
/// naming the host.
pub fn nfd_feature_file(host: &Host) -> String {
    let mut out = format!(
        "# worldfit {}: WebAssembly worlds of host `{}` (docs/FORMAT.md)\n",
        env!("CARGO_PKG_VERSION"),
        host.name
    );
    for (k, v) in node_labels(host) {
        out.push_str(&format!("{k}={v}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> WitName {
        s.parse().unwrap()
    }

    /// Kubernetes' rule for a label name (after the prefix).
    fn valid_name(name: &str) -> bool {
        name.len() <= MAX_NAME
            && name.starts_with(|c: char| c.is_ascii_alphanumeric())
            && name.ends_with(|c: char| c.is_ascii_alphanumeric())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    }

    #[test]
    fn tracks_go_in_the_key_and_versions_in_the_value() {
        let k = |l: Option<Label>| l.unwrap();
        assert_eq!(
            k(version_label(&n("wasi:cli/command@0.2.12"))),
            Label::Track {
                key: format!("{PREFIX}wasi_cli.command.v0.2"),
                value: 12
            }
        );
        assert_eq!(
            k(version_label(&n("a:b/c@1.3.4"))),
            Label::Track {
                key: format!("{PREFIX}a_b.c.v1"),
                value: 3_000_004
            }
        );
        assert_eq!(
            k(version_label(&n("wasi:http/types@0.3.0-rc-2025-09-16"))),
            Label::Exact {
                key: format!("{PREFIX}wasi_http.types.v0.3.0-rc-2025-09-16")
            }
        );
        assert_eq!(
            k(version_label(&n("a:b/c@0.0.3+build.1"))),
            Label::Exact {
                key: format!("{PREFIX}a_b.c.v0.0.3_build.1")
            }
        );
        assert_eq!(version_label(&n("a:b/c")), None);
    }

    #[test]
    fn long_names_get_a_stable_hashed_key_kubernetes_accepts() {
        let long = format!("wasi:{}/{}@0.2.0", "p".repeat(40), "i".repeat(40));
        let Some(Label::Track { key: a, .. }) = version_label(&n(&long)) else {
            panic!()
        };
        let name = a.strip_prefix(PREFIX).unwrap();
        assert!(valid_name(name), "{name}");
        assert_eq!(name.len(), MAX_NAME);
        // Stable, and distinct from a name that shares the first 52 characters.
        assert_eq!(
            version_label(&n(&long)).unwrap(),
            version_label(&n(&long)).unwrap()
        );
        let other = format!("wasi:{}/{}x@0.2.0", "p".repeat(40), "i".repeat(40));
        assert_ne!(
            version_label(&n(&other)).unwrap(),
            version_label(&n(&long)).unwrap()
        );
    }

    #[test]
    fn every_label_of_the_built_in_host_is_valid() {
        let labels = node_labels(&Host::wasmtime());
        assert!(labels.len() > 20, "{labels:?}");
        for (k, v) in &labels {
            let name = k.strip_prefix(PREFIX).unwrap();
            assert!(valid_name(name), "{k}");
            assert!(valid_name(v), "{k}={v}");
        }
        assert_eq!(labels[&os_key("wasip2")], "true");
        assert_eq!(labels[&format!("{PREFIX}wasi_cli.command.v0.2")], "12");
    }
}
