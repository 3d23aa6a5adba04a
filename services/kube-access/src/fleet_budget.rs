//! The arithmetic of one cluster's fleet-wide API budget: a token bucket
//! that every worker of the cluster debits, whatever the number of workers.
//!
//! The bucket's state lives in a shared store (the worker keeps it in a
//! JetStream KV entry, written compare-and-set); this module only decides,
//! from the state read and the time now, how many permits a lease gets and
//! what state to write back. It does no IO, so every rule is unit-tested.
//!
//! Why the rules are safe:
//! - **Debit at lease time.** A worker takes a small batch of permits in one
//!   write; they are gone from the bucket before any of them is spent, so
//!   however the batches are spread, the permits handed out over any span
//!   `w` never exceed `burst + qps · w`.
//! - **Unspent permits lapse, never return.** A crashed worker's batch is
//!   simply lost capacity; nothing has to notice the crash.
//! - **Time never runs backwards in the state.** `refilled_at_ms` only moves
//!   forward, so a worker whose clock is behind gets no refill until its
//!   clock passes the stored instant (it waits; it cannot over-grant), and a
//!   worker whose clock is ahead can credit at most its lead once.
//! - **A 429 empties the bucket and pauses it** until the server's
//!   `Retry-After`, for every worker: refill restarts from zero at the end.
//! - **The strictest configured budget holds.** Workers are configured one
//!   by one, so during a rolling update (or by mistake) two workers of a
//!   cluster may name different budgets. The state records the limits
//!   applied ([`AppliedLimits`]); a looser worker applies a stricter stored
//!   qps or burst as long as a worker configured with it renewed it within
//!   [`STRICTER_LIMIT_HOLDS`]. The fleet never runs above the budget of any
//!   worker still running, and relaxes once the stricter ones are gone.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The budget of one cluster: calls per second and burst, for the whole
/// fleet of workers together, as the API server sees them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BudgetLimits {
    /// Sustained calls per second, fleet-wide.
    pub qps: f64,
    /// Calls the fleet may make at once after a quiet period.
    pub burst: u32,
    /// How long after its lease a permit's call may still reach the server
    /// (unspent permits' lease time plus delivery). The bucket holds back
    /// `qps × in_flight` of the burst for it: permits leased over a span
    /// `w` arrive over a span as short as `w − in_flight`, so without the
    /// reserve the server could see up to `qps × in_flight` calls more than
    /// `burst + qps · w` in a window.
    pub in_flight: Duration,
    /// Whether these limits are the cluster's configured budget.
    pub standing: Standing,
}

/// Whether a participant's limits are the cluster's configured budget.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Standing {
    /// Configured with the cluster's budget (a worker): its qps and burst
    /// count in the strictest-holds rule.
    #[default]
    Configured,
    /// Not configured with it (intake, whose own calls share the cluster's
    /// budget without configuring it). Applies the limits the workers last
    /// recorded, however long ago, and its own (a fallback) only while no
    /// worker ever recorded any.
    Following,
}

impl BudgetLimits {
    /// Permits the bucket holds when full: the burst less the in-flight
    /// reserve, at least one.
    pub fn capacity(self) -> f64 {
        (f64::from(self.burst) - self.qps * self.in_flight.as_secs_f64())
            .floor()
            .max(1.0)
    }

    /// The default lease size: an eighth of the burst, at least one, so a
    /// worker saves round trips without taking a large share of the burst.
    pub fn default_lease(self) -> u32 {
        (self.burst / 8).max(1)
    }
}

/// The state kept in the shared store for one cluster.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct BucketState {
    /// Permits left (fractional: refill is continuous).
    pub tokens: f64,
    /// Wall-clock instant (Unix ms) the tokens were counted at.
    pub refilled_at_ms: i64,
    /// No permit is granted before this instant (Unix ms), set from a 429's
    /// `Retry-After`; 0 when never paused.
    #[serde(default)]
    pub paused_until_ms: i64,
    /// The limits the last lease applied; absent in states written before
    /// they were recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied: Option<AppliedLimits>,
}

