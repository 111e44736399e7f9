//! Host profiles: the worlds a host can run.
//!
//! A host world's imports are what the host provides; its exports are the
//! entry points it knows how to drive. A profile is built in (`wasmtime`,
//! defined as WIT under `wit/` and embedded in the binary) or read from a
//! user's WIT directory or file.

use crate::component::{ItemName, item_name};
use crate::engine_features::EngineFeature;
use crate::wit_name::{WitName, cmp_versions, track_compatible};
use anyhow::{Context, Result, bail};
use semver::Version;
use std::path::Path;
use wit_parser::{Resolve, WorldId, WorldItem, WorldKey};

pub mod catalog;
pub mod command;
mod embedded;
pub mod probe;
pub mod probe_wasm;
pub mod profile;
#[cfg(feature = "wasmtime")]
pub(crate) use embedded::builtin_wit;
pub use embedded::{BUILTIN_WORLDS, builtin_resolve};
use embedded::{parsed_builtin, shared_builtin};

/// A compile-cache lookup running ahead of a layer's bytes
/// ([`Host::lookup_ahead`]).
#[cfg(feature = "wasmtime")]
pub(crate) type LookupAhead = tokio::task::JoinHandle<Option<crate::confirm::CacheLookup>>;

/// One world of a host: what it provides and what it drives.
#[derive(Debug, Clone)]
pub struct HostWorld {
    /// The world's full WIT name, e.g. `worldfit:wasmtime/wasip2-command@48.0.0`.
    pub name: String,
    /// The world in the host's resolve. A runtime profile's worlds provide
    /// and drive interfaces only, which the verdict finds by their keys:
    /// their `id` is one empty world shared by all of them.
    pub id: WorldId,
    /// The imports (provided by the host), by name.
    pub provides: Vec<(ItemName, WorldKey)>,
    /// The exports (entry points the host drives), by name.
    pub drives: Vec<(ItemName, WorldKey)>,
    /// For a runtime's profile: the command line that runs this world
    /// (`wasmtime serve -S cli`); `None` for the embedded and WIT hosts.
    pub command: Option<String>,
}

/// A world worldfit knows by name, used to name what a component targets
/// (`wasi:cli/command@0.2.6`) and what a host supports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownWorld {
    /// The world's name, with the version of its WIT.
    pub name: WitName,
    /// Its imported interfaces.
    pub imports: Vec<WitName>,
    /// Its exported interfaces (the entry points).
    pub exports: Vec<WitName>,
}

impl KnownWorld {
    /// Reads a world's interface names from a resolve.
    pub fn from_resolve(resolve: &Resolve, world: WorldId) -> Option<KnownWorld> {
        let w = &resolve.worlds[world];
        let pkg = &resolve.packages[w.package?].name;
        let names = |items: &wit_parser::IndexMap<WorldKey, WorldItem>| {
            items
                .keys()
                .filter_map(|k| match item_name(resolve, k) {
                    ItemName::Interface(n) => Some(n),
                    ItemName::Plain(_) => None,
                })
                .collect::<Vec<_>>()
        };
        Some(KnownWorld {
            name: WitName {
                namespace: pkg.namespace.clone(),
                package: pkg.name.clone(),
                item: Some(w.name.clone()),
                version: pkg.version.clone(),
            },
            imports: names(&w.imports),
            exports: names(&w.exports),
        })
    }
}

/// The standard WASI worlds with entry points (`wasi:cli/command`,
/// `wasi:http/proxy`, `wasi:http/service`, ...) from the embedded WIT.
pub fn standard_worlds() -> Vec<KnownWorld> {
    static WORLDS: std::sync::OnceLock<Vec<KnownWorld>> = std::sync::OnceLock::new();
    WORLDS
        .get_or_init(|| entry_worlds(&parsed_builtin().0, |ns| ns == "wasi"))
        .clone()
}

/// Every world with at least one export whose package namespace passes `keep`.
fn entry_worlds(resolve: &Resolve, keep: impl Fn(&str) -> bool) -> Vec<KnownWorld> {
    let mut out: Vec<KnownWorld> = resolve
        .worlds
        .iter()
        .filter(|(_, w)| !w.exports.is_empty())
        .filter_map(|(id, _)| KnownWorld::from_resolve(resolve, id))
        .filter(|k| keep(&k.name.namespace))
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out.dedup();
    out
}

