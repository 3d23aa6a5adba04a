//! When a crashed child is started again, and when the supervisor stops
//! trying. The fleet's promise is that workers (and every other process) are
//! disposable, so a crash costs a restart, not the fleet; but a child that
//! dies again and again right after starting is broken, and restarting it
//! forever would only hide that. Pure rules, unit-tested without processes.

use std::time::Duration;

use scanfleet_process_lifecycle::EXIT_INVALID_CONFIG;

/// The back-off and give-up rule every child shares.
#[derive(Debug, Clone)]
pub struct RestartPolicy {
    /// Delay before restarting a child that had been running well.
    pub first_delay: Duration,
    /// The delay doubles with each consecutive fast crash, up to this.
    pub max_delay: Duration,
    /// A run shorter than this ends in a *fast* crash; a longer one proves
    /// the child can run and resets the count.
    pub fast_crash: Duration,
    /// This many consecutive fast crashes and the supervisor gives up.
    pub max_fast_crashes: u32,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        Self {
            first_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            fast_crash: Duration::from_secs(10),
            max_fast_crashes: 5,
        }
    }
}

/// One child's crash history.
#[derive(Debug, Default, Clone)]
pub struct CrashRecord {
    consecutive_fast: u32,
}

/// What to do about a child that exited on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Start it again after this delay.
    RestartAfter(Duration),
    /// Stop the fleet; the reason says why restarting is pointless.
    GiveUp(String),
}

impl RestartPolicy {
    /// Decides after a child ran for `ran` and exited with `exit_code`
    /// (`None` when a signal ended it).
    pub fn after_exit(
        &self,
        record: &mut CrashRecord,
        ran: Duration,
        exit_code: Option<i32>,
    ) -> Decision {
        if exit_code == Some(i32::from(EXIT_INVALID_CONFIG)) {
            return Decision::GiveUp(format!(
                "exit status {EXIT_INVALID_CONFIG} means its configuration is invalid, \
                 which a restart cannot fix"
            ));
        }
        if ran >= self.fast_crash {
            record.consecutive_fast = 0;
            return Decision::RestartAfter(self.first_delay);
        }
        record.consecutive_fast += 1;
        if record.consecutive_fast >= self.max_fast_crashes {
            return Decision::GiveUp(format!(
                "it crashed {} times in a row, each time within {:?} of starting",
                record.consecutive_fast, self.fast_crash
            ));
        }
        let doubled = self
            .first_delay
            .saturating_mul(1 << record.consecutive_fast.min(16));
        Decision::RestartAfter(doubled.min(self.max_delay))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAST: Duration = Duration::from_secs(1);
    const HEALTHY: Duration = Duration::from_secs(60);

    #[test]
    fn a_crash_after_a_healthy_run_restarts_after_the_first_delay() {
        let policy = RestartPolicy::default();
        let mut record = CrashRecord::default();
        for _ in 0..20 {
            assert_eq!(
                policy.after_exit(&mut record, HEALTHY, None),
                Decision::RestartAfter(Duration::from_millis(500))
            );
        }
    }

    #[test]
    fn fast_crashes_double_the_delay_then_give_up() {
        let policy = RestartPolicy::default();
        let mut record = CrashRecord::default();
        let delays: Vec<Decision> = (0..4)
            .map(|_| policy.after_exit(&mut record, FAST, Some(1)))
            .collect();
        assert_eq!(
            delays,
            [1000, 2000, 4000, 8000].map(|ms| Decision::RestartAfter(Duration::from_millis(ms)))
        );
        let Decision::GiveUp(why) = policy.after_exit(&mut record, FAST, Some(1)) else {
            panic!("the fifth fast crash gives up");
        };
        assert_eq!(
            why,
            "it crashed 5 times in a row, each time within 10s of starting"
        );
    }

    #[test]
    fn a_healthy_run_resets_the_count_and_the_delay_is_capped() {
        let policy = RestartPolicy {
            max_fast_crashes: 100,
            ..RestartPolicy::default()
        };
        let mut record = CrashRecord::default();
        for _ in 0..3 {
            policy.after_exit(&mut record, FAST, None);
        }
        assert_eq!(
            policy.after_exit(&mut record, HEALTHY, None),
            Decision::RestartAfter(Duration::from_millis(500))
        );
        assert_eq!(
            policy.after_exit(&mut record, FAST, None),
            Decision::RestartAfter(Duration::from_secs(1))
        );
        for _ in 0..50 {
            policy.after_exit(&mut record, FAST, None);
        }
        assert_eq!(
            policy.after_exit(&mut record, FAST, None),
            Decision::RestartAfter(Duration::from_secs(30))
        );
    }

    #[test]
    fn invalid_configuration_is_never_restarted() {
        let policy = RestartPolicy::default();
        let mut record = CrashRecord::default();
        let Decision::GiveUp(why) = policy.after_exit(&mut record, HEALTHY, Some(2)) else {
            panic!("exit 2 gives up at once");
        };
        assert!(why.contains("configuration is invalid"), "{why}");
    }
}
