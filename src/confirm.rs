//! The last level of the verdict: link and instantiate in the embedded
//! wasmtime 48, in a sandbox. Only with the `wasmtime` cargo feature.
//!
//! The linker here *is* the built-in `wasmtime` host profile: wasmtime-wasi p2
//! and wasmtime-wasi-http p2 (WASI 0.2.12), wasmtime-wasi p3 and
//! wasmtime-wasi-http p3 (WASI 0.3.0), and wasmtime-wasi p1 for core modules.
//! `tests/confirm.rs` (`builtin_profile_is_exactly_the_linker`) proves that
//! `wit/worldfit.wit` describes exactly this.
//!
//! Nothing runs beyond instantiation: start functions do (they are part of
//! instantiating), `run`/`handle`/`_start` never. The sandbox has no preopened
//! directories, no environment, no arguments, empty stdin, captured and capped
//! stdout/stderr, no sockets, outgoing HTTP refused, a per-memory size limit
//! and a wall-clock limit (epoch interruption for wasm, a timer for host calls).
//!
//! Compiling is the expensive part, so it uses Winch (a baseline compiler,
//! several times faster than Cranelift) and falls back to Cranelift for what
//! Winch can't compile; results are kept in a verified [`CompileCache`].

use crate::cache::{CompileCache, Miss, sha256_hex};
use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use wasmtime::component::Component;
use wasmtime::{Config, Engine, Module, Store, StoreLimits, StoreLimitsBuilder, Strategy};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::pipe::{MemoryInputPipe, MemoryOutputPipe};
use wasmtime_wasi::{WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

/// How often the epoch advances; the time limit's granularity.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Limits of the sandbox, with defaults the CLI exposes as flags.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest size of any one linear memory, in bytes (default 512 MiB).
    pub memory_bytes: usize,
    /// Wall-clock budget for instantiation, start functions included (default 5 s).
    pub time: Duration,
    /// Capacity of each captured output stream (default 64 KiB).
    pub output_bytes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            memory_bytes: 512 << 20,
            time: Duration::from_secs(5),
            output_bytes: 64 << 10,
        }
    }
}

/// How to confirm: limits, and where to cache compiled code.
#[derive(Debug, Clone, Default)]
pub struct ConfirmOptions {
    /// Sandbox limits.
    pub limits: Limits,
    /// The compile cache; `None` compiles every time.
    pub cache: Option<CompileCache>,
    /// Compile the real code even where a stub would confirm the same
    /// (see [`crate::stub`]): for proving the two paths agree, and for
    /// warming the cache for a shim that will run the binary.
    pub full: bool,
}

/// How a confirmation compiled what it instantiated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Path {
    /// The binary itself.
    #[default]
    Compiled,
    /// Its stub, after validating the binary in full: nothing in it runs
    /// code while instantiating, so the stub instantiates exactly as the
    /// binary would ([`crate::stub`]).
    Stub,
}

/// Which compiler produced the code that was instantiated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// The baseline compiler (fast to compile).
    Winch,
    /// The optimizing compiler, for what Winch can't compile.
    Cranelift,
}

/// Why a confirmation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Failure {
    /// Neither compiler accepted the binary.
    Compile,
    /// Linking or instantiating failed (missing import, trap, limit).
    Instantiate,
    /// Instantiation did not finish within the time limit.
    TimedOut,
    /// A memory grew past the memory limit.
    MemoryLimit,
}

/// The outcome of linking and instantiating.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Confirmation {
    /// Whether instantiation succeeded.
    pub instantiated: bool,
    /// Why not, when it didn't.
    pub failure: Option<Failure>,
    /// wasmtime's own message, on one line, when it didn't.
    pub message: Option<String>,
    /// The compiler whose code ran (`None` if nothing compiled).
    pub backend: Option<Backend>,
    /// What was compiled: the binary, or its stub.
    pub path: Path,
    /// Whether the compiled code came from the cache.
    pub cached: bool,
    /// A warning about the cache (unwritable, discarded entry), if any.
    pub cache_note: Option<String>,
    /// Time spent compiling or loading from the cache.
    #[serde(serialize_with = "millis", rename = "compile_ms")]
    pub compile: Duration,
    /// Time spent linking and instantiating.
    #[serde(serialize_with = "millis", rename = "instantiate_ms")]
    pub instantiate: Duration,
    /// What the guest wrote to stdout while instantiating (capped).
    #[serde(serialize_with = "lossy")]
    pub stdout: Vec<u8>,
    /// What the guest wrote to stderr while instantiating (capped).
    #[serde(serialize_with = "lossy")]
    pub stderr: Vec<u8>,
}

