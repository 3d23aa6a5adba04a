//! What counts as refused, and the tally of a barrage.
//!
//! Every hostile input must be refused with a client-error class: a gRPC
//! `INVALID_ARGUMENT`, `UNAUTHENTICATED`, `PERMISSION_DENIED`,
//! `RESOURCE_EXHAUSTED` or `NOT_FOUND` (the twin of HTTP 404, for ids that
//! name nothing), an HTTP 4xx, or, for bytes that are not TLS or a
//! certificate from another CA, the connection closed in the handshake.
//! A 5xx, `INTERNAL`, `UNKNOWN`, an accepted input, or no answer within
//! [`DEADLINE`] is a failure, printed with the seed and the input.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt as _;
use tonic::Code;

/// The longest any one input may take to be answered.
pub const DEADLINE: Duration = Duration::from_secs(15);

/// Inputs in flight at once, per barrage.
pub const CONCURRENCY: usize = 12;

/// How an edge answered one input.
#[derive(Debug, Clone)]
pub enum Answer {
    /// A gRPC status (`Code::Ok` when the call succeeded).
    Grpc(Code, String),
    /// An HTTP status and the start of the body.
    Http(u16, String),
    /// The server closed the connection during the TLS handshake (an
    /// alert, a reset or EOF), before any application data.
    HandshakeRefused(String),
    /// Something that is none of the above (a transport error, bytes
    /// after a handshake that should have failed).
    Other(String),
}

/// The judgement of one answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judgement {
    /// Refused with a client-error class.
    Refused,
    /// Refused by the per-caller rate limit (429 / `RESOURCE_EXHAUSTED`
    /// naming the limit): refused, and counted apart.
    Limited,
    /// Anything else.
    Wrong(String),
}

/// Whether `answer` is a proper refusal.
pub fn judge(answer: &Answer) -> Judgement {
    match answer {
        Answer::Grpc(Code::ResourceExhausted, m) if m.contains("too many requests") => {
            Judgement::Limited
        }
        Answer::Grpc(
            Code::InvalidArgument
            | Code::Unauthenticated
            | Code::PermissionDenied
            | Code::ResourceExhausted
            | Code::NotFound,
            _,
        ) => Judgement::Refused,
        // The HTTP/2 server refuses oversized header blocks itself (431),
        // before gRPC: a 4xx, though without a grpc-status.
        Answer::Grpc(Code::Unknown, m) if m.contains("mapped from HTTP status code 4") => {
            Judgement::Refused
        }
        Answer::Http(429, _) => Judgement::Limited,
        Answer::Http(400..=499, _) => Judgement::Refused,
        Answer::HandshakeRefused(_) => Judgement::Refused,
        other => Judgement::Wrong(format!("{other:?}")),
    }
}

/// One generated input: what kind it is and how to print it.
pub trait Hostile: Send + 'static {
    /// The generator that made it (`bad-token`, `malformed-json`, …).
    fn kind(&self) -> &'static str;
    /// The input, printable and bounded, to reproduce a failure.
    fn describe(&self) -> String;
}

/// Cuts `text` to at most `max` characters, saying how long it was.
pub fn bounded(text: &str, max: usize) -> String {
    let n = text.chars().count();
    if n <= max {
        return text.to_owned();
    }
    let head: String = text.chars().take(max).collect();
    format!("{head}… ({n} chars)")
}

#[derive(Debug, Default, Clone)]
struct EdgeCount {
    refused: usize,
    limited: usize,
    kinds: BTreeMap<&'static str, usize>,
    failures: Vec<String>,
    failed_kinds: BTreeMap<String, (usize, String)>,
    slowest: Duration,
}

/// Counts per edge, shared by concurrent barrages.
#[derive(Debug)]
pub struct Tally {
    seed: u64,
    edges: Mutex<BTreeMap<&'static str, EdgeCount>>,
}

