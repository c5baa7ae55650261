//! Which Elasticsearch cluster serves which tenant.
//!
//! A deployment names its clusters once and points every tenant at one of them. A
//! dedicated cluster per tenant and one cluster shared by many tenants are the same
//! configuration: index names always carry the tenant (`<prefix>-<tenant>-products`), so
//! tenants sharing a cluster never share an index.
//!
//! The raw configuration ([`EsConfig`], the `[elasticsearch]` table of a TOML file) names
//! secrets only by environment variable or by secret-store name (`credentials_secret`,
//! read by the caller: see [`EsConfig::stored_secrets`]); [`EsRoutes::new`] resolves them
//! while validating,
//! and nothing here prints a secret: [`Secret`]'s `Debug` is redacted, URLs with user
//! info are refused, and errors name variables, never their values.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use cloudpf_model::TenantId;
use serde::{Deserialize, Serialize};

/// The index name prefix when a cluster does not set one.
pub const DEFAULT_INDEX_PREFIX: &str = "cloudpf";

/// The longest index prefix accepted: with a 63-character tenant id and the entity and
/// version suffixes, index names stay far below Elasticsearch's 255-byte limit.
const MAX_PREFIX_LEN: usize = 64;

/// The `[elasticsearch]` table as written in the configuration file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EsConfig {
    #[serde(default)]
    pub clusters: BTreeMap<String, RawCluster>,
    /// `[elasticsearch.tenants.<tenant>] cluster = "<name>"`, for processes (the CDC
    /// Lambdas) that have no tenant list of their own; the API passes its tenants'
    /// `cluster` references to [`EsRoutes::new`] instead, or as well.
    #[serde(default)]
    pub tenants: BTreeMap<String, RawRoute>,
}

/// One tenant's reference to a cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    pub cluster: String,
}

/// One `[elasticsearch.clusters.<name>]` table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawCluster {
    /// `http://` or `https://` address of the cluster, without credentials.
    pub url: String,
    /// Basic authentication user; needs `password_env`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Name of the environment variable holding the basic authentication password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,
    /// Name of the environment variable holding a base64-encoded API key (`id:key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_env: Option<String>,
    /// Name or ARN of a stored secret (AWS Secrets Manager) holding this cluster's
    /// credentials as JSON: `{"username": …, "password": …}` (what the search cluster
    /// stack generates) or `{"api_key": …}`. Instead of the `*_env` settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret: Option<String>,
    /// S3 bucket of this cluster's snapshots (under `<cluster name>/`): `cloudpf
    /// es-setup` registers it as the cluster's snapshot repository with a nightly
    /// snapshot policy. The cluster reaches the bucket with its own AWS credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_bucket: Option<String>,
    /// PEM of the certificate authority that signed the cluster's certificate, for an
    /// `https://` cluster whose certificate no public authority signed (what
    /// `cloudpf tenants add --provision` generates for each cluster it deploys). The
    /// cluster's host name is checked against the certificate as usual.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_certificate: Option<String>,
    /// Start of every index name on this cluster; `cloudpf` unless set. Lowercase
    /// letters, digits and `-`, starting with a letter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index_prefix: Option<String>,
}

impl EsConfig {
    /// The stored secrets (`credentials_secret`) the clusters name, for the caller to
    /// read before [`EsRoutes::with_sources`].
    pub fn stored_secrets(&self) -> std::collections::BTreeSet<String> {
        self.clusters
            .values()
            .filter_map(|c| c.credentials_secret.clone())
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("tenant {tenant} refers to cluster {cluster:?}, which is not configured")]
    UnknownCluster { tenant: String, cluster: String },
    #[error("tenant {0} is routed twice")]
    DuplicateTenant(String),
    #[error("cluster {cluster:?}: {problem}")]
    Cluster { cluster: String, problem: String },
    #[error("elasticsearch.tenants: {0}")]
    BadTenant(String),
}

