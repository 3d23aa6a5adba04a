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
use scanfleet_scan_engine::adapters::profile_dir::load_profile_dir;
use scanfleet_scan_engine::facts::GatherLimits;
use scanfleet_scan_engine::hdf::to_hdf;
use scanfleet_scan_engine::threshold::Threshold;
use scanfleet_scan_session::attestation::{Attribution, NamedThreshold, completed_statement};
use scanfleet_scan_session::{
    Approach, ApproachPolicy, ScanRequest, SessionConfig, release_scan, run_scan,
};
use scanfleet_trust::{Envelope, IN_TOTO_PAYLOAD_TYPE, SigningKey};

use super::scan::{Args, parse_inputs};
use super::threshold::{INVALID_INPUT, load_threshold};
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
    /// Cluster name recorded in the signed statement (default: the
    /// kubeconfig's file name).
    #[arg(long)]
    pub cluster_name: Option<String>,
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

/// `k8s://NS/POD/CONTAINER`, each part a DNS label as Kubernetes requires.
#[derive(Debug, PartialEq, Eq)]
struct Target {
    namespace: String,
    pod: String,
    container: String,
}

fn parse_target(raw: &str) -> Result<Target, String> {
    let usage = || format!("target {raw:?}: expected k8s://NAMESPACE/POD/CONTAINER");
    let rest = raw.strip_prefix("k8s://").ok_or_else(usage)?;
    let parts: Vec<&str> = rest.split('/').collect();
    let [namespace, pod, container] = parts[..] else {
        return Err(usage());
    };
    for (what, part) in [
        ("namespace", namespace),
        ("pod", pod),
        ("container", container),
    ] {
        let valid = !part.is_empty()
            && part.len() <= 253
            && part
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
            && part.as_bytes()[0].is_ascii_alphanumeric();
        if !valid {
            return Err(format!(
                "target {raw:?}: {what} {part:?} is not a valid Kubernetes name"
            ));
        }
    }
    Ok(Target {
        namespace: namespace.to_owned(),
        pod: pod.to_owned(),
        container: container.to_owned(),
    })
}

/// Everything checked before any cluster call.
struct Prepared {
    target: Target,
    kubeconfig: PathBuf,
    profile: Arc<scanfleet_scan_engine::profile::Profile>,
    threshold: Option<(String, Threshold)>,
    key: Option<(SigningKey, PathBuf)>,
    deadline: Duration,
    config: SessionConfig,
    cluster_name: String,
}

/// Parses and loads every input, reporting all problems at once.
fn prepare(raw_target: &str, args: &Args) -> Result<Prepared, ExitCode> {
    let c = &args.cluster;
    let mut problems = Vec::new();
    let target = parse_target(raw_target).map_err(|e| problems.push(e)).ok();
    if c.kubeconfig.is_none() {
        problems.push("--kubeconfig FILE is required with a k8s:// target".to_owned());
    }
    let deadline = match c.deadline {
        Some(0) => {
            problems.push("--deadline must be at least 1 second".to_owned());
            Duration::ZERO
        }
        d => Duration::from_secs(d.unwrap_or(DEFAULT_DEADLINE_SECONDS)),
    };
    let overrides = parse_inputs(&args.inputs)
        .map_err(|e| problems.push(e.to_string()))
        .ok();
    let profile = overrides.and_then(|o| {
        load_profile_dir(&args.profile, &o)
            .map(|p| super::scan::declared(p, args))
            .map_err(|e| problems.push(format!("{}: {e}", args.profile.display())))
            .ok()
    });
    let key = c.sign_key.as_ref().and_then(|path| {
        super::keys::load_signing_key(path)
            .map(|k| (k, c.envelope_out.clone().unwrap_or_default()))
            .map_err(|e| problems.push(format!("{e:#}")))
            .ok()
    });
    // load_threshold prints its own problems (every one of them).
    let mut threshold_failed = false;
    let threshold = args.threshold.as_ref().and_then(|path| {
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into(),
        );
        load_threshold(path)
            .map(|t| (name, t))
            .map_err(|_| threshold_failed = true)
            .ok()
    });
    for p in &problems {
        eprintln!("error: {p}");
    }
    let (Some(target), Some(kubeconfig), Some(profile), false, true) = (
        target,
        c.kubeconfig.clone(),
        profile,
        threshold_failed,
        problems.is_empty(),
    ) else {
        return Err(ExitCode::from(INVALID_INPUT));
    };
    let defaults = SessionConfig::default();
    let config = SessionConfig {
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
    };
    let cluster_name = c.cluster_name.clone().unwrap_or_else(|| {
        kubeconfig
            .file_stem()
            .map_or_else(|| "default".to_owned(), |s| s.to_string_lossy().into())
    });
    Ok(Prepared {
        target,
        kubeconfig,
        profile: Arc::new(profile),
        threshold,
        key,
        deadline,
        config,
        cluster_name,
    })
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

