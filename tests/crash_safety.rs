//! Writes that fail part-way (a crash, a full disk) and writers that race
//! never leave a layout or a compile cache that reads back differently.

mod common;

use common::oci::{hello, index_blob, wasip1_hello};
use common::{copy_dir, files, fixture, worldfit_command};
use std::path::Path;
use worldfit::oci::artifact::Blob;
use worldfit::oci::layout::{write_tagged, write_tagged_with_hook};

fn inspect_json(source: &str) -> String {
    let out = worldfit_command()
        .args(["inspect", source, "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn a_write_that_fails_at_any_step_leaves_the_previous_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let (p1, p2) = (wasip1_hello(), hello());
    // The layout as it was: p2 under 1.0.
    let dir = tmp.path().join("oci");
    let first = index_blob(vec![p2.entry.clone()]);
    write_tagged(
        &dir,
        "1.0",
        &[&p2.layer, &p2.config, &p2.manifest, &first],
        &first.descriptor,
    )
    .unwrap();
    let before = files(&dir);
    let read_before = inspect_json(&format!("{}:1.0", dir.display()));

    // The update: p1 and p2 under 1.0.
    let second = index_blob(vec![p2.entry.clone(), p1.entry.clone()]);
    let blobs: Vec<&Blob> = vec![&p1.layer, &p1.config, &p1.manifest, &second];
    let mut steps = Vec::new();
    let scratch = tmp.path().join("scratch");
    std::fs::create_dir(&scratch).unwrap();
    let copy = scratch.join("oci");
    copy_dir(&dir, &copy);
    write_tagged_with_hook(&copy, "1.0", &blobs, &second.descriptor, &mut |s| {
        steps.push(s.to_string());
        Ok(())
    })
    .unwrap();
    assert_eq!(steps.len(), 5, "{steps:?}"); // four blobs, then index.json
    assert_eq!(steps.last().unwrap(), "index.json");

    for (k, step) in steps.iter().enumerate() {
        let mut n = 0;
        let err = write_tagged_with_hook(&dir, "1.0", &blobs, &second.descriptor, &mut |_| {
            n += 1;
            if n > k {
                anyhow::bail!("injected failure before {step}")
            } else {
                Ok(())
            }
        })
        .unwrap_err();
        assert!(err.to_string().contains("injected"), "{err}");
        // What was there reads back the same; the files it had are untouched;
        // nothing temporary is left. (Blobs written before the failure may
        // stay: unreferenced, content-addressed, harmless.)
        assert_eq!(
            inspect_json(&format!("{}:1.0", dir.display())),
            read_before,
            "failure before {step}"
        );
        let after = files(&dir);
        for (path, bytes) in &before {
            let now = after
                .iter()
                .find(|(p, _)| p == path)
                .unwrap_or_else(|| panic!("{path:?} vanished"));
            assert_eq!(&now.1, bytes, "{path:?} changed (failure before {step})");
        }
        assert!(
            !after
                .iter()
                .any(|(p, _)| p.to_string_lossy().contains(".tmp")),
            "{after:?}"
        );
    }

    // A first write that fails at any step leaves no layout and no staging.
    let fresh = tmp.path().join("fresh");
    std::fs::create_dir(&fresh).unwrap();
    let target = fresh.join("oci");
    for k in 0..8 {
        let mut n = 0;
        let result =
            write_tagged_with_hook(&target, "1.0", &blobs, &second.descriptor, &mut |_| {
                n += 1;
                if n > k {
                    anyhow::bail!("injected")
                } else {
                    Ok(())
                }
            });
        if k < 7 {
            assert!(result.is_err());
            assert_eq!(
                std::fs::read_dir(&fresh).unwrap().count(),
                0,
                "step {k} left something"
            );
        } else {
            result.unwrap(); // 4 blobs, oci-layout, index.json, then the rename
        }
    }
}

#[test]
fn two_tag_runs_into_one_layout_keep_both() {
    let tmp = tempfile::tempdir().unwrap();
    let p1 = tmp.path().join("p1.wasm");
    std::fs::write(&p1, wat::parse_file(fixture("wasip1-hello.wat")).unwrap()).unwrap();
    let hello = fixture("hello-cli.wasm");
    for round in 0..6 {
        // Odd rounds race into a layout that exists; even rounds race to create it.
        let dir = tmp.path().join(format!("oci-{round}"));
        if round % 2 == 1 {
            let out = worldfit_command()
                .arg("tag")
                .arg(&hello)
                .arg("--layout")
                .arg(&dir)
                .args(["--tag", "base"])
                .output()
                .unwrap();
            assert!(out.status.success());
        }
        let spawn = |file: &Path, tag: &str| {
            worldfit_command()
                .arg("tag")
                .arg(file)
                .arg("--layout")
                .arg(&dir)
                .args(["--tag", tag])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        };
        let (a, b) = (spawn(&hello, "a"), spawn(&p1, "b"));
        for child in [a, b] {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "round {round}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        for tag in ["a", "b"] {
            inspect_json(&format!("{}:{tag}", dir.display()));
        }
        // Two platforms under one tag at once: both are kept.
        let (a, b) = (spawn(&hello, "same"), spawn(&p1, "same"));
        for child in [a, b] {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "round {round}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let same: serde_json::Value =
            serde_json::from_str(&inspect_json(&format!("{}:same", dir.display()))).unwrap();
        let mut oses: Vec<&str> = same["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["platform"]["os"].as_str().unwrap())
            .collect();
        oses.sort();
        assert_eq!(oses, ["wasip1", "wasip2"], "round {round}");
        let leftovers: Vec<_> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".partial"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }
}

#[cfg(feature = "wasmtime")]
#[test]
fn two_checks_sharing_a_cache_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let hello = fixture("hello-cli.wasm");
    let check = || {
        worldfit_command()
            .arg("check")
            .arg(&hello)
            .arg("--cache-dir")
            .arg(&cache)
            .arg("--json")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    for round in 0..3 {
        let (a, b) = (check(), check());
        for child in [a, b] {
            let out = child.wait_with_output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "round {round}: {stderr}");
            assert!(!stderr.contains("warning"), "round {round}: {stderr}");
        }
    }
    // The cache that two writers raced to fill serves a warm hit.
    let out = check().wait_with_output().unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["confirmation"]["cached"], true, "{json}");
}
