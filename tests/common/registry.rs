//! Registry test harness: a real distribution v2 server (Debian's
//! `docker-registry`) on a loopback port, and a fault-injecting, counting
//! proxy to put in front of it.
//!
//! Everything is std and synchronous, so the harness stays independent of the
//! async runtime the code under test uses. The HTTP/1.1 here is just enough
//! for the registry API over plain TCP: Content-Length and chunked bodies.
#![allow(dead_code)]

use std::io::{self, BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// The realm of both the registry's htpasswd auth and the proxy's injected
/// 401s.
pub const REALM: &str = "worldfit-test";

/// How long `Registry::start` waits for the server to answer.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Read timeout of `Registry::request`: long enough for any local request,
/// short enough that a hung test fails instead of hanging.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Header fields in order, names as sent (look them up with [`header`]).
pub type Headers = Vec<(String, String)>;

/// A `docker-registry` process with its own config, storage and log in a
/// temporary directory. Dropping it kills the process.
pub struct Registry {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    child: Child,
    dir: tempfile::TempDir,
}

impl Registry {
    /// An open registry (no auth).
    pub fn start() -> Registry {
        Registry::launch(None)
    }

    /// A registry that demands HTTP Basic auth for every request, checked
    /// against an htpasswd file holding just `user`.
    pub fn start_with_auth(user: &str, password: &str) -> Registry {
        Registry::launch(Some((user, password)))
    }

    fn launch(auth: Option<(&str, &str)>) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let auth_config = match auth {
            None => String::new(),
            Some((user, password)) => {
                let htpasswd = root.join("htpasswd");
                std::fs::write(&htpasswd, format!("{user}:{}\n", bcrypt(password))).unwrap();
                format!(
                    "auth:\n  htpasswd:\n    realm: {REALM}\n    path: {}\n",
                    htpasswd.display()
                )
            }
        };
        let config = root.join("config.yml");
        let log = root.join("registry.log");
        // The port is free when we look, but something else may take it
        // before the registry binds it: retry on that collision only.
        for _ in 0..5 {
            let addr = format!("127.0.0.1:{}", free_port());
            // Upload purging off: no background job in a test. A fixed secret
            // silences the "no HTTP secret" warning.
            let yaml = format!(
                "version: 0.1\n\
                 log:\n  level: info\n\
                 storage:\n  filesystem:\n    rootdirectory: {data}\n  delete:\n    enabled: true\n  \
                 maintenance:\n    uploadpurging:\n      enabled: false\n\
                 http:\n  addr: {addr}\n  secret: worldfit-test-secret\n\
                 {auth_config}",
                data = root.join("data").display()
            );
            std::fs::write(&config, yaml).unwrap();
            let out = std::fs::File::create(&log).unwrap();
            let mut child = Command::new("docker-registry")
                .arg("serve")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(out.try_clone().unwrap())
                .stderr(out)
                .spawn()
                .expect("running docker-registry (Debian package docker-registry)");
            match wait_ready(&addr, &mut child, &log) {
                Ok(()) => return Registry { addr, child, dir },
                Err(text) if text.contains("address already in use") => continue,
                Err(text) => panic!("docker-registry did not start on {addr}:\n{text}"),
            }
        }
        panic!("docker-registry: no free port in 5 tries")
    }

    /// What the registry logged so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// `method path` with no body; see [`request`].
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> (u16, Headers, Vec<u8>) {
        self.request_with_body(method, path, headers, b"")
    }

    /// `method path` with `body`; see [`request`]. Panics on I/O errors.
    pub fn request_with_body(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (u16, Headers, Vec<u8>) {
        request(&self.addr, method, path, headers, body, REQUEST_TIMEOUT)
            .unwrap_or_else(|e| panic!("{method} {path} on {}: {e}", self.addr))
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `GET /v2/` until the registry answers anything (401 counts), the
/// process exits, or [`START_TIMEOUT`] passes. The error is the log.
fn wait_ready(addr: &str, child: &mut Child, log: &Path) -> Result<(), String> {
    let deadline = Instant::now() + START_TIMEOUT;
    let read_log = || std::fs::read_to_string(log).unwrap_or_default();
    loop {
        if request(addr, "GET", "/v2/", &[], b"", Duration::from_secs(1)).is_ok() {
            return Ok(());
        }
        if let Some(status) = child.try_wait().unwrap() {
            return Err(format!("exited with {status}\n{}", read_log()));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("no answer in {START_TIMEOUT:?}\n{}", read_log()));
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// A loopback port nothing listens on right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An htpasswd bcrypt hash of `password`: the only format distribution
/// accepts. Perl is Essential on Debian and its `crypt` is libxcrypt's, which
/// does bcrypt, so this needs nothing installed (unlike `htpasswd` from
/// apache2-utils, or Python, whose `crypt` module is gone in 3.13). Cost 4,
/// the minimum, since it is hashed again on every request; a fixed salt is
/// fine for a throwaway test password.
fn bcrypt(password: &str) -> String {
    let out = Command::new("perl")
        .args([
            "-e",
            "print crypt($ARGV[0], $ARGV[1])",
            password,
            "$2y$04$worldfitTestSaltSalt.e",
        ])
        .output()
        .expect("running perl");
    let hash = String::from_utf8(out.stdout).unwrap();
    assert!(
        hash.starts_with("$2y$04$") && hash.len() == 60,
        "perl crypt() gave no bcrypt hash: {hash:?} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    hash
}

/// The `Authorization` value for HTTP Basic auth.
pub fn basic_auth(user: &str, password: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let input = format!("{user}:{password}");
    let mut out = String::from("Basic ");
    for chunk in input.as_bytes().chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | (b as u32) << (16 - 8 * i));
        for i in 0..4 {
            out.push(if i <= chunk.len() {
                ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char
            } else {
                '='
            });
        }
    }
    out
}

/// The first value of header `name` (case-insensitive, as HTTP wants: Go
/// sends `Www-Authenticate`).
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// One HTTP/1.1 request on a fresh connection with `Connection: close`;
/// returns status, headers and the (de-chunked) body. `target` may be a path
/// or an absolute `http://host/path` URL such as a registry `Location`, which
/// is sent to `addr` regardless of its host. A body cut short is an
/// `UnexpectedEof` error; no answer within `timeout` is a `WouldBlock` or
/// `TimedOut` error.
pub fn request(
    addr: &str,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout: Duration,
) -> io::Result<(u16, Headers, Vec<u8>)> {
    let path = match target.strip_prefix("http://") {
        Some(rest) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => target,
    };
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(timeout))?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head += &format!("{name}: {value}\r\n");
    }
    if !body.is_empty() || matches!(method, "POST" | "PUT" | "PATCH") {
        head += &format!("Content-Length: {}\r\n", body.len());
    }
    head += "\r\n";
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut reader = BufReader::new(stream);
    let (status_line, headers) = read_head(&mut reader)?.ok_or_else(|| eof("no response"))?;
    let status = parse_status(&status_line)?;
    let body = read_response_body(&mut reader, method, status, &headers)?;
    Ok((status, headers, body))
}

fn eof(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, what)
}

fn invalid(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

fn parse_status(status_line: &str) -> io::Result<u16> {
    status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid(format!("bad status line {status_line:?}")))
}

/// Reads a start line and header fields up to the blank line. `None` if the
/// peer closed the connection before sending anything (end of keep-alive).
fn read_head(r: &mut impl BufRead) -> io::Result<Option<(String, Headers)>> {
    let mut start = String::new();
    if r.read_line(&mut start)? == 0 {
        return Ok(None);
    }
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Err(eof("headers cut short"));
        }
        let line = line.trim_end();
        if line.is_empty() {
            return Ok(Some((start.trim_end().to_string(), headers)));
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| invalid(format!("bad header {line:?}")))?;
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
}

