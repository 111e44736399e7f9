//! Serving a `wasi:http/incoming-handler@0.2.x` component, as runwasi's
//! wasmtime shim does: HTTP/1.1 on `WASMTIME_HTTP_PROXY_SOCKET_ADDR` from
//! the container's env (default `0.0.0.0:8080`; the variable is taken out
//! of the env the guest sees), a fresh instance per request (pre-linked
//! once), until the container is killed.

use crate::run::{Ctx, Program, new_store};
use anyhow::{Result, anyhow, bail};
use std::net::SocketAddr;
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

/// The variable naming the address to listen on (runwasi's name).
pub const ADDR_VAR: &str = "WASMTIME_HTTP_PROXY_SOCKET_ADDR";
/// Where to listen when the container doesn't say.
pub const DEFAULT_ADDR: &str = "0.0.0.0:8080";

/// Takes the listening address out of `program`'s env.
///
/// # Errors
/// The variable is set to something that isn't `IP:PORT`.
pub fn take_addr(program: &mut Program) -> Result<SocketAddr> {
    let mut addr = None;
    program.env.retain(|(k, v)| {
        let ours = k == ADDR_VAR;
        if ours {
            addr = Some(v.clone());
        }
        !ours
    });
    let text = addr.unwrap_or_else(|| DEFAULT_ADDR.to_string());
    text.parse()
        .map_err(|_| anyhow!("{ADDR_VAR}=`{text}` is not an address (IP:PORT)"))
}

/// Serves until the future is dropped (a kill); returns only when it can't
/// listen.
pub async fn serve(pre: ProxyPre<Ctx>, mut program: Program) -> Result<u32> {
    let addr = take_addr(&mut program)?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow!("cannot listen on {addr}: {e}"))?;
    log::info!(
        "worldfit: serving wasi:http on {}",
        listener.local_addr().map_err(|e| anyhow!("{e}"))?
    );
    loop {
        let client = match listener.accept().await {
            Ok((client, _)) => client,
            // Out of descriptors, a connection reset before it was taken:
            // passing; the server goes on.
            Err(e) => {
                log::warn!("worldfit: cannot accept a connection on {addr}: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let (pre, program) = (pre.clone(), program.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                handle(pre.clone(), program.clone(), request)
            });
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(client), service)
                .await
            {
                log::warn!("worldfit: an HTTP connection failed: {e}");
            }
        });
    }
}

/// One request: a new instance, `handle` called on a task of its own so
/// the body can stream after the response head is set.
async fn handle(
    pre: ProxyPre<Ctx>,
    program: Program,
    request: hyper::Request<hyper::body::Incoming>,
) -> Result<hyper::Response<HyperOutgoingBody>> {
    let mut store = new_store(pre.engine(), &program)?;
    let (sender, receiver) = tokio::sync::oneshot::channel();
    let mut http = store.data_mut().http();
    let request = http
        .new_incoming_request(Scheme::Http, request)
        .map_err(|e| anyhow!("{e:#}"))?;
    let out = http
        .new_response_outparam(sender)
        .map_err(|e| anyhow!("{e:#}"))?;
    let task = tokio::spawn(async move {
        let proxy = pre.instantiate_async(&mut store).await?;
        proxy
            .wasi_http_incoming_handler()
            .call_handle(&mut store, request, out)
            .await
    });
    match receiver.await {
        Ok(Ok(response)) => Ok(response),
        Ok(Err(code)) => bail!("the handler answered with an error: {code:?}"),
        Err(_) => {
            let why = match task.await {
                Ok(Ok(())) => "it returned".to_string(),
                Ok(Err(e)) => format!("{e:#}"),
                Err(e) => e.to_string(),
            };
            log::error!("worldfit: the handler set no response: {why}");
            bail!("the handler set no response: {why}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_address_is_taken_out_of_the_env() {
        let mut p = Program {
            env: vec![
                ("A".into(), "1".into()),
                (ADDR_VAR.into(), "127.0.0.1:9".into()),
            ],
            ..Program::default()
        };
        assert_eq!(take_addr(&mut p).unwrap(), "127.0.0.1:9".parse().unwrap());
        assert_eq!(p.env, [("A".to_string(), "1".to_string())]);
        let mut p = Program::default();
        assert_eq!(take_addr(&mut p).unwrap(), DEFAULT_ADDR.parse().unwrap());
        let mut p = Program {
            env: vec![(ADDR_VAR.into(), "nowhere".into())],
            ..Program::default()
        };
        let e = take_addr(&mut p).unwrap_err().to_string();
        assert_eq!(
            e,
            "WASMTIME_HTTP_PROXY_SOCKET_ADDR=`nowhere` is not an address (IP:PORT)"
        );
    }
}
