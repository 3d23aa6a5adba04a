//! `scanfleet scan --root DIR --profile PATH`: scans a directory tree (e.g. an
//! unpacked image) with the local-root target and writes HDF.
//! `scanfleet scan k8s://NS/POD/CONTAINER --kubeconfig FILE --profile PATH`
//! scans a running container through a secure scan session instead (see
//! [`super::cluster_scan`]); `scanfleet scan oci://REGISTRY/REPO@DIGEST` or
//! `--image-archive FILE` an image by digest (see [`super::image_scan`]).
//!
//! Exit status: 0 scanned (and the threshold, if given, passed), 1 the
//! threshold failed, 2 invalid input or the scan could not run.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use scanfleet_scan_engine::adapters::local_root::LocalRoot;
use scanfleet_scan_engine::adapters::profile_dir::load_profile_dir;
use scanfleet_scan_engine::facts::GatherLimits;
use scanfleet_scan_engine::hdf::to_hdf;
use scanfleet_scan_engine::profile::Profile;
use scanfleet_scan_engine::scan::scan;
use scanfleet_scan_session::attestation::NamedThreshold;
use sha2::Digest as _;

use super::threshold::{INVALID_INPUT, gate, load_threshold};

/// Arguments of `scanfleet scan`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// A running container to scan, k8s://NAMESPACE/POD/CONTAINER, or an
    /// image by digest, oci://REGISTRY/REPOSITORY@sha256:DIGEST.
    #[arg(
        value_name = "k8s://NS/POD/CONTAINER | oci://REGISTRY/REPO@DIGEST",
        conflicts_with = "root"
    )]
    pub target: Option<String>,
    /// Root of the directory tree to scan.
    #[arg(long, required_unless_present_any = ["target", "image_archive"], conflicts_with = "image_archive")]
    pub root: Option<PathBuf>,
    /// Profile directory (inspec.yml + controls/*.yml).
    #[arg(long)]
    pub profile: PathBuf,
    /// Override a profile input: NAME=VALUE (lists: comma-separated). Repeatable.
    #[arg(long = "input", value_name = "NAME=VALUE")]
    pub inputs: Vec<String>,
    /// Gate the results with a SAF threshold file.
    #[arg(long)]
    pub threshold: Option<PathBuf>,
    /// Declare the target a container: InSpec's `virtualization` then
    /// answers `docker` whatever the target's files say.
    #[arg(long)]
    pub container: bool,
    /// Write HDF here instead of stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Bytes kept per file read.
    #[arg(long, default_value_t = GatherLimits::default().max_file_bytes)]
    pub max_file_bytes: u64,
    /// Entries a search may visit before its control errors.
    #[arg(long, default_value_t = GatherLimits::default().max_walk_entries)]
    pub max_walk_entries: usize,
    #[command(flatten)]
    pub cluster: super::cluster_scan::ClusterArgs,
    #[command(flatten)]
    pub image: super::image_scan::ImageArgs,
}

/// The profile as applied to this scan: `--container` declares the target.
fn declared(mut profile: Profile, args: &Args) -> Profile {
    if args.container {
        profile.declared.container = Some(true);
    }
    profile
}

/// What every scan reads before it runs, whatever its target: the
/// `--input` overrides, the profile as declared for this scan, and the
/// threshold with the name and file digest a statement records.
pub(crate) struct ScanPlan {
    pub(crate) overrides: BTreeMap<String, String>,
    pub(crate) profile: Profile,
    pub(crate) threshold: Option<NamedThreshold>,
}

