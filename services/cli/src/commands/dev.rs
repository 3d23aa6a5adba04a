//! `scanfleet dev`: the whole fleet on one machine, against kubesim's demo
//! workloads: nats-server (JetStream, file storage), kubesim, the collector
//! (SQLite), intake and N workers, each a real process; then every sample
//! pod is scanned and the verified results are shown.
//!
//! Every child runs under `setpriv --pdeathsig`, so nothing outlives this
//! process even if it is killed; a normal exit or Ctrl-C stops them with
//! SIGTERM (kubesim then removes its containers) and waits.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, anyhow, bail};
use scanfleet_contracts::v1::intake_client::IntakeClient;
use scanfleet_contracts::v1::results_client::ResultsClient;
use scanfleet_contracts::v1::target_selector::Selector;
use scanfleet_contracts::v1::{
    LabelSelectorTarget, ListResultsRequest, ProfileRef, ScanOutcome, ScanResult, SubmitRequest,
    TargetSelector, profile_ref::Pin,
};
use scanfleet_trust::{IN_TOTO_PAYLOAD_TYPE, SigningKey, TrustedKeys};

/// Arguments of `scanfleet dev`.
#[derive(clap::Args, Debug)]
pub struct DevArgs {
    /// Worker processes.
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Scans each worker runs at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Where state goes (NATS store, SQLite, keys, logs); a temporary
    /// directory, removed at exit, when omitted.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Scan every sample pod once, print the table, stop everything, and
    /// exit non-zero if any scan did not complete.
    #[arg(long)]
    once: bool,
    /// Extra copies of each sample pod (for load figures).
    #[arg(long, default_value_t = 0)]
    replicas: usize,
    /// How long to wait for the results.
    #[arg(long, default_value_t = 300)]
    timeout_secs: u64,
    /// Each worker's Kubernetes API rate limit (calls per second).
    #[arg(long, default_value_t = 20.0)]
    kube_qps: f64,
    /// Each worker's Kubernetes API burst.
    #[arg(long, default_value_t = 40)]
    kube_burst: u32,
}

struct Proc {
    name: String,
    child: Child,
    log: PathBuf,
}

/// The running children; dropping it stops them (SIGTERM, then SIGKILL).
#[derive(Default)]
struct Fleet {
    procs: Vec<Proc>,
}

impl Fleet {
    fn spawn(&mut self, name: &str, program: &Path, args: &[String], logs: &Path) -> Result<()> {
        let log = logs.join(format!("{name}.log"));
        let out =
            std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let child = Command::new("setpriv")
            .args(["--pdeathsig", "TERM", "--"])
            .arg(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("starting {}", program.display()))?;
        self.procs.push(Proc {
            name: name.to_owned(),
            child,
            log,
        });
        Ok(())
    }

