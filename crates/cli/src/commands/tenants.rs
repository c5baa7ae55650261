//! `cloudpf tenants`: list, add and remove shops in the tenants file, a local path or the
//! deployment's S3 object. Every edit is validated as the API would load it and written
//! only over the version it read, so two operators never lose each other's change; the
//! Lambdas pick it up within `CLOUDPF_TENANTS_REFRESH_SECONDS`, with no redeploy.
//!
//! `add --provision` first makes the cluster's TLS identity ([`cluster_tls`]), deploys
//! the shop's own search cluster stack (`infra/search-cluster.yaml`, built into this
//! binary) with CloudFormation, waits for it, and routes the shop to it, trusting the
//! identity's authority; `remove --deprovision` unroutes the shop first, then deletes
//! its cluster's stack and identity. Both are safe to run again after an interruption.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use aws_sdk_cloudformation::types::{Capability, Parameter, Tag};
use cloudpf_aws::TenantsFile;
use cloudpf_aws::tenants_file::Version;
use cloudpf_engines::vars;
use cloudpf_model::TenantId;
use cloudpf_search_api::Tenants;
use cloudpf_search_api::tenants::{RawKey, RawTenant, RawTenantsFile, Scope, hash_key};
use cloudpf_search_es::{EsConfig, RawCluster, RawRoute};

use super::cluster_tls::{self, ClusterTls};

/// The search cluster stack, as `--provision` deploys it.
const SEARCH_CLUSTER_TEMPLATE: &str = include_str!("../../../../infra/search-cluster.yaml");

/// Where the tenants file is, for the commands that edit it (`tenants`, `keys`).
#[derive(Debug, clap::Args)]
pub struct TenantsFileArgs {
    /// The tenants file: a path or `s3://bucket/key`.
    #[arg(
        long,
        global = true,
        default_value = "data/tenants.toml",
        env = vars::TENANTS_FILE.name
    )]
    tenants_file: String,
    /// Path-style S3 addressing (S3-compatible stores), for the file and the lake.
    #[arg(long, global = true, env = vars::S3_FORCE_PATH_STYLE.name, value_parser = vars::parse_bool)]
    pub force_path_style: bool,
}

impl TenantsFileArgs {
    pub fn open(&self, shared: &aws_config::SdkConfig) -> TenantsFile {
        TenantsFile::new(&self.tenants_file, shared, self.force_path_style)
    }
}

#[derive(Debug, clap::Args)]
pub struct TenantsArgs {
    #[command(flatten)]
    file: TenantsFileArgs,
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Print each shop with its search cluster and its keys' scopes.
    List,
    /// Add a shop with a new search key and admin key (printed once, as JSON).
    Add(AddArgs),
    /// Remove a shop from the tenants file (its keys stop working once the API has it);
    /// with --purge, erase all its data too.
    Remove(RemoveArgs),
    /// Write a shop's current catalog and purchases as JSON Lines (read from the lake).
    Export(ExportArgs),
    /// Deploy a search cluster stack for many shops (`add --cluster`) and add it to the
    /// file.
    AddCluster(AddClusterArgs),
    /// Delete a cluster that serves no shop any more: from the file, then its stack.
    RemoveCluster(RemoveClusterArgs),
}

#[derive(Debug, clap::Args)]
struct AddArgs {
    /// The shop's tenant id.
    id: String,
    /// A browser origin allowed to call the API, e.g. `https://shop.example` (repeatable).
    #[arg(long = "cors-origin")]
    cors_origins: Vec<String>,
    /// Route the shop to this existing cluster of the file (a shared cluster).
    #[arg(long, conflicts_with = "provision")]
    cluster: Option<String>,
    /// Deploy the shop's own search cluster stack first and route the shop to it.
    #[arg(long, requires = "main_stack")]
    provision: bool,
    #[command(flatten)]
    stack: StackArgs,
    #[command(flatten)]
    size: ClusterSize,
    /// Where an earlier purge of this id left its marker (the lake): adding the id again
    /// clears it, so that the new shop's records are not dead-lettered as the old one's.
    #[command(flatten)]
    data: super::offboard::ShopDataArgs,
}

