//! Configuration: probes.yaml → a validated, typed `Config`.
//!
//! Loading checks everything once (keys, types, references between
//! sections, every template name) and reports every problem at once with
//! its file:line:column; the rest of Lookout trusts the result.

mod agent;
mod decode;
pub mod diagnostic;
pub mod live;
pub mod model;
pub mod template;

use std::path::Path;

pub use agent::agent_document;
pub use diagnostic::{Diagnostic, Diagnostics};
pub use live::Live;
pub use model::*;

/// Whether every secret must be there: each `env:` variable set and each
/// `file:` present.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretsNeeded {
    /// `serve`: a missing secret is an error.
    All,
    /// `check` (in CI, where secrets are absent) and `run PROBE` (which
    /// needs only its probe's): an unset variable or a file that does not
    /// exist is noted in `Config::missing_secrets` and a stand-in keeps the
    /// structure whole; checks of values rendered from it (a URL, a token's
    /// length) are left to `serve`. A file that exists but cannot be read
    /// is still an error.
    Optional,
}

/// The largest configuration file read (16 MiB; 10,000 probes take ~2 MiB).
pub const MAX_FILE_BYTES: u64 = 16 << 20;

/// Loads `path`. Secrets' `env:` values come through `env`, so tests and the
/// demo can supply their own; `file:` paths are relative to the file.
pub fn load(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, Diagnostics> {
    load_with(path, env, SecretsNeeded::All)
}

/// Like [`load`], choosing whether missing secrets are errors.
///
/// Errors: the file is not a regular file (a directory, `/dev/zero`), is
/// larger than [`MAX_FILE_BYTES`], is not UTF-8, or fails validation.
pub fn load_with(
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    secrets: SecretsNeeded,
) -> Result<Config, Diagnostics> {
    let name = path.display().to_string();
    let fail = |message: String, label: Option<String>| {
        let d = Diagnostic {
            message,
            pos: Pos::default(),
            width: 1,
            label,
        };
        Diagnostics::new(&name, "", vec![d])
    };
    let source = read_bounded(path).map_err(|e| fail(format!("cannot read {name}: {e}"), None))?;
    let base = path.parent().unwrap_or(Path::new("."));
    decode::decode(&source, base, env, secrets == SecretsNeeded::Optional)
        .map_err(|items| Diagnostics::new(&name, &source, items))
}

/// Reads a regular file of at most [`MAX_FILE_BYTES`] as UTF-8.
fn read_bounded(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("it is not a regular file (a directory or a device?)".into());
    }
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(format!(
            "it is larger than {} MiB; split it or trim it",
            MAX_FILE_BYTES >> 20
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "it is not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        )
    })
}

/// The JSON Schema of probes.yaml, for editors (`lookout schema`).
pub const SCHEMA: &str = include_str!("../../schema/probes.schema.json");

/// The YAML document as plain JSON (no templates resolved), e.g. to check it
/// against `SCHEMA`.
///
/// Errors: what the loader also refuses before decoding (a BOM, a NUL
/// byte, a second document) and YAML syntax errors.
pub fn yaml_to_json(source: &str) -> Result<serde_json::Value, String> {
    if let Some(d) = decode::source_problem(source) {
        return Err(d.message);
    }
    let options = marked_yaml::LoaderOptions::default().prevent_coercion(true);
    marked_yaml::parse_yaml_with_options(0, source, options)
        .map(|node| decode::plain_value(&node))
        .map_err(|e| e.to_string())
}

pub fn parse(
    source: &str,
    file_name: &str,
    base_dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, Diagnostics> {
    decode::decode(source, base_dir, env, false)
        .map_err(|items| Diagnostics::new(file_name, source, items))
}
