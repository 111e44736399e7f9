//! An OCI distribution registry, through `oci-client` (and, for manifests,
//! the `reqwest` client under it): manifests and blobs read with their size
//! and digest checked while they stream in, blobs and
//! manifests pushed byte for byte (so digests survive the trip), credentials
//! from the Docker config, and bounded retries with timeouts.
//!
//! Every failure becomes one line that says what happened in the registry's
//! terms (401, 404, a 5xx after N attempts, a stall after the timeout), so a
//! shim can show it as a container's failure reason as is.

use super::artifact::Descriptor;
use super::{INDEX_MEDIA_TYPE, MANIFEST_MEDIA_TYPE};
use anyhow::{Context, Result, anyhow, bail};
use futures_util::StreamExt;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Docker's v2 schema media types, accepted when reading (written by
/// `docker push` and some registries' conversions).
pub const DOCKER_MANIFEST_MEDIA_TYPE: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker's manifest list, the ancestor of the OCI image index.
pub const DOCKER_LIST_MEDIA_TYPE: &str =
    "application/vnd.docker.distribution.manifest.list.v2+json";

const ACCEPTED_MANIFESTS: &[&str] = &[
    INDEX_MEDIA_TYPE,
    MANIFEST_MEDIA_TYPE,
    DOCKER_LIST_MEDIA_TYPE,
    DOCKER_MANIFEST_MEDIA_TYPE,
];

/// How to reach a registry.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// Speak plain HTTP (a loopback or in-cluster registry without TLS).
    pub plain_http: bool,
    /// The longest wait for a connection, or between two reads of a
    /// response: a registry that stalls longer fails with "timed out".
    pub timeout: Duration,
    /// How many times a request is tried when the registry answers 5xx/429
    /// or the connection fails (1 = no retry).
    pub attempts: u32,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions {
            plain_http: false,
            timeout: Duration::from_secs(30),
            attempts: 3,
        }
    }
}

/// What went over the wire, for reports and tests.
#[derive(Debug, Default)]
pub struct Traffic {
    /// Requests made (including retries).
    pub requests: AtomicU64,
    /// Body bytes received.
    pub bytes_in: AtomicU64,
    /// Body bytes sent.
    pub bytes_out: AtomicU64,
}

/// One repository in a registry.
pub struct Registry {
    client: Client,
    /// The same HTTP stack, for reading manifests with a size limit.
    http: reqwest::Client,
    /// The bearer token a manifest read last earned (after a 401 challenge).
    token: std::sync::Mutex<Option<String>>,
    auth: RegistryAuth,
    repo: Reference,
    opts: RegistryOptions,
    /// Counters of requests and bytes.
    pub traffic: Arc<Traffic>,
}

/// Parses `HOST[:PORT]/REPO[:TAG|@DIGEST]`, with or without skopeo's
/// `docker://` prefix.
pub fn parse_reference(text: &str) -> Result<Reference> {
    let bare = text.strip_prefix("docker://").unwrap_or(text);
    bare.parse::<Reference>()
        .map_err(|e| anyhow!("`{text}` is not a registry reference ({e})"))
}

/// Whether `text` names a registry rather than a local path: it has a
/// `docker://` prefix, or its first component looks like a host (has a dot
/// or a port, or is `localhost`), as the Docker reference grammar decides.
pub fn looks_like_registry(text: &str) -> bool {
    if text.starts_with("docker://") {
        return true;
    }
    let Some((first, _)) = text.split_once('/') else {
        return false;
    };
    // A host name or address, never `.`, `..` or a path component.
    let hostlike = !first.starts_with(['.', '-', ':'])
        && first
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b));
    hostlike && (first == "localhost" || first.contains('.') || first.contains(':'))
}

