//! Prometheus exposition shared by every service, on `prometheus-client`.
//!
//! Each service owns one [`Registry`] whose metric names start with
//! `scanfleet_<service>_`; this module gives it the parts every service
//! needs alike: the `build_info` gauge, histogram buckets that reach the
//! longest scan deadline, and the `/metrics` answer. The services register
//! their own families with HELP text (`prometheus-client` refuses none, so
//! the HELP is a review rule: see each service's `metrics.rs`).

use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
pub use prometheus_client::registry::Registry;

pub use crate::exposition_format::{CLASSIC_CONTENT_TYPE, ExpositionFormat, classic_text};

/// What `/metrics` answers with when the scraper accepts OpenMetrics.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A registry whose every metric is named `scanfleet_<service>_…`, with the
/// `build_info` gauge already in it.
pub fn service_registry(service: &str, version: &str) -> Registry {
    let mut registry = Registry::with_prefix(format!("scanfleet_{service}"));
    let build = Family::<BuildLabels, Gauge>::default();
    build
        .get_or_create(&BuildLabels {
            version: version.to_owned(),
            commit: build_commit().to_owned(),
        })
        .set(1);
    registry.register(
        "build_info",
        "Always 1; the labels say which build is running (version, git commit or \"unknown\").",
        build,
    );
    registry
}

/// The git commit the binary was built from: `SCANFLEET_GIT_COMMIT` at
/// build time (CI and release scripts set it), else `git rev-parse` in the
/// build script, else "unknown".
pub fn build_commit() -> &'static str {
    option_env!("SCANFLEET_BUILD_COMMIT").unwrap_or("unknown")
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
    commit: String,
}

/// The registry in the text format.
pub fn render(registry: &Registry) -> String {
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, registry);
    out
}

/// The `/metrics` response for `registry`, in the format the request's
/// `Accept` header asks for ([`ExpositionFormat::negotiate`]).
pub fn response(registry: &Registry, request: &header::HeaderMap) -> Response {
    let accept = request.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    match ExpositionFormat::negotiate(accept) {
        ExpositionFormat::OpenMetrics => {
            ([(header::CONTENT_TYPE, CONTENT_TYPE)], render(registry)).into_response()
        }
        ExpositionFormat::Classic => (
            [(header::CONTENT_TYPE, CLASSIC_CONTENT_TYPE)],
            classic_text(&render(registry)),
        )
            .into_response(),
    }
}

/// Buckets, in seconds, from 10 ms up to at least `longest`: fine where
/// most scans and waits land, and wide enough that the longest deadline a
/// scan may be given still falls in a finite bucket (the old fixed list
/// stopped at 300 s while deadlines reach 3,600 s).
pub fn duration_buckets(longest: Duration) -> Vec<f64> {
    let mut buckets = vec![
        0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0,
        1800.0, 3600.0,
    ];
    let longest = longest.as_secs_f64();
    let mut last = buckets[buckets.len() - 1];
    while last < longest {
        last *= 2.0;
        buckets.push(last);
    }
    buckets
}

/// A counter that also reads as the `AtomicU64` the services counted with
/// before this crate owned exposition, so call sites written against the
/// plain atomic (`fetch_add`, `load`) keep working; prefer [`Counter::inc`].
#[derive(Clone, Debug, Default)]
pub struct CounterCell(pub Counter);

impl Deref for CounterCell {
    type Target = AtomicU64;

    fn deref(&self) -> &AtomicU64 {
        self.0.inner()
    }
}

impl CounterCell {
    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.inc_by(n);
    }

    /// The current value.
    pub fn get(&self) -> u64 {
        self.0.get()
    }
}

/// A gauge over a `u64` that also reads as the `AtomicU64` it wraps (see
/// [`CounterCell`]).
#[derive(Clone, Debug, Default)]
pub struct GaugeCell(pub Gauge<u64, AtomicU64>);

impl Deref for GaugeCell {
    type Target = AtomicU64;

    fn deref(&self) -> &AtomicU64 {
        self.0.inner()
    }
}

impl GaugeCell {
    /// Sets the value.
    pub fn set(&self, v: u64) {
        self.0.inner().store(v, Ordering::Relaxed);
    }
}

/// A histogram over durations, observed in seconds.
#[derive(Clone, Debug)]
pub struct DurationHistogram {
    /// The exposed histogram; register a clone of it.
    pub histogram: Histogram,
    count: std::sync::Arc<AtomicU64>,
}

impl DurationHistogram {
    /// A histogram with [`duration_buckets`] up to `longest`.
    pub fn up_to(longest: Duration) -> Self {
        Self {
            histogram: Histogram::new(duration_buckets(longest)),
            count: Default::default(),
        }
    }

    /// Records one observation.
    pub fn observe(&self, value: Duration) {
        self.histogram.observe(value.as_secs_f64());
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

/// One sample's value by its exact series text (name plus labels as
/// rendered, e.g. `scanfleet_intake_push_watches_pending` or
/// `…_total{outcome="added"}`); for tests and tools reading `/metrics`.
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_registry_says_which_build_runs() {
        let registry = service_registry("test", "1.2.3");
        let text = render(&registry);
        assert!(text.contains("# HELP scanfleet_test_build_info "), "{text}");
        assert!(
            text.contains("# TYPE scanfleet_test_build_info gauge"),
            "{text}"
        );
        let series = format!(
            "scanfleet_test_build_info{{version=\"1.2.3\",commit=\"{}\"}}",
            build_commit()
        );
        assert_eq!(sample(&text, &series), Some(1.0), "{text}");
    }

    #[test]
    fn buckets_reach_the_longest_deadline() {
        let buckets = duration_buckets(Duration::from_secs(3600));
        assert_eq!(buckets.last(), Some(&3600.0));
        let buckets = duration_buckets(Duration::from_secs(5000));
        assert!(*buckets.last().unwrap() >= 5000.0, "{buckets:?}");
        assert!(buckets.windows(2).all(|w| w[0] < w[1]), "{buckets:?}");
    }

    #[test]
    fn cells_count_through_their_atomic_and_render() {
        let mut registry = Registry::with_prefix("scanfleet_test");
        let done = CounterCell::default();
        registry.register("done", "Things done.", done.0.clone());
        done.fetch_add(2, Ordering::Relaxed);
        done.add(1);
        assert_eq!(done.get(), 3);
        assert_eq!(
            sample(&render(&registry), "scanfleet_test_done_total"),
            Some(3.0)
        );
    }
}