#[derive(Debug, clap::Args)]
struct ClusterSize {
    /// Task CPU units of the cluster (with `--provision`: the shop's own).
    #[arg(long, default_value = "512")]
    cpu: String,
    /// Task memory in MiB of the cluster (with `--provision`: the shop's own).
    #[arg(long, default_value = "2048")]
    memory: String,
}

#[derive(Debug, clap::Args)]
struct AddClusterArgs {
    /// The cluster's name: lowercase letters, digits and '-' (a tenant id's rules).
    name: String,
    #[command(flatten)]
    stack: StackArgs,
    #[command(flatten)]
    size: ClusterSize,
}

#[derive(Debug, clap::Args)]
struct RemoveClusterArgs {
    /// The cluster's name.
    name: String,
    /// Delete the stack even though the tenants file names no such cluster (a file
    /// edited by hand, or the wrong file: shops routed elsewhere would lose their search).
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    stack: StackArgs,
}

#[derive(Debug, clap::Args)]
struct RemoveArgs {
    /// The shop's tenant id.
    id: String,
    /// Also delete the shop's own search cluster stack (refused for a shared cluster).
    #[arg(long, requires = "main_stack")]
    deprovision: bool,
    #[command(flatten)]
    stack: StackArgs,
    /// Erase the shop: its indexes, lake partitions (all logs), search events, dead
    /// letters, backfill checkpoints and demo keys; its late stream records are
    /// dead-lettered instead of recreating it. Prints what it removed, as JSON.
    #[arg(long)]
    purge: bool,
    /// How long the purge waits, after marking the shop purged, for every writer to see
    /// the mark before it deletes.
    #[arg(long, default_value_t = super::offboard::default_settle().as_secs(), value_name = "SECONDS")]
    settle_seconds: u64,
    #[command(flatten)]
    data: super::offboard::ShopDataArgs,
}

#[derive(Debug, clap::Args)]
struct ExportArgs {
    /// The shop's tenant id.
    id: String,
    /// Directory for `<shop>-products.jsonl` and `<shop>-purchases.jsonl`.
    #[arg(long, default_value = ".")]
    out: std::path::PathBuf,
    #[command(flatten)]
    data: super::offboard::ShopDataArgs,
}

#[derive(Debug, clap::Args)]
struct StackArgs {
    /// The main cloudpf stack (infra/template.yaml) whose exports the cluster stack uses;
    /// cluster stacks are named `<main stack>-search-<cluster>`.
    #[arg(long)]
    main_stack: Option<String>,
    /// Deploy this template instead of the built-in infra/search-cluster.yaml.
    #[arg(long)]
    template: Option<std::path::PathBuf>,
    /// How long to wait for a stack to be created or deleted, in minutes.
    #[arg(long, default_value_t = 45)]
    wait_minutes: u64,
}

impl StackArgs {
    fn stack_name(&self, cluster: &str) -> anyhow::Result<String> {
        let main = self
            .main_stack
            .as_deref()
            .context("--main-stack is required")?;
        Ok(format!("{main}-search-{cluster}"))
    }
}

pub async fn run(args: TenantsArgs) -> anyhow::Result<()> {
    let shared = aws_config::load_from_env().await;
    let file = args.file.open(&shared);
    match args.action {
        Action::List => list(&file).await,
        Action::Add(add_args) => add(&file, &shared, add_args, args.file.force_path_style).await,
        Action::Remove(remove_args) => {
            remove(&file, &shared, remove_args, args.file.force_path_style).await
        }
        Action::Export(export_args) => {
            let id = TenantId::parse(&export_args.id)?;
            let sink = export_args.data.sink(args.file.force_path_style).await;
            let summary = super::offboard::export(sink.as_ref(), &id, &export_args.out).await?;
            writeln!(
                std::io::stdout().lock(),
                "{}",
                serde_json::to_string_pretty(&summary)?
            )?;
            Ok(())
        }
        Action::AddCluster(cluster_args) => add_cluster(&file, &shared, cluster_args).await,
        Action::RemoveCluster(cluster_args) => remove_cluster(&file, &shared, cluster_args).await,
    }
}