    /// Starts a server and waits until it accepts connections on `port`,
    /// failing early with the log tail if any child exits meanwhile.
    async fn spawn_listening(
        &mut self,
        name: &str,
        program: &Path,
        args: &[String],
        logs: &Path,
        port: u16,
        within: Duration,
    ) -> Result<()> {
        self.spawn(name, program, args, logs)?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + within;
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            self.check_alive()?;
            if Instant::now() > deadline {
                bail!("{name} did not listen on {addr} within {within:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// Fails with the log tail of any child that already exited.
    fn check_alive(&mut self) -> Result<()> {
        for p in &mut self.procs {
            if let Ok(Some(status)) = p.child.try_wait() {
                let log = std::fs::read_to_string(&p.log).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(15).collect();
                bail!(
                    "{} exited ({status}); last log lines:\n{}",
                    p.name,
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
            }
        }
        Ok(())
    }

    /// Peak resident memory of each worker (setpriv execs in place, so the
    /// child's pid is the worker's).
    fn print_worker_memory(&self) {
        for p in self.procs.iter().filter(|p| p.name.starts_with("worker")) {
            let status = std::fs::read_to_string(format!("/proc/{}/status", p.child.id()))
                .unwrap_or_default();
            let field = |key: &str| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix(key))
                    .map(|v| v.trim().to_owned())
                    .unwrap_or_else(|| "?".into())
            };
            println!(
                "{}: RSS {} (peak {})",
                p.name,
                field("VmRSS:"),
                field("VmHWM:")
            );
        }
    }

    fn stop(&mut self) {
        // Workers first (they drain), kubesim and NATS last.
        for p in self.procs.iter_mut().rev() {
            // Never signal a child already reaped: its pid may be reused.
            if !matches!(p.child.try_wait(), Ok(None)) {
                continue;
            }
            let _ = Command::new("kill")
                .args(["-TERM", &p.child.id().to_string()])
                .stderr(Stdio::null())
                .status();
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        for p in self.procs.iter_mut().rev() {
            loop {
                match p.child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if Instant::now() > deadline => {
                        let _ = p.child.kill();
                        let _ = p.child.wait();
                        break;
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(50)),
                }
            }
        }
        self.procs.clear();
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A sibling binary of this executable (cargo puts them together).
fn sibling(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let path = exe.with_file_name(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(anyhow!(
            "{} not found next to {}; build everything with `cargo build --bins`",
            name,
            exe.display()
        ))
    }
}

/// The repository's pinned tool, found from this executable upwards, then
/// `$PATH`.
fn tool(env: &str, relative: &str, bare: &str) -> Result<PathBuf> {
    if let Some(p) = std::env::var_os(env) {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe()?;
    for dir in exe.ancestors() {
        let candidate = dir.join(".tools").join(relative);
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
        if dir.join(bare).is_file() {
            return Ok(dir.join(bare));
        }
    }
    bail!("{bare} not found: run scripts/setup, or set {env}")
}

fn repo_profiles() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    exe.ancestors()
        .map(|d| d.join("profiles"))
        .find(|p| p.join("container-baseline/inspec.yml").is_file())
        .ok_or_else(|| {
            anyhow!(
                "the profiles/ directory was not found above {}",
                exe.display()
            )
        })
}

fn private_file(path: &Path, contents: &[u8]) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    std::io::Write::write_all(&mut f, contents)?;
    Ok(())
}

struct Endpoints {
    intake: String,
    collector: String,
    collector_http: SocketAddr,
}

/// Runs the subcommand.
pub fn run(args: DevArgs) -> Result<ExitCode> {
    if args.workers == 0 {
        bail!("--workers must be at least 1");
    }
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let temp;
        let data = match &args.data_dir {
            Some(d) => {
                std::fs::create_dir_all(d)?;
                d.clone()
            }
            None => {
                temp = tempfile::Builder::new()
                    .prefix("scanfleet-dev-")
                    .tempdir()?;
                temp.path().to_path_buf()
            }
        };
        let mut fleet = Fleet::default();
        let outcome = tokio::select! {
            r = main_flow(&args, &data, &mut fleet) => r,
            _ = tokio::signal::ctrl_c() => {
                eprintln!("interrupted; stopping every process");
                Ok(ExitCode::from(130))
            }
        };
        eprintln!("stopping the fleet…");
        fleet.stop();
        outcome
    })
}

async fn main_flow(args: &DevArgs, data: &Path, fleet: &mut Fleet) -> Result<ExitCode> {
    let logs = data.join("logs");
    std::fs::create_dir_all(&logs)?;
    let nats_server = tool(
        "SCANFLEET_NATS_SERVER",
        "venv/bin/nats-server",
        "nats-server",
    )?;
    let (kubesim, intake, worker, collector) = (
        sibling("kubesim")?,
        sibling("scanfleet-intake")?,
        sibling("scanfleet-worker")?,
        sibling("scanfleet-collector")?,
    );
    let profiles = repo_profiles()?;

    eprintln!("data dir: {}", data.display());
    let nats_port = free_port()?;
    let nats_url = format!("nats://127.0.0.1:{nats_port}");
    fleet
        .spawn_listening(
            "nats-server",
            &nats_server,
            &[
                "-js".into(),
                "-a".into(),
                "127.0.0.1".into(),
                "-p".into(),
                nats_port.to_string(),
                "-sd".into(),
                data.join("nats").display().to_string(),
            ],
            &logs,
            nats_port,
            Duration::from_secs(20),
        )
        .await?;
    eprintln!("✓ nats-server (JetStream) at {nats_url}");

    let kubeconfig = data.join("kubesim-admin.kubeconfig");
    let _ = std::fs::remove_file(&kubeconfig);
    fleet.spawn(
        "kubesim",
        &kubesim,
        &["--kubeconfig-out".into(), kubeconfig.display().to_string()],
        &logs,
    )?;
    let deadline = Instant::now() + Duration::from_secs(60);
    // kubesim prints its URL once every fixture pod has settled.
    let kubesim_log = logs.join("kubesim.log");
    let settled = || {
        std::fs::read_to_string(&kubesim_log)
            .is_ok_and(|l| l.lines().any(|line| line.starts_with("https://")))
    };
    while !(kubeconfig.is_file() && settled()) {
        fleet.check_alive()?;
        if Instant::now() > deadline {
            bail!(
                "kubesim did not start within 60 s (see {})",
                logs.join("kubesim.log").display()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if args.replicas > 0 {
        replicate_sample_pods(&kubeconfig, args.replicas).await?;
    }
    eprintln!("✓ kubesim with the demo workloads (namespace apps)");

    let keys = data.join("keys");
    std::fs::create_dir_all(&keys)?;
    let key = SigningKey::generate();
    private_file(&keys.join("signing.pem"), key.to_pkcs8_pem().as_bytes())?;
    let public_pem = key.public_key().to_spki_pem();
    std::fs::write(keys.join("signing.pub.pem"), &public_pem)?;

    let (grpc, http, intake_port) = (free_port()?, free_port()?, free_port()?);
    let endpoints = Endpoints {
        intake: format!("http://127.0.0.1:{intake_port}"),
        collector: format!("http://127.0.0.1:{grpc}"),
        collector_http: ([127, 0, 0, 1], http).into(),
    };
    fleet
        .spawn_listening(
            "collector",
            &collector,
            &[
                "--nats-url".into(),
                nats_url.clone(),
                "--store-url".into(),
                format!("sqlite://{}", data.join("results.db").display()),
                "--trusted-key".into(),
                keys.join("signing.pub.pem").display().to_string(),
                "--grpc-listen".into(),
                format!("127.0.0.1:{grpc}"),
                "--http-listen".into(),
                format!("127.0.0.1:{http}"),
            ],
            &logs,
            grpc,
            Duration::from_secs(30),
        )
        .await?;
    eprintln!(
        "✓ collector (SQLite) gRPC {} HTTP http://{}",
        endpoints.collector, endpoints.collector_http
    );

    fleet
        .spawn_listening(
            "intake",
            &intake,
            &[
                "--nats-url".into(),
                nats_url.clone(),
                "--cluster".into(),
                "kubesim".into(),
                "--kubeconfig".into(),
                kubeconfig.display().to_string(),
                "--grpc-listen".into(),
                format!("127.0.0.1:{intake_port}"),
            ],
            &logs,
            intake_port,
            Duration::from_secs(30),
        )
        .await?;
    eprintln!("✓ intake gRPC {}", endpoints.intake);

    let worker_config = data.join("worker.yml");
    std::fs::write(
        &worker_config,
        format!(
            "kube:\n  qps: {}\n  burst: {}\nprogress_interval_ms: 5000\nidle_poll_ms: 1000\n",
            args.kube_qps, args.kube_burst
        ),
    )?;
    for i in 0..args.workers {
        fleet.spawn(
            &format!("worker-{i}"),
            &worker,
            &[
                "--nats-url".into(),
                nats_url.clone(),
                "--cluster".into(),
                "kubesim".into(),
                "--kubeconfig".into(),
                kubeconfig.display().to_string(),
                "--signing-key".into(),
                keys.join("signing.pem").display().to_string(),
                "--profiles".into(),
                profiles.display().to_string(),
                "--http-listen".into(),
                "127.0.0.1:0".into(),
                "--worker-id".into(),
                format!("dev-worker-{i}"),
                "--concurrency".into(),
                args.concurrency.to_string(),
                "--config".into(),
                worker_config.display().to_string(),
            ],
            &logs,
        )?;
    }
    eprintln!(
        "✓ {} workers (concurrency {} each)",
        args.workers, args.concurrency
    );

    let submitted_at = Instant::now();
    let submitted_wall = SystemTime::now();
    let scans = submit_all(&endpoints.intake).await?;
    eprintln!(
        "→ queued {} scans (every container in namespace apps)",
        scans.len()
    );
    let results = wait_for(
        fleet,
        &endpoints.collector,
        &scans,
        Duration::from_secs(args.timeout_secs),
    )
    .await?;
    let elapsed = submitted_at.elapsed();

    let mut trusted = TrustedKeys::new();
    trusted.insert(key.public_key().clone());
    print_table(&scans, &results, &trusted);
    print_figures(&results, submitted_wall, elapsed);
    fleet.print_worker_memory();
    let incomplete = scans.len()
        - results
            .values()
            .filter(|r| r.outcome() == ScanOutcome::Completed)
            .count();

    if args.once {
        if incomplete > 0 {
            eprintln!("{incomplete} scans did not complete");
            return Ok(ExitCode::from(1));
        }
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "\nThe fleet keeps running. In another shell:\n  \
         scanfleet submit --intake {i} k8s://apps/web-misconfigured/web\n  \
         scanfleet watch --collector {c} <SCAN_ID>\n  \
         scanfleet results list --collector {c}\n  \
         curl http://{h}/v1/results\n\
         Logs: {l}\nPress Ctrl-C to stop everything.",
        i = endpoints.intake,
        c = endpoints.collector,
        h = endpoints.collector_http,
        l = logs.display()
    );
    loop {
        fleet.check_alive()?;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn replicate_sample_pods(kubeconfig: &Path, replicas: usize) -> Result<()> {
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{ListParams, ObjectMeta, PostParams};
    let text = std::fs::read_to_string(kubeconfig)?;
    let access =
        scanfleet_kube_access::ClusterAccess::from_kubeconfig(&text, "kubesim admin").await?;
    let pods: kube::Api<Pod> = kube::Api::namespaced(access.client.clone(), "apps");
    let samples = pods.list(&ListParams::default()).await?.items;
    for sample in &samples {
        for r in 0..replicas {
            let name = format!("{}-r{r}", sample.metadata.name.clone().unwrap_or_default());
            let copy = Pod {
                metadata: ObjectMeta {
                    name: Some(name),
                    namespace: Some("apps".into()),
                    labels: sample.metadata.labels.clone(),
                    ..Default::default()
                },
                spec: sample.spec.clone(),
                status: None,
            };
            pods.create(&PostParams::default(), &copy).await?;
        }
    }
    let want = samples.len() * (replicas + 1);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let running = pods
            .list(&ListParams::default())
            .await?
            .items
            .iter()
            .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
            .count();
        if running >= want {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("only {running} of {want} pods running after 120 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// scan id → (pod, container).
type Scans = BTreeMap<String, (String, String)>;

async fn submit_all(intake: &str) -> Result<Scans> {
    let mut client = IntakeClient::connect(intake.to_owned()).await?;
    let accepted = client
        .submit(SubmitRequest {
            target: Some(TargetSelector {
                cluster: String::new(),
                selector: Some(Selector::LabelSelector(LabelSelectorTarget {
                    namespace: "apps".into(),
                    ..Default::default()
                })),
            }),
            profile: Some(ProfileRef {
                name: "container-baseline".into(),
                pin: Some(Pin::Version("1.0.0".into())),
            }),
            ..Default::default()
        })
        .await
        .map_err(|s| anyhow!("intake refused the submission: {}", s.message()))?
        .into_inner()
        .scans;
    Ok(accepted
        .into_iter()
        .map(|a| {
            let t = a.target.unwrap_or_default();
            (a.scan_id, (t.pod, t.container))
        })
        .collect())
}

async fn wait_for(
    fleet: &mut Fleet,
    collector: &str,
    scans: &Scans,
    within: Duration,
) -> Result<BTreeMap<String, ScanResult>> {
    let mut client = ResultsClient::connect(collector.to_owned()).await?;
    let deadline = Instant::now() + within;
    let mut last = usize::MAX;
    loop {
        fleet.check_alive()?;
        let mut found = BTreeMap::new();
        let mut page_token = String::new();
        loop {
            let page = client
                .list(ListResultsRequest {
                    page_size: 500,
                    page_token: page_token.clone(),
                    ..Default::default()
                })
                .await?
                .into_inner();
            for r in page.results {
                if scans.contains_key(&r.scan_id) {
                    found.insert(r.scan_id.clone(), r);
                }
            }
            if page.next_page_token.is_empty() {
                break;
            }
            page_token = page.next_page_token;
        }
        if found.len() != last {
            eprintln!("  {}/{} results persisted", found.len(), scans.len());
            last = found.len();
        }
        if found.len() == scans.len() || Instant::now() > deadline {
            return Ok(found);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn print_table(scans: &Scans, results: &BTreeMap<String, ScanResult>, trusted: &TrustedKeys) {
    println!(
        "\n{:<26} {:<9} {:<8} {:>11} {:>5} {:>5} {:>5} {:>5}  SIGNATURE",
        "POD", "CONTAINER", "APPROACH", "COMPLIANCE", "CRIT", "HIGH", "MED", "LOW"
    );
    for (id, (pod, container)) in scans {
        let Some(r) = results.get(id) else {
            println!("{pod:<26} {container:<9} {:<8} {:>11}", "-", "no result");
            continue;
        };
        let approach = match r.approach() {
            scanfleet_contracts::v1::Approach::Exec => "exec",
            scanfleet_contracts::v1::Approach::Debug => "debug",
            scanfleet_contracts::v1::Approach::Sidecar => "sidecar",
            _ => "?",
        };
        // Verified again here, independently of the collector.
        let verified = trusted
            .verify_json(&r.envelope, 4 << 20, Some(IN_TOTO_PAYLOAD_TYPE))
            .is_ok();
        let signature = if verified { "verified" } else { "NOT VERIFIED" };
        if r.outcome() != ScanOutcome::Completed {
            println!(
                "{pod:<26} {container:<9} {approach:<8} {:>11}  {signature} ({})",
                "failed", r.failure
            );
            continue;
        }
        let s = r.summary.unwrap_or_default();
        let sev = s.failed_by_severity.unwrap_or_default();
        println!(
            "{pod:<26} {container:<9} {approach:<8} {:>10.1}% {:>5} {:>5} {:>5} {:>5}  {signature}",
            s.compliance_percent, sev.critical, sev.high, sev.medium, sev.low
        );
    }
}

fn print_figures(results: &BTreeMap<String, ScanResult>, submitted: SystemTime, elapsed: Duration) {
    let since = |t: &prost_types::Timestamp| {
        let at = SystemTime::UNIX_EPOCH
            + Duration::from_secs(t.seconds.max(0) as u64)
            + Duration::from_nanos(t.nanos.max(0) as u64);
        at.duration_since(submitted).unwrap_or_default()
    };
    let mut latencies: Vec<Duration> = results
        .values()
        .filter_map(|r| r.persisted_at.as_ref().map(since))
        .collect();
    latencies.sort();
    if latencies.is_empty() {
        return;
    }
    let pct = |p: f64| {
        latencies[((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1]
    };
    println!(
        "\n{} results in {:.1} s ({:.1} scans/s); submit→persisted p50 {:.2} s, p99 {:.2} s",
        results.len(),
        elapsed.as_secs_f64(),
        results.len() as f64 / elapsed.as_secs_f64().max(0.001),
        pct(0.50).as_secs_f64(),
        pct(0.99).as_secs_f64()
    );
}
