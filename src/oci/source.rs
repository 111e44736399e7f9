//! Where an image comes from: a local OCI layout, a registry, containerd's
//! content store (each a [`ContentStore`]), named the way skopeo, docker
//! and ctr name them, and read the same way (every byte checked against its
//! descriptor before anyone looks at it).

use super::artifact::{Blob, Descriptor, Manifest};
use super::layout::{self, Index, Layout};
use super::limits::{self, ReadLimits};
#[cfg(feature = "registry")]
use super::registry::{self, Registry, RegistryOptions};
use super::store::{ContentStore, StoreFuture};
use super::{INDEX_MEDIA_TYPE, MANIFEST_MEDIA_TYPE, REF_NAME};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};

/// Which image in a layout: by tag (`org.opencontainers.image.ref.name`) or digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// The layout's only entry, else `latest`.
    Default,
    /// An entry named by `org.opencontainers.image.ref.name`.
    Tag(String),
    /// An entry, or any manifest or index blob, by digest.
    Digest(String),
}

/// An image source: where the bytes come from, and how much of them to read.
pub struct Source {
    /// Where the image is.
    pub origin: Origin,
    /// What worldfit will read of it.
    pub limits: ReadLimits,
}

/// Where an image is: one of the built-in stores, or an embedder's own.
pub enum Origin {
    /// A local OCI image layout.
    Layout(LayoutImage),
    /// A repository in a registry.
    #[cfg(feature = "registry")]
    Registry(RegistryImage),
    /// An image in containerd's content store.
    #[cfg(feature = "containerd")]
    Containerd(Box<super::containerd::ContainerdImage>),
    /// Any other [`ContentStore`].
    Custom(Box<dyn ContentStore>),
}

/// An image in a local OCI layout.
pub struct LayoutImage {
    /// The layout.
    pub layout: Layout,
    /// Which image in it.
    pub selector: Selector,
}

/// An image in a registry.
#[cfg(feature = "registry")]
pub struct RegistryImage {
    /// The repository.
    pub registry: Box<Registry>,
    /// The tag or digest.
    pub reference: String,
}

impl ContentStore for LayoutImage {
    fn name(&self) -> String {
        let dir = self.layout.dir().display();
        match &self.selector {
            Selector::Default => format!("{dir}"),
            Selector::Tag(t) => format!("{dir}:{t}"),
            Selector::Digest(d) => format!("{dir}@{d}"),
        }
    }

    fn root<'a>(&'a self, limits: &'a ReadLimits) -> StoreFuture<'a, (Descriptor, Vec<u8>)> {
        Box::pin(std::future::ready(layout_root(
            &self.layout,
            &self.selector,
            limits,
        )))
    }

    fn fetch<'a>(
        &'a self,
        d: &'a Descriptor,
        limit: u64,
        _limits: &'a ReadLimits,
        on_bytes: &'a mut dyn FnMut(u64),
    ) -> StoreFuture<'a, Vec<u8>> {
        let read = self.layout.read_blob(d, limit);
        if let Ok(bytes) = &read {
            on_bytes(bytes.len() as u64);
        }
        Box::pin(std::future::ready(read))
    }

    fn fetch_to<'a>(
        &'a self,
        d: &'a Descriptor,
        limit: u64,
        _limits: &'a ReadLimits,
        sink: &'a mut dyn FnMut(&[u8]) -> Result<()>,
    ) -> StoreFuture<'a, ()> {
        Box::pin(std::future::ready(self.layout.stream_blob(d, limit, sink)))
    }
}

#[cfg(feature = "registry")]
impl ContentStore for RegistryImage {
    fn name(&self) -> String {
        let sep = if self.reference.starts_with("sha256:") {
            '@'
        } else {
            ':'
        };
        format!("{}{sep}{}", self.registry.repository(), self.reference)
    }

    fn root<'a>(&'a self, limits: &'a ReadLimits) -> StoreFuture<'a, (Descriptor, Vec<u8>)> {
        Box::pin(self.registry.resolve(&self.reference, limits))
    }

