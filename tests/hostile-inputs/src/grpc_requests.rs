//! Hostile gRPC requests for intake's `Intake` and the collector's
//! `Results`: bytes that are not the method's message, messages that
//! break a field rule, messages past the size limit, and well-formed
//! requests from callers who are not who they say or may not do it.
//!
//! A generator never makes a request that a correct service would
//! accept: malformed bytes are re-drawn until they do not decode as the
//! method's message, and each field mutation breaks a documented rule.

use prost::Message;
use prost_types::{Duration, Timestamp};
use scanfleet_contracts::v1::{
    GetResultRequest, GetScanRequest, LabelSelectorTarget, ListResultsRequest, ProfileRef,
    ResultFilter, SubmitBatchRequest, SubmitRequest, TargetSelector, ThresholdRef,
    WatchResultsRequest, profile_ref::Pin, target_selector::Selector,
};

use crate::bad_tokens::{BadCredential, RealTokens, bad_credential};
use crate::raw_grpc::Credential;
use crate::seeded::Seeded;
use crate::verdicts::{Hostile, bounded};

/// Who the hostile caller claims to be.
#[derive(Debug, Clone)]
pub struct Callers {
    /// A token with every right (so field rules, not rights, refuse).
    pub operator: String,
    /// A genuine token with no rights at all.
    pub stranger: String,
    /// Tokens for the bad-credential generators.
    pub real: RealTokens,
}

/// One hostile gRPC call.
#[derive(Debug, Clone)]
pub struct GrpcInput {
    kind: &'static str,
    /// The full method path.
    pub method: &'static str,
    /// Whether the method streams its answer.
    pub streaming: bool,
    /// The exact request bytes.
    pub message: Vec<u8>,
    /// The `authorization` it sends.
    pub credential: Credential,
    shown: String,
}

impl Hostile for GrpcInput {
    fn kind(&self) -> &'static str {
        self.kind
    }

    fn describe(&self) -> String {
        let credential = match &self.credential {
            Credential::None => "no authorization".to_owned(),
            Credential::Bearer(t) => format!("Bearer {}", bounded(t, 120)),
            Credential::Header(h) => format!("authorization: {}", bounded(h, 120)),
        };
        format!(
            "{} [{credential}] {} ({} bytes: {})",
            self.method,
            self.shown,
            self.message.len(),
            hex::encode(&self.message[..self.message.len().min(96)])
        )
    }
}

/// Past tonic's 4 MiB default limit on a decoded message.
const OVERSIZED: usize = 4 * 1024 * 1024 + 1;

fn input<M: Message + std::fmt::Debug>(
    kind: &'static str,
    method: &'static str,
    message: &M,
    credential: Credential,
) -> GrpcInput {
    let shown = bounded(&format!("{message:?}"), 400);
    GrpcInput {
        kind,
        method,
        streaming: method.ends_with("/Watch"),
        message: message.encode_to_vec(),
        credential,
        shown,
    }
}

fn as_credential(bad: &BadCredential) -> Credential {
    match bad {
        BadCredential::Token(_, t) => Credential::Bearer(t.clone()),
        BadCredential::Header(_, Some(h)) => Credential::Header(h.clone()),
        BadCredential::Header(_, None) => Credential::None,
    }
}

/// Bytes that do not decode as `M`: random, a valid encoding cut short,
/// or a valid encoding with bytes spliced in; re-drawn until undecodable.
fn undecodable<M: Message + Default>(rng: &mut Seeded, valid: &[u8]) -> Vec<u8> {
    for _ in 0..200 {
        let bytes = match rng.below(3) {
            0 => {
                let n = rng.between(1, 2048);
                rng.bytes(n)
            }
            1 if valid.len() > 1 => valid[..rng.between(1, valid.len() - 1)].to_vec(),
            _ => {
                let mut b = valid.to_vec();
                for _ in 0..rng.between(1, 4) {
                    let at = rng.below(b.len() + 1);
                    let n = rng.between(1, 6);
                    let junk = rng.bytes(n);
                    b.splice(at..at, junk);
                }
                b
            }
        };
        if M::decode(bytes.as_slice()).is_err() {
            return bytes;
        }
    }
    // A length-delimited field 1 that claims more bytes than follow.
    vec![0x0a, 0xff, 0x01, 0x00]
}

