//! Issue #13's hostile-input suite, against the real `scanfleet-intake`,
//! `scanfleet-collector` and `scanfleet-worker` binaries on a secured
//! nats-server and kubesim's TokenReview / SubjectAccessReview: more than
//! 10,000 generated inputs (malformed and oversized gRPC messages, bad
//! tokens, webhook deliveries for every route, collector query strings
//! and paths, random bytes and a foreign CA's client certificate on every
//! TLS port), each refused with a client error within a deadline. Then:
//! no process log contains "panicked", nothing was queued on the intent
//! stream or stored by the collector, every process still serves a
//! legitimate request, and a server certificate rotated on disk is
//! served by every listener without a restart.
//!
//! The inputs are generated from a seed (printed; `HOSTILE_SEED=<n>`
//! reruns another), so every failure prints what reproduces it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use scanfleet_bus::BusIdentity;
use scanfleet_bus::topology::INTENTS_STREAM;
use scanfleet_contracts::v1::{GetResultRequest, ListResultsRequest};
use scanfleet_hostile_inputs::bad_tokens::RealTokens;
use scanfleet_hostile_inputs::grpc_requests::{
    Callers, GrpcInput, collector_input, intake_input, valid_submit,
};
use scanfleet_hostile_inputs::http_requests::{HttpInput, collector_http_input};
use scanfleet_hostile_inputs::port_bytes::{
    ForeignCertificate, PortBytes, port_bytes, present_certificate, send_bytes,
};
use scanfleet_hostile_inputs::raw_grpc::call;
use scanfleet_hostile_inputs::seeded::{Seeded, run_seed};
use scanfleet_hostile_inputs::verdicts::{Answer, Tally, barrage, thousands};
use scanfleet_hostile_inputs::webhook_bodies::{
    MAX_BODY_BYTES, WebhookSecrets, fixture, webhook_input,
};
use scanfleet_test_harness::callers::{AUDIENCE, Callers as Identities, access_cluster};
use scanfleet_test_harness::credentials::TestCredentials;
use scanfleet_test_harness::fleet::{eventually, inline_event, publish, result, write_public_key};
use scanfleet_test_harness::https::{https_get, https_request, tls_connect};
use scanfleet_test_harness::pki::TestCa;
use scanfleet_test_harness::secure_bus::SecureBus;
use scanfleet_test_harness::slow_clients::LimitedProcess;
use scanfleet_test_harness::{repo_root, write_private};
use scanfleet_trust::SigningKey;
use tokio::task::JoinSet;

const INTAKE_GRPC: usize = 2_600;
const COLLECTOR_GRPC: usize = 2_000;
const WEBHOOKS: usize = 2_400;
const COLLECTOR_HTTP: usize = 2_000;
const PER_PORT: usize = 300;
const FOREIGN_CERTIFICATES_PER_PORT: usize = 4;

/// Enough descriptors for the barrage's concurrent connections.
const FD_LIMIT: u32 = 4096;
/// Every process gets a limit high enough that inputs reach the parsers;
/// what still hits it is counted apart.
const RATE_LIMIT: &str = "100000";

/// A service binary built next to this test (the workspace build makes
/// all three).
fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test's path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>");
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{name} is not built in {}; run `cargo build -p scanfleet-intake -p scanfleet-collector \
         -p scanfleet-worker --bins` (the workspace test run builds it)",
        dir.display()
    );
    path
}