impl Confirmation {
    /// A confirmation that failed before anything compiled.
    pub fn failed(failure: Failure, message: String) -> Confirmation {
        Confirmation {
            instantiated: false,
            failure: Some(failure),
            message: Some(message),
            backend: None,
            path: Path::Compiled,
            cached: false,
            cache_note: None,
            compile: Duration::ZERO,
            instantiate: Duration::ZERO,
            stdout: Vec::new(),
            stderr: Vec::new(),
        }
    }
}

fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_secs_f64() * 1e6).round() / 1e3)
}

fn lossy<S: serde::Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&String::from_utf8_lossy(b))
}

/// Store data: one type serves components (p2/p3 via `WasiView`,
/// `WasiHttpView`) and core modules (p1 via the `WasiP1Ctx` inside).
struct Ctx {
    wasi: WasiP1Ctx,
    http: WasiHttpCtx,
    hooks: RefuseOutgoingHttp,
    limits: StoreLimits,
    stdout: MemoryOutputPipe,
    stderr: MemoryOutputPipe,
}

impl WasiView for Ctx {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        self.wasi.ctx()
    }
}

impl WasiHttpView for Ctx {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        // http bodies are wasi:io streams: they must share WASI's resource table.
        let WasiCtxView { table, .. } = self.wasi.ctx();
        WasiHttpCtxView {
            ctx: &mut self.http,
            table,
            hooks: &mut self.hooks,
        }
    }
}

/// Refuses every outgoing request (p2 `outgoing-handler`, p3 `client`): the
/// guest sees `HTTP-request-denied`.
struct RefuseOutgoingHttp;

type SendResult = Result<
    (
        http::Response<wasmtime_wasi_http::WasiBody>,
        Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ),
    wasmtime_wasi_http::Error,
>;

impl WasiHttpHooks for RefuseOutgoingHttp {
    fn send_request(
        &mut self,
        _request: http::Request<wasmtime_wasi_http::WasiBody>,
        _options: Option<wasmtime_wasi_http::RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) })
    }
}

/// One engine and the two linkers on it (a compiled artifact only
/// instantiates in the engine that compiled it).
struct Runtime {
    backend: Backend,
    engine: Engine,
    components: wasmtime::component::Linker<Ctx>,
    modules: wasmtime::Linker<Ctx>,
    /// `precompile_compatibility_hash`, stable across processes: the cache key's second half.
    compat: String,
}

impl Runtime {
    fn new(backend: Backend) -> wasmtime::Result<Runtime> {
        let mut config = Config::new();
        config
            .strategy(match backend {
                Backend::Winch => Strategy::Winch,
                Backend::Cranelift => Strategy::Cranelift,
            })
            .wasm_component_model(true)
            .wasm_component_model_async(true)
            .epoch_interruption(true);
        if backend == Backend::Winch {
            // The cold path is about compile time, not code quality: Winch
            // still hands trampolines and adapters to Cranelift, so don't let
            // Cranelift optimize them, and skip the wasm-offset address map
            // (it only improves trap backtraces) and native unwind tables (for
            // native debuggers and profilers; wasmtime walks frames itself).
            config
                .cranelift_opt_level(wasmtime::OptLevel::None)
                .generate_address_map(false)
                .native_unwind_info(false);
        }
        let engine = Engine::new(&config)?;
        let mut components = wasmtime::component::Linker::<Ctx>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut components)?;
        // Only the http interfaces: the proxy variant re-adds p2 interfaces.
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut components)?;
        wasmtime_wasi::p3::add_to_linker(&mut components)?;
        wasmtime_wasi_http::p3::add_to_linker(&mut components)?;
        let mut modules = wasmtime::Linker::<Ctx>::new(&engine);
        wasmtime_wasi::p1::add_to_linker_async(&mut modules, |c: &mut Ctx| &mut c.wasi)?;
        let compat = compat_hash(&engine);
        Ok(Runtime {
            backend,
            engine,
            components,
            modules,
            compat,
        })
    }
}

