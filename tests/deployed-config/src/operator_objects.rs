//! The Secrets and ConfigMaps `deploy/` leaves to the operator, made the
//! way `docs/install.md` tells the operator to make them.
//!
//! Their key names are the contract between the install guide and the
//! manifests' mounts, so [`OperatorObjects::missing_from_install_guide`]
//! checks that the guide names every one of them.

use std::collections::BTreeMap;

use scanfleet_bus::UserNkey;
use scanfleet_test_harness::pki::TestCa;
use scanfleet_trust::SigningKey;

/// Files by key, per object name.
type Objects = BTreeMap<String, BTreeMap<String, Vec<u8>>>;

/// The operator's objects, with freshly generated keys and certificates.
pub struct OperatorObjects {
    objects: Objects,
    /// The id of the signing key in `scanfleet-signing-key`.
    pub signing_key_id: String,
}

impl OperatorObjects {
    /// Generates every object of `docs/install.md`, steps 3 and 4.
    pub fn generate() -> Self {
        let mut objects = Objects::new();
        let ca = TestCa::new("scanfleet-test-ca");
        for service in ["intake", "collector", "worker", "nats"] {
            let identity = ca.server(&format!("scanfleet-{service}"));
            objects.insert(
                format!("scanfleet-{service}-tls"),
                files(&[
                    ("tls.crt", identity.cert_pem.as_bytes()),
                    ("tls.key", identity.key_pem.as_bytes()),
                    ("ca.crt", ca.pem().as_bytes()),
                ]),
            );
        }
        let key = SigningKey::generate();
        let public = key.public_key().to_spki_pem();
        objects.insert(
            "scanfleet-signing-key".into(),
            files(&[("signing.pem", key.to_pkcs8_pem().as_bytes())]),
        );
        objects.insert(
            "scanfleet-trusted-keys".into(),
            files(&[
                ("current.pub.pem", public.as_bytes()),
                ("previous.pub.pem", public.as_bytes()),
            ]),
        );
        for identity in ["intake", "worker", "collector", "admin"] {
            let seed = UserNkey::generate().seed;
            objects.insert(
                format!("scanfleet-nats-{identity}"),
                files(&[("nkey", seed.as_bytes())]),
            );
        }
        let url =
            "postgres://scanfleet:not-a-password@db.example:5432/scanfleet?sslmode=verify-full";
        objects.insert(
            "scanfleet-database".into(),
            files(&[("url", url.as_bytes())]),
        );
        objects.insert(
            "scanfleet-metrics-ca".into(),
            files(&[("ca.crt", ca.pem().as_bytes())]),
        );
        Self {
            objects,
            signing_key_id: key.key_id().to_string(),
        }
    }

    /// The files of the object `name`, by key.
    pub fn get(&self, name: &str) -> Option<&BTreeMap<String, Vec<u8>>> {
        self.objects.get(name)
    }

    /// The text of `key` in the object `name`.
    ///
    /// # Panics
    /// When there is no such object or key, or it is not text.
    pub fn text(&self, name: &str, key: &str) -> &str {
        let bytes = &self.objects[name][key];
        std::str::from_utf8(bytes).expect("text")
    }

    /// Each object name or key that `docs/install.md` does not mention as
    /// `NAME` and `KEY=` (the `--from-file=KEY=` / `--from-literal=KEY=`
    /// form of its commands).
    pub fn missing_from_install_guide(&self) -> Vec<String> {
        let guide_path = scanfleet_test_harness::repo_root().join("docs/install.md");
        let guide = std::fs::read_to_string(&guide_path).expect("docs/install.md");
        let mut missing = Vec::new();
        for (name, keys) in &self.objects {
            // The guide creates the per-service objects in loops over `$svc`.
            let looped = ["intake", "collector", "worker", "nats", "admin"]
                .iter()
                .fold(name.clone(), |n, s| n.replace(&format!("-{s}"), "-$svc"));
            if !guide.contains(name.as_str()) && !guide.contains(&looped) {
                missing.push(format!("object {name}"));
            }
            for key in keys.keys() {
                if !guide.contains(&format!("{key}=")) {
                    missing.push(format!("key {key} of {name}"));
                }
            }
        }
        missing
    }
}

fn files(entries: &[(&str, &[u8])]) -> BTreeMap<String, Vec<u8>> {
    entries
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.to_vec()))
        .collect()
}
