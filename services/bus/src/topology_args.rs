//! The topology's limits as command-line flags, for the bootstrap step
//! (`scanfleet bus init`). Defaults come from [`TopologyConfig::default`],
//! so the flags, the docs' table and the tests cannot drift apart.
//!
//! Sizes take a unit (`256MiB`, `2GiB`, `1024` bytes); durations too
//! (`90s`, `5m`, `12h`, `7d`).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use scanfleet_scan_intents::ClusterName;

use crate::topology::TopologyConfig;

/// A byte count written with a binary unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteSize(pub i64);

/// A duration written with a unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span(pub Duration);

/// Comma-separated durations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Steps(pub Vec<Duration>);

const UNITS: [(&str, i64); 4] = [
    ("TiB", 1 << 40),
    ("GiB", 1 << 30),
    ("MiB", 1 << 20),
    ("KiB", 1 << 10),
];

impl FromStr for ByteSize {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (number, unit) = UNITS
            .iter()
            .find_map(|(name, size)| text.strip_suffix(name).map(|n| (n, *size)))
            .unwrap_or((text, 1));
        number
            .trim()
            .parse::<i64>()
            .ok()
            .and_then(|n| n.checked_mul(unit))
            .map(ByteSize)
            .ok_or_else(|| format!("{text:?} is not a size like 1024, 256MiB or 2GiB"))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match UNITS
            .iter()
            .find(|(_, size)| self.0 != 0 && self.0 % size == 0)
        {
            Some((name, size)) => write!(f, "{}{name}", self.0 / size),
            None => write!(f, "{}", self.0),
        }
    }
}

const SPANS: [(&str, u64); 4] = [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)];

impl FromStr for Span {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        SPANS
            .iter()
            .find_map(|(name, secs)| text.strip_suffix(name).map(|n| (n, *secs)))
            .and_then(|(n, secs)| n.trim().parse::<u64>().ok()?.checked_mul(secs))
            .map(|secs| Span(Duration::from_secs(secs)))
            .ok_or_else(|| format!("{text:?} is not a duration like 90s, 5m, 12h or 7d"))
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0.as_secs();
        let (name, unit) = SPANS
            .iter()
            .find(|(_, unit)| secs != 0 && secs.is_multiple_of(*unit))
            .copied()
            .unwrap_or(("s", 1));
        write!(f, "{}{name}", secs / unit)
    }
}

impl FromStr for Steps {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        text.split(',')
            .map(|step| step.parse::<Span>().map(|s| s.0))
            .collect::<Result<_, _>>()
            .map(Steps)
    }
}

impl fmt::Display for Steps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let steps: Vec<String> = self.0.iter().map(|d| Span(*d).to_string()).collect();
        f.write_str(&steps.join(","))
    }
}

fn defaults() -> TopologyConfig {
    TopologyConfig::default()
}

/// The topology's limits (`scanfleet bus init` flags). Each is documented
/// in `docs/bus-topology.md`.
#[derive(Debug, Clone, clap::Args)]
pub struct TopologyArgs {
    /// Replicas of every stream and bucket (3 in a production cluster).
    #[arg(long, default_value_t = defaults().replicas)]
    pub replicas: usize,
    /// SCAN_INTENTS capacity in messages; publishing beyond it is refused (429).
    #[arg(long, default_value_t = defaults().intents_max_messages)]
    pub intents_max_messages: i64,
    /// SCAN_INTENTS capacity in bytes; publishing beyond it is refused (429).
    #[arg(long, default_value_t = ByteSize(defaults().intents_max_bytes))]
    pub intents_max_bytes: ByteSize,
    /// SCAN_RESULTS capacity; at the limit the oldest results go.
    #[arg(long, default_value_t = ByteSize(defaults().results_max_bytes))]
    pub results_max_bytes: ByteSize,
    /// How long results stay replayable (also the reports' and status records' age).
    #[arg(long, default_value_t = Span(defaults().results_max_age))]
    pub results_max_age: Span,
    /// SCAN_QUARANTINE capacity; at the limit the oldest quarantined results go.
    #[arg(long, default_value_t = ByteSize(defaults().quarantine_max_bytes))]
    pub quarantine_max_bytes: ByteSize,
    /// SCAN_REPORTS (object store) capacity.
    #[arg(long, default_value_t = ByteSize(defaults().reports_max_bytes))]
    pub reports_max_bytes: ByteSize,
    /// How long dead letters and quarantined results are kept.
    #[arg(long, default_value_t = Span(defaults().dlq_max_age))]
    pub dead_letter_max_age: Span,
    /// How long a message id is remembered for publish dedupe (and API
    /// idempotency keys are kept).
    #[arg(long, default_value_t = Span(defaults().duplicate_window))]
    pub duplicate_window: Span,
    /// Deliveries of an intent before it is dead-lettered.
    #[arg(long, default_value_t = defaults().max_deliver)]
    pub max_deliver: i64,
    /// Redelivery delays after a worker stopped renewing its lease; the
    /// first is also the ack wait. At most --max-deliver steps.
    #[arg(long, default_value_t = Steps(defaults().backoff))]
    pub backoff: Steps,
    /// Unacknowledged intents per class and cluster across the fleet
    /// (workers × concurrency).
    #[arg(long, default_value_t = defaults().max_ack_pending)]
    pub max_ack_pending: i64,
    /// A cluster the fleet scans (repeat for each): each gets its own
    /// intent consumers, which its workers pull from [default: default]
    #[arg(long = "cluster", value_name = "NAME")]
    pub clusters: Vec<String>,
}