    fn fetch<'a>(
        &'a self,
        d: &'a Descriptor,
        limit: u64,
        limits: &'a ReadLimits,
        on_bytes: &'a mut dyn FnMut(u64),
    ) -> StoreFuture<'a, Vec<u8>> {
        Box::pin(self.registry.fetch(d, limit, limits, on_bytes))
    }

    fn fetch_to<'a>(
        &'a self,
        d: &'a Descriptor,
        limit: u64,
        limits: &'a ReadLimits,
        sink: &'a mut dyn FnMut(&[u8]) -> Result<()>,
    ) -> StoreFuture<'a, ()> {
        Box::pin(self.registry.fetch_to(d, limit, limits, sink))
    }
}

/// Splits `DIR`, `DIR:TAG` or `DIR@sha256:...` when DIR is a directory.
fn split_layout(text: &str) -> Option<(PathBuf, Selector)> {
    if Path::new(text).is_dir() {
        return Some((text.into(), Selector::Default));
    }
    if let Some((dir, digest)) = text.rsplit_once('@')
        && Path::new(dir).is_dir()
    {
        return Some((dir.into(), Selector::Digest(digest.into())));
    }
    if let Some((dir, tag)) = text.rsplit_once(':')
        && !tag.contains('/')
        && Path::new(dir).is_dir()
    {
        return Some((dir.into(), Selector::Tag(tag.into())));
    }
    None
}

impl Source {
    /// A source with the default limits.
    pub fn new(origin: Origin) -> Source {
        Source {
            origin,
            limits: ReadLimits::default(),
        }
    }

    /// The same source with other limits.
    pub fn with_limits(self, limits: ReadLimits) -> Source {
        Source { limits, ..self }
    }

    /// Reads a source name: `oci:DIR[:TAG]`, `DIR`, `DIR:TAG`, `DIR@DIGEST`
    /// (a local directory wins), or `[docker://]HOST[:PORT]/REPO[:TAG|@DIGEST]`.
    #[cfg(feature = "registry")]
    pub fn parse(text: &str, opts: &RegistryOptions) -> Result<Source> {
        #[cfg(feature = "containerd")]
        return Self::parse_with(text, opts, &Default::default());
        #[cfg(not(feature = "containerd"))]
        Self::parse_any(text, opts)
    }

    /// [`Source::parse`], also reading `containerd://[NAMESPACE/]IMAGE`
    /// (see [`super::containerd::split_name`]).
    #[cfg(feature = "containerd")]
    pub fn parse_with(
        text: &str,
        opts: &RegistryOptions,
        containerd: &super::containerd::ContainerdOptions,
    ) -> Result<Source> {
        if let Some(name) = text.strip_prefix("containerd://") {
            let image = super::containerd::ContainerdImage::new(name, containerd)?;
            return Ok(Source::new(Origin::Containerd(Box::new(image))));
        }
        Self::parse_any(text, opts)
    }

    #[cfg(feature = "registry")]
    fn parse_any(text: &str, opts: &RegistryOptions) -> Result<Source> {
        if text.starts_with("containerd://") {
            bail!(
                "`{text}`: this worldfit was built without containerd support (feature `containerd`)"
            );
        }
        if let Some(s) = Self::parse_layout(text)? {
            return Ok(s);
        }
        if registry::looks_like_registry(text) {
            let reference = registry::parse_reference(text)?;
            let tag_or_digest = reference
                .digest()
                .or(reference.tag())
                .unwrap_or("latest")
                .to_string();
            return Ok(Source::new(Origin::Registry(RegistryImage {
                registry: Box::new(Registry::open(&reference, opts.clone())?),
                reference: tag_or_digest,
            })));
        }
        bail!(
            "`{text}` is neither an OCI layout directory (DIR[:TAG]) nor a registry reference \
             (HOST[:PORT]/REPO[:TAG])"
        )
    }

