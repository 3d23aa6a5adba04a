//! `scanfleet-intake`: the front door of the fleet.
//!
//! Three sources turn into scan intents on the `SCAN_INTENTS` stream:
//!
//! - the gRPC `Intake` API ([`intake_api`]): explicit `k8s://NS/POD/CONTAINER`
//!   targets or label selectors, validated by `scanfleet-scan-intents`,
//!   high priority; a full queue answers `RESOURCE_EXHAUSTED`;
//! - registry webhooks ([`registry_webhooks`], HTTP): Distribution, Harbor
//!   and GHCR pushes parsed by `scanfleet-registry-events`, matched to the
//!   containers running the pushed digest in every cluster intake reaches
//!   ([`push_matching`]), or watched for the first pod that starts with it
//!   in any of them ([`push_watches`]); a full queue answers 429 with
//!   `Retry-After`;
//! - the scheduler ([`periodic_scans`]): configured schedules expanded to
//!   running containers of every cluster intake reaches (or those a
//!   schedule names), low priority, at most one queued intent per
//!   (cluster, container, image digest, profile version).
//!
//! What it is not: a scanner (workers scan) or a store of results. It holds
//! no state beyond the pod caches (one per reachable cluster,
//! [`pod_directory::PodDirectories`]) and the push watches; the stream is
//! the queue. Main types: [`config::Config`], [`EmbeddedIntake`],
//! [`intake_api::IntakeService`], [`push_matching::PushMatcher`],
//! [`periodic_scans::PeriodicScans`].

pub mod cluster_budgets;
pub mod cluster_queues;
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
pub mod submission_rights;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use scanfleet_bus::{BusIdentity, IntentQueue, ScanStatusBook};
use scanfleet_contracts::v1::intake_server::IntakeServer;
use scanfleet_kube_access::ClusterReach;
use scanfleet_process_lifecycle::{
    CriticalTasks, Listener, LogFormat, Service, TaskHandles, serve_grpc, serve_http,
};
use tokio::sync::{mpsc, watch};

use crate::cluster_budgets::ClusterBudgets;
use crate::config::{Args, Config};
use crate::container_intents::ContainerIntents;
use crate::metrics::Metrics;
use crate::pod_directory::{PodDirectories, PodDirectory, RunningContainer};
use crate::push_matching::PushMatcher;
use crate::queueing::IntentQueueing;

/// Where a running intake serves.
#[derive(Debug, Clone, Copy)]
pub struct Listening {
    /// The gRPC `Intake` API.
    pub grpc: SocketAddr,
    /// Webhooks, health and metrics, when `--http-listen` is set.
    pub http: Option<SocketAddr>,
}

/// The "listening" line's tail, which scripts and tests parse.
impl std::fmt::Display for Listening {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.http {
            Some(http) => write!(f, "grpc={} http={http}", self.grpc),
            None => write!(f, "grpc={}", self.grpc),
        }
    }
}

