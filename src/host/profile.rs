//! Host profiles as data: a named runtime release, how it is invoked, and
//! what each invocation drives, provides and enables, with what each flag
//! adds. The file format is JSON, documented in `docs/HOSTS.md`; the
//! catalog shipped in the binary is made of these files, each written by
//! `worldfit host --probe`.
//!
//! A profile names WASI interfaces by release (`wasi:cli/exit@0.2.11`):
//! the items an interface has at a release are those of the embedded WASI
//! WIT whose `@since` gate is at or below it, so a profile can't claim a
//! function its release lacks and a verdict can name what is missing.

use super::probe::Probed;
use super::probe_wasm::{
    CoreSupport, P2_WIT_VERSION, P3_WIT_VERSION, in_release, type_only_interfaces,
};
use super::{Host, HostWorld};
use crate::component::ItemName;
use crate::engine_features::EngineFeature;
use crate::wit_name::WitName;
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use wit_parser::{InterfaceId, Resolve, Stability, World, WorldId, WorldKey};

/// The format version this build reads and writes.
pub const FORMAT: u32 = 1;

/// A profile file: one release of one runtime.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Profile {
    /// The format version, [`FORMAT`].
    pub worldfit_host_profile: u32,
    /// The runtime's name, e.g. `wasmtime`.
    pub name: String,
    /// The release, e.g. `49.0.3`.
    pub version: String,
    /// How the profile was made (e.g. `probed with worldfit 0.1.0 in 4.1 s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The ways the runtime is invoked (`run`, `serve`), each a group of
    /// host worlds.
    pub invocations: Vec<Invocation>,
}

/// One way of invoking the runtime.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Invocation {
    /// A short name: `run`, `serve`.
    pub name: String,
    /// The command line, without the binary's path: `["wasmtime", "run"]`.
    pub command: Vec<String>,
    /// What it supports with its default flags.
    #[serde(flatten)]
    pub support: Support,
    /// Flags that add support, each measured separately.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<Flag>,
}

/// What an invocation supports (or a flag adds).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Support {
    /// Entry points it drives: `wasi:cli/run@0.2.12`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drives: Vec<String>,
    /// WASI interfaces it provides, each at a release.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub provides: Vec<String>,
    /// Engine features it enables (`component-model-async`, `gc`, ...:
    /// [`EngineFeature`] names).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub engine: Vec<EngineFeature>,
    /// Core-module kinds it runs (`preview1`, `preview0`, `reactor`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub core: Vec<CoreSupport>,
}

/// A flag and what it adds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Flag {
    /// The flag's words as given on the command line: `["-S", "http"]`.
    pub flag: Vec<String>,
    /// What it adds to the invocation's defaults.
    #[serde(flatten)]
    pub adds: Support,
    /// What it takes away (`wasmtime run -S http` refuses core modules).
    #[serde(default, skip_serializing_if = "Support::is_empty")]
    pub removes: Support,
}

impl Flag {
    /// The flag as one string: `-S http`.
    pub fn text(&self) -> String {
        self.flag.join(" ")
    }

    /// Its options, each as its words: `-S p3 -W component-model-async=y`
    /// is two options, and applies only when both are given.
    pub fn units(&self) -> Vec<Vec<String>> {
        split_flags(&self.flag.iter().map(String::as_str).collect::<Vec<_>>())
            .unwrap_or_else(|_| vec![self.flag.clone()])
    }

    fn applies(&self, selection: &Selection) -> bool {
        self.units().iter().all(|u| selection.flags.contains(u))
    }
}

/// Splits command-line words into options: a word starting with `-` takes
/// the next word as its value when it is `-S`, `-W` or a `--long` option
/// without `=`, and the next word isn't itself an option.
pub fn split_flags(words: &[&str]) -> Result<Vec<Vec<String>>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let w = words[i];
        if !w.starts_with('-') {
            bail!("`{w}` is not a flag (flags start with `-`)");
        }
        // `-Shttp` is `-S http`, as the runtime's own parser reads it.
        if let Some(short) = ["-S", "-W"]
            .iter()
            .find(|s| w.len() > 2 && w.starts_with(**s))
        {
            out.push(vec![short.to_string(), w[2..].to_string()]);
            i += 1;
            continue;
        }
        let takes_value = !w.contains('=')
            && (w == "-S" || w == "-W" || w.starts_with("--"))
            && words.get(i + 1).is_some_and(|n| !n.starts_with('-'));
        if takes_value {
            out.push(vec![w.to_string(), words[i + 1].to_string()]);
            i += 2;
        } else {
            out.push(vec![w.to_string()]);
            i += 1;
        }
    }
    Ok(out)
}

