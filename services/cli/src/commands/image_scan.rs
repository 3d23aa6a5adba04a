//! `scanfleet scan oci://REGISTRY/REPO@sha256:…` and `scanfleet scan
//! --image-archive FILE`: pulls (or reads) the image by digest, verifies
//! every blob, unpacks it into a private temporary root that hostile
//! layers cannot escape, scans that root with the local-root target, and
//! removes it. The optional signed statement's subject is the image
//! digest and its predicate says `image`.
//!
//! Exit status: 0 scanned (threshold passed or none given), 1 the
//! threshold failed, 2 invalid input or the image could not be pulled.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Instant, SystemTime};

use anyhow::{Context, Result};
use scanfleet_image_fetch::adapters::image_archive::ImageArchive;
use scanfleet_image_fetch::adapters::image_pull::{UnpackedImage, pull_image};
use scanfleet_image_fetch::adapters::registry_client::{
    Credentials, RegistryClient, RegistryOptions,
};
use scanfleet_image_fetch::layer_entry::UnpackLimits;
use scanfleet_image_fetch::manifest::Platform;
use scanfleet_scan_engine::adapters::local_root::LocalRoot;
use scanfleet_scan_engine::facts::GatherLimits;
use scanfleet_scan_engine::hdf::to_hdf;
use scanfleet_scan_intents::ImageTarget;
use scanfleet_scan_session::attestation::{
    Attribution, NamedThreshold, as_image_scan, completed_statement, inputs_used,
};
use zeroize::Zeroizing;

use super::cluster_scan::{signing_key, verdict_exit, write_outputs};
use super::scan::{Args, read_scan_plan};
use super::threshold::INVALID_INPUT;
use crate::files;

/// Options that apply only to image scans.
#[derive(clap::Args, Debug, Default)]
pub struct ImageArgs {
    /// An OCI image layout (directory) or a tar of one (docker save,
    /// skopeo oci-archive) to scan instead of a registry image.
    #[arg(long, value_name = "FILE")]
    pub image_archive: Option<PathBuf>,
    /// PEM CA bundle the registry's certificate chains to (default: the
    /// system roots).
    #[arg(long, value_name = "FILE")]
    pub registry_ca: Option<PathBuf>,
    /// Registry user name (basic auth, or for the token endpoint).
    #[arg(long, requires = "registry_password_file")]
    pub registry_user: Option<String>,
    /// File holding the registry password (never given on the command line).
    #[arg(long, value_name = "FILE", requires = "registry_user")]
    pub registry_password_file: Option<PathBuf>,
    /// Speak plain HTTP to the registry (a loopback test registry only).
    #[arg(long)]
    pub registry_plain_http: bool,
    /// Platform to pick from a multi-platform image: OS/ARCH
    /// (default linux/<this machine>).
    #[arg(long, value_name = "OS/ARCH")]
    pub platform: Option<String>,
    /// Entries the image may unpack to, over all layers.
    #[arg(long, default_value_t = UnpackLimits::default().max_entries)]
    pub max_image_entries: u64,
    /// Bytes the image may unpack to, over all layers.
    #[arg(long, default_value_t = UnpackLimits::default().max_total_bytes)]
    pub max_image_bytes: u64,
    /// Bytes of one file in the image.
    #[arg(long, default_value_t = UnpackLimits::default().max_entry_bytes)]
    pub max_image_file_bytes: u64,
    /// Where the private unpack directory goes (default: the temp dir).
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
}

impl ImageArgs {
    /// The first image-only flag given, for refusing it with other targets.
    pub fn given_flag(&self) -> Option<&'static str> {
        [
            (self.image_archive.is_some(), "--image-archive"),
            (self.registry_ca.is_some(), "--registry-ca"),
            (self.registry_user.is_some(), "--registry-user"),
            (self.registry_plain_http, "--registry-plain-http"),
            (self.platform.is_some(), "--platform"),
            (self.work_dir.is_some(), "--work-dir"),
        ]
        .into_iter()
        .find_map(|(given, flag)| given.then_some(flag))
    }

    fn limits(&self) -> UnpackLimits {
        UnpackLimits {
            max_entries: self.max_image_entries,
            max_total_bytes: self.max_image_bytes,
            max_entry_bytes: self.max_image_file_bytes,
            ..UnpackLimits::default()
        }
    }
}

