//! Selecting from containerd's content store, against a real containerd
//! (Debian's package, a private instance per test) holding an index that
//! `worldfit tag` wrote and `ctr images import` stored.
#![cfg(feature = "containerd")]

mod common;

use common::ok;

use common::containerd::{Containerd, layout_tar};
use common::{fixture, worldfit_command};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const IMAGE: &str = "docker.io/library/wf:1.0";

/// Asserts exit 2 with one `error:` line (and its causes) naming `name`;
/// returns stderr.
fn fails(out: &Output, name: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert_eq!(stderr.matches("error:").count(), 1, "{stderr}");
    assert!(stderr.starts_with("error:"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains(name), "`{name}` not named: {stderr}");
    stderr
}

/// `worldfit ARGS... --containerd-address SOCKET`.
fn worldfit(socket: &Path, args: &[&str]) -> Output {
    worldfit_command()
        .args(args)
        .arg("--containerd-address")
        .arg(socket)
        .output()
        .unwrap()
}

/// A tar of a layout with a wasip2 component and a wasip1 module under
/// tag `1.0`, as `worldfit tag` writes it.
fn tagged_tar(dir: &Path) -> (PathBuf, serde_json::Value) {
    let module = dir.join("wasip1-hello.wasm");
    std::fs::write(
        &module,
        wat::parse_file(fixture("wasip1-hello.wat")).unwrap(),
    )
    .unwrap();
    let layout = dir.join("oci");
    let tagged = ok(&worldfit_command()
        .env("SOURCE_DATE_EPOCH", "0")
        .args(["tag", "--tag", "1.0", "--json", "--layout"])
        .arg(&layout)
        .arg(fixture("hello-cli.wasm"))
        .arg(&module)
        .output()
        .unwrap());
    let tar = dir.join("wf.tar");
    layout_tar(&layout, &tar);
    (tar, serde_json::from_str(&tagged).unwrap())
}

/// Imports every platform without unpacking (there is nothing containerd
/// could unpack), naming the image `docker.io/library/wf:1.0`.
fn import_all(c: &Containerd, namespace: &str, tar: &Path) {
    ok(&c.ctr(&[
        "-n",
        namespace,
        "images",
        "import",
        "--all-platforms",
        "--no-unpack",
        "--base-name",
        "docker.io/library/wf",
        tar.to_str().unwrap(),
    ]));
}

#[test]
fn ctr_cannot_unpack_a_wasm_index_but_select_picks_and_confirms_from_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (tar, tagged) = tagged_tar(tmp.path());
    let c = Containerd::start();

    // containerd on its own: no entry for the host's platform.
    let plain = c.ctr(&[
        "images",
        "import",
        "--base-name",
        "docker.io/library/wf",
        tar.to_str().unwrap(),
    ]);
    assert!(!plain.status.success());
    let stderr = String::from_utf8_lossy(&plain.stderr);
    assert!(
        stderr.contains("no match for platform in manifest"),
        "{stderr}"
    );

    import_all(&c, "default", &tar);
    let source = format!("containerd://{IMAGE}");
    let out = ok(&worldfit(&c.socket, &["select", &source, "--json"]));
    let s: serde_json::Value = serde_json::from_str(&out).unwrap();
    let wasip2 = tagged["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["platform"]["os"] == "wasip2")
        .unwrap();
    assert_eq!(s["selected"]["digest"], wasip2["digest"], "{out}");
    assert_eq!(s["source"], format!("containerd://default/{IMAGE}"));
    assert_eq!(s["digest"], tagged["digest"]);
    let chosen = s["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["verdict"] == "selected")
        .unwrap();
    assert_eq!(chosen["checked"], "instantiated", "{out}");
    assert_eq!(s["entries"].as_array().unwrap().len(), 2);

    // The same source for people, and for inspect; the namespace in the name.
    let text = ok(&worldfit(&c.socket, &["select", &source]));
    assert!(text.starts_with("selected "), "{text}");
    // Its last line says how to read the chosen manifest out of containerd
    // (`worldfit pull` reads registries only), and that command works.
    let hint = text.lines().last().unwrap();
    let (_, command) = hint.split_once(": ").expect("a next step");
    let words: Vec<&str> = command.split_whitespace().collect();
    assert_eq!(words.first(), Some(&"ctr"), "{text}");
    let read = Command::new("ctr").args(&words[1..]).output().unwrap();
    assert!(
        read.status.success(),
        "{command}: {}",
        String::from_utf8_lossy(&read.stderr)
    );
    assert_eq!(
        format!("sha256:{}", worldfit::cache::sha256_hex(&read.stdout)),
        chosen["digest"].as_str().unwrap(),
        "{command}"
    );
    let listed = ok(&worldfit(
        &c.socket,
        &[
            "inspect",
            &format!("containerd://default/{IMAGE}"),
            "--json",
        ],
    ));
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed["entries"].as_array().unwrap().len(), 2, "{listed}");
}

#[test]
fn missing_images_namespaces_and_content_are_one_line_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let (tar, tagged) = tagged_tar(tmp.path());
    let c = Containerd::start();
    import_all(&c, "default", &tar);

    let err = fails(
        &worldfit(
            &c.socket,
            &["select", "containerd://docker.io/library/nope:1"],
        ),
        "docker.io/library/nope:1",
    );
    assert!(err.contains("has no image"), "{err}");
    // The image exists, but not in this namespace.
    let err = fails(
        &worldfit(
            &c.socket,
            &[
                "select",
                &format!("containerd://{IMAGE}"),
                "--containerd-namespace",
                "other",
            ],
        ),
        IMAGE,
    );
    assert!(err.contains("namespace `other`"), "{err}");
    let err = fails(
        &worldfit(
            &c.socket,
            &[
                "select",
                &format!("containerd://{IMAGE}"),
                "--containerd-namespace",
                "bad ns",
            ],
        ),
        "bad ns",
    );
    assert!(err.contains("not a containerd namespace"), "{err}");

    // Content the image needs, gone from the store: what an import without
    // --all-platforms leaves once containerd's garbage collector has run
    // (it runs when it will; removing the blob makes the test deterministic).
    import_all(&c, "partial", &tar);
    let wasip2 = tagged["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["platform"]["os"] == "wasip2")
        .unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_string();
    ok(&c.ctr(&["-n", "partial", "content", "rm", &wasip2]));
    let err = fails(
        &worldfit(
            &c.socket,
            &["select", &format!("containerd://partial/{IMAGE}")],
        ),
        &wasip2,
    );
    assert!(err.contains(IMAGE), "{err}");
    assert!(
        err.contains("missing from containerd's content store"),
        "{err}"
    );
}

#[test]
fn a_tampered_blob_in_the_store_aborts_the_selection() {
    let tmp = tempfile::tempdir().unwrap();
    let (tar, tagged) = tagged_tar(tmp.path());
    let c = Containerd::start();
    import_all(&c, "default", &tar);
    // The wasip2 build's layer, rewritten in place with the same length.
    let manifest_digest = tagged["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["platform"]["os"] == "wasip2")
        .unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(c.blob_file(&manifest_digest)).unwrap()).unwrap();
    let layer = c.blob_file(manifest["layers"][0]["digest"].as_str().unwrap());
    let mut bytes = std::fs::read(&layer).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    let mut perms = std::fs::metadata(&layer).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(&layer, perms).unwrap();
    std::fs::write(&layer, bytes).unwrap();

    let err = fails(
        &worldfit(&c.socket, &["select", &format!("containerd://{IMAGE}")]),
        "corrupt or tampered",
    );
    assert!(
        err.contains(IMAGE) || err.contains("containerd://"),
        "{err}"
    );
    // By its features alone it still selects: nothing tampered is read.
    ok(&worldfit(
        &c.socket,
        &["select", &format!("containerd://{IMAGE}"), "--no-confirm"],
    ));
}

#[test]
fn no_containerd_or_a_silent_socket_fails_in_bounded_time() {
    let tmp = tempfile::tempdir().unwrap();
    let source = format!("containerd://{IMAGE}");

    // Nothing at the socket path (a stopped containerd).
    let gone = tmp.path().join("gone.sock");
    let started = Instant::now();
    let err = fails(
        &worldfit(&gone, &["select", &source]),
        "cannot connect to containerd",
    );
    assert!(err.contains(IMAGE), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10));

    // A containerd that was running and stopped: its socket is gone too.
    let c = Containerd::start();
    let socket = c.socket.clone();
    drop(c);
    fails(
        &worldfit(&socket, &["select", &source]),
        "cannot connect to containerd",
    );

    // A socket that accepts and never answers (not containerd, or hung).
    let silent = tmp.path().join("silent.sock");
    let listener = UnixListener::bind(&silent).unwrap();
    let held = std::thread::spawn(move || {
        let mut open = Vec::new();
        for conn in listener.incoming().take(4) {
            open.push(conn);
        }
        std::thread::sleep(Duration::from_secs(30));
    });
    let started = Instant::now();
    let err = fails(
        &worldfit(&silent, &["select", &source, "--timeout", "1"]),
        "did not answer within 1s",
    );
    assert!(err.contains(IMAGE), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    drop(held);
}

/// The shim's call: the chosen layer's bytes, and a second start of the
/// same image served by the compile cache.
#[test]
fn preflight_returns_the_layer_and_hits_the_cache_on_the_second_start() {
    use worldfit::Host;
    use worldfit::cache::CompileCache;
    use worldfit::confirm::ConfirmOptions;
    use worldfit::oci::containerd::ContainerdOptions;
    use worldfit::preflight::preflight;

    let tmp = tempfile::tempdir().unwrap();
    let (tar, _) = tagged_tar(tmp.path());
    let c = Containerd::start();
    import_all(&c, "default", &tar);
    let containerd = ContainerdOptions {
        address: c.socket.clone(),
        ..ContainerdOptions::default()
    };
    let host = Host::wasmtime();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let start = || {
        let confirm = ConfirmOptions {
            cache: Some(CompileCache::new(tmp.path().join("cache"))),
            ..ConfirmOptions::default()
        };
        runtime.block_on(preflight(IMAGE, &containerd, &host, confirm))
    };
    let first = start().unwrap();
    assert_eq!(
        first.layer,
        std::fs::read(fixture("hello-cli.wasm")).unwrap()
    );
    // The layer's digest, as read, names the bytes for a shim's cache.
    assert_eq!(
        first.layer_sha256,
        worldfit::cache::sha256_hex(&first.layer)
    );
    assert_eq!(
        first.selection.layer_digest.as_deref(),
        Some(format!("sha256:{}", first.layer_sha256).as_str())
    );
    let c1 = first.selection.confirmation.as_ref().unwrap();
    assert!(c1.instantiated && !c1.cached, "{c1:?}");
    let second = start().unwrap();
    assert_eq!(second.digest, first.digest);
    let c2 = second.selection.confirmation.as_ref().unwrap();
    assert!(c2.instantiated && c2.cached, "{c2:?}");

    // A failure is one line naming the image, for the container's status.
    let err = runtime
        .block_on(preflight(
            "docker.io/library/nope:1",
            &containerd,
            &host,
            ConfirmOptions::default(),
        ))
        .err()
        .unwrap();
    let line = format!("{err:#}");
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(
        line.contains("docker.io/library/nope:1") && line.contains("has no image"),
        "{line}"
    );
}

#[test]
fn a_containers_image_and_labels_are_read_back() {
    let c = Containerd::start();
    let root = tempfile::tempdir().unwrap();
    ok(&c.ctr(&[
        "containers",
        "create",
        "--label",
        "worldfit.image=docker.io/library/app:1.0",
        "--rootfs",
        root.path().to_str().unwrap(),
        "made-from-a-rootfs",
    ]));
    let opts = worldfit::oci::containerd::ContainerdOptions {
        address: c.socket.clone(),
        ..Default::default()
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let read =
        |id: &str, ns: &str| runtime.block_on(worldfit::oci::containerd::container(id, ns, &opts));
    let record = read("made-from-a-rootfs", "default").unwrap();
    assert_eq!(record.id, "made-from-a-rootfs");
    assert_eq!(record.image, "", "made from a root filesystem: no image");
    assert_eq!(
        record.labels.get("worldfit.image").map(String::as_str),
        Some("docker.io/library/app:1.0")
    );
    let e = read("absent", "default").unwrap_err().to_string();
    assert_eq!(
        e,
        "containerd has no container `absent` in namespace `default`"
    );
    let e = read("made-from-a-rootfs", "other").unwrap_err().to_string();
    assert!(
        e.contains("no container `made-from-a-rootfs` in namespace `other`"),
        "{e}"
    );
    let e = read("x", "bad ns").unwrap_err().to_string();
    assert!(e.contains("is not a containerd namespace"), "{e}");
}
