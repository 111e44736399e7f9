//! WIT names (`ns:pkg/item@version`) and the semver *track* rule that
//! wasmtime's linker uses to decide which versions may stand in for each other.
//!
//! The track rule is the heart of every decision worldfit makes: a component
//! importing `wasi:http/types@0.2.10` is served by a host that has
//! `wasi:http/types@0.2.6` (same track `0.2`, then types decide), but never by
//! one that only has `@0.3.0`.

use anyhow::{Context, Result, bail};
use semver::Version;
use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// A fully qualified WIT name: `namespace:package/item@version`.
///
/// `item` is an interface or a world name; it is absent for a bare package
/// (`wasi:cli@0.2.0`). The version is optional, as in WIT.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WitName {
    /// The namespace, e.g. `wasi`.
    pub namespace: String,
    /// The package name, e.g. `cli`.
    pub package: String,
    /// The interface or world name, e.g. `environment`.
    pub item: Option<String>,
    /// The package version, e.g. `0.2.6`.
    pub version: Option<Version>,
}

/// The set of versions a linker treats as interchangeable for one name.
///
/// wasmtime (`wasmtime::component::Linker`) registers every versioned name
/// under an "alternate" key: `x` for `x.y.z` with x≠0, `0.y` for `0.y.z` with
/// y≠0. `0.0.z` and prereleases have no alternate key and match only exactly.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Track {
    /// `x.*.*` with x ≠ 0.
    Major(u64),
    /// `0.y.*` with y ≠ 0.
    Minor(u64),
    /// A version that is only compatible with itself.
    Exact(Version),
}

impl Track {
    /// The track a version belongs to.
    pub fn of(version: &Version) -> Track {
        if !version.pre.is_empty() {
            Track::Exact(version.clone())
        } else if version.major != 0 {
            Track::Major(version.major)
        } else if version.minor != 0 {
            Track::Minor(version.minor)
        } else {
            Track::Exact(version.clone())
        }
    }

    /// Whether this track only admits one exact version.
    pub fn is_exact(&self) -> bool {
        matches!(self, Track::Exact(_))
    }
}

impl fmt::Display for Track {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Track::Major(x) => write!(f, "{x}"),
            Track::Minor(y) => write!(f, "0.{y}"),
            Track::Exact(v) => write!(f, "{v}"),
        }
    }
}

/// Whether a linker would let `provided` stand in for `wanted`: the same
/// version, or both on the same (non-exact) track.
pub fn track_compatible(wanted: Option<&Version>, provided: Option<&Version>) -> bool {
    match (wanted, provided) {
        (None, None) => true,
        (Some(a), Some(b)) => a == b || (!Track::of(a).is_exact() && Track::of(a) == Track::of(b)),
        _ => false,
    }
}

impl WitName {
    /// `ns:pkg/item`, without the version: the key names are grouped by.
    pub fn unversioned(&self) -> String {
        match &self.item {
            Some(item) => format!("{}:{}/{}", self.namespace, self.package, item),
            None => format!("{}:{}", self.namespace, self.package),
        }
    }

    /// Whether two names differ at most in their version (no allocation,
    /// unlike comparing [`WitName::unversioned`]).
    pub fn same_name(&self, other: &WitName) -> bool {
        self.namespace == other.namespace
            && self.package == other.package
            && self.item == other.item
    }

    /// The semver track of this name's version, if it has one.
    pub fn track(&self) -> Option<Track> {
        self.version.as_ref().map(Track::of)
    }

    /// The same name at another version.
    pub fn with_version(&self, version: Option<Version>) -> WitName {
        WitName {
            version,
            ..self.clone()
        }
    }

    /// Whether `other` names the same item on the same track.
    pub fn same_track(&self, other: &WitName) -> bool {
        self.namespace == other.namespace
            && self.package == other.package
            && self.item == other.item
            && track_compatible(self.version.as_ref(), other.version.as_ref())
    }
}