/// Feeds `Hash` output into SHA-256: a hasher that is the same in every
/// process and Rust release, unlike `DefaultHasher`.
struct ShaHasher(Sha256);

impl Hasher for ShaHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
    fn finish(&self) -> u64 {
        let digest = self.0.clone().finalize();
        u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"))
    }
}

/// 16 hex digits naming what a compiled artifact of `engine` needs to load
/// again (wasmtime's `Engine::precompile_compatibility_hash`, fed to
/// SHA-256 so it is the same in every process and Rust release): the half
/// of a compile-cache key that says which engine made the entry. Used by
/// confirmation and by the shim, which caches the code it runs.
pub fn compat_hash(engine: &Engine) -> String {
    let mut h = ShaHasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut h);
    format!("{:016x}", h.finish())
}

/// The process-wide embedded runtime: both engines, their linkers, and the
/// thread that advances their epochs.
pub struct Embedded {
    winch: Runtime,
    cranelift: Runtime,
    ticker_stop: Arc<AtomicBool>,
}

impl Drop for Embedded {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

/// The cache key of an artifact: the kind of wasm, the bytes' SHA-256
/// (`stub-` and the binary's for a stub), and the engine's compatibility
/// hash.
fn cache_key(sha256_hex: &str, is_component: bool, rt: &Runtime) -> String {
    let kind = if is_component { "component" } else { "module" };
    format!("{kind}-{sha256_hex}-{}", rt.compat)
}

/// The SHA-256 that keys the bytes' cache entries: the one the caller
/// verified, else computed; `None` without a cache (nothing to key).
fn cache_digest(
    bytes: &[u8],
    known_sha256: Option<&str>,
    options: &ConfirmOptions,
) -> Option<String> {
    options.cache.as_ref().map(|_| match known_sha256 {
        Some(d) => d.to_string(),
        None => sha256_hex(bytes),
    })
}

/// The digest a stub's artifact is cached under.
fn stub_digest(sha256_hex: &str) -> String {
    format!("stub-{sha256_hex}")
}

/// What [`Embedded::lookup_ahead`] found.
pub(crate) struct CacheLookup {
    /// The artifact, its compiler, and whether it is a component.
    found: Option<(Backend, Artifact, bool)>,
    /// A discarded entry, reported with the confirmation.
    note: Option<String>,
    /// Time spent checking and mapping.
    took: Duration,
}

/// A compiled artifact of either kind.
enum Artifact {
    Component(Component),
    Module(Module),
}

impl Embedded {
    /// The shared instance, built on first use.
    pub fn get() -> Result<&'static Embedded, String> {
        static EMBEDDED: OnceLock<Result<Embedded, String>> = OnceLock::new();
        EMBEDDED
            .get_or_init(|| Embedded::new().map_err(|e| format!("{e:#}")))
            .as_ref()
            .map_err(Clone::clone)
    }

