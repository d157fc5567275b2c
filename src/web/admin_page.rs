//! The small admin page: log in with the admin token, then see the probes
//! overview, post public updates, open incidents by hand and edit them
//! through plain HTML forms; and a run's trace (`/admin/runs/{id}`).
//!
//! The session is a signed, expiring cookie (HttpOnly, SameSite=Strict);
//! every form carries a CSRF token bound to the session, so a page on
//! another site cannot make an operator's browser post here.

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::admin::probes::OverviewQuery;
use super::admin::{UpdateBody, check_update};
use super::{AppState, WebError, html};
use crate::console::Filter;
use crate::statuspage::view::{self, IncidentView};
use crate::store::{ManualIncident, PublicUpdate};

const COOKIE: &str = "lookout_admin";
const SESSION_HOURS: i64 = 12;

fn mac(app: &AppState, msg: &str) -> Option<String> {
    let config = app.config.get();
    let key = config.admin.token.as_ref()?;
    let mut m = Hmac::<Sha256>::new_from_slice(key.expose().as_bytes()).ok()?;
    m.update(msg.as_bytes());
    Some(crate::human::hex(&m.finalize().into_bytes()))
}

fn same(a: &str, b: &str) -> bool {
    crate::notify::signing::same_bytes(a.as_bytes(), b.as_bytes())
}

/// A new session value: `<expiry>.<hmac>`.
fn new_session(app: &AppState) -> Option<String> {
    let expires = (Utc::now() + chrono::Duration::hours(SESSION_HOURS)).timestamp();
    Some(format!(
        "{expires}.{}",
        mac(app, &format!("session.{expires}"))?
    ))
}

/// The valid session of the request, if any.
pub(super) fn session(app: &AppState, headers: &HeaderMap) -> Option<String> {
    let cookies = headers.get(header::COOKIE)?.to_str().ok()?;
    let value = cookies
        .split(';')
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)?
        .1;
    let (expires, sig) = value.split_once('.')?;
    let expires: i64 = expires.parse().ok()?;
    if expires < Utc::now().timestamp() {
        return None;
    }
    same(sig, &mac(app, &format!("session.{expires}"))?).then(|| value.to_string())
}

pub(super) fn csrf_for(app: &AppState, session: &str) -> String {
    mac(app, &format!("csrf.{session}")).unwrap_or_default()
}

/// The session, if the form's CSRF token belongs to it.
pub(super) fn authorized_form(
    app: &AppState,
    headers: &HeaderMap,
    csrf: Option<&str>,
) -> Result<String, Box<Response>> {
    let Some(s) = session(app, headers) else {
        return Err(Box::new(login_page(app, StatusCode::UNAUTHORIZED, None)));
    };
    match csrf {
        Some(t) if same(t, &csrf_for(app, &s)) => Ok(s),
        _ => {
            tracing::warn!("admin form refused: missing or wrong CSRF token");
            Err(Box::new(
                (StatusCode::FORBIDDEN, "invalid CSRF token; reload the page").into_response(),
            ))
        }
    }
}

#[derive(Template)]
#[template(path = "admin_login.html")]
struct LoginPage<'a> {
    title: &'a str,
    error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "admin.html")]
struct AdminPage<'a> {
    title: &'a str,
    csrf: &'a str,
    open: &'a [IncidentView],
    components: Vec<(String, String)>,
    notice: Option<&'a str>,
    /// The last rejected probes.yaml, while the running one stays.
    rejected: Option<(String, String)>,
    /// The probes overview (`templates/console_overview.html`).
    overview: super::console::OverviewView,
    /// Each open incident's probes (in `open`'s order): name, still failing.
    incident_probes: Vec<Vec<(String, bool)>>,
    /// Silent agents' locations (issue 18): id, last report in words.
    silent: Vec<(String, String)>,
    /// The cluster: instances, roles, the leader, the last takeover.
    cluster: ClusterSection,
}

