//! The type-level verdict: does a component (or wasip1 module) fit a host?
//!
//! Mirrors what wasmtime's linker does at instantiation, without running
//! anything: each import is looked up by name on its semver track (the host's
//! highest version on that track wins), then every function and type the
//! component uses must exist there with the same type; and the host must be
//! able to drive one of the component's exports. Incompatibility is a value,
//! not an error: it carries every problem found, each saying what the host has
//! instead.

use crate::component::{Component, CoreModule, ItemName, WASIP1_MODULE, Wasm};
use crate::engine_features::{self, FeatureUse};
use crate::host::probe_wasm::CoreSupport;
use crate::host::{Host, HostWorld};
use crate::types::{Comparer, Side, render_function};
use crate::wasip1;
use crate::wit_name::{Track, WitName, cmp_versions};
use serde::Serialize;
use wit_parser::{InterfaceId, Resolve, TypeDefKind, WorldItem, WorldKey};

/// What kind of mismatch a problem is. Serialized in kebab-case; the set is
/// part of the `--json` contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProblemKind {
    /// The host has no interface of that name at any version.
    MissingInterface,
    /// The host has the interface on the same track, without this function.
    MissingFunction,
    /// The function exists with another signature.
    FunctionMismatch,
    /// The host's interface lacks a type (often a resource) the component uses.
    MissingType,
    /// The type exists with another structure.
    TypeMismatch,
    /// The host has the interface, but only on other semver tracks.
    VersionMismatch,
    /// A prerelease version, which matches only itself, that the host lacks.
    PrereleaseMismatch,
    /// The component exports nothing the host world can drive.
    NoEntryPoint,
    /// A core-module import no wasip1 host provides.
    UnsupportedImport,
    /// The host cannot run this kind of binary at all.
    UnsupportedKind,
    /// The binary needs an engine feature the host doesn't enable
    /// (`wasm:feature/component-model-map`): the host's engine refuses it
    /// before any import is looked at.
    UnsupportedFeature,
    /// The embedded wasmtime could not compile the binary.
    CompileFailed,
    /// Linking or instantiating in the embedded wasmtime failed (the detail
    /// is wasmtime's own message): a trap in a start function, a limit.
    InstantiateFailed,
    /// Instantiation did not finish within the time limit.
    TimedOut,
    /// A memory grew past the memory limit while instantiating.
    MemoryLimit,
}

/// One reason a binary doesn't fit a host world.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// What kind of mismatch this is.
    pub kind: ProblemKind,
    /// The item concerned: `ns:pkg/iface@ver`, with `#func` for a function or type.
    pub name: String,
    /// What the component needs and what the host has instead.
    pub detail: String,
}

/// The type-level answer for a binary and a host profile.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    /// Whether some host world runs the binary.
    pub compatible: bool,
    /// The host world that matched, when compatible.
    pub world: Option<String>,
    /// When incompatible: the host world with the fewest problems, whose
    /// problems are listed.
    pub closest: Option<String>,
    /// Every problem found against `closest` (empty when compatible).
    pub problems: Vec<Problem>,
}

/// Checks a decoded binary against every world of a host.
pub fn check(wasm: &Wasm, host: &Host) -> Verdict {
    let mut verdict = match wasm {
        Wasm::Component(c) => check_component(c, host),
        Wasm::Module(m) => check_module(m, host),
    };
    // The engine refuses a binary before its linker sees it, so a missing
    // engine feature makes every world fail alike: the world that fit, or
    // the closest, is where the problems are listed.
    let missing = engine_features::missing(wasm.engine_features(), &host.engine);
    if !missing.is_empty() {
        if verdict.compatible {
            verdict.compatible = false;
            verdict.closest = verdict.world.take();
        }
        let features: Vec<Problem> = missing
            .into_iter()
            .map(|u| unsupported_feature(u, host))
            .collect();
        verdict.problems.splice(0..0, features);
    }
    verdict
}

/// The problem for a missing engine feature, saying how to turn it on.
fn unsupported_feature(u: &FeatureUse, host: &Host) -> Problem {
    let f = u.feature;
    let why = if host.builtin {
        " (wasmtime 48 keeps it off by default; worldfit's embedded engine does too)"
    } else {
        ""
    };
    Problem {
        kind: ProblemKind::UnsupportedFeature,
        name: f.os_feature(),
        detail: format!(
            "needs the engine feature `{f}` ({}); host `{}` doesn't enable it{why}: on the wasmtime CLI `{}`, when embedding wasmtime `{}`",
            u.at,
            host.name,
            f.cli_flag(),
            f.config_method()
        ),
    }
}

