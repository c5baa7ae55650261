//! The OpenAPI document and a human-readable page rendered from it on the server, so the
//! docs work offline (no script from a CDN).

use axum::Json;
use axum::Router;
use axum::response::Html;
use axum::routing::get;
use utoipa::OpenApi;
use utoipa::openapi::path::{Operation, ParameterIn};

use crate::AppState;
use crate::openapi::ApiDoc;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/openapi.json", get(openapi_json))
        .route("/docs", get(docs))
}

async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn operation_html(method: &str, path: &str, op: &Operation) -> String {
    let mut out = format!(
        "<section><h2><code>{method} {}</code></h2><p>{}</p>",
        esc(path),
        esc(op
            .description
            .as_deref()
            .or(op.summary.as_deref())
            .unwrap_or(""))
    );
    if let Some(params) = &op.parameters {
        out.push_str("<table><tr><th>parameter</th><th>in</th><th>description</th></tr>");
        for p in params {
            let place = match p.parameter_in {
                ParameterIn::Path => "path",
                ParameterIn::Query => "query",
                ParameterIn::Header => "header",
                ParameterIn::Cookie => "cookie",
            };
            out.push_str(&format!(
                "<tr><td><code>{}</code></td><td>{place}</td><td>{}</td></tr>",
                esc(&p.name),
                esc(p.description.as_deref().unwrap_or(""))
            ));
        }
        out.push_str("</table>");
    }
    out.push_str("<ul>");
    for (status, response) in &op.responses.responses {
        let text = match response {
            utoipa::openapi::RefOr::T(r) => r.description.clone(),
            utoipa::openapi::RefOr::Ref(r) => r.ref_location.clone(),
        };
        out.push_str(&format!(
            "<li><code>{}</code> {}</li>",
            esc(status),
            esc(&text)
        ));
    }
    out.push_str("</ul></section>");
    out
}

async fn docs() -> Html<String> {
    let doc = ApiDoc::openapi();
    let mut body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}}\
         code{{background:#f3f3f3;padding:0 .2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ddd;padding:.2em .5em;text-align:left}}\
         section{{border-top:1px solid #ccc;margin-top:1.5rem}}</style></head><body><h1>{title}</h1><p>{desc}</p>\
         <p>Machine-readable: <a href=\"/openapi.json\">/openapi.json</a>. Send keys in <code>X-API-Key</code> or <code>Authorization: Bearer</code>.</p>",
        title = esc(&doc.info.title),
        desc = esc(doc.info.description.as_deref().unwrap_or("")),
    );
    for (path, item) in &doc.paths.paths {
        for (method, op) in [("GET", &item.get), ("POST", &item.post)] {
            if let Some(op) = op {
                body.push_str(&operation_html(method, path, op));
            }
        }
    }
    body.push_str("</body></html>");
    Html(body)
}
