//! Configuration: probes.yaml → a validated, typed `Config`.
//!
//! Loading checks everything once (keys, types, references between
//! sections, every template name) and reports every problem at once with
//! its file:line:column; the rest of Lookout trusts the result.

mod decode;
pub mod diagnostic;
pub mod live;
pub mod model;
pub mod template;

use std::path::Path;

pub use diagnostic::{Diagnostic, Diagnostics};
pub use live::Live;
pub use model::*;

/// Loads `path`. Secrets' `env:` values come through `env`, so tests and the
/// demo can supply their own; `file:` paths are relative to the file.
pub fn load(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, Diagnostics> {
    let name = path.display().to_string();
    let source = std::fs::read_to_string(path).map_err(|e| {
        let d = Diagnostic {
            message: format!("cannot read {name}: {e}"),
            pos: Pos::default(),
            width: 1,
            label: None,
        };
        Diagnostics::new(&name, "", vec![d])
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    parse(&source, &name, base, env)
}

/// The JSON Schema of probes.yaml, for editors (`lookout schema`).
pub const SCHEMA: &str = include_str!("../../schema/probes.schema.json");

/// The YAML document as plain JSON (no templates resolved), e.g. to check it
/// against `SCHEMA`.
pub fn yaml_to_json(source: &str) -> Result<serde_json::Value, String> {
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
    decode::decode(source, base_dir, env)
        .map_err(|items| Diagnostics::new(file_name, source, items))
}
