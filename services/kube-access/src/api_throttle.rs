//! One rate limit per cluster for every Kubernetes API call scanfleet makes.
//!
//! Peers flood clusters with scan Jobs and report objects; a queue-fed worker
//! fleet can just as easily flood the API server with exec and RBAC calls.
//! [`ApiThrottle`] is a tower layer placed *outside* kube-rs' own stack, so
//! admin calls, per-scan identity calls, ephemeral-container patches, exec
//! upgrades and watches all draw from the same governor bucket, and the
//! token never passes through it (auth headers are added further in).
//!
//! Over the local bucket sits, in a worker, the cluster's fleet-wide budget
//! ([`FleetPermits`]): every attempt takes a fleet permit first, so the local
//! governor only smooths this process's share, and a 429 is reported to the
//! fleet so every worker of the cluster waits out its `Retry-After`.
//!
//! Retries are bounded and only where they cannot double an effect: a 429 is
//! retried for every method (the server did not act) after its
//! `Retry-After`; 5xx answers, dropped connections and per-call timeouts are
//! retried only for idempotent methods (GET, HEAD, PUT, DELETE), so a create
//! is never sent twice.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use http::{Method, Request, Response, StatusCode};
use kube::client::Body;
use tower::{Layer, Service, ServiceExt};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;
/// What [`FleetPermits`] returns: a boxed future owning what it needs.
pub type FleetFuture = BoxFuture<()>;

/// Limits for one cluster.
#[derive(Clone, Debug, PartialEq)]
pub struct ThrottleConfig {
    /// Sustained calls per second.
    pub qps: f64,
    /// Calls allowed at once after a quiet period.
    pub burst: u32,
    /// Retries per call after the first attempt.
    pub max_retries: u32,
    /// Longest `Retry-After` honoured; longer asks fail the call instead of
    /// parking a scan slot.
    pub max_retry_after: Duration,
    /// Time to the response head of one attempt (an exec's or watch's body
    /// may stream longer; their own deadlines bound that).
    pub call_timeout: Duration,
    /// First backoff after a 5xx or transport error; doubles per retry.
    pub backoff: Duration,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        Self {
            qps: 20.0,
            burst: 40,
            max_retries: 4,
            max_retry_after: Duration::from_secs(30),
            call_timeout: Duration::from_secs(30),
            backoff: Duration::from_millis(200),
        }
    }
}

/// Why a throttle configuration is unusable.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ThrottleConfigError {
    /// QPS must be a positive finite number.
    #[error("kube QPS must be a positive number, got {0}")]
    Qps(f64),
    /// Burst must be at least 1.
    #[error("kube burst must be at least 1")]
    Burst,
}

impl ThrottleConfig {
    /// Checks the numbers before a limiter is built from them.
    ///
    /// # Errors
    /// [`ThrottleConfigError`] naming the bad value.
    pub fn validate(&self) -> Result<(), ThrottleConfigError> {
        if !(self.qps.is_finite() && self.qps > 0.0) {
            return Err(ThrottleConfigError::Qps(self.qps));
        }
        if self.burst == 0 {
            return Err(ThrottleConfigError::Burst);
        }
        Ok(())
    }
}

/// Counters a metrics endpoint exports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ThrottleStats {
    /// Attempts sent to the API server (retries included).
    pub attempts: u64,
    /// Total time callers waited for the limiter.
    pub waited: Duration,
    /// 429 answers received.
    pub throttled_by_server: u64,
    /// Time spent sleeping on `Retry-After` and backoff.
    pub retry_sleep: Duration,
    /// Retries after 5xx answers, dropped connections or timeouts.
    pub retried_errors: u64,
    /// Calls that failed after the last allowed retry (or could not retry).
    pub gave_up: u64,
}

#[derive(Default)]
struct Counters {
    attempts: AtomicU64,
    waited_us: AtomicU64,
    throttled: AtomicU64,
    retry_sleep_us: AtomicU64,
    retried: AtomicU64,
    gave_up: AtomicU64,
}

