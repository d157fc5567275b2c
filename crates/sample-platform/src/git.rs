//! Deploys by `git push`: Git's smart HTTP protocol served by Git's own
//! `git http-backend` as a CGI program (RFC 3875; see git-http-backend(1)),
//! one bare repository per app under the platform's git root.
//!
//! `git push http://127.0.0.1:8081/git/NAME.git HEAD:main` creates the app
//! `NAME` (its id is its name) if it is new, and deploys the pushed
//! `main`: the app is `deploying`, then `running` after the deploy delay,
//! and `GET /apps/NAME/live` serves the pushed tree's `version` file. The
//! `push` fault endpoint breaks pushes: `push=error:403` rejects them,
//! `push=slow:5s` delays them, `push=hang` never answers.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use super::{App, PlatformState, lock};

/// The file of the pushed tree an app serves at `/apps/{id}/live`.
pub const SERVED_FILE: &str = "version";

/// The branch a push deploys.
pub const DEPLOYED_BRANCH: &str = "main";

/// Whether `name` may name an app's repository: 1 to 64 of `a-z 0-9 -`,
/// not starting with `-` (it becomes a directory and a git argument).
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && !name.starts_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// `/git/{repo}/{*rest}`: the smart HTTP exchange, through `git
/// http-backend`; a successful `git-receive-pack` deploys the app.
pub async fn serve(
    State(s): State<PlatformState>,
    UrlPath((repo, rest)): UrlPath<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(name) = repo.strip_suffix(".git").filter(|n| valid_name(n)) else {
        return (StatusCode::NOT_FOUND, "no such repository\n").into_response();
    };
    let root = s.git_root().to_path_buf();
    let dir = root.join(&repo);
    if !dir.exists()
        && let Err(e) = init_bare(&dir).await
    {
        return (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response();
    }
    let pushing = rest == "git-receive-pack" && method == Method::POST;
    let cgi = match backend(&root, &repo, &rest, &method, &uri, &headers, body).await {
        Ok(out) => out,
        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    };
    let response = cgi_response(cgi);
    if pushing && response.status().is_success() {
        deploy(&s, name, &dir).await;
    }
    response
}

async fn init_bare(dir: &Path) -> std::io::Result<()> {
    let out = Command::new("git")
        .args([
            "init",
            "--quiet",
            "--bare",
            "--initial-branch",
            DEPLOYED_BRANCH,
        ])
        .arg(dir)
        .stdin(Stdio::null())
        .output()
        .await?;
    match out.status.success() {
        true => Ok(()),
        false => Err(std::io::Error::other(format!(
            "git init failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))),
    }
}

/// Runs `git http-backend` with the CGI variables of this request.
async fn backend(
    root: &Path,
    repo: &str,
    rest: &str,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
) -> std::io::Result<Vec<u8>> {
    let header = |h: &str| {
        headers
            .get(h)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let mut cmd = Command::new("git");
    cmd.arg("http-backend")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("GIT_PROJECT_ROOT", root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        // http-backend lets an authenticated user push (http.receivepack).
        .env("REMOTE_USER", "deployer")
        .env("REMOTE_ADDR", "127.0.0.1")
        .env("GATEWAY_INTERFACE", "CGI/1.1")
        .env("PATH_INFO", format!("/{repo}/{rest}"))
        .env("REQUEST_METHOD", method.as_str())
        .env("QUERY_STRING", uri.query().unwrap_or(""))
        .env("CONTENT_TYPE", header("content-type"))
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("HTTP_CONTENT_ENCODING", header("content-encoding"))
        .env("GIT_PROTOCOL", header("git-protocol"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    let mut child = cmd.spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(&body).await?;
    }
    Ok(child.wait_with_output().await?.stdout)
}

/// A CGI program's output (headers, a blank line, the body) as a response;
/// `Status:` sets the status (RFC 3875 §6.3.3).
fn cgi_response(out: Vec<u8>) -> Response {
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4))
        .or_else(|| out.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2)));
    let Some((end, gap)) = split else {
        return (
            StatusCode::BAD_GATEWAY,
            "git http-backend answered nothing\n",
        )
            .into_response();
    };
    let head = String::from_utf8_lossy(&out[..end]).into_owned();
    let mut response = Response::new(Body::from(out[end + gap..].to_vec()));
    for line in head.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim();
        if k.eq_ignore_ascii_case("status") {
            let code = v.split(' ').next().and_then(|c| c.parse().ok());
            *response.status_mut() = code
                .and_then(|c| StatusCode::from_u16(c).ok())
                .unwrap_or(StatusCode::BAD_GATEWAY);
        } else if let (Ok(k), Ok(v)) = (HeaderName::try_from(k), HeaderValue::try_from(v)) {
            response.headers_mut().insert(k, v);
        }
    }
    response
}

/// Deploys the pushed `main`: the app `name` (created if new) now serves
/// its `version` file, once the deploy delay has passed.
async fn deploy(s: &PlatformState, name: &str, dir: &Path) {
    let spec = format!("{DEPLOYED_BRANCH}:{SERVED_FILE}");
    let shown = Command::new("git")
        .arg("--git-dir")
        .arg(dir)
        .args(["show", &spec])
        .stdin(Stdio::null())
        .output()
        .await;
    let content = match shown {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).into_owned(),
        _ => String::new(),
    };
    let mut apps = lock(&s.inner.apps);
    let app = apps.entry(name.to_string()).or_insert_with(|| App {
        name: name.to_string(),
        created: Instant::now(),
        records: Default::default(),
        content: None,
        repo: None,
    });
    app.created = Instant::now();
    app.content = Some(content);
    app.repo = Some(dir.to_path_buf());
}

/// Removes an app's repository (when the app is deleted).
pub fn remove_repo(dir: Option<PathBuf>) {
    if let Some(dir) = dir {
        let _ = std::fs::remove_dir_all(dir);
    }
}