/// The file as written, and its version; a missing file is an empty one.
pub(super) async fn read(file: &TenantsFile) -> anyhow::Result<(RawTenantsFile, Option<Version>)> {
    match file.read().await {
        Ok((text, version)) => {
            let raw: RawTenantsFile = toml::from_str(&text)
                .with_context(|| format!("tenants file {} is not valid", file.location()))?;
            Ok((raw, Some(version)))
        }
        Err(cloudpf_aws::TenantsFileError::Missing(_)) => Ok((
            RawTenantsFile {
                tenants: Vec::new(),
                elasticsearch: None,
                rate_limits: None,
            },
            None,
        )),
        Err(e) => Err(e.into()),
    }
}

/// Validates `raw` as the API loads it, then writes it over `expected`.
pub(super) async fn write(
    file: &TenantsFile,
    raw: &RawTenantsFile,
    expected: Option<&Version>,
) -> anyhow::Result<()> {
    let text = toml::to_string_pretty(raw)?;
    // As the API and the Lambdas will load it: keys, origins, and the routes.
    let tenants = Tenants::from_toml(&text, file.location())
        .context("the edited tenants file is not valid")?;
    tenants
        .routing()
        .check_routes()
        .context("the edited tenants file's search clusters are not valid")?;
    let text = format!(
        "# cloudpf tenants file: shops, hashed API keys, CORS origins, search clusters.\n\
         # Edited by `cloudpf tenants`; comments are not kept.\n{text}"
    );
    file.write(&text, expected).await?;
    Ok(())
}

async fn list(file: &TenantsFile) -> anyhow::Result<()> {
    let (raw, _) = read(file).await?;
    let mut out = std::io::stdout().lock();
    for tenant in &raw.tenants {
        let scopes: Vec<String> = tenant
            .keys
            .iter()
            .map(|k| format!("{:?}", k.scope).to_lowercase())
            .collect();
        writeln!(
            out,
            "{}\tcluster={}\tkeys={}",
            tenant.id,
            tenant.search_cluster.as_deref().unwrap_or("-"),
            scopes.join(",")
        )?;
    }
    Ok(())
}

async fn add(
    file: &TenantsFile,
    shared: &aws_config::SdkConfig,
    args: AddArgs,
    force_path_style: bool,
) -> anyhow::Result<()> {
    let id = TenantId::parse(&args.id)?;
    let (mut raw, version) = read(file).await?;
    let routed = raw
        .elasticsearch
        .as_ref()
        .is_some_and(|es| es.tenants.contains_key(id.as_str()));
    if routed || raw.tenants.iter().any(|t| t.id == id.as_str()) {
        bail!("tenant {id} is already in {}", file.location());
    }
    if args.provision
        && raw
            .elasticsearch
            .as_ref()
            .is_some_and(|es| es.clusters.contains_key(id.as_str()))
    {
        bail!(
            "{} already has a cluster named {id}; route the shop to it with --cluster",
            file.location()
        );
    }
    let search_cluster = if args.provision {
        let cluster = provision(shared, &args.stack, &id, &args.size).await?;
        raw.elasticsearch
            .get_or_insert_with(EsConfig::default)
            .clusters
            .insert(id.to_string(), cluster);
        Some(id.to_string())
    } else {
        if let Some(cluster) = &args.cluster {
            let known = raw
                .elasticsearch
                .as_ref()
                .is_some_and(|es| es.clusters.contains_key(cluster));
            if !known {
                bail!(
                    "cluster {cluster:?} is not in {}; add it there, or use --provision",
                    file.location()
                );
            }
        }
        args.cluster.clone()
    };
    let sink = args.data.sink(force_path_style).await;
    if let Some(marker) = cloudpf_lake::purge::purge_marker(sink.as_ref(), &id).await? {
        cloudpf_lake::purge::unmark_purged(sink.as_ref(), &id).await?;
        eprintln!(
            "cloudpf tenants: {id} was purged at {}; the id is a new shop now (writers see it within {} s)",
            marker.purged_at,
            cloudpf_lake::purge::PURGED_REFRESH.as_secs()
        );
    }
    let search_key = super::random_key("cpfs_")?;
    let admin_key = super::random_key("cpfa_")?;
    raw.tenants.push(RawTenant {
        id: id.to_string(),
        cors_origins: args.cors_origins,
        keys: vec![
            RawKey::new(Scope::Search, hash_key(&search_key)),
            RawKey::new(Scope::Admin, hash_key(&admin_key)),
        ],
        search_cluster,
    });
    write(file, &raw, version.as_ref()).await?;
    eprintln!(
        "cloudpf tenants: {id} added to {}; its keys are shown only now",
        file.location()
    );
    writeln!(
        std::io::stdout().lock(),
        "{}",
        serde_json::json!({ "tenant": id.as_str(), "search_key": search_key, "admin_key": admin_key })
    )?;
    Ok(())
}