fn cluster_error(cluster: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError::Cluster {
        cluster: cluster.to_owned(),
        problem: problem.into(),
    }
}

/// A secret from the environment. Its `Debug` never shows the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// How cloudpf authenticates to a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EsAuth {
    None,
    Basic {
        username: String,
        password: Secret,
    },
    /// The base64 encoding of `id:api_key`, sent as `Authorization: ApiKey …`.
    ApiKey(Secret),
}

/// A validated cluster: where it is, how to log in, how its index names start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EsCluster {
    pub name: String,
    pub url: String,
    pub auth: EsAuth,
    pub index_prefix: String,
    pub snapshot_bucket: Option<String>,
    /// PEM of the extra certificate authority the cluster's certificate is checked
    /// against.
    pub ca_certificate: Option<String>,
}

/// Tenant → cluster, validated. Cheap to clone.
///
/// A cluster whose stored credentials could not be read (or are not shaped as
/// credentials) is not an error of the whole configuration: it is *unavailable*, with
/// the reason, so its tenants wait (retried records, `503`s) while every other cluster
/// serves. One shop's broken secret never stops the others.
#[derive(Debug, Clone)]
pub struct EsRoutes {
    clusters: BTreeMap<String, Arc<EsCluster>>,
    unavailable: BTreeMap<String, String>,
    tenants: BTreeMap<TenantId, String>,
}

impl EsRoutes {
    /// Validates `config` and routes each tenant (of `config.tenants` and of `tenants`)
    /// to its named cluster, reading secrets from the process environment.
    pub fn new(
        config: &EsConfig,
        tenants: impl IntoIterator<Item = (TenantId, String)>,
    ) -> Result<Self, ConfigError> {
        Self::with_env(config, tenants, |name| std::env::var(name).ok())
    }

    /// [`EsRoutes::new`] with secrets looked up by `env` (tests pass a map).
    pub fn with_env(
        config: &EsConfig,
        tenants: impl IntoIterator<Item = (TenantId, String)>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        Self::with_sources(config, tenants, env, &BTreeMap::new())
    }

    /// [`EsRoutes::with_env`] with the stored secrets the clusters name already read:
    /// secret name → its text.
    pub fn with_sources(
        config: &EsConfig,
        tenants: impl IntoIterator<Item = (TenantId, String)>,
        env: impl Fn(&str) -> Option<String>,
        stored: &BTreeMap<String, String>,
    ) -> Result<Self, ConfigError> {
        let mut clusters = BTreeMap::new();
        let mut unavailable = BTreeMap::new();
        for (name, raw) in &config.clusters {
            match validate_cluster(name, raw, &env, stored)? {
                Ok(cluster) => {
                    clusters.insert(name.clone(), Arc::new(cluster));
                }
                Err(secret) => {
                    unavailable.insert(name.clone(), secret);
                }
            }
        }
        let mut listed = Vec::new();
        for (raw, route) in &config.tenants {
            let tenant = TenantId::parse(raw)
                .map_err(|e| ConfigError::BadTenant(format!("{raw:?}: {e}")))?;
            listed.push((tenant, route.cluster.clone()));
        }
        let mut routed = BTreeMap::new();
        for (tenant, cluster) in listed.into_iter().chain(tenants) {
            if !clusters.contains_key(&cluster) && !unavailable.contains_key(&cluster) {
                return Err(ConfigError::UnknownCluster {
                    tenant: tenant.to_string(),
                    cluster,
                });
            }
            if routed.insert(tenant.clone(), cluster).is_some() {
                return Err(ConfigError::DuplicateTenant(tenant.to_string()));
            }
        }
        Ok(Self {
            clusters,
            unavailable,
            tenants: routed,
        })
    }

    /// The cluster serving `tenant`, if it has one and it is available.
    pub fn cluster_for(&self, tenant: &TenantId) -> Option<&Arc<EsCluster>> {
        self.tenants
            .get(tenant)
            .and_then(|name| self.clusters.get(name))
    }

