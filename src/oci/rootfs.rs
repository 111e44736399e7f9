//! One file out of an image's filesystem layers: the wasm binary a
//! `FROM scratch`-style image names in its config's `Entrypoint` (or
//! `Cmd`), as runwasi's shims find it in the container's root filesystem.
//!
//! Layers are applied bottom to top (OCI image spec, "Image Layer
//! Filesystem Changeset"), so the file is looked for top to bottom: the
//! first layer that has it wins, and a whiteout (`.wh.NAME`), an opaque
//! directory (`.wh..wh..opq`) or a non-directory in place of a parent hides
//! it in every layer below.
//!
//! A layer is read as a stream (tar, `tar+gzip` or `tar+zstd`, through
//! tar-rs, flate2 and zstd) and nothing is written anywhere: the one file
//! is kept in memory, everything else is skipped. The reader is hostile
//! input, so:
//! - an entry whose path is absolute or climbs with `..` is refused, as is
//!   a symlink or hard link (or any other non-regular entry) at the path,
//!   or a symlink in place of one of its parent directories;
//! - the file may be at most `max_file` bytes, and the stream may unpack to
//!   at most `max_unpacked` bytes (a decompression bomb stops there);
//! - header extensions (PAX records, GNU long names) are read here, not by
//!   tar-rs, and at most [`MAX_EXTENSION`] bytes of each, so memory stays
//!   bounded by the file's size, not the layer's.

use anyhow::{Result, bail};
use std::io::Read;

/// The largest PAX record set or GNU long name read: 64 KiB (a path is at
/// most 4 KiB on Linux).
pub const MAX_EXTENSION: u64 = 64 << 10;

/// How a filesystem layer is compressed, from its media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// `application/vnd.oci.image.layer.v1.tar`
    None,
    /// `…tar+gzip`, and Docker's `…rootfs.diff.tar.gzip`
    Gzip,
    /// `…tar+zstd`
    Zstd,
}

impl Compression {
    /// The compression of a filesystem layer's media type; `None` when the
    /// media type isn't a filesystem layer (OCI image spec, "Image Layer
    /// Filesystem Changeset"; the `nondistributable` variants included, and
    /// Docker's schema 2 layer types).
    pub fn of_media_type(media_type: &str) -> Option<Compression> {
        let rest = media_type
            .strip_prefix("application/vnd.oci.image.layer.v1.")
            .or_else(|| {
                media_type.strip_prefix("application/vnd.oci.image.layer.nondistributable.v1.")
            })
            .or_else(|| media_type.strip_prefix("application/vnd.docker.image.rootfs.diff."))
            .or_else(|| {
                media_type.strip_prefix("application/vnd.docker.image.rootfs.foreign.diff.")
            })?;
        match rest {
            "tar" => Some(Compression::None),
            "tar+gzip" | "tar.gzip" => Some(Compression::Gzip),
            "tar+zstd" | "tar.zstd" => Some(Compression::Zstd),
            _ => None,
        }
    }
}

/// What one layer says about the file.
#[derive(Debug, PartialEq, Eq)]
pub enum InLayer {
    /// The layer has it: its bytes.
    Found(Vec<u8>),
    /// The layer removes it (a whiteout, an opaque parent, a file in place
    /// of a parent directory): lower layers don't count.
    Removed,
    /// The layer doesn't touch it.
    Absent,
}

/// Bounds on reading one layer.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// The largest file kept, in bytes.
    pub max_file: u64,
    /// The most bytes the layer may unpack to (tar headers included).
    pub max_unpacked: u64,
}