/// A submission intake would accept from a caller allowed to make it.
pub fn valid_submit(rng: &mut Seeded) -> SubmitRequest {
    SubmitRequest {
        target: Some(TargetSelector {
            cluster: String::new(),
            selector: Some(Selector::Uri(format!(
                "k8s://apps/web-{}/app",
                rng.below(1000)
            ))),
        }),
        profile: Some(ProfileRef {
            name: "container-baseline".into(),
            pin: Some(Pin::Version("1.0.0".into())),
        }),
        approach: 1,
        ..Default::default()
    }
}

fn bad_dns_label(rng: &mut Seeded) -> String {
    match rng.below(6) {
        0 => String::new(),
        1 => format!("Web{}", rng.below(100)),
        2 => "a".repeat(rng.between(254, 600)),
        3 => format!("-{}", rng.text(5, b"abc")),
        4 => format!("a_{}", rng.text(5, b"xyz")),
        _ => rng.unicode_between(1, 12) + "\u{0}",
    }
}

/// One field rule broken, by name.
fn broken_submit(rng: &mut Seeded) -> (String, SubmitRequest) {
    let mut r = valid_submit(rng);
    let target = r.target.as_mut().expect("set above");
    let profile = r.profile.as_mut().expect("set above");
    let rule = match rng.below(14) {
        0 => {
            target.selector = Some(Selector::Uri(format!("x{}", rng.printable_between(0, 60))));
            "uri-not-k8s"
        }
        1 => {
            let bad = bad_dns_label(rng);
            let uri = match rng.below(4) {
                0 => format!("k8s://{bad}/web/app"),
                1 => format!("k8s://apps/{bad}/app"),
                2 => format!("k8s://apps/web/{bad}"),
                _ => format!("k8s://apps/web{}", "/x".repeat(rng.between(2, 5))),
            };
            target.selector = Some(Selector::Uri(uri));
            "uri-bad-name"
        }
        2 => {
            target.selector = Some(Selector::Uri(rng.unicode_between(0, 300)));
            "uri-unicode"
        }
        3 => {
            if rng.chance(50) {
                r.target = None;
            } else {
                r.profile = None;
            }
            "unset-oneof"
        }
        4 => {
            profile.name = format!("{} {}", rng.printable(4), rng.unicode(3));
            "profile-name"
        }
        5 => {
            profile.pin = Some(Pin::Digest(format!(
                "sha256:{}",
                rng.printable_between(0, 70)
            )));
            "profile-digest"
        }
        6 => {
            r.approach = 50 + rng.below(1000) as i32;
            "approach-unknown"
        }
        7 => {
            r.timeout = Some(match rng.below(3) {
                0 => Duration {
                    seconds: -(rng.between(1, 1 << 40) as i64),
                    nanos: 0,
                },
                1 => Duration {
                    seconds: 10,
                    nanos: 1_000_000_000 + rng.below(1 << 30) as i32,
                },
                _ => Duration {
                    seconds: i64::MAX - rng.below(10) as i64,
                    nanos: 0,
                },
            });
            "timeout"
        }
        8 => {
            r.profile_inputs
                .insert(format!("bad key {}", rng.printable(3)), "v".into());
            "input-key"
        }
        9 => {
            r.idempotency_key = match rng.below(2) {
                0 => format!("has space {}", rng.printable(4)),
                _ => "k".repeat(rng.between(129, 4000)),
            };
            "idempotency-key"
        }
        10 => {
            r.threshold = Some(match rng.below(2) {
                0 => ThresholdRef {
                    name: format!("Bad Name {}", rng.printable(3)),
                    digest: String::new(),
                },
                _ => ThresholdRef {
                    name: "gate".into(),
                    digest: format!("sha256:{}", "a".repeat(64)),
                },
            });
            "threshold"
        }
        11 => {
            target.cluster = bad_dns_label(rng);
            if target.cluster.is_empty() {
                target.cluster = "UPPER".into();
            }
            "cluster-name"
        }
        12 => {
            let selector = [
                "a=b,", "!!", "app in (", "a==b==c", "=x", "(x)", ",", "a in b",
            ];
            target.selector = Some(Selector::LabelSelector(LabelSelectorTarget {
                namespace: "apps".into(),
                selector: rng.pick(&selector).to_string(),
                container: String::new(),
            }));
            "label-selector"
        }
        _ => {
            target.selector = Some(Selector::LabelSelector(LabelSelectorTarget {
                namespace: bad_dns_label(rng).replace('\u{0}', "") + "Q",
                selector: String::new(),
                container: String::new(),
            }));
            "selector-namespace"
        }
    };
    (rule.to_owned(), r)
}

