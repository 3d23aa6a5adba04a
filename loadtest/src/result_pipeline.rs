//! Publish → verify → persist, measured end to end on this machine: a real
//! nats-server (started here on loopback), the collector embedded with
//! SQLite and secured as deployed (TLS, the watcher's token reviewed
//! against a kubesim started here), and the worker's own publisher. Latency
//! is from the start of a publish to the moment the collector's `Watch`
//! stream reports the row.
//!
//! `--backlog` measures the collector alone: every result is published
//! before the collector starts, then the time it takes to verify, store
//! and acknowledge them all is the collector's capacity, not shared with
//! the publishers' signing on the same two cores.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures::StreamExt;
use scanfleet_bus::BusIdentity;
use scanfleet_collector::EmbeddedCollector;
use scanfleet_contracts::v1::WatchResultsRequest;
use scanfleet_test_harness::callers::access_cluster;
use scanfleet_test_harness::credentials::TestCredentials;
use scanfleet_test_harness::fleet::{SampleStatement, write_public_key};
use scanfleet_test_harness::secure_bus::SecureBus;
use scanfleet_trust::{ScanStatement, SigningKey};
use scanfleet_worker::ResultPublisher;

/// Options for the result pipeline benchmark.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Results to publish.
    #[arg(long, default_value_t = 2_000)]
    count: usize,
    /// Concurrent publishers (workers).
    #[arg(long, default_value_t = 16)]
    publishers: usize,
    /// HDF report size in bytes.
    #[arg(long, default_value_t = 48_000)]
    report_bytes: usize,
    /// Offered load in results per second (0: as fast as possible, which
    /// measures saturation throughput and backlog latency).
    #[arg(long, default_value_t = 0)]
    rate: u32,
    /// The collector's store: a SQLite file (the default) or a throwaway
    /// PostgreSQL 15 cluster started for the run.
    #[arg(long, value_parser = ["sqlite", "postgres"], default_value = "sqlite")]
    store: String,
    /// Publish everything first, then start the collector and time how
    /// fast it drains the stream (the collector's own throughput).
    #[arg(long)]
    backlog: bool,
}

/// A report of about `bytes` bytes.
fn filler(bytes: usize) -> Vec<u8> {
    serde_json::json!({"profiles": [{"filler": "x".repeat(bytes)}]})
        .to_string()
        .into_bytes()
}

fn statement(i: usize, report: &[u8]) -> ScanStatement {
    SampleStatement::new(&format!("01BENCH{i:019}"))
        .target(
            "bench",
            &format!("ns{}", i % 10),
            &format!("pod-{i}"),
            "app",
        )
        .digest_hex(&format!("{i:064x}"))
        .report(report)
        .build()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

/// Runs the benchmark.
pub fn run(args: &Args) -> Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(run_async(args))
}

