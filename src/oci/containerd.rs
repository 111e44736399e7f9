//! containerd's content store as an image source, through its gRPC API
//! (`containerd_api`: `Images.Get` and `Content.Read`), never through its
//! files.
//!
//! runwasi-style shims don't pull: containerd has already stored the index,
//! its manifests and layers. containerd itself refuses to unpack a wasm
//! index ("no match for platform in manifest"), so the shim needs to pick
//! the entry itself: this source lets it select from what containerd holds.
//!
//! Every call carries a deadline: a socket that accepts and never answers
//! would otherwise hang a container's start forever. Content is read as a
//! stream, refused past its descriptor's size and checked against its
//! digest as it arrives, like a registry's.

use super::artifact::Descriptor;
use super::containerd_api::{Client, GetContainerRequest, GetImageRequest, ReadContentRequest};
use super::hashing::StreamingDigest;
use super::limits::ReadLimits;
use super::store::{ContentStore, StoreFuture};
use anyhow::{Result, anyhow, bail};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

/// containerd's socket when none is named (as `ctr` uses).
pub const DEFAULT_ADDRESS: &str = "/run/containerd/containerd.sock";
/// The namespace when none is named (as `ctr` uses; Kubernetes uses `k8s.io`).
pub const DEFAULT_NAMESPACE: &str = "default";

/// How to reach containerd.
#[derive(Debug, Clone)]
pub struct ContainerdOptions {
    /// The gRPC socket.
    pub address: PathBuf,
    /// The namespace, overriding one written in the source name.
    pub namespace: Option<String>,
    /// The longest wait for the connection, each call, and each chunk of
    /// content: a containerd that stalls longer is an error.
    pub timeout: Duration,
}

impl Default for ContainerdOptions {
    fn default() -> Self {
        ContainerdOptions {
            address: PathBuf::from(DEFAULT_ADDRESS),
            namespace: None,
            timeout: Duration::from_secs(30),
        }
    }
}

/// An image in containerd: its name, namespace, and the connection
/// (opened on first use, then shared by every read).
pub struct ContainerdImage {
    image: String,
    conn: Connection,
}

/// One namespace of one containerd: the socket, the deadline, and the
/// channel (opened on first use, then shared by every call).
struct Connection {
    namespace: String,
    address: PathBuf,
    timeout: Duration,
    channel: tokio::sync::OnceCell<Channel>,
}

/// Splits `[NAMESPACE/]IMAGE` (without `containerd://`). containerd keeps
/// images under full names (`docker.io/library/app:1.0`), which begin with
/// a registry host; so a first segment is a namespace when what follows it
/// begins with a host (has a `.` or `:` or is `localhost`, and more path
/// after it). `k8s.io/docker.io/library/app:1` is image
/// `docker.io/library/app:1` in namespace `k8s.io`;
/// `docker.io/library/app:1` is that image in the default namespace.
pub fn split_name(text: &str) -> (Option<&str>, &str) {
    let looks_like_host = |s: &str| {
        s.split_once('/').is_some_and(|(first, _)| {
            first.contains('.') || first.contains(':') || first == "localhost"
        })
    };
    match text.split_once('/') {
        Some((ns, rest)) if looks_like_host(rest) => (Some(ns), rest),
        _ => (None, text),
    }
}

impl ContainerdImage {
    /// An image by `[NAMESPACE/]IMAGE` (see [`split_name`]). Nothing is
    /// contacted until the first read.
    pub fn new(name: &str, opts: &ContainerdOptions) -> Result<ContainerdImage> {
        let (ns, image) = split_name(name);
        let namespace = opts
            .namespace
            .clone()
            .or(ns.map(str::to_string))
            .unwrap_or_else(|| DEFAULT_NAMESPACE.to_string());
        if image.is_empty() {
            bail!("`containerd://{name}` names no image");
        }
        Ok(ContainerdImage {
            image: image.to_string(),
            conn: Connection::new(namespace, opts)?,
        })
    }

    /// The image's name in containerd.
    pub fn image(&self) -> &str {
        &self.image
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.conn.namespace
    }