/// Orders versions with "no version" lowest, for picking the highest provider.
pub fn cmp_versions(a: Option<&Version>, b: Option<&Version>) -> Ordering {
    match (a, b) {
        (Some(a), Some(b)) => a.cmp(b),
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

fn check_label(label: &str, what: &str, whole: &str) -> Result<()> {
    // WIT identifiers: kebab-case words of ASCII letters and digits, each word
    // starting with a letter (an optional leading `%` escapes keywords).
    let body = label.strip_prefix('%').unwrap_or(label);
    let ok = !body.is_empty()
        && body.split('-').all(|word| {
            let mut chars = word.chars();
            matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
                && chars.all(|c| c.is_ascii_alphanumeric())
        });
    if !ok {
        bail!("invalid {what} `{label}` in WIT name `{whole}`");
    }
    Ok(())
}

impl FromStr for WitName {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<WitName> {
        let (path, version) = match s.split_once('@') {
            Some((path, version)) => {
                let version = Version::parse(version)
                    .with_context(|| format!("invalid version `{version}` in WIT name `{s}`"))?;
                (path, Some(version))
            }
            None => (s, None),
        };
        let Some((namespace, rest)) = path.split_once(':') else {
            bail!("WIT name `{s}` has no namespace (expected `ns:pkg/item@version`)");
        };
        let (package, item) = match rest.split_once('/') {
            Some((package, item)) => (package, Some(item)),
            None => (rest, None),
        };
        check_label(namespace, "namespace", s)?;
        check_label(package, "package", s)?;
        if let Some(item) = item {
            check_label(item, "item", s)?;
        }
        Ok(WitName {
            namespace: namespace.to_string(),
            package: package.to_string(),
            item: item.map(str::to_string),
            version,
        })
    }
}

impl fmt::Display for WitName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.unversioned())?;
        if let Some(v) = &self.version {
            write!(f, "@{v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_full_names() {
        let n: WitName = "wasi:http/types@0.2.10".parse().unwrap();
        assert_eq!(n.namespace, "wasi");
        assert_eq!(n.package, "http");
        assert_eq!(n.item.as_deref(), Some("types"));
        assert_eq!(n.version, Some(Version::new(0, 2, 10)));
        assert_eq!(n.to_string(), "wasi:http/types@0.2.10");
        let p: WitName = "wasi:cli@0.3.0-rc-2025-08-15".parse().unwrap();
        assert_eq!(p.item, None);
        assert_eq!(p.to_string(), "wasi:cli@0.3.0-rc-2025-08-15");
    }

    #[test]
    fn rejects_malformed_names() {
        for bad in [
            "",
            "wasi",
            "wasi:",
            ":cli",
            "wasi:cli/",
            "wasi:cli/x@",
            "wasi:cli/x@1.0",
            "Wasi:-cli/x",
            "wasi:cli/9x",
        ] {
            assert!(bad.parse::<WitName>().is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn tracks_follow_the_linker_rule() {
        let t = |s: &str| Track::of(&Version::parse(s).unwrap());
        assert_eq!(t("1.2.3"), Track::Major(1));
        assert_eq!(t("0.2.6"), Track::Minor(2));
        assert_eq!(t("0.0.3"), Track::Exact(Version::new(0, 0, 3)));
        assert!(t("0.3.0-rc-2025-08-15").is_exact());
        assert!(t("2.0.0-alpha").is_exact());
    }

    fn version() -> impl Strategy<Value = Version> {
        (0u64..4, 0u64..4, 0u64..4, prop::option::of("[a-z]{1,3}")).prop_map(|(a, b, c, pre)| {
            let mut v = Version::new(a, b, c);
            if let Some(pre) = pre {
                v.pre = semver::Prerelease::new(&pre).unwrap();
            }
            v
        })
    }

    proptest! {
        /// The rule, restated independently: compatible iff equal, or neither is a
        /// prerelease and they share the first non-zero component (and its position).
        #[test]
        fn compatibility_matches_the_rule(a in version(), b in version()) {
            let by_rule = a == b || (a.pre.is_empty() && b.pre.is_empty() && (
                (a.major != 0 && a.major == b.major)
                || (a.major == 0 && b.major == 0 && a.minor != 0 && a.minor == b.minor)));
            prop_assert_eq!(track_compatible(Some(&a), Some(&b)), by_rule);
        }

        #[test]
        fn compatibility_is_an_equivalence(a in version(), b in version(), c in version()) {
            prop_assert!(track_compatible(Some(&a), Some(&a)));
            prop_assert_eq!(track_compatible(Some(&a), Some(&b)), track_compatible(Some(&b), Some(&a)));
            if track_compatible(Some(&a), Some(&b)) && track_compatible(Some(&b), Some(&c)) {
                prop_assert!(track_compatible(Some(&a), Some(&c)));
            }
        }

        #[test]
        fn names_round_trip(ns in "[a-z][a-z0-9]{0,5}", pkg in "[a-z][a-z0-9]{0,5}(-[a-z][a-z0-9]{0,3})?",
                            item in prop::option::of("[a-z][a-z0-9]{0,5}"), v in prop::option::of(version())) {
            let name = WitName { namespace: ns, package: pkg, item, version: v };
            let parsed: WitName = name.to_string().parse().unwrap();
            prop_assert_eq!(parsed, name);
        }
    }
}