async fn remove(
    file: &TenantsFile,
    shared: &aws_config::SdkConfig,
    args: RemoveArgs,
    force_path_style: bool,
) -> anyhow::Result<()> {
    let id = TenantId::parse(&args.id)?;
    let (mut raw, version) = read(file).await?;
    let at = raw.tenants.iter().position(|t| t.id == id.as_str());
    // The Lambdas' route of the shop goes with it: a shop added again with the same id
    // must not find a route it did not ask for.
    let lambda_route = raw
        .elasticsearch
        .as_mut()
        .and_then(|es| es.tenants.remove(id.as_str()));
    if at.is_none() && lambda_route.is_none() && !args.purge {
        bail!("tenant {id} is not in {}", file.location());
    }
    // A purge needs the shop's search route, which the edit below takes away; run again
    // after an interruption, it finds the route in the marker of the first run.
    let purging = if args.purge {
        let sink = args.data.sink(force_path_style).await;
        let earlier = cloudpf_lake::purge::purge_marker(sink.as_ref(), &id).await?;
        let cluster = at
            .and_then(|at| raw.tenants[at].search_cluster.clone())
            .or_else(|| lambda_route.as_ref().map(|r| r.cluster.clone()))
            .or_else(|| earlier.and_then(|m| m.search_cluster));
        let mut routed = raw.clone();
        if let (Some(cluster), Some(es)) = (&cluster, routed.elasticsearch.as_mut())
            && es.clusters.contains_key(cluster)
        {
            es.tenants.insert(
                id.to_string(),
                RawRoute {
                    cluster: cluster.clone(),
                },
            );
        }
        let text = toml::to_string(&routed)?;
        let engine = super::offboard::engine(&args.data, &text, file.location()).await?;
        let marker =
            cloudpf_lake::purge::mark_purged(sink.as_ref(), &id, chrono::Utc::now(), cluster)
                .await?;
        Some((engine, sink, marker))
    } else {
        None
    };
    let mut stack = None;
    if lambda_route.is_some() && at.is_none() {
        write(file, &raw, version.as_ref()).await?;
        eprintln!(
            "cloudpf tenants: {id}'s route removed from {}",
            file.location()
        );
    }
    if let Some(at) = at {
        let removed = raw.tenants.remove(at);
        if args.deprovision {
            let Some(cluster) = removed.search_cluster.clone() else {
                bail!("tenant {id} has no search cluster to deprovision");
            };
            let others = shops_on(&raw, &cluster);
            if !others.is_empty() {
                bail!(
                    "cluster {cluster:?} also serves {}; remove the shop without --deprovision",
                    others.join(", ")
                );
            }
            if let Some(es) = raw.elasticsearch.as_mut() {
                es.clusters.remove(&cluster);
            }
            stack = Some(cluster);
        }
        // Unrouted first: nothing is sent to a cluster while its stack is deleted.
        write(file, &raw, version.as_ref()).await?;
        eprintln!("cloudpf tenants: {id} removed from {}", file.location());
    } else {
        eprintln!(
            "cloudpf tenants: {id} is not in {}; purging its data",
            file.location()
        );
    }
    if let Some((engine, sink, marker)) = purging {
        let mut report = super::offboard::PurgeReport {
            tenant: id.to_string(),
            marker: marker.to_string(),
            removed_from_tenants_file: at.is_some(),
            ..Default::default()
        };
        if args.settle_seconds > 0 {
            eprintln!(
                "cloudpf tenants: waiting {} s for every writer to see that {id} is purged",
                args.settle_seconds
            );
            tokio::time::sleep(Duration::from_secs(args.settle_seconds)).await;
        }
        super::offboard::erase(
            engine.as_ref(),
            sink.as_ref(),
            &args.data.data_dir,
            &id,
            &mut report,
        )
        .await?;
        writeln!(
            std::io::stdout().lock(),
            "{}",
            serde_json::to_string_pretty(&report)?
        )?;
    }
    if let Some(cluster) = stack {
        deprovision(shared, &args.stack, &cluster).await?;
    }
    Ok(())
}

