//! The OpenAPI document, generated from the handlers and types.

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use crate::routes::{analytics, events, health, search, tokens};

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
        events::record,
        tokens::mint,
        analytics::dashboard,
        analytics::report,
        health::health,
        health::ready,
        health::metrics,
    ),
    components(schemas(crate::error::ErrorBody, crate::error::ErrorDetail)),
    modifiers(&Security, &CommonErrors),
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

/// The errors any keyed endpoint may answer besides its own, which the handlers cannot
/// name in their `responses(...)` because layers produce them: the request timeout, the
/// per-key rate limit, the body limit of a POST, and the search or reports backend being
/// unavailable. Schemathesis checks every status against this document (tests/api_check).
struct CommonErrors;

fn error_response(description: &str) -> ResponseBuilder {
    ResponseBuilder::new().description(description).content(
        "application/json",
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("ErrorBody")))
            .build(),
    )
}

impl Modify for CommonErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let retry_after = HeaderBuilder::new()
            .schema(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(1)),
            )
            .description(Some("Seconds to wait before retrying"))
            .build();
        for (path, item) in openapi.paths.paths.iter_mut() {
            let keyed = path.starts_with("/search/")
                || path.starts_with("/analytics/")
                || path.starts_with("/events/")
                || path.starts_with("/auth/");
            let post = item.post.is_some();
            for op in [item.get.as_mut(), item.post.as_mut()]
                .into_iter()
                .flatten()
            {
                let responses = &mut op.responses.responses;
                let mut add = |status: &str, response: Response| {
                    responses
                        .entry(status.to_owned())
                        .or_insert_with(|| RefOr::T(response));
                };
                if !keyed {
                    continue;
                }
                add("408", error_response("The request took too long").build());
                if post {
                    add(
                        "413",
                        error_response("The request body is larger than the limit").build(),
                    );
                }
                add(
                    "429",
                    error_response(
                        "This API key sent too many requests (`rate_limited`), or the tenant runs as many reports as it may at once (`too_many_reports`)",
                    )
                    .header("Retry-After", retry_after.clone())
                    .build(),
                );
                add(
                    "503",
                    error_response("Search or reports are unavailable, or the tenant has no search backend; retry later").build(),
                );
            }
        }
    }
}
