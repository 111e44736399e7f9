//! Fleet placement: the affinity `worldfit affinity` prints, read back into
//! the Kubernetes API types and evaluated with Kubernetes' documented
//! operator semantics against the labels `worldfit host --format nfd`
//! prints, places a pod on a node exactly when `worldfit select` on that
//! node's host picks an entry at the *yes* level.
#![cfg(all(feature = "registry", feature = "kubernetes"))]

mod common;

use common::oci::index_blob;
use common::{root, worldfit_command};
use k8s_openapi::api::core::v1::{Affinity, NodeSelectorRequirement};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use worldfit::Host;
use worldfit::oci::artifact::Descriptor;
use worldfit::oci::layout::write_tagged;
use worldfit::os_features::{Level, os_feature_levels};
use worldfit::platform::Platform;

// --- Kubernetes' semantics, written from its documentation (not worldfit's code) ---

/// A node selector requirement against a node's labels: `In` (the label's
/// value is one of the values), `NotIn`, `Exists`, `DoesNotExist`, `Gt` and
/// `Lt` (the value, read as an integer, compared with the single value).
fn requirement_matches(r: &NodeSelectorRequirement, labels: &BTreeMap<String, String>) -> bool {
    let value = labels.get(&r.key);
    let values = r.values.clone().unwrap_or_default();
    let int = |s: &str| s.parse::<i64>().ok();
    match r.operator.as_str() {
        "In" => value.is_some_and(|v| values.contains(v)),
        "NotIn" => value.is_none_or(|v| !values.contains(v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => match (value.and_then(|v| int(v)), values.as_slice()) {
            (Some(have), [want]) => match int(want) {
                Some(want) if r.operator == "Gt" => have > want,
                Some(want) => have < want,
                None => false,
            },
            _ => false,
        },
        other => panic!("operator {other} is not Kubernetes'"),
    }
}

/// Required node affinity: the terms are ORed, a term's expressions ANDed,
/// and a term without expressions matches nothing.
fn node_matches(a: &Affinity, labels: &BTreeMap<String, String>) -> bool {
    let terms = &a
        .node_affinity
        .as_ref()
        .unwrap()
        .required_during_scheduling_ignored_during_execution
        .as_ref()
        .unwrap()
        .node_selector_terms;
    assert!(!terms.is_empty(), "an empty term list matches no node");
    terms.iter().any(|t| {
        let e = t.match_expressions.clone().unwrap_or_default();
        !e.is_empty() && e.iter().all(|r| requirement_matches(r, labels))
    })
}

/// Kubernetes' label rules: a DNS-subdomain prefix, a name of ≤ 63
/// characters from `[A-Za-z0-9._-]` beginning and ending alphanumeric; the
/// same for values (which may be empty).
fn assert_valid_label(key: &str, value: &str) {
    let (prefix, name) = key.split_once('/').expect("a prefixed key");
    assert!(
        prefix.len() <= 253
            && prefix.split('.').all(|p| !p.is_empty()
                && p.len() <= 63
                && p.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')),
        "{key}"
    );
    for part in [name, value] {
        assert!(part.len() <= 63, "{key}={value}");
        assert!(
            part.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')),
            "{key}={value}"
        );
        if !part.is_empty() {
            assert!(
                part.starts_with(|c: char| c.is_ascii_alphanumeric()),
                "{key}={value}"
            );
            assert!(
                part.ends_with(|c: char| c.is_ascii_alphanumeric()),
                "{key}={value}"
            );
        }
    }
}

// --- The hosts ---

/// A host as `--wit`/`--world` arguments (none: the built-in one).
#[derive(Debug, Clone)]
struct HostArgs(&'static str, Vec<String>);

fn hosts() -> Vec<HostArgs> {
    let wit = |dir: &str| root().join(dir).to_string_lossy().into_owned();
    let w = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let ours = wit("wit");
    let old = wit("tests/wit/wasi-0.2.0");
    vec![
        HostArgs("built-in", vec![]),
        HostArgs(
            "WASI 0.2.0 only",
            [
                w(&["--wit", &old]),
                w(&[
                    "--world",
                    "wasi:cli/command@0.2.0",
                    "--world",
                    "wasi:http/proxy@0.2.0",
                ]),
            ]
            .concat(),
        ),
        HostArgs(
            "WASI 0.3 only",
            w(&[
                "--wit",
                &ours,
                "--world",
                "worldfit:wasmtime/wasip3-command@48.0.0",
                "--world",
                "worldfit:wasmtime/wasip3-http@48.0.0",
            ]),
        ),
        HostArgs(
            "http only",
            w(&[
                "--wit",
                &ours,
                "--world",
                "worldfit:wasmtime/wasip2-http@48.0.0",
            ]),
        ),
    ]
}

impl HostArgs {
    fn host(&self) -> Host {
        match self.1.as_slice() {
            [] => Host::wasmtime(),
            args => {
                let path = PathBuf::from(&args[1]);
                let worlds: Vec<String> = args[2..].chunks(2).map(|c| c[1].clone()).collect();
                Host::from_wit(&path, &worlds).unwrap()
            }
        }
    }
}

fn run(args: &[&str], host: &HostArgs) -> Output {
    worldfit_command()
        .args(args)
        .args(&host.1)
        .output()
        .unwrap()
}

/// The node labels of a host, as NFD would read them from the feature file.
fn nfd_labels(host: &HostArgs) -> BTreeMap<String, String> {
    let out = run(&["host", "--format", "nfd"], host);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let labels: BTreeMap<String, String> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (k, v) = l.split_once('=').expect("key=value");
            assert_valid_label(k, v);
            (k.to_string(), v.to_string())
        })
        .collect();
    assert!(!labels.is_empty());
    labels
}

// --- The images ---

fn wasm(os: &str, features: &[&str]) -> Option<Platform> {
    Some(Platform {
        architecture: "wasm".into(),
        os: os.into(),
        os_version: None,
        os_features: features.iter().map(|f| f.to_string()).collect(),
        variant: None,
    })
}

/// A layout whose tag `1.0` is an index of entries with these platforms
/// (their manifests aren't needed: the index decides every one).
fn image(dir: &Path, platforms: Vec<Option<Platform>>) -> String {
    let entries: Vec<Descriptor> = platforms
        .into_iter()
        .enumerate()
        .map(|(i, p)| Descriptor {
            media_type: worldfit::oci::MANIFEST_MEDIA_TYPE.into(),
            digest: format!("sha256:{:064x}", i + 1),
            size: 100,
            platform: p.or(Some(Platform {
                architecture: "amd64".into(),
                os: "linux".into(),
                os_version: None,
                os_features: vec![],
                variant: None,
            })),
            annotations: BTreeMap::new(),
        })
        .collect();
    let index = index_blob(entries);
    write_tagged(dir, "1.0", &[&index], &index.descriptor).unwrap();
    format!("{}:1.0", dir.display())
}

#[test]
fn affinity_places_pods_exactly_where_select_picks_at_the_yes_level() {
    let tmp = tempfile::tempdir().unwrap();
    let images = [
        vec![
            wasm("wasip2", &["wasi:cli/command@0.2.6"]),
            wasm("wasip1", &[]),
        ],
        vec![wasm("wasip3", &["wasi:http/service@0.3.0"])],
        vec![wasm("wasip2", &["wasi:http/proxy@0.2.3"])],
        vec![wasm("wasip2", &["wasi:cli/command@0.2.20"])],
        vec![wasm("wasip2", &["wasi:cli/command"]), None],
        vec![
            wasm(
                "wasip3",
                &["wasi:cli/command@0.3.0", "wasi:http/types@0.3.0"],
            ),
            wasm(
                "wasip2",
                &["wasi:http/proxy@0.2.0", "wasi:keyvalue/store@0.2.0-draft"],
            ),
        ],
    ];
    let hosts = hosts();
    let labels: Vec<_> = hosts.iter().map(nfd_labels).collect();
    let (mut placed, mut refused) = (0, 0);
    for (i, platforms) in images.into_iter().enumerate() {
        let source = image(&tmp.path().join(format!("img{i}")), platforms);
        let out = run(&["affinity", &source], &HostArgs("", vec![]));
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        let yaml = String::from_utf8(out.stdout).unwrap();
        let affinity: Affinity = serde_norway::from_str(&yaml).unwrap();
        // --json prints the same object.
        let json = run(&["affinity", &source, "--json"], &HostArgs("", vec![]));
        assert_eq!(
            serde_json::from_slice::<Affinity>(&json.stdout).unwrap(),
            affinity
        );
        for (host, labels) in hosts.iter().zip(&labels) {
            let out = run(&["select", &source, "--no-confirm", "--json"], host);
            let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            let picks_yes = s["entries"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["verdict"] == "selected" && e["level"] == "yes");
            let placeable = node_matches(&affinity, labels);
            assert_eq!(
                placeable, picks_yes,
                "image {i} on host {}: affinity {yaml}\nselect {s}",
                host.0
            );
            if placeable { placed += 1 } else { refused += 1 }
        }
    }
    // Both outcomes occur: the comparison isn't vacuous.
    assert!(
        placed >= 5 && refused >= 5,
        "placed {placed}, refused {refused}"
    );
}

#[test]
fn an_index_without_wasm_entries_is_exit_1_not_an_empty_affinity() {
    let tmp = tempfile::tempdir().unwrap();
    let source = image(&tmp.path().join("oci"), vec![None, None]);
    let out = worldfit_command()
        .args(["affinity", &source])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no entry of") && err.contains("not a wasm build"),
        "{err}"
    );
    // A feature that isn't a WIT name: no node has it, no term either.
    let source = image(
        &tmp.path().join("oci2"),
        vec![wasm("wasip2", &["not a name"])],
    );
    let out = worldfit_command()
        .args(["affinity", &source])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
}

// --- The property: for random entries and hosts, the two agree ---

fn feature() -> impl Strategy<Value = String> {
    let names = prop::sample::select(vec![
        "wasi:cli/command",
        "wasi:cli/environment",
        "wasi:http/proxy",
        "wasi:http/service",
        "wasi:http/types",
        "wasi:keyvalue/store",
        "my:pkg/thing",
    ]);
    let versions = prop::sample::select(vec![
        "",
        "@0.2.0",
        "@0.2.3",
        "@0.2.6",
        "@0.2.12",
        "@0.2.13",
        "@0.3.0",
        "@0.3.1",
        "@0.3.0-rc-2025-09-16",
        "@1.0.0",
        "@1.2.3",
        "@0.0.1",
    ]);
    (names, versions).prop_map(|(n, v)| format!("{n}{v}"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]
    #[test]
    fn labels_and_terms_agree_with_the_feature_levels(
        os in prop::sample::select(vec!["wasip1", "wasip2", "wasip3"]),
        features in prop::collection::vec(feature(), 0..4),
        host in 0usize..4,
    ) {
        thread_local! {
            static HOSTS: Vec<(Host, BTreeMap<String, String>)> = hosts()
                .iter()
                .map(|h| {
                    let host = h.host();
                    let labels = worldfit::labels::node_labels(&host);
                    (host, labels)
                })
                .collect();
        }
        let platform = wasm(os, &features.iter().map(String::as_str).collect::<Vec<_>>()).unwrap();
        let term = worldfit::affinity::term(&platform).unwrap();
        HOSTS.with(|hosts| {
            let (host, labels) = &hosts[host];
            let (level, _) = os_feature_levels(&platform.os_features, host);
            let yes = host.oses().contains(&os) && level == Level::Yes;
            let matches = term
                .match_expressions
                .as_ref()
                .unwrap()
                .iter()
                .all(|r| requirement_matches(r, labels));
            prop_assert_eq!(matches, yes, "{:?} on {}: {:?}", platform, host.name, term);
            Ok(())
        })?;
    }
}