/// Where the image comes from.
enum Source {
    Registry(ImageTarget),
    Archive(PathBuf),
}

fn platform(raw: Option<&str>) -> Result<Platform, String> {
    match raw {
        None => Ok(Platform::default()),
        Some(p) => match p.split_once('/') {
            Some((os, arch)) if !os.is_empty() && !arch.is_empty() && !arch.contains('/') => {
                Ok(Platform {
                    os: os.into(),
                    architecture: arch.into(),
                })
            }
            _ => Err(format!(
                "--platform {p:?}: expected OS/ARCH, e.g. linux/amd64"
            )),
        },
    }
}

/// Everything checked before any network or disk work.
struct Prepared {
    source: Source,
    platform: Platform,
    credentials: Option<Credentials>,
    profile: scanfleet_scan_engine::profile::Profile,
    overrides: std::collections::BTreeMap<String, String>,
    key: Option<(scanfleet_trust::SigningKey, PathBuf)>,
    threshold: Option<NamedThreshold>,
}

/// Parses and loads every input, reporting all problems at once.
fn prepare(raw_target: Option<&str>, args: &Args) -> Result<Prepared, ExitCode> {
    let mut problems = Vec::new();
    if let Some(flag) = args
        .cluster
        .given_flag()
        .filter(|f| !matches!(*f, "--sign-key" | "--envelope-out" | "--cluster-name"))
    {
        problems.push(format!("{flag} applies only to a k8s:// target"));
    }
    let source = match (raw_target, &args.image.image_archive) {
        (Some(uri), None) => ImageTarget::parse_uri(uri)
            .map(Source::Registry)
            .map_err(|e| problems.push(format!("target {uri:?}: {e}")))
            .ok(),
        (None, Some(path)) => Some(Source::Archive(path.clone())),
        _ => {
            problems.push("give either an oci:// target or --image-archive, not both".into());
            None
        }
    };
    let platform = platform(args.image.platform.as_deref())
        .map_err(|e| problems.push(e))
        .ok();
    let password = args.image.registry_password_file.as_ref().and_then(|path| {
        files::read_secret(path, 64 * 1024)
            .map(|text| Zeroizing::new(text.trim_end_matches(['\n', '\r']).to_owned()))
            .map_err(|e| problems.push(format!("{e:#}")))
            .ok()
    });
    let plan = read_scan_plan(args, &mut problems);
    let key = signing_key(&args.cluster, &mut problems);
    for p in &problems {
        eprintln!("error: {p}");
    }
    let (Some(source), Some(platform), Some(plan), true) =
        (source, platform, plan, problems.is_empty())
    else {
        return Err(ExitCode::from(INVALID_INPUT));
    };
    let credentials = match (&args.image.registry_user, password) {
        (Some(username), Some(password)) => Some(Credentials {
            username: username.clone(),
            password,
        }),
        _ => None,
    };
    Ok(Prepared {
        source,
        platform,
        credentials,
        profile: plan.profile,
        overrides: plan.overrides,
        key,
        threshold: plan.threshold,
    })
}

