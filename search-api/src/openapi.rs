//! The OpenAPI document, generated from the handlers and types.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes::{analytics, health, search};

#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "cloudpf search API",
        description = "Per-tenant product search, autocomplete and purchase search. Search keys (safe to embed in a storefront page) may search products and autocomplete; admin keys may do everything for their tenant. Errors are `{\"error\": {\"code\", \"message\"}}`."
    ),
    paths(
        search::search_all,
        search::search_products,
        search::autocomplete,
        search::search_purchases,
        analytics::dashboard,
        analytics::report,
        health::health,
        health::ready,
        health::metrics,
    ),
    components(schemas(crate::error::ErrorBody, crate::error::ErrorDetail)),
    modifiers(&Security),
    tags((name = "search", description = "Search and autocomplete"), (name = "analytics", description = "Sales reports (admin keys)"), (name = "operations", description = "Health and metrics"))
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}
