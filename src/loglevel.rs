//! MCP logging levels (RFC 5424 severities) in their order, for per-session filtering of
//! `notifications/message`.

/// A logging level; the derived order runs from least to most severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// Detailed debugging information.
    Debug,
    /// General informational messages.
    Info,
    /// Normal but significant events.
    Notice,
    /// Warning conditions.
    Warning,
    /// Error conditions.
    Error,
    /// Critical conditions.
    Critical,
    /// Action must be taken immediately.
    Alert,
    /// System is unusable.
    Emergency,
}

impl LogLevel {
    const NAMES: [(&'static str, LogLevel); 8] = [
        ("debug", LogLevel::Debug),
        ("info", LogLevel::Info),
        ("notice", LogLevel::Notice),
        ("warning", LogLevel::Warning),
        ("error", LogLevel::Error),
        ("critical", LogLevel::Critical),
        ("alert", LogLevel::Alert),
        ("emergency", LogLevel::Emergency),
    ];

    /// Parses a level name as MCP spells it.
    pub fn parse(s: &str) -> Option<LogLevel> {
        Self::NAMES.iter().find(|(n, _)| *n == s).map(|(_, l)| *l)
    }

    /// The name MCP uses for this level.
    pub fn as_str(self) -> &'static str {
        Self::NAMES[self as usize].0
    }
}

#[cfg(test)]
mod tests {
    use super::LogLevel;

    #[test]
    fn names_round_trip_in_order() {
        let mut prev = None;
        for (name, _) in LogLevel::NAMES {
            let l = LogLevel::parse(name).unwrap();
            assert_eq!(l.as_str(), name);
            assert!(prev < Some(l));
            prev = Some(l);
        }
        assert_eq!(LogLevel::parse("verbose"), None);
    }
}