/// A host profile: the worlds a host runs, and whether it runs wasip1 modules.
#[derive(Debug, Clone)]
pub struct Host {
    /// A short name for people: `wasmtime`, or the WIT path.
    pub name: String,
    /// All packages of the host's WIT, shared: the embedded host and every
    /// runtime profile of a process use one parse (a clone costs more than
    /// judging a binary).
    pub resolve: std::sync::Arc<Resolve>,
    /// The host's worlds, in the order they are tried.
    pub worlds: Vec<HostWorld>,
    /// Whether the host runs WASI 0.1 core modules.
    pub wasip1: bool,
    /// The core-module kinds it runs (preview 1, preview 0, reactors).
    pub core: Vec<probe_wasm::CoreSupport>,
    /// The engine features it enables. A WIT host has the embedded
    /// engine's ([`crate::engine_features::EMBEDDED`]): WIT says nothing of
    /// engines, and the embedded wasmtime is what judges it.
    pub engine: Vec<EngineFeature>,
    /// Whether this is the built-in profile of the embedded wasmtime, the
    /// only host worldfit can confirm by instantiating. A profile changed
    /// after [`Host::wasmtime`] should clear it: confirmation and the fits
    /// remembered in the compile cache hold for the profile as embedded.
    pub builtin: bool,
    /// Worlds the host may advertise support for, computed on first use:
    /// only features and descriptions need them, not the verdict.
    known: std::sync::OnceLock<Vec<KnownWorld>>,
    /// The advertised features, computed on first use: judging every entry
    /// of a 10,000-entry index must not recompute them per entry.
    features: std::sync::OnceLock<Vec<WitName>>,
}

impl Host {
    /// The built-in profile: what the embedded wasmtime 48 provides.
    pub fn wasmtime() -> Host {
        let (resolve, root) = shared_builtin();
        let worlds = BUILTIN_WORLDS
            .iter()
            .map(|w| {
                let id = resolve.packages[root].worlds[*w];
                host_world(&resolve, id)
            })
            .collect();
        Host {
            name: format!("{}@{}", catalog::EMBEDDED, catalog::EMBEDDED_VERSION),
            resolve: resolve.clone(),
            worlds,
            wasip1: true,
            core: vec![probe_wasm::CoreSupport::Preview1],
            engine: crate::engine_features::EMBEDDED.to_vec(),
            builtin: true,
            known: Default::default(),
            features: Default::default(),
        }
    }

    /// A host from parts already built (a profile's): `worlds` index into
    /// `resolve`; `core` says which core modules it runs.
    pub fn from_parts(
        name: String,
        resolve: std::sync::Arc<Resolve>,
        worlds: Vec<HostWorld>,
        core: Vec<probe_wasm::CoreSupport>,
    ) -> Host {
        Host {
            name,
            resolve,
            worlds,
            wasip1: core.contains(&probe_wasm::CoreSupport::Preview1),
            core,
            engine: Vec::new(),
            builtin: false,
            known: Default::default(),
            features: Default::default(),
        }
    }

    /// A host defined by WIT: a directory (with `deps/`) or a single file,
    /// and the worlds in it that the host runs. A bare world name resolves in
    /// the root package; `ns:pkg/world@ver` anywhere.
    pub fn from_wit(path: &Path, world_names: &[String]) -> Result<Host> {
        if world_names.is_empty() {
            bail!("a WIT host needs at least one `--world`");
        }
        if !path.exists() {
            bail!("WIT path `{}` does not exist", path.display());
        }
        let mut resolve = Resolve::default();
        let (root, _) = resolve
            .push_path(path)
            .with_context(|| format!("failed to parse WIT host `{}`", path.display()))?;
        let mut worlds = Vec::new();
        for name in world_names {
            let id = resolve.select_world(&[root], Some(name)).map_err(|e| {
                let available: Vec<String> = resolve
                    .worlds
                    .iter()
                    .filter_map(|(_, w)| Some(resolve.id_of_name(w.package?, &w.name)))
                    .collect();
                anyhow::anyhow!(
                    "unknown world `{name}` in `{}` ({}; worlds there: {})",
                    path.display(),
                    e.to_string()
                        .lines()
                        .next()
                        .unwrap_or_default()
                        .trim_end_matches(':'),
                    available.join(", ")
                )
            })?;
            worlds.push(host_world(&resolve, id));
        }
        Ok(Host {
            name: path.display().to_string(),
            resolve: std::sync::Arc::new(resolve),
            worlds,
            wasip1: false,
            core: Vec::new(),
            engine: crate::engine_features::EMBEDDED.to_vec(),
            builtin: false,
            known: Default::default(),
            features: Default::default(),
        })
    }

