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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priority_mapping_table() {
        let cases = [
            (TriggerKind::Api, Priority::High, "high"),
            (TriggerKind::RegistryPush, Priority::High, "high"),
            (TriggerKind::Schedule, Priority::Low, "low"),
        ];
        for (trigger, priority, token) in cases {
            assert_eq!(trigger.priority(), priority);
            assert_eq!(trigger.priority().token(), token);
        }
    }
}