impl Support {
    /// What a probe measured.
    pub fn from_probed(p: &Probed) -> Support {
        Support {
            drives: p.drives.iter().map(ToString::to_string).collect(),
            provides: p.provides.iter().map(ToString::to_string).collect(),
            engine: p.engine.clone(),
            core: p.core.clone(),
        }
    }

    /// What `self` has beyond `base` (for a flag: what it adds).
    pub fn minus(&self, base: &Support) -> Support {
        fn diff<T: PartialEq + Clone>(a: &[T], b: &[T]) -> Vec<T> {
            a.iter().filter(|x| !b.contains(x)).cloned().collect()
        }
        Support {
            drives: diff(&self.drives, &base.drives),
            provides: diff(&self.provides, &base.provides),
            engine: diff(&self.engine, &base.engine),
            core: diff(&self.core, &base.core),
        }
    }

    /// Whether nothing is listed.
    pub fn is_empty(&self) -> bool {
        self.drives.is_empty()
            && self.provides.is_empty()
            && self.engine.is_empty()
            && self.core.is_empty()
    }

    /// `self` with `more` added; a provided interface on the same track is
    /// replaced by the newer release.
    fn merged(&self, more: &Support) -> Support {
        let mut out = self.clone();
        for d in &more.drives {
            if !out.drives.contains(d) {
                out.drives.push(d.clone());
            }
        }
        // Each name parsed once: a catalog host is built per release and
        // flag, and parsing dominated building.
        let new: Vec<WitName> = more
            .provides
            .iter()
            .filter_map(|p| p.parse().ok())
            .collect();
        out.provides.retain(|old| {
            old.parse::<WitName>().map_or(true, |o| {
                !new.iter()
                    .any(|n| o.same_track(n) && o.unversioned() == n.unversioned())
            })
        });
        for p in &more.provides {
            if !out.provides.contains(p) {
                out.provides.push(p.clone());
            }
        }
        for e in &more.engine {
            if !out.engine.contains(e) {
                out.engine.push(*e);
            }
        }
        for c in &more.core {
            if !out.core.contains(c) {
                out.core.push(*c);
            }
        }
        out
    }
}