/// The admin page's cluster section, in the page's time zone.
struct ClusterSection {
    /// This instance: its identity and role.
    me: (String, &'static str),
    clustered: bool,
    /// The leader's identity and since when, if known.
    leader: Option<(String, String)>,
    instances: Vec<InstanceLine>,
    /// When, who, the leader before it, why.
    takeover: Option<(String, String, String, String)>,
}

struct InstanceLine {
    id: String,
    host: String,
    version: String,
    role: String,
    started: String,
    last_seen: String,
    up: bool,
}

async fn cluster_section(app: &AppState, tz: &chrono_tz::Tz) -> Result<ClusterSection, WebError> {
    let o = crate::cluster::overview(&app.store, &app.cluster, Utc::now()).await?;
    Ok(ClusterSection {
        me: (o.me.instance.clone(), o.me.role),
        clustered: o.me.clustered,
        leader: o.leader.map(|l| {
            let since = l.since.map(|t| view::local(&t, tz)).unwrap_or_default();
            (l.instance, since)
        }),
        instances: o
            .instances
            .into_iter()
            .map(|i| InstanceLine {
                started: view::local(&i.row.started_at, tz),
                last_seen: view::local(&i.row.last_seen, tz),
                id: i.row.id,
                host: i.row.host,
                version: i.row.version,
                role: i.row.role,
                up: i.up,
            })
            .collect(),
        takeover: o.last_takeover.map(|t| {
            (
                view::local(&t.at, tz),
                t.instance,
                t.previous.unwrap_or_else(|| "none".into()),
                t.reason,
            )
        }),
    })
}

impl AdminPage<'_> {
    /// The probes of the `i`-th open incident, each linked to its page.
    fn probes_of(&self, i: &usize) -> &[(String, bool)] {
        self.incident_probes.get(*i).map_or(&[], |v| v.as_slice())
    }

    fn statuses(&self) -> &'static [&'static str] {
        &["investigating", "identified", "monitoring", "resolved"]
    }

    fn component_states(&self) -> &'static [&'static str] {
        &[
            "operational",
            "degraded_performance",
            "partial_outage",
            "major_outage",
            "under_maintenance",
        ]
    }
}

pub(super) fn login_page(app: &AppState, status: StatusCode, error: Option<&str>) -> Response {
    let body = LoginPage {
        title: &app.config.get().page.title,
        error,
    }
    .render();
    match body {
        Ok(b) => (status, html(b)).into_response(),
        Err(e) => WebError::from(e).into_response(),
    }
}

/// `GET /admin[?state=&component=&q=]`: the login form, or the operators'
/// page: the probes overview (filtered as `GET /api/admin/probes` is),
/// open incidents and the forms.
pub async fn index(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<OverviewQuery>,
    Query(paged): Query<super::console::PageQuery>,
) -> Response {
    let Some(s) = session(&app, &headers) else {
        return login_page(&app, StatusCode::UNAUTHORIZED, None);
    };
    let filter = match query.filter() {
        Ok(f) => f,
        Err(e) => return e.into_response(),
    };
    match render(&app, &s, &filter, paged.page.unwrap_or(1), None).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn render(
    app: &AppState,
    session: &str,
    filter: &Filter,
    page: usize,
    notice: Option<&str>,
) -> Result<Response, WebError> {
    let config = app.config.get();
    let mut overview = super::admin::probes::overview(app, filter, Utc::now()).await?;
    let paging = super::console::page(&mut overview.probes, page, filter);
    let components: Vec<(String, String)> = config
        .components
        .iter()
        .map(|c| (c.id.clone(), c.name.clone()))
        .collect();
    let mut open = Vec::new();
    let mut incident_probes = Vec::new();
    for inc in app.store.open_incidents().await? {
        incident_probes.push(app.store.incident_probes(inc.id).await?);
        open.push(view::incident(&config, &app.store, inc, true).await?);
    }
    let page = AdminPage {
        title: &config.page.title,
        csrf: &csrf_for(app, session),
        open: &open,
        overview: super::console::OverviewView {
            paging,
            ..super::console::overview(
                &overview,
                filter,
                components.clone(),
                &config.page.time_zone,
            )
        },
        components,
        notice,
        incident_probes,
        silent: app
            .health
            .snapshot()
            .silent
            .into_iter()
            .map(|s| {
                let last = s.last_report.map_or_else(
                    || "never reported since the start".to_string(),
                    |t| format!("last report {}", view::local(&t, &config.page.time_zone)),
                );
                (s.location, last)
            })
            .collect(),
        cluster: cluster_section(app, &config.page.time_zone).await?,
        rejected: {
            let s = app.reloads.status();
            s.error
                .zip(s.error_at)
                .map(|(e, at)| (e, view::local(&at, &config.page.time_zone)))
        },
    };
    let mut resp = html(page.render()?);
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

#[derive(serde::Deserialize)]
pub struct LoginForm {
    token: String,
}

/// `POST /admin/login`: trades the admin token for a session cookie.
pub async fn login(State(app): State<AppState>, Form(f): Form<LoginForm>) -> Response {
    let ok = app
        .config
        .get()
        .admin
        .token
        .as_ref()
        .is_some_and(|t| same(t.expose(), f.token.trim()));
    if !ok {
        tracing::warn!("admin login refused");
        return login_page(
            &app,
            StatusCode::UNAUTHORIZED,
            Some("That token is not valid."),
        );
    }
    let Some(value) = new_session(&app) else {
        return login_page(&app, StatusCode::UNAUTHORIZED, None);
    };
    // The scheme as a URL parser reads it (`HTTPS://…` is https too).
    let https = url::Url::parse(&app.base_url).is_ok_and(|u| u.scheme() == "https");
    let secure = if https { "; Secure" } else { "" };
    let cookie = format!(
        "{COOKIE}={value}; Path=/admin; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        SESSION_HOURS * 3600
    );
    let mut resp = Redirect::to("/admin").into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

/// Form fields: `csrf`, `status`, `body`, and `c_<component>` = state or "".
type Fields = BTreeMap<String, String>;

fn update_from(fields: &Fields) -> UpdateBody {
    UpdateBody {
        status: fields.get("status").cloned().unwrap_or_default(),
        body: fields.get("body").cloned().unwrap_or_default(),
        components: fields
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix("c_")?.to_string(), v.clone())))
            .filter(|(_, v)| !v.is_empty())
            .collect(),
        by: Some("admin page".into()),
    }
}