    fn new() -> wasmtime::Result<Embedded> {
        // (wasmtime is built without its `backtrace` feature, so its error
        // messages carry no backtraces.)
        let winch = Runtime::new(Backend::Winch)?;
        let cranelift = Runtime::new(Backend::Cranelift)?;
        let stop = Arc::new(AtomicBool::new(false));
        let engines = [winch.engine.weak(), cranelift.engine.weak()];
        let flag = stop.clone();
        std::thread::Builder::new()
            .name("worldfit-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    for e in &engines {
                        if let Some(e) = e.upgrade() {
                            e.increment_epoch();
                        }
                    }
                }
            })
            .map_err(|e| wasmtime::format_err!("cannot start the epoch thread: {e}"))?;
        Ok(Embedded {
            winch,
            cranelift,
            ticker_stop: stop,
        })
    }

    fn runtime(&self, backend: Backend) -> &Runtime {
        match backend {
            Backend::Winch => &self.winch,
            Backend::Cranelift => &self.cranelift,
        }
    }

    /// Looks an artifact up in the compile cache for either kind of wasm,
    /// before the bytes are at hand: run on another thread while an OCI
    /// layer whose digest is known is still being fetched, so checking and
    /// mapping the artifact (tens of MB) overlaps with the fetch.
    pub(crate) fn lookup_ahead(&self, sha256_hex: &str, cache: &CompileCache) -> CacheLookup {
        let start = Instant::now();
        let mut note = None;
        let found = [true, false].into_iter().find_map(|component| {
            self.lookup(sha256_hex, component, cache, &mut note)
                .map(|(backend, artifact)| (backend, artifact, component))
        });
        CacheLookup {
            found,
            note,
            took: start.elapsed(),
        }
    }

    /// A cached artifact from either compiler; a discarded entry is noted.
    fn lookup(
        &self,
        sha256_hex: &str,
        is_component: bool,
        cache: &CompileCache,
        note: &mut Option<String>,
    ) -> Option<(Backend, Artifact)> {
        for rt in [&self.winch, &self.cranelift] {
            let key = cache_key(sha256_hex, is_component, rt);
            match cache.load(&key) {
                Ok(Ok(path)) => {
                    // SAFETY: the file was written by this cache from `serialize`
                    // of an engine with the same compatibility hash, and is
                    // verified (owner, mode, no symlink, length, checksum) in a
                    // directory only this user can write; wasmtime checks its
                    // header too. It maps the file rather than copying it.
                    let loaded = unsafe {
                        if is_component {
                            Component::deserialize_file(&rt.engine, &path).map(Artifact::Component)
                        } else {
                            Module::deserialize_file(&rt.engine, &path).map(Artifact::Module)
                        }
                    };
                    match loaded {
                        Ok(a) => return Some((rt.backend, a)),
                        Err(e) => {
                            *note = Some(format!("discarded cache entry `{key}`: {}", one_line(&e)))
                        }
                    }
                }
                Ok(Err(Miss::Discarded(why))) => {
                    *note = Some(format!("discarded cache entry `{key}`: {why}"))
                }
                Ok(Err(Miss::Absent)) | Err(_) => {}
            }
        }
        None
    }

    /// Compiles with Winch, or Cranelift where Winch can't; via the cache.
    fn compile(
        &self,
        bytes: &[u8],
        known_sha256: Option<&str>,
        is_component: bool,
        options: &ConfirmOptions,
        c: &mut Confirmation,
        ahead: Option<CacheLookup>,
    ) -> Result<(Backend, Artifact), String> {
        let start = Instant::now();
        let digest = cache_digest(bytes, known_sha256, options);
        if let Some(ahead) = ahead {
            // Looked up while the bytes were arriving; a miss was already looked for.
            c.cache_note = ahead.note;
            if let Some((backend, artifact, component)) = ahead.found
                && component == is_component
            {
                c.cached = true;
                c.compile = ahead.took;
                return Ok((backend, artifact));
            }
        } else if let (Some(cache), Some(digest)) = (&options.cache, &digest)
            && let Some(found) = self.lookup(digest, is_component, cache, &mut c.cache_note)
        {
            c.cached = true;
            c.compile = start.elapsed();
            return Ok(found);
        }
        let built = self.build(bytes, is_component);
        c.compile = start.elapsed();
        let (backend, artifact) = built.map_err(|e| one_line(&e))?;
        self.store_artifact(&artifact, digest.as_deref(), backend, options, c);
        Ok((backend, artifact))
    }

    /// Compiles with Winch, or Cranelift where Winch can't; no cache.
    fn build(&self, bytes: &[u8], is_component: bool) -> wasmtime::Result<(Backend, Artifact)> {
        let build = |rt: &Runtime| -> wasmtime::Result<Artifact> {
            // A Winch lowering that panics must not take the process down.
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                if is_component {
                    Component::new(&rt.engine, bytes).map(Artifact::Component)
                } else {
                    Module::new(&rt.engine, bytes).map(Artifact::Module)
                }
            }))
            .unwrap_or_else(|_| {
                Err(wasmtime::format_err!(
                    "the {:?} compiler panicked",
                    rt.backend
                ))
            })
        };
        match build(&self.winch) {
            Ok(a) => Ok((Backend::Winch, a)),
            Err(_) => build(&self.cranelift).map(|a| (Backend::Cranelift, a)),
        }
    }

    /// Keeps an artifact in the cache under `digest`, if there is a cache;
    /// a failure to store is noted, not fatal.
    fn store_artifact(
        &self,
        artifact: &Artifact,
        digest: Option<&str>,
        backend: Backend,
        options: &ConfirmOptions,
        c: &mut Confirmation,
    ) {
        let (Some(cache), Some(digest)) = (&options.cache, digest) else {
            return;
        };
        let key = cache_key(
            digest,
            matches!(artifact, Artifact::Component(_)),
            self.runtime(backend),
        );
        let serialized = match artifact {
            Artifact::Component(a) => a.serialize(),
            Artifact::Module(a) => a.serialize(),
        };
        let stored = serialized
            .map_err(|e| anyhow::anyhow!("{e}"))
            .and_then(|bytes| cache.store(&key, &bytes));
        if let Err(e) = stored {
            c.cache_note = Some(format!("not cached: {e:#}"));
        }
    }

    /// Validates the binary in full while its stub (see [`crate::stub`]) is
    /// made and compiled on this thread, via the cache: a stub is cached
    /// under its binary's digest with a `stub-` prefix, and only once the
    /// binary has validated. A full artifact that `select` found ahead
    /// (while the layer was fetched) is used as it is. A binary that can't
    /// be stubbed, or whose stub doesn't compile, is compiled in full.
    fn compile_stub(
        &self,
        bytes: &[u8],
        known_sha256: Option<&str>,
        is_component: bool,
        options: &ConfirmOptions,
        c: &mut Confirmation,
        ahead: Option<CacheLookup>,
    ) -> Result<(Backend, Artifact), String> {
        let start = Instant::now();
        match ahead {
            Some(a) if a.found.as_ref().is_some_and(|f| f.2 == is_component) => {
                return self.compile(bytes, known_sha256, is_component, options, c, Some(a));
            }
            Some(a) => c.cache_note = a.note,
            None => {}
        }
        let digest = cache_digest(bytes, known_sha256, options);
        let key = digest.as_deref().map(stub_digest);
        c.path = Path::Stub;
        if let (Some(cache), Some(key)) = (&options.cache, &key)
            && let Some(found) = self.lookup(key, is_component, cache, &mut c.cache_note)
        {
            c.cached = true;
            c.compile = start.elapsed();
            return Ok(found);
        }
        // Two cores' worth of work: validating the real bodies, and
        // building the stub, which needs neither.
        let (validated, built) = std::thread::scope(|s| {
            let validating = std::thread::Builder::new()
                .name("worldfit-validate".into())
                .spawn_scoped(s, || crate::stub::validate(bytes));
            // The stub is made before the binary is known to be valid: a
            // re-encoder panicking on malformed input must not take the
            // process down (validation then reports the input).
            let built = std::panic::catch_unwind(|| crate::stub::stub(bytes))
                .ok()
                .and_then(Result::ok)
                .and_then(|stub| self.build(&stub, is_component).ok());
            let validated = match validating {
                Ok(handle) => handle
                    .join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("the validator panicked"))),
                // No thread to spare: validate here.
                Err(_) => crate::stub::validate(bytes),
            };
            (validated, built)
        });
        if let Err(e) = validated {
            c.compile = start.elapsed();
            return Err(format!("invalid WebAssembly: {e}"));
        }
        let Some((backend, artifact)) = built else {
            // Valid, but not stubbable (or the stub didn't compile): the
            // real code then.
            c.path = Path::Compiled;
            return self.compile(bytes, known_sha256, is_component, options, c, None);
        };
        c.compile = start.elapsed();
        self.store_artifact(&artifact, key.as_deref(), backend, options, c);
        Ok((backend, artifact))
    }

    fn store(&self, rt: &Runtime, limits: &Limits) -> Store<Ctx> {
        let stdout = MemoryOutputPipe::new(limits.output_bytes);
        let stderr = MemoryOutputPipe::new(limits.output_bytes);
        let mut b = WasiCtxBuilder::new();
        // The defaults are already empty; spelled out so a new default can't widen the sandbox.
        b.stdin(MemoryInputPipe::new(&b""[..]))
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .socket_addr_check(|_, _| Box::pin(async { false }));
        let ctx = Ctx {
            wasi: b.build_p1(),
            http: WasiHttpCtx::new(),
            hooks: RefuseOutgoingHttp,
            limits: StoreLimitsBuilder::new()
                .memory_size(limits.memory_bytes)
                // A failed grow traps with a clear message instead of returning
                // -1 to a guest that may spin on it until the time limit.
                .trap_on_grow_failure(true)
                .build(),
            stdout,
            stderr,
        };
        let mut store = Store::new(&rt.engine, ctx);
        store.limiter(|c| &mut c.limits);
        let ticks = (limits.time.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64;
        store.set_epoch_deadline(ticks);
        store.epoch_deadline_trap();
        store
    }

    /// Links and instantiates, never calling an export. `sha256_hex`, when
    /// given, must be the bytes' SHA-256 (it keys the compile cache).
    pub async fn confirm_async(
        &self,
        bytes: &[u8],
        sha256_hex: Option<&str>,
        options: &ConfirmOptions,
    ) -> Confirmation {
        self.confirm_looked_up(bytes, sha256_hex, options, None)
            .await
    }

    /// [`Embedded::confirm_async`] with the compile cache already looked up
    /// by [`Embedded::lookup_ahead`] for `sha256_hex`.
    pub(crate) async fn confirm_looked_up(
        &self,
        bytes: &[u8],
        sha256_hex: Option<&str>,
        options: &ConfirmOptions,
        ahead: Option<CacheLookup>,
    ) -> Confirmation {
        let mut c = Confirmation::failed(Failure::Instantiate, String::new());
        c.failure = None;
        c.message = None;
        let is_component = wasmparser::Parser::is_component(bytes);
        let stubbed = !options.full && !crate::stub::runs_code_while_instantiating(bytes);
        let compiled = if stubbed {
            self.compile_stub(bytes, sha256_hex, is_component, options, &mut c, ahead)
        } else {
            self.compile(bytes, sha256_hex, is_component, options, &mut c, ahead)
        };
        let (backend, artifact) = match compiled {
            Ok(x) => x,
            Err(message) => {
                c.failure = Some(Failure::Compile);
                c.message = Some(message);
                return c;
            }
        };
        c.backend = Some(backend);
        let rt = self.runtime(backend);
        let mut store = self.store(rt, &options.limits);
        let start = Instant::now();
        // Epochs interrupt wasm; a start function blocked in a host call (a
        // sleep, a poll) is bounded by this timer instead.
        let budget = options.limits.time + EPOCH_TICK * 2;
        let result = match &artifact {
            Artifact::Component(a) => {
                tokio::time::timeout(budget, rt.components.instantiate_async(&mut store, a))
                    .await
                    .map(|r| r.map(drop))
            }
            Artifact::Module(a) => {
                tokio::time::timeout(budget, rt.modules.instantiate_async(&mut store, a))
                    .await
                    .map(|r| r.map(drop))
            }
        };
        c.instantiate = start.elapsed();
        match result {
            Ok(Ok(())) => c.instantiated = true,
            Ok(Err(e))
                if e.downcast_ref::<wasmtime::Trap>() == Some(&wasmtime::Trap::Interrupt) =>
            {
                c.failure = Some(Failure::TimedOut);
                c.message = Some(one_line(&e));
            }
            Ok(Err(e)) => {
                let message = one_line(&e);
                // StoreLimits' `trap_on_grow_failure` is the only source of this trap.
                c.failure = Some(if message.contains("forcing trap when growing memory") {
                    Failure::MemoryLimit
                } else {
                    Failure::Instantiate
                });
                c.message = Some(message);
            }
            Err(_) => {
                c.failure = Some(Failure::TimedOut);
                c.message = Some("blocked in a host call".into());
            }
        }
        c.stdout = store.data().stdout.contents().to_vec();
        c.stderr = store.data().stderr.contents().to_vec();
        c
    }

    /// [`Embedded::confirm_async`] on a private current-thread runtime.
    pub fn confirm(&self, bytes: &[u8], options: &ConfirmOptions) -> Confirmation {
        match tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
        {
            Ok(rt) => rt.block_on(self.confirm_async(bytes, None, options)),
            Err(e) => Confirmation::failed(
                Failure::Instantiate,
                format!("cannot start an async runtime: {e}"),
            ),
        }
    }
}

/// wasmtime's error chain, joined on one line.
fn one_line(e: &wasmtime::Error) -> String {
    format!("{e:#}")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}