impl Profile {
    /// Reads and checks a profile file. Errors name the path and what is
    /// wrong, in one line.
    pub fn load(path: &Path) -> Result<Profile> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read host profile `{}`", path.display()))?;
        Profile::parse(&text)
            .map_err(|e| anyhow::anyhow!("host profile `{}`: {e:#}", path.display()))
    }

    /// Parses and checks a profile's JSON text.
    pub fn parse(text: &str) -> Result<Profile> {
        let p: Profile = serde_json::from_str(text).map_err(|e| anyhow::anyhow!("{e}"))?;
        p.validate()?;
        Ok(p)
    }

    /// Checks what JSON can't: the format version, names, and that every
    /// interface named is a WASI interface at a release worldfit knows.
    pub fn validate(&self) -> Result<()> {
        if self.worldfit_host_profile != FORMAT {
            bail!(
                "format version {} is not supported (this worldfit reads version {FORMAT})",
                self.worldfit_host_profile
            );
        }
        if self.name.is_empty() || self.name.contains(['@', ' ']) {
            bail!(
                "`name` must be a non-empty word without `@` or spaces, not {:?}",
                self.name
            );
        }
        if self.version.is_empty() || self.version.contains(' ') {
            bail!("`version` must be a non-empty word, not {:?}", self.version);
        }
        if self.invocations.is_empty() {
            bail!("`invocations` is empty: a host runs something");
        }
        let mut seen = Vec::new();
        for inv in &self.invocations {
            if inv.name.is_empty() || inv.name.starts_with('-') || inv.name.contains(' ') {
                bail!(
                    "invocation name {:?} must be a word not starting with `-`",
                    inv.name
                );
            }
            if seen.contains(&&inv.name) {
                bail!("invocation `{}` is listed twice", inv.name);
            }
            seen.push(&inv.name);
            check_support(&inv.support).with_context(|| format!("invocation `{}`", inv.name))?;
            for f in &inv.flags {
                if f.flag.is_empty() {
                    bail!("invocation `{}` has a flag with no words", inv.name);
                }
                check_support(&f.adds)
                    .and_then(|()| check_support(&f.removes))
                    .with_context(|| format!("invocation `{}` flag `{}`", inv.name, f.text()))?;
            }
        }
        Ok(())
    }

    /// `name@version`.
    pub fn id(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }

    /// The host this profile describes, invoked as `selection` says.
    pub fn host(&self, selection: &Selection) -> Result<Host> {
        let invocations: Vec<&Invocation> = match &selection.invocation {
            Some(name) => vec![
                self.invocations
                    .iter()
                    .find(|i| &i.name == name)
                    .with_context(|| {
                        format!(
                            "`{}` has no invocation `{name}` (it has {})",
                            self.id(),
                            self.invocations
                                .iter()
                                .map(|i| i.name.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    })?,
            ],
            None => self.invocations.iter().collect(),
        };
        // Every flag given must be known to some selected invocation.
        for flag in &selection.flags {
            if !invocations
                .iter()
                .any(|i| i.flags.iter().any(|f| f.units().contains(flag)))
            {
                let known: Vec<String> = invocations
                    .iter()
                    .flat_map(|i| i.flags.iter().map(Flag::text))
                    .collect();
                bail!(
                    "`{}` knows no flag `{}` (known: {})",
                    self.id(),
                    flag.join(" "),
                    if known.is_empty() {
                        "none".into()
                    } else {
                        known.join(", ")
                    }
                );
            }
        }
        // What each invocation supports as selected.
        let mut supports = Vec::new();
        for inv in &invocations {
            let mut support = inv.support.clone();
            for f in &inv.flags {
                if f.applies(selection) {
                    support = support.merged(&f.adds).minus(&f.removes);
                }
            }
            support
                .provides
                .extend(type_only_companions(&support.provides));
            supports.push(support);
        }
        let names: Vec<WitName> = supports
            .iter()
            .flat_map(|s| s.provides.iter().chain(&s.drives))
            .map(|n| n.parse())
            .collect::<Result<_>>()?;
        let shared = shared_resolve(&names)?;
        let copy = |n: &WitName| {
            *shared
                .copies
                .get(&n.to_string())
                .expect("shared_resolve holds every name asked for")
        };
        let mut worlds = Vec::new();
        let mut core = Vec::new();
        let mut engine = Vec::new();
        for (inv, support) in invocations.iter().zip(&supports) {
            let provides: Vec<(ItemName, WorldKey)> = support
                .provides
                .iter()
                .map(|p| {
                    let n: WitName = p.parse().expect("parsed above");
                    let key = WorldKey::Interface(copy(&n));
                    (ItemName::Interface(n), key)
                })
                .collect();
            let mut command = inv.command.join(" ");
            for u in &selection.flags {
                if inv.flags.iter().any(|f| f.units().contains(u)) {
                    command = format!("{command} {}", u.join(" "));
                }
            }
            for d in &support.drives {
                let n: WitName = d.parse()?;
                let drive = copy(&n);
                worlds.push(HostWorld {
                    name: format!("{} {} [{n}]", self.name, inv.name),
                    id: shared.empty_world,
                    command: Some(command.clone()),
                    provides: provides.clone(),
                    drives: vec![(ItemName::Interface(n), WorldKey::Interface(drive))],
                });
            }
            for c in &support.core {
                if !core.contains(c) {
                    core.push(*c);
                }
            }
            for e in &support.engine {
                if !engine.contains(e) {
                    engine.push(*e);
                }
            }
        }
        let mut name = self.id();
        if let Some(inv) = &selection.invocation {
            name = format!("{name} {inv}");
        }
        for f in &selection.flags {
            name = format!("{name} {}", f.join(" "));
        }
        let mut host = Host::from_parts(name, shared.resolve, worlds, core);
        host.engine = engine;
        Ok(host)
    }

    /// Each flag of the selected invocations that the selection lacks, as
    /// a selection that adds it: the variants a verdict tries when the host
    /// as invoked refuses a binary.
    pub fn with_each_flag(&self, selection: &Selection) -> Vec<(Vec<String>, Selection)> {
        let mut out: Vec<(Vec<String>, Selection)> = Vec::new();
        for inv in &self.invocations {
            if selection
                .invocation
                .as_ref()
                .is_some_and(|i| *i != inv.name)
            {
                continue;
            }
            for f in &inv.flags {
                if f.applies(selection) || out.iter().any(|(g, _)| *g == f.flag) {
                    continue;
                }
                let mut s = selection.clone();
                for u in f.units() {
                    if !s.flags.contains(&u) {
                        s.flags.push(u);
                    }
                }
                out.push((f.flag.clone(), s));
            }
        }
        out
    }
}

/// A flag that would make a binary fit a profile host it doesn't fit as
/// invoked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlagFit {
    /// The flag (its words joined): `-S http`.
    pub flag: String,
    /// The command line that runs the binary: `wasmtime run -S http`.
    pub command: String,
    /// The host world it then fits.
    pub world: String,
}