/// The credentials for a registry host from the Docker config
/// (`$DOCKER_CONFIG/config.json` or `~/.docker/config.json`, including
/// `credsStore`/`credHelpers` helpers); anonymous when there are none.
fn credentials(host: &str) -> Result<RegistryAuth> {
    use docker_credential::{CredentialRetrievalError as E, DockerCredential};
    // Docker Hub's credentials live under its legacy v1 URL.
    let key = match host {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => "https://index.docker.io/v1/",
        other => other,
    };
    match docker_credential::get_credential(key) {
        Ok(DockerCredential::UsernamePassword(user, password)) => {
            Ok(RegistryAuth::Basic(user, password))
        }
        // Identity tokens need Docker's OAuth refresh flow, which the
        // registry client doesn't speak: fall back to anonymous access.
        Ok(DockerCredential::IdentityToken(_)) => Ok(RegistryAuth::Anonymous),
        Err(E::ConfigNotFound | E::ConfigReadError | E::NoCredentialConfigured) => {
            Ok(RegistryAuth::Anonymous)
        }
        Err(E::HelperFailure { helper, stderr, .. }) => bail!(
            "the Docker credential helper `docker-credential-{helper}` failed for `{host}`: {}",
            stderr.trim()
        ),
        Err(e) => bail!("cannot read credentials for `{host}` from the Docker config: {e}"),
    }
}

/// One failure in the registry's terms, and whether trying again may help.
struct Failure {
    transient: bool,
    message: String,
}

fn classify(e: &OciDistributionError, host: &str, opts: &RegistryOptions) -> Failure {
    let timeout = opts.timeout;
    use OciDistributionError as O;
    let permanent = |message: String| Failure {
        transient: false,
        message,
    };
    match e {
        O::UnauthorizedError { .. } | O::AuthenticationFailure(_) => permanent(format!(
            "registry `{host}` refused access (401 Unauthorized); log in with `docker login {host}` \
             or check the Docker config's credentials"
        )),
        O::ImageManifestNotFoundError(_) => permanent("not found (404)".into()),
        O::RegistryError { envelope, .. } => {
            let codes: Vec<&OciErrorCode> = envelope.errors.iter().map(|e| &e.code).collect();
            let text = envelope
                .errors
                .iter()
                .map(|e| format!("{:?}: {}", e.code, e.message))
                .collect::<Vec<_>>()
                .join("; ");
            if codes.iter().any(|c| {
                matches!(
                    c,
                    OciErrorCode::ManifestUnknown
                        | OciErrorCode::BlobUnknown
                        | OciErrorCode::NameUnknown
                        | OciErrorCode::NotFound
                )
            }) {
                permanent(format!("not found (404): {text}"))
            } else if codes
                .iter()
                .any(|c| matches!(c, OciErrorCode::Unauthorized | OciErrorCode::Denied))
            {
                permanent(format!(
                    "registry `{host}` denied access ({text}); log in with `docker login {host}`"
                ))
            } else {
                permanent(format!("registry `{host}` refused the request: {text}"))
            }
        }
        O::ServerError { code, message, .. } => status_failure(*code, message, host),
        O::RequestError(r) if r.status().is_some() => {
            let code = r.status().map(|s| s.as_u16()).unwrap_or_default();
            status_failure(code, "", host)
        }
        O::RequestError(r) if r.is_timeout() => Failure {
            transient: true,
            message: format!(
                "registry `{host}` stalled: no response for {}s",
                timeout.as_secs_f64()
            ),
        },
        O::RequestError(r) if r.is_connect() => {
            let cause = root_cause(r);
            // rustls reading an HTTP answer as a TLS record.
            if !opts.plain_http && cause.contains("InvalidContentType") {
                return permanent(format!(
                    "registry `{host}` does not speak TLS; if it is a plain-HTTP registry, \
                     pass --plain-http"
                ));
            }
            Failure {
                transient: true,
                message: format!("cannot connect to registry `{host}`: {cause}"),
            }
        }
        O::RequestError(r) => Failure {
            transient: true,
            message: format!("request to registry `{host}` failed: {}", root_cause(r)),
        },
        O::GenericError(Some(m)) => permanent(format!("registry `{host}`: {m}")),
        O::DigestError(d) => permanent(format!("registry `{host}` sent corrupt content: {d}")),
        other => permanent(format!(
            "registry `{host}`: {}",
            other.to_string().lines().next().unwrap_or_default()
        )),
    }
}