/// How long a stricter qps or burst recorded by another worker holds
/// without being renewed by a worker configured with it: longer than any
/// gap between an active worker's leases, short enough that a budget raised
/// by a rolling update takes effect soon after the last old worker stops.
pub const STRICTER_LIMIT_HOLDS: Duration = Duration::from_secs(10);

/// The qps and burst a lease applied, each with the instant (Unix ms) a
/// worker configured with that value last applied it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct AppliedLimits {
    /// Calls per second applied.
    pub qps: f64,
    /// When a worker configured with `qps` last applied it.
    pub qps_at_ms: i64,
    /// Burst applied.
    pub burst: u32,
    /// When a worker configured with `burst` last applied it.
    pub burst_at_ms: i64,
}

/// One limit: a fresh stricter stored value wins (keeping its instant);
/// otherwise this worker's own value, renewed now.
fn stricter<T: PartialOrd + Copy>(own: T, stored: Option<(T, i64)>, now_ms: i64) -> (T, i64) {
    let holds = i64::try_from(STRICTER_LIMIT_HOLDS.as_millis()).unwrap_or(i64::MAX);
    match stored {
        Some((value, at)) if value < own && now_ms.saturating_sub(at) <= holds => (value, at),
        _ => (own, now_ms),
    }
}

impl BudgetLimits {
    /// The limits that apply now, and the record to store with them. A
    /// configured participant applies its own, tightened by any stricter
    /// qps or burst another recorded recently (see [`STRICTER_LIMIT_HOLDS`]),
    /// and renews what it applies of its own; a following one applies the
    /// record as it stands and leaves it unchanged.
    pub fn applying(
        self,
        stored: Option<AppliedLimits>,
        now_ms: i64,
    ) -> (Self, Option<AppliedLimits>) {
        if self.standing == Standing::Following {
            return match stored {
                Some(a) => (
                    Self {
                        qps: a.qps,
                        burst: a.burst,
                        ..self
                    },
                    Some(a),
                ),
                None => (self, None),
            };
        }
        let (qps, qps_at_ms) = stricter(self.qps, stored.map(|a| (a.qps, a.qps_at_ms)), now_ms);
        let (burst, burst_at_ms) =
            stricter(self.burst, stored.map(|a| (a.burst, a.burst_at_ms)), now_ms);
        let applied = AppliedLimits {
            qps,
            qps_at_ms,
            burst,
            burst_at_ms,
        };
        (Self { qps, burst, ..self }, Some(applied))
    }
}

/// Why a lease got nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitReason {
    /// The bucket is empty; a permit accrues after the wait.
    Empty,
    /// The API server asked the fleet to wait (429 `Retry-After`).
    Paused,
}

/// The answer to a lease request.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Lease {
    /// `permits` granted; write `state` back (compare-and-set) to own them.
    Granted {
        /// Permits granted (1..=wanted).
        permits: u32,
        /// The state to write.
        state: BucketState,
        /// The limits the lease applied (stricter than this worker's own
        /// when another worker's configuration is).
        limits: BudgetLimits,
    },
    /// Nothing now; ask again after `retry_in`. Nothing needs writing.
    Wait {
        /// Until the next permit accrues or the pause ends.
        retry_in: Duration,
        /// Which.
        reason: WaitReason,
    },
}

/// Why a stored state could not be read.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum BudgetStateError {
    /// Larger than any state this module writes.
    #[error("budget state of {0} bytes is larger than the 1 KiB a state takes")]
    TooLarge(usize),
    /// Not a state.
    #[error("budget state is not readable: {0}")]
    Malformed(String),
}

const MAX_STATE_BYTES: usize = 1024;