/// The flags of `profile` with which the binary fits a host it doesn't
/// fit as invoked: each measured flag alone, and when none suffices, each
/// pair (a 0.2.12 command that also imports the HTTP client needs `-S http`
/// and, on older releases, `-S cli-exit-with-code`). Smallest first; a
/// combination that only repeats a smaller fitting one is left out. Only
/// what the profile measured is tried.
pub fn flags_that_fit(
    profile: &Profile,
    selection: &Selection,
    wasm: &crate::component::Wasm,
) -> Vec<FlagFit> {
    let singles: Vec<(Vec<String>, Selection)> = profile
        .with_each_flag(selection)
        .into_iter()
        .filter(|(flag, _)| could_help(profile, flag, wasm))
        .collect();
    let mut tries: Vec<Selection> = singles.iter().map(|(_, s)| s.clone()).collect();
    let fits = |tries: &[Selection]| -> Vec<FlagFit> {
        let mut out: Vec<(usize, FlagFit)> = Vec::new();
        for variant in tries {
            let added: Vec<&Vec<String>> = variant
                .flags
                .iter()
                .filter(|u| !selection.flags.contains(u))
                .collect();
            if out.iter().any(|(_, f)| {
                split_flags(&f.flag.split(' ').collect::<Vec<_>>())
                    .unwrap_or_default()
                    .iter()
                    .all(|u| added.contains(&u))
            }) {
                continue;
            }
            let Ok(host) = profile.host(variant) else {
                continue;
            };
            let verdict = crate::verdict::check(wasm, &host);
            if !verdict.compatible {
                continue;
            }
            let flag = added
                .iter()
                .map(|u| u.join(" "))
                .collect::<Vec<_>>()
                .join(" ");
            let world = verdict.world.unwrap_or_default();
            let command = host
                .worlds
                .iter()
                .find(|w| w.name == world)
                .and_then(|w| w.command.clone())
                .or_else(|| {
                    // A core module fits no named world: the invocation
                    // that runs core modules runs it.
                    profile
                        .invocations
                        .iter()
                        .find(|i| !i.support.core.is_empty())
                        .map(|i| format!("{} {flag}", i.command.join(" ")))
                })
                .unwrap_or_default();
            out.push((
                added.len(),
                FlagFit {
                    flag,
                    command,
                    world,
                },
            ));
        }
        out.sort_by_key(|(n, _)| *n);
        out.into_iter().map(|(_, f)| f).collect()
    };
    let found = fits(&tries);
    if !found.is_empty() {
        return found;
    }
    tries.clear();
    for (i, (_, a)) in singles.iter().enumerate() {
        for (_, b) in &singles[i + 1..] {
            let mut s = a.clone();
            for u in &b.flags {
                if !s.flags.contains(u) {
                    s.flags.push(u.clone());
                }
            }
            if !tries.contains(&s) {
                tries.push(s);
            }
        }
    }
    fits(&tries)
}

