//! The built-in sample platform: a small hosting API (deploy an app, log in,
//! write a record, read it back, delete the app) with fault injection, so
//! `lookout demo` shows the whole loop and tests have a real target.
//!
//! It is not part of the product: a crate of its own that `lookout demo`,
//! `lookout platform` and the tests use; [`receiver`] prints the demo's pages.
//!
//! | endpoint | route |
//! |---|---|
//! | `deploy` | `POST /apps {"name"}` → 201 `{id, name, state: "deploying"}` |
//! | `status` | `GET /apps/{id}` → `{id, name, state}`, `running` after the deploy delay |
//! | `list`   | `GET /apps` |
//! | `delete` | `DELETE /apps/{id}` → 204 |
//! | `login`  | `POST /login` (form `user`, `password`) → `{token}` |
//! | `write`  | `PUT /apps/{id}/records/{key}` (bearer) `{"value"}` → 201/200 |
//! | `read`   | `GET /apps/{id}/records/{key}` (bearer) |
//! | `push`   | `git push {url}/git/{name}.git HEAD:main` deploys app `{name}` ([`git`]) |
//! | `status` | `GET /apps/{id}/live` → the deployed `version` file once running, else 503 |
//!
//! Faults: `POST /_faults {"endpoint":"login","mode":"error","status":500}`,
//! `DELETE /_faults`, `GET /_faults`, or `--fault login=error` on `lookout demo`.
//! A fault for one location only (requests whose `X-Lookout-Location`
//! header names it, as Lookout's agents send): `POST /_faults` with
//! `"location": "eu-west"`; listed by `GET /_faults/locations`.

mod fault;
pub mod git;
pub mod receiver;
mod routes;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub use fault::{Endpoint, FaultError, FaultMode, FaultSpec};
pub use routes::router;

pub struct PlatformOptions {
    pub user: String,
    pub password: String,
    /// How long a new app stays `deploying`.
    pub deploy_delay: Duration,
    /// How long a written record stays invisible (eventual consistency).
    pub read_delay: Duration,
    pub faults: Vec<FaultSpec>,
    /// Where pushed apps' bare repositories live; `None`: a temporary
    /// directory removed with the platform.
    pub git_root: Option<PathBuf>,
}

impl Default for PlatformOptions {
    fn default() -> Self {
        Self {
            user: "prober".into(),
            password: "demo-password".into(),
            deploy_delay: Duration::from_secs(1),
            read_delay: Duration::ZERO,
            faults: vec![],
            git_root: None,
        }
    }
}

struct App {
    name: String,
    created: Instant,
    records: HashMap<String, (serde_json::Value, Instant)>,
    /// What a pushed app serves at `/apps/{id}/live` (its `version` file).
    content: Option<String>,
    /// A pushed app's bare repository.
    repo: Option<PathBuf>,
}

struct Inner {
    user: String,
    password: String,
    deploy_delay: Duration,
    read_delay: Duration,
    apps: Mutex<HashMap<String, App>>,
    tokens: Mutex<HashSet<String>>,
    faults: Mutex<HashMap<Endpoint, FaultMode>>,
    /// Faults for requests from one location only (the `X-Lookout-Location`
    /// header Lookout's agents send): a regional outage.
    regional: Mutex<HashMap<(String, Endpoint), FaultMode>>,
    git_root: PathBuf,
    /// The temporary git root, removed with the platform.
    _git_temp: Option<tempfile::TempDir>,
}

/// The header Lookout's agents name their location in.
pub const LOCATION_HEADER: &str = "x-lookout-location";

/// A fault for one location's requests (`GET /_faults/locations`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RegionalFault {
    pub location: String,
    #[serde(flatten)]
    pub fault: FaultSpec,
}

/// The platform's state; cheap to clone.
#[derive(Clone)]
pub struct PlatformState {
    inner: Arc<Inner>,
}