/// The budget the whole fleet shares for one cluster (the worker keeps it on
/// the bus). The throttle asks it for one permit per attempt and tells it of
/// every 429, so the server's `Retry-After` holds for every worker.
pub trait FleetPermits: Send + Sync + 'static {
    /// Waits until the fleet grants one permit (as long as it takes: an
    /// unreachable budget pauses calls, it never lets them through).
    fn acquire(&self) -> FleetFuture;
    /// The API server answered 429 asking to wait `retry_after`.
    fn server_asked_to_wait(&self, retry_after: Duration) -> FleetFuture;
}

struct Shared {
    limiter: DefaultDirectRateLimiter,
    fleet: Option<Arc<dyn FleetPermits>>,
    config: ThrottleConfig,
    counters: Counters,
}

/// The per-cluster throttle; clone it into every client of that cluster.
#[derive(Clone)]
pub struct ApiThrottle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for ApiThrottle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiThrottle")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

impl ApiThrottle {
    /// Builds the limiter.
    ///
    /// # Errors
    /// [`ThrottleConfigError`] for a non-positive QPS or a zero burst.
    pub fn new(config: ThrottleConfig) -> Result<Self, ThrottleConfigError> {
        Self::build(config, None)
    }

    /// A throttle under the fleet's budget: each attempt takes a permit of
    /// `fleet` and then passes the local limiter (`config`), which smooths
    /// this process's calls.
    ///
    /// # Errors
    /// [`ThrottleConfigError`] for a non-positive QPS or a zero burst.
    pub fn under_fleet_budget(
        config: ThrottleConfig,
        fleet: Arc<dyn FleetPermits>,
    ) -> Result<Self, ThrottleConfigError> {
        Self::build(config, Some(fleet))
    }

    fn build(
        config: ThrottleConfig,
        fleet: Option<Arc<dyn FleetPermits>>,
    ) -> Result<Self, ThrottleConfigError> {
        config.validate()?;
        let period = Duration::from_secs_f64(1.0 / config.qps);
        let burst = NonZeroU32::new(config.burst).ok_or(ThrottleConfigError::Burst)?;
        let quota = Quota::with_period(period)
            .ok_or(ThrottleConfigError::Qps(config.qps))?
            .allow_burst(burst);
        Ok(Self {
            shared: Arc::new(Shared {
                limiter: RateLimiter::direct(quota),
                fleet,
                config,
                counters: Counters::default(),
            }),
        })
    }

    /// The limits in force.
    pub fn config(&self) -> &ThrottleConfig {
        &self.shared.config
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> ThrottleStats {
        let c = &self.shared.counters;
        ThrottleStats {
            attempts: c.attempts.load(Ordering::Relaxed),
            waited: Duration::from_micros(c.waited_us.load(Ordering::Relaxed)),
            throttled_by_server: c.throttled.load(Ordering::Relaxed),
            retry_sleep: Duration::from_micros(c.retry_sleep_us.load(Ordering::Relaxed)),
            retried_errors: c.retried.load(Ordering::Relaxed),
            gave_up: c.gave_up.load(Ordering::Relaxed),
        }
    }
}

impl<S> Layer<S> for ApiThrottle {
    type Service = Throttled<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Throttled {
            inner: Arc::new(tokio::sync::Mutex::new(inner)),
            shared: self.shared.clone(),
        }
    }
}

/// The service [`ApiThrottle`] wraps around kube-rs' stack.
pub struct Throttled<S> {
    // kube's boxed stack is not Clone; a retry needs to call it again from
    // inside the response future, so it is shared. The lock is held only
    // while a call is dispatched, never while a response is awaited.
    inner: Arc<tokio::sync::Mutex<S>>,
    shared: Arc<Shared>,
}

impl<S> Clone for Throttled<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: self.shared.clone(),
        }
    }
}

fn idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS
    )
}

