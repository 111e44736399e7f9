//! Where an entry's wasm binary is, in each format wasm images are
//! published in, and reading it:
//!
//! - **one wasm layer**: `application/wasm` (the CNCF Wasm OCI artifact,
//!   wkg, worldfit's `tag`), runwasi's
//!   `application/vnd.bytecodealliance.wasm.component.layer.v0+wasm` and
//!   `…module.layer.v0+wasm` (its `oci-tar-builder`), or wasm-to-oci's and
//!   older Spin's `application/vnd.wasm.content.layer.v1+wasm`: the layer is
//!   the binary;
//! - **filesystem layers** (`tar`, `tar+gzip`, `tar+zstd`, as `buildah` and
//!   `docker build` write a `FROM scratch` image): the binary is the file the
//!   image config's `Entrypoint` (else `Cmd`) names, as runwasi runs it from
//!   the container's root filesystem (see [`super::rootfs`]).
//!
//! Anything else (several wasm layers, as a Spin application has; layers
//! of a type nobody defined for wasm; filesystem layers without a config
//! naming the file) can't be judged as one binary: [`locate`] says why in
//! one line that names what it saw.

use super::artifact::{Descriptor, Manifest, WasmConfig};
use super::rootfs::{self, Bounds, Compression, InLayer};
use super::source::Source;
use super::{WASM_CONFIG_MEDIA_TYPE, WASM_LAYER_MEDIA_TYPE};
use anyhow::{Context, Result, anyhow, bail};
use serde::Deserialize;

/// runwasi's component layer: `application/vnd.bytecodealliance.wasm.component.layer.v0+wasm`.
pub const COMPONENT_LAYER_MEDIA_TYPE: &str =
    "application/vnd.bytecodealliance.wasm.component.layer.v0+wasm";
/// runwasi's module layer: `application/vnd.bytecodealliance.wasm.module.layer.v0+wasm`.
pub const MODULE_LAYER_MEDIA_TYPE: &str =
    "application/vnd.bytecodealliance.wasm.module.layer.v0+wasm";
/// wasm-to-oci's and older Spin's layer: `application/vnd.wasm.content.layer.v1+wasm`.
pub const CONTENT_LAYER_MEDIA_TYPE: &str = "application/vnd.wasm.content.layer.v1+wasm";
/// wasm-to-oci's config: `application/vnd.wasm.config.v1+json` (says nothing worldfit reads).
pub const WASM_CONFIG_V1_MEDIA_TYPE: &str = "application/vnd.wasm.config.v1+json";
/// The OCI image config: `application/vnd.oci.image.config.v1+json`.
pub const IMAGE_CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
/// Docker's image config: `application/vnd.docker.container.image.v1+json`.
pub const DOCKER_CONFIG_MEDIA_TYPE: &str = "application/vnd.docker.container.image.v1+json";

/// Whether a layer's media type is a wasm binary.
pub fn is_wasm_layer(media_type: &str) -> bool {
    matches!(
        media_type,
        WASM_LAYER_MEDIA_TYPE
            | COMPONENT_LAYER_MEDIA_TYPE
            | MODULE_LAYER_MEDIA_TYPE
            | CONTENT_LAYER_MEDIA_TYPE
    )
}

/// The fields of an OCI (or Docker) image config worldfit reads.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ImageConfig {
    /// `architecture`.
    #[serde(default)]
    pub architecture: String,
    /// `os`.
    #[serde(default)]
    pub os: String,
    /// `config`: how to run the image.
    #[serde(default)]
    pub config: Option<ExecConfig>,
}

/// The `config` object of an image config.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ExecConfig {
    /// `Entrypoint`.
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    /// `Cmd`.
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    /// `WorkingDir`.
    #[serde(default)]
    pub working_dir: Option<String>,
}

/// A manifest's config, as far as worldfit reads it.
#[derive(Debug, Clone)]
pub enum Config {
    /// The CNCF wasm config (`application/vnd.wasm.config.v0+json`).
    Wasm(WasmConfig),
    /// An OCI or Docker image config.
    Image(ImageConfig),
    /// Anything else (or a config that didn't parse): its media type.
    Other(String),
}

impl Config {
    /// The image config, if it is one.
    pub fn image(&self) -> Option<&ImageConfig> {
        match self {
            Config::Image(c) => Some(c),
            _ => None,
        }
    }
}

