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
use axum::routing::get;
use scanfleet_bus::{ScanStatusBook, TopologyConfig};
use scanfleet_kube_access::{ApiThrottle, ClusterAccess};
use scanfleet_scan_session::sweep_expired;
use tokio::sync::watch;

use crate::config::Config;
use crate::intent_loop::{IntentLoop, LoopConfig};
use crate::kube_scanner::KubeScanner;
use crate::metrics::WorkerMetrics;
use crate::result_publisher::ResultPublisher;

/// The bound address, once the worker serves.
#[derive(Clone, Copy, Debug)]
pub struct Listening {
    /// Health, readiness and metrics.
    pub http: std::net::SocketAddr,
}

#[derive(Clone)]
struct HttpState {
    metrics: Arc<WorkerMetrics>,
    throttle: ApiThrottle,
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

async fn metrics_text(State(s): State<HttpState>) -> String {
    let mut out = s.metrics.render();
    let t = s.throttle.stats();
    use std::fmt::Write as _;
    let _ = write!(
        out,
        "# HELP scanfleet_worker_kube_requests_total Kubernetes API attempts (retries included).\n\
         # TYPE scanfleet_worker_kube_requests_total counter\nscanfleet_worker_kube_requests_total {}\n\
         # HELP scanfleet_worker_kube_throttle_wait_seconds_total Time calls waited for the per-cluster limiter.\n\
         # TYPE scanfleet_worker_kube_throttle_wait_seconds_total counter\nscanfleet_worker_kube_throttle_wait_seconds_total {:.6}\n\
         # HELP scanfleet_worker_kube_retry_sleep_seconds_total Time spent in Retry-After and backoff sleeps.\n\
         # TYPE scanfleet_worker_kube_retry_sleep_seconds_total counter\nscanfleet_worker_kube_retry_sleep_seconds_total {:.6}\n\
         # HELP scanfleet_worker_kube_throttled_total 429 answers from the API server.\n\
         # TYPE scanfleet_worker_kube_throttled_total counter\nscanfleet_worker_kube_throttled_total {}\n\
         # HELP scanfleet_worker_kube_retries_total Retries after 5xx, dropped connections or timeouts.\n\
         # TYPE scanfleet_worker_kube_retries_total counter\nscanfleet_worker_kube_retries_total {}\n\
         # HELP scanfleet_worker_kube_gave_up_total Calls that failed after their last retry.\n\
         # TYPE scanfleet_worker_kube_gave_up_total counter\nscanfleet_worker_kube_gave_up_total {}\n",
        t.attempts,
        t.waited.as_secs_f64(),
        t.retry_sleep.as_secs_f64(),
        t.throttled_by_server,
        t.retried_errors,
        t.gave_up,
    );
    out
}

/// Runs the worker until `shutdown` flips to true.
///
/// # Errors
/// Start-up failures and the first critical task failure.
pub async fn run(config: Config, shutdown: watch::Receiver<bool>) -> Result<()> {
    run_with_ready(config, shutdown, |_| {}).await
}

/// [`run`], calling `ready` once the HTTP endpoint is bound.
///
/// # Errors
/// As [`run`].
pub async fn run_with_ready(
    config: Config,
    mut shutdown: watch::Receiver<bool>,
    ready: impl FnOnce(Listening),
) -> Result<()> {
    let client = scanfleet_bus::connect(&config.nats, "scanfleet-worker").await?;
    let js = async_nats::jetstream::new(client.clone());
    TopologyConfig::default().ensure(&js).await?;
    let status = ScanStatusBook::open(&js).await?;
    let throttle = ApiThrottle::new(config.throttle.clone())?;
    let admin = match &config.kubeconfig {
        Some(path) => {
            let text = scanfleet_bus::read_small_file(path, 1 << 20).map_err(anyhow::Error::msg)?;
            ClusterAccess::from_kubeconfig_throttled(
                &text,
                &path.display().to_string(),
                throttle.clone(),
            )
            .await?
        }
        None => ClusterAccess::in_cluster(throttle.clone()).await?,
    };
    let metrics = Arc::new(WorkerMetrics::default());
    let scanner = Arc::new(KubeScanner::new(
        admin.clone(),
        config.session.clone(),
        scanfleet_scan_intents::ClusterName::new(&config.cluster)
            .map_err(|e| anyhow::anyhow!("cluster {:?}: {e}", config.cluster))?,
        config.profiles.clone(),
        config.thresholds.clone(),
        config.worker_id.clone(),
        config.default_timeout,
    ));
    let publisher = Arc::new(ResultPublisher::new(
        &client,
        config.signing_key,
        config.recipients.clone(),
    ));
    let listener = tokio::net::TcpListener::bind(config.http_listen)
        .await
        .with_context(|| format!("binding HTTP {}", config.http_listen))?;
    let listening = Listening {
        http: listener.local_addr()?,
    };
    let is_ready = Arc::new(AtomicBool::new(false));
    let router = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(HttpState {
            metrics: metrics.clone(),
            throttle: throttle.clone(),
            ready: is_ready.clone(),
            nats: client.clone(),
        });
    tracing::info!(http = %listening.http, worker = %config.worker_id, cluster = %config.cluster, "worker serving");
    ready(listening);

    let stop = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let mut tasks = tokio::task::JoinSet::new();
    let intent_loop = IntentLoop {
        client: client.clone(),
        js: js.clone(),
        scanner,
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
    };
    let rx = shutdown.clone();
    is_ready.store(true, Ordering::Relaxed);
    tasks.spawn(async move { intent_loop.run(rx).await.map_err(anyhow::Error::from) });
    let rx = shutdown.clone();
    tasks.spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(stop(rx))
            .await
            .context("HTTP server")
    });
    let mut rx = shutdown.clone();
    let sweep_every = config.sweep_interval;
    let sweeper_admin = admin.clone();
    let sweeper = tokio::spawn(async move {
        let mut tick = tokio::time::interval(sweep_every.max(Duration::from_secs(1)));
        loop {
            tokio::select! {
                _ = rx.wait_for(|s| *s) => return,
                _ = tick.tick() => {}
            }
            match sweep_expired(&sweeper_admin, jiff::Timestamp::now()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(removed = n, "sweeper removed expired scan identities"),
                Err(e) => tracing::warn!(error = %e, "sweeper pass failed; will retry"),
            }
        }
    });

    let first = tasks.join_next().await;
    let stopping = *shutdown.borrow_and_update();
    let result = match first {
        Some(Ok(Ok(()))) if stopping => {
            // The loop drains on shutdown; wait for the other task too.
            while let Some(r) = tasks.join_next().await {
                if let Ok(Err(e)) = r {
                    tracing::warn!(error = %e, "task failed while stopping");
                }
            }
            Ok(())
        }
        Some(Ok(Ok(()))) => Err(anyhow::anyhow!("a critical task stopped unexpectedly")),
        Some(Ok(Err(e))) => Err(e),
        Some(Err(e)) => Err(anyhow::anyhow!("a critical task panicked: {e}")),
        None => Ok(()),
    };
    is_ready.store(false, Ordering::Relaxed);
    sweeper.abort();
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    client.flush().await.ok();
    result
}
