//! Publishing the status page as static files: on every change (and once a
//! minute, for changes that come with the clock) the whole public site is
//! rendered and written to `page.publish.dir`, each file replaced
//! atomically, so any static web server or bucket sync can serve it while
//! the prober's own machine is down.
//!
//! A path without an extension is written as `<path>/index.html` (`/` →
//! `index.html`, `/incidents/7` → `incidents/7/index.html`); others keep
//! their name (`api/v2/summary.json`, `history.atom`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::web::{AppState, site};

/// The file a site path is written to, under `dir`.
pub fn file_for(dir: &Path, path: &str) -> PathBuf {
    let rel = path.trim_start_matches('/');
    let last = rel.rsplit('/').next().unwrap_or("");
    if rel.is_empty() || !last.contains('.') {
        dir.join(rel).join("index.html")
    } else {
        dir.join(rel)
    }
}

/// Writes `bytes` to `file` through a temporary file and a rename, so a
/// reader sees the old file or the new one, never half of one.
fn write_atomically(file: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(parent) = file.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = file.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, file)
}

/// Renders and writes every public document once. Returns files written.
pub async fn publish_once(app: &AppState, dir: &Path) -> Result<usize, String> {
    let paths = site::paths(app).await.map_err(|e| e.to_string())?;
    let mut written = 0;
    for path in paths {
        let Some(doc) = site::render(app, &path).await.map_err(|e| e.to_string())? else {
            continue;
        };
        let file = file_for(dir, &path);
        let dir = dir.to_path_buf();
        let result = tokio::task::spawn_blocking(move || write_atomically(&file, &doc.body)).await;
        match result {
            Ok(Ok(())) => written += 1,
            Ok(Err(e)) => return Err(format!("writing {path} under {}: {e}", dir.display())),
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(written)
}

/// Publishes at start, after each change (coalescing bursts), and every
/// minute, until `shutdown`.
pub async fn run(app: AppState, dir: PathBuf, shutdown: impl std::future::Future<Output = ()>) {
    tokio::pin!(shutdown);
    let mut published = None;
    loop {
        let generation = app.changes.generation();
        if published != Some(generation) || published.is_none() {
            match publish_once(&app, &dir).await {
                Ok(n) => {
                    tracing::debug!(files = n, dir = %dir.display(), "published the status page");
                    published = Some(generation);
                }
                Err(e) => tracing::error!(error = %e, "could not publish the status page"),
            }
        }
        tokio::select! {
            _ = &mut shutdown => return,
            _ = app.changes.changed() => {
                // Let a burst of changes settle into one publication.
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            _ = tokio::time::sleep(Duration::from_secs(60)) => { published = None; }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_files_a_static_server_finds() {
        let d = Path::new("/site");
        assert_eq!(file_for(d, "/"), Path::new("/site/index.html"));
        assert_eq!(
            file_for(d, "/history"),
            Path::new("/site/history/index.html")
        );
        assert_eq!(
            file_for(d, "/incidents/7"),
            Path::new("/site/incidents/7/index.html")
        );
        assert_eq!(
            file_for(d, "/history.atom"),
            Path::new("/site/history.atom")
        );
        assert_eq!(
            file_for(d, "/api/v2/incidents/unresolved.json"),
            Path::new("/site/api/v2/incidents/unresolved.json")
        );
    }
}
