//! A service's side of its cluster's fleet-wide Kubernetes API budget: it
//! leases small batches of permits from the token bucket on the bus
//! (`scanfleet_bus::ApiBudgetBook`, arithmetic in
//! `scanfleet_kube_access::fleet_budget`) and hands them to the calls of this
//! process, so 1 or 32 workers together stay within one QPS and burst.
//! Workers are configured with the budget; intake's own calls (its pod
//! watches and access reviews) draw from it too, following the limits the
//! workers recorded ([`FleetBudgetSettings::following`]).
//!
//! - Callers queue on one lock, so one lease is in flight per process and a
//!   lease asks for as many permits as callers wait (at most `lease_max`).
//!   A permit is spent as soon as it is granted; leftovers (a caller gave up)
//!   lapse after `lease_ttl` and never return to the bucket.
//! - A write that loses the compare-and-set re-reads at once; an empty or
//!   paused bucket is waited out for the time the arithmetic names (with a
//!   little jitter, so workers do not all retry in the same millisecond).
//! - NATS unreachable: calls wait, with a bounded doubling backoff, logged
//!   once per outage and counted; never a fallback to a local-only limit.
//! - A 429 writes a fleet-wide pause (compare-and-set) and drops this
//!   process's leftovers.

use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use scanfleet_bus::{ApiBudgetBook, BudgetWrite, BusError};
use scanfleet_kube_access::fleet_budget::{
    self, BucketState, BudgetLimits, Lease, Standing, WaitReason,
};
use scanfleet_kube_access::{FleetFuture, FleetPermits};

/// How a service leases from its cluster's budget.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FleetBudgetSettings {
    /// The cluster's budget, for the whole fleet.
    pub limits: BudgetLimits,
    /// Most permits one lease takes.
    pub lease_max: u32,
    /// How long leased, unspent permits stay usable.
    pub lease_ttl: Duration,
}

impl FleetBudgetSettings {
    /// The budget with the default lease: `max(1, burst / 8)` permits,
    /// usable for 100 ms, holding back the in-flight reserve for both.
    pub fn new(limits: BudgetLimits) -> Self {
        Self {
            limits: BudgetLimits {
                in_flight: DEFAULT_LEASE_TTL + DELIVERY_ALLOWANCE,
                ..limits
            },
            lease_max: limits.default_lease(),
            lease_ttl: DEFAULT_LEASE_TTL,
        }
    }

    /// For a service whose calls share the cluster's budget without
    /// configuring it (intake): it applies the limits the workers recorded,
    /// and `fallback` (its local throttle's) only while none ever did; its
    /// leases take one permit at a time, since its calls are few.
    pub fn following(fallback_qps: f64, fallback_burst: u32) -> Self {
        Self {
            lease_max: 1,
            ..Self::new(BudgetLimits {
                qps: fallback_qps,
                burst: fallback_burst.max(1),
                in_flight: Duration::ZERO,
                standing: Standing::Following,
            })
        }
    }

    /// Sets how long leased permits stay usable, and the in-flight reserve
    /// that goes with it.
    pub fn with_lease_ttl(mut self, ttl: Duration) -> Self {
        self.lease_ttl = ttl;
        self.limits.in_flight = ttl + DELIVERY_ALLOWANCE;
        self
    }
}

/// How late after its permit a call may reach the API server (connection
/// set-up, TLS, a loaded node), beyond the lease time; the fleet budget
/// holds `qps ×` both back from its burst so the server never sees more.
/// 150 ms was measured too short: on a loaded 2-core host the 1,000-pod
/// benchmark saw 22 calls land within 100 ms after a stall, one 1 s
/// window at 122 for a limit of 120 (docs/benchmarks.md).
pub const DELIVERY_ALLOWANCE: Duration = Duration::from_millis(300);