/// How far a host world's entry point is from what a component exports:
/// the same interface on the same track (0), the same interface at another
/// version (1, e.g. a WASI 0.3 release candidate), or something else (2).
/// The closest world to explain is the first of the lowest class with the
/// fewest problems: a service is explained against the world that serves
/// it, not a command world that happens to have fewer problems.
fn entry_class(c: &Component, world: &HostWorld) -> u8 {
    let exported = |d: &WitName, same: &dyn Fn(&WitName, &WitName) -> bool| {
        c.exports()
            .any(|(e, _)| matches!(&e, ItemName::Interface(e) if same(d, e)))
    };
    let driven = world.drives.iter().filter_map(|(d, _)| match d {
        ItemName::Interface(d) => Some(d),
        ItemName::Plain(_) => None,
    });
    driven
        .map(|d| {
            if exported(d, &|d, e| d.same_track(e)) {
                0
            } else if exported(d, &|d, e| d.unversioned() == e.unversioned()) {
                1
            } else {
                2
            }
        })
        .max()
        .unwrap_or(0)
}

fn check_component(c: &Component, host: &Host) -> Verdict {
    // Entry points first (cheap): only worlds in the closest class of entry
    // point (see `entry_class`) can fit or be the closest, so only theirs get
    // their imports checked. A runtime profile has a world per invocation
    // and entry point; most of them drive what the component doesn't export.
    let entries: Vec<(&HostWorld, Vec<Problem>, u8)> = host
        .worlds
        .iter()
        .map(|world| {
            let mut problems = Vec::new();
            WorldCheck { c, host, world }.check_entry_points(&mut problems);
            let class = entry_class(c, world);
            (world, problems, class)
        })
        .collect();
    let closest_class = entries.iter().map(|(_, _, class)| *class).min();
    let mut best: Option<(&HostWorld, Vec<Problem>, (u8, usize))> = None;
    for (world, entry_problems, class) in entries {
        if Some(class) != closest_class {
            continue;
        }
        let mut problems = WorldCheck { c, host, world }.imports();
        problems.extend(entry_problems);
        if problems.is_empty() {
            return Verdict {
                compatible: true,
                world: Some(world.name.clone()),
                closest: None,
                problems,
            };
        }
        let d = (class, problems.len());
        if best.as_ref().is_none_or(|(_, _, b)| d < *b) {
            best = Some((world, problems, d));
        }
    }
    match best {
        Some((world, problems, _)) => Verdict {
            compatible: false,
            world: None,
            closest: Some(world.name.clone()),
            problems,
        },
        None => Verdict {
            compatible: false,
            world: None,
            closest: None,
            problems: vec![Problem {
                kind: ProblemKind::UnsupportedKind,
                name: "component".into(),
                detail: format!("host `{}` runs no components (it has no worlds)", host.name),
            }],
        },
    }
}

/// One component against one host world.
struct WorldCheck<'a> {
    c: &'a Component,
    host: &'a Host,
    world: &'a HostWorld,
}

impl<'a> WorldCheck<'a> {
    /// Every problem with the component's imports.
    fn imports(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        for (name, item) in self.c.imports() {
            self.check_import(&name, item, &mut problems);
        }
        problems
    }