/// A poisoned lock only means another request panicked; the data is still
/// the platform's best knowledge, so keep serving.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl PlatformState {
    /// Errors: the temporary git root cannot be made.
    pub fn new(opts: PlatformOptions) -> std::io::Result<Self> {
        let (git_root, git_temp) = match opts.git_root {
            Some(root) => (root, None),
            None => {
                let t = tempfile::Builder::new()
                    .prefix("sample-platform-git-")
                    .tempdir()?;
                (t.path().to_path_buf(), Some(t))
            }
        };
        std::fs::create_dir_all(&git_root)?;
        let state = Self {
            inner: Arc::new(Inner {
                user: opts.user,
                password: opts.password,
                deploy_delay: opts.deploy_delay,
                read_delay: opts.read_delay,
                apps: Mutex::default(),
                tokens: Mutex::default(),
                faults: Mutex::default(),
                regional: Mutex::default(),
                git_root,
                _git_temp: git_temp,
            }),
        };
        for f in opts.faults {
            state.inject(f);
        }
        Ok(state)
    }

    /// Where pushed apps' bare repositories are.
    pub fn git_root(&self) -> &Path {
        &self.inner.git_root
    }

    pub fn inject(&self, f: FaultSpec) {
        let mut faults = lock(&self.inner.faults);
        match f.mode {
            FaultMode::Heal if f.endpoint == Endpoint::All => faults.clear(),
            FaultMode::Heal => {
                faults.remove(&f.endpoint);
            }
            mode => {
                faults.insert(f.endpoint, mode);
            }
        }
    }

    pub fn heal(&self, e: Endpoint) {
        self.inject(FaultSpec {
            endpoint: e,
            mode: FaultMode::Heal,
        });
    }

    pub fn heal_all(&self) {
        lock(&self.inner.faults).clear();
        lock(&self.inner.regional).clear();
    }

    /// Injects `f` for requests from `location` only (their
    /// `X-Lookout-Location` header); `heal` removes it (`*=heal` every
    /// fault of that location).
    pub fn inject_at(&self, location: &str, f: FaultSpec) {
        let mut faults = lock(&self.inner.regional);
        match f.mode {
            FaultMode::Heal if f.endpoint == Endpoint::All => {
                faults.retain(|(l, _), _| l != location);
            }
            FaultMode::Heal => {
                faults.remove(&(location.to_string(), f.endpoint));
            }
            mode => {
                faults.insert((location.to_string(), f.endpoint), mode);
            }
        }
    }

    /// Every fault for one location, by location then endpoint.
    pub fn regional_faults(&self) -> Vec<RegionalFault> {
        let mut list: Vec<RegionalFault> = lock(&self.inner.regional)
            .iter()
            .map(|((l, e), m)| RegionalFault {
                location: l.clone(),
                fault: FaultSpec {
                    endpoint: *e,
                    mode: *m,
                },
            })
            .collect();
        list.sort_by(|a, b| {
            (a.location.as_str(), a.fault.endpoint.as_str())
                .cmp(&(b.location.as_str(), b.fault.endpoint.as_str()))
        });
        list
    }

    /// The fault for `e` seen from `location`: that location's own for the
    /// endpoint, its `*` one, then the global ones ([`Self::fault_for`]).
    fn fault_from(&self, e: Endpoint, location: Option<&str>) -> Option<FaultMode> {
        if let Some(l) = location {
            let regional = lock(&self.inner.regional);
            let here = regional
                .get(&(l.to_string(), e))
                .or_else(|| regional.get(&(l.to_string(), Endpoint::All)))
                .copied();
            if here.is_some() {
                return here;
            }
        }
        self.fault_for(e)
    }

    pub fn faults(&self) -> Vec<FaultSpec> {
        let mut list: Vec<FaultSpec> = lock(&self.inner.faults)
            .iter()
            .map(|(e, m)| FaultSpec {
                endpoint: *e,
                mode: *m,
            })
            .collect();
        list.sort_by_key(|f| f.endpoint.as_str());
        list
    }

    /// The fault for `e`: its own, else the `*` one.
    fn fault_for(&self, e: Endpoint) -> Option<FaultMode> {
        let faults = lock(&self.inner.faults);
        faults
            .get(&e)
            .or_else(|| faults.get(&Endpoint::All))
            .copied()
    }

    pub fn app_count(&self) -> usize {
        lock(&self.inner.apps).len()
    }
}

/// The platform serving in the background; stops when dropped.
pub struct RunningPlatform {
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub url: String,
    pub state: PlatformState,
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl RunningPlatform {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for RunningPlatform {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn start(
    listener: tokio::net::TcpListener,
    opts: PlatformOptions,
) -> std::io::Result<RunningPlatform> {
    let addr = listener.local_addr()?;
    let state = PlatformState::new(opts)?;
    let app = router(state.clone());
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "sample platform stopped");
        }
    });
    Ok(RunningPlatform {
        url: format!("http://{addr}"),
        state,
        addr,
        task,
    })
}
