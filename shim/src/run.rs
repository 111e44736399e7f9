//! Running the selected build: one wasmtime 48 engine for the shim's life,
//! linkers with WASI p1, p2, p3 and wasi:http, and the compile cache.
//!
//! What runs, by what the binary is (as `wasmtime run` decides):
//! - a component exporting `wasi:cli/run@0.3.x`: its `run`, concurrently
//!   (`Store::run_concurrent`);
//! - a component exporting `wasi:cli/run@0.2.x`: its `run`;
//! - a component exporting `wasi:http/incoming-handler@0.2.x` (and no
//!   `wasi:cli/run`): served, as runwasi's wasmtime shim does (`serve`);
//! - a core module: WASI preview 1, its `_start`.
//!
//! Exit status, as the wasmtime CLI gives it on Unix: `exit(n)` is n, `run`
//! returning `err` is 1, a trap is 134 (128 + SIGABRT).

use anyhow::{Result, anyhow, bail};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use wasmtime::component::{Component, types::ComponentItem};
use wasmtime::{Config, Engine, Module, Store};
use wasmtime_wasi::cli::{AsyncStdinStream, OutputFile};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};
use worldfit::cache::CompileCache;

/// How often running wasm yields to the runtime, so a kill is seen.
const YIELD_EVERY: Duration = Duration::from_millis(10);

/// Exit status of a trap (wasmtime CLI on Unix: 128 + SIGABRT).
pub const TRAP_STATUS: u32 = 134;

/// Store data: WASI (p1's context holds the p2/p3 one) and wasi:http.
pub(crate) struct Ctx {
    wasi: WasiP1Ctx,
    http: WasiHttpCtx,
}

impl WasiView for Ctx {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        self.wasi.ctx()
    }
}

impl WasiHttpView for Ctx {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        // http bodies are wasi:io streams: they share WASI's resource table.
        let WasiCtxView { table, .. } = self.wasi.ctx();
        WasiHttpCtxView {
            ctx: &mut self.http,
            table,
            hooks: wasmtime_wasi_http::default_hooks(),
        }
    }
}

/// What a container runs with, from its bundle and containerd's FIFOs.
/// Cloning shares the stdio (an HTTP handler gets a store per request).
#[derive(Default, Clone)]
pub struct Program {
    /// `argv`, the program's name first.
    pub args: Vec<String>,
    /// `KEY=VALUE` pairs.
    pub env: Vec<(String, String)>,
    /// The container's root filesystem, preopened as `/` (if any).
    pub root: Option<PathBuf>,
    pub stdin: Option<Arc<AsyncStdinStream>>,
    pub stdout: Option<OutputFile>,
    pub stderr: Option<OutputFile>,
}

impl Program {
    /// Opens containerd's stdio FIFOs (an empty path: none) for the guest.
    /// stdin is read without blocking, so a guest waiting on it yields and
    /// can be killed, and read-only, so the guest sees its end when the
    /// writer closes it. stdout and stderr are opened read-write, as shimkit
    /// opens them (opening doesn't wait for a reader), and written as the
    /// guest writes (containerd drains them). Call it inside the runtime
    /// that runs the guest: stdin registers with its reactor.
    ///
    /// # Errors
    /// A FIFO can't be opened.
    pub fn open_stdio(&mut self, stdin: &Path, stdout: &Path, stderr: &Path) -> Result<()> {
        let named = |p: &Path| !p.as_os_str().is_empty();
        let failed =
            |what: &str, e: std::io::Error| anyhow!("cannot open the container's {what}: {e}");
        if named(stdin) {
            let r = tokio::net::unix::pipe::OpenOptions::new()
                .open_receiver(stdin)
                .map_err(|e| failed("stdin", e))?;
            self.stdin = Some(Arc::new(AsyncStdinStream::new(r)));
        }
        for (path, slot, what) in [
            (stdout, &mut self.stdout, "stdout"),
            (stderr, &mut self.stderr, "stderr"),
        ] {
            if named(path) {
                let w = std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(path)
                    .map_err(|e| failed(what, e))?;
                *slot = Some(OutputFile::new(w));
            }
        }
        Ok(())
    }
}

/// A compiled build, ready to instantiate.
pub enum Loaded {
    /// A component and the `wasi:cli/run` track it exports.
    Command(Component, CliTrack),
    /// A `wasi:http/incoming-handler@0.2.x` component, linked.
    Http(ProxyPre<Ctx>),
    /// A WASI preview 1 module.
    Module(Module),
}

/// Which `wasi:cli/run` a command exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CliTrack {
    P2,
    P3,
}

/// The engine and its linkers; built once per shim process.
pub struct Runner {
    engine: Engine,
    components: wasmtime::component::Linker<Ctx>,
    modules: wasmtime::Linker<Ctx>,
    compat: String,
    ticker_stop: Arc<AtomicBool>,
}