/// A failure that is an HTTP status.
fn status_failure(code: u16, body: &str, host: &str) -> Failure {
    if code == 401 {
        return Failure {
            transient: false,
            message: format!(
                "registry `{host}` refused access (401 Unauthorized); log in with `docker login {host}` \
                 or check the Docker config's credentials"
            ),
        };
    }
    let first = body.lines().next().unwrap_or_default().trim();
    let detail = if first.is_empty() {
        String::new()
    } else {
        format!(": {}", first.chars().take(200).collect::<String>())
    };
    let status = match code {
        403 => "403 Forbidden".to_string(),
        404 => "404 Not Found".to_string(),
        429 => "429 Too Many Requests".to_string(),
        500 => "500 Internal Server Error".to_string(),
        502 => "502 Bad Gateway".to_string(),
        503 => "503 Service Unavailable".to_string(),
        504 => "504 Gateway Timeout".to_string(),
        _ => format!("HTTP {code}"),
    };
    Failure {
        transient: code >= 500 || code == 429,
        message: format!("registry `{host}` answered {status}{detail}"),
    }
}

/// The innermost cause of a request error, which says what actually failed
/// ("connection refused", "dns error", an invalid certificate).
pub(crate) fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// Whether a media type is read from the manifests endpoint.
pub fn is_manifest(media_type: &str) -> bool {
    ACCEPTED_MANIFESTS.contains(&media_type)
}