fn is_chunked(headers: &[(String, String)]) -> bool {
    header(headers, "Transfer-Encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
}

fn content_length(headers: &[(String, String)]) -> io::Result<Option<usize>> {
    header(headers, "Content-Length")
        .map(|v| {
            v.parse()
                .map_err(|_| invalid(format!("bad Content-Length {v:?}")))
        })
        .transpose()
}

/// A message body framed by chunked encoding or Content-Length; without
/// either, a request has none and a response runs to EOF.
fn read_body(
    r: &mut impl BufRead,
    headers: &[(String, String)],
    is_response: bool,
) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    if is_chunked(headers) {
        loop {
            let mut line = String::new();
            r.read_line(&mut line)?;
            let size = line.trim_end().split(';').next().unwrap_or("");
            let size = usize::from_str_radix(size.trim(), 16)
                .map_err(|_| invalid(format!("bad chunk size {line:?}")))?;
            if size == 0 {
                // Trailers, up to the blank line.
                loop {
                    let mut trailer = String::new();
                    if r.read_line(&mut trailer)? == 0 || trailer.trim_end().is_empty() {
                        return Ok(body);
                    }
                }
            }
            let start = body.len();
            body.resize(start + size, 0);
            r.read_exact(&mut body[start..])?;
            r.read_line(&mut line)?;
        }
    } else if let Some(len) = content_length(headers)? {
        body.resize(len, 0);
        r.read_exact(&mut body)?;
    } else if is_response {
        r.read_to_end(&mut body)?;
    }
    Ok(body)
}

