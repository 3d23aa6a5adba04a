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