/// `Retry-After` in seconds (the HTTP-date form is not used by the API
/// server); a missing or unreadable value means one second.
fn retry_after<B>(resp: &Response<B>) -> Duration {
    resp.headers()
        .get(http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(Duration::from_secs(1), Duration::from_secs)
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl<S, B> Service<Request<Body>> for Throttled<S>
where
    S: Service<Request<Body>, Response = Response<B>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Send + 'static,
{
    type Response = Response<B>;
    type Error = BoxError;
    type Future = BoxFuture<Result<Response<B>, BoxError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Readiness of the inner stack is awaited per attempt, under the lock.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let inner = self.inner.clone();
        let shared = self.shared.clone();
        Box::pin(async move {
            let cfg = &shared.config;
            let counters = &shared.counters;
            let (method, uri, version, headers) = (
                req.method().clone(),
                req.uri().clone(),
                req.version(),
                req.headers().clone(),
            );
            let spare = req.body().try_clone();
            let mut next = Some(req);
            let mut backoff = cfg.backoff;
            let mut attempt = 0u32;
            loop {
                let req = match next.take() {
                    Some(r) => r,
                    None => {
                        let Some(body) = spare.as_ref().and_then(Body::try_clone) else {
                            return Err("a streamed request body cannot be sent again".into());
                        };
                        let mut r = Request::new(body);
                        *r.method_mut() = method.clone();
                        *r.uri_mut() = uri.clone();
                        *r.version_mut() = version;
                        *r.headers_mut() = headers.clone();
                        r
                    }
                };
                let started = Instant::now();
                // Local smoothing first, then the fleet's permit, so a permit
                // is spent as soon as it is granted.
                shared.limiter.until_ready().await;
                if let Some(fleet) = &shared.fleet {
                    fleet.acquire().await;
                }
                counters
                    .waited_us
                    .fetch_add(micros(started.elapsed()), Ordering::Relaxed);
                counters.attempts.fetch_add(1, Ordering::Relaxed);
                let call = async {
                    let fut = {
                        let mut svc = inner.lock().await;
                        svc.ready().await.map_err(Into::into)?;
                        svc.call(req)
                    };
                    fut.await.map_err(Into::into)
                };
                let outcome: Result<Response<B>, BoxError> =
                    match tokio::time::timeout(cfg.call_timeout, call).await {
                        Ok(r) => r,
                        Err(_) => Err(format!(
                            "no response within {:?} ({method} {})",
                            cfg.call_timeout,
                            uri.path()
                        )
                        .into()),
                    };
                let can_retry = attempt < cfg.max_retries && spare.is_some();
                attempt += 1;
                // Every 429 slows the whole fleet, even one this call gives up on.
                let server_wait = match &outcome {
                    Ok(resp) if resp.status() == StatusCode::TOO_MANY_REQUESTS => {
                        Some(retry_after(resp))
                    }
                    _ => None,
                };
                // Capped like our own sleeps: a server's (or a proxy's) huge
                // Retry-After must not park the whole fleet for hours.
                if let (Some(wait), Some(fleet)) = (server_wait, &shared.fleet) {
                    fleet
                        .server_asked_to_wait(wait.min(cfg.max_retry_after))
                        .await;
                }
                let pause = match &outcome {
                    Ok(resp) if resp.status() == StatusCode::TOO_MANY_REQUESTS => {
                        counters.throttled.fetch_add(1, Ordering::Relaxed);
                        let wait = retry_after(resp);
                        if !can_retry || wait > cfg.max_retry_after {
                            counters.gave_up.fetch_add(1, Ordering::Relaxed);
                            return outcome;
                        }
                        wait
                    }
                    Ok(resp) if resp.status().is_server_error() && idempotent(&method) => {
                        if !can_retry {
                            counters.gave_up.fetch_add(1, Ordering::Relaxed);
                            return outcome;
                        }
                        counters.retried.fetch_add(1, Ordering::Relaxed);
                        backoff
                    }
                    Ok(_) => return outcome,
                    Err(_) if idempotent(&method) && can_retry => {
                        counters.retried.fetch_add(1, Ordering::Relaxed);
                        backoff
                    }
                    Err(_) => {
                        counters.gave_up.fetch_add(1, Ordering::Relaxed);
                        return outcome;
                    }
                };
                tracing::debug!(
                    method = %method,
                    path = uri.path(),
                    attempt,
                    wait_ms = pause.as_millis() as u64,
                    "retrying a Kubernetes API call"
                );
                drop(outcome);
                tokio::time::sleep(pause).await;
                counters
                    .retry_sleep_us
                    .fetch_add(micros(pause), Ordering::Relaxed);
                backoff = backoff.saturating_mul(2);
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_limits_are_named() {
        let bad = ThrottleConfig {
            qps: 0.0,
            ..Default::default()
        };
        assert_eq!(
            ApiThrottle::new(bad).unwrap_err(),
            ThrottleConfigError::Qps(0.0)
        );
        let bad = ThrottleConfig {
            burst: 0,
            ..Default::default()
        };
        assert_eq!(
            ApiThrottle::new(bad).unwrap_err(),
            ThrottleConfigError::Burst
        );
    }

    #[test]
    fn only_methods_without_side_effects_on_repeat_are_retried_after_errors() {
        assert!(idempotent(&Method::GET));
        assert!(idempotent(&Method::DELETE));
        assert!(!idempotent(&Method::POST));
        assert!(!idempotent(&Method::PATCH));
    }

    /// Records what the throttle asked of the fleet.
    #[derive(Default)]
    struct CountingFleet {
        acquired: AtomicU64,
        pauses: std::sync::Mutex<Vec<Duration>>,
    }

    impl FleetPermits for Arc<CountingFleet> {
        fn acquire(&self) -> FleetFuture {
            self.acquired.fetch_add(1, Ordering::SeqCst);
            Box::pin(async {})
        }
        fn server_asked_to_wait(&self, retry_after: Duration) -> FleetFuture {
            self.pauses.lock().unwrap().push(retry_after);
            Box::pin(async {})
        }
    }

    #[tokio::test]
    async fn every_attempt_takes_a_fleet_permit_and_a_429_pauses_the_fleet() {
        let fleet = Arc::new(CountingFleet::default());
        let throttle =
            ApiThrottle::under_fleet_budget(ThrottleConfig::default(), Arc::new(fleet.clone()))
                .unwrap();
        let answers = Arc::new(AtomicU64::new(0));
        let seen = answers.clone();
        let inner = tower::service_fn(move |_req: Request<Body>| {
            let n = seen.fetch_add(1, Ordering::SeqCst);
            async move {
                let status = if n == 0 { 429 } else { 200 };
                Response::builder()
                    .status(status)
                    .header("retry-after", "1")
                    .body(())
                    .map_err(|e| Box::new(e) as BoxError)
            }
        });
        let mut svc = throttle.layer(inner);
        let req = Request::get("/api/v1/pods").body(Body::empty()).unwrap();
        let resp = svc.call(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(fleet.acquired.load(Ordering::SeqCst), 2, "one per attempt");
        assert_eq!(*fleet.pauses.lock().unwrap(), vec![Duration::from_secs(1)]);
    }

    #[tokio::test]
    async fn a_huge_retry_after_pauses_the_fleet_no_longer_than_we_would_wait() {
        let fleet = Arc::new(CountingFleet::default());
        let throttle =
            ApiThrottle::under_fleet_budget(ThrottleConfig::default(), Arc::new(fleet.clone()))
                .unwrap();
        let inner = tower::service_fn(|_req: Request<Body>| async {
            Response::builder()
                .status(429)
                .header("retry-after", "3600")
                .body(())
                .map_err(|e| Box::new(e) as BoxError)
        });
        let mut svc = throttle.layer(inner);
        let req = Request::get("/api/v1/pods").body(Body::empty()).unwrap();
        let resp = svc.call(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS, "given up");
        assert_eq!(
            *fleet.pauses.lock().unwrap(),
            vec![ThrottleConfig::default().max_retry_after]
        );
    }

    #[test]
    fn retry_after_defaults_to_one_second() {
        let r = Response::builder()
            .header("retry-after", "7")
            .body(())
            .unwrap();
        assert_eq!(retry_after(&r), Duration::from_secs(7));
        let r = Response::builder().body(()).unwrap();
        assert_eq!(retry_after(&r), Duration::from_secs(1));
    }
}
