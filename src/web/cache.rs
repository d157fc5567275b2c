//! Public pages served from memory: each document is rendered once per
//! change (or after a short time, for changes that come with the clock such
//! as a maintenance window starting), kept with a strong ETag and a gzip
//! copy, and answered with 304 to a matching `If-None-Match`.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use tokio::sync::{Mutex, RwLock};

use super::WebError;

/// A rendered document.
pub struct Rendered {
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

/// Even without a change, a document is re-rendered this often: windows
/// start and end, and relative times move on.
const MAX_AGE: Duration = Duration::from_secs(10);
/// Bound on cached documents (incident permalinks are many).
const MAX_ENTRIES: usize = 2048;

pub struct Entry {
    generation: u64,
    made: Instant,
    pub content_type: &'static str,
    pub body: axum::body::Bytes,
    gzip: axum::body::Bytes,
    pub etag: String,
}

#[derive(Clone, Default)]
pub struct Cache {
    entries: Arc<RwLock<HashMap<String, Arc<Entry>>>>,
    /// One render at a time: a flood after a change renders once.
    rendering: Arc<Mutex<()>>,
}

impl Cache {
    fn fresh(e: &Entry, generation: u64) -> bool {
        e.generation == generation && e.made.elapsed() < MAX_AGE
    }

    /// The document at `path`, from memory when fresh for `generation` (the
    /// count of changes that alter pages), else made by `render` (`None`: no
    /// such document) and kept.
    pub async fn get<F, Fut>(
        &self,
        generation: u64,
        path: &str,
        render: F,
    ) -> Result<Option<Arc<Entry>>, WebError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Option<Rendered>, WebError>>,
    {
        if let Some(e) = self.entries.read().await.get(path)
            && Self::fresh(e, generation)
        {
            return Ok(Some(e.clone()));
        }
        let _one = self.rendering.lock().await;
        if let Some(e) = self.entries.read().await.get(path)
            && Self::fresh(e, generation)
        {
            return Ok(Some(e.clone()));
        }
        let Some(rendered) = render().await? else {
            return Ok(None);
        };
        let entry = Arc::new(entry(rendered, generation));
        let mut entries = self.entries.write().await;
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(path.to_string(), entry.clone());
        Ok(Some(entry))
    }
}

fn entry(r: Rendered, generation: u64) -> Entry {
    let digest = Sha256::digest(&r.body);
    let etag = format!("\"{}\"", crate::human::hex(&digest[..12]));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let gzip = gz
        .write_all(&r.body)
        .and_then(|_| gz.finish())
        .unwrap_or_default();
    Entry {
        generation,
        made: Instant::now(),
        content_type: r.content_type,
        body: r.body.into(),
        gzip: gzip.into(),
        etag,
    }
}

/// Answers with a cached document: 304 when the client has it, gzip when
/// accepted.
pub fn respond(found: Result<Option<Arc<Entry>>, WebError>, request: &HeaderMap) -> Response {
    let e = match found {
        Ok(Some(e)) => e,
        Ok(None) => return WebError::NotFound.into_response(),
        Err(err) => return err.into_response(),
    };
    let mut headers = HeaderMap::new();
    let etag = HeaderValue::from_str(&e.etag).expect("hex in quotes is a valid header");
    headers.insert(header::ETAG, etag);
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=10"),
    );
    headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    let matches = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "*" || v.split(',').any(|t| t.trim() == e.etag));
    if matches {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(e.content_type),
    );
    let gzip_ok = request
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim().starts_with("gzip")));
    let body = if gzip_ok && !e.gzip.is_empty() {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        e.gzip.clone()
    } else {
        e.body.clone()
    };
    (StatusCode::OK, headers, Body::from(body)).into_response()
}
