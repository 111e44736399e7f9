//! The shim under a real containerd (Debian's 1.6, a private instance per
//! test, the shim found on its `PATH` as runtime
//! `io.containerd.worldfit.v1`), started by `ctr run` in the two forms the
//! README gives shim users:
//! - `ctr run --rm --runtime io.containerd.worldfit.v1 IMAGE ID`, for an
//!   index with an entry for the machine's platform (linux/amd64 here),
//!   which containerd 1.6 unpacks into the root filesystem; the shim
//!   selects from the index, and the unpacked files hold a decoy;
//! - for a wasm-only index, which containerd 1.6 can't make a container
//!   from, an empty root filesystem (`--rootfs`) and a `worldfit.image`
//!   label naming the image.

mod common;

use common::*;

const APP: &str = "docker.io/library/app:1.0";

/// The p2 build's line: the build the embedded wasmtime 48 should run
/// from an index of p3, p2 and p1 builds. It has wasi:cli@0.3.0 and the p3
/// build needs 0.3.2, so worldfit's ranking puts the p2 build, whose
/// features all fit, above the p3 one, which may fit.
const P2_LINE: &str = "hello from worldfit\n";

/// Imports an index of p3, p2 and p1 builds (then a linux/amd64 entry if
/// `linux`) as `APP`; returns the p2 build.
fn import_app(
    node: &Node,
    dir: &std::path::Path,
    linux: bool,
) -> worldfit::oci::artifact::Artifact {
    let p3 = artifact(std::fs::read(fixture("p3-hello.wasm")).unwrap());
    let p2 = artifact(std::fs::read(fixture("hello-cli.wasm")).unwrap());
    let p1 = artifact(p1_printing("the wasip1 build"));
    let tar = image_tar(dir, "app", &[&p3, &p2, &p1], linux);
    node.import(&tar, "docker.io/library/app");
    p2
}

#[test]
fn ctr_run_of_a_multi_build_index_runs_the_build_this_host_should_run() {
    let node = Node::start();
    let dir = tempfile::tempdir().unwrap();
    let p2 = import_app(&node, dir.path(), true);

    // No args: the linux entry's Entrypoint, `/app.wasm`, which is a decoy
    // in the unpacked root filesystem.
    let out = node.run_image(APP, "first", &[]);
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stderr),
        node.containerd.log()
    );
    assert_eq!(text(&out.stdout), P2_LINE);
    let log = node.shim_log();
    let digest = &p2.layer.descriptor.digest;
    assert!(
        log.contains(&format!("layer {digest}")) && log.contains(&p2.entry.digest),
        "the p2 layer {digest} is not named in the shim's log:\n{log}"
    );
    assert!(log.contains("(compiled now"), "{log}");

    // The second start loads the compiled code from the cache.
    let out = node.run_image(APP, "second", &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), P2_LINE);
    let log = node.shim_log();
    assert!(
        log.lines()
            .any(|l| l.contains("container second") && l.contains("compiled code from the cache")),
        "{log}"
    );
}

#[test]
fn a_wasm_only_index_runs_from_an_empty_root_and_a_label() {
    let node = Node::start();
    let dir = tempfile::tempdir().unwrap();
    let p2 = import_app(&node, dir.path(), false);

    // containerd 1.6 itself refuses: nothing in the index is for this
    // machine's platform. (If a later containerd runs it, the README's
    // advice for 1.6 needs a second look.)
    let refused = node.run_image(APP, "plain", &["/app.wasm"]);
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains("no match for platform"),
        "{}",
        text(&refused.stderr)
    );

    // A decoy where runwasi's shims would look for the program.
    let root = dir.path().join("decoy-root");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(
        root.join("app.wasm"),
        p1_printing("the decoy from the root filesystem"),
    )
    .unwrap();
    let out = node.run("labelled", Some(APP), &root, &[], &["/app.wasm"]);
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stderr),
        node.shim_log()
    );
    assert_eq!(text(&out.stdout), P2_LINE);
    assert!(
        node.shim_log()
            .contains(&format!("layer {}", p2.layer.descriptor.digest))
    );
}

