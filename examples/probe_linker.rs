//! What a shim does to learn its own host profile: it links worldfit's
//! probe binaries with *its* engine and linker (here wasmtime 48 with
//! wasmtime-wasi and wasmtime-wasi-http, as a runwasi-style shim sets them
//! up) and gets back a proven profile. Only bytes and a yes/no cross
//! between worldfit and the shim's wasmtime, so the two need not be the
//! same wasmtime release.
//!
//! ```text
//! cargo run --example probe_linker > my-shim.json
//! worldfit check app.wasm --host-file my-shim.json
//! ```

use std::future::Future;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, Module, Store};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::{WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};
use worldfit::host::probe::{ProbeOutcome, Probed, probe};
use worldfit::host::profile::{FORMAT, Invocation, Profile, Support};

/// The shim's per-instance state.
struct Ctx {
    wasi: WasiP1Ctx,
    http: WasiHttpCtx,
    hooks: NoOutgoingHttp,
    _table: ResourceTable,
}

impl WasiView for Ctx {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        self.wasi.ctx()
    }
}

impl WasiHttpView for Ctx {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        let WasiCtxView { table, .. } = self.wasi.ctx();
        WasiHttpCtxView {
            ctx: &mut self.http,
            table,
            hooks: &mut self.hooks,
        }
    }
}

/// Probes are linked, never run, so no request is ever sent.
struct NoOutgoingHttp;

type SendResult = Result<
    (
        http::Response<wasmtime_wasi_http::WasiBody>,
        Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ),
    wasmtime_wasi_http::Error,
>;

impl WasiHttpHooks for NoOutgoingHttp {
    fn send_request(
        &mut self,
        _request: http::Request<wasmtime_wasi_http::WasiBody>,
        _options: Option<wasmtime_wasi_http::RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) })
    }
}

/// Measures the shim's linker: every probe is compiled and pre-instantiated
/// (`instantiate_pre` type-checks every import against the linker, which is
/// exactly "does it link"), and a component must also export an entry point
/// this shim drives: the one its `CommandPre`/`ProxyPre`/`ServicePre`
/// accepts (each checks the export's name and type), as the shim would
/// before calling it.
pub fn probe_my_linker() -> wasmtime::Result<Probed> {
    let mut config = Config::new();
    config.wasm_component_model_async(true);
    let engine = Engine::new(&config)?;
    let mut components = Linker::<Ctx>::new(&engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut components)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut components)?;
    wasmtime_wasi::p3::add_to_linker(&mut components)?;
    wasmtime_wasi_http::p3::add_to_linker(&mut components)?;
    let mut modules = wasmtime::Linker::<Ctx>::new(&engine);
    wasmtime_wasi::p1::add_to_linker_async(&mut modules, |c: &mut Ctx| &mut c.wasi)?;

    probe(
        |p| {
            let linked = if wasmparser::Parser::is_component(&p.bytes) {
                Component::new(&engine, &p.bytes)
                    .and_then(|c| components.instantiate_pre(&c).map(drop))
            } else {
                // A core module is also instantiated (a probe has no start
                // function, so nothing runs): some refusals come only then,
                // e.g. a shared memory when `Config::shared_memory` is off.
                Module::new(&engine, &p.bytes)
                    .and_then(|m| modules.instantiate_pre(&m))
                    .and_then(|pre| {
                        let mut store = Store::new(&engine, new_ctx());
                        tokio::runtime::Builder::new_current_thread()
                            .build()?
                            .block_on(pre.instantiate_async(&mut store))
                            .map(drop)
                    })
            };
            match linked {
                Ok(()) => ProbeOutcome::Linked,
                Err(e) => ProbeOutcome::Refused(format!("{e:#}")),
            }
        },
        // The engine and linkers are thread-safe; probes compile in parallel.
        2,
    )
    .map_err(|e| wasmtime::format_err!("{e:#}"))
}

/// A shim builds one state per instance.
fn new_ctx() -> Ctx {
    Ctx {
        wasi: WasiCtxBuilder::new().build_p1(),
        http: WasiHttpCtx::new(),
        hooks: NoOutgoingHttp,
        _table: ResourceTable::new(),
    }
}

#[allow(dead_code)]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let probed = probe_my_linker().map_err(|e| format!("{e:#}"))?;
    let profile = Profile {
        worldfit_host_profile: FORMAT,
        name: "my-shim".into(),
        version: "1.0.0".into(),
        source: Some(format!(
            "probed through its own linker ({} probes)",
            probed.probes
        )),
        invocations: vec![Invocation {
            name: "run".into(),
            command: vec!["my-shim".into()],
            support: Support::from_probed(&probed),
            flags: vec![],
        }],
    };
    println!("{}", serde_json::to_string_pretty(&profile)?);
    Ok(())
}