    /// Reads a layout name (`oci:DIR[:TAG]`, `DIR`, `DIR:TAG`, `DIR@DIGEST`);
    /// `None` when `text` names no local directory.
    pub fn parse_layout(text: &str) -> Result<Option<Source>> {
        let (explicit, rest) = match text.strip_prefix("oci:") {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        match split_layout(rest) {
            Some((dir, selector)) => Ok(Some(Source::new(Origin::Layout(LayoutImage {
                layout: Layout::new(dir),
                selector,
            })))),
            None if explicit => bail!("`{rest}` is not a directory"),
            None => Ok(None),
        }
    }

    /// The store the bytes come from.
    pub fn store(&self) -> &dyn ContentStore {
        match &self.origin {
            Origin::Layout(l) => l,
            #[cfg(feature = "registry")]
            Origin::Registry(r) => r,
            #[cfg(feature = "containerd")]
            Origin::Containerd(c) => c.as_ref(),
            Origin::Custom(c) => c.as_ref(),
        }
    }

    /// A short name for messages.
    pub fn name(&self) -> String {
        self.store().name()
    }

    /// The tag the source names, if any.
    pub fn tag(&self) -> Option<&str> {
        match &self.origin {
            Origin::Layout(LayoutImage {
                selector: Selector::Tag(t),
                ..
            }) => Some(t),
            #[cfg(feature = "registry")]
            Origin::Registry(RegistryImage { reference, .. }) => {
                (!reference.starts_with("sha256:")).then_some(reference.as_str())
            }
            _ => None,
        }
    }

    /// The image the source names: its descriptor and bytes (an index or a
    /// manifest), verified.
    pub async fn root(&self) -> Result<(Descriptor, Vec<u8>)> {
        self.store().root(&self.limits).await
    }

    /// Reads what a descriptor names, verified against it, refusing more than `limit`.
    pub async fn fetch(
        &self,
        d: &Descriptor,
        limit: u64,
        on_bytes: &mut dyn FnMut(u64),
    ) -> Result<Vec<u8>> {
        self.store().fetch(d, limit, &self.limits, on_bytes).await
    }

    /// Streams what a descriptor names to `sink` (see
    /// [`ContentStore::fetch_to`]: unverified until this returns `Ok`).
    pub async fn fetch_to(
        &self,
        d: &Descriptor,
        limit: u64,
        sink: &mut dyn FnMut(&[u8]) -> Result<()>,
    ) -> Result<()> {
        self.store().fetch_to(d, limit, &self.limits, sink).await
    }
}

fn layout_root(
    layout: &Layout,
    selector: &Selector,
    limits: &ReadLimits,
) -> Result<(Descriptor, Vec<u8>)> {
    let (layout, top) = layout::open_with(layout.dir(), limits)?;
    let tags = || {
        let names: Vec<&str> = top
            .manifests
            .iter()
            .filter_map(|d| d.annotations.get(REF_NAME).map(String::as_str))
            .collect();
        if names.is_empty() {
            "it has no tags".to_string()
        } else {
            format!("its tags: {}", names.join(", "))
        }
    };
    let found = match selector {
        Selector::Default if top.manifests.len() == 1 => top.manifests.first(),
        Selector::Default => top
            .manifests
            .iter()
            .find(|d| d.annotations.get(REF_NAME).map(String::as_str) == Some("latest")),
        Selector::Tag(t) => top
            .manifests
            .iter()
            .find(|d| d.annotations.get(REF_NAME) == Some(t)),
        Selector::Digest(digest) => {
            layout::check_digest(digest)?;
            match top.manifests.iter().find(|d| &d.digest == digest) {
                Some(d) => Some(d),
                None => {
                    // Any manifest or index blob in the layout, by digest.
                    let path = layout::blob_path(layout.dir(), digest)?;
                    let size = std::fs::symlink_metadata(&path)
                        .with_context(|| format!("no blob `{digest}` in the layout"))?
                        .len();
                    let probe = Descriptor {
                        media_type: String::new(),
                        digest: digest.clone(),
                        size,
                        platform: None,
                        annotations: Default::default(),
                    };
                    let bytes = layout.read_blob(&probe, limits.max_manifest_bytes)?;
                    limits::check_json_depth(&bytes, limits.max_json_depth)?;
                    let media_type = probe_media_type(&bytes)?;
                    return Ok((
                        Descriptor {
                            media_type,
                            ..probe
                        },
                        bytes,
                    ));
                }
            }
        }
    };
    let Some(d) = found else {
        let what = match selector {
            Selector::Default => "no tag `latest`, and more than one image".to_string(),
            Selector::Tag(t) => format!("no tag `{t}`"),
            Selector::Digest(d) => format!("no image `{d}`"),
        };
        bail!("layout `{}` has {what}; {}", layout.dir().display(), tags());
    };
    let bytes = layout.read_blob(d, limits.max_manifest_bytes)?;
    Ok((d.clone(), bytes))
}

/// A manifest's or index's media type from its JSON (`mediaType`, else
/// guessed from `manifests`/`config`).
pub fn probe_media_type(bytes: &[u8]) -> Result<String> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Probe {
        #[serde(default)]
        media_type: Option<String>,
        #[serde(default)]
        manifests: Option<serde::de::IgnoredAny>,
        #[serde(default)]
        config: Option<serde::de::IgnoredAny>,
    }
    let probe: Probe = serde_json::from_slice(bytes).context("the manifest is not valid JSON")?;
    Ok(match (probe.media_type, probe.manifests, probe.config) {
        (Some(m), _, _) => m,
        (None, Some(_), _) => INDEX_MEDIA_TYPE.into(),
        (None, None, Some(_)) => MANIFEST_MEDIA_TYPE.into(),
        (None, None, None) => bail!("the manifest has neither `manifests` nor `config`"),
    })
}