    fn host_item(&self, key: &WorldKey) -> &'a WorldItem {
        &self.host.resolve.worlds[self.world.id].imports[key]
    }

    /// The host's interface behind a key: an interface key names it
    /// directly (a runtime profile's worlds hold nothing else); a named
    /// item is looked up in the world.
    fn host_interface(&self, key: &WorldKey, exported: bool) -> Option<InterfaceId> {
        match key {
            WorldKey::Interface(id) => Some(*id),
            WorldKey::Name(_) => {
                let world = &self.host.resolve.worlds[self.world.id];
                let items = if exported {
                    &world.exports
                } else {
                    &world.imports
                };
                match items.get(key)? {
                    WorldItem::Interface { id, .. } => Some(*id),
                    _ => None,
                }
            }
        }
    }

    fn check_import(&self, name: &ItemName, item: &WorldItem, problems: &mut Vec<Problem>) {
        match (name, item) {
            (ItemName::Interface(wanted), WorldItem::Interface { id, .. }) => {
                match find_provider(wanted, &self.world.provides, &self.world.name) {
                    Ok((have_name, key)) => {
                        if let Some(have) = self.host_interface(key, false) {
                            let cmp = Comparer {
                                want: Side(&self.c.resolve),
                                have: Side(&self.host.resolve),
                            };
                            compare_interfaces(
                                &cmp,
                                (*id, &name.to_string()),
                                (have, &have_name.to_string()),
                                Direction::Import,
                                problems,
                            );
                        }
                    }
                    Err(p) => problems.push(p),
                }
            }
            (ItemName::Plain(plain), item) => {
                let found = self
                    .world
                    .provides
                    .iter()
                    .find(|(n, _)| matches!(n, ItemName::Plain(p) if p == plain));
                let Some((_, key)) = found else {
                    let (kind, what) = match item {
                        WorldItem::Function(_) => (ProblemKind::MissingFunction, "function"),
                        WorldItem::Interface { .. } => (ProblemKind::MissingInterface, "interface"),
                        WorldItem::Type { .. } => (ProblemKind::MissingType, "type"),
                    };
                    problems.push(Problem {
                        kind,
                        name: plain.clone(),
                        detail: format!(
                            "imports {what} `{plain}`; host world `{}` has no such import",
                            self.world.name
                        ),
                    });
                    return;
                };
                let cmp = Comparer {
                    want: Side(&self.c.resolve),
                    have: Side(&self.host.resolve),
                };
                match (item, self.host_item(key)) {
                    (WorldItem::Function(f), WorldItem::Function(g)) => {
                        if !cmp.same_function(f, g) {
                            problems.push(Problem {
                                kind: ProblemKind::FunctionMismatch,
                                name: plain.clone(),
                                detail: format!(
                                    "imports `{plain}` as `{}`; host has `{}`",
                                    render_function(&self.c.resolve, f),
                                    render_function(&self.host.resolve, g)
                                ),
                            });
                        }
                    }
                    (WorldItem::Interface { id, .. }, WorldItem::Interface { id: have, .. }) => {
                        compare_interfaces(&cmp, (*id, plain), (*have, plain), Direction::Import, problems);
                    }
                    (WorldItem::Type { id, .. }, WorldItem::Type { id: have, .. }) => {
                        if !cmp.same_def(*id, *have) {
                            problems.push(Problem {
                                kind: ProblemKind::TypeMismatch,
                                name: plain.clone(),
                                detail: format!("imports type `{plain}`; the host's has another structure"),
                            });
                        }
                    }
                    _ => problems.push(Problem {
                        kind: ProblemKind::TypeMismatch,
                        name: plain.clone(),
                        detail: format!("imports `{plain}`; host world `{}` has an item of another kind by that name", self.world.name),
                    }),
                }
            }
            (ItemName::Interface(n), _) => problems.push(Problem {
                kind: ProblemKind::TypeMismatch,
                name: n.to_string(),
                detail: "imports a non-interface item under an interface name".into(),
            }),
        }
    }

    fn check_entry_points(&self, problems: &mut Vec<Problem>) {
        let exports: Vec<(ItemName, &WorldItem)> = self.c.exports().collect();
        for (driven, key) in &self.world.drives {
            let ItemName::Interface(driven_name) = driven else {
                continue;
            };
            let found = exports
                .iter()
                .find(|(n, _)| matches!(n, ItemName::Interface(n) if n.same_track(driven_name)));
            let Some((export_name, WorldItem::Interface { id: export_id, .. })) = found else {
                let has: Vec<String> = exports.iter().map(|(n, _)| n.to_string()).collect();
                let other_version = exports.iter().find_map(|(n, _)| match n {
                    ItemName::Interface(n) if n.unversioned() == driven_name.unversioned() => {
                        Some(n)
                    }
                    _ => None,
                });
                if let Some(other) = other_version {
                    let prerelease = other.version.as_ref().is_some_and(|v| !v.pre.is_empty());
                    let release = driven_name
                        .version
                        .as_ref()
                        .map(|v| format!("{}.{}.{}", v.major, v.minor, v.patch))
                        .unwrap_or_default();
                    problems.push(Problem {
                        kind: if prerelease {
                            ProblemKind::PrereleaseMismatch
                        } else {
                            ProblemKind::VersionMismatch
                        },
                        name: other.to_string(),
                        detail: if prerelease {
                            format!(
                                "host world `{}` drives `{driven_name}`; the component exports `{other}`, a prerelease, which matches only itself: rebuild it against WASI {release}",
                                self.world.name
                            )
                        } else {
                            format!(
                                "host world `{}` drives `{driven_name}`; the component exports `{other}`, on another track",
                                self.world.name
                            )
                        },
                    });
                    continue;
                }
                problems.push(Problem {
                    kind: ProblemKind::NoEntryPoint,
                    name: driven_name.to_string(),
                    detail: format!(
                        "host world `{}` drives `{driven_name}`; the component exports {}",
                        self.world.name,
                        if has.is_empty() {
                            "nothing".to_string()
                        } else {
                            has.join(", ")
                        }
                    ),
                });
                continue;
            };
            if let Some(host_id) = self.host_interface(key, true) {
                // The host calls into the export: the host's expectations are
                // what the component's export must meet.
                let cmp = Comparer {
                    want: Side(&self.host.resolve),
                    have: Side(&self.c.resolve),
                };
                compare_interfaces(
                    &cmp,
                    (host_id, &driven_name.to_string()),
                    (*export_id, &export_name.to_string()),
                    Direction::Export,
                    problems,
                );
            }
        }
    }
}