/// The path a config's `Entrypoint` (else `Cmd`) names, as components
/// from the root: its first element, with runwasi's `#function` suffix
/// dropped, resolved against `WorkingDir` (default `/`). Errors when both
/// are empty, or the path leaves the root with `..`.
pub fn entrypoint_path(
    entrypoint: Option<&[String]>,
    cmd: Option<&[String]>,
    working_dir: Option<&str>,
) -> Result<Vec<String>> {
    let first = entrypoint
        .and_then(|e| e.first())
        .or_else(|| cmd.and_then(|c| c.first()))
        .filter(|s| !s.is_empty());
    let Some(first) = first else {
        bail!("its config names no `Entrypoint` or `Cmd` (the wasm file to run)");
    };
    let file = first.split_once('#').map_or(first.as_str(), |(f, _)| f);
    let mut parts: Vec<String> = Vec::new();
    let start = if file.starts_with('/') {
        ""
    } else {
        working_dir.unwrap_or("/")
    };
    for part in start.split('/').chain(file.split('/')) {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    bail!("its `Entrypoint` `{first}` climbs out of the root filesystem");
                }
            }
            p => parts.push(p.to_string()),
        }
    }
    if parts.is_empty() {
        bail!("its `Entrypoint` `{first}` names the root directory, not a file");
    }
    Ok(parts)
}

/// `/a/b/c` for components `[a, b, c]`.
pub fn display_path(path: &[String]) -> String {
    format!("/{}", path.join("/"))
}

/// Reads at most `max` bytes more and fails past it.
struct Bounded<R> {
    inner: R,
    left: u64,
    max: u64,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            // One probe byte: exactly `max` bytes is fine, one more is not.
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(std::io::Error::other(format!(
                    "it unpacks to more than {} bytes (the limit; --max-unpacked-bytes)",
                    self.max
                ))),
            };
        }
        let want = buf.len().min(self.left.min(usize::MAX as u64) as usize);
        let n = self.inner.read(&mut buf[..want])?;
        self.left -= n as u64;
        Ok(n)
    }
}

/// Looks for `path` in one layer's stream, compressed as `compression`.
/// Stops reading as soon as it has the file.
pub fn find_in_layer(
    layer: impl Read,
    compression: Compression,
    path: &[String],
    bounds: Bounds,
) -> Result<InLayer> {
    let inner: Box<dyn Read + '_> = match compression {
        Compression::None => Box::new(layer),
        // Several gzip members, as pigz writes them, are one stream.
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(layer)),
        Compression::Zstd => Box::new(
            zstd::stream::read::Decoder::new(layer).map_err(|e| anyhow::anyhow!("zstd: {e}"))?,
        ),
    };
    let stream = Bounded {
        inner,
        left: bounds.max_unpacked,
        max: bounds.max_unpacked,
    };
    search(tar::Archive::new(stream), path, bounds)
}