async fn run_async(args: &Args) -> Result<()> {
    let nats = SecureBus::start().await;
    let dir = tempfile::tempdir()?;
    let key = SigningKey::generate();
    let public = write_public_key(dir.path(), &key);
    // The reviewer and the operator live on kubesim; the watcher is
    // reviewed once, when its stream opens, so it does not weigh on the
    // figures.
    let sim = access_cluster().await;
    let creds = TestCredentials::new(&sim).await;
    // Kept alive for the run; stopped when dropped.
    let postgres =
        (args.store == "postgres").then(scanfleet_test_harness::postgres::Postgres::start);
    let store_url = match &postgres {
        Some(pg) => pg.url(),
        None => format!("sqlite://{}", dir.path().join("bench.db").display()),
    };
    let config = scanfleet_collector::config::Config::loopback(
        &nats.url(),
        &store_url,
        &public,
        &[
            nats.auth_args(BusIdentity::Collector),
            creds.service_flags(),
        ]
        .concat(),
    )
    .map_err(|e| anyhow::anyhow!("collector configuration: {}", e.join("; ")))?;
    if args.backlog {
        return drain_backlog(args, &nats, key, config, &store_url).await;
    }
    let collector = EmbeddedCollector::start(config).await?;

    let mut client = creds.results(collector.listening.grpc).await;
    let mut watch = client
        .watch(WatchResultsRequest::default())
        .await?
        .into_inner();

    let report = filler(args.report_bytes);
    let statements: Vec<ScanStatement> = (0..args.count).map(|i| statement(i, &report)).collect();
    let nats_client = nats.connect(BusIdentity::Worker).await;
    let publisher = std::sync::Arc::new(ResultPublisher::new(&nats_client, key, vec![]));

    println!(
        "results: {} results, {} B reports, {} concurrent publishers, offered {}, {}, TLS with a reviewed watcher, nats-server on loopback",
        args.count,
        report.len(),
        args.publishers,
        if args.rate == 0 {
            "as fast as possible".to_owned()
        } else {
            format!("{}/s", args.rate)
        },
        if postgres.is_some() {
            "PostgreSQL 15"
        } else {
            "SQLite"
        }
    );
    let started = Instant::now();
    let mut sent_at: HashMap<String, Instant> = HashMap::with_capacity(args.count);
    for s in &statements {
        sent_at.insert(s.predicate.scan_id.clone(), Instant::now());
    }
    let publishing = {
        let publisher = publisher.clone();
        let report = report.clone();
        let statements = statements.clone();
        let parallel = args.publishers;
        let rate = args.rate;
        let t0 = tokio::time::Instant::now();
        tokio::spawn(async move {
            let mut times = Vec::with_capacity(statements.len());
            let mut stream =
                futures::stream::iter(statements.into_iter().enumerate().map(|(i, s)| {
                    let publisher = publisher.clone();
                    let report = report.clone();
                    async move {
                        if rate > 0 {
                            let at = t0 + Duration::from_secs_f64(i as f64 / f64::from(rate));
                            tokio::time::sleep_until(at).await;
                        }
                        let t = Instant::now();
                        publisher
                            .publish(&s, Some(&report))
                            .await
                            .map(|_| (s.predicate.scan_id, t))
                    }
                }))
                .buffer_unordered(parallel);
            while let Some(r) = stream.next().await {
                times.push(r?);
            }
            anyhow::Ok(times)
        })
    };

    let mut persisted: HashMap<String, Instant> = HashMap::with_capacity(args.count);
    let deadline = Instant::now() + Duration::from_secs(600);
    while persisted.len() < args.count {
        let next = tokio::time::timeout_at(deadline.into(), watch.next())
            .await
            .context("results did not all arrive within 600 s")?;
        let r = next.context("watch ended")??;
        persisted.insert(r.scan_id, Instant::now());
    }
    let total = started.elapsed();
    let publish_times = publishing.await??;
    for (id, t) in publish_times {
        sent_at.insert(id, t);
    }
    let mut latencies: Vec<Duration> = persisted
        .iter()
        .map(|(id, at)| at.duration_since(sent_at[id]))
        .collect();
    latencies.sort();
    println!(
        "published and persisted {} in {:.2} s: {:.0} results/s; publish-to-persisted p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        args.count,
        total.as_secs_f64(),
        args.count as f64 / total.as_secs_f64(),
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
    collector.shutdown().await?;
    Ok(())
}

/// `--backlog`: publishes every result, then starts the collector and
/// polls the store's row count until all are stored.
async fn drain_backlog(
    args: &Args,
    nats: &SecureBus,
    key: SigningKey,
    config: scanfleet_collector::config::Config,
    store_url: &str,
) -> Result<()> {
    let report = filler(args.report_bytes);
    let statements: Vec<ScanStatement> = (0..args.count).map(|i| statement(i, &report)).collect();
    let nats_client = nats.connect(BusIdentity::Worker).await;
    let publisher = ResultPublisher::new(&nats_client, key, vec![]);
    let t = Instant::now();
    let published: Vec<_> = futures::stream::iter(
        statements
            .iter()
            .map(|s| publisher.publish(s, Some(&report))),
    )
    .buffer_unordered(args.publishers)
    .collect()
    .await;
    for p in published {
        p?;
    }
    let publishing = t.elapsed();
    let started = Instant::now();
    let collector = EmbeddedCollector::start(config).await?;
    let store = scanfleet_result_store::ResultStore::connect(store_url).await?;
    while usize::try_from(store.count().await?).unwrap_or(0) < args.count {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "the collector did not store all {} results within 600 s",
            args.count
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let drained = started.elapsed();
    println!(
        "results (backlog): {} results, {} B reports, {}; published first in {:.2} s ({:.0}/s, {} publishers)",
        args.count,
        report.len(),
        if args.store == "postgres" {
            "PostgreSQL 15"
        } else {
            "SQLite"
        },
        publishing.as_secs_f64(),
        args.count as f64 / publishing.as_secs_f64(),
        args.publishers,
    );
    println!(
        "collector start to all stored: {:.2} s: {:.0} results/s (verify, store in batches, ack; start-up included)",
        drained.as_secs_f64(),
        args.count as f64 / drained.as_secs_f64(),
    );
    collector.shutdown().await?;
    Ok(())
}