impl Drop for Runner {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

impl Runner {
    /// The engine (Cranelift, component model and its async ABI, epoch
    /// interruption for yielding) and linkers for every WASI track.
    pub fn new() -> wasmtime::Result<Runner> {
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .wasm_component_model_async(true)
            .epoch_interruption(true);
        let engine = Engine::new(&config)?;
        let mut components = wasmtime::component::Linker::<Ctx>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut components)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut components)?;
        wasmtime_wasi::p3::add_to_linker(&mut components)?;
        wasmtime_wasi_http::p3::add_to_linker(&mut components)?;
        let mut modules = wasmtime::Linker::<Ctx>::new(&engine);
        wasmtime_wasi::p1::add_to_linker_async(&mut modules, |c: &mut Ctx| &mut c.wasi)?;
        let stop = Arc::new(AtomicBool::new(false));
        let (weak, flag) = (engine.weak(), stop.clone());
        std::thread::Builder::new()
            .name("worldfit-shim-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(YIELD_EVERY);
                    match weak.upgrade() {
                        Some(e) => e.increment_epoch(),
                        None => return,
                    }
                }
            })
            .map_err(|e| wasmtime::format_err!("cannot start the epoch thread: {e}"))?;
        let compat = worldfit::confirm::compat_hash(&engine);
        Ok(Runner {
            engine,
            components,
            modules,
            compat,
            ticker_stop: stop,
        })
    }

    /// Compiles `bytes` (whose SHA-256 is `sha256_hex`), or loads the code
    /// compiled at an earlier start from `cache`. Returns the build and
    /// whether it came from the cache. A cache entry that fails its
    /// checks is removed and the bytes compiled again.
    pub fn load(
        &self,
        bytes: &[u8],
        sha256_hex: &str,
        cache: Option<&CompileCache>,
    ) -> Result<(Loaded, bool)> {
        let is_component = wasmparser::Parser::is_component(bytes);
        let key = format!(
            "run-{}-{sha256_hex}-{}",
            if is_component { "c" } else { "m" },
            self.compat
        );
        if let Some(cache) = cache
            && let Ok(Ok(path)) = cache.load(&key)
        {
            // SAFETY: the entry is checked against its checksum by
            // `CompileCache::load` in a directory only this user can write,
            // and was written by `serialize` of this engine's configuration
            // (the key carries its compatibility hash).
            let loaded = if is_component {
                unsafe { Component::deserialize_file(&self.engine, &path) }
                    .and_then(|c| self.command(c))
            } else {
                unsafe { Module::deserialize_file(&self.engine, &path) }.map(Loaded::Module)
            };
            if let Ok(loaded) = loaded {
                return Ok((loaded, true));
            }
        }
        let (loaded, serialized) = if is_component {
            let c = Component::new(&self.engine, bytes).map_err(one_line)?;
            let serialized = c.serialize().map_err(one_line)?;
            (self.command(c).map_err(one_line)?, serialized)
        } else {
            let m = Module::new(&self.engine, bytes).map_err(one_line)?;
            let serialized = m.serialize().map_err(one_line)?;
            (Loaded::Module(m), serialized)
        };
        if let Some(cache) = cache
            && let Err(e) = cache.store(&key, &serialized)
        {
            log::warn!("cannot cache the compiled build: {e:#}");
        }
        Ok((loaded, false))
    }

    /// What a component is to run as: a command (which `wasi:cli/run` it
    /// exports) or an HTTP handler.
    fn command(&self, component: Component) -> wasmtime::Result<Loaded> {
        let ty = component.component_type();
        let (mut track, mut handler) = (None, false);
        for (name, export) in ty.exports(&self.engine) {
            let ComponentItem::ComponentInstance(_) = export.ty else {
                continue;
            };
            if name.starts_with("wasi:cli/run@0.3.") {
                track = Some(CliTrack::P3);
            } else if name.starts_with("wasi:cli/run@0.2.") {
                track = Some(CliTrack::P2);
            } else if name.starts_with("wasi:http/incoming-handler@0.2.") {
                handler = true;
            }
        }
        match (track, handler) {
            (Some(track), _) => Ok(Loaded::Command(component, track)),
            (None, true) => Ok(Loaded::Http(ProxyPre::new(
                self.components.instantiate_pre(&component)?,
            )?)),
            (None, false) => Err(wasmtime::format_err!(
                "the component exports neither `wasi:cli/run` nor \
                 `wasi:http/incoming-handler@0.2`: this shim has nothing of it to run"
            )),
        }
    }

    /// Runs `loaded` to its end and returns its exit status.
    pub async fn run(&self, loaded: &Loaded, program: Program) -> Result<u32> {
        if let Loaded::Http(pre) = loaded {
            return crate::serve::serve(pre.clone(), program).await;
        }
        let mut store = new_store(&self.engine, &program)?;
        let outcome = match loaded {
            Loaded::Http(_) => unreachable!("served above"),
            Loaded::Command(component, CliTrack::P3) => {
                let command = wasmtime_wasi::p3::bindings::Command::instantiate_async(
                    &mut store,
                    component,
                    &self.components,
                )
                .await;
                match command {
                    Ok(command) => store
                        .run_concurrent(async move |store| {
                            command.wasi_cli_run().call_run(store).await
                        })
                        .await
                        .and_then(|r| r),
                    Err(e) => Err(e),
                }
            }
            Loaded::Command(component, CliTrack::P2) => {
                match wasmtime_wasi::p2::bindings::Command::instantiate_async(
                    &mut store,
                    component,
                    &self.components,
                )
                .await
                {
                    Ok(command) => command.wasi_cli_run().call_run(&mut store).await,
                    Err(e) => Err(e),
                }
            }
            Loaded::Module(module) => {
                match self.modules.instantiate_async(&mut store, module).await {
                    Ok(instance) => match instance.get_typed_func::<(), ()>(&mut store, "_start") {
                        Ok(start) => start.call_async(&mut store, ()).await.map(Ok),
                        Err(_) => bail!("the module exports no `_start`: it is not a command"),
                    },
                    Err(e) => Err(e),
                }
            }
        };
        Ok(match outcome {
            Ok(Ok(())) => 0,
            Ok(Err(())) => 1,
            Err(e) => match e.downcast_ref::<I32Exit>() {
                Some(I32Exit(code)) => *code as u32,
                None => {
                    log::error!("the guest trapped: {}", line(&e));
                    TRAP_STATUS
                }
            },
        })
    }
}