    /// The name of the cluster `tenant` is routed to, available or not.
    pub fn cluster_name_for(&self, tenant: &TenantId) -> Option<&str> {
        self.tenants.get(tenant).map(String::as_str)
    }

    /// The available clusters.
    pub fn clusters(&self) -> impl Iterator<Item = &Arc<EsCluster>> {
        self.clusters.values()
    }

    /// The clusters whose stored credentials are not usable, with the reason (which
    /// names the secret, never its text).
    pub fn unavailable(&self) -> impl Iterator<Item = (&str, &str)> {
        self.unavailable
            .iter()
            .map(|(name, reason)| (name.as_str(), reason.as_str()))
    }

    pub fn tenants(&self) -> impl Iterator<Item = &TenantId> {
        self.tenants.keys()
    }
}

/// A valid cluster, or (inner `Err`) a valid configuration whose stored credentials are
/// not usable, with the reason; the outer `Err` is a configuration error.
fn validate_cluster(
    name: &str,
    raw: &RawCluster,
    env: &impl Fn(&str) -> Option<String>,
    stored: &BTreeMap<String, String>,
) -> Result<Result<EsCluster, String>, ConfigError> {
    let url = validate_url(name, &raw.url)?;
    let secret = |var: &str, what: &str| match env(var) {
        Some(v) if !v.is_empty() => Ok(Secret(v)),
        _ => Err(cluster_error(
            name,
            format!("environment variable {var} (the {what}) is not set"),
        )),
    };
    // A stored secret is judged last: the rest of the table must be valid either way.
    let mut from_store = None;
    let auth = match (&raw.username, &raw.password_env, &raw.api_key_env) {
        (None, None, None) => match &raw.credentials_secret {
            None => EsAuth::None,
            Some(id) => {
                from_store = Some(stored_auth(name, id, stored));
                EsAuth::None
            }
        },
        _ if raw.credentials_secret.is_some() => {
            return Err(cluster_error(
                name,
                "use either credentials_secret or the *_env settings, not both",
            ));
        }
        // A user name with `:` or control characters cannot be sent as basic auth.
        (Some(user), Some(var), None)
            if !user.is_empty() && !user.chars().any(|c| c.is_control() || c == ':') =>
        {
            EsAuth::Basic {
                username: user.clone(),
                password: secret(var, "password")?,
            }
        }
        (None, None, Some(var)) => {
            // Secrets read from files often end in a line break; a header cannot carry one.
            let key = secret(var, "API key")?.0.trim().to_owned();
            check_api_key(
                name,
                &Secret(key.clone()),
                &format!("environment variable {var}"),
            )?;
            EsAuth::ApiKey(Secret(key))
        }
        (_, _, Some(_)) => {
            return Err(cluster_error(
                name,
                "use either api_key_env or username and password_env, not both",
            ));
        }
        _ => {
            return Err(cluster_error(
                name,
                "basic authentication needs a non-empty username and password_env",
            ));
        }
    };
    let index_prefix = raw
        .index_prefix
        .clone()
        .unwrap_or_else(|| DEFAULT_INDEX_PREFIX.to_owned());
    validate_prefix(&index_prefix).map_err(|p| cluster_error(name, p))?;
    if let Some(bucket) = &raw.snapshot_bucket {
        // S3's rules for bucket names (as far as a name can be checked offline).
        let ok = (3..=63).contains(&bucket.len())
            && bucket
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
            && bucket.starts_with(|c: char| c.is_ascii_alphanumeric())
            && bucket.ends_with(|c: char| c.is_ascii_alphanumeric());
        if !ok {
            return Err(cluster_error(
                name,
                format!("snapshot_bucket {bucket:?} is not an S3 bucket name"),
            ));
        }
    }
    if let Some(pem) = &raw.ca_certificate {
        if !url.starts_with("https://") {
            return Err(cluster_error(name, "ca_certificate needs an https:// url"));
        }
        // The certificates themselves are parsed when the connection is built.
        elasticsearch::cert::Certificate::from_pem(pem.as_bytes())
            .map_err(|_| cluster_error(name, "ca_certificate holds no PEM certificate"))?;
    }
    let auth = match from_store {
        None => auth,
        Some(Ok(auth)) => auth,
        Some(Err(ConfigError::Cluster { problem, .. })) => return Ok(Err(problem)),
        Some(Err(other)) => return Err(other),
    };
    Ok(Ok(EsCluster {
        name: name.to_owned(),
        url,
        auth,
        index_prefix,
        snapshot_bucket: raw.snapshot_bucket.clone(),
        ca_certificate: raw.ca_certificate.clone(),
    }))
}

