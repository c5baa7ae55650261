//! The tenants file: each tenant with its hashed API keys and allowed CORS origins.
//!
//! ```toml
//! [[tenants]]
//! id = "alpine-outfitters"
//! cors_origins = ["https://shop.example"]
//!
//! [[tenants.keys]]
//! scope = "search"          # products search and autocomplete; safe in a web page
//! sha256 = "9f86d0…"        # hex SHA-256 of the key (cloudpf hash-key prints it)
//!
//! [[tenants.keys]]
//! scope = "admin"           # everything of the tenant, purchases and analytics too
//! sha256 = "…"
//! label = "dashboard"       # optional: what the key is for
//! created = "2026-12-03T10:00:00Z"   # optional
//! expires = "2027-03-01T00:00:00Z"   # optional: refused from then on
//! ```
//!
//! `cloudpf keys create|list|revoke` edits them; a key is named by the first 12 hex
//! digits of its hash (its id), which says nothing usable about the key.
//!
//! Keys are random 160-bit tokens, so a plain SHA-256 is the right hash (as for other
//! high-entropy API tokens): the file never holds a usable key, and checking one is cheap.

use std::collections::BTreeMap;
use std::path::Path;

use cloudpf_engines::{EsConfig, Routing};
use cloudpf_model::{TenantId, Timestamp};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::TokenHash;
use crate::ratelimit::{KeyLimiter, RawRateLimits};
use subtle::ConstantTimeEq;

/// What a key may do. `Admin` includes everything `Search` may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Search,
    Admin,
}