const SUBMIT: &str = "/scanfleet.v1.Intake/Submit";
const SUBMIT_BATCH: &str = "/scanfleet.v1.Intake/SubmitBatch";
const GET_SCAN: &str = "/scanfleet.v1.Intake/GetScan";

/// Input `index` of the intake gRPC barrage.
pub fn intake_input(rng: &mut Seeded, index: usize, callers: &Callers) -> GrpcInput {
    let operator = Credential::Bearer(callers.operator.clone());
    if index % 500 == 499 {
        let mut r = valid_submit(rng);
        r.idempotency_key = "x".repeat(OVERSIZED);
        return input("oversized", SUBMIT, &r, operator);
    }
    match index % 10 {
        0 | 1 => {
            let valid = valid_submit(rng);
            let (method, bytes) = match rng.below(3) {
                0 => (
                    SUBMIT,
                    undecodable::<SubmitRequest>(rng, &valid.encode_to_vec()),
                ),
                1 => {
                    let batch = SubmitBatchRequest {
                        requests: vec![valid.clone(), valid],
                    };
                    (
                        SUBMIT_BATCH,
                        undecodable::<SubmitBatchRequest>(rng, &batch.encode_to_vec()),
                    )
                }
                _ => {
                    let get = GetScanRequest {
                        scan_id: "01J0000000000000000000000Z".into(),
                    };
                    (
                        GET_SCAN,
                        undecodable::<GetScanRequest>(rng, &get.encode_to_vec()),
                    )
                }
            };
            GrpcInput {
                kind: "malformed-protobuf",
                method,
                streaming: false,
                message: bytes,
                credential: operator,
                shown: "(raw bytes)".into(),
            }
        }
        2..=4 => {
            let (rule, r) = broken_submit(rng);
            let mut i = input("field-rule", SUBMIT, &r, operator);
            i.shown = format!("rule {rule}: {}", i.shown);
            i
        }
        5 => {
            let mut requests: Vec<SubmitRequest> =
                (0..rng.between(1, 5)).map(|_| valid_submit(rng)).collect();
            if rng.chance(30) {
                requests = (0..rng.between(101, 300))
                    .map(|_| valid_submit(rng))
                    .collect();
            } else {
                let at = rng.below(requests.len() + 1);
                requests.insert(at, broken_submit(rng).1);
            }
            input(
                "batch-rule",
                SUBMIT_BATCH,
                &SubmitBatchRequest { requests },
                operator,
            )
        }
        6 => {
            let scan_id = match rng.below(3) {
                0 => String::new(),
                1 => rng.unicode_between(1, 200),
                _ => rng.printable_between(1, 25).to_lowercase() + "!",
            };
            input("scan-id", GET_SCAN, &GetScanRequest { scan_id }, operator)
        }
        7 | 8 => {
            let bad = bad_credential(rng, index / 10 + index % 10, &callers.real);
            input(bad.kind(), SUBMIT, &valid_submit(rng), as_credential(&bad))
        }
        _ => input(
            "no-rights",
            SUBMIT,
            &valid_submit(rng),
            Credential::Bearer(callers.stranger.clone()),
        ),
    }
}

const GET: &str = "/scanfleet.v1.Results/Get";
const LIST: &str = "/scanfleet.v1.Results/List";
const WATCH: &str = "/scanfleet.v1.Results/Watch";
const GET_REPORT: &str = "/scanfleet.v1.Results/GetReport";

fn broken_filter(rng: &mut Seeded) -> ResultFilter {
    let mut f = ResultFilter::default();
    let bad_time = |rng: &mut Seeded| Timestamp {
        seconds: rng.below(1 << 40) as i64,
        nanos: if rng.chance(50) {
            -(rng.between(1, 1 << 30) as i32)
        } else {
            1_000_000_000 + rng.below(1 << 30) as i32
        },
    };
    match rng.below(3) {
        0 => f.outcome = 3 + rng.below(1000) as i32,
        1 => f.since = Some(bad_time(rng)),
        _ => f.until = Some(bad_time(rng)),
    }
    f
}