fn check_api_key(name: &str, key: &Secret, source: &str) -> Result<(), ConfigError> {
    let base64 = |c: char| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=');
    if key.0.is_empty() || !key.0.chars().all(base64) {
        return Err(cluster_error(
            name,
            format!("{source} must hold a base64 API key (id:key)"),
        ));
    }
    Ok(())
}

/// The credentials of a stored secret's JSON text. Other keys (a host, an engine) are
/// ignored, as such secrets often carry them; errors name the secret, never its text.
fn stored_auth(
    name: &str,
    id: &str,
    stored: &BTreeMap<String, String>,
) -> Result<EsAuth, ConfigError> {
    #[derive(Deserialize)]
    struct Stored {
        username: Option<String>,
        password: Option<String>,
        api_key: Option<String>,
    }
    let text = stored.get(id).ok_or_else(|| {
        cluster_error(
            name,
            format!(
                "credentials_secret {id:?} was not read (it needs access to AWS Secrets Manager)"
            ),
        )
    })?;
    let shape = || {
        cluster_error(
            name,
            format!(
                "credentials_secret {id:?} must hold JSON with \"username\" and \"password\", or \"api_key\""
            ),
        )
    };
    let parsed: Stored = serde_json::from_str(text).map_err(|_| shape())?;
    match (parsed.username, parsed.password, parsed.api_key) {
        (Some(user), Some(password), None)
            if !user.is_empty()
                && !password.is_empty()
                && !user.chars().any(|c| c.is_control() || c == ':') =>
        {
            Ok(EsAuth::Basic {
                username: user,
                password: Secret(password),
            })
        }
        (None, None, Some(key)) => {
            let key = Secret(key.trim().to_owned());
            check_api_key(name, &key, &format!("credentials_secret {id:?}"))?;
            Ok(EsAuth::ApiKey(key))
        }
        _ => Err(shape()),
    }
}

fn validate_url(name: &str, url: &str) -> Result<String, ConfigError> {
    let parsed = elasticsearch::http::Url::parse(url)
        .map_err(|e| cluster_error(name, format!("url is not a valid URL: {e}")))?;
    // The URL shows up in logs and errors, so credentials never go into it.
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(cluster_error(
            name,
            "url must not contain credentials; use username with password_env, or api_key_env",
        ));
    }
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(cluster_error(
            name,
            "url must start with http:// or https://",
        ));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(cluster_error(name, "url must not have a query or fragment"));
    }
    Ok(parsed.to_string())
}