impl Tally {
    /// An empty tally for a run with `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            edges: Mutex::new(BTreeMap::new()),
        }
    }

    fn record(
        &self,
        edge: &'static str,
        index: usize,
        input: &dyn Hostile,
        answer: &Answer,
        took: Duration,
    ) {
        let verdict = judge(answer);
        let mut edges = self.edges.lock().unwrap();
        let count = edges.entry(edge).or_default();
        count.slowest = count.slowest.max(took);
        *count.kinds.entry(input.kind()).or_default() += 1;
        match verdict {
            Judgement::Refused => count.refused += 1,
            Judgement::Limited => count.limited += 1,
            Judgement::Wrong(why) => {
                let class: String = why.chars().take(60).collect();
                let example = format!("input #{index}: {}", bounded(&input.describe(), 600));
                count
                    .failed_kinds
                    .entry(format!("{} → {class}", input.kind()))
                    .or_insert((0, example))
                    .0 += 1;
                count.failures.push(format!(
                    "{edge} input #{index} ({}), seed {:#x}: {}\n    input: {}",
                    input.kind(),
                    self.seed,
                    bounded(&why, 400),
                    bounded(&input.describe(), 600),
                ))
            }
        }
    }

    /// Total inputs answered (refused, limited or not).
    pub fn total(&self) -> usize {
        let edges = self.edges.lock().unwrap();
        edges
            .values()
            .map(|c| c.refused + c.limited + c.failures.len())
            .sum()
    }

    /// Every failure so far.
    pub fn failures(&self) -> Vec<String> {
        let edges = self.edges.lock().unwrap();
        edges.values().flat_map(|c| c.failures.clone()).collect()
    }

    /// The failures grouped by edge, generator and the start of the answer.
    pub fn failure_summary(&self) -> String {
        let edges = self.edges.lock().unwrap();
        let mut out = String::new();
        for (edge, c) in edges.iter() {
            for (what, (n, example)) in &c.failed_kinds {
                out.push_str(&format!("  {edge}: {n} × {what}\n      e.g. {example}\n"));
            }
        }
        out
    }

    /// How many hit a rate limit, over all edges.
    pub fn limited(&self) -> usize {
        let edges = self.edges.lock().unwrap();
        edges.values().map(|c| c.limited).sum()
    }

    /// `hostile inputs: intake-grpc 3000 refused (0 rate-limited), …;
    /// total 10,240` and one line per edge with its generators.
    pub fn report(&self) -> String {
        let edges = self.edges.lock().unwrap();
        let per_edge: Vec<String> = edges
            .iter()
            .map(|(edge, c)| {
                format!(
                    "{edge} {} refused ({} rate-limited){}",
                    c.refused + c.limited,
                    c.limited,
                    match c.failures.len() {
                        0 => String::new(),
                        n => format!(", {n} NOT refused"),
                    }
                )
            })
            .collect();
        drop(edges);
        let mut out = format!(
            "hostile inputs (seed {:#x}): {}; total {}",
            self.seed,
            per_edge.join(", "),
            thousands(self.total())
        );
        for (edge, c) in self.edges.lock().unwrap().iter() {
            let kinds: Vec<String> = c.kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
            out.push_str(&format!(
                "\n  {edge} (slowest answer {:.1?}): {}",
                c.slowest,
                kinds.join(", ")
            ));
        }
        out
    }
}

/// `10240` → `10,240`.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Sends every input of `edge` through `attempt`, [`CONCURRENCY`] at a
/// time, each within [`DEADLINE`], and records the answers in `tally`.
pub async fn barrage<I, F, Fut>(tally: Arc<Tally>, edge: &'static str, inputs: Vec<I>, attempt: F)
where
    I: Hostile,
    F: Fn(Arc<I>) -> Fut,
    Fut: Future<Output = Answer>,
{
    let (attempt, tally) = (&attempt, &tally);
    futures::stream::iter(inputs.into_iter().enumerate())
        .map(|(index, input)| async move {
            let input = Arc::new(input);
            let started = std::time::Instant::now();
            let answer = match tokio::time::timeout(DEADLINE, attempt(input.clone())).await {
                Ok(answer) => answer,
                Err(_) => Answer::Other(format!("no answer within {DEADLINE:?} (a hang)")),
            };
            tally.record(edge, index, input.as_ref(), &answer, started.elapsed());
        })
        .buffer_unordered(CONCURRENCY)
        .collect::<()>()
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_errors_are_refusals_and_server_errors_are_not() {
        assert_eq!(judge(&Answer::Http(404, String::new())), Judgement::Refused);
        assert_eq!(judge(&Answer::Http(429, String::new())), Judgement::Limited);
        assert!(matches!(
            judge(&Answer::Http(500, String::new())),
            Judgement::Wrong(_)
        ));
        assert!(matches!(
            judge(&Answer::Grpc(Code::Internal, String::new())),
            Judgement::Wrong(_)
        ));
        assert!(matches!(
            judge(&Answer::Grpc(Code::Ok, String::new())),
            Judgement::Wrong(_)
        ));
        assert_eq!(thousands(10240), "10,240");
    }
}
