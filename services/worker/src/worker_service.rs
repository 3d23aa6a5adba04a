//! The worker process's wiring: the only place that knows the bus, the
//! cluster and the HTTP edge at once.
//!
//! Tasks: the intent loop (critical), the health/metrics server (critical),
//! and the sweeper that removes identities crashed workers left behind. If a
//! critical task ends outside shutdown, the worker exits so its orchestrator
//! restarts it; a worker holds no state worth keeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use scanfleet_bus::{ApiBudgetBook, BusIdentity, ScanStatusBook};
use scanfleet_kube_access::{ApiThrottle, ClusterAccess};
use scanfleet_process_lifecycle::{CriticalTasks, Listener, LogFormat, Service, serve_http};
use scanfleet_scan_intents::ClusterName;
use scanfleet_scan_session::sweep_expired;
use tokio::sync::watch;

use crate::config::{Args, Config};
use crate::image_scanner::ImageScanner;
use crate::intent_loop::{IntentLoop, Lane, LoopConfig};
use crate::kube_scanner::KubeScanner;
use crate::metrics::{LONGEST_DEADLINE, WorkerMetrics};
use crate::registry_logins::RegistryLogins;
use crate::result_publisher::ResultPublisher;
use crate::served_clusters::ServedCluster;
use scanfleet_fleet_budget::FleetBudget;

/// The bound address, once the worker serves.
#[derive(Clone, Copy, Debug)]
pub struct Listening {
    /// Health, readiness and metrics.
    pub http: std::net::SocketAddr,
}

/// The "listening" line's tail, which scripts and tests parse.
impl std::fmt::Display for Listening {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "http={}", self.http)
    }
}

impl Service for Config {
    const NAME: &'static str = "scanfleet-worker";
    type Args = Args;
    type Listening = Listening;

    fn configure(args: Args) -> Result<Self, Vec<String>> {
        Config::from_args(args)
    }

    fn log_format(&self) -> LogFormat {
        self.log_format
    }

    async fn run(
        self,
        shutdown: watch::Receiver<bool>,
        ready: impl FnOnce(Listening) + Send + 'static,
    ) -> Result<()> {
        run_with_ready(self, shutdown, ready).await
    }
}

#[derive(Clone)]
struct HttpState {
    metrics: Arc<WorkerMetrics>,
    ready: Arc<AtomicBool>,
    nats: async_nats::Client,
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(s): State<HttpState>) -> (StatusCode, &'static str) {
    let connected = s.nats.connection_state() == async_nats::connection::State::Connected;
    if s.ready.load(Ordering::Relaxed) && connected {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
    }
}

async fn metrics_text(State(s): State<HttpState>, request: axum::http::HeaderMap) -> Response {
    scanfleet_process_lifecycle::metrics::response(s.metrics.registry(), &request)
}

/// Runs the worker until `shutdown` flips to true.
///
/// # Errors
/// Start-up failures and the first critical task failure.
pub async fn run(config: Config, shutdown: watch::Receiver<bool>) -> Result<()> {
    run_with_ready(config, shutdown, |_| {}).await
}

/// One served cluster, connected: every call of the worker's own identity
/// there takes a permit of the cluster's fleet budget, then passes this
/// process's smoother.
struct ConnectedCluster {
    served: ServedCluster,
    budget: FleetBudget,
    throttle: ApiThrottle,
    admin: ClusterAccess,
}

async fn connect_cluster(served: ServedCluster, book: &ApiBudgetBook) -> Result<ConnectedCluster> {
    let limits = served.budget.limits;
    if f64::from(limits.burst) - limits.qps * limits.in_flight.as_secs_f64() < 1.0 {
        tracing::warn!(
            cluster = %served.name,
            qps = limits.qps,
            burst = limits.burst,
            "kube.burst is too small to hold back qps x (lease time + delivery) for calls in flight; \
             the API server may see a little more than burst + qps per second (raise kube.burst)"
        );
    }
    let budget = FleetBudget::new(book.clone(), served.name.as_str(), served.budget);
    let throttle =
        ApiThrottle::under_fleet_budget(served.throttle.clone(), Arc::new(budget.clone()))?;
    let admin = served
        .reach
        .connect(throttle.clone())
        .await
        .with_context(|| format!("cluster {}", served.name))?;
    Ok(ConnectedCluster {
        served,
        budget,
        throttle,
        admin,
    })
}

/// The scanner of one cluster's lane.
fn kube_scanner(config: &Config, cluster: &ConnectedCluster) -> Lane<KubeScanner> {
    let mut scanner = KubeScanner::new(
        cluster.admin.clone(),
        cluster.served.session.clone(),
        cluster.served.name.clone(),
        config.profiles.clone(),
        config.thresholds.clone(),
        config.worker_id.clone(),
        config.default_timeout,
    );
    scanner.locked_inputs = config.locked_inputs.clone();
    let mut images = config.images.clone();
    if let Some(secret) = images.pull_secret.clone() {
        images.logins = RegistryLogins::Secret {
            access: cluster.admin.clone(),
            secret,
        };
    }
    scanner.images = ImageScanner::new(images);
    Lane {
        cluster: cluster.served.name.clone(),
        scanner: Arc::new(scanner),
    }
}

