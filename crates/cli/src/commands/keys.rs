//! `cloudpf keys`: create, list and revoke a shop's API keys in the tenants file (a local
//! path or the deployment's S3 object), each edit validated and written over the version
//! it read, as `cloudpf tenants` does. A key is shown once, when created; the file keeps
//! its hash. A running `cloudpf serve` uses the change within a second, the Lambdas within
//! `CLOUDPF_TENANTS_REFRESH_SECONDS`; an expired key is refused from its `expires` on.

use std::io::Write;

use anyhow::{Context, bail};
use cloudpf_aws::TenantsFile;
use cloudpf_model::{TenantId, Timestamp};
use cloudpf_search_api::tenants::{KEY_ID_LEN, RawKey, Scope, hash_key};

use super::tenants::{TenantsFileArgs, read, write};

#[derive(Debug, clap::Args)]
pub struct KeysArgs {
    #[command(flatten)]
    file: TenantsFileArgs,
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Make a new key for a shop (printed once, as JSON).
    Create(CreateArgs),
    /// Print a shop's keys: id, scope, label, created, expires.
    List(TenantArg),
    /// Remove a key at once, by its id (the start of its hash, as `list` prints it).
    Revoke(RevokeArgs),
}

#[derive(Debug, clap::Args)]
struct TenantArg {
    /// The shop's tenant id.
    #[arg(long)]
    tenant: String,
}

#[derive(Debug, clap::Args)]
struct CreateArgs {
    #[command(flatten)]
    tenant: TenantArg,
    /// `search` (safe in a web page: product search and autocomplete) or `admin`.
    #[arg(long, value_parser = parse_scope)]
    scope: Scope,
    /// What the key is for, e.g. `storefront` or `dashboard`.
    #[arg(long)]
    label: Option<String>,
    /// When the key stops working: RFC 3339 (`2027-03-01T00:00:00Z`) or a date
    /// (`2027-03-01`, midnight UTC).
    #[arg(long, value_parser = parse_expiry)]
    expires: Option<Timestamp>,
}

#[derive(Debug, clap::Args)]
struct RevokeArgs {
    #[command(flatten)]
    tenant: TenantArg,
    /// The key's id (at least 8 hex digits of it).
    key_id: String,
}

fn parse_scope(text: &str) -> Result<Scope, String> {
    match text {
        "search" => Ok(Scope::Search),
        "admin" => Ok(Scope::Admin),
        _ => Err("`search` or `admin`".to_owned()),
    }
}

fn parse_expiry(text: &str) -> Result<Timestamp, String> {
    if text.len() == 10 {
        return Timestamp::parse(&format!("{text}T00:00:00Z"));
    }
    Timestamp::parse(text)
}

pub async fn run(args: KeysArgs) -> anyhow::Result<()> {
    let shared = aws_config::load_from_env().await;
    let file = args.file.open(&shared);
    match args.action {
        Action::Create(create) => create_key(&file, create).await,
        Action::List(tenant) => list(&file, &tenant).await,
        Action::Revoke(revoke) => revoke_key(&file, revoke).await,
    }
}

fn tenant_id(arg: &TenantArg) -> anyhow::Result<TenantId> {
    Ok(TenantId::parse(&arg.tenant)?)
}

async fn create_key(file: &TenantsFile, args: CreateArgs) -> anyhow::Result<()> {
    let id = tenant_id(&args.tenant)?;
    let now = Timestamp::now();
    if args.expires.is_some_and(|e| e <= now) {
        bail!("--expires is in the past");
    }
    let (mut raw, version) = read(file).await?;
    let Some(tenant) = raw.tenants.iter_mut().find(|t| t.id == id.as_str()) else {
        bail!("tenant {id} is not in {}", file.location());
    };
    let prefix = match args.scope {
        Scope::Search => "cpfs_",
        Scope::Admin => "cpfa_",
    };
    let key = super::random_key(prefix)?;
    let mut stored = RawKey::new(args.scope, hash_key(&key));
    stored.label = args.label.clone();
    stored.created = Some(now.to_rfc3339());
    stored.expires = args.expires.map(|e| e.to_rfc3339());
    let key_id = stored.id().to_owned();
    tenant.keys.push(stored);
    write(file, &raw, version.as_ref()).await?;
    eprintln!(
        "cloudpf keys: {} key {key_id} added to {id} in {}; it is shown only now",
        scope_name(args.scope),
        file.location()
    );
    writeln!(
        std::io::stdout().lock(),
        "{}",
        serde_json::json!({
            "tenant": id.as_str(),
            "key_id": key_id,
            "scope": scope_name(args.scope),
            "key": key,
            "label": args.label,
            "expires": args.expires.map(|e| e.to_rfc3339()),
        })
    )?;
    Ok(())
}

fn scope_name(scope: Scope) -> &'static str {
    match scope {
        Scope::Search => "search",
        Scope::Admin => "admin",
    }
}

async fn list(file: &TenantsFile, args: &TenantArg) -> anyhow::Result<()> {
    let id = tenant_id(args)?;
    let (raw, _) = read(file).await?;
    let Some(tenant) = raw.tenants.iter().find(|t| t.id == id.as_str()) else {
        bail!("tenant {id} is not in {}", file.location());
    };
    let now = Timestamp::now();
    let mut out = std::io::stdout().lock();
    for key in &tenant.keys {
        let expired = key
            .expires
            .as_deref()
            .and_then(|e| Timestamp::parse(e).ok())
            .is_some_and(|e| e <= now);
        writeln!(
            out,
            "{}\t{}\tlabel={}\tcreated={}\texpires={}{}",
            key.id(),
            scope_name(key.scope),
            key.label.as_deref().unwrap_or("-"),
            key.created.as_deref().unwrap_or("-"),
            key.expires.as_deref().unwrap_or("never"),
            if expired { "\t(expired)" } else { "" }
        )?;
    }
    Ok(())
}

async fn revoke_key(file: &TenantsFile, args: RevokeArgs) -> anyhow::Result<()> {
    let id = tenant_id(&args.tenant)?;
    let wanted = args.key_id.to_ascii_lowercase();
    if wanted.len() < 8 || wanted.len() > 64 || !wanted.chars().all(|c| c.is_ascii_hexdigit()) {
        bail!("a key id is 8 to 64 hex digits (`cloudpf keys list` prints the first {KEY_ID_LEN})");
    }
    let (mut raw, version) = read(file).await?;
    let Some(tenant) = raw.tenants.iter_mut().find(|t| t.id == id.as_str()) else {
        bail!("tenant {id} is not in {}", file.location());
    };
    let matching: Vec<usize> = tenant
        .keys
        .iter()
        .enumerate()
        .filter(|(_, k)| k.sha256.to_ascii_lowercase().starts_with(&wanted))
        .map(|(i, _)| i)
        .collect();
    let at = match matching.as_slice() {
        [at] => *at,
        [] => bail!("tenant {id} has no key {wanted}"),
        _ => bail!("{wanted} names several keys of {id}; give more digits"),
    };
    let removed = tenant.keys.remove(at);
    write(file, &raw, version.as_ref())
        .await
        .context("the key was not revoked")?;
    eprintln!(
        "cloudpf keys: {} key {} of {id} revoked in {}",
        scope_name(removed.scope),
        removed.id(),
        file.location()
    );
    Ok(())
}
