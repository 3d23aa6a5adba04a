//! `scanfleet-intake`: the front door of the fleet.
//!
//! Three sources turn into scan intents on the `SCAN_INTENTS` stream:
//!
//! - the gRPC `Intake` API ([`intake_api`]): explicit `k8s://NS/POD/CONTAINER`
//!   targets or label selectors, validated by `scanfleet-scan-intents`,
//!   high priority; a full queue answers `RESOURCE_EXHAUSTED`;
//! - registry webhooks ([`registry_webhooks`], HTTP): Distribution, Harbor
//!   and GHCR pushes parsed by `scanfleet-registry-events`, matched to the
//!   containers running the pushed digest ([`push_matching`]), or watched
//!   for the first pod that starts with it ([`push_watches`]); a full queue
//!   answers 429 with `Retry-After`;
//! - the scheduler ([`periodic_scans`]): configured schedules expanded to
//!   running containers, low priority, at most one queued intent per
//!   (container, image digest, profile version).
//!
//! What it is not: a scanner (workers scan) or a store of results. It holds
//! no state beyond the pod cache and the push watches; the stream is the
//! queue. Main types: [`config::Config`], [`EmbeddedIntake`],
//! [`intake_api::IntakeService`], [`push_matching::PushMatcher`],
//! [`periodic_scans::PeriodicScans`].

pub mod config;
pub mod container_intents;
pub mod intake_api;
pub mod metrics;
pub mod periodic_scans;
pub mod pod_directory;
pub mod push_matching;
pub mod push_watches;
pub mod queueing;
pub mod registry_webhooks;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use scanfleet_bus::{IntentQueue, ScanStatusBook, TopologyConfig};
use scanfleet_contracts::v1::intake_server::IntakeServer;
use tokio::sync::{mpsc, watch};

use crate::config::Config;
use crate::container_intents::ContainerIntents;
use crate::metrics::Metrics;

/// Where a running intake serves.
#[derive(Debug, Clone, Copy)]
pub struct Listening {
    /// The gRPC `Intake` API.
    pub grpc: SocketAddr,
    /// Webhooks, health and metrics, when `--http-listen` is set.
    pub http: Option<SocketAddr>,
}