impl Service for Config {
    const NAME: &'static str = "scanfleet-intake";
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

/// Runs intake until `shutdown` flips to true, calling `ready` with the
/// bound addresses once it serves. Every task (pod watch, push matching,
/// scheduler, HTTP, gRPC) is critical: if one ends outside shutdown, intake
/// stops with an error naming it, rather than run half-alive.
///
/// # Errors
/// Start-up failures and the first critical task failure.
pub async fn run_with_ready(
    config: Config,
    shutdown: watch::Receiver<bool>,
    ready: impl FnOnce(Listening),
) -> Result<()> {
    run_supervised(config, shutdown, |listening, _| ready(listening)).await
}

/// [`run_with_ready`], also handing out the critical tasks' handles (an
/// embedding test can stop one to see intake react as to a crash).
///
/// # Errors
/// As [`run_with_ready`].
pub async fn run_supervised(
    config: Config,
    shutdown: watch::Receiver<bool>,
    ready: impl FnOnce(Listening, TaskHandles),
) -> Result<()> {
    let client = scanfleet_bus::connect(&config.nats, BusIdentity::Intake).await?;
    let js = async_nats::jetstream::new(client.clone());
    scanfleet_bus::check_topology(&js, BusIdentity::Intake).await?;
    let budgets = cluster_budgets::ClusterBudgets::open(&js).await?;
    let metrics = Arc::new(Metrics::default());
    let mut tasks = CriticalTasks::new(shutdown.clone());
    let (started_tx, started) = match &config.webhooks {
        Some(_) => {
            let (tx, rx) = mpsc::channel(1024);
            (Some(tx), Some(rx))
        }
        None => (None, None),
    };
    let directories =
        start_pod_directories(&config, &budgets, started_tx, &shutdown, &mut tasks).await?;
    let status = ScanStatusBook::open(&js).await?;
    let intents = ContainerIntents::new(
        IntentQueueing::new(IntentQueue::new(js.clone()), status.clone()),
        config.cluster.clone(),
        config.default_timeout,
    );
    let matcher = start_push_matching(
        &config,
        &directories,
        started,
        &intents,
        &metrics,
        &shutdown,
        &mut tasks,
    );
    start_schedules(
        &config,
        &directories,
        &intents,
        &metrics,
        &shutdown,
        &mut tasks,
    );
    let http = start_http(&config, matcher, &metrics, &shutdown, &mut tasks).await?;
    start_dead_letters(&js, status, &shutdown, &mut tasks);
    let gate = scanfleet_edge_access::cluster_gatekeeper(
        &config.access,
        config.kubeconfig.as_deref(),
        Some(budgets.permits(config.cluster.as_str())),
    )
    .await
    .context("the identity that reviews callers")?;
    let queues = cluster_queues::ClusterQueues::new(js.clone());
    let watched = config.known_clusters().into_iter().cloned().collect();
    let run = queues.publish_metrics(
        watched,
        metrics.clone(),
        Duration::from_secs(5),
        shutdown.clone(),
    );
    tasks.spawn("cluster-queues", async move {
        run.await;
        Ok::<_, std::convert::Infallible>(())
    });
    let service =
        intake_api::IntakeService::new(js, config.clone(), directories, Arc::new(gate)).await?;
    let listener = Listener::bind(
        "grpc",
        config.grpc_listen,
        config.serving,
        &config.security,
        metrics.connections.listener("grpc"),
    )
    .await
    .with_context(|| format!("binding gRPC {}", config.grpc_listen))?;
    let grpc = listener.local_addr();
    let routes = tonic::service::Routes::new(IntakeServer::new(service));
    tasks.spawn("grpc", serve_grpc(listener, routes, shutdown.clone()));
    tracing::info!(grpc = %grpc, http = ?http, cluster = config.cluster.as_str(), "intake serving");
    ready(Listening { grpc, http }, tasks.handles());
    let result = tasks.supervise().await;
    client.flush().await.ok();
    result
}

/// A pod cache for every cluster of the registry intake can reach: the
/// default one when it has an identity to watch pods with (a kubeconfig,
/// or in a cluster its own ServiceAccount), and each `clusters:` entry
/// with a kubeconfig or `in_cluster`. Label selectors, pushes and
/// schedules all resolve through this one set; each watch is a critical
/// task. With `started`, every cache feeds the pods it sees start to the
/// push watches on that one channel.
///
/// Public so a test can build the scheduler over the very caches intake
/// would, then drive it on a manual clock.
///
/// # Errors
/// The first cluster whose cache could not start, by name.
pub async fn start_pod_directories(
    config: &Config,
    budgets: &ClusterBudgets,
    started: Option<mpsc::Sender<Vec<RunningContainer>>>,
    shutdown: &watch::Receiver<bool>,
    tasks: &mut CriticalTasks,
) -> Result<PodDirectories> {
    let home = (config.kubeconfig.is_some() || config.in_cluster).then(|| {
        let reach = ClusterReach::kubeconfig_or_in_cluster(config.kubeconfig.as_deref());
        (&config.cluster, reach)
    });
    let others = config
        .other_clusters
        .iter()
        .filter_map(|c| Some((&c.name, c.reach.clone()?)));
    let mut directories = Vec::new();
    for (name, reach) in home.into_iter().chain(others) {
        let throttle = budgets
            .throttle(name.as_str())
            .map_err(|e| anyhow::anyhow!("pod directory throttle: {e}"))?;
        let client = reach
            .connect(throttle)
            .await
            .with_context(|| format!("pod directory of cluster {name}"))?
            .client;
        let name = name.clone();
        let (directory, watch) =
            PodDirectory::start(name.clone(), client, shutdown.clone(), started.clone())
                .await
                .map_err(|e| anyhow::anyhow!("pod directory of cluster {name}: {e}"))?;
        tasks.spawn("pod-watch", async move {
            watch
                .await
                .with_context(|| format!("pod watch of cluster {name}"))
        });
        directories.push(directory);
    }
    let directories = PodDirectories::new(directories);
    let watched: Vec<&str> = directories.clusters().map(|c| c.as_str()).collect();
    tracing::info!(clusters = ?watched, "pod caches ready; pushes and schedules match these clusters");
    Ok(directories)
}

/// Push matching, when webhooks are configured (a critical task).
fn start_push_matching(
    config: &Config,
    directories: &PodDirectories,
    started: Option<mpsc::Receiver<Vec<RunningContainer>>>,
    intents: &ContainerIntents,
    metrics: &Arc<Metrics>,
    shutdown: &watch::Receiver<bool>,
    tasks: &mut CriticalTasks,
) -> Option<PushMatcher> {
    let (Some(w), Some(started)) = (&config.webhooks, started) else {
        return None;
    };
    if directories.is_empty() {
        return None;
    }
    let matcher = PushMatcher::new(
        directories.clone(),
        intents.clone(),
        w.profile.clone(),
        w.watch_limits,
        metrics.clone(),
    );
    let run = matcher.clone().run(started, shutdown.clone());
    tasks.spawn("push-matching", async move {
        run.await;
        Ok::<_, std::convert::Infallible>(())
    });
    Some(matcher)
}

/// The scheduler, when schedules are configured (a critical task).
fn start_schedules(
    config: &Config,
    directories: &PodDirectories,
    intents: &ContainerIntents,
    metrics: &Arc<Metrics>,
    shutdown: &watch::Receiver<bool>,
    tasks: &mut CriticalTasks,
) {
    let Some(s) = &config.scheduler else {
        return;
    };
    if s.scans.is_empty() || directories.is_empty() {
        return;
    }
    let periodic = periodic_scans::PeriodicScans::new(
        s.scans.clone(),
        directories.clone(),
        intents.clone(),
        metrics.clone(),
    );
    let run = periodic.run(s.seed, shutdown.clone());
    tasks.spawn("scheduler", async move {
        run.await;
        Ok::<_, std::convert::Infallible>(())
    });
}

/// The dead-letter forwarder (a critical task). Intake owns moving dead
/// intents into `SCAN_DLQ`: every replica runs one on the single durable
/// advisory consumer, so each advisory is handled once however many
/// replicas run (ARCHITECTURE.md, "Dead letters").
fn start_dead_letters(
    js: &async_nats::jetstream::Context,
    status: ScanStatusBook,
    shutdown: &watch::Receiver<bool>,
    tasks: &mut CriticalTasks,
) {
    let mut stop = shutdown.clone();
    let stopped = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    tasks.spawn(
        "dead-letters",
        scanfleet_bus::forward_dead_letters(js.clone(), Some(status), stopped),
    );
}

/// The HTTP edge (webhooks, health, metrics), when `--http-listen` is set.
async fn start_http(
    config: &Config,
    matcher: Option<PushMatcher>,
    metrics: &Arc<Metrics>,
    shutdown: &watch::Receiver<bool>,
    tasks: &mut CriticalTasks,
) -> Result<Option<SocketAddr>> {
    let Some(addr) = config.http_listen else {
        return Ok(None);
    };
    let listener = Listener::bind(
        "http",
        addr,
        config.serving,
        &config.security,
        metrics.connections.listener("http"),
    )
    .await
    .with_context(|| format!("binding HTTP {addr}"))?;
    let bound = listener.local_addr();
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
    let router = registry_webhooks::router(state);
    tasks.spawn("http", serve_http(listener, router, shutdown.clone()));
    Ok(Some(bound))
}

/// Intake running inside another process (`scanfleet dev`, tests), like
/// the collector's `EmbeddedCollector`.
pub struct EmbeddedIntake {
    /// Where the gRPC API serves.
    pub grpc: SocketAddr,
    /// Where webhooks, health and metrics are served, if configured.
    pub http: Option<SocketAddr>,
    /// Handles on intake's critical tasks.
    pub tasks: TaskHandles,
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
        let mut task = tokio::spawn(run_supervised(config, rx, move |listening, tasks| {
            let _ = ready_tx.send((listening, tasks));
        }));
        tokio::select! {
            ready = ready_rx => match ready {
                Ok((l, tasks)) => Ok(Self { grpc: l.grpc, http: l.http, tasks, stop, task }),
                Err(_) => Err(anyhow::anyhow!("intake stopped before serving")),
            },
            result = &mut task => Err(match result {
                Err(e) => anyhow::anyhow!("intake panicked: {e}"),
                Ok(Err(e)) => e,
                Ok(Ok(())) => anyhow::anyhow!("intake exited before serving"),
            }),
        }
    }

    /// Waits until intake stops by itself (a critical task ended), without
    /// asking it to.
    ///
    /// # Errors
    /// Why it stopped.
    pub async fn stopped(self) -> Result<()> {
        let _stop = self.stop;
        self.task
            .await
            .map_err(|e| anyhow::anyhow!("intake panicked: {e}"))?
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
