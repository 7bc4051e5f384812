//! A failed TLS handshake with a destination's server, in words: what is
//! wrong with the server's certificate, or what the server said, rather
//! than rustls's and webpki's type names (`invalid peer certificate:
//! UnknownIssuer`, `Other(OtherError(CaUsedAsEndEntity))`). Shared by the
//! `syslog` destination's TLS connections and the HTTP destinations.

use rustls::{CertificateError as C, Error as E};

/// The words for a rustls error of a client handshake; `None` for one
/// whose own text says it well enough.
pub(crate) fn in_words(tls: &E) -> Option<String> {
    let certificate = |what: &str| Some(format!("the server's certificate {what}"));
    match tls {
        E::InvalidCertificate(C::UnknownIssuer) => certificate(
            "is not signed by a CA in `ca` (without `ca`: by one of the system's trusted roots)",
        ),
        E::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. }) => {
            certificate("is not for the name connected to (set `server_name` to the name it is for)")
        }
        E::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => certificate("has expired"),
        E::InvalidCertificate(C::NotValidYet | C::NotValidYetContext { .. }) => {
            certificate("is not valid yet (is this machine's clock right?)")
        }
        E::InvalidCertificate(C::BadEncoding) => certificate("is not a well-formed certificate"),
        E::InvalidCertificate(C::BadSignature) => certificate(
            "is not signed by the CA in `ca` of its issuer's name (its signature does not verify)",
        ),
        E::InvalidCertificate(C::Other(other)) => {
            match other.0.downcast_ref::<webpki::Error>()? {
                webpki::Error::CaUsedAsEndEntity => certificate(
                    "is a CA certificate (basicConstraints CA:TRUE), not a server's own: \
                     `openssl req -x509` makes one unless given `-addext \
                     basicConstraints=critical,CA:FALSE`; or sign a server certificate \
                     with it and keep it as `ca`",
                ),
                webpki::Error::UnsupportedCertVersion => {
                    certificate("is an X.509 v1 certificate (v3 required)")
                }
                _ => None,
            }
        }
        E::AlertReceived(alert) => Some(format!(
            "the server refused the handshake (alert {alert:?}; does it want a client certificate, `cert` and `key`, or one it trusts?)"
        )),
        _ => None,
    }
}

/// The words for `e` when it is a rustls error, or an I/O error holding
/// one, at any depth (the HTTP client's connector passes it on in an I/O
/// error inside another; an I/O error's `source()` skips the error it
/// holds, so walking the sources never meets it).
pub(crate) fn of_error(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut e: &(dyn std::error::Error + 'static) = e;
    while let Some(io) = e.downcast_ref::<std::io::Error>() {
        e = io.get_ref()?;
    }
    in_words(e.downcast_ref::<E>()?)
}