/// Runs intake until `shutdown` flips to true, calling `ready` with the
/// bound addresses once it serves. Every task (pod watch, push watches,
/// scheduler, HTTP, gRPC) stops on the same signal.
///
/// # Errors
/// Start-up failures and a failing server.
pub async fn run_with_ready(
    config: Config,
    mut shutdown: watch::Receiver<bool>,
    ready: impl FnOnce(Listening),
) -> Result<()> {
    let client = scanfleet_bus::connect(&config.nats, "scanfleet-intake").await?;
    let js = async_nats::jetstream::new(client.clone());
    TopologyConfig {
        replicas: config.stream_replicas,
        ..Default::default()
    }
    .ensure(&js)
    .await?;
    let metrics = Arc::new(Metrics::default());
    let mut tasks = tokio::task::JoinSet::new();
    let (started_tx, started_rx) = match &config.webhooks {
        Some(_) => {
            let (tx, rx) = mpsc::channel(1024);
            (Some(tx), Some(rx))
        }
        None => (None, None),
    };
    let directory = match &config.kubeconfig {
        Some(path) => {
            let kube = scanfleet_kube_access::client_from_kubeconfig_file(path).await?;
            let (directory, _watch) =
                pod_directory::PodDirectory::start(kube, shutdown.clone(), started_tx)
                    .await
                    .map_err(|e| anyhow::anyhow!("pod directory: {e}"))?;
            Some(directory)
        }
        None => None,
    };
    let intents = ContainerIntents::new(
        queueing::IntentQueueing::new(
            IntentQueue::new(js.clone()),
            ScanStatusBook::open(&js).await?,
        ),
        config.cluster.clone(),
        config.default_timeout,
    );
    let matcher = match (&config.webhooks, &directory, started_rx) {
        (Some(w), Some(d), Some(rx)) => {
            let matcher = push_matching::PushMatcher::new(
                d.clone(),
                intents.clone(),
                w.profile.clone(),
                w.watch_limits,
                metrics.clone(),
            );
            tasks.spawn(matcher.clone().run(rx, shutdown.clone()));
            Some(matcher)
        }
        _ => None,
    };
    if let (Some(s), Some(d)) = (&config.scheduler, &directory)
        && !s.scans.is_empty()
    {
        let periodic = periodic_scans::PeriodicScans::new(
            s.scans.clone(),
            d.clone(),
            intents.clone(),
            metrics.clone(),
        );
        tasks.spawn(periodic.run(s.seed, shutdown.clone()));
    }
    let http = match config.http_listen {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding HTTP {addr}"))?;
            let bound = listener.local_addr()?;
            let state = registry_webhooks::HttpState {
                endpoints: Arc::new(
                    config
                        .webhooks
                        .iter()
                        .flat_map(|w| w.routes.clone())
                        .collect(),
                ),
                matcher,
                metrics: metrics.clone(),
                retry_after: config
                    .webhooks
                    .as_ref()
                    .map_or(std::time::Duration::from_secs(30), |w| w.retry_after),
            };
            let mut stop = shutdown.clone();
            tasks.spawn(async move {
                let served = axum::serve(listener, registry_webhooks::router(state))
                    .with_graceful_shutdown(async move {
                        let _ = stop.wait_for(|s| *s).await;
                    })
                    .await;
                if let Err(e) = served {
                    tracing::error!(error = %e, "HTTP server stopped");
                }
            });
            Some(bound)
        }
        None => None,
    };
    // Intake owns moving dead intents into SCAN_DLQ: every replica runs a
    // forwarder on the one durable advisory consumer, so each advisory is
    // handled once however many replicas run (ARCHITECTURE.md, dead letters).
    let forwarder_status = ScanStatusBook::open(&js).await?;
    let forwarder_js = js.clone();
    let mut stop = shutdown.clone();
    tasks.spawn(async move {
        let stopped = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        if let Err(e) =
            scanfleet_bus::forward_dead_letters(forwarder_js, Some(forwarder_status), stopped).await
        {
            tracing::error!(error = %e, "dead-letter forwarder stopped");
        }
    });
    let service = intake_api::IntakeService::new(js, config.clone(), directory).await?;
    let listener = tokio::net::TcpListener::bind(config.grpc_listen)
        .await
        .with_context(|| format!("binding gRPC {}", config.grpc_listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(grpc = %addr, http = ?http, cluster = config.cluster.as_str(), "intake serving");
    ready(Listening { grpc: addr, http });
    let served = tonic::transport::Server::builder()
        .add_service(IntakeServer::new(service))
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::TcpListenerStream::new(listener),
            async move {
                let _ = shutdown.wait_for(|s| *s).await;
            },
        )
        .await
        .context("gRPC server");
    // Every task watches the same signal; wait for them so nothing is left
    // running when this returns.
    while tasks.join_next().await.is_some() {}
    client.flush().await.ok();
    served
}

/// Intake running inside another process (`scanfleet dev`, tests), like
/// the collector's `EmbeddedCollector`.
pub struct EmbeddedIntake {
    /// Where the gRPC API serves.
    pub grpc: SocketAddr,
    /// Where webhooks, health and metrics are served, if configured.
    pub http: Option<SocketAddr>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<()>>,
}

impl EmbeddedIntake {
    /// Starts intake and waits until it serves.
    ///
    /// # Errors
    /// The start-up error when it stops before serving.
    pub async fn start(config: Config) -> Result<Self> {
        let (stop, rx) = watch::channel(false);
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let mut task = tokio::spawn(run_with_ready(config, rx, move |listening| {
            let _ = ready_tx.send(listening);
        }));
        tokio::select! {
            ready = ready_rx => match ready {
                Ok(l) => Ok(Self { grpc: l.grpc, http: l.http, stop, task }),
                Err(_) => Err(anyhow::anyhow!("intake stopped before serving")),
            },
            result = &mut task => Err(match result {
                Err(e) => anyhow::anyhow!("intake panicked: {e}"),
                Ok(Err(e)) => e,
                Ok(Ok(())) => anyhow::anyhow!("intake exited before serving"),
            }),
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
            .map_err(|e| anyhow::anyhow!("intake panicked: {e}"))?
    }
}
