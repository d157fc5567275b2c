//! Which template names are in scope at a point of the file, and the
//! did-you-mean when one is not.

use std::collections::BTreeMap;

use super::Ctx;
use crate::config::diagnostic::suggest;
use crate::config::model::Pos;

/// Names visible to a template besides `vars` and `secrets.*`.
#[derive(Default)]
pub struct Names<'a> {
    /// Captures of earlier steps.
    pub captures: Vec<String>,
    /// Captures of later steps, with the step that makes each.
    pub later: BTreeMap<String, String>,
    /// Whether `run.*` builtins exist here (in journeys, not in notifiers).
    pub in_run: bool,
    /// Where this is, for messages: "step `login` of probe `x`".
    pub context: &'a str,
}

const RUN_NAMES: [&str; 2] = ["run.id", "run.started_at"];

impl Names<'_> {
    pub fn check(&self, ctx: &mut Ctx<'_>, name: &str, at: Pos) {
        if self.defined(ctx, name) {
            return;
        }
        let width = name.chars().count();
        let where_ = if self.context.is_empty() {
            String::new()
        } else {
            format!(" in {}", self.context)
        };
        if let Some(step) = self.later.get(name) {
            ctx.error(
                at,
                width,
                format!("`{name}` is used before it is captured{where_}"),
                Some(format!(
                    "`{name}` is captured by step `{step}`, which runs later"
                )),
            );
            return;
        }
        let candidates = self.all(ctx);
        let label = match suggest(name, candidates.iter().map(String::as_str)) {
            Some(s) => format!("did you mean `{s}`?"),
            None if candidates.is_empty() => "nothing is defined here".to_string(),
            None => format!("defined here: {}", candidates.join(", ")),
        };
        ctx.error(
            at,
            width,
            format!("undefined name `{name}`{where_}"),
            Some(label),
        );
    }

    fn defined(&self, ctx: &Ctx<'_>, name: &str) -> bool {
        if let Some(secret) = name.strip_prefix("secrets.") {
            return ctx.declared.contains(secret);
        }
        (self.in_run && RUN_NAMES.contains(&name))
            || ctx.vars.contains_key(name)
            || self.captures.iter().any(|c| c == name)
    }

    fn all(&self, ctx: &Ctx<'_>) -> Vec<String> {
        let mut all: Vec<String> = ctx.vars.keys().cloned().collect();
        all.extend(ctx.declared.iter().map(|s| format!("secrets.{s}")));
        all.extend(self.captures.iter().cloned());
        if self.in_run {
            all.extend(RUN_NAMES.iter().map(|s| s.to_string()));
        }
        all
    }
}