impl Registry {
    /// Opens the repository `reference` names (its tag or digest is ignored
    /// here; pass it to [`Registry::resolve`]).
    pub fn open(reference: &Reference, opts: RegistryOptions) -> Result<Registry> {
        // One process-wide crypto provider for rustls (ring: no C toolchain
        // beyond cc, and already what wasmtime's dependencies use).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let host = reference.resolve_registry().to_string();
        let config = ClientConfig {
            protocol: if opts.plain_http {
                ClientProtocol::Http
            } else {
                ClientProtocol::Https
            },
            read_timeout: Some(opts.timeout),
            connect_timeout: Some(opts.timeout),
            platform_resolver: None,
            user_agent: concat!("worldfit/", env!("CARGO_PKG_VERSION")),
            ..ClientConfig::default()
        };
        let client = Client::try_from(config)
            .map_err(|e| anyhow!("cannot set up the registry client: {e}"))?;
        let http = reqwest::Client::builder()
            .read_timeout(opts.timeout)
            .connect_timeout(opts.timeout)
            .user_agent(concat!("worldfit/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| anyhow!("cannot set up the registry client: {e}"))?;
        let auth = credentials(&host)?;
        Ok(Registry {
            client,
            http,
            token: std::sync::Mutex::default(),
            auth,
            repo: reference.clone(),
            opts,
            traffic: Arc::default(),
        })
    }

    /// The registry host, as written in the reference.
    pub fn host(&self) -> &str {
        self.repo.registry()
    }

    /// `HOST/REPO`.
    pub fn repository(&self) -> String {
        format!("{}/{}", self.repo.registry(), self.repo.repository())
    }

    fn at(&self, tag_or_digest: &str) -> Reference {
        if tag_or_digest.starts_with("sha256:") {
            Reference::with_digest(
                self.repo.registry().into(),
                self.repo.repository().into(),
                tag_or_digest.into(),
            )
        } else {
            Reference::with_tag(
                self.repo.registry().into(),
                self.repo.repository().into(),
                tag_or_digest.into(),
            )
        }
    }

    /// Runs `op` up to `attempts` times while it fails transiently, with a
    /// doubling pause (200 ms, 400 ms, ...).
    async fn retry<T, F, Fut>(&self, what: &str, mut op: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = std::result::Result<T, OciDistributionError>>,
    {
        // Every call (not only the ones that take credentials) must find them.
        self.client
            .store_auth_if_needed(self.repo.resolve_registry(), &self.auth)
            .await;
        let attempts = self.opts.attempts.max(1);
        let mut pause = Duration::from_millis(200);
        for attempt in 1..=attempts {
            self.traffic.requests.fetch_add(1, Ordering::Relaxed);
            match op().await {
                Ok(v) => return Ok(v),
                Err(e) => {
                    let f = classify(&e, self.host(), &self.opts);
                    if !f.transient || attempt == attempts {
                        let tries = if attempt > 1 {
                            format!(" (after {attempt} attempts)")
                        } else {
                            String::new()
                        };
                        bail!("{what}: {}{tries}", f.message);
                    }
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                }
            }
        }
        unreachable!("the last attempt returns")
    }

    /// Reads the manifest or index a tag or digest names: its descriptor
    /// (media type from its JSON) and bytes, at most 4 MiB, the digest
    /// checked when `tag_or_digest` is one.
    pub async fn resolve(
        &self,
        tag_or_digest: &str,
        limits: &super::limits::ReadLimits,
    ) -> Result<(Descriptor, Vec<u8>)> {
        let r = self.at(tag_or_digest);
        let what = format!("cannot read `{}`", r.whole());
        let bytes = self
            .retry(&what, || self.get_manifest(&r, limits.max_manifest_bytes))
            .await?;
        super::limits::check_json_depth(&bytes, limits.max_json_depth)
            .with_context(|| what.clone())?;
        let actual = format!("sha256:{}", crate::cache::sha256_hex(&bytes));
        if tag_or_digest.starts_with("sha256:") && actual != tag_or_digest {
            bail!("{what}: the registry sent content that hashes to `{actual}`");
        }
        let media_type = super::source::probe_media_type(&bytes).with_context(|| what.clone())?;
        Ok((
            Descriptor {
                media_type,
                digest: actual,
                size: bytes.len() as u64,
                platform: None,
                annotations: BTreeMap::new(),
            },
            bytes,
        ))
    }

    /// `GET /v2/REPO/manifests/REF`, refusing a body over `limit` bytes
    /// before reading it (by its `Content-Length`) and while reading it.
    /// Credentials as `oci-client` would send them: the Docker config's
    /// user and password as Basic auth, or a bearer token fetched through
    /// `oci-client` when the registry challenges for one.
    async fn get_manifest(
        &self,
        r: &Reference,
        limit: u64,
    ) -> std::result::Result<Vec<u8>, OciDistributionError> {
        use reqwest::StatusCode;
        use reqwest::header::{ACCEPT, CONTENT_LENGTH, WWW_AUTHENTICATE};
        let url = format!(
            "{}://{}/v2/{}/manifests/{}",
            if self.opts.plain_http {
                "http"
            } else {
                "https"
            },
            r.resolve_registry(),
            r.repository(),
            r.digest().or(r.tag()).unwrap_or("latest")
        );
        let request = |token: Option<String>| {
            let rb = self
                .http
                .get(&url)
                .header(ACCEPT, ACCEPTED_MANIFESTS.join(", "));
            match (token, &self.auth) {
                (Some(t), _) => rb.bearer_auth(t),
                (None, RegistryAuth::Basic(user, password)) => rb.basic_auth(user, Some(password)),
                (None, _) => rb,
            }
        };
        let token = self.token.lock().map(|t| t.clone()).unwrap_or_default();
        let mut res = request(token).send().await?;
        let bearer_challenge = res
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("bearer"));
        if res.status() == StatusCode::UNAUTHORIZED && bearer_challenge {
            // A token, new or expired: oci-client speaks the token protocol.
            let token = self
                .client
                .auth(r, &self.auth, oci_client::RegistryOperation::Pull)
                .await?;
            if let Ok(mut slot) = self.token.lock() {
                slot.clone_from(&token);
            }
            self.traffic.requests.fetch_add(1, Ordering::Relaxed);
            res = request(token).send().await?;
        }
        let status = res.status();
        if !status.is_success() {
            let body = res.text().await.unwrap_or_default();
            let body: String = body.chars().take(4096).collect();
            return Err(match status {
                StatusCode::UNAUTHORIZED => OciDistributionError::UnauthorizedError { url },
                StatusCode::NOT_FOUND => OciDistributionError::ImageManifestNotFoundError(url),
                _ => OciDistributionError::ServerError {
                    code: status.as_u16(),
                    url,
                    message: body,
                },
            });
        }
        let over = |n: u64| {
            OciDistributionError::GenericError(Some(format!(
                "the manifest is {n} bytes or more, over the limit of {limit}"
            )))
        };
        let declared = res
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if let Some(n) = declared.filter(|&n| n > limit) {
            return Err(over(n));
        }
        // Grows as bytes arrive: a declared length is a claim, not a promise.
        let mut bytes = Vec::with_capacity(declared.unwrap_or(0).min(limit) as usize);
        while let Some(chunk) = res.chunk().await? {
            self.traffic
                .bytes_in
                .fetch_add(chunk.len() as u64, Ordering::Relaxed);
            let n = (bytes.len() + chunk.len()) as u64;
            if n > limit {
                return Err(over(n));
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(bytes)
    }

    /// Reads what a descriptor names (a manifest from the manifests
    /// endpoint, anything else as a blob), refusing more than `limit` or
    /// than the descriptor's size, and checking the digest. `on_bytes` sees
    /// each chunk's length as it arrives (for a progress bar).
    pub async fn fetch(
        &self,
        d: &Descriptor,
        limit: u64,
        limits: &super::limits::ReadLimits,
        on_bytes: &mut dyn FnMut(u64),
    ) -> Result<Vec<u8>> {
        super::layout::check_digest(&d.digest)?;
        if d.size > limit {
            bail!(
                "`{}` declares {} bytes, over the limit of {limit}",
                d.digest,
                d.size
            );
        }
        if is_manifest(&d.media_type) {
            let (got, bytes) = self.resolve(&d.digest, limits).await?;
            if got.size != d.size {
                bail!(
                    "manifest `{}` has {} bytes, its descriptor says {}",
                    d.digest,
                    got.size,
                    d.size
                );
            }
            on_bytes(got.size);
            return Ok(bytes);
        }
        // Grows as bytes arrive: a declared size is a claim, not a promise.
        let mut bytes = Vec::with_capacity(d.size.min(8 << 20) as usize);
        self.stream_blob(d, &mut |chunk| {
            bytes.extend_from_slice(chunk);
            on_bytes(chunk.len() as u64);
            Ok(())
        })
        .await?;
        Ok(bytes)
    }

    /// [`Registry::fetch`], handing the bytes to `sink` as they arrive
    /// (see [`super::store::ContentStore::fetch_to`]).
    pub async fn fetch_to(
        &self,
        d: &Descriptor,
        limit: u64,
        limits: &super::limits::ReadLimits,
        sink: &mut dyn FnMut(&[u8]) -> Result<()>,
    ) -> Result<()> {
        if is_manifest(&d.media_type) {
            let bytes = self.fetch(d, limit, limits, &mut |_| {}).await?;
            return sink(&bytes);
        }
        super::layout::check_digest(&d.digest)?;
        if d.size > limit {
            bail!(
                "`{}` declares {} bytes, over the limit of {limit}",
                d.digest,
                d.size
            );
        }
        self.stream_blob(d, sink).await
    }

    /// Streams a blob (size already checked against the limit), verifying
    /// its size and digest.
    async fn stream_blob(
        &self,
        d: &Descriptor,
        sink: &mut dyn FnMut(&[u8]) -> Result<()>,
    ) -> Result<()> {
        let what = format!(
            "cannot read blob `{}` from `{}`",
            d.digest,
            self.repository()
        );
        let r = self.at(&d.digest);
        let desc = d.digest.as_str();
        let mut stream = self
            .retry(&what, || self.client.pull_blob_stream(&r, &desc))
            .await?;
        if let Some(n) = stream.content_length.filter(|&n| n != d.size) {
            bail!(
                "{what}: the registry offers {n} bytes, the descriptor says {}",
                d.size
            );
        }
        let mut received: u64 = 0;
        let mut hasher = Sha256::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| {
                let timed_out =
                    e.to_string().contains("timed out") || root_cause(&e).contains("timed out");
                if timed_out {
                    anyhow!(
                        "{what}: registry `{}` stalled: no data for {}s",
                        self.host(),
                        self.opts.timeout.as_secs_f64()
                    )
                } else {
                    anyhow!("{what}: the transfer broke off: {}", root_cause(&e))
                }
            })?;
            received += chunk.len() as u64;
            if received > d.size {
                bail!(
                    "{what}: the registry sent more than the descriptor's {} bytes",
                    d.size
                );
            }
            hasher.update(&chunk);
            self.traffic
                .bytes_in
                .fetch_add(chunk.len() as u64, Ordering::Relaxed);
            sink(&chunk)?;
        }
        if received < d.size {
            bail!(
                "{what}: the transfer ended after {received} of {} bytes",
                d.size
            );
        }
        let actual = format!("sha256:{}", crate::cache::hex(&hasher.finalize()));
        if actual != d.digest {
            bail!("{what}: the content hashes to `{actual}`");
        }
        Ok(())
    }

    /// Whether the repository has a blob.
    pub async fn has_blob(&self, digest: &str) -> Result<bool> {
        let r = self.at(digest);
        self.retry(
            &format!(
                "cannot check for blob `{digest}` in `{}`",
                self.repository()
            ),
            || self.client.blob_exists(&r, digest),
        )
        .await
    }

    /// Uploads a blob (its bytes must match `d`).
    pub async fn push_blob(&self, d: &Descriptor, bytes: &[u8]) -> Result<()> {
        let r = self.at(&d.digest);
        let data = bytes::Bytes::copy_from_slice(bytes);
        self.retry(
            &format!(
                "cannot upload blob `{}` to `{}`",
                d.digest,
                self.repository()
            ),
            || self.client.push_blob(&r, data.clone(), &d.digest),
        )
        .await?;
        self.traffic
            .bytes_out
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Uploads a manifest or index exactly as given, under a tag or its digest.
    pub async fn push_manifest(
        &self,
        tag_or_digest: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<()> {
        let r = self.at(tag_or_digest);
        let content_type = http::HeaderValue::from_str(media_type)
            .with_context(|| format!("invalid media type `{media_type}`"))?;
        let data = bytes::Bytes::copy_from_slice(bytes);
        self.retry(
            &format!("cannot upload manifest to `{}`", r.whole()),
            || {
                self.client
                    .push_manifest_raw(&r, data.clone(), content_type.clone())
            },
        )
        .await?;
        self.traffic
            .bytes_out
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_names_are_told_from_paths() {
        assert!(looks_like_registry("127.0.0.1:5000/app:1"));
        assert!(looks_like_registry("ghcr.io/org/app"));
        assert!(looks_like_registry("localhost/app"));
        assert!(looks_like_registry("docker://app"));
        assert!(!looks_like_registry("./oci:latest"));
        assert!(!looks_like_registry("oci"));
        assert!(!looks_like_registry("build/oci:1.0"));
        assert!(!looks_like_registry("../oci:1.0"));
        assert!(!looks_like_registry("my.dir_x/oci"));
        assert!(looks_like_registry("[::1]:5000/app"));
    }
}