/// Whether a flag could make the binary fit: it must add something the
/// binary uses (an interface it imports, on the same track; an entry point
/// it exports; core-module support for a module), to an invocation that
/// drives one of its entry points. A flag only adds what it lists, so any
/// other flag leaves every problem in place; skipping it saves building and
/// judging a host per flag and release.
fn could_help(profile: &Profile, flag: &[String], wasm: &crate::component::Wasm) -> bool {
    use crate::component::Wasm;
    let names = |items: &mut dyn Iterator<Item = (ItemName, &wit_parser::WorldItem)>| {
        items
            .filter_map(|(n, _)| match n {
                ItemName::Interface(n) => Some(n),
                ItemName::Plain(_) => None,
            })
            .collect::<Vec<WitName>>()
    };
    let uses = |list: &[String], used: &[WitName]| {
        list.iter()
            .filter_map(|n| n.parse::<WitName>().ok())
            .any(|n| {
                used.iter()
                    .any(|u| u.unversioned() == n.unversioned() && u.same_track(&n))
            })
    };
    profile.invocations.iter().any(|inv| {
        inv.flags
            .iter()
            .filter(|f| f.flag == flag)
            .any(|f| match wasm {
                Wasm::Module(_) => !f.adds.core.is_empty(),
                Wasm::Component(c) => {
                    let imports = names(&mut c.imports());
                    let exports = names(&mut c.exports());
                    let driven =
                        uses(&inv.support.drives, &exports) || uses(&f.adds.drives, &exports);
                    driven && (uses(&f.adds.provides, &imports) || uses(&f.adds.drives, &exports))
                }
            })
    })
}

/// Checks that every name in a support list is a WIT name worldfit can
/// build: a WASI interface on the 0.2 or 0.3 track.
fn check_support(s: &Support) -> Result<()> {
    for n in s.provides.iter().chain(&s.drives) {
        let name: WitName = n
            .parse()
            .with_context(|| format!("`{n}` is not a WIT name"))?;
        embedded_interface(&name)?;
    }
    Ok(())
}

/// The embedded interface whose items a release of `name` takes.
fn embedded_interface(name: &WitName) -> Result<InterfaceId> {
    let (resolve, _) = super::embedded::parsed_builtin();
    let Some(v) = &name.version else {
        bail!("`{name}` has no version: a profile names each interface at a release");
    };
    let wit_version = match (v.major, v.minor) {
        (0, 2) => P2_WIT_VERSION,
        (0, 3) if v.patch == 0 => P3_WIT_VERSION,
        _ => bail!(
            "`{name}`: worldfit knows WASI releases 0.2.0 to {P2_WIT_VERSION} and {P3_WIT_VERSION} (with its release candidates)"
        ),
    };
    // By name, indexed once per process: a catalog names thousands.
    static BY_NAME: std::sync::OnceLock<HashMap<String, InterfaceId>> = std::sync::OnceLock::new();
    let by_name = BY_NAME.get_or_init(|| {
        resolve
            .interfaces
            .iter()
            .filter_map(|(id, _)| Some((resolve.id_of(id)?, id)))
            .collect()
    });
    let wanted = format!("{}@{wit_version}", name.unversioned());
    by_name
        .get(&wanted)
        .copied()
        .with_context(|| format!("`{name}` is not a WASI interface worldfit knows"))
}

/// The interfaces of plain types that come with `provides`: those of each
/// provided package at the same release (they can't be probed: an import
/// of them holds no function or resource).
fn type_only_companions(provides: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for p in provides {
        // `ns:pkg/iface@version`, read as text: no parse per name.
        let (Some((_, version)), Some((package, _))) = (p.split_once('@'), p.split_once('/'))
        else {
            continue;
        };
        let p3 = version.starts_with("0.3");
        for t in type_only_interfaces(p3) {
            if !t.starts_with(package) || t.as_bytes().get(package.len()) != Some(&b'/') {
                continue;
            }
            let t = format!("{t}@{version}");
            if !provides.contains(&t) && !out.contains(&t) {
                out.push(t);
            }
        }
    }
    out
}

/// The resolve every profile host of a process shares: the embedded WIT
/// plus a release copy of each interface a profile names, and one empty
/// world (profile worlds hold interfaces only, found by their keys).
struct Shared {
    resolve: Arc<Resolve>,
    copies: HashMap<String, InterfaceId>,
    empty_world: WorldId,
}