/// Runs an image scan of `raw_target` (an `oci://` URI) or of
/// `--image-archive`.
pub fn run(raw_target: Option<&str>, args: &Args) -> Result<ExitCode> {
    let p = match prepare(raw_target, args) {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let started = SystemTime::now();
    let image = match runtime.block_on(fetch(&p.source, &p.platform, p.credentials.clone(), args)) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(INVALID_INPUT));
        }
    };
    let reference = match &p.source {
        Source::Registry(t) => t.reference(),
        Source::Archive(path) => format!(
            "{}@{}",
            path.file_stem()
                .map_or("image".into(), |s| s.to_string_lossy()),
            image.digest
        ),
    };
    let started_scan = Instant::now();
    let limits = GatherLimits {
        max_file_bytes: args.max_file_bytes,
        max_walk_entries: args.max_walk_entries,
        ..GatherLimits::default()
    };
    let target = LocalRoot::new(image.root(), limits)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .with_recorded_metadata(image.recorded.clone());
    let report = match scanfleet_scan_engine::scan::scan(&p.profile, &target) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: scan failed: {e}");
            return Ok(ExitCode::from(INVALID_INPUT));
        }
    };
    let scan_time = started_scan.elapsed();
    eprintln!(
        "scanned {reference} ({} layers, {} entries, {} bytes): pull {:?}, unpack {:?}, scan {:?}",
        image.layers,
        image.budget.entries,
        image.budget.bytes,
        image.timings.pull,
        image.timings.unpack,
        scan_time
    );
    let digest = image.digest.to_string();
    drop(image);
    attest_and_write(&p, args, &reference, &digest, &report, started)
}

/// The HDF, the statement about the image digest (signed with a key), the
/// verdict.
fn attest_and_write(
    p: &Prepared,
    args: &Args,
    reference: &str,
    digest: &str,
    report: &scanfleet_scan_engine::scan::ScanReport,
    started: SystemTime,
) -> Result<ExitCode> {
    let hdf = to_hdf(report);
    let text = serde_json::to_string_pretty(&hdf).context("serializing HDF")? + "\n";
    let who = Attribution {
        scan_id: ulid::Ulid::new().to_string(),
        cluster: args
            .cluster
            .cluster_name
            .as_ref()
            .map(|c| c.as_str().to_owned())
            .unwrap_or_default(),
        namespace: String::new(),
        pod: String::new(),
        container: String::new(),
        scanner_id: "cli".into(),
        requested_by: None,
        inputs: inputs_used(&p.profile, &p.overrides),
    };
    let (statement, verdict) = match completed_statement(
        &who,
        reference,
        digest,
        "local",
        &hdf,
        text.as_bytes(),
        p.threshold.as_ref(),
        started,
    ) {
        Ok((s, v)) => (as_image_scan(s), v),
        Err(e) => {
            eprintln!("error: cannot make the scan statement: {e}");
            return Ok(ExitCode::from(INVALID_INPUT));
        }
    };
    write_outputs(p.key.as_ref(), args.out.as_deref(), &text, &statement)?;
    Ok(verdict_exit(verdict))
}

async fn fetch(
    source: &Source,
    platform: &Platform,
    credentials: Option<Credentials>,
    args: &Args,
) -> Result<UnpackedImage, String> {
    let work = args.image.work_dir.as_deref();
    let limits = args.image.limits();
    match source {
        Source::Registry(t) => {
            eprintln!("pulling {t}");
            let client = RegistryClient::new(
                t.registry(),
                t.repository(),
                RegistryOptions {
                    ca_bundle: args.image.registry_ca.clone(),
                    credentials,
                    plain_http: args.image.registry_plain_http,
                    timeout: None,
                },
            )
            .map_err(|e| e.to_string())?;
            // A spinner on a terminal while layers stream in (the plain
            // line above is all a pipe or a CI log gets).
            let progress = crate::output::spinner("pulling and unpacking layers");
            let pulled = pull_image(&client, t.digest(), platform, limits, work).await;
            progress.finish_and_clear();
            pulled.map_err(|e| e.to_string())
        }
        Source::Archive(path) => {
            let archive = ImageArchive::open(path, work, &limits).map_err(|e| e.to_string())?;
            let digest = archive.image_digest().map_err(|e| e.to_string())?;
            eprintln!("reading {} (image {digest})", path.display());
            pull_image(&archive, &digest, platform, limits, work)
                .await
                .map_err(|e| e.to_string())
        }
    }
}
