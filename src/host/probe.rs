//! Measuring a runtime: which probe binaries does it link?
//!
//! [`probe`] asks the questions and reads the answers into a [`Probed`]
//! (what one invocation of a runtime drives, provides and enables). How a
//! probe is linked is the caller's: [`super::command`] runs an executable
//! (`wasmtime run PROBE.wasm`), while a shim links each probe with its own
//! wasmtime `Linker` and engine, of whatever version: only bytes and a
//! yes/no cross the boundary, never types.
//!
//! The order keeps the count of probes low: entry points first (a runtime
//! that drives nothing is not a runtime), then one probe per WASI package
//! and version, split into one probe per interface only where a package
//! fails, and for each interface the releases that change its items
//! (`@since` gates), newest first.

use super::probe_wasm::{
    ComponentProbe, CoreSupport, P2_WIT_VERSION, P3_WIT_VERSION, component_feature_section,
    core_feature_wat, core_probe, wasi_interfaces,
};
use crate::engine_features::EngineFeature;
use crate::wit_name::WitName;
use anyhow::{Result, bail};
use semver::Version;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The WASI 0.3 release candidates runtimes shipped before 0.3.0, newest
/// first. Each is a prerelease, which a linker matches only exactly, so each
/// is asked about on its own; their items are taken to be 0.3.0's.
pub const P3_PRERELEASES: &[&str] = &[
    "0.3.0-rc-2026-03-15",
    "0.3.0-rc-2026-01-06",
    "0.3.0-rc-2025-09-16",
];

/// The 0.3 interface each release is first asked about.
const P3_CANARY: &str = "wasi:random/random";

/// One question for the runtime: a binary, and what linking it would show.
#[derive(Debug, Clone)]
pub struct Probe {
    /// What the probe asks, for people: `drives wasi:cli/run@0.2.12`.
    pub question: String,
    /// The component or core module to link (and, for a command, run: it
    /// returns at once with success).
    pub bytes: Vec<u8>,
}

/// What the runtime did with a probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeOutcome {
    /// It linked and instantiated the probe (and, for a command, ran it
    /// to a successful exit).
    Linked,
    /// It refused the probe; the runtime's own words.
    Refused(String),
}

/// What one invocation of a runtime was measured to support.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Probed {
    /// Entry points it drives, e.g. `wasi:cli/run@0.2.12`.
    pub drives: Vec<WitName>,
    /// WASI interfaces it provides, each at the newest release whose items
    /// it links (`wasi:cli/exit@0.2.11` when `exit-with-code` is missing).
    pub provides: Vec<WitName>,
    /// Core-module kinds it runs.
    pub core: Vec<CoreSupport>,
    /// Engine features it enables (sorted).
    pub engine: Vec<EngineFeature>,
    /// How many probes were linked or refused.
    pub probes: usize,
}

