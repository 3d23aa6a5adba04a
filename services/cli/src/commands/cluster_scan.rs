//! `scanfleet scan k8s://NS/POD/CONTAINER`: the one-shot mode CI pipelines
//! use instead of a shell script around kubectl. It runs exactly one secure
//! scan session (pre-flight, a per-scan identity scoped to the one pod, the
//! scan, the identity's removal), writes HDF, gates it with a threshold and
//! optionally signs an in-toto statement about the image digest.
//!
//! The kubeconfig given is the *admin* identity that creates the per-scan
//! one; the per-scan token never leaves memory, and nothing but the HDF and
//! the envelope is written. Progress goes to stderr so stdout can carry HDF.
//!
//! Exit status: 0 scanned (threshold passed or none given), 1 the threshold
//! failed, 2 invalid input or the scan could not run, 130 interrupted.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use scanfleet_kube_access::ClusterAccess;
use scanfleet_scan_engine::facts::GatherLimits;
use scanfleet_scan_engine::hdf::to_hdf;
use scanfleet_scan_intents::{ClusterName, ContainerRef};
use scanfleet_scan_session::attestation::{
    Attribution, NamedThreshold, completed_statement, inputs_used,
};
use scanfleet_scan_session::{
    Approach, ApproachPolicy, ScanRequest, SessionConfig, SessionOutcome, release_scan, run_scan,
};
use scanfleet_trust::statement::ThresholdVerdict;
use scanfleet_trust::{Envelope, IN_TOTO_PAYLOAD_TYPE, InputUsed, ScanStatement, SigningKey};

use super::scan::{Args, read_scan_plan};
use super::threshold::INVALID_INPUT;
use crate::files;

/// The whole-scan deadline when none is given: long enough for a large
/// image's walk, short enough that the token (deadline + margin, at least
/// ten minutes) stays at the minimum lifetime.
const DEFAULT_DEADLINE_SECONDS: u64 = 300;

/// Options that apply only to a `k8s://` target.
#[derive(clap::Args, Debug, Default)]
pub struct ClusterArgs {
    /// Kubeconfig of the identity that creates per-scan identities
    /// (required with a k8s:// target; insecure settings are refused).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// How to reach the container: auto, exec, debug or sidecar
    /// (default auto).
    #[arg(long)]
    pub approach: Option<Approach>,
    /// Never add ephemeral debug containers (auto then refuses a target
    /// without a shell).
    #[arg(long)]
    pub no_debug: bool,
    /// Image of the ephemeral debug container.
    #[arg(long)]
    pub debug_image: Option<String>,
    /// Name of the scanner sidecar container (default scanner).
    #[arg(long)]
    pub sidecar_container: Option<String>,
    /// Whole-scan deadline in seconds (default 300).
    #[arg(long, value_name = "SECONDS")]
    pub deadline: Option<u64>,
    /// Cluster name recorded in the signed statement, a DNS label (default:
    /// the kubeconfig's file name without its extension).
    #[arg(long, value_parser = |s: &str| ClusterName::new(s))]
    pub cluster_name: Option<ClusterName>,
    /// Sign an in-toto scan-result statement with this Ed25519 key
    /// (PKCS#8 PEM) and write the DSSE envelope to --envelope-out.
    #[arg(long, requires = "envelope_out")]
    pub sign_key: Option<PathBuf>,
    /// Where the signed DSSE envelope goes.
    #[arg(long, requires = "sign_key")]
    pub envelope_out: Option<PathBuf>,
}

impl ClusterArgs {
    /// The first k8s-only flag given, for refusing it next to `--root`.
    pub fn given_flag(&self) -> Option<&'static str> {
        [
            (self.kubeconfig.is_some(), "--kubeconfig"),
            (self.approach.is_some(), "--approach"),
            (self.no_debug, "--no-debug"),
            (self.debug_image.is_some(), "--debug-image"),
            (self.sidecar_container.is_some(), "--sidecar-container"),
            (self.deadline.is_some(), "--deadline"),
            (self.cluster_name.is_some(), "--cluster-name"),
            (self.sign_key.is_some(), "--sign-key"),
            (self.envelope_out.is_some(), "--envelope-out"),
        ]
        .into_iter()
        .find_map(|(given, flag)| given.then_some(flag))
    }
}

/// Everything checked before any cluster call.
struct Prepared {
    target: ContainerRef,
    kubeconfig: PathBuf,
    profile: Arc<scanfleet_scan_engine::profile::Profile>,
    /// Every input as evaluated, defaults and overrides marked.
    inputs: Vec<InputUsed>,
    threshold: Option<NamedThreshold>,
    key: Option<(SigningKey, PathBuf)>,
    deadline: Duration,
    config: SessionConfig,
    cluster_name: ClusterName,
}