impl BucketState {
    /// A full bucket, as a cluster's first lease finds it.
    pub fn full(limits: BudgetLimits, now_ms: i64) -> Self {
        Self {
            tokens: limits.capacity(),
            refilled_at_ms: now_ms,
            paused_until_ms: 0,
            applied: None,
        }
    }

    /// The state refilled up to `now_ms` (never beyond the capacity, never
    /// moving the instant backwards, no refill while paused).
    pub fn refilled(self, limits: BudgetLimits, now_ms: i64) -> Self {
        let from = self.refilled_at_ms.max(self.paused_until_ms);
        let elapsed_ms = now_ms.saturating_sub(from).max(0);
        // Stored tokens may exceed a burst lowered since they were written.
        let tokens = (self.tokens + limits.qps * elapsed_ms as f64 / 1000.0).min(limits.capacity());
        Self {
            tokens: tokens.max(0.0),
            refilled_at_ms: self.refilled_at_ms.max(now_ms),
            ..self
        }
    }

    /// How much of the burst is spent now, 0 (full bucket) to 1 (empty).
    pub fn in_use(self, limits: BudgetLimits, now_ms: i64) -> f64 {
        let tokens = self.refilled(limits, now_ms).tokens;
        (1.0 - tokens / limits.capacity()).clamp(0.0, 1.0)
    }

    /// Encodes the state for the store.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Decodes a stored state.
    ///
    /// # Errors
    /// [`BudgetStateError`] for an oversized or unreadable value.
    pub fn decode(bytes: &[u8]) -> Result<Self, BudgetStateError> {
        if bytes.len() > MAX_STATE_BYTES {
            return Err(BudgetStateError::TooLarge(bytes.len()));
        }
        let state: Self = serde_json::from_slice(bytes)
            .map_err(|e| BudgetStateError::Malformed(e.to_string()))?;
        if !state.tokens.is_finite() {
            return Err(BudgetStateError::Malformed("tokens is not a number".into()));
        }
        if let Some(a) = state.applied
            && (!(a.qps.is_finite() && a.qps > 0.0) || a.burst == 0)
        {
            return Err(BudgetStateError::Malformed(format!(
                "applied limits qps {} burst {} are not a budget",
                a.qps, a.burst
            )));
        }
        Ok(state)
    }
}

/// Decides a lease of up to `wanted` permits from `current` (`None`: the
/// cluster has no state yet, so its bucket is full), under this worker's
/// `own` limits tightened as [`BudgetLimits::applying`] says.
pub fn lease(current: Option<BucketState>, own: BudgetLimits, now_ms: i64, wanted: u32) -> Lease {
    let (limits, applied) = own.applying(current.and_then(|s| s.applied), now_ms);
    let state = current
        .unwrap_or_else(|| BucketState::full(limits, now_ms))
        .refilled(limits, now_ms);
    if now_ms < state.paused_until_ms {
        return Lease::Wait {
            retry_in: millis(state.paused_until_ms - now_ms),
            reason: WaitReason::Paused,
        };
    }
    let available = state.tokens.floor();
    if available < 1.0 {
        let missing = 1.0 - state.tokens;
        return Lease::Wait {
            retry_in: Duration::from_secs_f64(missing / limits.qps).max(Duration::from_millis(1)),
            reason: WaitReason::Empty,
        };
    }
    // `available` is at most the burst, a u32.
    let permits = wanted.max(1).min(available as u32);
    Lease::Granted {
        permits,
        state: BucketState {
            tokens: state.tokens - f64::from(permits),
            applied,
            ..state
        },
        limits,
    }
}

/// The state after the API server answered 429 with `Retry-After` at
/// `now_ms`: empty and paused until `now_ms + retry_after`. `None` when the
/// stored state already pauses at least that long (nothing to write).
pub fn pause(
    current: Option<BucketState>,
    own: BudgetLimits,
    now_ms: i64,
    retry_after: Duration,
) -> Option<BucketState> {
    let until = now_ms.saturating_add(i64::try_from(retry_after.as_millis()).unwrap_or(i64::MAX));
    let (limits, applied) = own.applying(current.and_then(|s| s.applied), now_ms);
    let state = current
        .unwrap_or_else(|| BucketState::full(limits, now_ms))
        .refilled(limits, now_ms);
    if state.paused_until_ms >= until {
        return None;
    }
    Some(BucketState {
        tokens: 0.0,
        refilled_at_ms: state.refilled_at_ms,
        paused_until_ms: until,
        applied,
    })
}