/// The shared resolve, holding `names`. The first call copies the embedded
/// WIT once and adds every name the catalog uses; a name outside it (a
/// profile file's) makes one more copy. Cloning the embedded WIT per host
/// cost more than judging a binary against all nine catalog releases.
fn shared_resolve(names: &[WitName]) -> Result<Shared> {
    static SHARED: Mutex<Option<Shared>> = Mutex::new(None);
    let mut guard = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    let fresh = guard.is_none();
    let missing: Vec<&WitName> = match guard.as_ref() {
        Some(s) => names
            .iter()
            .filter(|n| !s.copies.contains_key(&n.to_string()))
            .collect(),
        None => names.iter().collect(),
    };
    if fresh || !missing.is_empty() {
        let (mut resolve, mut copies, empty_world) = match guard.take() {
            Some(s) => ((*s.resolve).clone(), s.copies, s.empty_world),
            None => {
                let (base, _) = super::embedded::parsed_builtin();
                let mut resolve = (**base).clone();
                let empty_world = resolve.worlds.alloc(World {
                    name: "profile".into(),
                    imports: Default::default(),
                    exports: Default::default(),
                    package: None,
                    docs: Default::default(),
                    stability: Stability::Unknown,
                    includes: Default::default(),
                    span: Default::default(),
                });
                (resolve, HashMap::new(), empty_world)
            }
        };
        let mut wanted: Vec<WitName> = missing.into_iter().cloned().collect();
        if fresh {
            wanted.extend(catalog_names());
        }
        for n in &wanted {
            release_copy(&mut resolve, &mut copies, n)?;
        }
        *guard = Some(Shared {
            resolve: Arc::new(resolve),
            copies,
            empty_world,
        });
    }
    let s = guard.as_ref().expect("set above");
    Ok(Shared {
        resolve: s.resolve.clone(),
        copies: s.copies.clone(),
        empty_world: s.empty_world,
    })
}

/// Every interface name the catalog's profiles use, with the interfaces of
/// plain types that come with them.
fn catalog_names() -> Vec<WitName> {
    let mut names: Vec<String> = Vec::new();
    for p in super::catalog::profiles() {
        for inv in &p.invocations {
            let supports = std::iter::once(&inv.support).chain(inv.flags.iter().map(|f| &f.adds));
            for s in supports {
                names.extend(s.provides.iter().chain(&s.drives).cloned());
            }
        }
    }
    names.sort();
    names.dedup();
    let more = type_only_companions(&names);
    names.extend(more);
    names.iter().filter_map(|n| n.parse().ok()).collect()
}

/// A copy of the embedded interface holding only the items of the release
/// `name` names, shared by every world that provides it.
fn release_copy(
    resolve: &mut Resolve,
    copies: &mut HashMap<String, InterfaceId>,
    name: &WitName,
) -> Result<InterfaceId> {
    let key = name.to_string();
    if let Some(id) = copies.get(&key) {
        return Ok(*id);
    }
    let original = embedded_interface(name)?;
    let version = name.version.clone().expect("checked by embedded_interface");
    let mut copy = resolve.interfaces[original].clone();
    copy.functions
        .retain(|_, f| in_release(&f.stability, &version));
    let id = resolve.interfaces.alloc(copy);
    copies.insert(key, id);
    Ok(id)
}

/// How a profile is invoked: `wasmtime@49 run -S http` is the `run`
/// invocation with the flag `-S http`; no invocation means all of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// The invocation's name, if one was given.
    pub invocation: Option<String>,
    /// Flags, each as its words.
    pub flags: Vec<Vec<String>>,
}

/// A host as the user names it: `NAME[@VERSION] [INVOCATION] [FLAGS...]`,
/// e.g. `wasmtime@49 run -S http`, `wasmtime@*`, `wasmtime`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSpec {
    /// The runtime's name.
    pub name: String,
    /// The version asked for: `None` (the newest), a prefix (`49`,
    /// `49.0`), or `*` (every release in the catalog).
    pub version: Option<String>,
    /// The invocation and flags.
    pub selection: Selection,
}

impl std::str::FromStr for HostSpec {
    type Err = anyhow::Error;