/// Deploys the search cluster stack `name` with a new TLS identity (or finishes an
/// interrupted deployment); the tenants file's entry for it.
async fn provision(
    shared: &aws_config::SdkConfig,
    stack: &StackArgs,
    name: &TenantId,
    size: &ClusterSize,
) -> anyhow::Result<RawCluster> {
    let stacks = Stacks::new(shared, stack);
    let stack_name = stack.stack_name(name.as_str())?;
    let template = match &stack.template {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?,
        None => SEARCH_CLUSTER_TEMPLATE.to_owned(),
    };
    let main = stack.main_stack.clone().unwrap_or_default();
    let exports = stacks.exports(&main).await?;
    // The node's name, which its certificate carries: the stack's ClusterUrl host.
    let host = format!("{name}.{}", exports.namespace);
    let (tls_arn, tls) = cluster_tls::ensure_secret(
        &aws_sdk_secretsmanager::Client::new(shared),
        &cluster_tls::secret_name(&exports.environment, name.as_str()),
        &exports.key_arn,
        || ClusterTls::generate(name.as_str(), &host, chrono::Utc::now().date_naive()),
    )
    .await?;
    let params = [
        ("MainStack", main),
        ("ClusterName", name.to_string()),
        ("Cpu", size.cpu.clone()),
        ("Memory", size.memory.clone()),
        ("TlsSecretArn", tls_arn),
    ];
    eprintln!("cloudpf tenants: deploying stack {stack_name} (a few minutes)");
    let outputs = stacks.create(&stack_name, &template, &params, name).await?;
    let output = |key: &str| {
        outputs
            .get(key)
            .cloned()
            .with_context(|| format!("stack {stack_name} has no output {key}"))
    };
    let url = output("ClusterUrl")?;
    let expected = format!("https://{host}:9200");
    if url != expected {
        bail!(
            "stack {stack_name}'s ClusterUrl {url} is not {expected}, the name its certificate was made for"
        );
    }
    Ok(RawCluster {
        url,
        credentials_secret: Some(output("CredentialsSecretName")?),
        snapshot_bucket: Some(output("SnapshotBucket")?),
        ca_certificate: Some(tls.ca_certificate),
        ..RawCluster::default()
    })
}

/// Deletes the search cluster stack of `cluster`, then its TLS identity.
async fn deprovision(
    shared: &aws_config::SdkConfig,
    stack: &StackArgs,
    cluster: &str,
) -> anyhow::Result<()> {
    let stacks = Stacks::new(shared, stack);
    let name = stack.stack_name(cluster)?;
    let exports = stacks
        .exports(stack.main_stack.as_deref().unwrap_or_default())
        .await?;
    eprintln!("cloudpf tenants: deleting stack {name}");
    stacks.delete(&name).await?;
    // After the node is gone: its certificate is of no use to anything else.
    cluster_tls::delete_secret(
        &aws_sdk_secretsmanager::Client::new(shared),
        &cluster_tls::secret_name(&exports.environment, cluster),
    )
    .await?;
    eprintln!("cloudpf tenants: stack {name} and its TLS secret deleted");
    Ok(())
}

/// The shops of `raw` routed to `cluster`, in the tenant list or the routing table.
fn shops_on<'a>(raw: &'a RawTenantsFile, cluster: &str) -> Vec<&'a str> {
    let listed = raw
        .tenants
        .iter()
        .filter(|t| t.search_cluster.as_deref() == Some(cluster))
        .map(|t| t.id.as_str());
    let routed = raw.elasticsearch.iter().flat_map(|es| {
        es.tenants
            .iter()
            .filter(|(_, r)| r.cluster == cluster)
            .map(|(t, _)| t.as_str())
    });
    listed.chain(routed).collect()
}

