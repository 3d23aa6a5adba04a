//! What `kubectl kustomize` renders for one overlay, as JSON values.

use std::process::Command;

use serde_json::Value;

/// Every object of one rendered overlay.
pub struct RenderedOverlay {
    /// The overlay's directory name under `deploy/overlays`.
    pub name: String,
    objects: Vec<Value>,
}

impl RenderedOverlay {
    /// Renders `deploy/overlays/NAME` with the pinned kubectl, as an
    /// operator's `kubectl apply -k` would.
    ///
    /// # Panics
    /// When kubectl is missing or fails, or prints something that is not YAML.
    pub fn render(name: &str) -> Self {
        Self::render_with(name, &[])
    }

    /// Renders `deploy/overlays/NAME` with the optional components
    /// `deploy/COMPONENT` enabled, as an operator does by listing them in
    /// the overlay's `components:` (here in a scratch overlay on top of it).
    ///
    /// # Panics
    /// As [`Self::render`].
    pub fn render_with(name: &str, components: &[&str]) -> Self {
        let root = scanfleet_test_harness::repo_root();
        let kubectl = scanfleet_test_harness::installed_tool("venv/bin/kubectl");
        let overlay = root.join("deploy/overlays").join(name);
        let scratch = tempfile::tempdir().expect("a temporary directory");
        let dir = if components.is_empty() {
            overlay
        } else {
            // kustomize refuses absolute paths: reach deploy/ from the
            // scratch directory through the filesystem root.
            let up = "../".repeat(scratch.path().components().count() - 1);
            let deploy = root.join("deploy");
            let deploy = format!(
                "{up}{}",
                deploy.display().to_string().trim_start_matches('/')
            );
            let components: Vec<String> =
                components.iter().map(|c| format!("{deploy}/{c}")).collect();
            std::fs::write(
                scratch.path().join("kustomization.yaml"),
                format!(
                    "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n\
                     resources: [{deploy}/overlays/{name}]\ncomponents: [{}]\n",
                    components.join(", ")
                ),
            )
            .expect("writing the scratch overlay");
            scratch.path().to_path_buf()
        };
        let output = scanfleet_test_harness::run(Command::new(kubectl).arg("kustomize").arg(&dir));
        assert!(
            output.status.success(),
            "kubectl kustomize {}: {}",
            dir.display(),
            scanfleet_test_harness::text(&output.stderr)
        );
        let text = scanfleet_test_harness::text(&output.stdout);
        let objects = yaml_serde::Deserializer::from_str(&text)
            .map(|doc| serde::Deserialize::deserialize(doc).expect("kustomize prints YAML"))
            .filter(|v: &Value| !v.is_null())
            .collect();
        Self {
            name: name.to_owned(),
            objects,
        }
    }

    /// The object of `kind` named `name`.
    pub fn object(&self, kind: &str, name: &str) -> Option<&Value> {
        self.objects
            .iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
    }

    /// The object of `kind` named `name`, for changing it (to prove a test
    /// notices a broken rendering).
    pub fn object_mut(&mut self, kind: &str, name: &str) -> Option<&mut Value> {
        self.objects
            .iter_mut()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
    }
}