/// How long leased permits stay usable unless configured.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_millis(100);
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const LONGEST_BACKOFF: Duration = Duration::from_secs(2);
/// Longest a lease may take before the bus counts as out of reach (a
/// request to a vanished server otherwise waits for the client's timeout).
const LEASE_TIMEOUT: Duration = Duration::from_secs(2);
/// Compare-and-set rounds before a lease backs off briefly.
const CAS_ROUNDS: u32 = 16;

/// What the budget counted, for `/metrics`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct FleetBudgetStats {
    /// Permits handed to calls.
    pub granted: u64,
    /// Time calls waited for a permit.
    pub waited: Duration,
    /// Leases written (each one compare-and-set write).
    pub leases: u64,
    /// Writes that lost the compare-and-set and re-read.
    pub conflicts: u64,
    /// Reads or writes that failed (NATS unreachable).
    pub bus_errors: u64,
    /// Leased permits that lapsed unspent.
    pub lapsed: u64,
    /// Fleet-wide pauses this worker wrote after a 429.
    pub pauses: u64,
    /// Share of the burst in use at the last lease, 0 to 1.
    pub in_use: f64,
    /// The qps the last lease applied: the configured one, or a stricter
    /// one another worker of the cluster is configured with.
    pub applied_qps: f64,
    /// The burst the last lease applied (likewise).
    pub applied_burst: u32,
}

#[derive(Default)]
struct Counters {
    granted: AtomicU64,
    waited_us: AtomicU64,
    leases: AtomicU64,
    conflicts: AtomicU64,
    bus_errors: AtomicU64,
    lapsed: AtomicU64,
    pauses: AtomicU64,
    in_use_bits: AtomicU64,
    applied_qps_bits: AtomicU64,
    applied_burst: AtomicU32,
}

struct Held {
    permits: u32,
    until: Instant,
}

struct Inner {
    book: ApiBudgetBook,
    cluster: String,
    settings: FleetBudgetSettings,
    held: tokio::sync::Mutex<Held>,
    waiting: AtomicU32,
    /// Unix ms until which the server asked to wait (this process's view).
    paused_until_ms: AtomicI64,
    outage: AtomicBool,
    /// Whether the last lease applied a stricter budget than configured.
    tightened: AtomicBool,
    counters: Counters,
}

/// One cluster's budget as this process sees it; clone freely.
#[derive(Clone)]
pub struct FleetBudget {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for FleetBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FleetBudget")
            .field("cluster", &self.inner.cluster)
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

enum Step {
    Granted(u32),
    Wait(Duration),
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Up to `max` of random extra wait, so waiting workers spread out.
fn jitter(max: Duration) -> Duration {
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    Duration::from_micros(random % micros(max).max(1))
}

/// Decrements the waiting count however the acquiring future ends.
struct Waiting<'a>(&'a AtomicU32);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl FleetBudget {
    /// The budget of `cluster`, kept in `book`.
    pub fn new(book: ApiBudgetBook, cluster: &str, settings: FleetBudgetSettings) -> Self {
        Self {
            inner: Arc::new(Inner {
                book,
                cluster: cluster.to_owned(),
                settings,
                held: tokio::sync::Mutex::new(Held {
                    permits: 0,
                    until: Instant::now(),
                }),
                waiting: AtomicU32::new(0),
                paused_until_ms: AtomicI64::new(0),
                outage: AtomicBool::new(false),
                tightened: AtomicBool::new(false),
                counters: Counters {
                    applied_qps_bits: AtomicU64::new(settings.limits.qps.to_bits()),
                    applied_burst: AtomicU32::new(settings.limits.burst),
                    ..Counters::default()
                },
            }),
        }
    }

    /// The cluster this budget is for.
    pub fn cluster(&self) -> &str {
        &self.inner.cluster
    }

