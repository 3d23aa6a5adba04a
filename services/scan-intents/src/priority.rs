//! Why a scan was asked for, and which queue class that puts it in.

use std::fmt;

/// The queue class. Pushes and API calls are interactive (someone is
/// waiting on the result); schedules are bulk and must never starve them,
/// so they get their own subjects and consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    /// Interactive: API and registry push.
    High,
    /// Bulk: periodic schedules.
    Low,
}

impl Priority {
    /// The subject token for this class.
    pub fn token(self) -> &'static str {
        match self {
            Priority::High => "high",
            Priority::Low => "low",
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.token())
    }
}

/// What caused a scan request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TriggerKind {
    /// A direct Intake API or CLI call.
    Api,
    /// A registry announced a pushed manifest.
    RegistryPush,
    /// A periodic schedule fired.
    Schedule,
}

impl TriggerKind {
    /// API and push are high; schedule is low.
    pub fn priority(self) -> Priority {
        match self {
            TriggerKind::Api | TriggerKind::RegistryPush => Priority::High,
            TriggerKind::Schedule => Priority::Low,
        }
    }

    /// Whether intents of this kind coalesce by dedupe key (one queued per
    /// image, container and profile version) or each get their own subject.
    /// Schedules coalesce: nobody waits on a periodic scan, and a flood of
    /// them is the failure mode to prevent. API requests and pushes do not:
    /// a caller holds the scan id it was given and expects that scan to
    /// run; their retries are absorbed by `Nats-Msg-Id` instead.
    pub fn coalesces(self) -> bool {
        matches!(self, TriggerKind::Schedule)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priority_mapping_table() {
        let cases = [
            (TriggerKind::Api, Priority::High, "high", false),
            (TriggerKind::RegistryPush, Priority::High, "high", false),
            (TriggerKind::Schedule, Priority::Low, "low", true),
        ];
        for (trigger, priority, token, coalesces) in cases {
            assert_eq!(trigger.priority(), priority);
            assert_eq!(trigger.priority().token(), token);
            assert_eq!(trigger.coalesces(), coalesces);
        }
    }
}
