//! Request rates per API key, one quota per scope, set in the tenants file:
//!
//! ```toml
//! [rate_limits.search]      # each search key (a storefront's whole traffic)
//! per_second = 1000
//! burst = 2000
//!
//! [rate_limits.admin]       # each admin key (back office, dashboards, scripts)
//! per_second = 50
//! burst = 100
//! ```
//!
//! A key over its quota gets `429 rate_limited` with `Retry-After`. The limiter is
//! governor's GCRA, keyed by the key's SHA-256: only keys of the tenants file are ever
//! tracked, so its memory is bounded by the file, not by what callers send.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use serde::{Deserialize, Serialize};

use crate::tenants::Scope;

/// One scope's quota as the tenants file says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawQuota {
    /// Sustained requests per second per key.
    pub per_second: u32,
    /// Requests a key may send at once before the sustained rate applies.
    pub burst: u32,
}

/// `[rate_limits]` of the tenants file; a scope left out keeps its default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRateLimits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search: Option<RawQuota>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin: Option<RawQuota>,
}

/// Defaults: a storefront's search key carries every shopper of the shop, so it gets a
/// lot; an admin key is one back office.
pub const DEFAULT_SEARCH: RawQuota = RawQuota {
    per_second: 1000,
    burst: 2000,
};
pub const DEFAULT_ADMIN: RawQuota = RawQuota {
    per_second: 50,
    burst: 100,
};

fn quota(scope: &str, raw: RawQuota) -> Result<Quota, String> {
    let nonzero = |name: &str, v: u32| {
        NonZeroU32::new(v).ok_or_else(|| format!("rate_limits.{scope}.{name} must be at least 1"))
    };
    Ok(Quota::per_second(nonzero("per_second", raw.per_second)?)
        .allow_burst(nonzero("burst", raw.burst)?))
}

/// The per-key limiters of both scopes.
pub struct KeyLimiter {
    search: DefaultKeyedRateLimiter<[u8; 32]>,
    admin: DefaultKeyedRateLimiter<[u8; 32]>,
    clock: DefaultClock,
}

impl std::fmt::Debug for KeyLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyLimiter")
    }
}

impl Default for KeyLimiter {
    fn default() -> Self {
        Self::new(RawRateLimits::default()).unwrap_or_else(|_| unreachable!("defaults are valid"))
    }
}

impl KeyLimiter {
    pub fn new(raw: RawRateLimits) -> Result<Self, String> {
        Ok(Self {
            search: DefaultKeyedRateLimiter::keyed(quota(
                "search",
                raw.search.unwrap_or(DEFAULT_SEARCH),
            )?),
            admin: DefaultKeyedRateLimiter::keyed(quota(
                "admin",
                raw.admin.unwrap_or(DEFAULT_ADMIN),
            )?),
            clock: DefaultClock::default(),
        })
    }

    /// Counts one request of the key with hash `key`; `Err` says how long until the next
    /// one is allowed.
    pub fn admit(&self, key: &[u8; 32], scope: Scope) -> Result<(), Duration> {
        let limiter = match scope {
            Scope::Search => &self.search,
            Scope::Admin => &self.admin,
        };
        limiter
            .check_key(key)
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }
}
