//! Fault injection for the sample platform: which endpoint misbehaves, how.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::Serialize;

/// The sample platform's endpoints, by the names faults use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    Deploy,
    Status,
    Login,
    Write,
    Read,
    Delete,
    List,
    /// `git push` to `/git/{name}.git` (smart HTTP).
    Push,
    /// Every endpoint (`*`).
    All,
}

impl Endpoint {
    const NAMES: [(&'static str, Endpoint); 9] = [
        ("deploy", Endpoint::Deploy),
        ("status", Endpoint::Status),
        ("login", Endpoint::Login),
        ("write", Endpoint::Write),
        ("read", Endpoint::Read),
        ("delete", Endpoint::Delete),
        ("list", Endpoint::List),
        ("push", Endpoint::Push),
        ("*", Endpoint::All),
    ];

    pub fn as_str(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(_, e)| *e == self)
            .map_or("*", |(n, _)| n)
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Endpoint {
    type Err = FaultError;

    fn from_str(s: &str) -> Result<Self, FaultError> {
        Self::NAMES
            .iter()
            .find(|(n, _)| *n == s)
            .map(|(_, e)| *e)
            .ok_or_else(|| FaultError::Endpoint(s.to_string()))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum FaultMode {
    /// Answer with this status and `{"error":"injected fault"}`.
    Error { status: u16 },
    /// Wait, then behave normally.
    Slow {
        #[serde(rename = "delay_ms", serialize_with = "millis")]
        delay: Duration,
    },
    /// Never answer.
    Hang,
    /// Apps never leave `deploying` (meaningful for `status`).
    Stuck,
    /// Remove the endpoint's fault.
    Heal,
}

fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FaultSpec {
    pub endpoint: Endpoint,
    #[serde(flatten)]
    pub mode: FaultMode,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FaultError {
    #[error(
        "unknown endpoint `{0}`; valid endpoints: deploy, status, login, write, read, delete, list, *"
    )]
    Endpoint(String),
    #[error(
        "unknown fault mode `{0}`; valid modes: error[:STATUS], slow[:DELAY], hang, stuck, heal"
    )]
    Mode(String),
    #[error(
        "invalid fault `{0}`; expected ENDPOINT=MODE, e.g. `login=error:503` or `write=slow:2s`"
    )]
    Shape(String),
}

impl FromStr for FaultSpec {
    type Err = FaultError;

    /// `login=error`, `login=error:500`, `write=slow:1500ms`, `read=hang`,
    /// `status=stuck`, `*=error`, `login=heal`.
    fn from_str(s: &str) -> Result<Self, FaultError> {
        let (endpoint, mode) = s
            .split_once('=')
            .ok_or_else(|| FaultError::Shape(s.to_string()))?;
        let (name, arg) = match mode.split_once(':') {
            Some((n, a)) => (n, Some(a)),
            None => (mode, None),
        };
        let bad = || FaultError::Mode(mode.to_string());
        let mode = match (name, arg) {
            ("error", None) => FaultMode::Error { status: 503 },
            ("error", Some(a)) => FaultMode::Error {
                status: a
                    .parse()
                    .ok()
                    .filter(|s| (100..600).contains(s))
                    .ok_or_else(bad)?,
            },
            ("slow", None) => FaultMode::Slow {
                delay: Duration::from_secs(2),
            },
            ("slow", Some(a)) => FaultMode::Slow {
                delay: humantime::parse_duration(a).map_err(|_| bad())?,
            },
            ("hang", None) => FaultMode::Hang,
            ("stuck", None) => FaultMode::Stuck,
            ("heal", None) => FaultMode::Heal,
            _ => return Err(bad()),
        };
        Ok(FaultSpec {
            endpoint: endpoint.parse()?,
            mode,
        })
    }
}

impl fmt::Display for FaultSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = self.endpoint;
        match self.mode {
            FaultMode::Error { status } => write!(f, "{e}=error:{status}"),
            FaultMode::Slow { delay } => write!(f, "{e}=slow:{}ms", delay.as_millis()),
            FaultMode::Hang => write!(f, "{e}=hang"),
            FaultMode::Stuck => write!(f, "{e}=stuck"),
            FaultMode::Heal => write!(f, "{e}=heal"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_round_trip() {
        for s in [
            "login=error:503",
            "write=slow:1500ms",
            "read=hang",
            "status=stuck",
            "*=error:500",
        ] {
            assert_eq!(s.parse::<FaultSpec>().unwrap().to_string(), s);
        }
        assert_eq!(
            "deploy=slow:2s".parse::<FaultSpec>().unwrap().mode,
            FaultMode::Slow {
                delay: Duration::from_secs(2)
            }
        );
    }

    #[test]
    fn bad_specs_say_what_is_valid() {
        let e = "logn=error".parse::<FaultSpec>().unwrap_err();
        assert!(e.to_string().contains("valid endpoints"), "{e}");
        let e = "login=explode".parse::<FaultSpec>().unwrap_err();
        assert!(e.to_string().contains("valid modes"), "{e}");
        assert!(matches!(
            "login".parse::<FaultSpec>(),
            Err(FaultError::Shape(_))
        ));
        assert!("login=error:999".parse::<FaultSpec>().is_err());
    }
}
