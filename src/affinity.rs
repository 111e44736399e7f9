//! A pod's node affinity from an image index: one node selector term per
//! wasm entry (Kubernetes ORs the terms), each requiring of a node the
//! labels ([`crate::labels`]) that a host meeting the entry's `os` and every
//! feature at the *yes* level has. So the scheduler places the pod exactly
//! on nodes where `worldfit select` picks an entry at the yes level.
//!
//! Built from the Kubernetes API types of `k8s-openapi`, so what is printed
//! is what the API server reads.

use crate::labels::{Label, TRUE, name_label, os_key, version_label};
use crate::platform::Platform;
use crate::wit_name::WitName;
use k8s_openapi::api::core::v1::{
    Affinity, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm,
};
use std::collections::BTreeMap;

/// Why an entry has no term.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoTerm {
    /// Not a wasm build (a `linux/amd64` image, an unknown media type).
    NotWasm,
    /// A feature that isn't a WIT name: no host has it.
    Unreadable(String),
}

/// The term a node must match to run a wasm build with this platform.
pub fn term(platform: &Platform) -> Result<NodeSelectorTerm, NoTerm> {
    // Per key, the strictest requirement: two features on one track need
    // the higher version.
    let mut gt: BTreeMap<String, i64> = BTreeMap::new();
    let mut exists: BTreeMap<String, ()> = BTreeMap::new();
    let mut is_true: BTreeMap<String, ()> = BTreeMap::new();
    is_true.insert(os_key(&platform.os), ());
    for f in &platform.os_features {
        let name: WitName = f.parse().map_err(|_| NoTerm::Unreadable(f.clone()))?;
        match version_label(&name) {
            // An unversioned feature asks only for the name.
            None => {
                if let Label::Name { key } = name_label(&name) {
                    exists.insert(key, ());
                }
            }
            Some(Label::Track { key, value }) => {
                // At least `value`: greater than one less.
                let floor = i64::try_from(value).unwrap_or(i64::MAX) - 1;
                let e = gt.entry(key).or_insert(floor);
                *e = (*e).max(floor);
            }
            Some(Label::Exact { key }) | Some(Label::Name { key }) => {
                is_true.insert(key, ());
            }
        }
    }
    let requirement =
        |key: String, operator: &str, values: Option<Vec<String>>| NodeSelectorRequirement {
            key,
            operator: operator.to_string(),
            values,
        };
    let mut expressions: Vec<NodeSelectorRequirement> = Vec::new();
    expressions.extend(
        is_true
            .into_keys()
            .map(|k| requirement(k, "In", Some(vec![TRUE.to_string()]))),
    );
    expressions.extend(exists.into_keys().map(|k| requirement(k, "Exists", None)));
    expressions.extend(
        gt.into_iter()
            .map(|(k, floor)| requirement(k, "Gt", Some(vec![floor.to_string()]))),
    );
    Ok(NodeSelectorTerm {
        match_expressions: Some(expressions),
        match_fields: None,
    })
}

/// The affinity for entries given by their platform (`None` for entries
/// that aren't wasm builds): `Err` with each entry's reason when no entry
/// has a term (an empty term list would match no node at all).
pub fn affinity(entries: &[Option<&Platform>]) -> Result<Affinity, Vec<NoTerm>> {
    let mut terms = Vec::new();
    let mut why = Vec::new();
    for p in entries {
        match p.map_or(Err(NoTerm::NotWasm), term) {
            Ok(t) if !terms.contains(&t) => terms.push(t),
            Ok(_) => {}
            Err(e) => why.push(e),
        }
    }
    if terms.is_empty() {
        return Err(why);
    }
    Ok(Affinity {
        node_affinity: Some(NodeAffinity {
            required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                node_selector_terms: terms,
            }),
            preferred_during_scheduling_ignored_during_execution: None,
        }),
        pod_affinity: None,
        pod_anti_affinity: None,
    })
}