/// A manifest, read and verified, with its config where it is needed: the
/// CNCF wasm config when `requirements` (it carries them), any config when
/// the binary isn't a wasm layer (filesystem layers need its `Entrypoint`).
/// A config not needed isn't fetched, and is `Config::Other` with its media
/// type.
pub async fn manifest_and_config(
    source: &Source,
    d: &Descriptor,
    requirements: bool,
) -> Result<(Manifest, Config)> {
    let manifest = fetch_manifest(source, d).await?;
    let needed = (requirements && manifest.config.media_type == WASM_CONFIG_MEDIA_TYPE)
        || !manifest.layers.iter().any(|l| is_wasm_layer(&l.media_type));
    let config = if needed {
        fetch_config(source, &manifest).await?
    } else {
        Config::Other(manifest.config.media_type.clone())
    };
    Ok((manifest, config))
}

/// Finds an entry's binary from its manifest, reading the config only when
/// the binary isn't a wasm layer. The outer `Err` is content that fails
/// verification; the inner one, the reason the entry can't be judged (see
/// [`locate`]).
pub async fn find(source: &Source, d: &Descriptor) -> Result<Result<Location, String>> {
    let (manifest, config) = manifest_and_config(source, d, false).await?;
    Ok(locate(&manifest, &config))
}

/// A manifest, read and verified.
pub async fn fetch_manifest(source: &Source, d: &Descriptor) -> Result<Manifest> {
    let limits = &source.limits;
    let bytes = source
        .fetch(d, limits.max_manifest_bytes, &mut |_| {})
        .await?;
    limits
        .parse_json(&bytes)
        .with_context(|| format!("manifest `{}` is not a valid OCI manifest", d.digest))
}

/// A manifest's config, when it is one worldfit reads (verified).
pub async fn fetch_config(source: &Source, manifest: &Manifest) -> Result<Config> {
    let limits = &source.limits;
    let media_type = manifest.config.media_type.clone();
    let read = matches!(
        media_type.as_str(),
        WASM_CONFIG_MEDIA_TYPE | IMAGE_CONFIG_MEDIA_TYPE | DOCKER_CONFIG_MEDIA_TYPE
    );
    if !read {
        return Ok(Config::Other(media_type));
    }
    let bytes = source
        .fetch(&manifest.config, limits.max_config_bytes, &mut |_| {})
        .await?;
    // A config that isn't the shape its media type says is passed over,
    // not an error: the layers still say what the build needs.
    let config = if media_type == WASM_CONFIG_MEDIA_TYPE {
        limits
            .parse_json::<WasmConfig>(&bytes)
            .ok()
            .map(Config::Wasm)
    } else {
        limits
            .parse_json::<ImageConfig>(&bytes)
            .ok()
            .map(Config::Image)
    };
    Ok(config.unwrap_or(Config::Other(media_type)))
}

/// Where the binary is.
#[derive(Debug, Clone)]
pub enum Location {
    /// A layer that is the binary.
    Layer(Descriptor),
    /// A file in the filesystem layers (bottom first), as path components
    /// from the root.
    File {
        /// The filesystem layers, bottom first.
        layers: Vec<Descriptor>,
        /// The file.
        path: Vec<String>,
    },
}

/// Finds the binary in a manifest; `Err` with a one-line reason, naming
/// the media types seen and what to do, when the entry can't be judged as
/// one binary.
pub fn locate(manifest: &Manifest, config: &Config) -> Result<Location, String> {
    let retag = "re-tag the binary with `worldfit tag`";
    let wasm: Vec<&Descriptor> = manifest
        .layers
        .iter()
        .filter(|l| is_wasm_layer(&l.media_type))
        .collect();
    match wasm.as_slice() {
        [one] => return Ok(Location::Layer((*one).clone())),
        [] => {}
        many => {
            return Err(format!(
                "it has {} wasm layers (`{}`), an application of several binaries as Spin \
                 writes them; worldfit judges one binary per entry: {retag} for each",
                many.len(),
                many[0].media_type
            ));
        }
    }
    if manifest.layers.is_empty() {
        return Err(format!("its manifest has no layers; {retag}"));
    }
    if let Some(other) = manifest
        .layers
        .iter()
        .find(|l| Compression::of_media_type(&l.media_type).is_none())
    {
        return Err(format!(
            "its layer type `{}` is neither a wasm binary nor a filesystem layer; {retag}",
            other.media_type
        ));
    }
    let Some(image) = config.image() else {
        let seen = match config {
            Config::Wasm(_) => WASM_CONFIG_MEDIA_TYPE,
            Config::Other(m) => m.as_str(),
            Config::Image(_) => unreachable!(),
        };
        return Err(format!(
            "its filesystem layers need an image config naming the file to run, not `{seen}`; \
             {retag}"
        ));
    };
    if crate::platform::wasm_spelling(&image.os, &image.architecture).is_none() {
        return Err(format!(
            "its image config is for `{}/{}`, not a wasm platform",
            image.os, image.architecture
        ));
    }
    let exec = image.config.clone().unwrap_or_default();
    let path = rootfs::entrypoint_path(
        exec.entrypoint.as_deref(),
        exec.cmd.as_deref(),
        exec.working_dir.as_deref(),
    )
    .map_err(|e| format!("{e}; {retag}"))?;
    Ok(Location::File {
        layers: manifest.layers.clone(),
        path,
    })
}

