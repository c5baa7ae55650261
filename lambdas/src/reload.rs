//! What a warm function built from the tenants file (its Elasticsearch routes, the API's
//! keys), rebuilt when the file changes, so onboarding a shop or revoking a key needs no
//! redeploy.
//!
//! There is no background task: the check runs on an invocation, at most once per
//! `every` (one `HeadObject`), so an idle function makes no call at all and a frozen
//! container misses nothing. A changed file that does not build (bad TOML, an unknown
//! cluster, an unreadable secret) is logged as an error and the last good one stays in
//! use; it is tried again at the next check, so a passing failure (a throttled secret
//! read) heals by itself.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cloudpf_aws::TenantsFile;
use cloudpf_aws::tenants_file::Version;
use lambda_runtime::Error;

/// Builds the value from the file's text.
pub type Build<T> = Box<dyn Fn(String) -> BuildFuture<T> + Send + Sync>;
pub type BuildFuture<T> = Pin<Box<dyn Future<Output = Result<T, Error>> + Send>>;

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
    version: Version,
    checked: Instant,
}

impl<T> std::fmt::Debug for Reloading<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloading")
            .field("file", &self.file.location())
            .field("every", &self.every)
            .finish_non_exhaustive()
    }
}

impl<T> Reloading<T> {
    /// Reads and builds the file once: a file that does not build fails the start.
    pub async fn start(file: TenantsFile, every: Duration, build: Build<T>) -> Result<Self, Error> {
        let (text, version) = file.read().await?;
        let current = Arc::new(build(text).await?);
        Ok(Self {
            file,
            every,
            build,
            state: tokio::sync::Mutex::new(State {
                current,
                version,
                checked: Instant::now(),
            }),
            builds: AtomicU64::new(1),
            checks: AtomicU64::new(0),
        })
    }

    /// The value for this invocation: rebuilt first if the check is due and the file
    /// changed.
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
            Ok(version) if version == state.version => return,
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
            Ok(value) => {
                state.current = Arc::new(value);
                state.version = version;
                self.builds.fetch_add(1, Ordering::Relaxed);
                tracing::info!(location, "tenants file changed; now in use");
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
