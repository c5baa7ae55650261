//! Configuration in two stages: [`RawConfig`] is what a TOML file (or defaults) says,
//! unknown keys refused; [`Config`] is the validated, typed result the server runs on.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cloudpf_search::EngineOptions;
use serde::Deserialize;

use crate::reports::ReportLimits;
use cloudpf_engines::SearchBackend;

/// The config file. Every key is optional; the comments give the defaults.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Address to listen on. Default `127.0.0.1:8080`.
    pub addr: Option<String>,
    /// Data directory with the indexes. Default `data`.
    pub data_dir: Option<PathBuf>,
    /// Tenants file. Default `<data_dir>/tenants.toml`.
    pub tenants_file: Option<PathBuf>,
    /// `embedded` (Tantivy under the data directory) or `elasticsearch` (the clusters of
    /// the tenants file). Default `embedded`.
    pub search_backend: Option<String>,
    /// Hex SHA-256 of the operator's metrics token (`cloudpf hash-key` prints it). With
    /// it, `/metrics` called with `Authorization: Bearer <token>` adds per-tenant series;
    /// without it, nobody sees them.
    pub metrics_token_sha256: Option<String>,
    #[serde(default)]
    pub limits: RawLimits,
    #[serde(default)]
    pub embedded: RawEmbedded,
}

/// `[embedded]`: what the embedded engine keeps open. An open index costs memory (and
/// its tenant's autocomplete), so a server with many tenants keeps only the busy ones.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEmbedded {
    /// Seconds an index stays open without requests. Default 600.
    pub index_idle_close_seconds: Option<u64>,
    /// Most indexes open at once, two per tenant; the least recently used closes first.
    /// Default 4000.
    pub max_open_indexes: Option<usize>,
    /// Queries run at once; more wait. Default: the number of cores.
    pub query_concurrency: Option<usize>,
}

/// A secret's SHA-256, compared in constant time; the secret itself is never kept.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenHash([u8; 32]);

impl std::fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenHash(…)")
    }
}

impl TokenHash {
    /// 64 hex digits, as `cloudpf hash-key` prints them.
    pub fn parse_hex(text: &str) -> Option<Self> {
        let bytes = hex::decode(text).ok()?;
        Some(Self(bytes.try_into().ok()?))
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub fn matches(&self, presented: &str) -> bool {
        use sha2::{Digest, Sha256};
        use subtle::ConstantTimeEq;
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        bool::from(self.0.ct_eq(&digest))
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    /// Longest `q`, in characters. Default 200.
    pub max_query_chars: Option<usize>,
    /// Most words in `q`. Default 10.
    pub max_query_terms: Option<usize>,
    /// Largest `size`. Default 100.
    pub max_page_size: Option<usize>,
    /// Deepest result reachable by paging (`page * size`). Default 10000.
    pub max_result_window: Option<usize>,
    /// Time a request may take before it is answered 408. Default 5000.
    pub request_timeout_ms: Option<u64>,
    /// Largest request body. Default 65536.
    pub max_body_bytes: Option<usize>,
    /// Worker threads of the report pool, apart from search. Default 1.
    pub report_threads: Option<usize>,
    /// Report requests running at once over all tenants (more wait). Default 4.
    pub max_reports: Option<usize>,
    /// Report requests of one tenant running at once (more get 429). Default 2.
    pub max_reports_per_tenant: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub max_query_chars: usize,
    pub max_query_terms: usize,
    pub max_page_size: usize,
    pub max_result_window: usize,
    pub request_timeout: Duration,
    pub max_body_bytes: usize,
    pub reports: ReportLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_query_chars: 200,
            max_query_terms: 10,
            max_page_size: 100,
            max_result_window: 10_000,
            request_timeout: Duration::from_secs(5),
            max_body_bytes: 64 * 1024,
            reports: ReportLimits::default(),
        }
    }
}

/// The validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    pub tenants_file: PathBuf,
    pub search_backend: SearchBackend,
    pub metrics_token: Option<TokenHash>,
    pub limits: Limits,
    pub embedded: EngineOptions,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {0}: {1}")]
    Read(String, String),
    #[error("config file {0} is not valid: {1}")]
    Parse(String, String),
    #[error("{0}")]
    Invalid(String),
}

