//! What a browser loads from the API itself: the embeddable search widget, the demo
//! storefront at `/` and the shop's analytics dashboard at `/dashboard`. Every file is compiled into the binary, so the pages work offline
//! (no CDN, nothing fetched at run time).

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use cloudpf_model::TenantId;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::AppState;

/// The widget's major version is in its path: a page pins `/widget/v1/…` and gets fixes
/// (within a day, see [`WIDGET_CACHE`]) but never a breaking change.
pub const WIDGET_JS_PATH: &str = "/widget/v1/cloudpf-search.js";
pub const WIDGET_CSS_PATH: &str = "/widget/v1/cloudpf-search.css";

const WIDGET_JS: &str = include_str!("../../assets/widget/cloudpf-search.js");
const WIDGET_CSS: &str = include_str!("../../assets/widget/cloudpf-search.css");
const STOREFRONT_HTML: &str = include_str!("../../assets/storefront/index.html");
const STOREFRONT_JS: &str = include_str!("../../assets/storefront/store.js");
const STOREFRONT_CSS: &str = include_str!("../../assets/storefront/store.css");
const SITE_CSS: &str = include_str!("../../assets/site.css");
const DASHBOARD_HTML: &str = include_str!("../../assets/dashboard/index.html");
const DASHBOARD_JS: &str = include_str!("../../assets/dashboard/dashboard.js");
const DASHBOARD_CSS: &str = include_str!("../../assets/dashboard/dashboard.css");
/// uPlot (MIT), vendored from the npm registry by `assets/vendor/fetch-uplot.sh`.
const UPLOT_JS: &str = include_str!("../../assets/vendor/uplot/uPlot.iife.min.js");
const UPLOT_CSS: &str = include_str!("../../assets/vendor/uplot/uPlot.min.css");
const UPLOT_LICENSE: &str = include_str!("../../assets/vendor/uplot/LICENSE");

/// Storefronts embed the widget from other origins, so caches may keep it; a day bounds
/// how long a fix takes to reach them, and the ETag makes the check after that cheap.
const WIDGET_CACHE: &str = "public, max-age=86400";
/// The pages' own scripts change with the binary.
const PAGE_CACHE: &str = "no-cache";

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";

/// Pages served here run only their own scripts and talk only to this API.
const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; \
    frame-ancestors 'none'";

/// A shop on the demo storefront's picker. Search keys are public by design (every
/// storefront page embeds one), so the page may carry them; admin keys never.
#[derive(Clone, Serialize)]
pub struct StorefrontShop {
    pub tenant: TenantId,
    pub search_key: String,
}

impl std::fmt::Debug for StorefrontShop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorefrontShop")
            .field("tenant", &self.tenant)
            .finish_non_exhaustive()
    }
}

/// A file compiled into the binary, with its validator.
#[derive(Debug)]
struct Asset {
    body: &'static str,
    content_type: &'static str,
    cache: &'static str,
    etag: HeaderValue,
}

impl Asset {
    fn new(body: &'static str, content_type: &'static str, cache: &'static str) -> Arc<Self> {
        let digest = Sha256::digest(body.as_bytes());
        let etag = format!("\"{}\"", hex::encode(&digest[..12]));
        Arc::new(Self {
            body,
            content_type,
            cache,
            // Hex digits in quotes are always a valid header value.
            etag: HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"0\"")),
        })
    }

    fn respond(&self, request: &HeaderMap) -> Response {
        let fresh = request
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|tags| {
                tags.split(',')
                    .any(|t| t.trim().trim_start_matches("W/") == self.etag)
            });
        let mut response = if fresh {
            StatusCode::NOT_MODIFIED.into_response()
        } else {
            (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(self.content_type),
                )],
                Body::from(self.body),
            )
                .into_response()
        };
        let headers = response.headers_mut();
        headers.insert(header::ETAG, self.etag.clone());
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(self.cache));
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        response
    }
}

pub fn router() -> Router<AppState> {
    let mut router = Router::new()
        .route("/", get(storefront))
        .route("/dashboard", get(dashboard));
    for (path, asset) in [
        (WIDGET_JS_PATH, Asset::new(WIDGET_JS, JS, WIDGET_CACHE)),
        (WIDGET_CSS_PATH, Asset::new(WIDGET_CSS, CSS, WIDGET_CACHE)),
        ("/site.css", Asset::new(SITE_CSS, CSS, PAGE_CACHE)),
        (
            "/storefront/store.js",
            Asset::new(STOREFRONT_JS, JS, PAGE_CACHE),
        ),
        (
            "/storefront/store.css",
            Asset::new(STOREFRONT_CSS, CSS, PAGE_CACHE),
        ),
        (
            "/dashboard/dashboard.js",
            Asset::new(DASHBOARD_JS, JS, PAGE_CACHE),
        ),
        (
            "/dashboard/dashboard.css",
            Asset::new(DASHBOARD_CSS, CSS, PAGE_CACHE),
        ),
        (
            "/dashboard/vendor/uPlot.iife.min.js",
            Asset::new(UPLOT_JS, JS, PAGE_CACHE),
        ),
        (
            "/dashboard/vendor/uPlot.min.css",
            Asset::new(UPLOT_CSS, CSS, PAGE_CACHE),
        ),
        (
            "/dashboard/vendor/uPlot.LICENSE",
            Asset::new(UPLOT_LICENSE, TEXT, PAGE_CACHE),
        ),
    ] {
        router = router.route(
            path,
            get(move |headers: HeaderMap| async move { asset.respond(&headers) }),
        );
    }
    router
}

/// The headers every HTML page of the API carries.
pub fn page_response(html: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, PAGE_CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::CACHE_CONTROL, PAGE_CACHE),
        ],
        html,
    )
        .into_response()
}

/// The analytics dashboard. The page holds no key: the shop signs in in the page, and
/// its admin key stays in the tab's session storage.
async fn dashboard() -> Response {
    page_response(DASHBOARD_HTML.to_owned())
}

/// JSON for a `<script type="application/json">` block: `<` escaped, so no value can
/// close the element or open a comment.
fn json_for_script<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value)
        .unwrap_or_else(|_| "[]".to_owned())
        .replace('<', "\\u003c")
}

/// The demo storefront: the shops this server was given ([`AppState::storefront`]) that
/// its tenants file still serves; without any, a form for a shop id and search key.
async fn storefront(State(state): State<AppState>) -> Response {
    let shops: Vec<&StorefrontShop> = state
        .storefront
        .iter()
        .filter(|s| state.tenants.get(&s.tenant).is_some())
        .collect();
    page_response(STOREFRONT_HTML.replace("{{SHOPS}}", &json_for_script(&shops)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_json_cannot_close_its_element() {
        let text = json_for_script(&["</script><script>alert(1)</script><!--"]);
        assert!(!text.contains('<'), "{text}");
        let back: Vec<String> = serde_json::from_str(&text).unwrap_or_default();
        assert_eq!(back, ["</script><script>alert(1)</script><!--"]);
    }

    #[test]
    fn the_storefront_page_has_one_place_for_the_shops() {
        assert_eq!(STOREFRONT_HTML.matches("{{SHOPS}}").count(), 1);
        assert!(STOREFRONT_HTML.contains(WIDGET_JS_PATH));
        assert!(STOREFRONT_HTML.contains(WIDGET_CSS_PATH));
    }
}