    /// Worlds the host may advertise support for: the standard WASI worlds
    /// and any world with entry points in the host's own WIT.
    pub fn known_worlds(&self) -> &[KnownWorld] {
        self.known.get_or_init(|| {
            let mut known = standard_worlds();
            if self.builtin {
                // worldfit's own host worlds are not targets to advertise.
                return known;
            }
            for k in entry_worlds(&self.resolve, |ns| ns != "worldfit") {
                if !known.contains(&k) {
                    known.push(k);
                }
            }
            known
        })
    }

    /// The OCI `os` values this host runs: `wasip1`, `wasip2`, `wasip3`.
    pub fn oses(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.wasip1 {
            out.push("wasip1");
        }
        if !self.worlds.is_empty() {
            out.push("wasip2");
        }
        if self.worlds.iter().any(|w| self.world_is_async(w)) {
            out.push("wasip3");
        }
        out
    }

    /// Whether a world provides or drives anything on a WASI 0.3 track.
    fn world_is_async(&self, world: &HostWorld) -> bool {
        world
            .provides
            .iter()
            .chain(&world.drives)
            .any(|(n, _)| n.is_wasi_p3())
    }

    /// The WIT names this host advertises as platform features: its worlds'
    /// names, the known worlds each host world satisfies (at the version the
    /// host provides), every interface it provides or drives, and the engine
    /// features it enables (`wasm:feature/NAME`). Sorted,
    /// deduplicated; computed once per host.
    pub fn features(&self) -> &[WitName] {
        self.features.get_or_init(|| self.compute_features())
    }

    fn compute_features(&self) -> Vec<WitName> {
        let mut out = Vec::new();
        for world in &self.worlds {
            if let Ok(n) = world.name.parse::<WitName>() {
                out.push(n);
            }
            for k in self.known_worlds() {
                if let Some(v) = self.satisfies(world, k) {
                    out.push(k.name.with_version(v));
                }
            }
            for (n, _) in world.provides.iter().chain(&world.drives) {
                if let ItemName::Interface(n) = n {
                    out.push(n.clone());
                }
            }
        }
        // Engine features as `os.features` spell them: `wasm:feature/NAME`.
        out.extend(
            self.engine
                .iter()
                .filter_map(|f| f.os_feature().parse::<WitName>().ok()),
        );
        out.sort();
        out.dedup();
        out
    }

    /// Whether a host world can run everything a known world describes (it
    /// provides each import and drives each export on the same track). Returns
    /// the version to advertise: the lowest the host has for the world's items.
    pub fn satisfies(&self, world: &HostWorld, known: &KnownWorld) -> Option<Option<Version>> {
        let mut lowest: Option<Version> = None;
        let mut check = |wanted: &WitName, have: &[(ItemName, WorldKey)]| -> bool {
            let best = have
                .iter()
                .filter_map(|(n, _)| match n {
                    ItemName::Interface(n) if n.same_track(wanted) => Some(n),
                    _ => None,
                })
                .max_by(|a, b| cmp_versions(a.version.as_ref(), b.version.as_ref()));
            match best {
                Some(n) => {
                    if n.namespace == known.name.namespace
                        && n.package == known.name.package
                        && let Some(v) = &n.version
                        && lowest.as_ref().is_none_or(|l| v < l)
                    {
                        lowest = Some(v.clone());
                    }
                    true
                }
                None => false,
            }
        };
        let ok = known.imports.iter().all(|i| check(i, &world.provides))
            && known.exports.iter().all(|e| check(e, &world.drives));
        if !ok {
            return None;
        }
        // Only advertise on the world's own track; a host at 0.2.0 that
        // satisfies `wasi:cli/command@0.2.12` name-wise supports `@0.2.0`.
        let version = match (&known.name.version, lowest) {
            (Some(k), Some(l)) if track_compatible(Some(k), Some(&l)) => Some(l),
            (k, _) => k.clone(),
        };
        Some(version)
    }

