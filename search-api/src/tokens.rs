//! Short-lived tokens derived from an API key (issue #13), like Algolia's secured keys: a
//! page that should not hold a long-lived admin key (the dashboard) trades it for a token
//! that names its tenant, scope, parent key and expiry, signed by this server
//! (HMAC-SHA256 with its token secret).
//!
//! `cpft_<tenant>.<scope>.<parent key id>.<expiry, unix seconds>.<signature>`
//!
//! A token is refused when its signature does not verify, once it has expired, and once
//! its parent key is revoked or expired: revoking the admin key ends its tokens too.
//! It counts against its parent key's rate limit, and it cannot mint tokens itself. The
//! token names the parent by its public id (the start of its hash), never by the key.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cloudpf_model::{TenantId, Timestamp};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::tenants::Scope;

pub const TOKEN_PREFIX: &str = "cpft_";
/// The longest a token may live.
pub const MAX_TOKEN_TTL: Duration = Duration::from_secs(3600);
/// Bytes a configured secret must have at least.
pub const MIN_SECRET_BYTES: usize = 32;

/// What a valid token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    pub tenant: TenantId,
    pub scope: Scope,
    /// The parent key's id ([`crate::tenants::KEY_ID_LEN`] hex digits of its hash).
    pub parent: String,
    pub expires: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("not a valid token")]
    Invalid,
    #[error("the token has expired")]
    Expired,
}

/// Signs and checks tokens with this server's secret.
#[derive(Clone)]
pub struct TokenSigner {
    secret: Vec<u8>,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSigner(<secret>)")
    }
}

fn scope_name(scope: Scope) -> &'static str {
    match scope {
        Scope::Search => "search",
        Scope::Admin => "admin",
    }
}

impl TokenSigner {
    /// A signer with a fresh random secret: its tokens are valid in this process only
    /// (`cloudpf serve`; several processes need one configured secret).
    pub fn random() -> Result<Self, String> {
        let mut secret = vec![0u8; 32];
        getrandom::fill(&mut secret).map_err(|e| format!("no randomness for tokens: {e}"))?;
        Ok(Self { secret })
    }

    /// A signer with a configured secret (`CLOUDPF_TOKEN_SECRET`).
    pub fn from_secret(secret: &str) -> Result<Self, String> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(format!(
                "the token secret must be at least {MIN_SECRET_BYTES} bytes"
            ));
        }
        Ok(Self {
            secret: secret.as_bytes().to_vec(),
        })
    }

    /// The MAC of `body` under this server's secret, not yet finalised.
    fn mac(&self, body: &str) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.secret)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(body.as_bytes());
        mac
    }

    pub fn mint(&self, claims: &Claims) -> String {
        let body = format!(
            "{}.{}.{}.{}",
            claims.tenant,
            scope_name(claims.scope),
            claims.parent,
            claims.expires
        );
        let signature = URL_SAFE_NO_PAD.encode(self.mac(&body).finalize().into_bytes());
        format!("{TOKEN_PREFIX}{body}.{signature}")
    }

    /// The claims of `token` if it is one of ours and has not expired at `now`.
    pub fn verify(&self, token: &str, now: &Timestamp) -> Result<Claims, TokenError> {
        let rest = token
            .strip_prefix(TOKEN_PREFIX)
            .ok_or(TokenError::Invalid)?;
        let (body, signature) = rest.rsplit_once('.').ok_or(TokenError::Invalid)?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| TokenError::Invalid)?;
        // Constant-time comparison.
        self.mac(body)
            .verify_slice(&signature)
            .map_err(|_| TokenError::Invalid)?;
        let parts: Vec<&str> = body.split('.').collect();
        let [tenant, scope, parent, expires] = parts.as_slice() else {
            return Err(TokenError::Invalid);
        };
        let claims = Claims {
            tenant: TenantId::parse(tenant).map_err(|_| TokenError::Invalid)?,
            scope: match *scope {
                "search" => Scope::Search,
                "admin" => Scope::Admin,
                _ => return Err(TokenError::Invalid),
            },
            parent: (*parent).to_owned(),
            expires: expires.parse().map_err(|_| TokenError::Invalid)?,
        };
        if claims.expires <= now.utc().timestamp() {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn claims(expires: i64) -> Claims {
        Claims {
            tenant: TenantId::parse("acme").unwrap(),
            scope: Scope::Admin,
            parent: "0123456789ab".into(),
            expires,
        }
    }

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_utc(chrono::DateTime::from_timestamp(secs, 0).unwrap())
    }

    #[test]
    fn a_token_verifies_until_it_expires() {
        let signer = TokenSigner::random().unwrap();
        let token = signer.mint(&claims(1_000));
        assert!(token.starts_with("cpft_acme.admin.0123456789ab.1000."));
        assert_eq!(signer.verify(&token, &at(999)), Ok(claims(1_000)));
        assert_eq!(signer.verify(&token, &at(1_000)), Err(TokenError::Expired));
    }

    #[test]
    fn a_changed_claim_or_another_servers_secret_is_refused() {
        let signer = TokenSigner::from_secret(&"s".repeat(32)).unwrap();
        let token = signer.mint(&claims(1_000));
        for forged in [
            token.replace(".admin.", ".search."),
            token.replace("cpft_acme.", "cpft_other."),
            token.replace(".1000.", ".9999."),
            format!("{token}x"),
            token.replace("cpft_", "cpfx_"),
        ] {
            assert_eq!(
                signer.verify(&forged, &at(0)),
                Err(TokenError::Invalid),
                "{forged}"
            );
        }
        let other = TokenSigner::from_secret(&"t".repeat(32)).unwrap();
        assert_eq!(other.verify(&token, &at(0)), Err(TokenError::Invalid));
        assert!(TokenSigner::from_secret("short").is_err());
    }
}