    /// The budget's settings.
    pub fn settings(&self) -> FleetBudgetSettings {
        self.inner.settings
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> FleetBudgetStats {
        let c = &self.inner.counters;
        FleetBudgetStats {
            granted: c.granted.load(Ordering::Relaxed),
            waited: Duration::from_micros(c.waited_us.load(Ordering::Relaxed)),
            leases: c.leases.load(Ordering::Relaxed),
            conflicts: c.conflicts.load(Ordering::Relaxed),
            bus_errors: c.bus_errors.load(Ordering::Relaxed),
            lapsed: c.lapsed.load(Ordering::Relaxed),
            pauses: c.pauses.load(Ordering::Relaxed),
            in_use: f64::from_bits(c.in_use_bits.load(Ordering::Relaxed)),
            applied_qps: f64::from_bits(c.applied_qps_bits.load(Ordering::Relaxed)),
            applied_burst: c.applied_burst.load(Ordering::Relaxed),
        }
    }
}

impl Inner {
    async fn acquire(&self) {
        let started = Instant::now();
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let _waiting = Waiting(&self.waiting);
        let mut held = self.held.lock().await;
        let mut backoff = FIRST_BACKOFF;
        loop {
            if held.permits > 0 {
                let paused = now_ms() < self.paused_until_ms.load(Ordering::Relaxed);
                if Instant::now() < held.until && !paused {
                    held.permits -= 1;
                    break;
                }
                self.counters
                    .lapsed
                    .fetch_add(u64::from(held.permits), Ordering::Relaxed);
                held.permits = 0;
            }
            let wanted = self
                .waiting
                .load(Ordering::Relaxed)
                .clamp(1, self.settings.lease_max);
            let lease = tokio::time::timeout(LEASE_TIMEOUT, self.lease(wanted))
                .await
                .unwrap_or_else(|_| {
                    Err(BusError::Consume(format!(
                        "no answer from the bus within {LEASE_TIMEOUT:?}"
                    )))
                });
            match lease {
                Ok(Step::Granted(n)) => {
                    self.reachable_again();
                    held.permits = n - 1;
                    held.until = Instant::now() + self.settings.lease_ttl;
                    break;
                }
                Ok(Step::Wait(wait)) => {
                    self.reachable_again();
                    tokio::time::sleep(wait + jitter(Duration::from_millis(5))).await;
                }
                Err(e) => {
                    self.counters.bus_errors.fetch_add(1, Ordering::Relaxed);
                    if !self.outage.swap(true, Ordering::Relaxed) {
                        tracing::warn!(cluster = %self.cluster, error = %e,
                            "the fleet's API budget is out of reach; Kubernetes calls wait until it is back");
                    }
                    tokio::time::sleep(backoff + jitter(backoff / 4)).await;
                    backoff = (backoff * 2).min(LONGEST_BACKOFF);
                }
            }
        }
        drop(held);
        let c = &self.counters;
        c.granted.fetch_add(1, Ordering::Relaxed);
        c.waited_us
            .fetch_add(micros(started.elapsed()), Ordering::Relaxed);
    }

    fn reachable_again(&self) {
        if self.outage.swap(false, Ordering::Relaxed) {
            tracing::info!(cluster = %self.cluster, "the fleet's API budget is reachable again");
        }
    }

    /// The stored state; one that cannot be read counts as an empty bucket
    /// from now (never a full one: a bad entry must not open the gates).
    fn current(&self, value: &[u8], now: i64) -> BucketState {
        BucketState::decode(value).unwrap_or_else(|e| {
            tracing::warn!(cluster = %self.cluster, error = %e, "replacing an unreadable API budget entry");
            BucketState {
                tokens: 0.0,
                refilled_at_ms: now,
                paused_until_ms: 0,
                applied: None,
            }
        })
    }

    /// Records the limits a lease applied, and says so when they change
    /// between this worker's own and a stricter one of another worker.
    fn note_applied(&self, applied: BudgetLimits) {
        let own = self.settings.limits;
        let c = &self.counters;
        c.applied_qps_bits
            .store(applied.qps.to_bits(), Ordering::Relaxed);
        c.applied_burst.store(applied.burst, Ordering::Relaxed);
        let tightened = applied.qps < own.qps || applied.burst < own.burst;
        if own.standing == Standing::Following {
            return;
        }
        if self.tightened.swap(tightened, Ordering::Relaxed) != tightened {
            if tightened {
                tracing::warn!(cluster = %self.cluster, configured_qps = own.qps, configured_burst = own.burst,
                    applied_qps = applied.qps, applied_burst = applied.burst,
                    "another worker of this cluster is configured with a stricter API budget; the stricter one holds while that worker runs");
            } else {
                tracing::info!(cluster = %self.cluster, qps = own.qps, burst = own.burst,
                    "this worker's configured API budget applies again");
            }
        }
    }

