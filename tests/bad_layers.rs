//! Hostile filesystem layers: a `wasi/wasm` image whose tar layer tries a
//! path trick, links the entrypoint somewhere else, declares a huge file,
//! unpacks to far more than it is (a decompression bomb), ends mid-stream,
//! isn't a tar at all, or doesn't hold the file its `Entrypoint` names.
//! Through every command that reads the layer, each is one `error:` line
//! naming the image and the entry, exit 2, in bounded time, and nothing is
//! written.
#![cfg(all(feature = "registry", feature = "wasmtime"))]

mod common;

use common::worldfit_command;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};
use worldfit::oci::artifact::{Blob, Descriptor, Manifest};
use worldfit::oci::layout::{Index, write_tagged};
use worldfit::oci::{INDEX_MEDIA_TYPE, MANIFEST_MEDIA_TYPE};
use worldfit::platform::Platform;

const TAR: &str = "application/vnd.oci.image.layer.v1.tar";
const TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// A tar entry to write.
enum Item<'a> {
    File(&'a str, &'a [u8]),
    /// A file whose header declares `size` bytes but carries none.
    Claims(&'a str, u64),
    Symlink(&'a str, &'a str),
    HardLink(&'a str, &'a str),
    /// A name written into the header as is (tar-rs refuses `..` and
    /// absolute names when building, as it should).
    RawName(&'a str),
}

fn tar(items: &[Item]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for item in items {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o755);
        match item {
            Item::File(name, data) => {
                h.set_size(data.len() as u64);
                b.append_data(&mut h, name, *data).unwrap();
            }
            Item::Claims(name, size) => {
                h.set_size(*size);
                h.set_path(name).unwrap();
                h.set_cksum();
                // The header alone: the stream ends where the data should be.
                b.get_mut().extend_from_slice(h.as_bytes());
            }
            Item::Symlink(name, to) | Item::HardLink(name, to) => {
                h.set_entry_type(if matches!(item, Item::Symlink(..)) {
                    tar::EntryType::Symlink
                } else {
                    tar::EntryType::Link
                });
                h.set_size(0);
                b.append_link(&mut h, name, to).unwrap();
            }
            Item::RawName(name) => {
                h.set_size(4);
                h.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
                h.set_cksum();
                b.append(&h, &b"\0asm"[..]).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

/// The good module, as its layer would carry it.
fn module() -> Vec<u8> {
    common::wat_module("wasip1-hello.wat")
}

/// Writes a `wasi/wasm` image (tag `1.0`) of one layer; returns the
/// manifest's digest.
fn write_image(dir: &Path, entrypoint: &str, layer: Vec<u8>, media_type: &str) -> String {
    let config = serde_json::json!({
        "architecture": "wasm",
        "os": "wasi",
        "config": {"Entrypoint": [entrypoint]},
        "rootfs": {"type": "layers", "diff_ids": []},
    });
    let config = Blob::new(
        "application/vnd.oci.image.config.v1+json",
        serde_json::to_vec(&config).unwrap(),
    );
    let layer = Blob::new(media_type, layer);
    let manifest = Manifest {
        schema_version: 2,
        media_type: MANIFEST_MEDIA_TYPE.into(),
        artifact_type: None,
        config: config.descriptor.clone(),
        layers: vec![layer.descriptor.clone()],
        annotations: BTreeMap::new(),
    };
    let manifest = Blob::new(MANIFEST_MEDIA_TYPE, serde_json::to_vec(&manifest).unwrap());
    let entry = Descriptor {
        platform: Some(Platform {
            architecture: "wasm".into(),
            os: "wasi".into(),
            os_version: None,
            os_features: vec![],
            variant: None,
        }),
        ..manifest.descriptor.clone()
    };
    let index = Index {
        schema_version: 2,
        media_type: Some(INDEX_MEDIA_TYPE.into()),
        manifests: vec![entry],
        annotations: BTreeMap::new(),
    };
    let index = Blob::new(INDEX_MEDIA_TYPE, serde_json::to_vec(&index).unwrap());
    write_tagged(
        dir,
        "1.0",
        &[&layer, &config, &manifest, &index],
        &index.descriptor,
    )
    .unwrap();
    manifest.descriptor.digest
}

struct Case {
    name: &'static str,
    entrypoint: &'static str,
    layer: Vec<u8>,
    media_type: &'static str,
    /// Extra flags (smaller limits).
    flags: &'static [&'static str],
    /// What the error must say.
    says: &'static str,
}

fn cases() -> Vec<Case> {
    let good = module();
    let zeros = vec![0u8; 64 << 20];
    let whole = gzip(&tar(&[Item::File("hello.wasm", &good)]));
    vec![
        Case {
            name: "dot-dot path",
            entrypoint: "/hello.wasm",
            layer: tar(&[
                Item::RawName("../hello.wasm"),
                Item::File("hello.wasm", &good),
            ]),
            media_type: TAR,
            flags: &[],
            says: "climbs out of the layer",
        },
        Case {
            name: "absolute path",
            entrypoint: "/hello.wasm",
            layer: tar(&[Item::RawName("/hello.wasm")]),
            media_type: TAR,
            flags: &[],
            says: "absolute path",
        },
        Case {
            name: "symlink entrypoint",
            entrypoint: "/hello.wasm",
            layer: tar(&[Item::Symlink("hello.wasm", "/etc/passwd")]),
            media_type: TAR,
            flags: &[],
            says: "symlink to `/etc/passwd`",
        },
        Case {
            name: "hard-linked entrypoint",
            entrypoint: "/hello.wasm",
            layer: gzip(&tar(&[
                Item::File("real.wasm", &good),
                Item::HardLink("hello.wasm", "real.wasm"),
            ])),
            media_type: TAR_GZIP,
            flags: &[],
            says: "hard link to `real.wasm`",
        },
        Case {
            name: "symlinked parent directory",
            entrypoint: "/app/hello.wasm",
            layer: tar(&[Item::Symlink("app", "/")]),
            media_type: TAR,
            flags: &[],
            says: "doesn't follow links",
        },
        Case {
            name: "huge entry",
            entrypoint: "/hello.wasm",
            layer: tar(&[Item::Claims("hello.wasm", 1 << 40)]),
            media_type: TAR,
            flags: &[],
            says: "over the limit",
        },
        Case {
            name: "decompression bomb",
            entrypoint: "/hello.wasm",
            layer: gzip(&tar(&[
                Item::File("zeros", &zeros),
                Item::File("hello.wasm", &good),
            ])),
            media_type: TAR_GZIP,
            flags: &["--max-unpacked-bytes", "8388608"],
            says: "unpacks to more than 8388608 bytes",
        },
        Case {
            name: "truncated gzip stream",
            entrypoint: "/hello.wasm",
            layer: whole[..whole.len() / 2].to_vec(),
            media_type: TAR_GZIP,
            flags: &[],
            says: "hello.wasm",
        },
        Case {
            name: "not a tar",
            entrypoint: "/hello.wasm",
            layer: good.clone(),
            media_type: TAR_GZIP,
            flags: &[],
            says: "filesystem layer",
        },
        Case {
            name: "entrypoint names nothing",
            entrypoint: "/missing.wasm",
            layer: gzip(&tar(&[Item::File("hello.wasm", &good)])),
            media_type: TAR_GZIP,
            flags: &[],
            says: "`/missing.wasm` names no file",
        },
    ]
}

#[test]
fn hostile_filesystem_layers_are_one_line_errors_naming_image_and_entry() {
    let tmp = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for (i, case) in cases().into_iter().enumerate() {
        let dir = tmp.path().join(format!("layout-{i}"));
        let entry = write_image(&dir, case.entrypoint, case.layer, case.media_type);
        let before = common::files(&dir);
        let source = format!("{}:1.0", dir.display());
        let cwd = tmp.path().join(format!("cwd-{i}"));
        std::fs::create_dir(&cwd).unwrap();
        for args in [
            &["select"][..],
            &["select", "--no-confirm"],
            &["inspect"],
            &["affinity"],
        ] {
            let started = Instant::now();
            let out = worldfit_command()
                .current_dir(&cwd)
                .args(args)
                .arg(&source)
                .args(case.flags)
                .output()
                .unwrap();
            let took = started.elapsed();
            let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
            let what = format!("{} ({})", case.name, args.join(" "));
            let problems = [
                (out.status.code() != Some(2), "exit 2"),
                (stderr.matches("error:").count() != 1, "one error line"),
                (stderr.contains("panicked"), "no panic"),
                (
                    !stderr.contains(&dir.display().to_string()),
                    "names the image",
                ),
                (!stderr.contains(&entry), "names the entry"),
                (!stderr.contains(case.says), case.says),
                (!out.stdout.is_empty(), "nothing on stdout"),
                (took > Duration::from_secs(30), "bounded time"),
            ];
            for (failed, wanted) in problems {
                if failed {
                    failures.push(format!("{what}: wanted {wanted}; got {stderr}"));
                }
            }
        }
        assert_eq!(
            common::files(&dir),
            before,
            "{}: the layout changed",
            case.name
        );
        assert_eq!(
            std::fs::read_dir(&cwd).unwrap().count(),
            0,
            "{}: wrote into the working directory",
            case.name
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
