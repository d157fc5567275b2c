//! Configuration errors as people read them: a message, the file position,
//! the source line with a caret underline and a hint.
//!
//! ```text
//! error: unknown key `timout` in step `read-back` of probe `deploy`
//!   --> probes.yaml:41:9
//!    |
//! 41 |         timout: 3s
//!    |         ^^^^^^ did you mean `timeout`?
//! ```

use std::fmt;

use serde_json::json;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub message: String,
    pub pos: Pos,
    /// Length of the underline, in characters (at least 1).
    pub width: usize,
    /// Shown after the carets: a suggestion or an example.
    pub label: Option<String>,
}

/// A position in the configuration file (1-based line and column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

/// Every problem found in one file, sorted by position.
#[derive(Debug, Clone)]
pub struct Diagnostics {
    pub file: String,
    pub source: String,
    pub items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn new(file: &str, source: &str, mut items: Vec<Diagnostic>) -> Self {
        items.sort_by(|a, b| a.pos.cmp(&b.pos).then_with(|| a.message.cmp(&b.message)));
        items.dedup();
        Self {
            file: file.to_string(),
            source: source.to_string(),
            items,
        }
    }

    pub fn render(&self) -> String {
        let blocks: Vec<String> = self.items.iter().map(|d| self.render_one(d)).collect();
        blocks.join("\n")
    }

    fn render_one(&self, d: &Diagnostic) -> String {
        let mut out = format!("error: {}\n", d.message);
        if d.pos.line == 0 {
            out.push_str(&format!("  --> {}\n", self.file));
            return out;
        }
        let line_text = self.source.lines().nth(d.pos.line - 1).unwrap_or("");
        let num = d.pos.line.to_string();
        let gutter = " ".repeat(num.len());
        out.push_str(&format!(
            "{gutter}--> {}:{}:{}\n",
            self.file, d.pos.line, d.pos.column
        ));
        out.push_str(&format!("{gutter} |\n"));
        out.push_str(&format!("{num} | {line_text}\n"));
        let pad = " ".repeat(d.pos.column.saturating_sub(1));
        let carets = "^".repeat(d.width.max(1));
        match &d.label {
            Some(label) => out.push_str(&format!("{gutter} | {pad}{carets} {label}\n")),
            None => out.push_str(&format!("{gutter} | {pad}{carets}\n")),
        }
        out
    }

    pub fn to_json(&self) -> serde_json::Value {
        json!(
            self.items
                .iter()
                .map(|d| json!({
                    "file": self.file,
                    "line": d.pos.line,
                    "column": d.pos.column,
                    "width": d.width,
                    "message": d.message,
                    "label": d.label,
                }))
                .collect::<Vec<_>>()
        )
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render())
    }
}

impl std::error::Error for Diagnostics {}

/// The closest candidate within a small edit distance, for "did you mean".
pub fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = if word.chars().count() <= 3 { 1 } else { 2 };
    candidates
        .into_iter()
        .map(|c| (distance(word, c), c))
        .filter(|(d, c)| {
            *d <= limit
                || (word.len() >= 3 && c.starts_with(word))
                || (c.len() >= 2 && word.starts_with(c))
        })
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Damerau-Levenshtein (optimal string alignment) distance.
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_caret_format() {
        let src = "a: 1\nsteps:\n  - timout: 3s\n";
        let d = Diagnostics::new(
            "probes.yaml",
            src,
            vec![Diagnostic {
                message: "unknown key `timout`".into(),
                pos: Pos { line: 3, column: 5 },
                width: 6,
                label: Some("did you mean `timeout`?".into()),
            }],
        );
        assert_eq!(
            d.render(),
            "error: unknown key `timout`\n --> probes.yaml:3:5\n  |\n3 |   - timout: 3s\n  |     ^^^^^^ did you mean `timeout`?\n"
        );
    }

    #[test]
    fn suggests_close_words_only() {
        assert_eq!(suggest("timout", ["timeout", "retry"]), Some("timeout"));
        assert_eq!(suggest("evrey", ["every", "cron"]), Some("every"));
        assert_eq!(suggest("zzz", ["every", "cron"]), None);
    }
}