impl Scope {
    pub fn allows(&self, required: Scope) -> bool {
        *self >= required
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTenantsFile {
    #[serde(default)]
    pub tenants: Vec<RawTenant>,
    /// The Elasticsearch clusters, when the search backend is Elasticsearch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elasticsearch: Option<EsConfig>,
    /// Requests per second per API key, by scope (see [`crate::ratelimit`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limits: Option<RawRateLimits>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTenant {
    pub id: String,
    /// Origins allowed to call the API from a browser, e.g. `https://shop.example`.
    #[serde(default)]
    pub cors_origins: Vec<String>,
    #[serde(default)]
    pub keys: Vec<RawKey>,
    /// The `[elasticsearch.clusters.<name>]` serving this tenant, with the Elasticsearch
    /// backend: its own container, or a shared cluster (indexes are tenant-prefixed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search_cluster: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKey {
    pub scope: Scope,
    /// Hex SHA-256 of the key.
    pub sha256: String,
    /// What the key is for, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// When the key was made (RFC 3339, UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// From when the key is refused (RFC 3339, UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
}

/// How many hex digits of a key's hash name it (`cloudpf keys`).
pub const KEY_ID_LEN: usize = 12;

impl RawKey {
    /// A key of `scope` stored as its hash, without label, dates or expiry.
    pub fn new(scope: Scope, sha256: String) -> Self {
        Self {
            scope,
            sha256,
            label: None,
            created: None,
            expires: None,
        }
    }

    /// The key's id: the start of its hash.
    pub fn id(&self) -> &str {
        self.sha256.get(..KEY_ID_LEN).unwrap_or(&self.sha256)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TenantsError {
    #[error("cannot read tenants file {path}: {error}")]
    Read { path: String, error: String },
    #[error("tenants file {path} is not valid: {error}")]
    Parse { path: String, error: String },
    #[error("tenant {id:?}: {error}")]
    Invalid { id: String, error: String },
    #[error("{0}")]
    RateLimits(String),
}

#[derive(Debug, Clone)]
struct Key {
    hash: [u8; 32],
    tenant: TenantId,
    scope: Scope,
    expires: Option<Timestamp>,
}

#[derive(Debug, Clone)]
pub struct Tenant {
    pub id: TenantId,
    pub cors_origins: Vec<String>,
}

/// The validated tenants.
#[derive(Debug, Default)]
pub struct Tenants {
    tenants: BTreeMap<TenantId, Tenant>,
    keys: Vec<Key>,
    elasticsearch: Option<EsConfig>,
    search_clusters: Vec<(TenantId, String)>,
    limiter: KeyLimiter,
}

/// A key that [`Tenants::authenticate`] recognised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub tenant: TenantId,
    pub scope: Scope,
    hash: [u8; 32],
    expires: Option<Timestamp>,
}

impl Caller {
    /// The key's id: the start of its hash ([`KEY_ID_LEN`] hex digits).
    pub fn key_id(&self) -> String {
        hex::encode(self.hash)[..KEY_ID_LEN].to_owned()
    }

    /// The same key, allowed at most `scope` (a token derived from it).
    pub fn narrowed(mut self, scope: Scope) -> Self {
        self.scope = self.scope.min(scope);
        self
    }

    /// Whether the key had expired at `now`.
    pub fn expired_at(&self, now: &Timestamp) -> bool {
        self.expires.as_ref().is_some_and(|e| e <= now)
    }
}

/// Hex SHA-256 of an API key, as the tenants file stores it.
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

impl Tenants {
    pub fn load(path: &Path) -> Result<Self, TenantsError> {
        let text = std::fs::read_to_string(path).map_err(|e| TenantsError::Read {
            path: path.display().to_string(),
            error: e.to_string(),
        })?;
        Self::from_toml(&text, &path.display().to_string())
    }

    /// From the file's text; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self, TenantsError> {
        let raw: RawTenantsFile = toml::from_str(text).map_err(|e| TenantsError::Parse {
            path: origin.to_owned(),
            error: e.to_string(),
        })?;
        Self::from_raw(raw)
    }

    pub fn from_raw(raw: RawTenantsFile) -> Result<Self, TenantsError> {
        let mut out = Tenants::default();
        for t in raw.tenants {
            let invalid = |error: String| TenantsError::Invalid {
                id: t.id.clone(),
                error,
            };
            let id = TenantId::parse(&t.id).map_err(|e| invalid(e.to_string()))?;
            if out.tenants.contains_key(&id) {
                return Err(invalid("listed twice".into()));
            }
            for origin in &t.cors_origins {
                if !(origin.starts_with("http://") || origin.starts_with("https://"))
                    || origin.ends_with('/')
                {
                    return Err(invalid(format!(
                        "CORS origin {origin:?} must be scheme://host[:port] without a path"
                    )));
                }
            }
            for k in &t.keys {
                let hash = TokenHash::parse_hex(&k.sha256)
                    .map(|h| *h.as_bytes())
                    .ok_or_else(|| invalid("a key's sha256 is not 64 hex digits".into()))?;
                if out.keys.iter().any(|other| other.hash == hash) {
                    return Err(invalid("a key is used twice".into()));
                }
                let expires = k
                    .expires
                    .as_deref()
                    .map(Timestamp::parse)
                    .transpose()
                    .map_err(|e| invalid(format!("a key's expires: {e}")))?;
                if let Some(created) = &k.created {
                    Timestamp::parse(created)
                        .map_err(|e| invalid(format!("a key's created: {e}")))?;
                }
                if k.label
                    .as_ref()
                    .is_some_and(|l| l.chars().count() > 100 || l.chars().any(char::is_control))
                {
                    return Err(invalid(
                        "a key's label must be at most 100 printable characters".into(),
                    ));
                }
                out.keys.push(Key {
                    hash,
                    tenant: id.clone(),
                    scope: k.scope,
                    expires,
                });
            }
            if let Some(cluster) = t.search_cluster {
                out.search_clusters.push((id.clone(), cluster));
            }
            out.tenants.insert(
                id.clone(),
                Tenant {
                    id,
                    cors_origins: t.cors_origins,
                },
            );
        }
        out.elasticsearch = raw.elasticsearch;
        out.limiter = KeyLimiter::new(raw.rate_limits.unwrap_or_default())
            .map_err(TenantsError::RateLimits)?;
        Ok(out)
    }

    /// Where each tenant's search engine is: the `[elasticsearch]` table and the
    /// tenants' `search_cluster`s (validated when the Elasticsearch backend asks).
    pub fn routing(&self) -> Routing {
        Routing::new(self.elasticsearch.clone(), self.search_clusters.clone())
    }

    pub fn get(&self, id: &TenantId) -> Option<&Tenant> {
        self.tenants.get(id)
    }

    pub fn ids(&self) -> impl Iterator<Item = &TenantId> {
        self.tenants.keys()
    }

    /// The tenant and scope of `key`. Every stored hash is compared, in constant time, so
    /// the answer's timing says nothing about which key came close.
    pub fn authenticate(&self, key: &str) -> Option<Caller> {
        let presented: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        let mut found = None;
        for k in &self.keys {
            if bool::from(k.hash.ct_eq(&presented)) {
                found = Some(Caller {
                    tenant: k.tenant.clone(),
                    scope: k.scope,
                    hash: k.hash,
                    expires: k.expires,
                });
            }
        }
        found
    }

    /// The key of `tenant` whose id is `id` (a token's parent), if the file still has it.
    pub fn parent(&self, tenant: &TenantId, id: &str) -> Option<Caller> {
        self.keys
            .iter()
            .find(|k| &k.tenant == tenant && hex::encode(k.hash).starts_with(id))
            .filter(|_| id.len() == KEY_ID_LEN)
            .map(|k| Caller {
                tenant: k.tenant.clone(),
                scope: k.scope,
                hash: k.hash,
                expires: k.expires,
            })
    }

    /// Counts one request of `caller`'s key against its scope's rate limit; `Err` holds
    /// the time until the key may call again.
    pub fn admit(&self, caller: &Caller) -> Result<(), std::time::Duration> {
        self.limiter.admit(&caller.hash, caller.scope)
    }

    /// Whether a browser page from `origin` may call the API of the tenant whose id
    /// starts the request path (`/search/<tenant>/…`, `/analytics/<tenant>…`).
    pub fn cors_allows(&self, path: &str, origin: &[u8]) -> bool {
        let mut segments = path.trim_start_matches('/').split('/');
        let (Some(_area), Some(tenant)) = (segments.next(), segments.next()) else {
            return false;
        };
        let Ok(id) = TenantId::parse(tenant) else {
            return false;
        };
        self.tenants
            .get(&id)
            .is_some_and(|t| t.cors_origins.iter().any(|o| o.as_bytes() == origin))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenants() -> Tenants {
        let raw: RawTenantsFile = toml::from_str(&format!(
            r#"
            [[tenants]]
            id = "shop-a"
            cors_origins = ["https://a.example"]
            [[tenants.keys]]
            scope = "search"
            sha256 = "{}"
            [[tenants.keys]]
            scope = "admin"
            sha256 = "{}"
            "#,
            hash_key("search-a"),
            hash_key("admin-a")
        ))
        .unwrap();
        Tenants::from_raw(raw).unwrap()
    }

    #[test]
    fn keys_authenticate_to_their_tenant_and_scope() {
        let t = tenants();
        let a = TenantId::parse("shop-a").unwrap();
        let who = |k: &str| t.authenticate(k).map(|c| (c.tenant, c.scope));
        assert_eq!(who("search-a"), Some((a.clone(), Scope::Search)));
        assert_eq!(who("admin-a"), Some((a, Scope::Admin)));
        assert_eq!(t.authenticate("admin-a "), None);
        assert_eq!(t.authenticate(""), None);
        assert!(Scope::Admin.allows(Scope::Search) && !Scope::Search.allows(Scope::Admin));
    }

    #[test]
    fn a_key_with_an_expiry_authenticates_until_then_and_bad_dates_are_refused() {
        let raw: RawTenantsFile = toml::from_str(&format!(
            r#"
            [[tenants]]
            id = "shop-a"
            [[tenants.keys]]
            scope = "search"
            sha256 = "{}"
            label = "storefront"
            created = "2026-12-01T00:00:00Z"
            expires = "2027-01-01T00:00:00Z"
            "#,
            hash_key("search-a")
        ))
        .unwrap();
        let t = Tenants::from_raw(raw.clone()).unwrap();
        let caller = t.authenticate("search-a").unwrap();
        let at = |s: &str| Timestamp::parse(s).unwrap();
        assert!(!caller.expired_at(&at("2026-12-31T23:59:59Z")));
        assert!(caller.expired_at(&at("2027-01-01T00:00:00Z")));
        assert_eq!(
            raw.tenants[0].keys[0].id(),
            &hash_key("search-a")[..KEY_ID_LEN]
        );

        let mut bad = raw;
        bad.tenants[0].keys[0].expires = Some("next week".into());
        let err = Tenants::from_raw(bad.clone()).unwrap_err().to_string();
        assert!(err.contains("expires"), "{err}");
        bad.tenants[0].keys[0].expires = None;
        bad.tenants[0].keys[0].label = Some("a\nb".into());
        let err = Tenants::from_raw(bad).unwrap_err().to_string();
        assert!(err.contains("label"), "{err}");
    }

    #[test]
    fn cors_is_per_tenant() {
        let t = tenants();
        assert!(t.cors_allows("/search/shop-a/products", b"https://a.example"));
        assert!(!t.cors_allows("/search/shop-a/products", b"https://evil.example"));
        assert!(!t.cors_allows("/search/shop-b/products", b"https://a.example"));
    }

    #[test]
    fn a_bad_tenants_file_is_refused_with_a_reason() {
        let bad = |text: &str| {
            toml::from_str::<RawTenantsFile>(text)
                .map_err(|e| e.to_string())
                .and_then(|r| Tenants::from_raw(r).map_err(|e| e.to_string()))
        };
        assert!(
            bad("[[tenants]]\nid = \"Shop\"")
                .unwrap_err()
                .contains("lowercase")
        );
        assert!(
            bad("[[tenants]]\nid = \"a\"\n[[tenants.keys]]\nscope = \"search\"\nsha256 = \"xyz\"")
                .unwrap_err()
                .contains("64 hex")
        );
        assert!(
            bad("[[tenants]]\nid = \"a\"\nunknown = 1")
                .unwrap_err()
                .contains("unknown")
        );
        assert!(
            bad("[[tenants]]\nid = \"a\"\n[[tenants]]\nid = \"a\"")
                .unwrap_err()
                .contains("twice")
        );
    }
}