/// Parses and loads every input, reporting all problems at once.
fn prepare(raw_target: &str, args: &Args) -> Result<Prepared, ExitCode> {
    let c = &args.cluster;
    let mut problems = Vec::new();
    let target = ContainerRef::parse_uri(raw_target)
        .map_err(|e| problems.push(format!("target {raw_target:?}: {e}")))
        .ok();
    if c.kubeconfig.is_none() {
        problems.push("--kubeconfig FILE is required with a k8s:// target".to_owned());
    }
    let cluster_name = c.kubeconfig.as_deref().and_then(|kubeconfig| {
        cluster_name(c.cluster_name.as_ref(), kubeconfig)
            .map_err(|e| problems.push(e))
            .ok()
    });
    let deadline = match c.deadline {
        Some(0) => {
            problems.push("--deadline must be at least 1 second".to_owned());
            Duration::ZERO
        }
        d => Duration::from_secs(d.unwrap_or(DEFAULT_DEADLINE_SECONDS)),
    };
    let plan = read_scan_plan(args, &mut problems);
    let key = signing_key(c, &mut problems);
    for p in &problems {
        eprintln!("error: {p}");
    }
    let (Some(target), Some(kubeconfig), Some(cluster_name), Some(plan), true) = (
        target,
        c.kubeconfig.clone(),
        cluster_name,
        plan,
        problems.is_empty(),
    ) else {
        return Err(ExitCode::from(INVALID_INPUT));
    };
    Ok(Prepared {
        target,
        kubeconfig,
        inputs: inputs_used(&plan.profile, &plan.overrides),
        profile: Arc::new(plan.profile),
        threshold: plan.threshold,
        key,
        deadline,
        config: session_config(args),
        cluster_name,
    })
}

/// `--sign-key` loaded, with where its envelope goes; a problem is pushed
/// onto `problems`. Image scans sign the same way.
pub(super) fn signing_key(
    c: &ClusterArgs,
    problems: &mut Vec<String>,
) -> Option<(SigningKey, PathBuf)> {
    c.sign_key.as_ref().and_then(|path| {
        super::keys::load_signing_key(path)
            .map(|k| (k, c.envelope_out.clone().unwrap_or_default()))
            .map_err(|e| problems.push(format!("{e:#}")))
            .ok()
    })
}

/// The given cluster name, else the kubeconfig's file name without its
/// extension, held to the same rule (it becomes a subject token and a
/// label wherever the statement travels).
fn cluster_name(given: Option<&ClusterName>, kubeconfig: &Path) -> Result<ClusterName, String> {
    if let Some(name) = given {
        return Ok(name.clone());
    }
    let stem = kubeconfig
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    ClusterName::new(&stem).map_err(|e| {
        format!(
            "the cluster name defaults to the kubeconfig's file name {stem:?}, which is not a \
             valid cluster name ({e}); give --cluster-name"
        )
    })
}

fn session_config(args: &Args) -> SessionConfig {
    let c = &args.cluster;
    let defaults = SessionConfig::default();
    SessionConfig {
        policy: ApproachPolicy {
            allow_debug: !c.no_debug,
            sidecar_container: c
                .sidecar_container
                .clone()
                .unwrap_or(defaults.policy.sidecar_container),
        },
        debug_image: c.debug_image.clone().unwrap_or(defaults.debug_image),
        limits: GatherLimits {
            max_file_bytes: args.max_file_bytes,
            max_walk_entries: args.max_walk_entries,
            ..GatherLimits::default()
        },
        ..defaults
    }
}

/// Runs a `k8s://` scan.
pub fn run(raw_target: &str, args: &Args) -> Result<ExitCode> {
    let prepared = match prepare(raw_target, args) {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(scan(prepared, args.cluster.approach, args.out.as_deref()))
}

/// Ctrl-C or SIGTERM (a CI job cancelled).
async fn interrupted() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}

/// The steps of one scan: the session, the HDF, the statement, the files,
/// the verdict. Every early return is an exit status, never a panic.
async fn scan(p: Prepared, approach: Option<Approach>, out: Option<&Path>) -> Result<ExitCode> {
    let admin = match ClusterAccess::from_kubeconfig_file(&p.kubeconfig).await {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(INVALID_INPUT));
        }
    };
    let scan_id = ulid::Ulid::new().to_string();
    let started = SystemTime::now();
    let outcome = match run_session(&admin, &p, approach.unwrap_or(Approach::Auto), &scan_id).await
    {
        Ok(o) => o,
        Err(code) => return Ok(code),
    };
    let hdf = to_hdf(&outcome.report);
    let text = serde_json::to_string_pretty(&hdf).context("serializing HDF")? + "\n";
    let (statement, verdict) = match attest(&p, scan_id, &outcome, &hdf, &text, started) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot make the scan statement: {e}");
            return Ok(ExitCode::from(INVALID_INPUT));
        }
    };
    if let Some(summary) = &statement.predicate.summary {
        eprintln!(
            "scanned {} via {} as {} (identity removed): {} passed, {} failed, {} not reviewed, {} not applicable, {} error",
            p.target,
            outcome.approach,
            outcome.service_account,
            summary.passed,
            summary.failed,
            summary.not_reviewed,
            summary.not_applicable,
            summary.error
        );
    }
    write_outputs(p.key.as_ref(), out, &text, &statement)?;
    Ok(verdict_exit(verdict))
}