/// Responses to HEAD, 1xx, 204 and 304 have no body whatever their headers
/// say (a HEAD's Content-Length is the size of what a GET would return).
fn has_no_body(method: &str, status: u16) -> bool {
    method == "HEAD" || status < 200 || status == 204 || status == 304
}

fn read_response_body(
    r: &mut impl BufRead,
    method: &str,
    status: u16,
    headers: &[(String, String)],
) -> io::Result<Vec<u8>> {
    if has_no_body(method, status) {
        Ok(Vec::new())
    } else {
        read_body(r, headers, true)
    }
}

/// What a [`FaultProxy`] does to the requests it gets.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Forward everything.
    None,
    /// Answer the first `times` requests whose target contains
    /// `path_contains` (all requests if `None`) with `code` and a JSON error
    /// body, without forwarding them; forward the rest.
    Status {
        code: u16,
        times: usize,
        path_contains: Option<String>,
    },
    /// Answer every request 401 with `WWW-Authenticate: Basic realm="worldfit-test"`.
    Unauthorized,
    /// Read matching requests and never answer; the socket stays open until
    /// the proxy is dropped.
    Stall { path_contains: Option<String> },
    /// Forward matching requests, but relay only the first half of the
    /// response body (headers still announce all of it), then close.
    TruncateBody { path_contains: Option<String> },
}

/// One request the proxy got, and what it answered.
#[derive(Clone, Debug)]
pub struct Logged {
    pub method: String,
    /// The request target as sent: path and query.
    pub path: String,
    /// The request body, de-chunked.
    pub body: Vec<u8>,
    /// The status sent back; 0 for a stalled request.
    pub status: u16,
    /// Response body bytes sent back.
    pub sent: u64,
}

/// State the accept loop and connection threads share.
struct Shared {
    upstream: String,
    fault: Fault,
    /// Matching requests seen so far, for `Fault::Status { times, .. }`.
    hits: AtomicUsize,
    log: Mutex<Vec<Logged>>,
    stop: AtomicBool,
}

/// A loopback HTTP proxy in front of a registry that logs every request and
/// injects a [`Fault`]: how tests count round trips and check the client's
/// retries, timeouts and error messages against a real server.
///
/// The client's `Host` header is forwarded unchanged, so the absolute
/// `Location` URLs distribution builds from it point back at the proxy.
/// Client connections are kept alive (the client's `Connection: close` is
/// honoured); each request gets its own upstream connection.
pub struct FaultProxy {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// Listens on a free loopback port, forwarding to `upstream` (`host:port`).
    pub fn start(upstream: &str, fault: Fault) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let shared = Arc::new(Shared {
            upstream: upstream.to_string(),
            fault,
            hits: AtomicUsize::new(0),
            log: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
        });
        let accept_shared = shared.clone();
        let accept = thread::spawn(move || {
            for stream in listener.incoming() {
                if accept_shared.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let shared = accept_shared.clone();
                thread::spawn(move || {
                    let _ = serve(stream, &shared);
                });
            }
        });
        FaultProxy {
            addr,
            shared,
            accept: Some(accept),
        }
    }

    /// Every request so far, in the order answered (stalled ones when read).
    pub fn requests(&self) -> Vec<Logged> {
        self.shared.log.lock().unwrap().clone()
    }

    /// Response body bytes sent to clients, in total.
    pub fn bytes_sent(&self) -> u64 {
        self.shared.log.lock().unwrap().iter().map(|l| l.sent).sum()
    }
}

impl Drop for FaultProxy {
    /// Stops accepting and releases stalled connections. Connections being
    /// served finish on their own (they never block on the proxy).
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept() so it sees the flag.
        let _ = TcpStream::connect(&self.addr);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

/// A response to write to the client.
struct Response {
    status: u16,
    reason: String,
    headers: Headers,
    body: Vec<u8>,
}

impl Response {
    fn injected(status: u16, reason: &str, extra: Headers, code: &str) -> Response {
        let mut headers = vec![(
            "Content-Type".to_string(),
            "application/json; charset=utf-8".to_string(),
        )];
        headers.extend(extra);
        let body = format!(
            r#"{{"errors":[{{"code":"{code}","message":"injected by FaultProxy","detail":null}}]}}"#
        );
        Response {
            status,
            reason: reason.to_string(),
            headers,
            body: body.into_bytes(),
        }
    }
}

/// The standard reason phrase, which clients put in their error messages.
fn reason(code: u16) -> &'static str {
    match code {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Injected",
    }
}

