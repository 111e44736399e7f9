//! The cheapest level of the verdict: judging an index entry by its
//! `os.features` alone, before downloading anything.
//!
//! Each feature is *yes* (the host has a track-compatible name at that
//! version or newer), *maybe* (track-compatible, but the host's version is
//! older: a component built against 0.2.6 often runs on 0.2.0 because it only
//! uses old functions; only the types can tell) or *no*. An entry is as good
//! as its worst feature.
//!
//! "Features" here are always the index's `os.features` strings. What a
//! binary needs of the *engine* (component-model async, GC, ...) is an
//! engine feature, in [`crate::engine_features`]; it reaches an index as an
//! `os.features` string too (`wasm:feature/NAME`), judged here like any other.

use crate::host::Host;
use crate::wit_name::WitName;
use serde::Serialize;

/// How well a host meets one feature, or a set of them (the worst one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// The host lacks it.
    No,
    /// The host has it on the same track at an older version.
    Maybe,
    /// The host has it at that version or newer.
    Yes,
}

/// One feature's level and the host name that decided it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OsFeatureLevel {
    /// The feature as written in the index.
    pub feature: String,
    /// How the host meets it.
    pub level: Level,
    /// The host's best name on the same track, if any.
    pub host_has: Option<String>,
}

/// Judges a set of platform features against a host's advertised features.
/// An empty set is *yes*: the entry asks for nothing.
pub fn os_feature_levels(features: &[String], host: &Host) -> (Level, Vec<OsFeatureLevel>) {
    let advertised = host.features();
    let levels: Vec<OsFeatureLevel> = features.iter().map(|f| level_of(f, advertised)).collect();
    let worst = levels.iter().map(|l| l.level).min().unwrap_or(Level::Yes);
    (worst, levels)
}

/// Judges one platform feature against a host's advertised features.
pub fn os_feature_level(feature: &str, host: &Host) -> OsFeatureLevel {
    level_of(feature, host.features())
}

fn level_of(feature: &str, advertised: &[WitName]) -> OsFeatureLevel {
    let no = OsFeatureLevel {
        feature: feature.to_string(),
        level: Level::No,
        host_has: None,
    };
    let Ok(wanted) = feature.parse::<WitName>() else {
        return no;
    };
    let same_name = advertised.iter().filter(|h| h.same_name(&wanted));
    // An unversioned feature asks only for the name.
    let best = match &wanted.version {
        None => same_name.max_by(|a, b| a.version.cmp(&b.version)),
        Some(_) => same_name
            .filter(|h| h.same_track(&wanted))
            .max_by(|a, b| a.version.cmp(&b.version)),
    };
    match best {
        None => no,
        Some(h) => {
            let level = match (&wanted.version, &h.version) {
                (Some(w), Some(v)) if v < w => Level::Maybe,
                _ => Level::Yes,
            };
            OsFeatureLevel {
                feature: feature.to_string(),
                level,
                host_has: Some(h.to_string()),
            }
        }
    }
}
