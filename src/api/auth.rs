//! Bearer-token authentication and roles.
//!
//! A request carries `Authorization: Bearer <token>`; the token's SHA-256
//! must equal one configured `token_sha256`. Every configured digest is
//! compared in constant time, and all of them are always compared, so the
//! answer time says nothing about which bytes matched. `viewer` tokens may
//! use the read routes, `admin` tokens every route. Handlers ask for a
//! [`Viewer`] or an [`Admin`] extractor; a missing or unknown token is 401,
//! a viewer on an admin route is 403. A reload replaces the tokens of the
//! running server ([`super::ApiServer::set_tokens`]): each request checks
//! the ones in force when it arrives.

use super::error::ApiError;
use super::ApiState;
use crate::config::{ApiRole, ApiToken};
use axum::async_trait;
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// A configured token, its digest decoded.
#[derive(Debug, Clone)]
pub struct TokenEntry {
    pub name: String,
    pub role: ApiRole,
    digest: [u8; 32],
}

/// The configured tokens.
#[derive(Debug, Clone, Default)]
pub struct Tokens(Vec<TokenEntry>);

/// Who made a request: the token's name and role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub name: String,
    pub role: ApiRole,
}

impl Tokens {
    /// Decodes the configured digests; a digest that is not 64 hex digits is an error.
    pub fn new(tokens: &[ApiToken]) -> Result<Tokens, String> {
        tokens
            .iter()
            .map(|t| {
                let mut digest = [0u8; 32];
                hex::decode_to_slice(t.token_sha256.trim(), &mut digest).map_err(|_| {
                    format!("api token `{}`: token_sha256 must be 64 hex digits", t.name)
                })?;
                Ok(TokenEntry {
                    name: t.name.clone(),
                    role: t.role,
                    digest,
                })
            })
            .collect::<Result<Vec<_>, String>>()
            .map(Tokens)
    }

    /// The principal a presented token belongs to.
    pub fn verify(&self, token: &str) -> Option<Principal> {
        let presented: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut found = None;
        for t in &self.0 {
            if constant_time_eq(&t.digest, &presented) && found.is_none() {
                found = Some(Principal {
                    name: t.name.clone(),
                    role: t.role,
                });
            }
        }
        found
    }
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let diff = a
        .iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

pub(super) fn authenticate(parts: &Parts, tokens: &Tokens) -> Result<Principal, ApiError> {
    let value = parts
        .headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or(ApiError::Unauthorized)?;
    let (scheme, token) = value.trim().split_once(' ').ok_or(ApiError::Unauthorized)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(ApiError::Unauthorized);
    }
    tokens.verify(token.trim()).ok_or(ApiError::Unauthorized)
}

/// Any valid token (viewer or admin).
pub struct Viewer(pub Principal);

/// An admin token.
pub struct Admin(pub Principal);

#[async_trait]
impl FromRequestParts<Arc<ApiState>> for Viewer {
    type Rejection = ApiError;
    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<ApiState>,
    ) -> Result<Self, Self::Rejection> {
        state.authenticate(parts).map(Viewer)
    }
}

#[async_trait]
impl FromRequestParts<Arc<ApiState>> for Admin {
    type Rejection = ApiError;
    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<ApiState>,
    ) -> Result<Self, Self::Rejection> {
        let p = state.authenticate(parts)?;
        match p.role {
            ApiRole::Admin => Ok(Admin(p)),
            ApiRole::Viewer => Err(ApiError::Forbidden),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> Tokens {
        let sha = |s: &str| hex::encode(Sha256::digest(s.as_bytes()));
        Tokens::new(&[
            ApiToken {
                name: "ops".into(),
                role: ApiRole::Admin,
                token_sha256: sha("admin-secret"),
            },
            ApiToken {
                name: "dash".into(),
                role: ApiRole::Viewer,
                token_sha256: sha("viewer-secret").to_uppercase(),
            },
        ])
        .unwrap()
    }

    #[test]
    fn verifies_by_digest_and_reports_the_role() {
        let t = tokens();
        assert_eq!(t.verify("admin-secret").unwrap().role, ApiRole::Admin);
        let v = t.verify("viewer-secret").unwrap();
        assert_eq!((v.name.as_str(), v.role), ("dash", ApiRole::Viewer));
        assert!(t.verify("admin-secre").is_none());
        assert!(t.verify("").is_none());
    }

    #[test]
    fn bad_digest_is_refused() {
        let bad = ApiToken {
            name: "x".into(),
            role: ApiRole::Admin,
            token_sha256: "abc".into(),
        };
        assert!(Tokens::new(&[bad]).is_err());
    }
}
