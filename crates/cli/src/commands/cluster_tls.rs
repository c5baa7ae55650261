//! The TLS identity of a search cluster that `cloudpf tenants add --provision` deploys:
//! a certificate authority made for that one cluster, and the node's certificate signed
//! by it for the cluster's private DNS name.
//!
//! The node's certificate, its key and the authority's certificate go into one secret,
//! `cloudpf/<environment>/es-tls/<cluster>`, which only the cluster's task may read (the
//! functions' policy covers `cloudpf/<environment>/es/*`, not this path). The authority's
//! certificate, which is public, also goes into the tenants file as the cluster's
//! `ca_certificate`, so the functions trust that node and nothing else signed by it.
//! The authority's key is dropped as soon as it signed: nothing else is ever signed with
//! it, and a leaked secret cannot mint certificates for other names.

use anyhow::Context;
use aws_sdk_secretsmanager::error::DisplayErrorContext;
use chrono::Datelike;
use serde::{Deserialize, Serialize};

/// How long the generated certificates are valid. Renewing means provisioning the
/// cluster's identity again (see the README), so this is long.
const VALID_YEARS: i32 = 10;

/// What the TLS secret holds, as JSON.
#[derive(Clone, Serialize, Deserialize)]
pub struct ClusterTls {
    pub ca_certificate: String,
    pub certificate: String,
    pub private_key: String,
}

impl std::fmt::Debug for ClusterTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterTls")
            .field("ca_certificate", &self.ca_certificate)
            .field("certificate", &self.certificate)
            .finish_non_exhaustive()
    }
}

impl ClusterTls {
    /// A new authority for `cluster` and a node certificate for `host` and `localhost`
    /// (the container's own health check), valid from `today` for [`VALID_YEARS`].
    pub fn generate(cluster: &str, host: &str, today: chrono::NaiveDate) -> anyhow::Result<Self> {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
            KeyPair, KeyUsagePurpose, date_time_ymd,
        };
        let month = u8::try_from(today.month()).context("month")?;
        let day = u8::try_from(today.day()).context("day")?;
        let not_before = date_time_ymd(today.year(), month, day);
        // 28 February exists every year, so the end date always does.
        let not_after = date_time_ymd(today.year() + VALID_YEARS, month, day.min(28));

        let mut ca = CertificateParams::new(Vec::<String>::new())?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca.distinguished_name.push(
            DnType::CommonName,
            format!("cloudpf search cluster {cluster} CA"),
        );
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        ca.not_before = not_before;
        ca.not_after = not_after;
        let ca_key = KeyPair::generate()?;
        let ca_certificate = ca.self_signed(&ca_key)?.pem();
        let issuer = Issuer::new(ca, ca_key);

        let mut node = CertificateParams::new(vec![host.to_owned(), "localhost".to_owned()])?;
        node.distinguished_name.push(DnType::CommonName, host);
        node.use_authority_key_identifier_extension = true;
        node.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        node.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        node.not_before = not_before;
        node.not_after = not_after;
        let node_key = KeyPair::generate()?;
        let certificate = node.signed_by(&node_key, &issuer)?.pem();
        Ok(Self {
            ca_certificate,
            certificate,
            private_key: node_key.serialize_pem(),
        })
    }
}

/// The name of `cluster`'s TLS secret in `environment`.
pub fn secret_name(environment: &str, cluster: &str) -> String {
    format!("cloudpf/{environment}/es-tls/{cluster}")
}

/// The cluster's TLS secret: created with a new identity, or, when an interrupted run
/// already created it, the one it holds (the node may already use it). Its ARN and
/// contents.
pub async fn ensure_secret(
    client: &aws_sdk_secretsmanager::Client,
    name: &str,
    kms_key: &str,
    fresh: impl FnOnce() -> anyhow::Result<ClusterTls>,
) -> anyhow::Result<(String, ClusterTls)> {
    match client.get_secret_value().secret_id(name).send().await {
        Ok(found) => {
            let text = found
                .secret_string()
                .with_context(|| format!("secret {name} holds no text"))?;
            let tls: ClusterTls = serde_json::from_str(text)
                .with_context(|| format!("secret {name} does not hold a cluster's TLS identity"))?;
            let arn = found.arn().context("a secret without an ARN")?.to_owned();
            return Ok((arn, tls));
        }
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) => {}
        Err(e) => {
            anyhow::bail!("cannot read secret {name}: {}", DisplayErrorContext(e));
        }
    }
    let tls = fresh()?;
    let created = client
        .create_secret()
        .name(name)
        .description("TLS certificate and key of a cloudpf search cluster node, with its authority")
        .kms_key_id(kms_key)
        .secret_string(serde_json::to_string(&tls)?)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("cannot create secret {name}: {}", DisplayErrorContext(e)))?;
    let arn = created.arn().context("a secret without an ARN")?.to_owned();
    Ok((arn, tls))
}

/// Deletes the cluster's TLS secret at once (no recovery window: the identity is only
/// ever useful to the deleted node, and a window would block provisioning the name
/// again). Done when it is already gone.
pub async fn delete_secret(
    client: &aws_sdk_secretsmanager::Client,
    name: &str,
) -> anyhow::Result<()> {
    match client
        .delete_secret()
        .secret_id(name)
        .force_delete_without_recovery(true)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            Ok(())
        }
        Err(e) => Err(anyhow::anyhow!(
            "cannot delete secret {name}: {}",
            DisplayErrorContext(e)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_identity_names_the_host_and_its_debug_hides_the_key() {
        let today = chrono::NaiveDate::from_ymd_opt(2024, 2, 29).unwrap();
        let tls = ClusterTls::generate("alpine", "alpine.es.cloudpf-prod.internal", today).unwrap();
        assert!(
            tls.ca_certificate
                .starts_with("-----BEGIN CERTIFICATE-----")
        );
        assert!(tls.certificate.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(tls.private_key.starts_with("-----BEGIN PRIVATE KEY-----"));
        assert_ne!(tls.ca_certificate, tls.certificate);
        let shown = format!("{tls:?}");
        assert!(!shown.contains("PRIVATE KEY"), "{shown}");
    }
}