    /// containerd's socket.
    pub fn address(&self) -> &std::path::Path {
        &self.conn.address
    }
}

/// A container as containerd records it (`Containers.Get`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerRecord {
    /// The container's id.
    pub id: String,
    /// The image it was made from; empty when it was made from a root
    /// filesystem instead (`ctr run --rootfs DIR`).
    pub image: String,
    /// Its labels (`ctr run --label KEY=VALUE`).
    pub labels: BTreeMap<String, String>,
}

/// Reads container `id` of `namespace` from the containerd at
/// `opts.address`: what a shim, which containerd hands only the id, the
/// namespace and a bundle, calls to learn the container's image and labels.
///
/// # Errors
/// One line: no such container in the namespace, a namespace containerd
/// can't have, or containerd unreachable or silent past `opts.timeout`.
pub async fn container(
    id: &str,
    namespace: &str,
    opts: &ContainerdOptions,
) -> Result<ContainerRecord> {
    let conn = Connection::new(namespace.to_string(), opts)?;
    let mut client = Client::new(conn.channel().await?);
    let request = conn.request(GetContainerRequest { id: id.to_string() })?;
    let record = client
        .get_container(request)
        .await
        .map_err(|s| {
            conn.failure(&s, || {
                format!("containerd has no container `{id}` in namespace `{namespace}`")
            })
        })?
        .into_inner()
        .container
        .ok_or_else(|| anyhow!("containerd's answer for container `{id}` is empty"))?;
    Ok(ContainerRecord {
        id: record.id,
        image: record.image,
        labels: record.labels,
    })
}

impl Connection {
    fn new(namespace: String, opts: &ContainerdOptions) -> Result<Connection> {
        // containerd's own rule for namespaces; anything else can't be sent
        // as gRPC metadata anyway.
        let valid = !namespace.is_empty()
            && namespace
                .split(['.', '_', '-'])
                .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric()));
        if !valid {
            bail!(
                "`{namespace}` is not a containerd namespace (letters and digits, \
                 joined by `.`, `_` or `-`)"
            );
        }
        Ok(Connection {
            namespace,
            address: opts.address.clone(),
            timeout: opts.timeout,
            channel: tokio::sync::OnceCell::new(),
        })
    }

    async fn channel(&self) -> Result<Channel> {
        let address = self.address.display();
        let connect = self.channel.get_or_try_init(|| async {
            match tokio::time::timeout(self.timeout, connect(&self.address)).await {
                Ok(Ok(channel)) => Ok(channel),
                Ok(Err(e)) => Err(anyhow!(
                    "cannot connect to containerd at `{address}`: {}; is containerd running \
                     there? (--containerd-address)",
                    super::registry::root_cause(&e)
                )),
                Err(_) => Err(anyhow!(
                    "containerd at `{address}` did not accept a connection within {}s",
                    self.timeout.as_secs_f64()
                )),
            }
        });
        Ok(connect.await?.clone())
    }

    /// A request in this image's namespace, with the deadline.
    fn request<T>(&self, message: T) -> Result<Request<T>> {
        let mut request = Request::new(message);
        let ns = MetadataValue::try_from(self.namespace.as_str())
            .map_err(|_| anyhow!("`{}` is not a containerd namespace", self.namespace))?;
        request.metadata_mut().insert("containerd-namespace", ns);
        request.set_timeout(self.timeout);
        Ok(request)
    }

    /// One line for a failed call; `missing` says what a `NotFound` means.
    fn failure(&self, status: &Status, missing: impl FnOnce() -> String) -> anyhow::Error {
        let address = self.address.display();
        let secs = self.timeout.as_secs_f64();
        match status.code() {
            Code::NotFound => anyhow!(missing()),
            Code::DeadlineExceeded => {
                anyhow!("containerd at `{address}` did not answer within {secs}s")
            }
            Code::Cancelled if status.message().contains("Timeout") => {
                anyhow!("containerd at `{address}` did not answer within {secs}s")
            }
            Code::Unavailable | Code::Unknown | Code::Cancelled => anyhow!(
                "containerd at `{address}` failed the call ({}): is it containerd?",
                first_line(status)
            ),
            code => anyhow!(
                "containerd at `{address}` refused the call: {code:?}: {}",
                first_line(status)
            ),
        }
    }
}

