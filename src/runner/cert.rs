//! Facts about a peer certificate (X.509, RFC 5280) for the `certificate`
//! query and for explaining refused handshakes: validity, issuer, subject,
//! subject alternative names.

use x509_parser::extensions::GeneralName;

/// What a certificate says, read from its DER encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// `notBefore`, Unix seconds.
    pub not_before: i64,
    /// `notAfter`, Unix seconds.
    pub not_after: i64,
    /// The issuer's distinguished name, RFC 4514 form (e.g. `CN=R11, O=Let's Encrypt, C=US`).
    pub issuer: String,
    /// The subject's distinguished name, RFC 4514 form.
    pub subject: String,
    /// DNS names and IP addresses of the subjectAltName extension, in order.
    pub sans: Vec<String>,
    /// Issuer and subject are the same name: nobody vouches for it.
    pub self_signed: bool,
}

impl Facts {
    /// Parses a DER certificate; `None` when it is not one.
    pub fn parse(der: &[u8]) -> Option<Self> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
        let validity = cert.validity();
        let sans = cert
            .subject_alternative_name()
            .ok()
            .flatten()
            .map(|ext| {
                ext.value
                    .general_names
                    .iter()
                    .filter_map(|g| match g {
                        GeneralName::DNSName(d) => Some(d.to_string()),
                        GeneralName::IPAddress(b) => ip(b),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        Some(Self {
            not_before: validity.not_before.timestamp(),
            not_after: validity.not_after.timestamp(),
            issuer: cert.issuer().to_string(),
            subject: cert.subject().to_string(),
            sans,
            self_signed: cert.issuer().as_raw() == cert.subject().as_raw(),
        })
    }

    /// Seconds from `now` (Unix seconds) until `notAfter`; negative once expired.
    pub fn expires_in(&self, now: i64) -> i64 {
        self.not_after - now
    }

    pub fn not_after_text(&self) -> String {
        utc(self.not_after)
    }

    pub fn not_before_text(&self) -> String {
        utc(self.not_before)
    }
}

fn utc(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| secs.to_string())
}

fn ip(bytes: &[u8]) -> Option<String> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes)
            .ok()
            .map(|b| std::net::Ipv4Addr::from(b).to_string()),
        16 => <[u8; 16]>::try_from(bytes)
            .ok()
            .map(|b| std::net::Ipv6Addr::from(b).to_string()),
        _ => None,
    }
}