struct Fleet {
    intake: LimitedProcess,
    collector: LimitedProcess,
    worker: LimitedProcess,
    logs: Vec<(&'static str, PathBuf)>,
}

impl Fleet {
    fn start(
        dir: &Path,
        bus: &SecureBus,
        sim: &kubesim::Kubesim,
        creds: &TestCredentials,
        secrets: &WebhookSecrets,
        trusted: &Path,
    ) -> Self {
        let kubeconfig = dir.join("admin.kubeconfig");
        write_private(&kubeconfig, sim.admin_kubeconfig().as_bytes());
        let secret = |name: &str, value: &str| {
            let path = dir.join(name);
            write_private(&path, value.as_bytes());
            path
        };
        let yaml = format!(
            "webhooks:\n  profile: {{name: container-baseline, version: 1.0.0}}\n  max_body_bytes: {MAX_BODY_BYTES}\n  endpoints:\n    distribution: {{secret_file: {:?}}}\n    harbor: {{secret_file: {:?}}}\n    ghcr: {{secret_file: {:?}}}\n",
            secret("dist.secret", &secrets.distribution),
            secret("harbor.secret", &secrets.harbor),
            secret("ghcr.secret", &secrets.ghcr),
        );
        let config = dir.join("intake.yaml");
        std::fs::write(&config, yaml).unwrap();
        let path = |p: &Path| p.display().to_string();
        let listen = [
            "--grpc-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
        ];
        let limits = [
            "--rate-limit",
            RATE_LIMIT,
            "--rate-limit-burst",
            RATE_LIMIT,
            "--header-read-timeout",
            "60",
        ];
        let mut args = bus.args(BusIdentity::Intake);
        args.extend(listen.map(String::from));
        args.extend(limits.map(String::from));
        args.extend([
            "--cluster".into(),
            "kubesim".into(),
            "--kubeconfig".into(),
            path(&kubeconfig),
        ]);
        args.extend(["--config".into(), path(&config)]);
        args.extend(creds.service_flags());
        let intake_log = dir.join("intake.log");
        let intake =
            LimitedProcess::start(&binary("scanfleet-intake"), &args, FD_LIMIT, &intake_log);

        let mut args = bus.args(BusIdentity::Collector);
        args.extend(listen.map(String::from));
        args.extend(limits.map(String::from));
        let store = format!("sqlite://{}", dir.join("results.db").display());
        args.extend([
            "--store-url".into(),
            store,
            "--trusted-key".into(),
            path(trusted),
        ]);
        args.extend(creds.service_flags());
        let collector_log = dir.join("collector.log");
        let collector = LimitedProcess::start(
            &binary("scanfleet-collector"),
            &args,
            FD_LIMIT,
            &collector_log,
        );

        let key = dir.join("worker-signing.pem");
        write_private(&key, SigningKey::generate().to_pkcs8_pem().as_bytes());
        let mut args = bus.args(BusIdentity::Worker);
        args.extend([
            "--cluster".into(),
            "kubesim".into(),
            "--kubeconfig".into(),
            path(&kubeconfig),
        ]);
        args.extend(["--signing-key".into(), path(&key), "--profiles".into()]);
        args.extend([
            path(&repo_root().join("profiles")),
            "--http-listen".into(),
            "127.0.0.1:0".into(),
        ]);
        args.extend(creds.tls_flags());
        let worker_log = dir.join("worker.log");
        let worker =
            LimitedProcess::start(&binary("scanfleet-worker"), &args, FD_LIMIT, &worker_log);
        Self {
            intake,
            collector,
            worker,
            logs: vec![
                ("intake", intake_log),
                ("collector", collector_log),
                ("worker", worker_log),
            ],
        }
    }

