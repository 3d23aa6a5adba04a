//! The dev fleet is secured the way a deployment is, so what a developer
//! tries locally is what production refuses or allows:
//!
//! - a throwaway CA (made on every start, like kubesim's) and one server
//!   certificate for `127.0.0.1`/`localhost` that every listener presents;
//! - `scanfleet-system/reviewer`, bound to `system:auth-delegator` only,
//!   the identity intake and the collector ask TokenReview and
//!   SubjectAccessReview with;
//! - `scanfleet-system/operator`, allowed `create` on `scans` and
//!   `get/list/watch` on `results` of `scanfleet.dev` in every namespace,
//!   whose token (audience `scanfleet`) the demo workload and the printed
//!   commands use;
//! - `cli.yaml`, the CLI config file naming all of it, so the printed
//!   `scanfleet` commands work as copied.
//!
//! The CA is the fleet's own and outlives kubesim; the identities are
//! kubesim's and are issued again whenever it restarts
//! ([`FleetIdentities`]).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, RoleRef, Subject};
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Resource};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use scanfleet_edge_access::EdgeClient;
use zeroize::Zeroizing;

use crate::data_dir::DataDir;

/// The namespace of the fleet's own identities.
const SYSTEM_NAMESPACE: &str = "scanfleet-system";
/// The audience scanfleet's edges accept.
const AUDIENCE: &str = "scanfleet";
/// Tokens live a day: longer than a dev session, shorter than forever.
const TOKEN_SECONDS: i64 = 86_400;

/// The fleet's TLS files (in `DATA/pki/`).
pub struct FleetPki {
    /// The CA bundle clients trust.
    pub ca_file: PathBuf,
    /// Every listener's certificate.
    pub cert_file: PathBuf,
    /// Its key (0600).
    pub key_file: PathBuf,
}

impl FleetPki {
    /// A new CA and server certificate, written under the data dir.
    ///
    /// # Errors
    /// When a key cannot be made or a file written.
    pub fn create(data: &DataDir) -> Result<Self> {
        let dir = data.root().join("pki");
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut ca = CertificateParams::new(Vec::<String>::new())?;
        ca.distinguished_name
            .push(DnType::CommonName, "scanfleet-dev throwaway CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let issuer = CertifiedIssuer::self_signed(ca, KeyPair::generate()?)?;
        let key = KeyPair::generate()?;
        let mut server = CertificateParams::new(vec!["localhost".to_owned()])?;
        server
            .subject_alt_names
            .push(SanType::IpAddress(std::net::IpAddr::from([127, 0, 0, 1])));
        server
            .distinguished_name
            .push(DnType::CommonName, "scanfleet-dev");
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = server.signed_by(&key, &issuer)?;
        let pki = Self {
            ca_file: dir.join("ca.pem"),
            cert_file: dir.join("server.pem"),
            key_file: dir.join("server-key.pem"),
        };
        write(&pki.ca_file, issuer.pem().as_bytes(), 0o644)?;
        write(&pki.cert_file, cert.pem().as_bytes(), 0o644)?;
        write(&pki.key_file, key.serialize_pem().as_bytes(), 0o600)?;
        Ok(pki)
    }

    /// The flags that make a service serve TLS with it.
    pub fn server_flags(&self) -> Vec<String> {
        vec![
            "--tls-cert-file".into(),
            self.cert_file.display().to_string(),
            "--tls-key-file".into(),
            self.key_file.display().to_string(),
        ]
    }
}

/// Every credential kubesim issues to the fleet, and the one place that
/// issues them.
///
/// kubesim forgets them when it restarts (a new CA, no ServiceAccounts), so
/// they are issued after its first start and again after every restart
/// (the supervisor runs [`FleetIdentities::issue`] before it restarts the
/// children that read them; see `session.rs`). The paths never change, so
/// restarted children and commands already printed read the new files.
#[derive(Debug, Clone)]
pub struct FleetIdentities {
    /// kubesim's admin kubeconfig, which creates the identities.
    admin_kubeconfig: PathBuf,
    /// The fleet's CA bundle, named in `cli.yaml`.
    ca_file: PathBuf,
    /// Intake's URL, for `cli.yaml`.
    intake: String,
    /// The collector's URL, for `cli.yaml`.
    collector: String,
    /// The reviewer's kubeconfig (0600), for `--access-kubeconfig`.
    pub reviewer_kubeconfig: PathBuf,
    /// The operator's token (0600).
    pub operator_token_file: PathBuf,
    /// The CLI config file naming the addresses, the CA bundle and the
    /// operator's token.
    pub cli_config: PathBuf,
}

impl FleetIdentities {
    /// Where the identities of the fleet in `data` go; nothing is issued
    /// yet.
    pub fn new(data: &DataDir, pki: &FleetPki, intake: &str, collector: &str) -> Self {
        Self {
            admin_kubeconfig: data.kubeconfig(),
            ca_file: pki.ca_file.clone(),
            intake: intake.to_owned(),
            collector: collector.to_owned(),
            reviewer_kubeconfig: data.root().join("reviewer.kubeconfig"),
            operator_token_file: data.root().join("operator.token"),
            cli_config: data.root().join("cli.yaml"),
        }
    }

