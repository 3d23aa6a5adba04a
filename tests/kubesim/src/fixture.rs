//! Fixture files: one YAML document declaring namespaces, images (rootfs
//! recipes) and pods, plus any other objects (ServiceAccounts, RBAC).
//! The format is documented in `tests/kubesim/README.md`.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::image::ImageSpec;

/// The demo fixture shipped with kubesim.
pub const DEMO: &str = include_str!("../fixtures/demo.yaml");

/// A namespace declaration.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct NamespaceSpec {
    /// Name.
    pub name: String,
    /// Labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// A parsed fixture.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fixture {
    /// Namespaces (besides `default`, `kube-system`, `kube-public`).
    #[serde(default)]
    pub namespaces: Vec<NamespaceSpec>,
    /// Image recipes.
    #[serde(default)]
    pub images: Vec<ImageSpec>,
    /// Pod manifests.
    #[serde(default)]
    pub pods: Vec<Value>,
    /// Other objects, created before the pods.
    #[serde(default)]
    pub objects: Vec<Value>,
}

/// Why a fixture is unusable; lists every problem found.
#[derive(Debug, thiserror::Error)]
#[error("fixture {source_name}: {}", problems.join("; "))]
pub struct FixtureError {
    /// File name (or `demo`).
    pub source_name: String,
    /// Problems.
    pub problems: Vec<String>,
}

impl Fixture {
    /// Parses and cross-checks a fixture.
    pub fn parse(source_name: &str, text: &str) -> Result<Self, FixtureError> {
        let err = |problems: Vec<String>| FixtureError {
            source_name: source_name.to_string(),
            problems,
        };
        let f: Fixture = serde_yaml::from_str(text).map_err(|e| err(vec![e.to_string()]))?;
        let mut problems = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for i in &f.images {
            if !seen.insert(i.name.clone()) {
                problems.push(format!("image {:?} is declared twice", i.name));
            }
        }
        for (n, p) in f.pods.iter().enumerate() {
            if p["kind"] != "Pod" {
                problems.push(format!("pods[{n}]: kind must be Pod"));
            }
            if p["metadata"]["name"].as_str().unwrap_or("").is_empty() {
                problems.push(format!("pods[{n}]: metadata.name is required"));
            }
            for c in p["spec"]["containers"].as_array().into_iter().flatten() {
                let img = c["image"].as_str().unwrap_or("");
                if !seen.contains(img) {
                    problems.push(format!(
                        "pods[{n}] ({}): container {:?} uses image {img:?}, which the fixture does not declare",
                        p["metadata"]["name"].as_str().unwrap_or(""),
                        c["name"].as_str().unwrap_or("")
                    ));
                }
            }
        }
        for (n, o) in f.objects.iter().enumerate() {
            let kind = o["kind"].as_str().unwrap_or("");
            if crate::resources::by_kind(kind).is_none_or(|t| t.create_only) {
                problems.push(format!("objects[{n}]: unsupported kind {kind:?}"));
            }
        }
        if problems.is_empty() {
            Ok(f)
        } else {
            Err(err(problems))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_fixture_parses() {
        let f = Fixture::parse("demo", DEMO).expect("demo fixture is valid");
        assert!(
            f.images
                .iter()
                .any(|i| i.base == crate::image::Base::Distroless)
        );
        assert!(
            f.pods
                .iter()
                .any(|p| p["spec"]["shareProcessNamespace"] == true)
        );
    }

    #[test]
    fn problems_are_all_reported() {
        let e = Fixture::parse(
            "f.yaml",
            "pods:\n- {kind: Pod, metadata: {name: a}, spec: {containers: [{name: c, image: nope}]}}\nobjects:\n- {kind: Secret}\n",
        )
        .expect_err("invalid");
        assert_eq!(e.problems.len(), 2, "{e}");
        let e =
            Fixture::parse("f.yaml", "images: [{name: x, bogus: 1}]").expect_err("unknown field");
        assert!(e.to_string().contains("bogus"), "{e}");
    }
}