async fn scan(p: Prepared, approach: Option<Approach>, out: Option<&Path>) -> Result<ExitCode> {
    let admin = match ClusterAccess::from_kubeconfig_file(&p.kubeconfig).await {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(INVALID_INPUT));
        }
    };
    let approach = approach.unwrap_or(Approach::Auto);
    let t = &p.target;
    let label = format!("k8s://{}/{}/{}", t.namespace, t.pod, t.container);
    let scan_id = ulid::Ulid::new().to_string();
    eprintln!(
        "scanning {label} with profile {} (approach {approach}, scan {scan_id})",
        p.profile.metadata.name
    );
    let request = ScanRequest {
        scan_id: scan_id.clone(),
        namespace: t.namespace.clone(),
        pod: t.pod.clone(),
        container: t.container.clone(),
        approach,
        profile: p.profile.clone(),
        deadline: p.deadline,
    };
    let started = SystemTime::now();
    let result = tokio::select! {
        r = run_scan(&admin, &p.config, request) => r,
        () = interrupted() => {
            // Dropping the scan already queued the identity's removal; this
            // waits for it (bounded) so the process does not exit first. An
            // identity created after this list is left to the sweeper.
            eprintln!("interrupted: removing the scan identity");
            match tokio::time::timeout(
                p.config.release_timeout,
                release_scan(&admin, &t.namespace, &scan_id),
            )
            .await
            {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => eprintln!("warning: {e}; the sweeper will remove it"),
                Err(_) => eprintln!("warning: removal timed out; the sweeper will remove it"),
            }
            return Ok(ExitCode::from(130));
        }
    };
    let outcome = match result {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: scan of {label} failed: {e}");
            if p.key.is_some() {
                eprintln!("error: no envelope written: the scan produced no result");
            }
            return Ok(ExitCode::from(INVALID_INPUT));
        }
    };
    let hdf = to_hdf(&outcome.report);
    let text = serde_json::to_string_pretty(&hdf).context("serializing HDF")? + "\n";
    let who = Attribution {
        scan_id,
        cluster: p.cluster_name.clone(),
        namespace: t.namespace.clone(),
        pod: t.pod.clone(),
        container: t.container.clone(),
        scanner_id: "cli".to_owned(),
    };
    let threshold = p
        .threshold
        .as_ref()
        .map(|(name, threshold)| NamedThreshold {
            name: name.clone(),
            threshold: threshold.clone(),
        });
    let (statement, verdict) = match completed_statement(
        &who,
        &outcome.image,
        &outcome.image_digest,
        outcome.approach.as_str(),
        &hdf,
        text.as_bytes(),
        threshold.as_ref(),
        started,
    ) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot make the scan statement: {e}");
            return Ok(ExitCode::from(INVALID_INPUT));
        }
    };
    if let Some(summary) = &statement.predicate.summary {
        eprintln!(
            "scanned {label} via {} as {} (identity removed): {} passed, {} failed, {} not reviewed, {} not applicable, {} error",
            outcome.approach,
            outcome.service_account,
            summary.passed,
            summary.failed,
            summary.not_reviewed,
            summary.not_applicable,
            summary.error
        );
    }
    files::write_output(out, text.as_bytes())?;
    if let Some(path) = out {
        eprintln!("wrote HDF to {}", path.display());
    }
    if let Some((key, envelope_out)) = &p.key {
        let envelope = Envelope::sign(IN_TOTO_PAYLOAD_TYPE, &statement.to_payload(), key);
        files::write_output(Some(envelope_out), (envelope.to_json() + "\n").as_bytes())?;
        eprintln!(
            "signed the scan statement with key {} to {}",
            key.key_id().as_str(),
            envelope_out.display()
        );
    }
    Ok(match verdict {
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
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_three_kubernetes_names() {
        assert_eq!(
            parse_target("k8s://apps/web-0/web").unwrap(),
            Target {
                namespace: "apps".into(),
                pod: "web-0".into(),
                container: "web".into()
            }
        );
        for bad in [
            "apps/web-0/web",
            "k8s://apps/web-0",
            "k8s://apps/web-0/web/x",
            "k8s://apps//web",
            "k8s://Apps/web-0/web",
            "k8s://apps/web_0/web",
        ] {
            assert!(parse_target(bad).is_err(), "{bad}");
        }
    }
}