/// Reads the [`ScanPlan`] for `args`, trying every part so that all
/// problems are reported together: each is pushed onto `problems`, except
/// a threshold's, which `load_threshold` prints itself (every one of
/// them). `None` when any part failed.
pub(crate) fn read_scan_plan(args: &Args, problems: &mut Vec<String>) -> Option<ScanPlan> {
    let overrides = parse_inputs(&args.inputs)
        .map_err(|e| problems.push(e.to_string()))
        .ok();
    let profile = overrides.as_ref().and_then(|o| {
        load_profile_dir(&args.profile, o)
            .map(|p| declared(p, args))
            .map_err(|e| problems.push(format!("{}: {e}", args.profile.display())))
            .ok()
    });
    let mut threshold_failed = false;
    let threshold = args.threshold.as_ref().and_then(|path| {
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into(),
        );
        let sha256 = std::fs::read(path)
            .map(|bytes| hex::encode(sha2::Sha256::digest(bytes)))
            .unwrap_or_default();
        load_threshold(path)
            .map(|threshold| NamedThreshold {
                name,
                sha256: Some(sha256),
                threshold,
            })
            .map_err(|_| threshold_failed = true)
            .ok()
    });
    match (overrides, profile, threshold_failed) {
        (Some(overrides), Some(profile), false) => Some(ScanPlan {
            overrides,
            profile,
            threshold,
        }),
        _ => None,
    }
}

pub(crate) fn parse_inputs(raw: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for kv in raw {
        let Some((k, v)) = kv.split_once('=') else {
            bail!("--input {kv}: expected NAME=VALUE");
        };
        if out.insert(k.trim().to_string(), v.to_string()).is_some() {
            bail!("--input {k} is given twice");
        }
    }
    Ok(out)
}

/// Runs the subcommand.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let root = match (&args.target, &args.root) {
        (Some(target), _) if target.starts_with("oci://") => {
            return super::image_scan::run(Some(target), &args);
        }
        (None, None) if args.image.image_archive.is_some() => {
            return super::image_scan::run(None, &args);
        }
        (Some(target), _) => {
            if let Some(flag) = args.image.given_flag() {
                eprintln!("error: {flag} applies only to an image scan, not a k8s:// target");
                return Ok(ExitCode::from(INVALID_INPUT));
            }
            return super::cluster_scan::run(target, &args);
        }
        (None, Some(root)) => root.clone(),
        (None, None) => {
            eprintln!(
                "error: give --root DIR, a k8s://NS/POD/CONTAINER or oci://REGISTRY/REPO@DIGEST \
                 target, or --image-archive FILE"
            );
            return Ok(ExitCode::from(INVALID_INPUT));
        }
    };
    if let Some(flag) = args.cluster.given_flag() {
        eprintln!("error: {flag} applies only to a k8s:// target, not --root");
        return Ok(ExitCode::from(INVALID_INPUT));
    }
    if let Some(flag) = args.image.given_flag() {
        eprintln!("error: {flag} applies only to an image scan, not --root");
        return Ok(ExitCode::from(INVALID_INPUT));
    }
    // Read everything before scanning, so bad input fails fast.
    let mut problems = Vec::new();
    let plan = read_scan_plan(&args, &mut problems);
    for p in &problems {
        eprintln!("error: {p}");
    }
    let Some(ScanPlan {
        profile, threshold, ..
    }) = plan
    else {
        return Ok(ExitCode::from(INVALID_INPUT));
    };
    let limits = GatherLimits {
        max_file_bytes: args.max_file_bytes,
        max_walk_entries: args.max_walk_entries,
        ..GatherLimits::default()
    };
    let target = match LocalRoot::new(&root, limits) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(INVALID_INPUT));
        }
    };
    let report = match scan(&profile, &target) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: scan failed: {e}");
            return Ok(ExitCode::from(INVALID_INPUT));
        }
    };
    let hdf = to_hdf(&report);
    let text = serde_json::to_string_pretty(&hdf).context("serializing HDF")?;
    match &args.out {
        Some(path) => std::fs::write(path, text + "\n")
            .with_context(|| format!("writing {}", path.display()))?,
        None => println!("{text}"),
    }
    Ok(match threshold {
        Some(t) => gate(&t.threshold, &hdf, "scan results"),
        None => ExitCode::SUCCESS,
    })
}
