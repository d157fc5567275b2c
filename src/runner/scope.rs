//! The names a journey's templates can see while it runs.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::config::Config;
use crate::config::template::Scope;

/// Vars, secrets, builtins and the captures made so far in this run.
pub struct RunScope<'a> {
    config: &'a Config,
    run_id: String,
    started_at: DateTime<Utc>,
    captures: BTreeMap<String, Value>,
}

impl<'a> RunScope<'a> {
    pub fn new(config: &'a Config, run_id: String, started_at: DateTime<Utc>) -> Self {
        Self {
            config,
            run_id,
            started_at,
            captures: BTreeMap::new(),
        }
    }

    pub fn capture(&mut self, name: &str, value: Value) {
        self.captures.insert(name.to_string(), value);
    }

    pub fn captures(&self) -> &BTreeMap<String, Value> {
        &self.captures
    }

    pub fn is_defined(&self, name: &str) -> bool {
        self.captures.get(name).is_some_and(|v| !v.is_null())
    }
}

impl Scope for RunScope<'_> {
    fn lookup(&self, name: &str) -> Option<Value> {
        if let Some(v) = self.captures.get(name) {
            return Some(v.clone());
        }
        if let Some(secret) = name.strip_prefix("secrets.") {
            let s = self.config.secrets.get(secret)?;
            return Some(Value::String(s.expose().to_string()));
        }
        match name {
            "run.id" => Some(Value::String(self.run_id.clone())),
            "run.started_at" => Some(Value::String(self.started_at.to_rfc3339())),
            _ => self.config.vars.get(name).cloned(),
        }
    }
}
