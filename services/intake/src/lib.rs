//! `scanfleet-intake`: the front door of the fleet.
//!
//! Today it serves the gRPC `Intake` API for explicitly named containers
//! (`k8s://NS/POD/CONTAINER`): every request is validated by
//! `scanfleet-scan-intents`, given a ULID, recorded as `queued` in the scan
//! status book, and published on the high-priority subject with the scan id
//! as message id; a full queue answers `RESOURCE_EXHAUSTED`. With
//! `--kubeconfig`, label selectors expand against a watch-driven pod cache.
//! Registry webhooks and the scheduler are wired next.

pub mod config;
pub mod intake_api;
pub mod pod_directory;

use std::net::SocketAddr;

use anyhow::{Context, Result};
use scanfleet_bus::TopologyConfig;
use scanfleet_contracts::v1::intake_server::IntakeServer;
use tokio::sync::watch;

use crate::config::Config;

/// Runs intake until `shutdown` flips to true, calling `ready` with the bound
/// gRPC address once it serves.
///
/// # Errors
/// Start-up failures and a failing server.
pub async fn run_with_ready(
    config: Config,
    mut shutdown: watch::Receiver<bool>,
    ready: impl FnOnce(SocketAddr),
) -> Result<()> {
    let client = scanfleet_bus::connect(&config.nats, "scanfleet-intake").await?;
    let js = async_nats::jetstream::new(client.clone());
    TopologyConfig {
        replicas: config.stream_replicas,
        ..Default::default()
    }
    .ensure(&js)
    .await?;
    let directory = match &config.kubeconfig {
        Some(path) => {
            let kube = scanfleet_kube_access::client_from_kubeconfig_file(path).await?;
            let (directory, _watch) = pod_directory::PodDirectory::start(kube, shutdown.clone())
                .await
                .map_err(|e| anyhow::anyhow!("pod directory: {e}"))?;
            Some(directory)
        }
        None => None,
    };
    let service = intake_api::IntakeService::new(js, config.clone(), directory).await?;
    let listener = tokio::net::TcpListener::bind(config.grpc_listen)
        .await
        .with_context(|| format!("binding gRPC {}", config.grpc_listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(grpc = %addr, cluster = config.cluster.as_str(), "intake serving");
    ready(addr);
    tonic::transport::Server::builder()
        .add_service(IntakeServer::new(service))
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::TcpListenerStream::new(listener),
            async move {
                let _ = shutdown.wait_for(|s| *s).await;
            },
        )
        .await
        .context("gRPC server")?;
    client.flush().await.ok();
    Ok(())
}

/// Intake running inside another process (`scanfleet dev`, tests), like
/// the collector's `EmbeddedCollector`.
pub struct EmbeddedIntake {
    /// Where the gRPC API serves.
    pub grpc: SocketAddr,
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
        let mut task = tokio::spawn(run_with_ready(config, rx, move |addr| {
            let _ = ready_tx.send(addr);
        }));
        tokio::select! {
            ready = ready_rx => match ready {
                Ok(grpc) => Ok(Self { grpc, stop, task }),
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