    fn note_in_use(&self, in_use: f64) {
        self.counters
            .in_use_bits
            .store(in_use.to_bits(), Ordering::Relaxed);
    }

    /// One lease: read, decide, write compare-and-set; a lost write reads
    /// again.
    async fn lease(&self, wanted: u32) -> Result<Step, BusError> {
        let limits = self.settings.limits;
        for _ in 0..CAS_ROUNDS {
            let entry = self.book.read(&self.cluster).await?;
            let now = now_ms();
            let current = entry.as_ref().map(|e| self.current(&e.value, now));
            match fleet_budget::lease(current, limits, now, wanted) {
                Lease::Wait { retry_in, reason } => {
                    self.note_in_use(1.0);
                    if reason == WaitReason::Paused {
                        self.paused_until_ms
                            .fetch_max(now + retry_in.as_millis() as i64, Ordering::Relaxed);
                    }
                    return Ok(Step::Wait(retry_in));
                }
                Lease::Granted {
                    permits,
                    state,
                    limits: applied,
                } => {
                    let revision = entry.map(|e| e.revision);
                    match self
                        .book
                        .write(&self.cluster, state.encode(), revision)
                        .await?
                    {
                        BudgetWrite::Stored => {
                            self.counters.leases.fetch_add(1, Ordering::Relaxed);
                            self.note_in_use(state.in_use(applied, now));
                            self.note_applied(applied);
                            return Ok(Step::Granted(permits));
                        }
                        BudgetWrite::Conflict => {
                            self.counters.conflicts.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
        }
        Ok(Step::Wait(jitter(Duration::from_millis(10))))
    }

    /// Writes the fleet-wide pause; bounded attempts, since a budget that
    /// cannot be reached pauses every call anyway.
    async fn pause(&self, retry_after: Duration) {
        let now = now_ms();
        let until = now.saturating_add(retry_after.as_millis() as i64);
        self.paused_until_ms.fetch_max(until, Ordering::Relaxed);
        for _ in 0..CAS_ROUNDS {
            let written = async {
                let entry = self.book.read(&self.cluster).await?;
                let now = now_ms();
                let current = entry.as_ref().map(|e| self.current(&e.value, now));
                let Some(state) =
                    fleet_budget::pause(current, self.settings.limits, now, retry_after)
                else {
                    // Another worker already paused the fleet at least as long.
                    return Ok::<_, BusError>(None);
                };
                let revision = entry.map(|e| e.revision);
                let w = self
                    .book
                    .write(&self.cluster, state.encode(), revision)
                    .await?;
                Ok(Some(w == BudgetWrite::Stored))
            };
            match written.await {
                Ok(None) => return,
                Ok(Some(true)) => {
                    self.counters.pauses.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(cluster = %self.cluster, retry_after_ms = retry_after.as_millis() as u64,
                        "the API server asked to slow down; the whole fleet waits");
                    return;
                }
                Ok(Some(false)) => self.counters.conflicts.fetch_add(1, Ordering::Relaxed),
                Err(e) => {
                    self.counters.bus_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(cluster = %self.cluster, error = %e, "could not record the API server's Retry-After for the fleet");
                    return;
                }
            };
        }
    }
}

impl FleetPermits for FleetBudget {
    fn acquire(&self) -> FleetFuture {
        let inner = self.inner.clone();
        Box::pin(async move { inner.acquire().await })
    }

    fn server_asked_to_wait(&self, retry_after: Duration) -> FleetFuture {
        let inner = self.inner.clone();
        Box::pin(async move { inner.pause(retry_after).await })
    }
}
