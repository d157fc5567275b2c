//! TEMPORARY STUB.
use super::model::Pos;
use serde_json::Value;
#[derive(Debug, Clone)]
pub struct Template { pub source: String, pub parts: Vec<Part>, pub pos: Pos }
#[derive(Debug, Clone)]
pub enum Part { Lit(String), Expr(Expr) }
#[derive(Debug, Clone)]
pub enum Expr { Name { name: String, offset: usize }, Uuid, Now, Random(u64) }
#[derive(Debug, Clone)]
pub enum TemplateValue { Null, Bool(bool), Number(serde_json::Number), String(Template), Array(Vec<TemplateValue>), Object(Vec<(String, TemplateValue)>) }
pub trait Scope { fn lookup(&self, name: &str) -> Option<Value>; }
#[derive(Debug, thiserror::Error)]
pub enum RenderError { #[error("`{0}` is not defined")] Undefined(String) }
impl Template {
    pub fn render(&self, _s: &dyn Scope) -> Result<Value, RenderError> { Ok(Value::Null) }
    pub fn render_string(&self, _s: &dyn Scope) -> Result<String, RenderError> { Ok(String::new()) }
}
impl TemplateValue {
    pub fn render(&self, _s: &dyn Scope) -> Result<Value, RenderError> { Ok(Value::Null) }
}
