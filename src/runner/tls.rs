//! TLS for probing: the rustls configuration the runner's HTTP clients use
//! (ALPN per HTTP version, the system's trust store, or no checks for
//! `insecure_tls`), and certificate problems explained in words an on-call
//! engineer can act on instead of rustls' enum names (`UnknownIssuer`,
//! `CaUsedAsEndEntity`, `BadSignature`).

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};

pub use crate::config::HttpVersion;

/// The rustls client configuration for one kind of probing client: the
/// system's trust store plus the certificates of `ca` (`tls: { ca_file }`),
/// or no checks at all for `insecure`.
///
/// Errors: none in practice (the provider's defaults always hold); a
/// platform trust store that cannot be read surfaces at the first handshake.
pub fn client_config(
    insecure: bool,
    ca: Option<&crate::config::CaBundle>,
    version: HttpVersion,
) -> Option<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .ok()?
        .dangerous();
    let verifier: Arc<dyn ServerCertVerifier> = if insecure {
        Arc::new(AcceptAny(provider))
    } else {
        let extra: Vec<CertificateDer<'static>> = ca
            .map(|c| {
                c.certs
                    .iter()
                    .map(|d| CertificateDer::from(d.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let verifier = if extra.is_empty() {
            rustls_platform_verifier::Verifier::new(provider)
        } else {
            rustls_platform_verifier::Verifier::new_with_extra_roots(extra, provider)
        };
        Arc::new(Explained(Arc::new(verifier.ok()?)))
    };
    let mut config = builder
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = match version {
        HttpVersion::Auto => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
        HttpVersion::Http1 => vec![b"http/1.1".to_vec()],
        HttpVersion::Http2 => vec![b"h2".to_vec()],
    };
    Some(config)
}

/// The platform verifier, with its refusals put into words.
#[derive(Debug)]
struct Explained(Arc<rustls_platform_verifier::Verifier>);

impl ServerCertVerifier for Explained {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            .map_err(|e| {
                let host = server_name.to_str();
                rustls::Error::General(explain(&e, end_entity, &host, now))
            })
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// `insecure_tls: true`: any certificate is accepted (signatures on the
/// handshake are still checked, so the session is what the peer sent).
#[derive(Debug)]
struct AcceptAny(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

const HINT: &str = "not trusted; set insecure_tls or add the CA";

/// Why a certificate was refused, in words, e.g. "self-signed certificate
/// for localhost (not trusted; set insecure_tls or add the CA)".
pub fn explain(
    e: &rustls::Error,
    end_entity: &CertificateDer<'_>,
    host: &str,
    now: UnixTime,
) -> String {
    let facts = super::cert::Facts::parse(end_entity.as_ref());
    let now_s = now.as_secs() as i64;
    let expired = facts.as_ref().filter(|f| f.not_after < now_s).map(|f| {
        let ago = std::time::Duration::from_secs((now_s - f.not_after) as u64);
        format!(
            "expired {} ago (not valid after {})",
            crate::human::span(ago),
            f.not_after_text()
        )
    });
    let self_signed = facts.as_ref().is_some_and(|f| f.self_signed);
    let rustls::Error::InvalidCertificate(problem) = e else {
        return format!("certificate for {host} refused: {}", describe(e));
    };
    match problem {
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => match expired {
            Some(when) => format!("certificate for {host} {when}"),
            None => format!("certificate for {host} has expired"),
        },
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            let since = facts.map(|f| format!(" (not before {})", f.not_before_text()));
            format!(
                "certificate for {host} is not valid yet{}",
                since.unwrap_or_default()
            )
        }
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            let names = facts
                .map(|f| f.sans.join(", "))
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| "no names".into());
            format!("certificate is for {names}, not {host}")
        }
        CertificateError::Revoked => format!("certificate for {host} has been revoked"),
        _ if self_signed => {
            let also = expired
                .map(|w| format!("; it also {w}"))
                .unwrap_or_default();
            format!("self-signed certificate for {host} ({HINT}){also}")
        }
        CertificateError::UnknownIssuer | CertificateError::BadSignature => {
            let issuer = facts
                .map(|f| format!("`{}`", f.issuer))
                .unwrap_or_else(|| "an unknown issuer".into());
            format!("certificate for {host} issued by {issuer} ({HINT})")
        }
        other => format!("certificate for {host} refused ({other:?})"),
    }
}

/// Words for a TLS failure that is not about the certificate (alerts,
/// protocol mismatches), e.g. `NoApplicationProtocol`.
pub fn describe(e: &rustls::Error) -> String {
    match e {
        rustls::Error::General(text) => text.clone(),
        rustls::Error::NoApplicationProtocol => {
            "the server speaks none of the HTTP versions offered (ALPN); try `http: \"2\"` or `http: \"1.1\"`".into()
        }
        rustls::Error::AlertReceived(rustls::AlertDescription::NoApplicationProtocol) => {
            "the server speaks none of the HTTP versions offered (ALPN); leave `http:` out, or try `http: \"2\"` or `http: \"1.1\"`".into()
        }
        rustls::Error::AlertReceived(alert) => {
            format!("the server ended the TLS handshake ({alert:?})")
        }
        rustls::Error::InvalidCertificate(c) => format!("invalid certificate ({c:?})"),
        other => format!("TLS handshake failed: {other}"),
    }
}