async fn add_cluster(
    file: &TenantsFile,
    shared: &aws_config::SdkConfig,
    args: AddClusterArgs,
) -> anyhow::Result<()> {
    let name = TenantId::parse(&args.name).context("a cluster name follows a tenant id's rules")?;
    let known = |raw: &RawTenantsFile| {
        raw.elasticsearch
            .as_ref()
            .is_some_and(|es| es.clusters.contains_key(name.as_str()))
    };
    if known(&read(file).await?.0) {
        bail!("{} already has a cluster named {name}", file.location());
    }
    let cluster = provision(shared, &args.stack, &name, &args.size).await?;
    // Read again: the deployment took minutes, and the write is conditional on this read.
    let (mut raw, version) = read(file).await?;
    if known(&raw) {
        bail!("{} got a cluster named {name} meanwhile", file.location());
    }
    raw.elasticsearch
        .get_or_insert_with(EsConfig::default)
        .clusters
        .insert(name.to_string(), cluster);
    write(file, &raw, version.as_ref()).await?;
    eprintln!(
        "cloudpf tenants: cluster {name} added to {}; route shops to it with `add --cluster {name}`",
        file.location()
    );
    Ok(())
}

async fn remove_cluster(
    file: &TenantsFile,
    shared: &aws_config::SdkConfig,
    args: RemoveClusterArgs,
) -> anyhow::Result<()> {
    let (mut raw, version) = read(file).await?;
    let shops = shops_on(&raw, &args.name);
    if !shops.is_empty() {
        bail!(
            "cluster {:?} still serves {}; remove or move those shops first",
            args.name,
            shops.join(", ")
        );
    }
    let known = raw
        .elasticsearch
        .as_mut()
        .is_some_and(|es| es.clusters.remove(&args.name).is_some());
    if known {
        write(file, &raw, version.as_ref()).await?;
        eprintln!(
            "cloudpf tenants: cluster {} removed from {}",
            args.name,
            file.location()
        );
    } else if !args.force {
        bail!(
            "{} names no cluster {:?}; check the file, or pass --force to delete its stack anyway",
            file.location(),
            args.name
        );
    }
    deprovision(shared, &args.stack, &args.name).await
}

/// What a cluster stack uses of the main stack's exports.
struct MainExports {
    environment: String,
    namespace: String,
    key_arn: String,
}

/// CloudFormation, for the search cluster stacks.
struct Stacks {
    client: aws_sdk_cloudformation::Client,
    wait: Duration,
}

impl Stacks {
    fn new(shared: &aws_config::SdkConfig, args: &StackArgs) -> Self {
        Self {
            client: aws_sdk_cloudformation::Client::new(shared),
            wait: Duration::from_secs(args.wait_minutes * 60),
        }
    }

    /// The stack's status and outputs, `None` if it does not exist.
    async fn describe(
        &self,
        name: &str,
    ) -> anyhow::Result<Option<(String, BTreeMap<String, String>)>> {
        let described = match self.client.describe_stacks().stack_name(name).send().await {
            Ok(described) => described,
            Err(e) => {
                let text = aws_sdk_cloudformation::error::DisplayErrorContext(&e).to_string();
                if text.contains("does not exist") {
                    return Ok(None);
                }
                return Err(anyhow::anyhow!("cannot describe stack {name}: {text}"));
            }
        };
        let Some(stack) = described.stacks().first() else {
            return Ok(None);
        };
        let status = stack
            .stack_status()
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default();
        let outputs = stack
            .outputs()
            .iter()
            .filter_map(|o| Some((o.output_key()?.to_owned(), o.output_value()?.to_owned())))
            .collect();
        Ok(Some((status, outputs)))
    }