/// `POST /admin/incidents/{id}/updates`.
pub async fn post_update(
    State(app): State<AppState>,
    Path(id): Path<i64>,
    headers: HeaderMap,
    Form(fields): Form<Fields>,
) -> Response {
    let s = match authorized_form(&app, &headers, fields.get("csrf").map(String::as_str)) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let u = update_from(&fields);
    let result = async {
        let affected = check_update(&app, &u)?;
        let update = PublicUpdate {
            status: &u.status,
            body: &u.body,
            affected: &affected,
            author: "admin page",
        };
        super::admin::posted(app.store.post_update(id, &update, Utc::now()).await?)?;
        app.changes.bump();
        super::admin::announce(&app).await;
        Ok(())
    }
    .await;
    finish(&app, &s, result).await
}

/// `POST /admin/incidents`: opens an incident by hand.
pub async fn open_incident(
    State(app): State<AppState>,
    headers: HeaderMap,
    Form(fields): Form<Fields>,
) -> Response {
    let s = match authorized_form(&app, &headers, fields.get("csrf").map(String::as_str)) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let u = update_from(&fields);
    let name = fields.get("name").cloned().unwrap_or_default();
    let impact = fields.get("impact").cloned().unwrap_or_default();
    let result = async {
        let affected = check_update(&app, &u)?;
        let Some((component, _)) = affected.first() else {
            return Err(WebError::BadRequest(
                "choose at least one affected component".into(),
            ));
        };
        if name.trim().is_empty()
            || !["none", "minor", "major", "critical"].contains(&impact.as_str())
        {
            return Err(WebError::BadRequest(
                "a title and an impact are required".into(),
            ));
        }
        let m = ManualIncident {
            title: &name,
            impact: &impact,
            component,
            update: PublicUpdate {
                status: &u.status,
                body: &u.body,
                affected: &affected,
                author: "admin page",
            },
        };
        app.store.open_manual_incident(&m, Utc::now()).await?;
        app.changes.bump();
        super::admin::announce(&app).await;
        Ok(())
    }
    .await;
    finish(&app, &s, result).await
}

async fn finish(app: &AppState, session: &str, result: Result<(), WebError>) -> Response {
    match result {
        Ok(()) => Redirect::to("/admin").into_response(),
        Err(e @ (WebError::BadRequest(_) | WebError::Conflict(_))) => {
            let status = match e {
                WebError::Conflict(_) => StatusCode::CONFLICT,
                _ => StatusCode::BAD_REQUEST,
            };
            match render(app, session, &Filter::default(), 1, Some(&e.to_string())).await {
                Ok(mut r) => {
                    *r.status_mut() = status;
                    r
                }
                Err(e) => e.into_response(),
            }
        }
        Err(e) => e.into_response(),
    }
}

#[derive(Template)]
#[template(path = "console_run.html")]
struct RunPage<'a> {
    title: &'a str,
    run: &'a str,
    probe: &'a str,
    outcome: &'a str,
    when: String,
    /// The whole trace (`journey::trace`), secrets masked when stored.
    trace: String,
}

/// `GET /admin/runs/{id}`: one stored run's trace, as `lookout run`
/// prints it (admin session; the login form without one, 404 for an
/// unknown run).
pub async fn run_page(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if session(&app, &headers).is_none() {
        return login_page(&app, StatusCode::UNAUTHORIZED, None);
    }
    let rendered = async {
        let Some((row, steps)) = app.store.run_by_uid(&id).await? else {
            return Err(WebError::NotFound);
        };
        let config = app.config.get();
        let page = RunPage {
            title: &config.page.title,
            run: &row.run_uid,
            probe: &row.probe,
            outcome: row.outcome.map_or("unknown", |o| o.as_str()),
            when: super::console::when(&row.started_at, &config.page.time_zone),
            trace: crate::journey::trace::trace(&crate::store::run_result(&row, &steps)),
        };
        let mut resp = html(page.render()?);
        resp.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        Ok(resp)
    };
    rendered.await.unwrap_or_else(|e| e.into_response())
}