impl ContainerdImage {
    async fn read(
        &self,
        d: &Descriptor,
        limit: u64,
        on_bytes: &mut dyn FnMut(u64),
    ) -> Result<Vec<u8>> {
        // Hashed as it arrives, a large blob on another thread.
        let mut blob = StreamingDigest::new(d.size);
        self.read_chunks(d, limit, &mut |chunk| {
            on_bytes(chunk.len() as u64);
            blob.push(chunk);
            Ok(())
        })
        .await?;
        let (bytes, actual) = blob.finish().await?;
        if actual != d.digest {
            bail!(
                "`{}` in containerd's content store hashes to `{actual}`: corrupt or tampered",
                d.digest
            );
        }
        Ok(bytes)
    }

    /// [`ContainerdImage::read`], handing the bytes to `sink` as they arrive
    /// (see [`ContentStore::fetch_to`]): nothing is kept here.
    async fn read_to(
        &self,
        d: &Descriptor,
        limit: u64,
        sink: &mut dyn FnMut(&[u8]) -> Result<()>,
    ) -> Result<()> {
        use sha2::Digest;
        let mut hasher = sha2::Sha256::new();
        self.read_chunks(d, limit, &mut |chunk| {
            hasher.update(&chunk);
            sink(&chunk)
        })
        .await?;
        let actual = format!("sha256:{}", crate::cache::hex(&hasher.finalize()));
        if actual != d.digest {
            bail!(
                "`{}` in containerd's content store hashes to `{actual}`: corrupt or tampered",
                d.digest
            );
        }
        Ok(())
    }

    /// Reads a blob from the content store in the chunks containerd sends,
    /// refusing a descriptor over `limit`, a stream longer or shorter than
    /// the descriptor's size, and a stall. The digest is the caller's to
    /// check.
    async fn read_chunks(
        &self,
        d: &Descriptor,
        limit: u64,
        each: &mut dyn FnMut(Vec<u8>) -> Result<()>,
    ) -> Result<()> {
        super::layout::check_digest(&d.digest)?;
        if d.size > limit {
            bail!(
                "`{}` declares {} bytes, over the limit of {limit}",
                d.digest,
                d.size
            );
        }
        let missing = || {
            format!(
                "`{}` of image `{}` is missing from containerd's content store (namespace \
                 `{}`); import every platform with `ctr images import --all-platforms`",
                d.digest, self.image, self.conn.namespace
            )
        };
        let mut client = Client::new(self.conn.channel().await?);
        let request = self.conn.request(ReadContentRequest {
            digest: d.digest.clone(),
            offset: 0,
            size: 0,
        })?;
        let mut stream = client
            .read_content(request)
            .await
            .map_err(|s| self.conn.failure(&s, missing))?
            .into_inner();
        let mut received: u64 = 0;
        loop {
            let next = tokio::time::timeout(self.conn.timeout, stream.message())
                .await
                .map_err(|_| {
                    anyhow!(
                        "containerd at `{}` stalled reading `{}`: no data for {}s",
                        self.conn.address.display(),
                        d.digest,
                        self.conn.timeout.as_secs_f64()
                    )
                })?
                .map_err(|s| self.conn.failure(&s, missing))?;
            let Some(chunk) = next else { break };
            received += chunk.data.len() as u64;
            if received > d.size {
                bail!(
                    "containerd holds more than the {} bytes `{}` declares",
                    d.size,
                    d.digest
                );
            }
            each(chunk.data)?;
        }
        if received < d.size {
            bail!(
                "containerd holds {received} of the {} bytes `{}` declares",
                d.size,
                d.digest
            );
        }
        Ok(())
    }