    /// The embedded runtime, for the built-in host only; a runtime that failed
    /// to start is reported as a failed confirmation.
    #[cfg(feature = "wasmtime")]
    // Returned once per confirmation, never in a loop: boxing the
    // Confirmation would only add an allocation.
    #[allow(clippy::result_large_err)]
    fn embedded(
        &self,
    ) -> Option<Result<&'static crate::confirm::Embedded, crate::confirm::Confirmation>> {
        use crate::confirm::{Confirmation, Embedded, Failure};
        self.builtin
            .then(|| Embedded::get().map_err(|m| Confirmation::failed(Failure::Instantiate, m)))
    }

    /// Confirms by linking and instantiating in the embedded wasmtime, for the
    /// built-in host; `None` for WIT-defined hosts, whose confirmation is the
    /// type-level verdict.
    #[cfg(feature = "wasmtime")]
    pub fn confirm(
        &self,
        bytes: &[u8],
        options: &crate::confirm::ConfirmOptions,
    ) -> Option<crate::confirm::Confirmation> {
        Some(match self.embedded()? {
            Ok(embedded) => embedded.confirm(bytes, options),
            Err(failed) => failed,
        })
    }

    /// Async [`Host::confirm`], for callers already inside a tokio runtime
    /// (a shim's): instantiation awaits instead of blocking a worker.
    #[cfg(feature = "wasmtime")]
    pub async fn confirm_async(
        &self,
        bytes: &[u8],
        options: &crate::confirm::ConfirmOptions,
    ) -> Option<crate::confirm::Confirmation> {
        Some(match self.embedded()? {
            Ok(embedded) => embedded.confirm_async(bytes, None, options).await,
            Err(failed) => failed,
        })
    }

    /// Starts looking the compile cache up for an OCI layer whose digest is
    /// known before its bytes are, on a blocking task: checking and mapping
    /// a cached artifact (tens of MB) then overlaps with fetching the layer.
    /// `None` when there is nothing to look up (no cache, or a WIT-defined
    /// host). Must be called inside a tokio runtime.
    #[cfg(feature = "wasmtime")]
    pub(crate) fn lookup_ahead(
        &self,
        sha256_hex: &str,
        options: &crate::confirm::ConfirmOptions,
    ) -> Option<LookupAhead> {
        let cache = options.cache.clone()?;
        if !self.builtin {
            return None;
        }
        let hex = sha256_hex.to_string();
        // Starting the runtime on first use happens on that task too.
        Some(tokio::task::spawn_blocking(move || {
            let embedded = crate::confirm::Embedded::get().ok()?;
            Some(embedded.lookup_ahead(&hex, &cache))
        }))
    }

    /// [`Host::confirm_async`] for bytes already verified against a SHA-256
    /// digest (an OCI layer): the compile cache is keyed by it rather than
    /// by hashing the bytes again (a third of a warm selection's time for
    /// an 18 MB layer), and `ahead` is its lookup from
    /// [`Host::lookup_ahead`] with the same digest, if one was started.
    /// Crate-private: a wrong digest would key the cache wrongly, so only
    /// callers that verified the bytes themselves use it.
    #[cfg(feature = "wasmtime")]
    pub(crate) async fn confirm_verified_async(
        &self,
        bytes: &[u8],
        sha256_hex: &str,
        options: &crate::confirm::ConfirmOptions,
        ahead: Option<LookupAhead>,
    ) -> Option<crate::confirm::Confirmation> {
        let looked_up = match ahead {
            // A failed task (it panicked) just means looking up again.
            Some(task) => task.await.ok().flatten(),
            None => None,
        };
        Some(match self.embedded()? {
            Ok(embedded) => {
                embedded
                    .confirm_looked_up(bytes, Some(sha256_hex), options, looked_up)
                    .await
            }
            Err(failed) => failed,
        })
    }

    /// Finds a world by its full name or its bare name.
    pub fn world(&self, name: &str) -> Option<&HostWorld> {
        self.worlds.iter().find(|w| {
            w.name == name
                || w.name
                    .parse::<WitName>()
                    .ok()
                    .and_then(|n| n.item)
                    .as_deref()
                    == Some(name)
        })
    }
}

/// Indexes a world's imports and exports by name.
fn host_world(resolve: &Resolve, id: WorldId) -> HostWorld {
    let w = &resolve.worlds[id];
    let name = match w.package {
        Some(pkg) => resolve.id_of_name(pkg, &w.name),
        None => w.name.clone(),
    };
    let index = |items: &wit_parser::IndexMap<WorldKey, WorldItem>| {
        items
            .keys()
            .map(|k| (item_name(resolve, k), k.clone()))
            .collect::<Vec<_>>()
    };
    HostWorld {
        name,
        id,
        command: None,
        provides: index(&w.imports),
        drives: index(&w.exports),
    }
}