/// Runs the secure scan session; on Ctrl-C or SIGTERM, waits (bounded) for
/// the scan identity's removal and gives exit status 130.
async fn run_session(
    admin: &ClusterAccess,
    p: &Prepared,
    approach: Approach,
    scan_id: &str,
) -> Result<SessionOutcome, ExitCode> {
    let t = &p.target;
    eprintln!(
        "scanning {t} with profile {} (approach {approach}, scan {scan_id})",
        p.profile.metadata.name
    );
    let request = ScanRequest {
        scan_id: scan_id.to_owned(),
        namespace: t.namespace.as_str().to_owned(),
        pod: t.pod.as_str().to_owned(),
        container: t.container.as_str().to_owned(),
        approach,
        profile: p.profile.clone(),
        deadline: p.deadline,
    };
    let result = tokio::select! {
        r = run_scan(admin, &p.config, request) => r,
        () = interrupted() => {
            // Dropping the scan already queued the identity's removal; this
            // waits for it (bounded) so the process does not exit first. An
            // identity created after this list is left to the sweeper.
            eprintln!("interrupted: removing the scan identity");
            match tokio::time::timeout(
                p.config.release_timeout,
                release_scan(admin, t.namespace.as_str(), scan_id),
            )
            .await
            {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => eprintln!("warning: {e}; the sweeper will remove it"),
                Err(_) => eprintln!("warning: removal timed out; the sweeper will remove it"),
            }
            return Err(ExitCode::from(130));
        }
    };
    result.map_err(|e| {
        eprintln!("error: scan of {t} failed: {e}");
        if p.key.is_some() {
            eprintln!("error: no envelope written: the scan produced no result");
        }
        if e.cluster_unreachable() {
            super::exit_unavailable()
        } else {
            ExitCode::from(INVALID_INPUT)
        }
    })
}

/// The in-toto statement about the scanned digest, and the threshold's
/// verdict when one was given.
fn attest(
    p: &Prepared,
    scan_id: String,
    outcome: &SessionOutcome,
    hdf: &serde_json::Value,
    text: &str,
    started: SystemTime,
) -> Result<(ScanStatement, Option<ThresholdVerdict>), String> {
    let t = &p.target;
    let who = Attribution {
        scan_id,
        cluster: p.cluster_name.as_str().to_owned(),
        namespace: t.namespace.as_str().to_owned(),
        pod: t.pod.as_str().to_owned(),
        container: t.container.as_str().to_owned(),
        scanner_id: "cli".to_owned(),
        // A one-shot scan runs with the operator's own kubeconfig; no
        // service authenticated anyone, so it claims no requester.
        requested_by: None,
        inputs: p.inputs.clone(),
    };
    completed_statement(
        &who,
        &outcome.image,
        &outcome.image_digest,
        outcome.approach.as_str(),
        hdf,
        text.as_bytes(),
        p.threshold.as_ref(),
        started,
    )
    .map_err(|e| e.to_string())
}

/// Writes the HDF (to `out` or stdout) and, with a key, the envelope.
pub(super) fn write_outputs(
    key: Option<&(SigningKey, PathBuf)>,
    out: Option<&Path>,
    text: &str,
    statement: &ScanStatement,
) -> Result<()> {
    files::write_output(out, text.as_bytes())?;
    if let Some(path) = out {
        eprintln!("wrote HDF to {}", path.display());
    }
    if let Some((key, envelope_out)) = key {
        let envelope = Envelope::sign(IN_TOTO_PAYLOAD_TYPE, &statement.to_payload(), key);
        files::write_output(Some(envelope_out), (envelope.to_json() + "\n").as_bytes())?;
        eprintln!(
            "signed the scan statement with key {} to {}",
            key.key_id().as_str(),
            envelope_out.display()
        );
    }
    Ok(())
}

/// 1 when the threshold failed (every failure printed), else 0.
pub(super) fn verdict_exit(verdict: Option<ThresholdVerdict>) -> ExitCode {
    match verdict {
        Some(v) if !v.passed => {
            for f in &v.failures {
                eprintln!("Error: {f}");
            }
            eprintln!("{} threshold checks failed", v.failures.len());
            ExitCode::from(1)
        }
        Some(_) => {
            eprintln!("All validation tests passed");
            ExitCode::SUCCESS
        }
        None => ExitCode::SUCCESS,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_cluster_name_is_the_kubeconfig_file_name_under_the_same_rule() {
        let given = ClusterName::new("prod-eu").unwrap();
        assert_eq!(
            cluster_name(Some(&given), Path::new("/x/any_thing.yaml")).unwrap(),
            given
        );
        assert_eq!(
            cluster_name(None, Path::new("/home/me/.kube/staging.kubeconfig"))
                .unwrap()
                .as_str(),
            "staging"
        );
        let error = cluster_name(None, Path::new("/tmp/my_cluster.yaml")).unwrap_err();
        assert!(
            error.starts_with(
                "the cluster name defaults to the kubeconfig's file name \"my_cluster\", which is not a valid cluster name (a lowercase RFC 1123 label"
            ) && error.ends_with("; give --cluster-name"),
            "{error}"
        );
    }
}
