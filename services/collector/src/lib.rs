//! `scanfleet-collector`: the only writer of scan results.
//!
//! It consumes `SCAN_RESULTS`, decrypts when needed, verifies every DSSE
//! envelope against its trusted keys, stores verified results idempotently
//! (SQLite or PostgreSQL), quarantines everything else with a reason, and
//! serves results over gRPC (`Results`) and an HTTP JSON API that also hands
//! out the exact envelope and HDF report for independent verification.
//!
//! Readers are admitted and authorized by the gatekeeper
//! (`scanfleet-edge-access`): `get`/`list`/`watch` on
//! `results.scanfleet.dev` in the result's namespace ([`result_access`]).
//! With `require_encryption`, plaintext events are quarantined and reports
//! are kept encrypted at rest ([`reports_at_rest`]).
//!
//! Layout: [`ingest`] (verification, no IO), [`result_consumer`] (bus to
//! store), [`result_access`] (who may read what), [`results_api`] (gRPC)
//! with [`result_wire`] (its conversions), [`http_api`], the browser
//! [`dashboard`] at `/ui`, [`metrics`],
//! [`config`]; [`drift`] compares an image's and a container's reports
//! and [`drift_recording`] keeps the outcome as results are stored.

pub mod config;
pub mod dashboard;
pub use scanfleet_scan_engine::drift;
pub mod drift_recording;
pub mod finding_metrics;
pub mod http_api;
pub mod ingest;
pub mod metrics;
pub mod reports_at_rest;
pub mod result_access;
pub mod result_consumer;
pub mod result_wire;
pub mod results_api;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use scanfleet_bus::BusIdentity;
use scanfleet_contracts::v1::results_server::ResultsServer;
use scanfleet_process_lifecycle::{
    CriticalTasks, Listener, LogFormat, Service, serve_grpc, serve_http,
};
use scanfleet_result_store::ResultStore;
use tokio::sync::{broadcast, watch};

use crate::config::{Args, Config};
use crate::reports_at_rest::ReportsAtRest;
use crate::result_access::ResultReader;

/// Runs the collector until `shutdown` flips to true. Exits with an error if
/// any critical task dies, so the orchestrator restarts the process.
///
/// # Errors
/// Start-up failures and the first critical task failure.
pub async fn run(config: Config, shutdown: watch::Receiver<bool>) -> Result<()> {
    run_with_ready(config, shutdown, |_| {}).await
}

/// The bound addresses, once the collector serves.
#[derive(Clone, Copy, Debug)]
pub struct Listening {
    /// gRPC `Results`.
    pub grpc: std::net::SocketAddr,
    /// HTTP API.
    pub http: std::net::SocketAddr,
}

/// The "listening" line's tail, which scripts and tests parse.
impl std::fmt::Display for Listening {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "grpc={} http={}", self.grpc, self.http)
    }
}

impl Service for Config {
    const NAME: &'static str = "scanfleet-collector";
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

/// Deletes results older than `retention`, hourly, until shutdown.
async fn retention_passes(
    store: Arc<ResultStore>,
    retention: Duration,
    mut shutdown: watch::Receiver<bool>,
) -> Result<()> {
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tokio::select! {
            _ = shutdown.wait_for(|s| *s) => return Ok(()),
            _ = tick.tick() => {}
        }
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as i64;
        let cutoff = now - retention.as_millis() as i64;
        match store.delete_finished_before(cutoff).await {
            Ok(n) if n > 0 => tracing::info!(deleted = n, "retention pass"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "retention pass failed; will retry"),
        }
    }
}

/// The gRPC and HTTP listeners, with the configured limits and TLS.
async fn bind_listeners(
    config: &Config,
    metrics: &metrics::Metrics,
) -> Result<(Listener, Listener)> {
    let grpc = Listener::bind(
        "grpc",
        config.grpc_listen,
        config.serving,
        &config.security,
        metrics.connections.listener("grpc"),
    )
    .await
    .with_context(|| format!("binding gRPC {}", config.grpc_listen))?;
    let http = Listener::bind(
        "http",
        config.http_listen,
        config.serving,
        &config.security,
        metrics.connections.listener("http"),
    )
    .await
    .with_context(|| format!("binding HTTP {}", config.http_listen))?;
    Ok((grpc, http))
}