    /// Every TLS listener: (edge name, address, ALPN).
    fn ports(&self) -> [(&'static str, SocketAddr, &'static [u8]); 5] {
        [
            ("intake-grpc-port", self.intake.addr("grpc="), b"h2"),
            ("intake-https-port", self.intake.addr("http="), b"http/1.1"),
            ("collector-grpc-port", self.collector.addr("grpc="), b"h2"),
            (
                "collector-https-port",
                self.collector.addr("http="),
                b"http/1.1",
            ),
            ("worker-https-port", self.worker.addr("http="), b"http/1.1"),
        ]
    }
}

/// The bad-token material only the cluster can mint, and the callers.
async fn callers(sim: &kubesim::Kubesim, creds: &TestCredentials) -> Callers {
    let ids = Identities::new(sim).await;
    ids.service_account("apps", "stranger").await;
    let stranger = ids.token("apps", "stranger", AUDIENCE, 86_400).await;
    let mut real = RealTokens::default();
    for i in 0..4 {
        real.genuine.push(
            ids.token("scanfleet-system", "operator", AUDIENCE, 86_400)
                .await,
        );
        let audience = ["vault", "kubernetes", "scanfleet-dev", "Scanfleet"][i];
        real.wrong_audience.push(
            ids.token("scanfleet-system", "operator", audience, 3600)
                .await,
        );
        real.expired.push(
            ids.token("scanfleet-system", "operator", AUDIENCE, 600)
                .await,
        );
    }
    // The short tokens' life ends on the cluster's clock (every other
    // token lives a day).
    sim.advance_clock(600 + 61);
    Callers {
        operator: creds.operator().to_owned(),
        stranger,
        real,
    }
}

fn generate<T>(seed: u64, edge: &str, n: usize, make: impl Fn(&mut Seeded, usize) -> T) -> Vec<T> {
    (0..n)
        .map(|i| make(&mut Seeded::for_input(seed, edge, i), i))
        .collect()
}

async fn intents_last_sequence(bus: &SecureBus) -> u64 {
    let js = bus.admin().await;
    let mut stream = js.get_stream(INTENTS_STREAM).await.unwrap();
    stream.info().await.unwrap().state.last_sequence
}

async fn stored_results(creds: &TestCredentials, grpc: SocketAddr) -> usize {
    let mut results = creds.results(grpc).await;
    let page = results
        .list(ListResultsRequest {
            page_size: 500,
            ..Default::default()
        })
        .await
        .expect("the operator lists results");
    page.into_inner().results.len()
}

/// The subject of the certificate `addr` presents now.
async fn presented(addr: SocketAddr, creds: &TestCredentials, alpn: &[u8]) -> String {
    match tls_connect(addr, &creds.tls(), &[alpn]).await {
        Ok(s) => s
            .get_ref()
            .1
            .peer_certificates()
            .map_or_else(String::new, |c| {
                scanfleet_process_lifecycle::serving::certificate_subject(&c[0]).unwrap_or_default()
            }),
        Err(e) => format!("handshake failed: {e}"),
    }
}

/// Everything one run sets up: the bus, the cluster, the credentials and
/// the three processes.
struct Bench {
    bus: SecureBus,
    creds: TestCredentials,
    signer: SigningKey,
    secrets: WebhookSecrets,
    callers: Callers,
    fleet: Fleet,
    _sim: kubesim::Kubesim,
    _dir: tempfile::TempDir,
}

impl Bench {
    async fn start() -> Self {
        let bus = SecureBus::start().await;
        let sim = access_cluster().await;
        let creds = TestCredentials::new(&sim).await;
        let dir = tempfile::tempdir().unwrap();
        let signer = SigningKey::generate();
        let trusted = write_public_key(dir.path(), &signer);
        let secrets = WebhookSecrets {
            distribution: "Bearer dist-token-7f3a9c".into(),
            harbor: "Basic cm9ib3QkY2k6czNjcmV0".into(),
            ghcr: "It's a Secret to Everybody".into(),
        };
        let callers = callers(&sim, &creds).await;
        let fleet = Fleet::start(dir.path(), &bus, &sim, &creds, &secrets, &trusted);
        Self {
            bus,
            creds,
            signer,
            secrets,
            callers,
            fleet,
            _sim: sim,
            _dir: dir,
        }
    }

