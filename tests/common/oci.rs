//! Building OCI layouts for tests through the library: any index shape,
//! including ones `worldfit tag` would never write.
#![allow(dead_code)]

use super::fixture;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use worldfit::oci::INDEX_MEDIA_TYPE;
use worldfit::oci::artifact::{Artifact, Blob, Descriptor, build};
use worldfit::oci::layout::{Index, write_tagged};

/// One build as an artifact (created at the epoch, for stable digests).
pub fn artifact(bytes: Vec<u8>) -> Artifact {
    let wasm = worldfit::decode(&bytes).unwrap();
    build(bytes, &wasm, &worldfit::host::standard_worlds(), Some(0))
}

/// `fixtures/hello-cli.wasm`.
pub fn hello() -> Artifact {
    artifact(std::fs::read(fixture("hello-cli.wasm")).unwrap())
}

/// `fixtures/wasip1-hello.wat`, compiled.
pub fn wasip1_hello() -> Artifact {
    artifact(wat::parse_file(fixture("wasip1-hello.wat")).unwrap())
}

/// An index blob listing `entries`.
pub fn index_blob(entries: Vec<Descriptor>) -> Blob {
    let index = Index {
        schema_version: 2,
        media_type: Some(INDEX_MEDIA_TYPE.into()),
        manifests: entries,
        annotations: BTreeMap::new(),
    };
    Blob::new(INDEX_MEDIA_TYPE, serde_json::to_vec(&index).unwrap())
}

/// Writes `DIR/oci` whose tag `1.0` is an index of exactly `entries` (in
/// this order, platforms as given), with the artifacts' and `extra` blobs.
pub fn layout(
    dir: &Path,
    artifacts: &[&Artifact],
    entries: Vec<Descriptor>,
    extra: Vec<Blob>,
) -> PathBuf {
    let index = index_blob(entries);
    let mut blobs: Vec<&Blob> = Vec::new();
    for a in artifacts {
        blobs.extend([&a.layer, &a.config, &a.manifest]);
    }
    blobs.extend(extra.iter());
    blobs.push(&index);
    let path = dir.join("oci");
    write_tagged(&path, "1.0", &blobs, &index.descriptor).unwrap();
    path
}

/// A chain of `n` indexes (the outermost tagged `chain`) over one build.
pub fn index_chain(dir: &Path, n: usize, build: &Artifact) -> PathBuf {
    let mut blobs = vec![
        build.layer.clone(),
        build.config.clone(),
        build.manifest.clone(),
    ];
    let mut top = build.entry.clone();
    for _ in 0..n {
        let blob = index_blob(vec![top]);
        top = blob.descriptor.clone();
        blobs.push(blob);
    }
    let refs: Vec<&Blob> = blobs.iter().collect();
    let path = dir.join(format!("chain-{n}"));
    write_tagged(&path, "chain", &refs, &top).unwrap();
    path
}