    async fn resolve(&self, limits: &ReadLimits) -> Result<(Descriptor, Vec<u8>)> {
        let mut images = Client::new(self.conn.channel().await?);
        let request = self.conn.request(GetImageRequest {
            name: self.image.clone(),
        })?;
        let image = images
            .get_image(request)
            .await
            .map_err(|s| {
                self.conn.failure(&s, || {
                    format!(
                        "containerd has no image `{}` in namespace `{}`; list them with \
                         `ctr -n {} images ls`",
                        self.image, self.conn.namespace, self.conn.namespace
                    )
                })
            })?
            .into_inner()
            .image
            .and_then(|i| i.target)
            .ok_or_else(|| anyhow!("containerd's record of `{}` has no target", self.image))?;
        let size = u64::try_from(image.size).map_err(|_| {
            anyhow!(
                "containerd's record of `{}` has a negative size",
                self.image
            )
        })?;
        let d = Descriptor {
            media_type: image.media_type,
            digest: image.digest,
            size,
            platform: None,
            annotations: BTreeMap::new(),
        };
        let bytes = self
            .read(&d, limits.max_manifest_bytes, &mut |_| {})
            .await?;
        Ok((d, bytes))
    }
}

/// A gRPC channel over containerd's Unix socket, with HTTP/2 windows wide
/// enough for 1 MiB content messages to stream without stalls (the 64 KiB
/// default makes the server wait for window updates many times per message).
async fn connect(path: &std::path::Path) -> Result<Channel, tonic::transport::Error> {
    use tonic::transport::Endpoint;
    const WINDOW: u32 = 16 << 20;
    let path = path.to_path_buf();
    Endpoint::try_from("http://[::]")?
        .initial_stream_window_size(Some(WINDOW))
        .initial_connection_window_size(Some(WINDOW))
        .connect_with_connector(tower::service_fn(move |_| {
            let path = path.clone();
            async move {
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(
                    tokio::net::UnixStream::connect(path).await?,
                ))
            }
        }))
        .await
}

impl ContentStore for ContainerdImage {
    fn name(&self) -> String {
        format!("containerd://{}/{}", self.conn.namespace, self.image)
    }

    fn root<'a>(&'a self, limits: &'a ReadLimits) -> StoreFuture<'a, (Descriptor, Vec<u8>)> {
        Box::pin(self.resolve(limits))
    }

    fn fetch<'a>(
        &'a self,
        d: &'a Descriptor,
        limit: u64,
        _limits: &'a ReadLimits,
        on_bytes: &'a mut dyn FnMut(u64),
    ) -> StoreFuture<'a, Vec<u8>> {
        Box::pin(self.read(d, limit, on_bytes))
    }

    fn fetch_to<'a>(
        &'a self,
        d: &'a Descriptor,
        limit: u64,
        _limits: &'a ReadLimits,
        sink: &'a mut dyn FnMut(&[u8]) -> Result<()>,
    ) -> StoreFuture<'a, ()> {
        Box::pin(self.read_to(d, limit, sink))
    }
}

fn first_line(status: &Status) -> String {
    let message = status.message().lines().next().unwrap_or_default().trim();
    if message.is_empty() {
        format!("{:?}", status.code())
    } else {
        message.chars().take(200).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_split_into_namespace_and_image() {
        assert_eq!(
            split_name("docker.io/library/app:1"),
            (None, "docker.io/library/app:1")
        );
        assert_eq!(
            split_name("k8s.io/docker.io/library/app:1"),
            (Some("k8s.io"), "docker.io/library/app:1")
        );
        assert_eq!(
            split_name("default/localhost:5000/app:1"),
            (Some("default"), "localhost:5000/app:1")
        );
        assert_eq!(split_name("app:1"), (None, "app:1"));
        assert_eq!(split_name("library/app:1"), (None, "library/app:1"));
    }

    #[test]
    fn namespaces_are_checked_before_anything_is_sent() {
        let opts = |ns: &str| ContainerdOptions {
            namespace: Some(ns.into()),
            ..ContainerdOptions::default()
        };
        assert!(ContainerdImage::new("app:1", &opts("k8s.io")).is_ok());
        for bad in ["", "bad ns", "a..b", "-a", "ü"] {
            assert!(ContainerdImage::new("app:1", &opts(bad)).is_err(), "{bad}");
        }
        assert!(ContainerdImage::new("", &ContainerdOptions::default()).is_err());
    }
}