/// Input `index` of the collector gRPC barrage.
pub fn collector_input(rng: &mut Seeded, index: usize, callers: &Callers) -> GrpcInput {
    let operator = Credential::Bearer(callers.operator.clone());
    if index % 500 == 499 {
        let r = GetResultRequest {
            scan_id: "x".repeat(OVERSIZED),
        };
        return input("oversized", GET, &r, operator);
    }
    match index % 10 {
        0 | 1 => {
            let (method, bytes) = match rng.below(4) {
                0 => (
                    GET,
                    undecodable::<GetResultRequest>(
                        rng,
                        &GetResultRequest {
                            scan_id: "01J0000000000000000000000Z".into(),
                        }
                        .encode_to_vec(),
                    ),
                ),
                1 => (
                    GET_REPORT,
                    undecodable::<GetResultRequest>(
                        rng,
                        &GetResultRequest {
                            scan_id: "01J0000000000000000000000Z".into(),
                        }
                        .encode_to_vec(),
                    ),
                ),
                2 => {
                    let list = ListResultsRequest {
                        filter: Some(ResultFilter {
                            namespace: "apps".into(),
                            ..Default::default()
                        }),
                        page_size: 10,
                        page_token: String::new(),
                    };
                    (
                        LIST,
                        undecodable::<ListResultsRequest>(rng, &list.encode_to_vec()),
                    )
                }
                _ => {
                    let watch = WatchResultsRequest {
                        filter: None,
                        scan_ids: vec!["01J0000000000000000000000Z".into()],
                        include_existing: true,
                    };
                    (
                        WATCH,
                        undecodable::<WatchResultsRequest>(rng, &watch.encode_to_vec()),
                    )
                }
            };
            GrpcInput {
                kind: "malformed-protobuf",
                method,
                streaming: method == WATCH,
                message: bytes,
                credential: operator,
                shown: "(raw bytes)".into(),
            }
        }
        2 | 3 => {
            let scan_id = match rng.below(4) {
                0 => String::new(),
                1 => rng.unicode_between(1, 300),
                2 => format!("../../{}", rng.printable(20)),
                _ => format!("{}' OR '1'='1", rng.printable(8)),
            };
            let method = if rng.chance(50) { GET } else { GET_REPORT };
            input("scan-id", method, &GetResultRequest { scan_id }, operator)
        }
        4 | 5 => {
            let mut r = ListResultsRequest {
                filter: None,
                page_size: rng.below(1000) as u32,
                page_token: String::new(),
            };
            if rng.chance(50) {
                r.page_token = match rng.below(3) {
                    0 => rng.printable_between(1, 100) + "!",
                    1 => hex::encode(format!("v2:{}", rng.printable(10))),
                    _ => hex::encode(format!("v1:{}:", rng.printable(6).replace(':', ""))),
                };
            } else {
                r.filter = Some(broken_filter(rng));
            }
            input("list-rule", LIST, &r, operator)
        }
        6 => {
            let r = WatchResultsRequest {
                filter: Some(broken_filter(rng)),
                scan_ids: Vec::new(),
                include_existing: rng.chance(50),
            };
            input("watch-rule", WATCH, &r, operator)
        }
        7 | 8 => {
            let bad = bad_credential(rng, index / 10 + index % 10, &callers.real);
            let credential = as_credential(&bad);
            match rng.below(3) {
                0 => input(bad.kind(), LIST, &ListResultsRequest::default(), credential),
                1 => input(
                    bad.kind(),
                    GET,
                    &GetResultRequest {
                        scan_id: "01J0000000000000000000000Z".into(),
                    },
                    credential,
                ),
                _ => input(
                    bad.kind(),
                    WATCH,
                    &WatchResultsRequest {
                        include_existing: true,
                        ..Default::default()
                    },
                    credential,
                ),
            }
        }
        _ => {
            // An empty store spans no namespace, so only a named one is
            // refused outright (a listing shows what the caller may see).
            let filter = ResultFilter {
                namespace: rng.pick(&["apps", "shop", "kube-system"]).to_string(),
                ..Default::default()
            };
            let r = ListResultsRequest {
                filter: Some(filter),
                ..Default::default()
            };
            input(
                "no-rights",
                LIST,
                &r,
                Credential::Bearer(callers.stranger.clone()),
            )
        }
    }
}
