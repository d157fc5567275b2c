//! TEMPORARY STUB until the real loader lands.
pub mod model;
pub mod template;
pub use model::*;
use std::path::Path;
#[derive(Debug)]
pub struct Diagnostics;
impl Diagnostics {
    pub fn render(&self) -> String { String::new() }
    pub fn to_json(&self) -> serde_json::Value { serde_json::Value::Null }
}
pub fn load(_path: &Path, _env: &dyn Fn(&str) -> Option<String>) -> Result<Config, Diagnostics> { Err(Diagnostics) }