fn validate_prefix(prefix: &str) -> Result<(), String> {
    let ok = !prefix.is_empty()
        && prefix.len() <= MAX_PREFIX_LEN
        && prefix.starts_with(|c: char| c.is_ascii_lowercase())
        && !prefix.ends_with('-')
        && prefix
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "index_prefix {prefix:?} must be 1 to {MAX_PREFIX_LEN} lowercase letters, digits \
             and '-', starting with a letter and not ending with '-'"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(t: &str) -> TenantId {
        TenantId::parse(t).unwrap()
    }

    fn config(toml_text: &str) -> EsConfig {
        #[derive(Deserialize)]
        struct File {
            elasticsearch: EsConfig,
        }
        let file: File = toml::from_str(toml_text).unwrap();
        file.elasticsearch
    }

    const TWO_CLUSTERS: &str = r#"
        [elasticsearch.clusters.shared]
        url = "https://search.internal:9200"
        username = "cloudpf"
        password_env = "ES_SHARED_PASSWORD"

        [elasticsearch.clusters.acme-dedicated]
        url = "http://10.0.0.7:9200"
        api_key_env = "ES_ACME_API_KEY"
        index_prefix = "cpf"
    "#;

    fn env(name: &str) -> Option<String> {
        match name {
            "ES_SHARED_PASSWORD" => Some("hunter2-shared".into()),
            "ES_ACME_API_KEY" => Some("YWNtZTpzZWNyZXQta2V5".into()),
            _ => None,
        }
    }

    #[test]
    fn tenants_are_routed_to_dedicated_and_shared_clusters() {
        let routes = EsRoutes::with_env(
            &config(TWO_CLUSTERS),
            [
                (tenant("acme"), "acme-dedicated".to_owned()),
                (tenant("globex"), "shared".to_owned()),
                (tenant("initech"), "shared".to_owned()),
            ],
            env,
        )
        .unwrap();
        let acme = routes.cluster_for(&tenant("acme")).unwrap();
        assert_eq!(acme.url, "http://10.0.0.7:9200/");
        assert_eq!(acme.index_prefix, "cpf");
        assert!(matches!(&acme.auth, EsAuth::ApiKey(k) if k.expose() == "YWNtZTpzZWNyZXQta2V5"));
        let globex = routes.cluster_for(&tenant("globex")).unwrap();
        assert_eq!(globex.name, "shared");
        assert_eq!(globex.index_prefix, "cloudpf");
        assert!(Arc::ptr_eq(
            globex,
            routes.cluster_for(&tenant("initech")).unwrap()
        ));
        assert!(routes.cluster_for(&tenant("hooli")).is_none());
    }

    #[test]
    fn an_api_key_read_with_a_line_break_is_trimmed_and_a_non_base64_one_refused() {
        let with_newline = |name: &str| match name {
            "ES_ACME_API_KEY" => Some("YWNtZTpzZWNyZXQta2V5\n".into()),
            other => env(other),
        };
        let routes = EsRoutes::with_env(&config(TWO_CLUSTERS), [], with_newline).unwrap();
        let acme = routes
            .clusters()
            .find(|c| c.name == "acme-dedicated")
            .unwrap();
        assert!(matches!(&acme.auth, EsAuth::ApiKey(k) if k.expose() == "YWNtZTpzZWNyZXQta2V5"));
        let broken = |name: &str| match name {
            "ES_ACME_API_KEY" => Some("id:key with spaces".into()),
            other => env(other),
        };
        let err = EsRoutes::with_env(&config(TWO_CLUSTERS), [], broken).unwrap_err();
        assert!(
            err.to_string().contains("must hold a base64 API key"),
            "{err}"
        );
        assert!(!err.to_string().contains("with spaces"), "{err}");
    }

    #[test]
    fn a_tenant_naming_an_unknown_cluster_is_an_error_that_names_it() {
        let err = EsRoutes::with_env(
            &config(TWO_CLUSTERS),
            [(tenant("acme"), "eu-west".to_owned())],
            env,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "tenant acme refers to cluster \"eu-west\", which is not configured"
        );
    }

    #[test]
    fn secrets_never_appear_in_debug_output_or_errors() {
        let routes = EsRoutes::with_env(
            &config(TWO_CLUSTERS),
            [(tenant("acme"), "acme-dedicated".to_owned())],
            env,
        )
        .unwrap();
        let shown = format!("{routes:?}");
        assert!(shown.contains("<redacted>"), "{shown}");
        for secret in ["hunter2-shared", "YWNtZTpzZWNyZXQta2V5"] {
            assert!(!shown.contains(secret), "{shown}");
        }

        let missing = EsRoutes::with_env(&config(TWO_CLUSTERS), [], |_| None).unwrap_err();
        assert_eq!(
            missing.to_string(),
            "cluster \"acme-dedicated\": environment variable ES_ACME_API_KEY (the API key) is not set"
        );
    }

    #[test]
    fn a_stored_secret_gives_basic_or_api_key_credentials_and_its_text_never_shows() {
        let raw = r#"
            [elasticsearch.clusters.alpine]
            url = "http://alpine.es.cloudpf-prod.internal:9200"
            credentials_secret = "cloudpf/prod/es/alpine"

            [elasticsearch.clusters.shared]
            url = "http://shared.es.cloudpf-prod.internal:9200"
            credentials_secret = "cloudpf/prod/es/shared"
        "#;
        let config = config(raw);
        assert_eq!(
            config.stored_secrets().into_iter().collect::<Vec<_>>(),
            ["cloudpf/prod/es/alpine", "cloudpf/prod/es/shared"]
        );
        let stored: BTreeMap<String, String> = [
            (
                "cloudpf/prod/es/alpine",
                r#"{"username": "elastic", "password": "gen3rated-pw", "engine": "es"}"#,
            ),
            (
                "cloudpf/prod/es/shared",
                r#"{"api_key": "c2hhcmVkOmtleQ==\n"}"#,
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let routes = EsRoutes::with_sources(&config, [], |_| None, &stored).unwrap();
        let auth: Vec<&EsAuth> = routes.clusters().map(|c| &c.auth).collect();
        assert_eq!(
            auth,
            [
                &EsAuth::Basic {
                    username: "elastic".into(),
                    password: Secret("gen3rated-pw".into())
                },
                &EsAuth::ApiKey(Secret("c2hhcmVkOmtleQ==".into())),
            ]
        );
        assert!(!format!("{routes:?}").contains("gen3rated-pw"));

        // Not read (no AWS access) or badly shaped: that cluster alone is unavailable,
        // with a reason that names the secret and never repeats its text; its tenants
        // stay routed to it (they wait, they are not dropped), the other cluster serves.
        let shops = || {
            [
                (tenant("acme"), "alpine".to_owned()),
                (tenant("globex"), "shared".to_owned()),
            ]
        };
        let mut partial = stored.clone();
        partial.remove("cloudpf/prod/es/alpine");
        let routes = EsRoutes::with_sources(&config, shops(), |_| None, &partial).unwrap();
        let down: Vec<(&str, &str)> = routes.unavailable().collect();
        assert_eq!(down.len(), 1);
        assert_eq!(down[0].0, "alpine");
        assert!(
            down[0]
                .1
                .contains("\"cloudpf/prod/es/alpine\" was not read"),
            "{down:?}"
        );
        assert!(routes.cluster_for(&tenant("acme")).is_none());
        assert_eq!(routes.cluster_name_for(&tenant("acme")), Some("alpine"));
        assert_eq!(
            routes.cluster_for(&tenant("globex")).unwrap().name,
            "shared"
        );
        for text in [r#"{"password": "gen3rated-pw"}"#, "gen3rated-pw"] {
            let mut bad = stored.clone();
            bad.insert("cloudpf/prod/es/alpine".into(), text.into());
            let routes = EsRoutes::with_sources(&config, shops(), |_| None, &bad).unwrap();
            let down: Vec<(&str, &str)> = routes.unavailable().collect();
            assert_eq!(down.len(), 1, "{text}");
            assert!(down[0].1.contains("must hold JSON with"), "{down:?}");
            assert!(!format!("{routes:?}").contains("gen3rated-pw"));
        }
        let mixed = config_with(
            "url = \"http://x:9200\"\ncredentials_secret = \"s\"\napi_key_env = \"ES_ACME_API_KEY\"",
        );
        let err = EsRoutes::with_sources(&mixed, [], env, &stored).unwrap_err();
        assert!(err.to_string().contains("not both"), "{err}");
    }

    fn config_with(body: &str) -> EsConfig {
        config(&format!("[elasticsearch.clusters.main]\n{body}"))
    }

    #[test]
    fn a_url_with_credentials_is_refused_without_repeating_them() {
        let raw = r#"
            [elasticsearch.clusters.main]
            url = "https://elastic:s3cr3t@search.internal:9200"
        "#;
        let err = EsRoutes::with_env(&config(raw), [], env).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("must not contain credentials"), "{text}");
        assert!(!text.contains("s3cr3t"), "{text}");
    }

    #[test]
    fn unknown_keys_bad_schemes_mixed_auth_bad_prefixes_and_bad_authorities_are_refused() {
        let unknown = serde_json::from_value::<EsConfig>(serde_json::json!({
            "clusters": {"main": {"url": "http://x:9200", "pasword_env": "P"}}
        }));
        assert!(unknown.unwrap_err().to_string().contains("unknown field"));

        let cases = [
            (r#"url = "ftp://x:21""#, "must start with http"),
            (
                "url = \"http://x:9200\"\napi_key_env = \"ES_ACME_API_KEY\"\nusername = \"u\"\npassword_env = \"ES_SHARED_PASSWORD\"",
                "either api_key_env",
            ),
            (
                "url = \"http://x:9200\"\nusername = \"u\"",
                "needs a non-empty username and password_env",
            ),
            (
                "url = \"http://x:9200\"\nindex_prefix = \"Cloud_PF\"",
                "index_prefix \"Cloud_PF\"",
            ),
            // A trusted authority over plain HTTP would protect nothing.
            (
                "url = \"http://x:9200\"\nca_certificate = \"\"\"\n-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n\"\"\"",
                "ca_certificate needs an https:// url",
            ),
            (
                "url = \"https://x:9200\"\nca_certificate = \"/etc/ssl/ca.pem\"",
                "ca_certificate holds no PEM certificate",
            ),
        ];
        for (body, expected) in cases {
            let raw = format!("[elasticsearch.clusters.main]\n{body}");
            let err = EsRoutes::with_env(&config(&raw), [], env).unwrap_err();
            assert!(err.to_string().contains(expected), "{body}: {err}");
        }
    }

    #[test]
    fn tenants_can_be_routed_in_the_elasticsearch_table_itself() {
        let raw = format!(
            "{TWO_CLUSTERS}\n[elasticsearch.tenants.acme]\ncluster = \"acme-dedicated\"\n\
             [elasticsearch.tenants.globex]\ncluster = \"shared\"\n"
        );
        let routes =
            EsRoutes::with_env(&config(&raw), [(tenant("initech"), "shared".into())], env).unwrap();
        let names: Vec<&str> = routes.tenants().map(TenantId::as_str).collect();
        assert_eq!(names, ["acme", "globex", "initech"]);
        assert_eq!(
            routes.cluster_for(&tenant("acme")).unwrap().name,
            "acme-dedicated"
        );

        let bad =
            format!("{TWO_CLUSTERS}\n[elasticsearch.tenants.Acme_Corp]\ncluster = \"shared\"\n");
        let err = EsRoutes::with_env(&config(&bad), [], env).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("elasticsearch.tenants: \"Acme_Corp\""),
            "{err}"
        );
    }

    #[test]
    fn a_tenant_routed_twice_is_an_error() {
        let err = EsRoutes::with_env(
            &config(TWO_CLUSTERS),
            [
                (tenant("acme"), "shared".to_owned()),
                (tenant("acme"), "acme-dedicated".to_owned()),
            ],
            env,
        )
        .unwrap_err();
        assert_eq!(err, ConfigError::DuplicateTenant("acme".into()));
    }
}
