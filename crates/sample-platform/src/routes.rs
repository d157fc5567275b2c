//! The sample platform's HTTP handlers and the fault layer in front of them.

use std::time::Instant;

use axum::extract::{Form, Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, any, delete, get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{App, Endpoint, FaultMode, FaultSpec, PlatformState, lock};

pub fn router(state: PlatformState) -> Router {
    let g = |e: Endpoint, r: MethodRouter<PlatformState>| {
        r.layer(middleware::from_fn_with_state(
            (state.clone(), e),
            fault_layer,
        ))
    };
    Router::new()
        .route(
            "/apps",
            g(Endpoint::Deploy, post(deploy)).merge(g(Endpoint::List, get(list))),
        )
        .route(
            "/apps/{id}",
            g(Endpoint::Status, get(status)).merge(g(Endpoint::Delete, delete(remove))),
        )
        .route(
            "/apps/{id}/records/{key}",
            g(Endpoint::Write, put(write)).merge(g(Endpoint::Read, get(read))),
        )
        .route("/apps/{id}/live", g(Endpoint::Status, get(live)))
        .route(
            "/git/{repo}/{*rest}",
            g(Endpoint::Push, any(super::git::serve)),
        )
        .route("/login", g(Endpoint::Login, post(login)))
        .route("/_faults", get(faults).post(inject).delete(heal_all))
        .route("/_faults/locations", get(regional_faults))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(state)
}

fn error(status: StatusCode, msg: &str) -> Response {
    (status, Json(json!({ "error": msg }))).into_response()
}

/// The one place faults act: before the endpoint's handler runs.
async fn fault_layer(
    State((state, endpoint)): State<(PlatformState, Endpoint)>,
    req: Request,
    next: Next,
) -> Response {
    let location = req
        .headers()
        .get(super::LOCATION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    match state.fault_from(endpoint, location.as_deref()) {
        Some(FaultMode::Error { status }) => {
            let code = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            error(code, "injected fault")
        }
        Some(FaultMode::Slow { delay }) => {
            tokio::time::sleep(delay).await;
            next.run(req).await
        }
        Some(FaultMode::Hang) => std::future::pending().await,
        _ => next.run(req).await,
    }
}

#[derive(Deserialize)]
struct NewApp {
    #[serde(default)]
    name: String,
}

async fn deploy(State(s): State<PlatformState>, body: Option<Json<NewApp>>) -> Response {
    let name = body.map(|Json(b)| b.name).unwrap_or_default();
    if name.trim().is_empty() {
        return error(StatusCode::BAD_REQUEST, "name is required");
    }
    let id = uuid::Uuid::new_v4().to_string();
    let app = App {
        name: name.clone(),
        created: Instant::now(),
        records: Default::default(),
        content: None,
        repo: None,
    };
    lock(&s.inner.apps).insert(id.clone(), app);
    let body = json!({ "id": id, "name": name, "state": "deploying" });
    (StatusCode::CREATED, Json(body)).into_response()
}

fn app_json(s: &PlatformState, id: &str, app: &App) -> Value {
    let stuck = s.fault_for(Endpoint::Status) == Some(FaultMode::Stuck);
    let running = !stuck && app.created.elapsed() >= s.inner.deploy_delay;
    let state = if running { "running" } else { "deploying" };
    json!({ "id": id, "name": app.name, "state": state })
}

async fn status(State(s): State<PlatformState>, Path(id): Path<String>) -> Response {
    let apps = lock(&s.inner.apps);
    match apps.get(&id) {
        Some(app) => Json(app_json(&s, &id, app)).into_response(),
        None => error(StatusCode::NOT_FOUND, "app not found"),
    }
}

async fn list(State(s): State<PlatformState>) -> Json<Value> {
    let apps = lock(&s.inner.apps);
    Json(Value::Array(
        apps.iter().map(|(id, a)| app_json(&s, id, a)).collect(),
    ))
}

/// A pushed app's `version` file once it runs; 503 while it deploys.
async fn live(State(s): State<PlatformState>, Path(id): Path<String>) -> Response {
    let apps = lock(&s.inner.apps);
    let Some(app) = apps.get(&id) else {
        return error(StatusCode::NOT_FOUND, "app not found");
    };
    let running = app_json(&s, &id, app)["state"] == "running";
    match (&app.content, running) {
        (Some(content), true) => content.clone().into_response(),
        (Some(_), false) => error(StatusCode::SERVICE_UNAVAILABLE, "deploying"),
        (None, _) => error(StatusCode::NOT_FOUND, "app was not deployed by git push"),
    }
}

async fn remove(State(s): State<PlatformState>, Path(id): Path<String>) -> Response {
    let removed = lock(&s.inner.apps).remove(&id);
    match removed {
        Some(app) => {
            super::git::remove_repo(app.repo);
            StatusCode::NO_CONTENT.into_response()
        }
        None => error(StatusCode::NOT_FOUND, "app not found"),
    }
}

#[derive(Deserialize)]
struct Credentials {
    #[serde(default)]
    user: String,
    #[serde(default)]
    password: String,
}

async fn login(State(s): State<PlatformState>, Form(c): Form<Credentials>) -> Response {
    if c.user != s.inner.user || c.password != s.inner.password {
        return error(StatusCode::UNAUTHORIZED, "invalid credentials");
    }
    let token: String = (0..32)
        .map(|_| char::from(b'a' + rand::random_range(0..26u8)))
        .collect();
    lock(&s.inner.tokens).insert(token.clone());
    Json(json!({ "token": token })).into_response()
}

fn authorized(s: &PlatformState, headers: &HeaderMap) -> bool {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| lock(&s.inner.tokens).contains(t))
}

#[derive(Deserialize)]
struct RecordBody {
    value: Value,
}

async fn write(
    State(s): State<PlatformState>,
    Path((id, key)): Path<(String, String)>,
    headers: HeaderMap,
    Json(body): Json<RecordBody>,
) -> Response {
    if !authorized(&s, &headers) {
        return error(StatusCode::UNAUTHORIZED, "missing or invalid token");
    }
    let mut apps = lock(&s.inner.apps);
    let Some(app) = apps.get_mut(&id) else {
        return error(StatusCode::NOT_FOUND, "app not found");
    };
    let existed = app
        .records
        .insert(key.clone(), (body.value.clone(), Instant::now()))
        .is_some();
    let code = if existed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    (code, Json(json!({ "key": key, "value": body.value }))).into_response()
}

async fn read(
    State(s): State<PlatformState>,
    Path((id, key)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if !authorized(&s, &headers) {
        return error(StatusCode::UNAUTHORIZED, "missing or invalid token");
    }
    let apps = lock(&s.inner.apps);
    let Some(app) = apps.get(&id) else {
        return error(StatusCode::NOT_FOUND, "app not found");
    };
    match app.records.get(&key) {
        Some((value, at)) if at.elapsed() >= s.inner.read_delay => {
            Json(json!({ "key": key, "value": value })).into_response()
        }
        _ => error(StatusCode::NOT_FOUND, "record not found"),
    }
}

async fn faults(State(s): State<PlatformState>) -> Json<Vec<FaultSpec>> {
    Json(s.faults())
}

#[derive(Deserialize)]
struct FaultRequest {
    endpoint: String,
    mode: String,
    status: Option<u16>,
    delay_ms: Option<u64>,
    /// Only for requests from this location (`X-Lookout-Location`).
    location: Option<String>,
}

async fn inject(State(s): State<PlatformState>, Json(r): Json<FaultRequest>) -> Response {
    let spec = match (r.mode.as_str(), r.status, r.delay_ms) {
        ("error", Some(code), _) => format!("{}=error:{code}", r.endpoint),
        ("slow", _, Some(ms)) => format!("{}=slow:{ms}ms", r.endpoint),
        (mode, _, _) => format!("{}={mode}", r.endpoint),
    };
    match spec.parse::<FaultSpec>() {
        Ok(f) => match r.location {
            Some(l) => {
                s.inject_at(&l, f);
                Json(s.regional_faults()).into_response()
            }
            None => {
                s.inject(f);
                Json(s.faults()).into_response()
            }
        },
        Err(e) => error(StatusCode::BAD_REQUEST, &e.to_string()),
    }
}

async fn regional_faults(State(s): State<PlatformState>) -> Json<Vec<super::RegionalFault>> {
    Json(s.regional_faults())
}

async fn heal_all(State(s): State<PlatformState>) -> Json<Vec<FaultSpec>> {
    s.heal_all();
    Json(s.faults())
}
