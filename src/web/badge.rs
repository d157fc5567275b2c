//! Shields-style SVG badges for READMEs and dashboards:
//! `/badge/{component}/status.svg` (the state shown on the page) and
//! `/badge/{component}/uptime.svg` (the 90-day uptime of `/uptime`). The
//! component's name is the label, escaped as XML text; an unknown component
//! is a 404.

use askama::Template;
use chrono::Utc;

use super::cache::Rendered;
use super::{AppState, WebError};
use crate::evaluate::ComponentStatus;
use crate::statuspage::view::PageView;
use crate::uptime;

#[derive(Template)]
#[template(path = "badge.svg", escape = "html")]
struct Badge {
    label: String,
    value: String,
    color: &'static str,
    label_width: u32,
    value_width: u32,
}

impl Badge {
    fn new(label: &str, value: String, color: &'static str) -> Self {
        let label = crate::human::truncate(label, 40);
        Badge {
            label_width: text_width(&label) + 10,
            value_width: text_width(&value) + 10,
            label,
            value,
            color,
        }
    }

    fn width(&self) -> u32 {
        self.label_width + self.value_width
    }

    fn label_x(&self) -> String {
        format!("{:.1}", f64::from(self.label_width) / 2.0)
    }

    fn value_x(&self) -> String {
        format!(
            "{:.1}",
            f64::from(self.label_width) + f64::from(self.value_width) / 2.0
        )
    }
}

/// Approximate width of `s` in 11px Verdana (what shields-style badges use).
fn text_width(s: &str) -> u32 {
    let w: f64 = s
        .chars()
        .map(|c| match c {
            'i' | 'j' | 'l' | '.' | ',' | ':' | ';' | '\'' | '|' | '!' => 3.5,
            ' ' | 'f' | 't' | 'r' | 'I' | '(' | ')' | '[' | ']' | '-' => 4.6,
            'm' | 'w' | 'M' | 'W' | '%' | '@' => 10.5,
            c if c.is_ascii_uppercase() || c.is_ascii_digit() => 7.3,
            c if c.is_ascii() => 6.6,
            _ => 9.0,
        })
        .sum();
    w.ceil() as u32
}

fn status_color(s: ComponentStatus) -> &'static str {
    match s {
        ComponentStatus::Operational => "#2e7d32",
        ComponentStatus::DegradedPerformance => "#8a6d00",
        ComponentStatus::PartialOutage => "#c25400",
        ComponentStatus::MajorOutage => "#c62828",
        ComponentStatus::UnderMaintenance => "#1565c0",
    }
}

fn uptime_color(u: Option<f64>) -> &'static str {
    match u {
        None => "#6e6e6e",
        Some(u) if u >= 99.9 => "#2e7d32",
        Some(u) if u >= 99.0 => "#5b7f00",
        Some(u) if u >= 95.0 => "#8a6d00",
        Some(_) => "#c62828",
    }
}

/// Decodes `%XX` escapes of a path segment; `None` if malformed.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Renders `/badge/{component}/{status,uptime}.svg` (`rest` is what follows
/// `/badge/`); `None` for an unknown component or badge.
pub async fn render(
    app: &AppState,
    page: &PageView,
    rest: &str,
) -> Result<Option<Rendered>, WebError> {
    let Some((raw, kind)) = rest.rsplit_once('/') else {
        return Ok(None);
    };
    let Some(c) = percent_decode(raw).and_then(|id| page.components.iter().find(|c| c.id == id))
    else {
        return Ok(None);
    };
    let badge = match kind {
        // Nothing observes it: "no data" in grey, never "operational".
        "status.svg" if !c.observed => {
            Badge::new(&c.name, c.label().to_lowercase(), uptime_color(None))
        }
        "status.svg" => Badge::new(
            &c.name,
            c.status.label().to_lowercase(),
            status_color(c.status),
        ),
        "uptime.svg" => {
            let tz = app.config.get().page.time_zone;
            let u = super::uptime::uptime_of(&app.store, &c.id, &tz, Utc::now()).await?;
            Badge::new(&c.name, uptime::percent_text(u), uptime_color(u))
        }
        _ => return Ok(None),
    };
    Ok(Some(Rendered {
        content_type: "image/svg+xml",
        body: badge.render()?.into_bytes(),
    }))
}

/// The badge paths worth publishing as files: components whose id is safe
/// as a file name.
pub fn paths(config: &crate::config::Config) -> Vec<String> {
    config
        .components
        .iter()
        .filter(|c| {
            !c.id.starts_with('.')
                && c.id
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || "-_.".contains(ch))
        })
        .flat_map(|c| ["status", "uptime"].map(|k| format!("/badge/{}/{k}.svg", c.id)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_escapes_decode() {
        assert_eq!(percent_decode("a%20b").as_deref(), Some("a b"));
        assert_eq!(percent_decode("%zz"), None);
    }

    #[test]
    fn text_is_escaped_and_the_badge_is_as_wide_as_its_words() {
        let b = Badge::new("A <b> & \"c\"", "major outage".into(), "#c62828");
        let svg = b.render().unwrap();
        assert!(svg.contains("A &#60;b&#62; &#38; &#34;c&#34;"), "{svg}");
        assert!(!svg.contains("<b>"));
        assert!(b.width() > text_width("A <b> & \"c\"") + text_width("major outage"));
    }
}