fn millis(ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: BudgetLimits = BudgetLimits {
        qps: 20.0,
        burst: 20,
        in_flight: Duration::ZERO,
        standing: Standing::Configured,
    };

    /// Leases as fast as workers can, at uneven instants, for 10 s of
    /// clock; `own(step)` is the limits of the worker leasing at a step.
    /// Returns the grants (instant, permits), the last state and the end.
    fn leasing_for_10_s(
        own: impl Fn(i64) -> BudgetLimits,
    ) -> (Vec<(i64, u32)>, Option<BucketState>, i64) {
        let mut state = None;
        let mut grants = Vec::new();
        let (mut now, mut step) = (0i64, 0i64);
        while now < 10_000 {
            if let Lease::Granted {
                permits, state: s, ..
            } = lease(state, own(step), now, 1 + (step % 4) as u32)
            {
                grants.push((now, permits));
                state = Some(s);
            }
            step += 1;
            now += 1 + (step * 7) % 13;
        }
        (grants, state, now)
    }

    /// The most permits granted within any 1 s, and where that second starts.
    fn busiest_window(grants: &[(i64, u32)]) -> (u32, i64) {
        grants
            .iter()
            .map(|&(start, _)| {
                let n = grants
                    .iter()
                    .filter(|(t, _)| *t >= start && *t < start + 1_000)
                    .map(|(_, n)| n)
                    .sum();
                (n, start)
            })
            .max()
            .unwrap_or((0, 0))
    }

    fn granted(l: Lease) -> (u32, BucketState) {
        match l {
            Lease::Granted { permits, state, .. } => (permits, state),
            other => panic!("expected a grant, got {other:?}"),
        }
    }

    #[test]
    fn a_new_cluster_starts_full_and_a_lease_debits_at_once() {
        let (n, s) = granted(lease(None, LIMITS, 1_000, 3));
        assert_eq!(n, 3);
        assert_eq!(s.tokens, 17.0);
        assert_eq!(s.refilled_at_ms, 1_000);
    }

    #[test]
    fn a_lease_never_takes_more_than_the_bucket_holds() {
        let s = BucketState {
            tokens: 2.5,
            refilled_at_ms: 1_000,
            paused_until_ms: 0,
            applied: None,
        };
        let (n, s) = granted(lease(Some(s), LIMITS, 1_000, 8));
        assert_eq!(n, 2);
        assert_eq!(s.tokens, 0.5);
        match lease(Some(s), LIMITS, 1_000, 1) {
            Lease::Wait { retry_in, reason } => {
                assert_eq!(reason, WaitReason::Empty);
                // 0.5 permit missing at 20/s: 25 ms.
                assert_eq!(retry_in, Duration::from_millis(25));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn refill_is_continuous_and_capped_at_the_burst() {
        let empty = BucketState {
            tokens: 0.0,
            refilled_at_ms: 0,
            paused_until_ms: 0,
            applied: None,
        };
        assert_eq!(empty.refilled(LIMITS, 250).tokens, 5.0);
        assert_eq!(empty.refilled(LIMITS, 60_000).tokens, 20.0);
        assert!((empty.in_use(LIMITS, 500) - 0.5).abs() < 1e-9);
    }

    #[test]
    fn a_clock_behind_the_stored_instant_gets_no_refill_and_does_not_rewind() {
        let s = BucketState {
            tokens: 1.0,
            refilled_at_ms: 10_000,
            paused_until_ms: 0,
            applied: None,
        };
        let r = s.refilled(LIMITS, 9_000);
        assert_eq!(r.tokens, 1.0);
        assert_eq!(r.refilled_at_ms, 10_000);
    }

    /// Whatever the interleaving of leases, the permits granted in any span
    /// never exceed burst + qps · span: simulated over 10 s of workers
    /// leasing as fast as they can, at uneven instants.
    #[test]
    fn granted_permits_stay_within_budget_in_every_window() {
        let (grants, _, _) = leasing_for_10_s(|_| LIMITS);
        let (most, start) = busiest_window(&grants);
        assert!(most <= 20 + 20, "{most} permits in 1 s from {start}");
        let total: u32 = grants.iter().map(|(_, n)| n).sum();
        assert!((200..=220).contains(&total), "{total} permits in 10 s");
    }

    #[test]
    fn a_pause_empties_the_bucket_and_holds_every_lease_until_it_ends() {
        let p = pause(None, LIMITS, 1_000, Duration::from_secs(3)).unwrap();
        assert_eq!(p.tokens, 0.0);
        assert_eq!(p.paused_until_ms, 4_000);
        match lease(Some(p), LIMITS, 1_500, 1) {
            Lease::Wait { retry_in, reason } => {
                assert_eq!(reason, WaitReason::Paused);
                assert_eq!(retry_in, Duration::from_millis(2_500));
            }
            other => panic!("{other:?}"),
        }
        // Refill restarts from zero when the pause ends, not before.
        assert!(matches!(
            lease(Some(p), LIMITS, 4_010, 1),
            Lease::Wait {
                reason: WaitReason::Empty,
                ..
            }
        ));
        let (n, _) = granted(lease(Some(p), LIMITS, 4_100, 5));
        assert_eq!(n, 2);
        // A shorter pause does not shorten a longer one.
        assert_eq!(pause(Some(p), LIMITS, 1_500, Duration::from_secs(1)), None);
        let longer = pause(Some(p), LIMITS, 1_500, Duration::from_secs(5)).unwrap();
        assert_eq!(longer.paused_until_ms, 6_500);
    }

    #[test]
    fn the_in_flight_reserve_is_held_back_from_the_burst() {
        let limits = BudgetLimits {
            in_flight: Duration::from_millis(250),
            ..LIMITS
        };
        assert_eq!(limits.capacity(), 15.0);
        assert_eq!(BucketState::full(limits, 0).tokens, 15.0);
        let empty = BucketState {
            tokens: 0.0,
            refilled_at_ms: 0,
            paused_until_ms: 0,
            applied: None,
        };
        assert_eq!(empty.refilled(limits, 60_000).tokens, 15.0);
        let tiny = BudgetLimits {
            qps: 100.0,
            burst: 2,
            in_flight: Duration::from_secs(1),
            ..LIMITS
        };
        assert_eq!(tiny.capacity(), 1.0, "never below one permit");
    }

    #[test]
    fn states_round_trip_and_bad_ones_are_named() {
        let s = BucketState {
            tokens: 3.25,
            refilled_at_ms: 7,
            paused_until_ms: 9,
            applied: None,
        };
        assert_eq!(BucketState::decode(&s.encode()).unwrap(), s);
        assert!(matches!(
            BucketState::decode(b"{"),
            Err(BudgetStateError::Malformed(_))
        ));
        assert_eq!(
            BucketState::decode(&[b' '; 2048]),
            Err(BudgetStateError::TooLarge(2048))
        );
        let lowered = BudgetLimits {
            qps: 1.0,
            burst: 2,
            ..LIMITS
        };
        assert_eq!(
            s.refilled(lowered, 7).tokens,
            2.0,
            "capped at a lowered burst"
        );
        assert_eq!(LIMITS.default_lease(), 2);
        assert_eq!(
            BudgetLimits {
                burst: 3,
                ..lowered
            }
            .default_lease(),
            1
        );
    }

    /// Workers configured differently (a rolling update): whatever the
    /// order of their leases, the fleet never grants more than the stricter
    /// budget allows; once only the looser one leases, its budget applies.
    #[test]
    fn the_stricter_of_two_configured_budgets_holds_while_its_worker_runs() {
        let looser = BudgetLimits {
            qps: 40.0,
            burst: 40,
            ..LIMITS
        };
        // The looser worker leases three times as often as the strict one.
        let (grants, state, now) =
            leasing_for_10_s(|step| if step % 4 == 0 { LIMITS } else { looser });
        let (most, start) = busiest_window(&grants);
        assert!(most <= 20 + 20, "{most} permits in 1 s from {start}");
        // The strict worker stops; its limits hold for STRICTER_LIMIT_HOLDS,
        // then the looser worker's own apply.
        let last = state.unwrap();
        match lease(Some(last), looser, now + 5_000, 1) {
            Lease::Granted { limits, .. } => assert_eq!((limits.qps, limits.burst), (20.0, 20)),
            other => panic!("{other:?}"),
        }
        let relaxed = match lease(Some(last), looser, now + 10_001, 1) {
            Lease::Granted { limits, state, .. } => {
                assert_eq!((limits.qps, limits.burst), (40.0, 40));
                assert_eq!(state.applied.unwrap().qps_at_ms, now + 10_001);
                state
            }
            other => panic!("{other:?}"),
        };
        // A service that does not configure the budget (intake) applies
        // what the workers last recorded, however long ago, and leaves the
        // record as it is; with no record at all, its own fallback.
        let intake = BudgetLimits {
            qps: 1_000.0,
            burst: 1_000,
            standing: Standing::Following,
            ..LIMITS
        };
        match lease(Some(relaxed), intake, now + 60_000, 1) {
            Lease::Granted { limits, state, .. } => {
                assert_eq!((limits.qps, limits.burst), (40.0, 40));
                assert_eq!(state.applied, relaxed.applied);
            }
            other => panic!("{other:?}"),
        }
        match lease(None, intake, 0, 1) {
            Lease::Granted { limits, state, .. } => {
                assert_eq!((limits.qps, limits.burst), (1_000.0, 1_000));
                assert_eq!(state.applied, None, "a fallback is never recorded");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn each_limit_is_tightened_on_its_own() {
        let high_qps_low_burst = BudgetLimits {
            qps: 100.0,
            burst: 5,
            ..LIMITS
        };
        let stored = AppliedLimits {
            qps: 20.0,
            qps_at_ms: 1_000,
            burst: 20,
            burst_at_ms: 1_000,
        };
        let (limits, applied) = high_qps_low_burst.applying(Some(stored), 2_000);
        assert_eq!((limits.qps, limits.burst), (20.0, 5));
        assert_eq!(
            applied.unwrap(),
            AppliedLimits {
                qps: 20.0,
                qps_at_ms: 1_000,
                burst: 5,
                burst_at_ms: 2_000,
            }
        );
    }

    #[test]
    fn states_without_applied_limits_still_read_and_bad_limits_are_named() {
        let old = BucketState::decode(br#"{"tokens":4.0,"refilled_at_ms":3}"#).unwrap();
        assert_eq!(old.applied, None);
        let (_, s) = granted(lease(Some(old), LIMITS, 3, 1));
        assert_eq!(BucketState::decode(&s.encode()).unwrap(), s);
        for bad in [
            r#"{"tokens":1,"refilled_at_ms":0,"applied":{"qps":0,"qps_at_ms":0,"burst":3,"burst_at_ms":0}}"#,
            r#"{"tokens":1,"refilled_at_ms":0,"applied":{"qps":2,"qps_at_ms":0,"burst":0,"burst_at_ms":0}}"#,
        ] {
            let err = BucketState::decode(bad.as_bytes()).unwrap_err();
            assert!(err.to_string().contains("are not a budget"), "{err}");
        }
    }
}