/// Which way an interface crosses the boundary: it decides whose
/// expectations are checked and how problems are worded.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    /// The component imports `want`; the host provides `have`.
    Import,
    /// The host drives `want`; the component exports `have`.
    Export,
}

/// Picks the host's provider for an imported interface, by the linker's rule.
fn find_provider<'w>(
    wanted: &WitName,
    provides: &'w [(ItemName, WorldKey)],
    world: &str,
) -> Result<(&'w WitName, &'w WorldKey), Problem> {
    let same_name: Vec<(&WitName, &WorldKey)> = provides
        .iter()
        .filter_map(|(n, k)| match n {
            ItemName::Interface(n) if n.unversioned() == wanted.unversioned() => Some((n, k)),
            _ => None,
        })
        .collect();
    let listing = || {
        let mut v: Vec<String> = same_name.iter().map(|(n, _)| n.to_string()).collect();
        v.sort();
        v.join(", ")
    };
    if same_name.is_empty() {
        return Err(Problem {
            kind: ProblemKind::MissingInterface,
            name: wanted.to_string(),
            detail: format!(
                "host world `{world}` has no `{}` at any version",
                wanted.unversioned()
            ),
        });
    }
    let best = same_name
        .iter()
        .filter(|(n, _)| n.same_track(wanted))
        .max_by(|a, b| cmp_versions(a.0.version.as_ref(), b.0.version.as_ref()));
    match best {
        Some((n, k)) => Ok((n, k)),
        None => {
            let prerelease = wanted.version.as_ref().is_some_and(|v| !v.pre.is_empty());
            let (kind, why) = match (&wanted.version, wanted.track()) {
                _ if prerelease => (
                    ProblemKind::PrereleaseMismatch,
                    "a prerelease matches only the exact same version".to_string(),
                ),
                (Some(_), Some(Track::Exact(_))) => (
                    ProblemKind::VersionMismatch,
                    "a 0.0.z version matches only itself".to_string(),
                ),
                (Some(_), Some(track)) => (
                    ProblemKind::VersionMismatch,
                    format!("no version on track {track}"),
                ),
                _ => (
                    ProblemKind::VersionMismatch,
                    "an unversioned import matches only an unversioned name".to_string(),
                ),
            };
            Err(Problem {
                kind,
                name: wanted.to_string(),
                detail: format!("imports `{wanted}` ({why}); host has {}", listing()),
            })
        }
    }
}

/// Compares the functions and types one side needs against the other side's
/// interface, pushing one problem per missing or different item.
fn compare_interfaces(
    cmp: &Comparer<'_>,
    (want_id, want_name): (InterfaceId, &str),
    (have_id, have_name): (InterfaceId, &str),
    dir: Direction,
    problems: &mut Vec<Problem>,
) {
    let want: &Resolve = cmp.want.0;
    let have: &Resolve = cmp.have.0;
    let (wi, hi) = (&want.interfaces[want_id], &have.interfaces[have_id]);
    // The name problems are reported under: the component's own name for the
    // item, so the message matches what its author wrote.
    let subject = match dir {
        Direction::Import => want_name,
        Direction::Export => have_name,
    };
    let missing_where = match dir {
        Direction::Import => format!("host has {have_name} without it"),
        Direction::Export => format!("the component's export {have_name} lacks it"),
    };
    let verb = match dir {
        Direction::Import => format!("imports {want_name}"),
        Direction::Export => format!("host drives {want_name}"),
    };

    for (tname, tid) in &wi.types {
        let is_resource = matches!(want.types[*tid].kind, TypeDefKind::Resource);
        let what = if is_resource { "resource" } else { "type" };
        match hi.types.get(tname) {
            None => problems.push(Problem {
                kind: ProblemKind::MissingType,
                name: format!("{subject}#{tname}"),
                detail: format!("{verb} {what} `{tname}`; {missing_where}"),
            }),
            Some(hid) => {
                if !cmp.same_def(*tid, *hid) {
                    problems.push(Problem {
                        kind: ProblemKind::TypeMismatch,
                        name: format!("{subject}#{tname}"),
                        detail: format!(
                            "{verb} {what} `{tname}` with another structure than {have_name}'s"
                        ),
                    });
                }
            }
        }
    }
    for (fname, f) in &wi.functions {
        match hi.functions.get(fname) {
            None => problems.push(Problem {
                kind: ProblemKind::MissingFunction,
                name: format!("{subject}#{fname}"),
                detail: format!("{verb} function `{fname}`; {missing_where}"),
            }),
            Some(g) => {
                if !cmp.same_function(f, g) {
                    let (a, b) = (render_function(want, f), render_function(have, g));
                    let note = if a == b {
                        " (a type it uses differs in structure)"
                    } else {
                        ""
                    };
                    let detail = match dir {
                        Direction::Import => {
                            format!("imports `{fname}` as `{a}`; host {have_name} has `{b}`{note}")
                        }
                        Direction::Export => {
                            format!(
                                "host drives `{fname}` as `{a}`; the component exports `{b}`{note}"
                            )
                        }
                    };
                    problems.push(Problem {
                        kind: ProblemKind::FunctionMismatch,
                        name: format!("{subject}#{fname}"),
                        detail,
                    });
                }
            }
        }
    }
}