fn search<R: Read>(
    mut archive: tar::Archive<R>,
    path: &[String],
    bounds: Bounds,
) -> Result<InLayer> {
    let want = display_path(path);
    let mut removed = false;
    // A name carried by a header extension for the next entry.
    let mut long_name: Option<Vec<u8>> = None;
    let entries = archive
        .entries()
        .map_err(|e| anyhow::anyhow!("not a tar stream: {e}"))?
        .raw(true);
    for entry in entries {
        let mut entry = entry.map_err(|e| anyhow::anyhow!("{e}"))?;
        let kind = entry.header().entry_type();
        match kind {
            tar::EntryType::GNULongName | tar::EntryType::XHeader => {
                let bytes = read_extension(&mut entry)?;
                let name = if kind == tar::EntryType::GNULongName {
                    Some(bytes.split(|&b| b == 0).next().unwrap_or_default().to_vec())
                } else {
                    pax_path(&bytes)?
                };
                if name.is_some() {
                    long_name = name;
                }
                continue;
            }
            // Link names and global records don't name the next entry.
            tar::EntryType::GNULongLink | tar::EntryType::XGlobalHeader => {
                read_extension(&mut entry)?;
                continue;
            }
            _ => {}
        }
        let raw_name = match long_name.take() {
            Some(n) => n,
            None => entry.path_bytes().into_owned(),
        };
        let name = components(&raw_name)?;
        let base = name.last().map(String::as_str).unwrap_or("");
        // Whiteouts (OCI image spec, "Whiteouts"): they hide lower layers only.
        if let Some(hidden) = base.strip_prefix(".wh.") {
            let dir = &name[..name.len() - 1];
            if hidden == ".wh..opq" {
                if path.len() > dir.len() && path.starts_with(dir) {
                    removed = true;
                }
            } else {
                let mut gone = dir.to_vec();
                gone.push(hidden.to_string());
                if path.starts_with(&gone) {
                    removed = true;
                }
            }
            continue;
        }
        if name.as_slice() == path {
            match kind {
                tar::EntryType::Regular | tar::EntryType::Continuous => {}
                tar::EntryType::Symlink | tar::EntryType::Link => bail!(
                    "`{want}` is a {} to `{}`; worldfit reads only a regular file there",
                    if kind == tar::EntryType::Symlink {
                        "symlink"
                    } else {
                        "hard link"
                    },
                    entry
                        .link_name_bytes()
                        .map(|l| String::from_utf8_lossy(&l).into_owned())
                        .unwrap_or_default()
                ),
                tar::EntryType::Directory => bail!("`{want}` is a directory, not a wasm file"),
                other => bail!("`{want}` is not a regular file (tar entry type {other:?})"),
            }
            let size = entry.header().size().map_err(|e| anyhow::anyhow!("{e}"))?;
            if size > bounds.max_file {
                bail!(
                    "`{want}` is {size} bytes, over the limit of {} (--max-layer-bytes)",
                    bounds.max_file
                );
            }
            // The header's size is a claim: read no more than it (tar-rs
            // stops there) and check that all of it arrived.
            let mut bytes = Vec::with_capacity(size.min(64 << 20) as usize);
            entry
                .read_to_end(&mut bytes)
                .map_err(|e| anyhow::anyhow!("`{want}`: {e}"))?;
            if bytes.len() as u64 != size {
                bail!("`{want}`: the layer ends inside the file");
            }
            return Ok(InLayer::Found(bytes));
        }
        // A parent of the path that isn't a directory.
        if name.len() < path.len() && path.starts_with(&name) && kind != tar::EntryType::Directory {
            if matches!(kind, tar::EntryType::Symlink | tar::EntryType::Link) {
                bail!(
                    "`{}` (a parent of `{want}`) is a link; worldfit doesn't follow links",
                    display_path(&name)
                );
            }
            removed = true;
        }
    }
    Ok(if removed {
        InLayer::Removed
    } else {
        InLayer::Absent
    })
}

/// A header extension's bytes, at most [`MAX_EXTENSION`].
fn read_extension<R: Read>(entry: &mut tar::Entry<'_, R>) -> Result<Vec<u8>> {
    let size = entry.header().size().map_err(|e| anyhow::anyhow!("{e}"))?;
    if size > MAX_EXTENSION {
        bail!("a tar header extension of {size} bytes, over the limit of {MAX_EXTENSION}");
    }
    let mut bytes = Vec::with_capacity(size as usize);
    entry
        .take(MAX_EXTENSION)
        .read_to_end(&mut bytes)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(bytes)
}

/// The `path` of a PAX record set, when it has one.
fn pax_path(bytes: &[u8]) -> Result<Option<Vec<u8>>> {
    let mut path = None;
    for record in tar::PaxExtensions::new(bytes) {
        let record = record.map_err(|e| anyhow::anyhow!("a malformed PAX record: {e}"))?;
        if record.key_bytes() == b"path" {
            path = Some(record.value_bytes().to_vec());
        }
    }
    Ok(path)
}