    /// Creates the reviewer and the operator on kubesim as its admin and
    /// (re)writes the reviewer's kubeconfig, the operator's token and
    /// `cli.yaml`; returns the operator as a client. Safe to repeat: what
    /// kubesim still has is kept, every file is replaced whole.
    ///
    /// # Errors
    /// When kubesim refuses or a file cannot be written.
    pub async fn issue(&self) -> Result<EdgeClient> {
        let admin_text = std::fs::read_to_string(&self.admin_kubeconfig)
            .with_context(|| format!("reading {}", self.admin_kubeconfig.display()))?;
        let admin = scanfleet_kube_access::ClusterAccess::from_kubeconfig(&admin_text, "admin")
            .await?
            .client;
        let accounts = create_accounts(&admin).await?;
        let reviewer_token = token(&accounts, "reviewer", None).await?;
        let kubeconfig = kubeconfig_with_token(&admin_text, &reviewer_token)?;
        write(&self.reviewer_kubeconfig, kubeconfig.as_bytes(), 0o600)?;
        let operator_token = token(&accounts, "operator", Some(AUDIENCE)).await?;
        write(&self.operator_token_file, operator_token.as_bytes(), 0o600)?;
        self.write_cli_config()?;
        Ok(EdgeClient {
            ca_pem: Some(
                std::fs::read_to_string(&self.ca_file)
                    .with_context(|| format!("reading {}", self.ca_file.display()))?,
            ),
            token: Some(operator_token),
            ..Default::default()
        })
    }

    /// `--access-kubeconfig` of the reviewer.
    pub fn reviewer_flags(&self) -> Vec<String> {
        vec![
            "--access-kubeconfig".into(),
            self.reviewer_kubeconfig.display().to_string(),
        ]
    }

