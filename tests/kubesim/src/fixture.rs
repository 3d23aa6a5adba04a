//! Fixture files: one YAML document declaring namespaces, images (rootfs
//! recipes) and pods, plus any other objects (ServiceAccounts, RBAC) and
//! virtual resources (discovery entries for APIs kubesim does not serve).
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

fn v1() -> String {
    "v1".into()
}

fn yes() -> bool {
    true
}

/// A resource that something other than kubesim serves (an aggregated API,
/// or a service that authorizes its callers with SubjectAccessReviews, such
/// as `scans.scanfleet.dev`). kubesim lists it in discovery so kubectl
/// resolves its name (`kubectl auth can-i create scans.scanfleet.dev`,
/// `kubectl create role --resource=scans.scanfleet.dev`), RBAC rules name it
/// like any other resource, and requests to it get 404: nothing is stored.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct VirtualResource {
    /// API group (not one kubesim serves itself).
    pub group: String,
    /// API version (`v1` when omitted).
    #[serde(default = "v1")]
    pub version: String,
    /// Plural resource name.
    pub resource: String,
    /// Kind.
    pub kind: String,
    /// Whether it lives in namespaces (default true).
    #[serde(default = "yes")]
    pub namespaced: bool,
    /// Verbs discovery advertises.
    pub verbs: Vec<String>,
}

impl VirtualResource {
    /// `group/version`.
    pub fn group_version(&self) -> String {
        format!("{}/{}", self.group, self.version)
    }

    fn problems(&self, n: usize, out: &mut Vec<String>) {
        let at = format!("virtualResources[{n}] ({}.{})", self.resource, self.group);
        let served = crate::resources::TYPES
            .iter()
            .any(|t| t.group == self.group);
        if self.group.is_empty() || served {
            out.push(format!(
                "{at}: group must be a group kubesim does not serve itself"
            ));
        }
        let label = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        };
        if !label(&self.resource) {
            out.push(format!("{at}: resource must be a lowercase plural name"));
        }
        if !label(&self.version) {
            out.push(format!("{at}: version must be like v1"));
        }
        if self.kind.is_empty() {
            out.push(format!("{at}: kind is required"));
        }
        if self.verbs.is_empty() {
            out.push(format!("{at}: verbs must list at least one verb"));
        }
    }
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
    /// Discovery-only resources of APIs kubesim does not serve.
    #[serde(default, rename = "virtualResources")]
    pub virtual_resources: Vec<VirtualResource>,
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
        let f: Fixture = yaml_serde::from_str(text).map_err(|e| err(vec![e.to_string()]))?;
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
        let mut declared = std::collections::BTreeSet::new();
        for (n, v) in f.virtual_resources.iter().enumerate() {
            v.problems(n, &mut problems);
            if !declared.insert((v.group.clone(), v.version.clone(), v.resource.clone())) {
                problems.push(format!(
                    "virtualResources[{n}] ({}.{}): declared twice",
                    v.resource, v.group
                ));
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
            "pods:\n- {kind: Pod, metadata: {name: a}, spec: {containers: [{name: c, image: nope}]}}\nobjects:\n- {kind: ConfigMap}\n",
        )
        .expect_err("invalid");
        assert_eq!(e.problems.len(), 2, "{e}");
        let e =
            Fixture::parse("f.yaml", "images: [{name: x, bogus: 1}]").expect_err("unknown field");
        assert!(e.to_string().contains("bogus"), "{e}");
    }

    #[test]
    fn virtual_resources_are_checked() {
        let f = Fixture::parse("demo", DEMO).expect("demo fixture is valid");
        let scans = f
            .virtual_resources
            .iter()
            .find(|v| v.resource == "scans")
            .expect("the demo declares scans.scanfleet.dev");
        assert_eq!(
            (scans.group_version().as_str(), scans.namespaced),
            ("scanfleet.dev/v1", true)
        );
        let e = Fixture::parse(
            "f.yaml",
            "virtualResources:\n- {group: rbac.authorization.k8s.io, resource: roles, kind: Role, verbs: [get]}\n- {group: x.dev, resource: Scans, kind: '', verbs: []}\n- {group: y.dev, resource: a, kind: A, verbs: [get]}\n- {group: y.dev, resource: a, kind: A, verbs: [get]}\n",
        )
        .expect_err("invalid");
        assert_eq!(
            e.problems,
            [
                "virtualResources[0] (roles.rbac.authorization.k8s.io): group must be a group kubesim does not serve itself",
                "virtualResources[1] (Scans.x.dev): resource must be a lowercase plural name",
                "virtualResources[1] (Scans.x.dev): kind is required",
                "virtualResources[1] (Scans.x.dev): verbs must list at least one verb",
                "virtualResources[3] (a.y.dev): declared twice",
            ],
            "{e}"
        );
    }
}
