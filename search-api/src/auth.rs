//! The tenant-and-scope extractor: who is calling, for which tenant, allowed to do what.

use std::marker::PhantomData;

use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use cloudpf_model::TenantId;

use crate::AppState;
use crate::error::ApiError;
use crate::tenants::Scope;
use crate::tokens::{TOKEN_PREFIX, TokenError};

/// A scope an endpoint requires, as a type.
pub trait RequiredScope: Send + Sync + 'static {
    const SCOPE: Scope;
}

#[derive(Debug)]
pub struct SearchScope;
impl RequiredScope for SearchScope {
    const SCOPE: Scope = Scope::Search;
}

#[derive(Debug)]
pub struct AdminScope;
impl RequiredScope for AdminScope {
    const SCOPE: Scope = Scope::Admin;
}

/// A caller authenticated for the `{tenant_id}` of the path with at least scope `S`.
#[derive(Debug)]
pub struct TenantAuth<S> {
    pub tenant: TenantId,
    /// The key's own scope (an admin key on a search endpoint is `Admin`).
    pub scope: Scope,
    /// The key's id (the start of its hash); a token's is its parent key's.
    pub key_id: String,
    /// Whether the caller presented a short-lived token rather than a key.
    pub via_token: bool,
    _required: PhantomData<S>,
}

/// The key from `X-API-Key` or `Authorization: Bearer`. Keys are never accepted in the
/// URL, where they would end up in logs and browser history.
pub fn presented_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers.get("x-api-key") {
        return v.to_str().ok().map(str::trim).filter(|k| !k.is_empty());
    }
    let auth = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = auth.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|k| !k.is_empty())
}

/// The raw `{tenant_id}` of the matched route, as the path gave it.
pub fn tenant_param(params: &RawPathParams) -> Option<&str> {
    params
        .iter()
        .find(|(name, _)| *name == "tenant_id")
        .map(|(_, v)| v)
}

impl<S: RequiredScope> FromRequestParts<AppState> for TenantAuth<S> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        // A path that does not decode (`%FF`) is the caller's mistake, not ours.
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::InvalidTenantId(format!("tenant id: {e}")))?;
        let raw = tenant_param(&params)
            .ok_or_else(|| ApiError::Internal("route without {tenant_id}".into()))?;
        let tenant = TenantId::parse(raw).map_err(|e| ApiError::InvalidTenantId(e.to_string()))?;
        let key = presented_key(&parts.headers).ok_or(ApiError::MissingApiKey)?;
        let now = cloudpf_model::Timestamp::now();
        let via_token = key.starts_with(TOKEN_PREFIX);
        let caller = if via_token {
            // A token stands for its parent key, at most with the token's scope; the
            // parent must still be in the file (revoking it ends its tokens).
            let signer = state.tokens.as_deref().ok_or(ApiError::InvalidApiKey)?;
            let claims = signer.verify(key, &now).map_err(|e| match e {
                TokenError::Expired => ApiError::ExpiredApiKey,
                TokenError::Invalid => ApiError::InvalidApiKey,
            })?;
            state
                .tenants
                .parent(&claims.tenant, &claims.parent)
                .ok_or(ApiError::InvalidApiKey)?
                .narrowed(claims.scope)
        } else {
            state
                .tenants
                .authenticate(key)
                .ok_or(ApiError::InvalidApiKey)?
        };
        if caller.expired_at(&now) {
            return Err(ApiError::ExpiredApiKey);
        }
        // Counted before anything else the key asks, so a key over its quota costs no work.
        state
            .tenants
            .admit(&caller)
            .map_err(ApiError::RateLimited)?;
        let scope = caller.scope;
        // One answer whether or not the tenant exists: a key holder must not learn which
        // other shops are served here (issue #10).
        if caller.tenant != tenant {
            return Err(ApiError::WrongTenant(tenant.to_string()));
        }
        if !scope.allows(S::SCOPE) {
            return Err(ApiError::InsufficientScope);
        }
        Ok(Self {
            tenant,
            scope,
            key_id: caller.key_id(),
            via_token,
            _required: PhantomData,
        })
    }
}
