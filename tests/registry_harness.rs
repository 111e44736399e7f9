//! The registry test harness itself: the real registry starts, answers and
//! authenticates; the proxy relays faithfully and injects each fault.

#[path = "common/registry.rs"]
mod registry;

use registry::{Fault, FaultProxy, Registry, basic_auth, header, request};
use sha2::{Digest, Sha256};
use std::io::ErrorKind;
use std::time::{Duration, Instant};

const SECOND: Duration = Duration::from_secs(1);

fn digest(data: &[u8]) -> String {
    let hash = Sha256::digest(data);
    format!(
        "sha256:{}",
        hash.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

/// Monolithic upload through `addr` (registry or proxy): POST, then PUT the
/// bytes to the Location with the digest. Returns the Location the POST gave.
fn upload(addr: &str, repo: &str, data: &[u8]) -> String {
    let (status, headers, _) = request(
        addr,
        "POST",
        &format!("/v2/{repo}/blobs/uploads/"),
        &[],
        b"",
        SECOND,
    )
    .unwrap();
    assert_eq!(status, 202);
    let location = header(&headers, "Location").unwrap().to_string();
    let sep = if location.contains('?') { '&' } else { '?' };
    let put = format!("{location}{sep}digest={}", digest(data));
    let octets = [("Content-Type", "application/octet-stream")];
    let (status, headers, _) = request(addr, "PUT", &put, &octets, data, SECOND).unwrap();
    assert_eq!(status, 201);
    assert_eq!(
        header(&headers, "Docker-Content-Digest"),
        Some(digest(data).as_str())
    );
    location
}

fn blob_path(repo: &str, data: &[u8]) -> String {
    format!("/v2/{repo}/blobs/{}", digest(data))
}

#[test]
fn registry_stores_and_serves_a_blob() {
    let registry = Registry::start();
    let data = b"hello, registry".repeat(10);
    let location = upload(&registry.addr, "t", &data);
    assert!(
        location.starts_with(&format!("http://{}/", registry.addr)),
        "{location}"
    );

    let (status, headers, body) = registry.request("HEAD", &blob_path("t", &data), &[]);
    assert_eq!(status, 200);
    assert!(body.is_empty());
    assert_eq!(
        header(&headers, "Content-Length"),
        Some(data.len().to_string().as_str())
    );
    let (status, _, body) = registry.request("GET", &blob_path("t", &data), &[]);
    assert_eq!((status, body), (200, data.clone()));
    let (status, _, _) = registry.request("HEAD", &blob_path("t", b"absent"), &[]);
    assert_eq!(status, 404);
}

#[test]
fn registry_with_auth_demands_basic_credentials() {
    let registry = Registry::start_with_auth("alice", "s3cret");
    let (status, headers, _) = registry.request("GET", "/v2/", &[]);
    assert_eq!(status, 401);
    assert_eq!(
        header(&headers, "WWW-Authenticate"),
        Some(r#"Basic realm="worldfit-test""#)
    );
    let good = basic_auth("alice", "s3cret");
    let (status, _, _) = registry.request("GET", "/v2/", &[("Authorization", &good)]);
    assert_eq!(status, 200, "{}", registry.log());
    let bad = basic_auth("alice", "wrong");
    let (status, _, _) = registry.request("GET", "/v2/", &[("Authorization", &bad)]);
    assert_eq!(status, 401);
}

#[test]
fn basic_auth_is_base64() {
    assert_eq!(
        basic_auth("Aladdin", "open sesame"),
        "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
    );
    assert_eq!(basic_auth("a", "b"), "Basic YTpi");
    assert_eq!(basic_auth("ab", "c"), "Basic YWI6Yw==");
}

#[test]
fn proxy_relays_and_counts() {
    let registry = Registry::start();
    let proxy = FaultProxy::start(&registry.addr, Fault::None);
    let data = vec![7u8; 1000];
    let location = upload(&proxy.addr, "p", &data);
    // The Host header went through unchanged: Location points at the proxy.
    assert!(
        location.starts_with(&format!("http://{}/", proxy.addr)),
        "{location}"
    );

    let (status, headers, _) = request(
        &proxy.addr,
        "HEAD",
        &blob_path("p", &data),
        &[],
        b"",
        SECOND,
    )
    .unwrap();
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "Content-Length"), Some("1000"));
    assert_eq!(
        header(&headers, "Docker-Content-Digest"),
        Some(digest(&data).as_str())
    );
    let (status, headers, body) =
        request(&proxy.addr, "GET", &blob_path("p", &data), &[], b"", SECOND).unwrap();
    assert_eq!((status, body), (200, data.clone()));
    assert!(header(&headers, "Content-Type").is_some());

    let log = proxy.requests();
    let summary: Vec<_> = log.iter().map(|l| (l.method.as_str(), l.status)).collect();
    assert_eq!(
        summary,
        [("POST", 202), ("PUT", 201), ("HEAD", 200), ("GET", 200)]
    );
    assert_eq!(log[1].body, data);
    assert!(log[3].path.ends_with(&digest(&data)));
    assert_eq!(proxy.bytes_sent(), 1000);
}

#[test]
fn proxy_injects_a_status_n_times() {
    let registry = Registry::start();
    let data = b"flaky".to_vec();
    upload(&registry.addr, "s", &data);
    let fault = Fault::Status {
        code: 503,
        times: 2,
        path_contains: Some("/blobs/".into()),
    };
    let proxy = FaultProxy::start(&registry.addr, fault);
    let get = |path: &str| request(&proxy.addr, "GET", path, &[], b"", SECOND).unwrap();
    assert_eq!(get("/v2/").0, 200, "other paths pass and do not count");
    let (status, headers, body) = get(&blob_path("s", &data));
    assert_eq!(status, 503);
    assert_eq!(
        header(&headers, "Content-Type"),
        Some("application/json; charset=utf-8")
    );
    assert!(String::from_utf8(body).unwrap().contains("errors"));
    assert_eq!(get(&blob_path("s", &data)).0, 503);
    let (status, _, body) = get(&blob_path("s", &data));
    assert_eq!((status, body), (200, data));
    let statuses: Vec<_> = proxy.requests().iter().map(|l| l.status).collect();
    assert_eq!(statuses, [200, 503, 503, 200]);
}

#[test]
fn proxy_injects_unauthorized() {
    let registry = Registry::start();
    let proxy = FaultProxy::start(&registry.addr, Fault::Unauthorized);
    for path in ["/v2/", "/v2/x/manifests/latest"] {
        let (status, headers, _) = request(&proxy.addr, "GET", path, &[], b"", SECOND).unwrap();
        assert_eq!(status, 401);
        assert_eq!(
            header(&headers, "WWW-Authenticate"),
            Some(r#"Basic realm="worldfit-test""#)
        );
    }
}

#[test]
fn proxy_stalls_matching_requests_and_drops_promptly() {
    let registry = Registry::start();
    let data = b"stalled".to_vec();
    upload(&registry.addr, "st", &data);
    let proxy = FaultProxy::start(
        &registry.addr,
        Fault::Stall {
            path_contains: Some("/blobs/".into()),
        },
    );
    assert_eq!(
        request(&proxy.addr, "GET", "/v2/", &[], b"", SECOND)
            .unwrap()
            .0,
        200
    );
    let start = Instant::now();
    let err = request(
        &proxy.addr,
        "GET",
        &blob_path("st", &data),
        &[],
        b"",
        SECOND,
    )
    .unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "{err}"
    );
    assert!(start.elapsed() >= SECOND);
    let log = proxy.requests();
    assert_eq!((log[1].method.as_str(), log[1].status), ("GET", 0));
    let start = Instant::now();
    drop(proxy);
    assert!(start.elapsed() < SECOND, "drop took {:?}", start.elapsed());
}

#[test]
fn proxy_truncates_response_bodies() {
    let registry = Registry::start();
    let data: Vec<u8> = (0..4000u32).map(|i| i as u8).collect();
    upload(&registry.addr, "tr", &data);
    let proxy = FaultProxy::start(
        &registry.addr,
        Fault::TruncateBody {
            path_contains: Some("/blobs/".into()),
        },
    );
    // A body-less HEAD is unharmed and keeps its Content-Length.
    let (status, headers, _) = request(
        &proxy.addr,
        "HEAD",
        &blob_path("tr", &data),
        &[],
        b"",
        SECOND,
    )
    .unwrap();
    assert_eq!(
        (status, header(&headers, "Content-Length")),
        (200, Some("4000"))
    );
    let err = request(
        &proxy.addr,
        "GET",
        &blob_path("tr", &data),
        &[],
        b"",
        SECOND,
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnexpectedEof, "{err}");
    assert_eq!(proxy.bytes_sent(), 2000);
    // Non-matching paths pass whole.
    let (status, _, body) = request(&proxy.addr, "GET", "/v2/", &[], b"", SECOND).unwrap();
    assert_eq!((status, body.as_slice()), (200, b"{}".as_slice()));
}