#[test]
fn a_p3_build_runs_with_the_containers_env() {
    let node = Node::start();
    let dir = tempfile::tempdir().unwrap();
    let p3 = artifact(std::fs::read(fixture("p3-hello.wasm")).unwrap());
    let tar = image_tar(dir.path(), "p3", &[&p3], true);
    node.import(&tar, "docker.io/library/p3");
    let out = node.run(
        "p3",
        Some("docker.io/library/p3:1.0"),
        &node.empty_root(),
        &["WORLDFIT_NAME=the p3 build"],
        &["p3"],
    );
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stderr),
        node.shim_log()
    );
    assert_eq!(text(&out.stdout), "hello from the p3 build (WASI 0.3.2)\n");
    assert!(node.shim_log().contains(&p3.layer.descriptor.digest));
}

#[test]
fn an_image_with_no_build_for_this_host_fails_the_start_saying_why() {
    let node = Node::start();
    let dir = tempfile::tempdir().unwrap();
    let missing = artifact(wat(r#"(component
  (import "wasi:cli/environment@0.2.0" (instance (export "get-arguments" (func (result (list string))))))
  (import "example:missing/api@1.0.0" (instance (export "f" (func)))))"#));
    let p1 = artifact(wat(
        &std::fs::read_to_string(fixture("wasip1-bad.wat")).unwrap()
    ));
    let tar = image_tar(dir.path(), "bad", &[&missing, &p1], true);
    node.import(&tar, "docker.io/library/bad");

    let out = node.run_image("docker.io/library/bad:1.0", "bad", &[]);
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "started: {stderr}");
    for reason in [
        "no build of `containerd://default/docker.io/library/bad:1.0` runs on host `embedded-wasmtime@48`",
        "needs example:missing/api@1.0.0; host lacks it",
        "imports from module `env`",
        "linux/amd64",
    ] {
        assert!(
            stderr.contains(reason),
            "task error lacks `{reason}`: {stderr}"
        );
        assert!(
            node.shim_log().contains(reason),
            "shim log lacks `{reason}`: {}",
            node.shim_log()
        );
    }
    assert!(text(&out.stdout).is_empty());

    // containerd is unharmed, and the next container runs.
    let ok = node.containerd.ctr(&["version"]);
    assert!(ok.status.success());
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(root.join("args.wasm"), p1_args()).unwrap();
    let out = node.run("after", None, &root, &[], &["/args.wasm", "x"]);
    assert_eq!(
        text(&out.stdout),
        "/args.wasm\nx\n",
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_container_with_no_image_runs_its_program_from_the_root_filesystem() {
    let node = Node::start();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(root.join("args.wasm"), p1_args()).unwrap();
    let out = node.run(
        "plain",
        None,
        &root,
        &[],
        &["/args.wasm", "one", "two words"],
    );
    assert_eq!(
        text(&out.stdout),
        "/args.wasm\none\ntwo words\n",
        "{}",
        text(&out.stderr)
    );
    // Its exit status is the guest's: proc_exit(argc).
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(
        node.shim_log()
            .contains("from the root filesystem (no image: not selected)")
    );
}

#[test]
fn a_kill_stops_a_running_guest_and_its_status_says_so() {
    let node = Node::start();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(
        root.join("spin.wasm"),
        p1_printing_then("spinning", "(loop (br 0))"),
    )
    .unwrap();
    let mut run = node
        .ctr_run("spin", None, &root, &[], &["/spin.wasm"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    assert_eq!(first_line(&mut run), "spinning\n");
    // The guest spins in wasm, never calling the host: the kill must
    // still stop it.
    let kill = node.containerd.ctr(&["task", "kill", "spin"]);
    assert!(kill.status.success(), "{}", text(&kill.stderr));
    let status = exit_within(&mut run, 20, "the guest was not stopped");
    // SIGTERM (ctr's default): 128 + 15.
    assert_eq!(status.code(), Some(143));
    assert!(
        node.shim_log()
            .contains("container spin: exited with status 143")
    );
}

/// A WASI preview 1 command that prints "ready", then copies its stdin to
/// its stdout until the end of stdin.
fn p1_echo() -> Vec<u8> {
    p1_printing_then(
        "ready",
        r#"(block $end (loop $more
      (i32.store (i32.const 256) (i32.const 1024))
      (i32.store (i32.const 260) (i32.const 1024))
      (i32.store (i32.const 300) (i32.const 0))
      (drop (call $r (i32.const 0) (i32.const 256) (i32.const 1) (i32.const 300)))
      (br_if $end (i32.eqz (i32.load (i32.const 300))))
      (i32.store (i32.const 272) (i32.const 1024))
      (i32.store (i32.const 276) (i32.load (i32.const 300)))
      (drop (call $w (i32.const 1) (i32.const 272) (i32.const 1) (i32.const 304)))
      (br $more)))"#,
    )
}

/// The first line `child` prints (its stdout piped), read as it comes.
fn first_line(child: &mut std::process::Child) -> String {
    use std::io::BufRead;
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    line
}

/// The exit status of `child`, which must end within `secs` seconds.
fn exit_within(
    child: &mut std::process::Child,
    secs: u64,
    otherwise: &str,
) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(std::time::Instant::now() < deadline, "{otherwise}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// `GET /` on `addr`, the whole answer (HTTP/1.1, `Connection: close`).
fn get(addr: &str) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    s.write_all(b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")?;
    let mut answer = String::new();
    s.read_to_string(&mut answer)?;
    Ok(answer)
}

#[test]
fn an_http_handler_is_served_until_killed() {
    let node = Node::start();
    let dir = tempfile::tempdir().unwrap();
    let handler = artifact(std::fs::read(fixture("http-handler.wasm")).unwrap());
    let tar = image_tar(dir.path(), "web", &[&handler], true);
    node.import(&tar, "docker.io/library/web");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut run = node
        .ctr_run(
            "web",
            Some("docker.io/library/web:1.0"),
            &node.empty_root(),
            &[&format!("WASMTIME_HTTP_PROXY_SOCKET_ADDR={addr}")],
            &["web"],
        )
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let first = loop {
        match get(&addr) {
            Ok(answer) => break answer,
            Err(e) => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "nothing served on {addr}: {e}\n{}",
                    node.shim_log()
                );
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        }
    };
    // The fixture's answer, streamed: one chunk, `hello`.
    let served = |answer: &str| {
        answer.starts_with("HTTP/1.1 200 OK\r\n")
            && answer.contains("\r\ncontent-type: text/plain\r\n")
            && answer.ends_with("\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
    };
    assert!(served(&first), "{first}");
    // A fresh instance per request: the second is answered the same.
    let second = get(&addr).unwrap();
    assert!(served(&second), "{second}");
    assert!(
        node.shim_log()
            .contains(&format!("serving wasi:http on {addr}"))
    );
    assert!(node.shim_log().contains(&handler.layer.descriptor.digest));

    let kill = node.containerd.ctr(&["task", "kill", "web"]);
    assert!(kill.status.success(), "{}", text(&kill.stderr));
    let status = exit_within(&mut run, 20, "the server was not stopped");
    assert_eq!(status.code(), Some(143));
    assert!(get(&addr).is_err(), "still served after the kill");
}

#[test]
fn stdin_reaches_the_guest_and_a_guest_waiting_on_it_can_be_killed() {
    use std::io::Write;
    let node = Node::start();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(root.join("echo.wasm"), p1_echo()).unwrap();
    let piped = || std::process::Stdio::piped();

    // stdin is copied through, and its end ends the guest.
    let mut run = node
        .ctr_run("echo", None, &root, &[], &["/echo.wasm"])
        .stdin(piped())
        .stdout(piped())
        .spawn()
        .unwrap();
    run.stdin
        .take()
        .unwrap()
        .write_all(b"ping\npong\n")
        .unwrap();
    let status = exit_within(&mut run, 20, "the guest did not see its stdin end");
    let mut printed = String::new();
    std::io::Read::read_to_string(&mut run.stdout.take().unwrap(), &mut printed).unwrap();
    assert_eq!(printed, "ready\nping\npong\n");
    assert!(status.success(), "{}", node.shim_log());

    // A guest waiting on a stdin that never ends is stopped by a kill.
    let mut run = node
        .ctr_run("waits", None, &root, &[], &["/echo.wasm"])
        .stdin(piped())
        .stdout(piped())
        .spawn()
        .unwrap();
    let _open_stdin = run.stdin.take().unwrap();
    assert_eq!(first_line(&mut run), "ready\n");
    let kill = node.containerd.ctr(&["task", "kill", "waits"]);
    assert!(kill.status.success(), "{}", text(&kill.stderr));
    // A SIGKILL right after (the task may be gone already): the status
    // stays the first signal's.
    let _ = node
        .containerd
        .ctr(&["task", "kill", "--signal", "SIGKILL", "waits"]);
    let status = exit_within(&mut run, 20, "the guest waiting on stdin was not stopped");
    assert_eq!(status.code(), Some(143), "the first signal's status");
    assert!(
        node.shim_log()
            .contains("container waits: exited with status 143")
    );
}