/// The import module of WASI preview 0, which wasmtime still links by
/// default (`-S preview0=n` turns it off): its functions have preview 1's
/// names and core signatures.
pub const WASI_PREVIEW0_MODULE: &str = "wasi_unstable";

fn check_module(m: &CoreModule, host: &Host) -> Verdict {
    if !host.wasip1 {
        return Verdict {
            compatible: false,
            world: None,
            closest: None,
            problems: vec![Problem {
                kind: ProblemKind::UnsupportedKind,
                name: WASIP1_MODULE.into(),
                detail: format!(
                    "this is a wasip1 core module; host `{}` runs components only",
                    host.name
                ),
            }],
        };
    }
    let mut problems = Vec::new();
    let preview0 = host.core.contains(&CoreSupport::Preview0);
    for import in &m.imports {
        let name = format!("{}#{}", import.module, import.name);
        if import.module == WASI_PREVIEW0_MODULE && !preview0 {
            problems.push(Problem {
                kind: ProblemKind::UnsupportedImport,
                name,
                detail: format!(
                    "imports from `{WASI_PREVIEW0_MODULE}` (WASI preview 0, older toolchains); host `{}` doesn't run preview 0 modules",
                    host.name
                ),
            });
            continue;
        }
        if import.module != WASIP1_MODULE && import.module != WASI_PREVIEW0_MODULE {
            problems.push(Problem {
                kind: ProblemKind::UnsupportedImport,
                name,
                detail: format!(
                    "imports from module `{}`; a wasip1 host provides only `{WASIP1_MODULE}`",
                    import.module
                ),
            });
            continue;
        }
        let Some(sig) = &import.func else {
            problems.push(Problem {
                kind: ProblemKind::UnsupportedImport,
                name,
                detail: format!(
                    "imports a non-function `{}` from `{WASIP1_MODULE}`, which has only functions",
                    import.name
                ),
            });
            continue;
        };
        match wasip1::signature(&import.name) {
            None => problems.push(Problem {
                kind: ProblemKind::MissingFunction,
                name,
                detail: format!(
                    "imports `{}`, which is not a `{WASIP1_MODULE}` function",
                    import.name
                ),
            }),
            Some(expected) if &expected != sig => problems.push(Problem {
                kind: ProblemKind::FunctionMismatch,
                name,
                detail: format!(
                    "imports `{}` as `{sig}`; wasip1 defines `{expected}`",
                    import.name
                ),
            }),
            Some(_) => {}
        }
    }
    let reactor = m.exports.iter().any(|(n, _)| n == "_initialize");
    match m.start() {
        // A reactor: the host calls `_initialize` and nothing else.
        None if reactor && host.core.contains(&CoreSupport::Reactor) => {}
        None => problems.push(Problem {
            kind: ProblemKind::NoEntryPoint,
            name: "_start".into(),
            detail: "a wasip1 host drives `_start`; the module exports no `_start` function".into(),
        }),
        Some(sig) if !sig.params.is_empty() || !sig.results.is_empty() => problems.push(Problem {
            kind: ProblemKind::FunctionMismatch,
            name: "_start".into(),
            detail: format!("`_start` must take and return nothing; the module's is `{sig}`"),
        }),
        Some(_) => {}
    }
    let compatible = problems.is_empty();
    Verdict {
        compatible,
        world: compatible.then(|| "wasip1".to_string()),
        closest: (!compatible).then(|| "wasip1".to_string()),
        problems,
    }
}