    fn write_cli_config(&self) -> Result<()> {
        let text = format!(
            "# scanfleet CLI settings for this dev fleet (scanfleet --config {} ...)\nintake: {}\ncollector: {}\nca_file: {}\ntoken_file: {}\n",
            self.cli_config.display(),
            self.intake,
            self.collector,
            self.ca_file.display(),
            self.operator_token_file.display()
        );
        write(&self.cli_config, text.as_bytes(), 0o600)
    }
}

/// The namespace, the two ServiceAccounts and their bindings; the
/// ServiceAccounts' API.
async fn create_accounts(admin: &kube::Client) -> Result<Api<ServiceAccount>> {
    let namespace = Namespace {
        metadata: named(SYSTEM_NAMESPACE),
        ..Default::default()
    };
    create(&Api::all(admin.clone()), namespace).await?;
    let accounts = Api::<ServiceAccount>::namespaced(admin.clone(), SYSTEM_NAMESPACE);
    for name in ["reviewer", "operator"] {
        let account = ServiceAccount {
            metadata: named(name),
            ..Default::default()
        };
        create(&accounts, account).await?;
    }
    let (roles, bindings) = (Api::all(admin.clone()), Api::all(admin.clone()));
    let rule = |resource: &str, verbs: &[&str]| PolicyRule {
        api_groups: Some(vec!["scanfleet.dev".into()]),
        resources: Some(vec![resource.into()]),
        verbs: verbs.iter().map(|v| (*v).to_owned()).collect(),
        ..Default::default()
    };
    let operator_role = ClusterRole {
        metadata: named("scanfleet-dev-operator"),
        rules: Some(vec![
            rule("scans", &["create", "get"]),
            rule("results", &["get", "list", "watch"]),
        ]),
        ..Default::default()
    };
    create(&roles, operator_role).await?;
    create(&bindings, binding("scanfleet-dev-operator", "operator")).await?;
    create(&bindings, binding("system:auth-delegator", "reviewer")).await?;
    Ok(accounts)
}

fn named(name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        ..Default::default()
    }
}

fn binding(role: &str, account: &str) -> ClusterRoleBinding {
    ClusterRoleBinding {
        metadata: named(&format!("scanfleet-dev-{account}")),
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "ClusterRole".into(),
            name: role.into(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: account.into(),
            namespace: Some(SYSTEM_NAMESPACE.into()),
            ..Default::default()
        }]),
    }
}

/// Creates `object`; one that exists already (a kept data dir on a
/// kubesim that kept its state) is fine.
async fn create<K>(api: &Api<K>, object: K) -> Result<()>
where
    K: Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
{
    let name = object.meta().name.clone().unwrap_or_default();
    match api.create(&PostParams::default(), &object).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
        Err(e) => Err(e).with_context(|| format!("creating {} {name}", K::kind(&()))),
    }
}

/// A token of `scanfleet-system/<account>` for `audience` (the API
/// server's own when `None`).
async fn token(
    accounts: &Api<ServiceAccount>,
    account: &str,
    audience: Option<&str>,
) -> Result<Zeroizing<String>> {
    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            audiences: audience.map(|a| vec![a.to_owned()]),
            expiration_seconds: Some(TOKEN_SECONDS),
            ..Default::default()
        }),
        ..Default::default()
    };
    let answer = accounts
        .create_token_request(account, &PostParams::default(), &request)
        .await
        .with_context(|| format!("a token for {SYSTEM_NAMESPACE}/{account}"))?;
    answer
        .status
        .and_then(|s| s.token)
        .map(Zeroizing::new)
        .with_context(|| format!("kubesim issued no token for {SYSTEM_NAMESPACE}/{account}"))
}

/// The admin kubeconfig with its user replaced by `token`.
fn kubeconfig_with_token(admin: &str, token: &str) -> Result<String> {
    let mut config = kube::config::Kubeconfig::from_yaml(admin)?;
    for named in &mut config.auth_infos {
        named.auth_info = Some(kube::config::AuthInfo {
            token: Some(token.to_owned().into()),
            ..Default::default()
        });
    }
    Ok(serde_json::to_string(&config)?)
}

/// Replaces `path` whole: a sibling file is written and renamed over it, so
/// a reader (a restarted child, a printed command) never sees it
/// half-written.
fn write(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut staged = path.as_os_str().to_owned();
    staged.push(".new");
    let staged = PathBuf::from(staged);
    let _ = std::fs::remove_file(&staged);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&staged)
        .with_context(|| format!("creating {}", staged.display()))?;
    file.write_all(bytes)
        .with_context(|| format!("writing {}", staged.display()))?;
    std::fs::rename(&staged, path).with_context(|| format!("replacing {}", path.display()))
}