/// Whether a media type is an index (OCI or Docker list).
pub fn is_index(media_type: &str) -> bool {
    media_type == INDEX_MEDIA_TYPE
        || media_type == "application/vnd.docker.distribution.manifest.list.v2+json"
}

/// Whether a media type is an image manifest (OCI or Docker v2).
pub fn is_image_manifest(media_type: &str) -> bool {
    media_type == MANIFEST_MEDIA_TYPE
        || media_type == "application/vnd.docker.distribution.manifest.v2+json"
}

/// Everything an image is made of, read and verified, in an order that can
/// be written or pushed as is: each blob before anything that refers to it,
/// the root last. `on_bytes` sees transfer progress.
pub async fn collect(
    source: &Source,
    root: &Descriptor,
    root_bytes: Vec<u8>,
    on_bytes: &mut dyn FnMut(u64),
) -> Result<Vec<Blob>> {
    let mut out = Vec::new();
    // Digests already read (or being expanded): each is fetched once,
    // however often the image lists it.
    let mut seen = std::collections::HashSet::new();
    let mut stack = vec![(root.clone(), Some(root_bytes), 0usize, false)];
    // Depth-first, children before parents: a node is pushed back after its
    // children, marked as expanded.
    while let Some((d, bytes, depth, expanded)) = stack.pop() {
        if !expanded && bytes.is_none() && !seen.insert(d.digest.clone()) {
            continue;
        }
        let bytes = match bytes {
            Some(b) => b,
            None => {
                let limit = if is_index(&d.media_type) || is_image_manifest(&d.media_type) {
                    source.limits.max_manifest_bytes
                } else {
                    source.limits.max_layer_bytes
                };
                source.fetch(&d, limit, on_bytes).await?
            }
        };
        if expanded || !(is_index(&d.media_type) || is_image_manifest(&d.media_type)) {
            out.push(Blob {
                descriptor: Descriptor {
                    platform: None,
                    annotations: Default::default(),
                    ..d
                },
                bytes,
            });
            continue;
        }
        let children: Vec<Descriptor> = if is_index(&d.media_type) {
            if depth >= source.limits.max_index_depth {
                bail!(
                    "index `{}` nests deeper than {} levels",
                    d.digest,
                    source.limits.max_index_depth
                );
            }
            let index: Index = source
                .limits
                .parse_json(&bytes)
                .with_context(|| format!("index `{}` is not a valid OCI index", d.digest))?;
            source.limits.check_entries(index.manifests.len())?;
            index.manifests
        } else {
            let m: Manifest = source
                .limits
                .parse_json(&bytes)
                .with_context(|| format!("manifest `{}` is not a valid OCI manifest", d.digest))?;
            std::iter::once(m.config).chain(m.layers).collect()
        };
        stack.push((d, Some(bytes), depth, true));
        for child in children.into_iter().rev() {
            stack.push((child, None, depth + 1, false));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_type_comes_from_the_json() {
        assert_eq!(
            probe_media_type(br#"{"schemaVersion":2,"manifests":[]}"#).unwrap(),
            INDEX_MEDIA_TYPE
        );
        assert_eq!(
            probe_media_type(br#"{"schemaVersion":2,"config":{}}"#).unwrap(),
            MANIFEST_MEDIA_TYPE
        );
        assert_eq!(
            probe_media_type(br#"{"schemaVersion":2,"mediaType":"x","config":{}}"#).unwrap(),
            "x"
        );
        assert!(probe_media_type(b"[1]").is_err());
        assert!(probe_media_type(b"{}").is_err());
    }
}