    /// The exports of the main stack `main` that a cluster stack imports.
    async fn exports(&self, main: &str) -> anyhow::Result<MainExports> {
        let mut found = BTreeMap::new();
        let mut next = None;
        loop {
            let page = self
                .client
                .list_exports()
                .set_next_token(next)
                .send()
                .await
                .map_err(|e| {
                    anyhow::anyhow!(
                        "cannot list the stacks' exports: {}",
                        aws_sdk_cloudformation::error::DisplayErrorContext(e)
                    )
                })?;
            for export in page.exports() {
                if let (Some(name), Some(value)) = (export.name(), export.value())
                    && let Some(key) = name.strip_prefix(main).and_then(|n| n.strip_prefix('-'))
                {
                    found.insert(key.to_owned(), value.to_owned());
                }
            }
            next = page.next_token().map(str::to_owned);
            if next.is_none() {
                break;
            }
        }
        let mut take = |key: &str| {
            found.remove(key).with_context(|| {
                format!("stack {main} exports no {main}-{key}; is it cloudpf's main stack, with SearchBackend=elasticsearch?")
            })
        };
        Ok(MainExports {
            environment: take("Environment")?,
            namespace: take("SearchNamespaceName")?,
            key_arn: take("KeyArn")?,
        })
    }

    /// Creates the stack (or finds it already created by an interrupted run) and waits
    /// for it; its outputs.
    async fn create(
        &self,
        name: &str,
        template: &str,
        params: &[(&str, String)],
        tenant: &TenantId,
    ) -> anyhow::Result<BTreeMap<String, String>> {
        let needs_create = match self.describe(name).await? {
            None => true,
            // A first attempt that failed and rolled back leaves a stack that can only
            // be deleted: delete it and start again.
            Some((status, _)) if status == "ROLLBACK_COMPLETE" => {
                eprintln!(
                    "cloudpf tenants: stack {name} failed earlier ({status}); deleting it first"
                );
                self.delete(name).await?;
                true
            }
            // Created by an interrupted run: wait for it below.
            Some(_) => false,
        };
        if needs_create {
            let mut create = self
                .client
                .create_stack()
                .stack_name(name)
                .template_body(template)
                .capabilities(Capability::CapabilityIam)
                .tags(
                    Tag::builder()
                        .key("cloudpf:tenant")
                        .value(tenant.as_str())
                        .build(),
                );
            for (key, value) in params {
                create = create.parameters(
                    Parameter::builder()
                        .parameter_key(*key)
                        .parameter_value(value)
                        .build(),
                );
            }
            create.send().await.map_err(|e| {
                anyhow::anyhow!(
                    "cannot create stack {name}: {}",
                    aws_sdk_cloudformation::error::DisplayErrorContext(e)
                )
            })?;
        }
        let outputs = self
            .wait_for(name, |status| match status {
                "CREATE_COMPLETE" | "UPDATE_COMPLETE" => Some(true),
                s if s.ends_with("_IN_PROGRESS") => None,
                _ => Some(false),
            })
            .await?;
        outputs.with_context(|| format!("stack {name} disappeared while it was created"))
    }

    async fn delete(&self, name: &str) -> anyhow::Result<()> {
        if self.describe(name).await?.is_none() {
            return Ok(());
        }
        self.client
            .delete_stack()
            .stack_name(name)
            .send()
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot delete stack {name}: {}",
                    aws_sdk_cloudformation::error::DisplayErrorContext(e)
                )
            })?;
        self.wait_for(name, |status| match status {
            "DELETE_COMPLETE" => Some(true),
            s if s.ends_with("_IN_PROGRESS") => None,
            _ => Some(false),
        })
        .await?;
        Ok(())
    }

    /// Polls the stack until `done` says it finished (`Some(true)`: its outputs) or
    /// failed (`Some(false)`: an error with the status), within the wait.
    async fn wait_for(
        &self,
        name: &str,
        done: impl Fn(&str) -> Option<bool>,
    ) -> anyhow::Result<Option<BTreeMap<String, String>>> {
        let deadline = Instant::now() + self.wait;
        let mut pause = Duration::from_millis(200);
        loop {
            let Some((status, outputs)) = self.describe(name).await? else {
                // A deleted stack stops being listed under its name.
                return Ok(None);
            };
            match done(&status) {
                Some(true) => return Ok(Some(outputs)),
                Some(false) => bail!("stack {name} ended in {status}; see its events"),
                None if Instant::now() >= deadline => {
                    bail!("stack {name} still {status} after the wait; run the command again")
                }
                None => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(15));
                }
            }
        }
    }
}