/// Serves one client connection: request after request until the client
/// closes it, asks to, or a fault ends it.
fn serve(client: TcpStream, shared: &Shared) -> io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let mut writer = client;
    while let Some((request_line, headers)) = read_head(&mut reader)? {
        let mut parts = request_line.split(' ');
        let method = parts.next().unwrap_or("").to_string();
        let path = parts.next().unwrap_or("").to_string();
        let version = parts.next().unwrap_or("");
        if header(&headers, "Expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue")) {
            writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        }
        let body = read_body(&mut reader, &headers, false)?;
        let keep_alive = version == "HTTP/1.1"
            && !header(&headers, "Connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));

        let matches =
            |filter: &Option<String>| filter.as_ref().is_none_or(|p| path.contains(p.as_str()));
        let mut truncate = false;
        let response = match &shared.fault {
            Fault::Unauthorized => {
                let challenge = vec![(
                    "WWW-Authenticate".to_string(),
                    format!("Basic realm=\"{REALM}\""),
                )];
                Response::injected(401, "Unauthorized", challenge, "UNAUTHORIZED")
            }
            Fault::Status {
                code,
                times,
                path_contains,
            } if matches(path_contains) && shared.hits.fetch_add(1, Ordering::SeqCst) < *times => {
                Response::injected(*code, reason(*code), Vec::new(), "INJECTED")
            }
            Fault::Stall { path_contains } if matches(path_contains) => {
                shared.log.lock().unwrap().push(Logged {
                    method,
                    path,
                    body,
                    status: 0,
                    sent: 0,
                });
                while !shared.stop.load(Ordering::SeqCst) {
                    thread::sleep(Duration::from_millis(20));
                }
                return Ok(());
            }
            fault => {
                truncate = matches!(fault, Fault::TruncateBody { path_contains } if matches(path_contains));
                forward(&shared.upstream, &request_line, &headers, &body, &method).unwrap_or_else(
                    |e| {
                        Response::injected(
                            502,
                            "Bad Gateway",
                            Vec::new(),
                            &format!("UPSTREAM: {e}"),
                        )
                    },
                )
            }
        };

        // Log before answering, so a client that has its answer sees it logged.
        let no_body = has_no_body(&method, response.status);
        let send = if truncate {
            response.body.len() / 2
        } else {
            response.body.len()
        };
        shared.log.lock().unwrap().push(Logged {
            method,
            path,
            body,
            status: response.status,
            sent: send as u64,
        });

        let keep_alive = keep_alive && !truncate;
        let mut head = format!("HTTP/1.1 {} {}\r\n", response.status, response.reason);
        for (name, value) in &response.headers {
            // Framing is ours to set; a body-less response's Content-Length
            // is information (a HEAD's blob size), so it passes through.
            let framing = [
                "Connection",
                "Keep-Alive",
                "Transfer-Encoding",
                "Content-Length",
            ];
            if !framing.iter().any(|f| f.eq_ignore_ascii_case(name))
                || (no_body && name.eq_ignore_ascii_case("Content-Length"))
            {
                head += &format!("{name}: {value}\r\n");
            }
        }
        if !no_body {
            head += &format!("Content-Length: {}\r\n", response.body.len());
        }
        head += if keep_alive {
            "Connection: keep-alive\r\n\r\n"
        } else {
            "Connection: close\r\n\r\n"
        };
        writer.write_all(head.as_bytes())?;
        writer.write_all(&response.body[..send])?;
        writer.flush()?;
        if !keep_alive {
            return Ok(());
        }
    }
    Ok(())
}

/// Sends the request upstream on a fresh `Connection: close` connection and
/// reads the whole response. A chunked request body goes up de-chunked with a
/// Content-Length; all other headers, `Host` included, as they came.
fn forward(
    upstream: &str,
    request_line: &str,
    headers: &[(String, String)],
    body: &[u8],
    method: &str,
) -> io::Result<Response> {
    let mut stream = TcpStream::connect(upstream)?;
    let mut head = format!("{request_line}\r\n");
    for (name, value) in headers {
        let dropped = [
            "Connection",
            "Keep-Alive",
            "Transfer-Encoding",
            "Content-Length",
            "Expect",
        ];
        if !dropped.iter().any(|d| d.eq_ignore_ascii_case(name)) {
            head += &format!("{name}: {value}\r\n");
        }
    }
    if !body.is_empty() || content_length(headers)?.is_some() || is_chunked(headers) {
        head += &format!("Content-Length: {}\r\n", body.len());
    }
    head += "Connection: close\r\n\r\n";
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut reader = BufReader::new(stream);
    let (status_line, headers) =
        read_head(&mut reader)?.ok_or_else(|| eof("no response upstream"))?;
    let status = parse_status(&status_line)?;
    let reason = status_line.splitn(3, ' ').nth(2).unwrap_or("").to_string();
    let body = read_response_body(&mut reader, method, status, &headers)?;
    Ok(Response {
        status,
        reason,
        headers,
        body,
    })
}