/// The intent loop with a lane per cluster and the publisher.
fn intent_loop(
    config: Config,
    lanes: Vec<Lane<KubeScanner>>,
    client: &async_nats::Client,
    js: &async_nats::jetstream::Context,
    status: ScanStatusBook,
    metrics: Arc<WorkerMetrics>,
) -> IntentLoop<KubeScanner> {
    let publisher = Arc::new(ResultPublisher::new(
        client,
        config.signing_key,
        config.recipients.clone(),
    ));
    IntentLoop {
        client: client.clone(),
        js: js.clone(),
        lanes,
        publisher,
        metrics,
        status: Some(status),
        config: LoopConfig {
            concurrency: config.concurrency,
            drain_grace: config.drain_grace,
            progress_interval: config.progress_interval,
            idle_poll: config.idle_poll,
            ..LoopConfig::default()
        },
    }
}

/// Removes scan identities that crashed workers left behind, every
/// `every`, until shutdown. Not critical: a failed pass retries.
fn spawn_sweeper(
    cluster: ClusterName,
    admin: ClusterAccess,
    every: Duration,
    metrics: Arc<WorkerMetrics>,
    mut shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every.max(Duration::from_secs(1)));
        loop {
            tokio::select! {
                _ = shutdown.wait_for(|s| *s) => return,
                _ = tick.tick() => {}
            }
            match sweep_expired(&admin, jiff::Timestamp::now()).await {
                Ok(n) => {
                    if n > 0 {
                        tracing::info!(removed = n, %cluster, "sweeper removed expired scan identities");
                    }
                    metrics.identities_swept.add(n as u64);
                    metrics.sweeps.add(1);
                }
                Err(e) => tracing::warn!(error = %e, %cluster, "sweeper pass failed; will retry"),
            }
        }
    })
}

/// [`run`], calling `ready` once the HTTP endpoint is bound.
///
/// # Errors
/// As [`run`].
pub async fn run_with_ready(
    config: Config,
    shutdown: watch::Receiver<bool>,
    ready: impl FnOnce(Listening),
) -> Result<()> {
    let client = scanfleet_bus::connect(&config.nats, BusIdentity::Worker).await?;
    let js = async_nats::jetstream::new(client.clone());
    scanfleet_bus::check_topology(&js, BusIdentity::Worker).await?;
    let names: Vec<ClusterName> = config.clusters.iter().map(|c| c.name.clone()).collect();
    scanfleet_bus::check_cluster_consumers(&js, &names).await?;
    let status = ScanStatusBook::open(&js).await?;
    let book = ApiBudgetBook::open(&js).await?;
    let mut clusters = Vec::new();
    for served in config.clusters.clone() {
        clusters.push(connect_cluster(served, &book).await?);
    }
    let longest = config.default_timeout.max(LONGEST_DEADLINE);
    let metrics = Arc::new(
        WorkerMetrics::with_longest_deadline(longest).with_clusters(
            clusters
                .iter()
                .map(|c| (c.throttle.clone(), c.budget.clone()))
                .collect(),
        ),
    );
    let listener = Listener::bind(
        "http",
        config.http_listen,
        config.serving,
        &config.security,
        metrics.connections.listener("http"),
    )
    .await
    .with_context(|| format!("binding HTTP {}", config.http_listen))?;
    let listening = Listening {
        http: listener.local_addr(),
    };
    let is_ready = Arc::new(AtomicBool::new(false));
    let router = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(HttpState {
            metrics: metrics.clone(),
            ready: is_ready.clone(),
            nats: client.clone(),
        });
    let served = names
        .iter()
        .map(ClusterName::as_str)
        .collect::<Vec<_>>()
        .join(",");
    tracing::info!(http = %listening.http, worker = %config.worker_id, clusters = %served, "worker serving");
    ready(listening);

    // The loop drains for up to drain_grace on shutdown; give it that.
    let mut tasks = CriticalTasks::new(shutdown.clone())
        .with_drain_grace(config.drain_grace + Duration::from_secs(5));
    // One sweeper per cluster, each with that cluster's identity.
    let sweepers: Vec<_> = clusters
        .iter()
        .map(|c| {
            spawn_sweeper(
                c.served.name.clone(),
                c.admin.clone(),
                config.sweep_interval,
                metrics.clone(),
                shutdown.clone(),
            )
        })
        .collect();
    let lanes = clusters.iter().map(|c| kube_scanner(&config, c)).collect();
    let intents = intent_loop(config, lanes, &client, &js, status, metrics);
    is_ready.store(true, Ordering::Relaxed);
    let rx = shutdown.clone();
    tasks.spawn("intent-loop", async move { intents.run(rx).await });
    tasks.spawn("http", serve_http(listener, router, shutdown.clone()));
    let result = tasks.supervise().await;
    is_ready.store(false, Ordering::Relaxed);
    for sweeper in sweepers {
        sweeper.abort();
    }
    client.flush().await.ok();
    result
}