/// A tar entry's name as components, refusing absolute names and `..`.
fn components(raw: &[u8]) -> Result<Vec<String>> {
    let name = String::from_utf8_lossy(raw);
    if name.starts_with('/') {
        bail!("entry `{name}` has an absolute path");
    }
    let mut out = Vec::new();
    for part in name.split('/') {
        match part {
            "" | "." => {}
            ".." => bail!("entry `{name}` climbs out of the layer with `..`"),
            p => out.push(p.to_string()),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(p: &str) -> Vec<String> {
        entrypoint_path(Some(&[p.to_string()]), None, None).unwrap()
    }

    fn layer(files: &[(&str, tar::EntryType, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, kind, data) in files {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_mode(0o755);
            h.set_size(if *kind == tar::EntryType::Regular {
                data.len() as u64
            } else {
                0
            });
            if matches!(kind, tar::EntryType::Symlink | tar::EntryType::Link) {
                h.set_link_name(std::str::from_utf8(data).unwrap()).unwrap();
                b.append_data(&mut h, name, std::io::empty()).unwrap();
            } else {
                b.append_data(&mut h, name, *data).unwrap();
            }
        }
        b.into_inner().unwrap()
    }

    const BOUNDS: Bounds = Bounds {
        max_file: 1 << 20,
        max_unpacked: 1 << 24,
    };

    fn find(bytes: &[u8], p: &str) -> Result<InLayer> {
        find_in_layer(bytes, Compression::None, &path(p), BOUNDS)
    }

    #[test]
    fn entrypoints_resolve_from_the_root_or_the_working_dir() {
        assert_eq!(path("/hello.wasm"), ["hello.wasm"]);
        assert_eq!(path("./app/../hello.wasm#_start"), ["hello.wasm"]);
        let cmd = ["bin/x.wasm".to_string()];
        assert_eq!(
            entrypoint_path(Some(&[]), Some(&cmd), Some("/srv")).unwrap(),
            ["srv", "bin", "x.wasm"]
        );
        assert!(entrypoint_path(None, None, None).is_err());
        assert!(entrypoint_path(Some(&["/../x".into()]), None, None).is_err());
        assert!(entrypoint_path(Some(&["/".into()]), None, None).is_err());
    }

    #[test]
    fn the_file_is_found_after_other_entries() {
        let l = layer(&[
            ("etc/", tar::EntryType::Directory, b""),
            ("etc/hosts", tar::EntryType::Regular, b"x"),
            ("./app/hello.wasm", tar::EntryType::Regular, b"\0asm"),
        ]);
        assert_eq!(
            find(&l, "/app/hello.wasm").unwrap(),
            InLayer::Found(b"\0asm".to_vec())
        );
        assert_eq!(find(&l, "/hello.wasm").unwrap(), InLayer::Absent);
    }

    #[test]
    fn whiteouts_and_files_over_parents_remove_it() {
        let wh = layer(&[("app/.wh.hello.wasm", tar::EntryType::Regular, b"")]);
        assert_eq!(find(&wh, "/app/hello.wasm").unwrap(), InLayer::Removed);
        let opaque = layer(&[("app/.wh..wh..opq", tar::EntryType::Regular, b"")]);
        assert_eq!(find(&opaque, "/app/hello.wasm").unwrap(), InLayer::Removed);
        assert_eq!(find(&opaque, "/other.wasm").unwrap(), InLayer::Absent);
        let file_parent = layer(&[("app", tar::EntryType::Regular, b"x")]);
        assert_eq!(
            find(&file_parent, "/app/hello.wasm").unwrap(),
            InLayer::Removed
        );
        // An opaque directory keeps what its own layer puts in it.
        let refill = layer(&[
            ("app/.wh..wh..opq", tar::EntryType::Regular, b""),
            ("app/hello.wasm", tar::EntryType::Regular, b"new"),
        ]);
        assert_eq!(
            find(&refill, "/app/hello.wasm").unwrap(),
            InLayer::Found(b"new".to_vec())
        );
    }

    #[test]
    fn links_at_the_path_or_its_parents_are_refused() {
        let sym = layer(&[("hello.wasm", tar::EntryType::Symlink, b"/etc/shadow")]);
        let e = find(&sym, "/hello.wasm").unwrap_err().to_string();
        assert!(e.contains("symlink to `/etc/shadow`"), "{e}");
        let hard = layer(&[("hello.wasm", tar::EntryType::Link, b"etc/shadow")]);
        assert!(
            find(&hard, "/hello.wasm")
                .unwrap_err()
                .to_string()
                .contains("hard link")
        );
        let parent = layer(&[("app", tar::EntryType::Symlink, b"/")]);
        assert!(
            find(&parent, "/app/x.wasm")
                .unwrap_err()
                .to_string()
                .contains("parent")
        );
    }

    #[test]
    fn path_tricks_are_refused_anywhere_in_the_layer() {
        for bad in ["../x", "a/../../x"] {
            let mut b = tar::Builder::new(Vec::new());
            let mut h = tar::Header::new_gnu();
            h.set_size(1);
            // Written raw: tar-rs refuses to build `..` names itself.
            let name = h.as_gnu_mut().unwrap();
            name.name[..bad.len()].copy_from_slice(bad.as_bytes());
            h.set_cksum();
            b.append(&h, &b"x"[..]).unwrap();
            let bytes = b.into_inner().unwrap();
            let e = find(&bytes, "/y").unwrap_err().to_string();
            assert!(e.contains("climbs out"), "{bad}: {e}");
        }
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.as_gnu_mut().unwrap().name[..6].copy_from_slice(b"/x.abc");
        h.set_cksum();
        let mut b = tar::Builder::new(Vec::new());
        b.append(&h, &b"x"[..]).unwrap();
        let e = find(&b.into_inner().unwrap(), "/y")
            .unwrap_err()
            .to_string();
        assert!(e.contains("absolute path"), "{e}");
    }

    #[test]
    fn long_names_are_read_and_bounded() {
        let long = format!("{}/hello.wasm", "d".repeat(300));
        let l = layer(&[(&long, tar::EntryType::Regular, b"\0asm")]);
        assert_eq!(
            find(&l, &format!("/{long}")).unwrap(),
            InLayer::Found(b"\0asm".to_vec())
        );
        let huge = format!("{}/x", "d".repeat(MAX_EXTENSION as usize + 10));
        let l = layer(&[(&huge, tar::EntryType::Regular, b"x")]);
        assert!(
            find(&l, "/x")
                .unwrap_err()
                .to_string()
                .contains("header extension")
        );
    }

    #[test]
    fn sizes_are_bounded() {
        let l = layer(&[("hello.wasm", tar::EntryType::Regular, &[0u8; 4096])]);
        let small = Bounds {
            max_file: 100,
            max_unpacked: 1 << 20,
        };
        let e = find_in_layer(&l[..], Compression::None, &path("/hello.wasm"), small);
        assert!(e.unwrap_err().to_string().contains("over the limit"));
        let tiny = Bounds {
            max_file: 1 << 20,
            max_unpacked: 1000,
        };
        let e = find_in_layer(&l[..], Compression::None, &path("/hello.wasm"), tiny);
        assert!(e.unwrap_err().to_string().contains("unpacks to more than"));
    }

    #[test]
    fn gzip_and_zstd_layers_read_and_truncation_is_an_error() {
        use std::io::Write;
        let l = layer(&[("hello.wasm", tar::EntryType::Regular, b"\0asm")]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&l).unwrap();
        let gz = gz.finish().unwrap();
        let zst = zstd::encode_all(&l[..], 1).unwrap();
        for (bytes, c) in [(&gz, Compression::Gzip), (&zst, Compression::Zstd)] {
            assert_eq!(
                find_in_layer(&bytes[..], c, &path("/hello.wasm"), BOUNDS).unwrap(),
                InLayer::Found(b"\0asm".to_vec())
            );
            assert!(
                find_in_layer(&bytes[..bytes.len() / 3], c, &path("/hello.wasm"), BOUNDS).is_err()
            );
        }
        assert_eq!(
            Compression::of_media_type("application/vnd.oci.image.layer.v1.tar+zstd"),
            Some(Compression::Zstd)
        );
        assert_eq!(Compression::of_media_type("application/wasm"), None);
    }
}