    /// One task per edge (and per TLS port), each feeding `tally`.
    async fn spawn_barrages(&self, seed: u64, tally: &Arc<Tally>) -> JoinSet<()> {
        let mut barrages = JoinSet::new();
        let (callers, tls) = (&self.callers, self.creds.tls());
        type Make = fn(&mut Seeded, usize, &Callers) -> GrpcInput;
        let grpc: [(&'static str, SocketAddr, usize, Make); 2] = [
            (
                "intake-grpc",
                self.fleet.intake.addr("grpc="),
                INTAKE_GRPC,
                intake_input,
            ),
            (
                "collector-grpc",
                self.fleet.collector.addr("grpc="),
                COLLECTOR_GRPC,
                collector_input,
            ),
        ];
        for (edge, addr, n, make) in grpc {
            let inputs = generate(seed, edge, n, |r, i| make(r, i, callers));
            let channel = self.creds.channel(addr).await;
            barrages.spawn(barrage(
                tally.clone(),
                edge,
                inputs,
                move |i: Arc<GrpcInput>| {
                    let channel = channel.clone();
                    async move {
                        call(
                            &channel,
                            i.method,
                            i.streaming,
                            i.message.clone(),
                            &i.credential,
                        )
                        .await
                    }
                },
            ));
        }
        let webhooks = generate(seed, "intake-webhooks", WEBHOOKS, |r, i| {
            webhook_input(r, i, &self.secrets)
        });
        let queries = generate(seed, "collector-http", COLLECTOR_HTTP, |r, i| {
            collector_http_input(r, i, &callers.operator, &callers.stranger, &callers.real)
        });
        for (edge, addr, inputs) in [
            ("intake-webhooks", self.fleet.intake.addr("http="), webhooks),
            (
                "collector-http",
                self.fleet.collector.addr("http="),
                queries,
            ),
        ] {
            let tls = tls.clone();
            barrages.spawn(barrage(
                tally.clone(),
                edge,
                inputs,
                move |i: Arc<HttpInput>| {
                    let tls = tls.clone();
                    async move { i.send(addr, &tls).await }
                },
            ));
        }
        let foreign =
            tls.with_identity(TestCa::new("someone-else").client("ci-pipeline", "example"));
        for (edge, addr, alpn) in self.fleet.ports() {
            let bytes: Vec<PortBytes> = generate(seed, edge, PER_PORT, port_bytes);
            let (tally, foreign) = (tally.clone(), foreign.clone());
            barrages.spawn(async move {
                barrage(tally.clone(), edge, bytes, move |i| async move {
                    send_bytes(addr, &i).await
                })
                .await;
                let certs = vec![ForeignCertificate { alpn }; FOREIGN_CERTIFICATES_PER_PORT];
                barrage(tally, edge, certs, move |c| {
                    let foreign = foreign.clone();
                    async move { present_certificate(addr, &foreign, c.alpn).await }
                })
                .await;
            });
        }
        barrages
    }

    /// No process panicked or stopped, and each serves a legitimate
    /// request: a Submit (queued: the intent stream moves by one), a
    /// webhook delivery, a signed result stored and read back, a probe.
    async fn assert_still_served(&mut self, seed: u64, queued_before: u64) {
        for (name, log) in &self.fleet.logs {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            assert!(!text.contains("panicked"), "{name} panicked:\n{text}");
        }
        let fleet = &mut self.fleet;
        assert!(fleet.intake.running() && fleet.collector.running() && fleet.worker.running());
        let (creds, tls) = (&self.creds, self.creds.tls());
        let mut intake = creds.intake(fleet.intake.addr("grpc=")).await;
        let legit = valid_submit(&mut Seeded::for_input(seed, "legit", 0));
        let accepted = intake.submit(legit).await;
        assert!(
            accepted.is_ok(),
            "intake refused a legitimate Submit: {accepted:?}"
        );
        assert_eq!(intents_last_sequence(&self.bus).await, queued_before + 1);
        let auth = (
            "Authorization".into(),
            self.secrets.distribution.clone().into_bytes(),
        );
        let body = fixture("distribution_single_push.json");
        let hook = "/v1/webhooks/distribution";
        let delivery = https_request(
            fleet.intake.addr("http="),
            &tls,
            "POST",
            hook,
            None,
            &[auth],
            &body,
        )
        .await
        .expect("a webhook answer");
        assert_eq!(delivery.status, 200, "{}", delivery.text());

        let signed = result(&self.signer, "01JABCDEFGHJKMNPQRSTVWXYZ0", "apps");
        let event = inline_event(&signed);
        publish(
            &self.bus.admin().await,
            "apps",
            &signed.scan_id,
            Default::default(),
            event,
        )
        .await;
        let results = creds.results(fleet.collector.addr("grpc=")).await;
        eventually("the collector stores a legitimate result", || {
            let (mut results, scan_id) = (results.clone(), signed.scan_id.clone());
            async move { results.get(GetResultRequest { scan_id }).await.is_ok() }
        })
        .await;
        let path = format!("/v1/results/{}", signed.scan_id);
        let read = https_get(
            fleet.collector.addr("http="),
            &tls,
            &path,
            Some(creds.operator()),
        )
        .await;
        assert_eq!(read.status, 200, "{}", read.text());
        let probe = https_get(fleet.worker.addr("http="), &tls, "/healthz", None).await;
        assert_eq!(probe.status, 200, "{}", probe.text());
    }

    /// For a failure message: why the servers closed connections
    /// themselves (header and idle timeouts, evictions, handshakes).
    async fn closed_by_server(&self) -> String {
        let mut out = String::new();
        for addr in [
            self.fleet.intake.addr("http="),
            self.fleet.collector.addr("http="),
        ] {
            let tls = self.creds.tls();
            let metrics = https_get(addr, &tls, "/metrics", None).await.text();
            for line in metrics
                .lines()
                .filter(|l| l.contains("closed_by_server_total{"))
            {
                out.push_str(&format!("  {line}\n"));
            }
        }
        out
    }

    /// The control for the foreign-CA inputs: the same handshake with a
    /// certificate of the listeners' own CA is served.
    async fn assert_own_certificates_served(&self) {
        let ours = self
            .creds
            .tls()
            .with_identity(self.creds.pki.ca.client("ci-pipeline", "example"));
        for (edge, addr, alpn) in self.fleet.ports() {
            let answer = present_certificate(addr, &ours, alpn).await;
            assert!(
                matches!(&answer, Answer::Other(m) if m.starts_with("served")),
                "{edge} refused a certificate of its own CA: {answer:?}"
            );
        }
    }

    /// A server certificate rotated on disk is served by every listener
    /// of every process, without a restart.
    async fn assert_rotation_served(&self) {
        let cn = format!("CN={}", self.creds.pki.rotate_server_certificate());
        for (edge, addr, alpn) in self.fleet.ports() {
            let deadline = Instant::now() + Duration::from_secs(15);
            loop {
                let now = presented(addr, &self.creds, alpn).await;
                if now == cn {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "{edge} still presents {now:?}, not {cn}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_edge_refuses_ten_thousand_hostile_inputs() {
    let seed = run_seed();
    eprintln!("hostile-input seed {seed:#x} (rerun with HOSTILE_SEED={seed:#x})");
    let mut bench = Bench::start().await;
    let queued_before = intents_last_sequence(&bench.bus).await;
    let collector_grpc = bench.fleet.collector.addr("grpc=");
    assert_eq!(stored_results(&bench.creds, collector_grpc).await, 0);

    let tally = Arc::new(Tally::new(seed));
    let started = Instant::now();
    let mut barrages = bench.spawn_barrages(seed, &tally).await;
    while let Some(done) = barrages.join_next().await {
        done.expect("a barrage task");
    }
    let barrage_time = started.elapsed();
    let report = tally.report();
    eprintln!("{report}\nbarrage time {barrage_time:.1?}");
    let failures = tally.failures();
    assert!(
        failures.is_empty(),
        "{} inputs were not refused properly (seed {seed:#x}):\n{}\nconnections the servers closed:\n{}\nthe first ones:\n{}",
        failures.len(),
        tally.failure_summary(),
        bench.closed_by_server().await,
        failures
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        tally.total() >= 10_000,
        "only {} inputs",
        thousands(tally.total())
    );
    assert_eq!(
        intents_last_sequence(&bench.bus).await,
        queued_before,
        "a refused input was queued"
    );
    assert_eq!(
        stored_results(&bench.creds, collector_grpc).await,
        0,
        "a refused input was stored"
    );

    bench.assert_still_served(seed, queued_before).await;
    bench.assert_own_certificates_served().await;
    bench.assert_rotation_served().await;
    eprintln!(
        "hostile-input suite: {} inputs in {barrage_time:.1?} ({} rate-limited), whole test {:.1?}",
        thousands(tally.total()),
        tally.limited(),
        started.elapsed()
    );
}