    /// Words are split on spaces; a flag word starting with `-` takes the
    /// next word as its value unless it holds a `=` or the next word is
    /// itself a flag (`-S http`, `-Shttp`, `--wasi=http`).
    fn from_str(s: &str) -> Result<HostSpec> {
        let mut words = s.split_whitespace();
        let first = words.next().context("empty host name")?;
        let (name, version) = match first.split_once('@') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (first, None),
        };
        if name.is_empty() || version.as_deref() == Some("") {
            bail!("host `{s}`: expected NAME[@VERSION], e.g. `wasmtime@49`");
        }
        let rest: Vec<&str> = words.collect();
        let mut selection = Selection::default();
        let mut start = 0;
        if let Some(w) = rest.first()
            && !w.starts_with('-')
        {
            selection.invocation = Some(w.to_string());
            start = 1;
        }
        selection.flags = split_flags(&rest[start..]).map_err(|e| {
            anyhow::anyhow!("host `{s}`: {e} (the invocation, if any, comes first)")
        })?;
        Ok(HostSpec {
            name: name.to_string(),
            version,
            selection,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_specs_parse_into_name_version_invocation_and_flags() {
        let s: HostSpec = "wasmtime@49 run -S http -W component-model-map=y"
            .parse()
            .unwrap();
        assert_eq!(s.name, "wasmtime");
        assert_eq!(s.version.as_deref(), Some("49"));
        assert_eq!(s.selection.invocation.as_deref(), Some("run"));
        assert_eq!(
            s.selection.flags,
            vec![
                vec!["-S".to_string(), "http".into()],
                vec!["-W".into(), "component-model-map=y".into()]
            ]
        );
        let s: HostSpec = "wasmtime@49 -Shttp".parse().unwrap();
        assert_eq!(
            s.selection.flags,
            vec![vec!["-S".to_string(), "http".into()]]
        );
        let s: HostSpec = "wasmtime@* -S http".parse().unwrap();
        assert_eq!(s.version.as_deref(), Some("*"));
        assert_eq!(s.selection.invocation, None);
        assert!("wasmtime@ run".parse::<HostSpec>().is_err());
        assert!("wasmtime run serve".parse::<HostSpec>().is_err());
    }

    #[test]
    fn releases_keep_only_their_items() {
        let p = Profile {
            worldfit_host_profile: FORMAT,
            name: "t".into(),
            version: "1".into(),
            source: None,
            invocations: vec![Invocation {
                name: "run".into(),
                command: vec!["t".into()],
                support: Support {
                    drives: vec!["wasi:cli/run@0.2.12".into()],
                    provides: vec!["wasi:cli/exit@0.2.11".into()],
                    ..Default::default()
                },
                flags: vec![Flag {
                    flag: vec!["-S".into(), "x".into()],
                    adds: Support {
                        provides: vec!["wasi:cli/exit@0.2.12".into()],
                        ..Default::default()
                    },
                    removes: Default::default(),
                }],
            }],
        };
        p.validate().unwrap();
        let exit_functions = |h: &Host| {
            let w = &h.worlds[0];
            let (_, key) = &w.provides[0];
            let WorldKey::Interface(id) = key else {
                panic!()
            };
            h.resolve.interfaces[*id]
                .functions
                .keys()
                .cloned()
                .collect::<Vec<_>>()
        };
        let plain = p.host(&Selection::default()).unwrap();
        assert_eq!(exit_functions(&plain), ["exit"]);
        let flagged = p
            .host(&Selection {
                invocation: None,
                flags: vec![vec!["-S".into(), "x".into()]],
            })
            .unwrap();
        assert_eq!(exit_functions(&flagged), ["exit", "exit-with-code"]);
        assert!(
            p.host(&Selection {
                invocation: None,
                flags: vec![vec!["-S".into(), "y".into()]]
            })
            .is_err()
        );
    }

    #[test]
    fn bad_profiles_say_what_is_wrong() {
        let err = |t: &str| format!("{:#}", Profile::parse(t).unwrap_err());
        assert!(err("{").contains("EOF"));
        assert!(
            err(r#"{"worldfit-host-profile":2,"name":"a","version":"1","invocations":[]}"#)
                .contains("format version 2")
        );
        assert!(err(r#"{"worldfit-host-profile":1,"name":"a","version":"1","invocations":[{"name":"run","command":[],"provides":["wasi:cli/nope@0.2.0"]}]}"#).contains("wasi:cli/nope@0.2.0"));
        assert!(err(r#"{"worldfit-host-profile":1,"name":"a","version":"1","invocations":[{"name":"run","command":[],"provides":["wasi:cli/exit@0.4.0"]}]}"#).contains("0.4.0"));
        assert!(
            err(r#"{"worldfit-host-profile":1,"name":"a","version":"1","invocations":[],"x":1}"#)
                .contains("unknown field")
        );
    }
}