impl TopologyArgs {
    /// The configuration these flags describe.
    ///
    /// # Errors
    /// Every invalid flag, each named ([`TopologyConfig::validate`]).
    pub fn config(&self) -> Result<TopologyConfig, Vec<String>> {
        let mut problems = Vec::new();
        let clusters = if self.clusters.is_empty() {
            defaults().clusters
        } else {
            self.clusters
                .iter()
                .filter_map(|name| {
                    ClusterName::new(name)
                        .map_err(|e| problems.push(format!("--cluster {name:?}: {e}")))
                        .ok()
                })
                .collect()
        };
        let config = TopologyConfig {
            replicas: self.replicas,
            intents_max_messages: self.intents_max_messages,
            intents_max_bytes: self.intents_max_bytes.0,
            duplicate_window: self.duplicate_window.0,
            results_max_age: self.results_max_age.0,
            results_max_bytes: self.results_max_bytes.0,
            reports_max_bytes: self.reports_max_bytes.0,
            quarantine_max_bytes: self.quarantine_max_bytes.0,
            dlq_max_age: self.dead_letter_max_age.0,
            max_deliver: self.max_deliver,
            backoff: self.backoff.0.clone(),
            max_ack_pending: self.max_ack_pending,
            clusters,
        };
        if let Err(more) = config.validate() {
            problems.extend(more);
        }
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(problems)
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        topology: TopologyArgs,
    }

    #[test]
    fn defaults_are_the_topology_defaults() {
        let cli = Cli::try_parse_from(["bus"]).unwrap();
        let config = cli.topology.config().unwrap();
        let default = TopologyConfig::default();
        assert_eq!(config.results_max_bytes, default.results_max_bytes);
        assert_eq!(config.quarantine_max_bytes, default.quarantine_max_bytes);
        assert_eq!(config.reports_max_bytes, default.reports_max_bytes);
        assert_eq!(config.backoff, default.backoff);
        assert_eq!(config.results_max_age, default.results_max_age);
        assert_eq!(ByteSize(2 << 30).to_string(), "2GiB");
        assert_eq!(Span(Duration::from_secs(7 * 86_400)).to_string(), "7d");
        assert_eq!(
            Steps(default.backoff).to_string(),
            "1m,2m,5m,10m",
            "round-trips through the parser"
        );
    }

    #[test]
    fn flags_set_the_limits_and_bad_values_are_named() {
        let cli = Cli::try_parse_from([
            "bus",
            "--results-max-bytes",
            "512MiB",
            "--quarantine-max-bytes",
            "64MiB",
            "--backoff",
            "30s,90s",
            "--replicas",
            "3",
        ])
        .unwrap();
        let config = cli.topology.config().unwrap();
        assert_eq!(config.results_max_bytes, 512 << 20);
        assert_eq!(config.quarantine_max_bytes, 64 << 20);
        assert_eq!(
            config.backoff,
            vec![Duration::from_secs(30), Duration::from_secs(90)]
        );
        assert_eq!(config.replicas, 3);

        let error = Cli::try_parse_from(["bus", "--results-max-bytes", "lots"])
            .err()
            .unwrap()
            .to_string();
        assert!(error.contains("--results-max-bytes"), "{error}");
        assert!(error.contains("not a size"), "{error}");
        let error = Cli::try_parse_from(["bus", "--duplicate-window", "5 minutes"])
            .err()
            .unwrap()
            .to_string();
        assert!(error.contains("not a duration"), "{error}");

        let cli = Cli::try_parse_from([
            "bus",
            "--max-deliver",
            "2",
            "--replicas",
            "9",
            "--cluster",
            "East_1",
            "--cluster",
            "west",
            "--cluster",
            "west",
        ])
        .unwrap();
        let problems = cli.topology.config().unwrap_err().join("\n");
        assert!(problems.contains("--cluster \"East_1\""), "{problems}");
        assert!(
            problems.contains("--cluster west: named twice"),
            "{problems}"
        );
        assert!(problems.contains("--replicas: 9"), "{problems}");
        assert!(problems.contains("--backoff: 4 steps"), "{problems}");
    }
}
