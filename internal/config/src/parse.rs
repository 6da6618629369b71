//! One parser per kind of value: each error names the variable and the form it expects.

use crate::settings::Mode;
use crate::{ConfigError, LogFormat};
use std::net::IpAddr;

/// A variable's value without surrounding blanks; unset and blank are the same.
pub(crate) fn trimmed(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

pub(crate) fn bind_addr(v: Option<&str>, mode: Mode) -> Result<IpAddr, ConfigError> {
    match v {
        // Trying it out opens nothing to the network unless asked (the image sets 0.0.0.0).
        None if mode == Mode::Local => Ok(IpAddr::from([127, 0, 0, 1])),
        None => Ok(IpAddr::from([0, 0, 0, 0])),
        Some(s) => s.parse().map_err(|_| ConfigError::Invalid {
            var: "BIND_ADDR",
            value: s.into(),
            expected: "an IP address such as 0.0.0.0 or 127.0.0.1",
        }),
    }
}

pub(crate) fn advertise_host(v: Option<&str>) -> Result<String, ConfigError> {
    match v {
        None => Ok(hostname()),
        Some(s) if s.contains(char::is_whitespace) || s.contains('/') => {
            Err(ConfigError::Invalid { var: "ADVERTISE_HOST", value: s.into(), expected: "a host name or IP address" })
        }
        Some(s) => Ok(s.to_string()),
    }
}

pub(crate) fn node_id(v: Option<&str>, advertise_host: &str, port: u16) -> Result<String, ConfigError> {
    match v {
        None => Ok(format!("{advertise_host}:{port}")),
        Some(s) if s.contains('/') || s.len() > 200 => Err(ConfigError::Invalid {
            var: "NODE_ID",
            value: s.into(),
            expected: "a name without '/' of at most 200 bytes",
        }),
        Some(s) => Ok(s.to_string()),
    }
}

pub(crate) fn zk_servers(v: Option<&str>) -> Result<String, ConfigError> {
    let Some(s) = v else { return Ok("127.0.0.1:2181".to_string()) };
    let ok = s.split(',').all(|hp| {
        let hp = hp.split('/').next().unwrap_or("");
        hp.rsplit_once(':').is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0))
    });
    if !ok {
        return Err(ConfigError::Invalid { var: "ZK_SERVERS", value: s.into(), expected: "host:port[,host:port...]" });
    }
    Ok(s.to_string())
}

pub(crate) fn zk_root(v: Option<&str>) -> Result<String, ConfigError> {
    match v {
        None => Ok("/tiercache".to_string()),
        Some(s) if s.starts_with('/') && s.len() > 1 && !s.ends_with('/') && !s.contains("//") => Ok(s.to_string()),
        Some(s) => Err(ConfigError::Invalid {
            var: "ZK_ROOT",
            value: s.into(),
            expected: "an absolute znode path such as /tiercache",
        }),
    }
}

pub(crate) fn internal_token(v: Option<&str>, mode: Mode) -> Result<String, ConfigError> {
    match v {
        Some(t) if t.len() >= 8 => Ok(t.to_string()),
        Some(t) if !t.is_empty() => Err(ConfigError::Invalid {
            var: "INTERNAL_TOKEN",
            value: "<hidden>".into(),
            expected: "a shared secret of at least 8 bytes",
        }),
        _ if mode == Mode::Local => Ok("local-only-token".to_string()),
        _ => Err(ConfigError::Missing {
            var: "INTERNAL_TOKEN",
            expected: "a shared secret of at least 8 bytes, the same on every master and auxiliary",
        }),
    }
}

pub(crate) fn log_format(v: Option<&str>) -> Result<LogFormat, ConfigError> {
    match v {
        None | Some("text") => Ok(LogFormat::Text),
        Some("json") => Ok(LogFormat::Json),
        Some(s) => Err(ConfigError::Invalid { var: "LOG_FORMAT", value: s.into(), expected: "text or json" }),
    }
}

pub(crate) fn parse_num<T: std::str::FromStr + PartialOrd + Copy>(
    var: &'static str,
    v: &Option<String>,
    default: T,
    min: T,
    expected: &'static str,
) -> Result<T, ConfigError> {
    parse_bounded(var, v, default, min, None, expected)
}

/// Like [`parse_num`] with an upper bound too (an explicit value above it is refused).
pub(crate) fn parse_range<T: std::str::FromStr + PartialOrd + Copy>(
    var: &'static str,
    v: &Option<String>,
    default: T,
    min: T,
    max: T,
    expected: &'static str,
) -> Result<T, ConfigError> {
    parse_bounded(var, v, default, min, Some(max), expected)
}

pub(crate) fn parse_bounded<T: std::str::FromStr + PartialOrd + Copy>(
    var: &'static str,
    v: &Option<String>,
    default: T,
    min: T,
    max: Option<T>,
    expected: &'static str,
) -> Result<T, ConfigError> {
    match v.as_deref().map(str::trim) {
        None | Some("") => Ok(default),
        Some(s) => match s.parse::<T>() {
            Ok(n) if n >= min && max.is_none_or(|m| n <= m) => Ok(n),
            _ => Err(ConfigError::Invalid { var, value: s.to_string(), expected }),
        },
    }
}

pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_string())
}