/// A store for one run of `program` (or one HTTP request).
pub(crate) fn new_store(engine: &Engine, program: &Program) -> Result<Store<Ctx>> {
    let mut b = WasiCtxBuilder::new();
    b.args(&program.args).envs(&program.env);
    if let Some(f) = &program.stdin {
        b.stdin(f.clone());
    }
    if let Some(f) = &program.stdout {
        b.stdout(f.clone());
    }
    if let Some(f) = &program.stderr {
        b.stderr(f.clone());
    }
    if let Some(root) = &program.root {
        b.preopened_dir(root, "/", FsPerms::ReadWrite)
            .map_err(|e| anyhow!("cannot open the root filesystem {}: {e}", root.display()))?;
    }
    let mut store = Store::new(
        engine,
        Ctx {
            wasi: b.build_p1(),
            http: WasiHttpCtx::new(),
        },
    );
    // Yield at every epoch: a kill drops the running future, which only
    // happens at a yield.
    store.epoch_deadline_async_yield_and_update(1);
    Ok(store)
}

/// wasmtime's error chain on one line.
fn line(e: &wasmtime::Error) -> String {
    format!("{e:#}").replace('\n', " ")
}

fn one_line(e: wasmtime::Error) -> anyhow::Error {
    anyhow!("{}", line(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(wat: &str) -> u32 {
        let bytes = wat::parse_str(wat).unwrap();
        let runner = Runner::new().unwrap();
        let (loaded, cached) = runner.load(&bytes, "00", None).unwrap();
        assert!(!cached);
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(runner.run(&loaded, Program::default()))
            .unwrap()
    }

    #[test]
    fn exit_status_is_the_guests_as_the_wasmtime_cli_gives_it() {
        let exit = r#"(module (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
            (memory (export "memory") 1) (func (export "_start") (call $exit (i32.const 7))))"#;
        assert_eq!(status(exit), 7);
        let trap = r#"(module (memory (export "memory") 1) (func (export "_start") unreachable))"#;
        assert_eq!(status(trap), TRAP_STATUS);
        let ends = r#"(module (memory (export "memory") 1) (func (export "_start")))"#;
        assert_eq!(status(ends), 0);
    }

    #[test]
    fn a_component_that_is_not_a_command_is_refused_when_loaded() {
        let runner = Runner::new().unwrap();
        let bytes = wat::parse_str("(component)").unwrap();
        let e = runner.load(&bytes, "00", None).err().unwrap();
        assert!(
            format!("{e}").contains("exports neither `wasi:cli/run` nor"),
            "{e}"
        );
    }

    #[test]
    fn a_cached_build_is_loaded_from_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CompileCache::new(dir.path().join("cache"));
        let bytes = wat::parse_str(r#"(module (func (export "_start")))"#).unwrap();
        let runner = Runner::new().unwrap();
        assert!(!runner.load(&bytes, "ab", Some(&cache)).unwrap().1);
        assert!(runner.load(&bytes, "ab", Some(&cache)).unwrap().1);
    }
}
