//! Severity and category: the two enumerations filters work on.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Event severity, ordered from least to most severe (so `>=` means "at least
/// as severe"). The numeric syslog code is [`Severity::syslog_code`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Debug,
    Info,
    Notice,
    Warning,
    Error,
    Critical,
    Alert,
    Emergency,
}

impl Severity {
    pub const ALL: [Severity; 8] = [
        Severity::Debug,
        Severity::Info,
        Severity::Notice,
        Severity::Warning,
        Severity::Error,
        Severity::Critical,
        Severity::Alert,
        Severity::Emergency,
    ];

    /// From a syslog severity code (0 = emergency … 7 = debug); codes above 7 map to debug.
    pub fn from_syslog(code: u8) -> Severity {
        match code {
            0 => Severity::Emergency,
            1 => Severity::Alert,
            2 => Severity::Critical,
            3 => Severity::Error,
            4 => Severity::Warning,
            5 => Severity::Notice,
            6 => Severity::Info,
            _ => Severity::Debug,
        }
    }

    /// The syslog severity code (0 = emergency … 7 = debug).
    pub fn syslog_code(self) -> u8 {
        7 - self as u8
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Debug => "debug",
            Severity::Info => "info",
            Severity::Notice => "notice",
            Severity::Warning => "warning",
            Severity::Error => "error",
            Severity::Critical => "critical",
            Severity::Alert => "alert",
            Severity::Emergency => "emergency",
        }
    }

    /// The stored header byte (the syslog code).
    pub fn to_byte(self) -> u8 {
        self.syslog_code()
    }

    pub fn from_byte(b: u8) -> Severity {
        Severity::from_syslog(b)
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = String;
    /// Accepts the canonical names and the usual aliases (`warn`, `err`, `crit`, `emerg`, `information`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const NAMES: [(&str, Severity); 16] = [
            ("info", Severity::Info),
            ("informational", Severity::Info),
            ("information", Severity::Info),
            ("debug", Severity::Debug),
            ("notice", Severity::Notice),
            ("warning", Severity::Warning),
            ("warn", Severity::Warning),
            ("error", Severity::Error),
            ("err", Severity::Error),
            ("critical", Severity::Critical),
            ("crit", Severity::Critical),
            ("fatal", Severity::Critical),
            ("alert", Severity::Alert),
            ("emergency", Severity::Emergency),
            ("emerg", Severity::Emergency),
            ("panic", Severity::Emergency),
        ];
        // any ASCII case, without allocating a lower-case copy (hot on JSON input)
        NAMES
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(s))
            .map(|&(_, sev)| sev)
            .ok_or_else(|| format!("unknown severity `{}`", s.to_ascii_lowercase()))
    }
}

/// The well-known categories, with the code stored in record headers.
/// Categories not listed here are kept as text in the body with code 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Category {
    Other = 0,
    Authentication = 1,
    Security = 2,
    Admin = 3,
    FileAccess = 4,
    Certificate = 5,
    Network = 6,
    System = 7,
}

impl Category {
    pub const KNOWN: [(Category, &'static str); 7] = [
        (Category::Authentication, "AUTHENTICATION"),
        (Category::Security, "SECURITY"),
        (Category::Admin, "ADMIN"),
        (Category::FileAccess, "FILE_ACCESS"),
        (Category::Certificate, "CERTIFICATE"),
        (Category::Network, "NETWORK"),
        (Category::System, "SYSTEM"),
    ];

    /// The header code of a category name (case-sensitive, canonical upper case); 0 for others.
    pub fn code_of(name: &str) -> u8 {
        Self::KNOWN
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(c, _)| *c as u8)
            .unwrap_or(0)
    }

    /// The canonical name of a header code, if it is a known one.
    pub fn name_of(code: u8) -> Option<&'static str> {
        Self::KNOWN
            .iter()
            .find(|(c, _)| *c as u8 == code)
            .map(|(_, n)| *n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_codes_round_trip() {
        for s in Severity::ALL {
            assert_eq!(Severity::from_syslog(s.syslog_code()), s);
        }
        assert!(Severity::Emergency > Severity::Warning);
        assert_eq!("warn".parse::<Severity>().unwrap(), Severity::Warning);
        assert!("loud".parse::<Severity>().is_err());
        // every canonical name, in any ASCII case; aliases; nothing else
        for s in Severity::ALL {
            let name = s.to_string();
            assert_eq!(name.parse::<Severity>(), Ok(s));
            assert_eq!(name.to_ascii_uppercase().parse::<Severity>(), Ok(s));
        }
        assert_eq!("InFoRmAtIoNaL".parse(), Ok(Severity::Info));
        assert_eq!("FATAL".parse(), Ok(Severity::Critical));
        assert_eq!("Panic".parse(), Ok(Severity::Emergency));
        for bad in ["", "inf", "infos", " info", "warning ", "ınfo"] {
            assert!(bad.parse::<Severity>().is_err(), "{bad:?}");
        }
        assert_eq!(
            "LOUD".parse::<Severity>(),
            Err("unknown severity `loud`".to_string())
        );
    }

    #[test]
    fn category_codes() {
        assert_eq!(Category::code_of("SECURITY"), 2);
        assert_eq!(Category::code_of("custom"), 0);
        assert_eq!(Category::name_of(4), Some("FILE_ACCESS"));
    }
}
