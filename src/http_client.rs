//! The one place Lookout's HTTP clients are built: the runner's probing
//! clients, the notifiers', the watchdog's and the connectivity check's.
//! Each starts from the same base (Lookout's `User-Agent`) and adds what
//! its purpose needs; a client that cannot be built is an error for the
//! caller to report, never a silent fallback to a default client (which
//! would drop the caller's timeout and redirect policy).

/// The `User-Agent` of every request Lookout sends: `lookout/<version>`.
pub const USER_AGENT: &str = concat!("lookout/", env!("CARGO_PKG_VERSION"));

/// A client could not be built (its TLS backend or resolver failed to
/// start, or the options contradict each other).
#[derive(Debug, thiserror::Error)]
#[error("could not build the HTTP client for {purpose}: {source}")]
pub struct ClientError {
    /// What the client was for: `probing`, `notifiers`, `watchdog`, `connectivity`.
    pub purpose: &'static str,
    #[source]
    pub source: reqwest::Error,
}

/// Builds the client for `purpose` from the common base with `options`
/// applied (timeouts, redirect policy, TLS, …).
///
/// # Errors
/// [`ClientError`] when reqwest cannot build it.
pub fn build(
    purpose: &'static str,
    options: impl FnOnce(reqwest::ClientBuilder) -> reqwest::ClientBuilder,
) -> Result<reqwest::Client, ClientError> {
    options(reqwest::Client::builder().user_agent(USER_AGENT))
        .build()
        .map_err(|source| ClientError { purpose, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_that_cannot_be_built_is_an_error_naming_its_purpose() {
        // reqwest refuses a preconfigured TLS backend of a type it does not know.
        let bad = build("watchdog", |b| b.tls_backend_preconfigured(()));
        let err = bad.expect_err("a preconfigured TLS backend of the wrong type is refused");
        assert_eq!(err.purpose, "watchdog");
        assert!(
            err.to_string()
                .starts_with("could not build the HTTP client for watchdog: ")
        );
    }

    #[test]
    fn the_base_sends_lookouts_user_agent() {
        assert!(build("probing", |b| b).is_ok());
        assert!(USER_AGENT.starts_with("lookout/"));
    }
}
