//! A private containerd for tests: Debian's `containerd` started with its
//! own root, state and socket (no CRI plugin, no systemd), stopped on drop;
//! and `ctr`, its CLI, pointed at it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A running containerd.
pub struct Containerd {
    /// Its gRPC socket.
    pub socket: PathBuf,
    /// Its root (content store files live under it).
    pub root: PathBuf,
    child: Child,
    dir: tempfile::TempDir,
}

impl Containerd {
    /// Starts a containerd and waits until `ctr version` answers.
    pub fn start() -> Containerd {
        Containerd::start_with_env(&[])
    }

    /// [`Containerd::start`] with variables added to containerd's
    /// environment, which the shims it starts inherit (`PATH`, where it
    /// finds a runtime's `containerd-shim-NAME-v1`).
    pub fn start_with_env(env: &[(&str, &std::ffi::OsStr)]) -> Containerd {
        // A short path: a Unix socket's path is limited to 108 bytes.
        let dir = tempfile::Builder::new()
            .prefix("wf-ctd")
            .tempdir_in("/tmp")
            .unwrap();
        let d = dir.path();
        let super::containerd_config::Layout {
            root,
            socket,
            config,
            ..
        } = super::containerd_config::layout(d);
        std::fs::write(d.join("config.toml"), config).unwrap();
        let log = std::fs::File::create(d.join("log.txt")).unwrap();
        let child = Command::new("containerd")
            .arg("--config")
            .arg(d.join("config.toml"))
            .envs(env.iter().copied())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("containerd is installed (scripts/test installs it)");
        let c = Containerd {
            socket,
            root,
            child,
            dir,
        };
        let started = Instant::now();
        while !c.ctr(&["version"]).status.success() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "containerd did not start: {}",
                c.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        c
    }

    /// containerd's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log.txt")).unwrap_or_default()
    }

    /// Runs `ctr --address SOCKET ARGS...`.
    pub fn ctr(&self, args: &[&str]) -> Output {
        Command::new("ctr")
            .arg("--address")
            .arg(&self.socket)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// The file containerd keeps a blob in (to tamper with it).
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        self.root
            .join("io.containerd.content.v1.content/blobs/sha256")
            .join(digest.trim_start_matches("sha256:"))
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        // SIGTERM: containerd removes its socket and exits.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Tars an OCI layout the way `ctr images import` reads it: `oci-layout`,
/// `index.json` and `blobs/` at the archive's root.
pub fn layout_tar(layout: &Path, tar: &Path) {
    let out = Command::new("tar")
        .arg("-C")
        .arg(layout)
        .arg("-cf")
        .arg(tar)
        .args(["oci-layout", "index.json", "blobs"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
