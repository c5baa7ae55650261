//! Stored secrets (AWS Secrets Manager): the search clusters' credentials, which the
//! tenants file names by `credentials_secret` and the search cluster stacks generate.
//! Read once when a process builds its search engine (and again when the tenants file
//! changes); the values go straight into the routes and are never logged. A secret that
//! cannot be read makes its cluster unavailable, not the whole process (see
//! [`SecretCache::resolve`]).

use std::collections::BTreeMap;

#[derive(Debug, thiserror::Error)]
#[error("cannot read secret {name:?}: {reason}")]
pub struct SecretsError {
    pub name: String,
    /// The service's error (never the secret's value, which was not read).
    pub reason: String,
}

/// The text of each named secret that could be read, and why the others could not.
pub async fn read_secrets(
    shared: &aws_config::SdkConfig,
    names: impl IntoIterator<Item = String>,
) -> (BTreeMap<String, String>, Vec<SecretsError>) {
    let mut out = BTreeMap::new();
    let mut failed = Vec::new();
    let mut client = None;
    for name in names {
        let client = client.get_or_insert_with(|| aws_sdk_secretsmanager::Client::new(shared));
        let fail = |reason: String| SecretsError {
            name: name.clone(),
            reason,
        };
        match client.get_secret_value().secret_id(&name).send().await {
            Ok(value) => match value.secret_string() {
                Some(text) => {
                    out.insert(name, text.to_owned());
                }
                None => failed.push(fail(
                    "it holds binary data, not the JSON text expected".to_owned(),
                )),
            },
            Err(e) => failed.push(fail(
                aws_sdk_secretsmanager::error::DisplayErrorContext(e).to_string(),
            )),
        }
    }
    (out, failed)
}

/// A routing with the stored secrets that could be read, and the ones that could not.
#[derive(Debug)]
pub struct Resolved {
    pub routing: cloudpf_engines::Routing,
    /// Their clusters are unavailable until a later resolve reads them.
    pub unread: Vec<SecretsError>,
}

/// Secrets already read by a long-lived process, by name: a reload of the tenants file
/// reads only the secrets it did not name before, instead of every cluster's again
/// (which, with many clusters, would be slow and invite throttling). A secret's new
/// value is read by the next cold start.
#[derive(Default)]
pub struct SecretCache(std::sync::Mutex<BTreeMap<String, String>>);

impl std::fmt::Debug for SecretCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretCache(<redacted>)")
    }
}

impl SecretCache {
    /// `routing` with its stored secrets, read from Secrets Manager only when not cached.
    /// A secret that cannot be read is logged and left out, so its cluster alone is
    /// unavailable; it is not cached, so the next resolve tries it again.
    pub async fn resolve(
        &self,
        routing: cloudpf_engines::Routing,
        shared: &aws_config::SdkConfig,
    ) -> Resolved {
        let names = routing.stored_secrets();
        let missing: Vec<String> = {
            let cached = self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            names
                .iter()
                .filter(|n| !cached.contains_key(*n))
                .cloned()
                .collect()
        };
        let mut unread = Vec::new();
        if !missing.is_empty() {
            let (read, failed) = read_secrets(shared, missing).await;
            for error in &failed {
                tracing::error!(%error, "search cluster secret not read; its cluster waits");
            }
            unread = failed;
            self.0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .extend(read);
        }
        let cached = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let stored = names
            .into_iter()
            .filter_map(|n| cached.get(&n).map(|v| (n, v.clone())))
            .collect();
        Resolved {
            routing: routing.with_stored(stored),
            unread,
        }
    }
}

/// `routing` with the stored secrets its clusters name (`credentials_secret`) read, for
/// the CLI's one-shot reads, which stop at a secret they cannot read (the operator is
/// there to see it): AWS configuration comes from the environment, and is loaded only
/// when a cluster names a stored secret.
pub async fn with_secrets_from_env(
    routing: cloudpf_engines::Routing,
) -> Result<cloudpf_engines::Routing, SecretsError> {
    if routing.stored_secrets().is_empty() {
        return Ok(routing);
    }
    let resolved = SecretCache::default()
        .resolve(routing, &aws_config::load_from_env().await)
        .await;
    match resolved.unread.into_iter().next() {
        Some(error) => Err(error),
        None => Ok(resolved.routing),
    }
}