/// Runs `probes` through `link`, `parallel` at a time, in order of results.
fn batch<F>(link: &F, parallel: usize, probes: &[Probe], count: &AtomicUsize) -> Vec<ProbeOutcome>
where
    F: Fn(&Probe) -> ProbeOutcome + Sync,
{
    count.fetch_add(probes.len(), Ordering::Relaxed);
    if parallel <= 1 || probes.len() <= 1 {
        return probes.iter().map(link).collect();
    }
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<ProbeOutcome>>> = Mutex::new(vec![None; probes.len()]);
    std::thread::scope(|s| {
        for _ in 0..parallel.min(probes.len()) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(p) = probes.get(i) else { break };
                    let outcome = link(p);
                    results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(outcome);
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .map(|o| o.unwrap_or_else(|| ProbeOutcome::Refused("not run".into())))
        .collect()
}

fn name(s: &str) -> WitName {
    s.parse().expect("probe names are valid WIT names")
}

fn component(question: String, p: &ComponentProbe) -> Result<Probe> {
    Ok(Probe {
        question,
        bytes: p.build()?,
    })
}

/// A probe asking whether the runtime provides `interfaces` (each at its
/// release), exporting `vehicle`.
fn provides_probe(vehicle: &WitName, interfaces: Vec<WitName>) -> Result<Probe> {
    let first = &interfaces[0];
    let question = if interfaces.len() == 1 {
        format!("provides {first}")
    } else {
        let v = first
            .version
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default();
        format!("provides {}:{}@{v}", first.namespace, first.package)
    };
    component(
        question,
        &ComponentProbe {
            export: vehicle.clone(),
            imports: interfaces,
            async_builtin: false,
        },
    )
}

/// Measures a runtime through `link`, which links (and for a command runs)
/// one probe and says what happened. `parallel` probes are in flight at once
/// (1 for a linker that isn't thread-safe, or a server on a fixed port).
///
/// Errors when the runtime links none of the entry-point probes: then it
/// is not a wasm runtime, or not one that runs components and commands;
/// the error quotes what it said.
pub fn probe<F>(link: F, parallel: usize) -> Result<Probed>
where
    F: Fn(&Probe) -> ProbeOutcome + Sync,
{
    let count = AtomicUsize::new(0);
    let mut out = Probed::default();

    // 1. Entry points, each exported alone.
    let mut entry_names = vec![
        name(&format!("wasi:cli/run@{P2_WIT_VERSION}")),
        name(&format!("wasi:http/incoming-handler@{P2_WIT_VERSION}")),
    ];
    for v in std::iter::once(P3_WIT_VERSION).chain(P3_PRERELEASES.iter().copied()) {
        entry_names.push(name(&format!("wasi:cli/run@{v}")));
        entry_names.push(name(&format!("wasi:http/handler@{v}")));
    }
    let mut probes = Vec::new();
    for e in &entry_names {
        let p = ComponentProbe {
            export: e.clone(),
            imports: vec![],
            async_builtin: false,
        };
        probes.push(component(format!("drives {e}"), &p)?);
    }
    // One at a time: a server runtime links several of these, and two
    // servers on one address would refuse each other.
    let outcomes = batch(&link, 1, &probes, &count);
    let mut refusals = Vec::new();
    for (e, o) in entry_names.iter().zip(&outcomes) {
        match o {
            ProbeOutcome::Linked => out.drives.push(e.clone()),
            ProbeOutcome::Refused(why) => refusals.push(why.clone()),
        }
    }
    // Core modules run without any entry-point world.
    out.core = linked_modules(&link, parallel, &count, &CoreSupport::ALL, |c| {
        (format!("runs core modules: {c:?}"), c.wat())
    });
    if out.drives.is_empty() && out.core.is_empty() {
        let said = refusals
            .iter()
            .find(|r| !r.is_empty())
            .cloned()
            .unwrap_or_else(|| "nothing".into());
        bail!(
            "it linked none of the {} entry-point probes, so it is not a runtime that runs WASI components or modules (it said: {said})",
            probes.len()
        );
    }

    // 2. The vehicle: the entry point every later component probe exports;
    //    a synchronous (0.2) one where the runtime drives one.
    let vehicle = out
        .drives
        .iter()
        .find(|d| d.version.as_ref().is_some_and(|v| v.minor == 2))
        .or(out.drives.first())
        .cloned();
    if let Some(vehicle) = &vehicle {
        out.provides = provided_interfaces(&link, parallel, vehicle, &count)?;
        let p = ComponentProbe {
            export: vehicle.clone(),
            imports: vec![],
            async_builtin: true,
        };
        let cm_async = component("enables component-model-async".into(), &p)?;
        if batch(&link, parallel, &[cm_async], &count)[0] == ProbeOutcome::Linked
            || out
                .drives
                .iter()
                .any(|d| d.version.as_ref().is_some_and(|v| v.minor == 3))
        {
            out.engine.push(EngineFeature::ComponentModelAsync);
        }
        // Other component-model features: the plain vehicle plus one
        // section that needs the feature.
        let plain = ComponentProbe {
            async_builtin: false,
            ..p
        }
        .build()?;
        let (features, probes): (Vec<EngineFeature>, Vec<Probe>) = EngineFeature::ALL
            .into_iter()
            .filter_map(|f| {
                let mut bytes = plain.clone();
                bytes.extend(component_feature_section(f)?);
                let question = format!("enables {f}");
                Some((f, Probe { question, bytes }))
            })
            .unzip();
        for (f, outcome) in features
            .into_iter()
            .zip(batch(&link, parallel, &probes, &count))
        {
            if outcome == ProbeOutcome::Linked {
                out.engine.push(f);
            }
        }
    }

    // 3. Core features, as core modules, where the runtime runs them.
    if out.core.contains(&CoreSupport::Preview1) {
        let core: Vec<EngineFeature> = EngineFeature::ALL
            .into_iter()
            .filter(|f| core_feature_wat(*f).is_some())
            .collect();
        let enabled = linked_modules(&link, parallel, &count, &core, |f| {
            (
                format!("enables {f}"),
                core_feature_wat(f).expect("filtered above"),
            )
        });
        out.engine.extend(enabled);
    }
    out.engine.sort();
    out.provides.sort();
    out.drives.sort();
    out.probes = count.load(Ordering::Relaxed);
    Ok(out)
}

/// The items whose core-module probe (`probe_of` gives its question and
/// text) the runtime links, in their order.
fn linked_modules<F, T: Copy>(
    link: &F,
    parallel: usize,
    count: &AtomicUsize,
    items: &[T],
    probe_of: impl Fn(T) -> (String, &'static str),
) -> Vec<T>
where
    F: Fn(&Probe) -> ProbeOutcome + Sync,
{
    let probes: Vec<Probe> = items
        .iter()
        .map(|item| {
            let (question, wat) = probe_of(*item);
            Probe {
                question,
                bytes: core_probe(wat),
            }
        })
        .collect();
    items
        .iter()
        .zip(batch(link, parallel, &probes, count))
        .filter_map(|(item, o)| (o == ProbeOutcome::Linked).then_some(*item))
        .collect()
}

/// The WASI interfaces the runtime provides, with `vehicle` as the export of
/// every probe.
fn provided_interfaces<F>(
    link: &F,
    parallel: usize,
    vehicle: &WitName,
    count: &AtomicUsize,
) -> Result<Vec<WitName>>
where
    F: Fn(&Probe) -> ProbeOutcome + Sync,
{
    let mut provided = Vec::new();
    // WASI 0.2: each interface at its item-changing releases.
    let p2 = wasi_interfaces(false);
    // WASI 0.3: 0.3.0 and each release candidate, all with 0.3.0's items.
    let p3 = wasi_interfaces(true);
    let mut p3_versions: Vec<Version> = vec![P3_WIT_VERSION.parse()?];
    for rc in P3_PRERELEASES {
        p3_versions.push(rc.parse()?);
    }

    // Each (package, version) group: one probe importing all its interfaces.
    let mut groups: Vec<Vec<WitName>> = Vec::new();
    let mut by_package = |list: &[(String, Vec<Version>)], versions: &[Version]| {
        for version in versions {
            let mut packages: Vec<(String, Vec<WitName>)> = Vec::new();
            for (iface, _) in list {
                let n = name(&format!("{iface}@{version}"));
                let pkg = format!("{}:{}", n.namespace, n.package);
                match packages.iter_mut().find(|(p, _)| *p == pkg) {
                    Some((_, v)) => v.push(n),
                    None => packages.push((pkg, vec![n])),
                }
            }
            groups.extend(packages.into_iter().map(|(_, interfaces)| interfaces));
        }
    };
    // A runtime implements a WASI release whole or not at all, so each 0.3
    // version is first asked about through one small interface (the
    // canary, with no streams or async functions); a release whose canary
    // doesn't link is not asked about further (about 25 probes saved for
    // each release a runtime lacks).
    let canary_probes = p3_versions
        .iter()
        .map(|v| provides_probe(vehicle, vec![name(&format!("{P3_CANARY}@{v}"))]))
        .collect::<Result<Vec<_>>>()?;
    let canaries = batch(link, parallel, &canary_probes, count);
    let p3_versions: Vec<Version> = p3_versions
        .into_iter()
        .zip(canaries)
        .filter_map(|(v, o)| (o == ProbeOutcome::Linked).then_some(v))
        .collect();
    let p2_newest: Version = P2_WIT_VERSION.parse()?;
    by_package(&p2, std::slice::from_ref(&p2_newest));
    by_package(&p3, &p3_versions);

    let probes = groups
        .iter()
        .map(|g| provides_probe(vehicle, g.clone()))
        .collect::<Result<Vec<_>>>()?;
    let outcomes = batch(link, parallel, &probes, count);

    // Interfaces of failed groups, one at a time: for 0.2 walk down the
    // gates; a 0.3 version is one question per interface.
    let mut singles: Vec<(WitName, Vec<Version>)> = Vec::new();
    for (g, o) in groups.iter().zip(outcomes) {
        if o == ProbeOutcome::Linked {
            provided.extend(g.iter().cloned());
            continue;
        }
        for n in g {
            let v = n.version.clone().expect("versioned");
            let gates = if v.minor == 2 {
                p2.iter()
                    .find(|(i, _)| *i == n.unversioned())
                    .map(|(_, g)| g.clone())
                    .unwrap_or_default()
            } else {
                vec![v]
            };
            singles.push((n.clone(), gates));
        }
    }
    // Walk the gates in lockstep: round r asks each interface about its
    // r-th newest gate, until it links or runs out.
    let mut round = 0;
    let mut open: Vec<usize> = (0..singles.len()).collect();
    while !open.is_empty() {
        let asks: Vec<(usize, Version)> = open
            .iter()
            .filter_map(|&i| singles[i].1.get(round).map(|v| (i, v.clone())))
            .collect();
        if asks.is_empty() {
            break;
        }
        let probes = asks
            .iter()
            .map(|(i, v)| {
                provides_probe(vehicle, vec![singles[*i].0.with_version(Some(v.clone()))])
            })
            .collect::<Result<Vec<_>>>()?;
        let outcomes = batch(link, parallel, &probes, count);
        let mut still_open = Vec::new();
        for ((i, v), o) in asks.into_iter().zip(outcomes) {
            if o == ProbeOutcome::Linked {
                let (n, gates) = &singles[i];
                provided.push(n.with_version(Some(newest_release_with(&v, gates))));
            } else {
                still_open.push(i);
            }
        }
        open = still_open;
        round += 1;
    }
    Ok(provided)
}

/// The newest release whose items are exactly those of gate `linked`: the
/// release just before the next newer gate (`0.2.11` when `0.2.12` added an
/// item that didn't link), or `linked` itself when it is the newest.
fn newest_release_with(linked: &Version, gates: &[Version]) -> Version {
    let newer = gates.iter().filter(|g| *g > linked).min();
    match newer {
        Some(g) if g.patch > 0 && g.pre.is_empty() => Version::new(g.major, g.minor, g.patch - 1),
        _ => linked.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_release_steps_back_from_the_gate_that_failed() {
        let gates: Vec<Version> = ["0.2.12", "0.2.0"]
            .iter()
            .map(|v| v.parse().unwrap())
            .collect();
        assert_eq!(
            newest_release_with(&"0.2.12".parse().unwrap(), &gates).to_string(),
            "0.2.12"
        );
        assert_eq!(
            newest_release_with(&"0.2.0".parse().unwrap(), &gates).to_string(),
            "0.2.11"
        );
    }

    #[test]
    fn every_probe_builds() {
        for e in [
            "wasi:cli/run@0.2.12",
            "wasi:http/incoming-handler@0.2.12",
            "wasi:cli/run@0.3.0",
            "wasi:http/handler@0.3.0-rc-2026-03-15",
        ] {
            ComponentProbe {
                export: name(e),
                imports: vec![],
                async_builtin: true,
            }
            .build()
            .unwrap();
        }
        for (iface, gates) in wasi_interfaces(false)
            .into_iter()
            .chain(wasi_interfaces(true))
        {
            for g in gates {
                let n = name(&format!("{iface}@{g}"));
                ComponentProbe {
                    export: name("wasi:cli/run@0.2.12"),
                    imports: vec![n.clone()],
                    async_builtin: false,
                }
                .build()
                .unwrap_or_else(|e| panic!("{n}: {e:#}"));
            }
        }
        for c in CoreSupport::ALL {
            core_probe(c.wat());
        }
        for f in EngineFeature::ALL {
            if let Some(wat) = core_feature_wat(f) {
                core_probe(wat);
            }
            if let Some(section) = component_feature_section(f) {
                let mut bytes = ComponentProbe {
                    export: name("wasi:cli/run@0.2.12"),
                    imports: vec![],
                    async_builtin: false,
                }
                .build()
                .unwrap();
                bytes.extend(section);
                let uses = crate::engine_features::scan(&bytes).unwrap();
                assert!(
                    uses.iter().any(|u| u.feature == f),
                    "{f}'s probe section doesn't need it: {uses:?}"
                );
            }
        }
    }
}
