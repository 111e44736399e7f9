//! The configuration of a private containerd, shared by the containerd
//! tests (`tests/common/containerd.rs`) and bench (`benches/containerd.rs`,
//! which includes this file by path): its own root, state and socket under
//! one directory, and no CRI plugin or snapshotters it can't use here.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// Where a private containerd keeps its files, and its configuration.
pub struct Layout {
    pub root: PathBuf,
    pub state: PathBuf,
    /// Its gRPC socket. Keep `dir` short: a Unix socket's path is limited
    /// to 108 bytes.
    pub socket: PathBuf,
    /// `config.toml` for `containerd --config`.
    pub config: String,
}

/// The layout of a containerd living in `dir`.
pub fn layout(dir: &Path) -> Layout {
    let (root, state, socket) = (dir.join("root"), dir.join("state"), dir.join("c.sock"));
    let config = format!(
        r#"version = 2
root = "{root}"
state = "{state}"
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
]
[grpc]
  address = "{socket}"
[plugins."io.containerd.internal.v1.opt"]
  path = "{root}/opt"
"#,
        root = root.display(),
        state = state.display(),
        socket = socket.display()
    );
    Layout {
        root,
        state,
        socket,
        config,
    }
}
