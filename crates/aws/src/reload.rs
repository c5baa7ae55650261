//! What a long-lived process built from the tenants file (a warm Lambda's Elasticsearch
//! routes or API router, `cloudpf serve`'s router with its keys), rebuilt when the file
//! changes, so onboarding a shop or revoking a key needs no redeploy and no restart.
//!
//! There is no background task: the check runs on a request, at most once per `every`
//! (one `HeadObject`, or one read of a local file), so an idle process makes no call at
//! all and a frozen Lambda container misses nothing. A changed file that does not build
//! (bad TOML, an unknown cluster) is logged as an error and the last good one stays in
//! use; it is tried again at the next check. A build that is usable but *partial* (a
//! cluster whose secret could not be read, so only that cluster's shops wait) is used,
//! and built again at every check until it is whole, so a passing failure (a throttled
//! secret read, a secret created a moment after the file) heals by itself.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::TenantsFile;
use crate::tenants_file::Version;

/// Why a build or the first read failed.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// Builds the value from the file's text.
pub type Build<T> = Box<dyn Fn(String) -> BuildFuture<T> + Send + Sync>;
pub type BuildFuture<T> = Pin<Box<dyn Future<Output = Result<Built<T>, Error>> + Send>>;

/// A built value, and whether part of it is missing for now (worth building again even
/// if the file does not change).
#[derive(Debug)]
pub struct Built<T> {
    pub value: T,
    pub partial: bool,
}

impl<T> Built<T> {
    pub fn whole(value: T) -> Self {
        Self {
            value,
            partial: false,
        }
    }
}

pub struct Reloading<T> {
    file: TenantsFile,
    every: Duration,
    build: Build<T>,
    state: tokio::sync::Mutex<State<T>>,
    builds: AtomicU64,
    checks: AtomicU64,
}

struct State<T> {
    current: Arc<T>,
    partial: bool,
    version: Version,
    checked: Instant,
    /// When the value in use was built, and how long a partial one waits before it is
    /// built again (doubling from `every` up to [`MAX_PARTIAL_WAIT`]): a secret that
    /// stays unreadable must not cost a rebuild and a failed read on every check.
    built: Instant,
    partial_wait: Duration,
}

/// The longest a partial build waits to be tried again.
pub const MAX_PARTIAL_WAIT: Duration = Duration::from_secs(300);

impl<T> std::fmt::Debug for Reloading<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloading")
            .field("file", &self.file.location())
            .field("every", &self.every)
            .finish_non_exhaustive()
    }
}

impl<T> Reloading<T> {
    /// Reads and builds the file once: a file that does not build fails the start (a
    /// partial build does not).
    pub async fn start(file: TenantsFile, every: Duration, build: Build<T>) -> Result<Self, Error> {
        let (text, version) = file.read().await?;
        let built = build(text).await?;
        Ok(Self {
            file,
            every,
            build,
            state: tokio::sync::Mutex::new(State {
                current: Arc::new(built.value),
                partial: built.partial,
                version,
                built: Instant::now(),
                partial_wait: every,
                checked: Instant::now(),
            }),
            builds: AtomicU64::new(1),
            checks: AtomicU64::new(0),
        })
    }

    /// The value for this invocation: rebuilt first if the check is due and the file
    /// changed (or the value in use is partial).
    pub async fn current(&self) -> Arc<T> {
        let mut state = self.state.lock().await;
        if state.checked.elapsed() >= self.every {
            state.checked = Instant::now();
            self.checks.fetch_add(1, Ordering::Relaxed);
            self.refresh(&mut state).await;
        }
        state.current.clone()
    }

    async fn refresh(&self, state: &mut State<T>) {
        let location = self.file.location();
        match self.file.version().await {
            Ok(version)
                if version == state.version
                    && (!state.partial || state.built.elapsed() < state.partial_wait) =>
            {
                return;
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(%error, "cannot check the tenants file; keeping the one in use");
                return;
            }
        }
        let (text, version) = match self.file.read().await {
            Ok(read) => read,
            Err(error) => {
                tracing::warn!(%error, "cannot read the tenants file; keeping the one in use");
                return;
            }
        };
        match (self.build)(text).await {
            Ok(built) => {
                state.partial_wait = if built.partial && state.partial && version == state.version {
                    (state.partial_wait * 2).clamp(self.every, MAX_PARTIAL_WAIT)
                } else {
                    self.every
                };
                state.current = Arc::new(built.value);
                state.partial = built.partial;
                state.version = version;
                state.built = Instant::now();
                self.builds.fetch_add(1, Ordering::Relaxed);
                tracing::info!(
                    location,
                    partial = built.partial,
                    "tenants file built; now in use"
                );
            }
            Err(error) => tracing::error!(
                location,
                %error,
                "tenants file changed but cannot be used; keeping the previous one"
            ),
        }
    }

    /// How many times the value was built (1 after the start).
    pub fn builds(&self) -> u64 {
        self.builds.load(Ordering::Relaxed)
    }

    /// How many times the file was checked for a change.
    pub fn checks(&self) -> u64 {
        self.checks.load(Ordering::Relaxed)
    }
}