/// A binary read out of an image.
#[derive(Debug)]
pub struct Binary {
    /// Its bytes, verified (the layer's digest, or every filesystem layer's
    /// the file was read through).
    pub bytes: Vec<u8>,
    /// The layer's digest, when the binary is a whole layer.
    pub layer_digest: Option<String>,
}

/// Reads the binary at `location` of entry `entry` (its digest, for
/// messages). A filesystem layer is streamed and only the file is kept;
/// a path trick, a link, an oversized file, a bomb or a broken stream is an
/// error naming the entry and the layer, as is an `Entrypoint` that names
/// no file.
pub async fn read(source: &Source, location: &Location, entry: &str) -> Result<Binary> {
    let limits = &source.limits;
    match location {
        Location::Layer(layer) => {
            let bytes = source
                .fetch(layer, limits.max_layer_bytes, &mut |_| {})
                .await
                .with_context(|| format!("cannot read the layer of `{entry}`"))?;
            Ok(Binary {
                bytes,
                layer_digest: Some(layer.digest.clone()),
            })
        }
        Location::File { layers, path } => {
            let bounds = Bounds {
                max_file: limits.max_layer_bytes,
                max_unpacked: limits.max_unpacked_bytes,
            };
            let shown = rootfs::display_path(path);
            for layer in layers.iter().rev() {
                match find_file(source, layer, path, bounds)
                    .await
                    .with_context(|| {
                        format!("entry `{entry}`: filesystem layer `{}`", layer.digest)
                    })? {
                    InLayer::Found(bytes) => {
                        return Ok(Binary {
                            bytes,
                            layer_digest: None,
                        });
                    }
                    InLayer::Removed => break,
                    InLayer::Absent => {}
                }
            }
            bail!(
                "entry `{entry}`: its `Entrypoint` `{shown}` names no file in its {} filesystem \
                 layer(s)",
                layers.len()
            )
        }
    }
}

/// Looks for `path` in one filesystem layer: the layer is streamed to a
/// reader thread (tar, decompression) through a small bounded channel, so
/// memory holds the file and a few chunks, never the layer. What the thread
/// found counts only once the whole layer has been verified.
async fn find_file(
    source: &Source,
    layer: &Descriptor,
    path: &[String],
    bounds: Bounds,
) -> Result<InLayer> {
    let compression = Compression::of_media_type(&layer.media_type)
        .ok_or_else(|| anyhow!("`{}` is not a filesystem layer", layer.media_type))?;
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(8);
    let wanted = path.to_vec();
    let reader = std::thread::Builder::new()
        .name("worldfit-layer".into())
        .spawn(move || {
            let stream = ChannelReader {
                rx,
                chunk: Vec::new(),
                at: 0,
            };
            rootfs::find_in_layer(stream, compression, &wanted, bounds)
        })
        .context("cannot start the layer reader")?;
    let mut tx = Some(tx);
    let fetched = source
        .fetch_to(layer, source.limits.max_layer_bytes, &mut |chunk| {
            // Once the reader is done (the file found, or an error), the
            // rest is only hashed.
            if let Some(t) = &tx
                && t.send(chunk.to_vec()).is_err()
            {
                tx = None;
            }
            Ok(())
        })
        .await;
    drop(tx);
    let found = reader
        .join()
        .map_err(|_| anyhow!("the layer reader failed"))?;
    fetched?;
    found
}

/// A `Read` over chunks arriving on a channel; the end of the channel is
/// the end of the stream.
struct ChannelReader {
    rx: std::sync::mpsc::Receiver<Vec<u8>>,
    chunk: Vec<u8>,
    at: usize,
}

impl std::io::Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.chunk.len() {
            match self.rx.recv() {
                Ok(chunk) => {
                    self.chunk = chunk;
                    self.at = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.at);
        buf[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}