impl RawConfig {
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::Read(path.display().to_string(), e.to_string()))?;
        toml::from_str(&text)
            .map_err(|e| ConfigError::Parse(path.display().to_string(), e.to_string()))
    }

    pub fn validate(self) -> Result<Config, ConfigError> {
        let addr_text = self.addr.unwrap_or_else(|| "127.0.0.1:8080".to_owned());
        let addr = addr_text.parse().map_err(|_| {
            ConfigError::Invalid(format!("addr {addr_text:?} is not an ip:port address"))
        })?;
        let data_dir = self.data_dir.unwrap_or_else(|| PathBuf::from("data"));
        let tenants_file = self
            .tenants_file
            .unwrap_or_else(|| data_dir.join("tenants.toml"));
        let search_backend = match self.search_backend.as_deref() {
            None => SearchBackend::default(),
            Some(text) => text.parse().map_err(ConfigError::Invalid)?,
        };
        let metrics_token = self
            .metrics_token_sha256
            .map(|hex| {
                TokenHash::parse_hex(hex.trim()).ok_or_else(|| {
                    ConfigError::Invalid(
                        "metrics_token_sha256 must be 64 hex digits (cloudpf hash-key prints them)"
                            .into(),
                    )
                })
            })
            .transpose()?;
        let d = Limits::default();
        let l = self.limits;
        let within = |name: &str, v: usize, lo: usize, hi: usize| {
            if (lo..=hi).contains(&v) {
                Ok(v)
            } else {
                Err(ConfigError::Invalid(format!(
                    "limits.{name} must be between {lo} and {hi}"
                )))
            }
        };
        let limits = Limits {
            max_query_chars: within(
                "max_query_chars",
                l.max_query_chars.unwrap_or(d.max_query_chars),
                1,
                4096,
            )?,
            max_query_terms: within(
                "max_query_terms",
                l.max_query_terms.unwrap_or(d.max_query_terms),
                1,
                64,
            )?,
            max_page_size: within(
                "max_page_size",
                l.max_page_size.unwrap_or(d.max_page_size),
                1,
                1000,
            )?,
            max_result_window: within(
                "max_result_window",
                l.max_result_window.unwrap_or(d.max_result_window),
                1,
                100_000,
            )?,
            request_timeout: Duration::from_millis(within(
                "request_timeout_ms",
                l.request_timeout_ms.map_or(5000, |v| v as usize),
                10,
                600_000,
            )? as u64),
            max_body_bytes: within(
                "max_body_bytes",
                l.max_body_bytes.unwrap_or(d.max_body_bytes),
                1024,
                16 << 20,
            )?,
            reports: ReportLimits {
                threads: within(
                    "report_threads",
                    l.report_threads.unwrap_or(d.reports.threads),
                    1,
                    64,
                )?,
                total: within(
                    "max_reports",
                    l.max_reports.unwrap_or(d.reports.total),
                    1,
                    1024,
                )?,
                per_tenant: within(
                    "max_reports_per_tenant",
                    l.max_reports_per_tenant.unwrap_or(d.reports.per_tenant),
                    1,
                    1024,
                )?,
            },
        };
        let de = EngineOptions::default();
        let embedded = EngineOptions {
            idle_close: Duration::from_secs(
                self.embedded
                    .index_idle_close_seconds
                    .unwrap_or(de.idle_close.as_secs())
                    .clamp(1, 7 * 24 * 3600),
            ),
            max_open: match self.embedded.max_open_indexes.unwrap_or(de.max_open) {
                n @ 2..=1_000_000 => n,
                _ => {
                    return Err(ConfigError::Invalid(
                        "embedded.max_open_indexes must be between 2 and 1000000".into(),
                    ));
                }
            },
            query_concurrency: match self.embedded.query_concurrency {
                None => de.query_concurrency,
                Some(n @ 1..=1024) => n,
                Some(_) => {
                    return Err(ConfigError::Invalid(
                        "embedded.query_concurrency must be between 1 and 1024".into(),
                    ));
                }
            },
            ..de
        };
        Ok(Config {
            addr,
            data_dir,
            tenants_file,
            search_backend,
            metrics_token,
            limits,
            embedded,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_documented_values() {
        let c = RawConfig::default().validate().unwrap();
        assert_eq!(c.addr.to_string(), "127.0.0.1:8080");
        assert_eq!(c.tenants_file, PathBuf::from("data/tenants.toml"));
        assert_eq!(c.limits, Limits::default());
        assert_eq!(c.search_backend, SearchBackend::Embedded);
        assert_eq!(c.embedded, EngineOptions::default());
    }

    #[test]
    fn the_embedded_engine_closes_idle_indexes_after_the_configured_time() {
        let raw: RawConfig =
            toml::from_str("[embedded]\nindex_idle_close_seconds = 30\nmax_open_indexes = 200\nquery_concurrency = 3")
                .unwrap();
        let c = raw.validate().unwrap();
        assert_eq!(c.embedded.idle_close, Duration::from_secs(30));
        assert_eq!(c.embedded.max_open, 200);
        assert_eq!(c.embedded.query_concurrency, 3);
        let none: RawConfig = toml::from_str("[embedded]\nquery_concurrency = 0").unwrap();
        assert!(none.validate().is_err());
        let one: RawConfig = toml::from_str("[embedded]\nmax_open_indexes = 1").unwrap();
        assert!(one.validate().is_err());
    }

    #[test]
    fn the_search_backend_is_embedded_or_elasticsearch() {
        let es: RawConfig = toml::from_str("search_backend = \"elasticsearch\"").unwrap();
        assert_eq!(
            es.validate().unwrap().search_backend,
            SearchBackend::Elasticsearch
        );
        let solr: RawConfig = toml::from_str("search_backend = \"solr\"").unwrap();
        assert_eq!(
            solr.validate().unwrap_err().to_string(),
            "search backend must be embedded or elasticsearch, got \"solr\""
        );
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        assert!(toml::from_str::<RawConfig>("adr = \"x\"").is_err());
        assert!(toml::from_str::<RawConfig>("[limits]\nmax_size = 1").is_err());
        let bad_addr: RawConfig = toml::from_str("addr = \"localhost\"").unwrap();
        assert!(
            bad_addr
                .validate()
                .unwrap_err()
                .to_string()
                .contains("ip:port")
        );
        let bad_limit: RawConfig = toml::from_str("[limits]\nmax_page_size = 0").unwrap();
        assert!(
            bad_limit
                .validate()
                .unwrap_err()
                .to_string()
                .contains("max_page_size")
        );
    }
}