/// [`run`], calling `ready` with the bound addresses once both listeners are
/// up (for in-process embedding, e.g. `scanfleet dev` and tests).
///
/// # Errors
/// As [`run`].
pub async fn run_with_ready(
    config: Config,
    shutdown: watch::Receiver<bool>,
    ready: impl FnOnce(Listening),
) -> Result<()> {
    let client = scanfleet_bus::connect(&config.nats, BusIdentity::Collector).await?;
    let js = async_nats::jetstream::new(client.clone());
    scanfleet_bus::check_topology(&js, BusIdentity::Collector).await?;
    let store = Arc::new(
        ResultStore::connect(&config.store_url)
            .await
            .context("opening the result store")?,
    );
    let metrics = Arc::new(metrics::Metrics::new(config.max_finding_workloads));
    metrics
        .findings
        .show_stored(&store)
        .await
        .context("reading stored results for the finding metrics")?;
    let (persisted, _) = broadcast::channel(1024);
    let (grpc_listener, http_listener) = bind_listeners(&config, &metrics).await?;
    let ingestor = Arc::new(
        ingest::Ingestor::new(
            config.trusted.clone(),
            config.identities,
            config.max_event_bytes,
        )
        .requiring_encryption(config.require_encryption),
    );
    let at_rest = ReportsAtRest::new(ingestor.clone(), config.require_encryption);
    // The collector is not tied to one cluster of the fleet, so its reader
    // reviews have the edge's own throttle, not a cluster's fleet budget.
    let gate = scanfleet_edge_access::cluster_gatekeeper(&config.access, None, None)
        .await
        .context("the identity that reviews readers")?;
    let reader = Arc::new(ResultReader {
        store: store.clone(),
        gate: Arc::new(gate),
        at_rest: at_rest.clone(),
    });
    let listening = Listening {
        grpc: grpc_listener.local_addr(),
        http: http_listener.local_addr(),
    };
    tracing::info!(grpc = %listening.grpc, http = %listening.http, store = store.backend(), "collector serving");
    ready(listening);

    let mut tasks = CriticalTasks::new(shutdown.clone());
    let consumer = result_consumer::ResultConsumer {
        js: js.clone(),
        store: store.clone(),
        ingestor,
        drift: drift_recording::DriftRecorder {
            store: store.clone(),
            at_rest: at_rest.clone(),
        },
        at_rest,
        metrics: metrics.clone(),
        persisted: persisted.clone(),
    };
    let stop = scanfleet_process_lifecycle::serving::stopped(shutdown.clone());
    tasks.spawn("result-consumer", async move { consumer.run(stop).await });
    let service = results_api::ResultsService {
        reader: reader.clone(),
        persisted: persisted.clone(),
    };
    let routes = tonic::service::Routes::new(ResultsServer::new(service));
    tasks.spawn("grpc", serve_grpc(grpc_listener, routes, shutdown.clone()));
    let router = http_api::router(http_api::HttpState {
        reader: reader.clone(),
        metrics: metrics.clone(),
    })
    .merge(dashboard::router(reader, config.dashboard));
    tasks.spawn("http", serve_http(http_listener, router, shutdown.clone()));
    if let Some(retention) = config.retention {
        tasks.spawn(
            "retention",
            retention_passes(store, retention, shutdown.clone()),
        );
    }
    let result = tasks.supervise().await;
    client.flush().await.ok();
    result
}

/// A collector running inside another process (`scanfleet dev`, tests).
pub struct EmbeddedCollector {
    /// Where it serves.
    pub listening: Listening,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<()>>,
}

impl EmbeddedCollector {
    /// Starts a collector task and waits until it serves.
    ///
    /// # Errors
    /// When it fails to start.
    pub async fn start(config: Config) -> Result<Self> {
        let (stop, rx) = watch::channel(false);
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let mut task = tokio::spawn(run_with_ready(config, rx, move |l| {
            let _ = ready_tx.send(l);
        }));
        let why = |result: Result<Result<()>, tokio::task::JoinError>| match result {
            Err(e) => anyhow::anyhow!("collector panicked: {e}"),
            Ok(Err(e)) => e,
            Ok(Ok(())) => anyhow::anyhow!("collector exited before serving"),
        };
        tokio::select! {
            listening = ready_rx => match listening {
                Ok(listening) => Ok(Self { listening, stop, task }),
                // The task ended before it was ready: say why it did.
                Err(_) => Err(why(task.await)),
            },
            result = &mut task => Err(why(result)),
        }
    }

    /// Stops it and waits for a clean exit.
    ///
    /// # Errors
    /// When it stopped with an error.
    pub async fn shutdown(self) -> Result<()> {
        let _ = self.stop.send(true);
        self.task
            .await
            .map_err(|e| anyhow::anyhow!("collector panicked: {e}"))?
    }
}
