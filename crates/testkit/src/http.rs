//! Scripted stand-ins for the services the tests cannot run here (Athena's API, DynamoDB
//! Streams, Elasticsearch): each test writes its own axum handler that answers as the
//! service would; this module serves it on loopback and speaks AWS's JSON protocol.

use axum::Router;
use axum::extract::FromRequest;
use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// Serves `app` on a free loopback port for the rest of the test; its base URL.
pub async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free loopback port");
    let url = format!("http://{}", listener.local_addr().expect("a bound address"));
    tokio::spawn(async move { axum::serve(listener, app).await.expect("the fake serves") });
    url
}

/// Serves `app` over TLS on a free loopback port with the PEM certificate chain `cert`
/// and private key `key`; its base URL, `https://localhost:<port>` (the name the
/// certificate must carry). A client that gives up during the handshake is skipped.
pub async fn serve_tls(app: Router, cert: &str, key: &str) -> String {
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

    struct TlsListener {
        tcp: tokio::net::TcpListener,
        acceptor: tokio_rustls::TlsAcceptor,
    }
    impl axum::serve::Listener for TlsListener {
        type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
        type Addr = std::net::SocketAddr;

        async fn accept(&mut self) -> (Self::Io, Self::Addr) {
            loop {
                let Ok((stream, addr)) = self.tcp.accept().await else {
                    continue;
                };
                if let Ok(tls) = self.acceptor.accept(stream).await {
                    return (tls, addr);
                }
            }
        }

        fn local_addr(&self) -> std::io::Result<Self::Addr> {
            self.tcp.local_addr()
        }
    }

    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert.as_bytes())
        .collect::<Result<_, _>>()
        .expect("a PEM certificate chain");
    let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).expect("a PEM private key");
    let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .expect("a certificate and its key");
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free loopback port");
    let port = tcp.local_addr().expect("a bound address").port();
    let listener = TlsListener {
        tcp,
        acceptor: tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config)),
    };
    tokio::spawn(async move { axum::serve(listener, app).await.expect("the fake serves") });
    format!("https://localhost:{port}")
}

/// One AWS JSON-protocol request: the operation its `X-Amz-Target` names
/// (`DynamoDBStreams_20120810.GetRecords` → `GetRecords`) and its JSON body (`Null` if it
/// is not JSON). The SDK sends `application/x-amz-json-1.x`, which axum's `Json` refuses.
#[derive(Debug, Clone)]
pub struct AwsCall {
    pub operation: String,
    pub body: Value,
}

impl<S: Send + Sync> FromRequest<S> for AwsCall {
    type Rejection = Response;

    async fn from_request(req: Request<axum::body::Body>, state: &S) -> Result<Self, Response> {
        let operation = req
            .headers()
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .and_then(|t| t.rsplit('.').next())
            .unwrap_or_default()
            .to_owned();
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(Self {
            operation,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        })
    }
}

/// Which AWS JSON protocol a service speaks: `1.0` (DynamoDB Streams) or `1.1` (Athena).
#[derive(Debug, Clone, Copy)]
pub enum AwsJson {
    V1_0,
    V1_1,
}

impl AwsJson {
    fn content_type(self) -> &'static str {
        match self {
            AwsJson::V1_0 => "application/x-amz-json-1.0",
            AwsJson::V1_1 => "application/x-amz-json-1.1",
        }
    }

    /// A successful answer.
    pub fn ok(self, body: &Value) -> Response {
        ([("content-type", self.content_type())], body.to_string()).into_response()
    }

    /// An error the SDK reads as `kind` (`__type` is `<namespace>#<kind>`).
    pub fn error(self, namespace: &str, kind: &str) -> Response {
        let body = serde_json::json!({ "__type": format!("{namespace}#{kind}"), "message": kind });
        (
            StatusCode::BAD_REQUEST,
            [("content-type", self.content_type())],
            body.to_string(),
        )
            .into_response()
    }
}
