//! One step of a journey: render, send (with retry and polling), judge, capture.

use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::Value;

use super::expect::{self, Found, Response};
use super::http::{self, Exchange, Request, RequestBody, TransportError};
use super::scope::RunScope;
use super::{dns, exec, handshake, sql, tcp};
use crate::config::template::RenderError;
use crate::config::{Body, HttpStep, Probe, Step, StepKind};
use crate::journey::result::{AssertionFailure, FailureKind, Hop, Phase, StepOutcome, StepResult};
use crate::redact::Redactor;

/// Everything one run carries from step to step.
pub struct RunCtx<'a> {
    pub clients: &'a super::Clients,
    pub probe: &'a Probe,
    pub scope: RunScope<'a>,
    pub redactor: Redactor,
    /// One cookie jar per run, never shared across runs.
    pub cookies: reqwest::cookie::Jar,
    pub deadline: Option<Instant>,
    /// Set when the prober itself failed (e.g. a template could not render).
    pub prober_error: bool,
    /// Where secret captures are held for the log writer's mask.
    pub log_mask: Option<&'a crate::logging::LogMask>,
    /// The secret captures this run holds in the log mask (let go when the
    /// run ends).
    pub held: Vec<crate::logging::HeldSecret>,
}

/// A step ready to run: its templates rendered, per kind.
enum Prepared {
    Http(Request),
    Tcp(tcp::Target),
    Tls(handshake::Target),
    Dns(dns::Question),
    Exec(exec::Program),
    Sql(sql::Statement),
}

impl Prepared {
    /// The target as stored (before redaction): the URL, `tcp://host:port`,
    /// `tls://host:port`, `dns://server/name?type=A`.
    fn target(&self) -> String {
        match self {
            Prepared::Http(r) => r.url.clone(),
            Prepared::Tcp(t) => t.url(),
            Prepared::Tls(t) => t.url(),
            Prepared::Dns(q) => q.url(),
            Prepared::Exec(p) => p.url(),
            Prepared::Sql(s) => s.url(),
        }
    }
}

/// What one send produced, before judging.
struct Attempt {
    result: Result<Exchange, TransportError>,
    failures: Vec<AssertionFailure>,
}

impl Attempt {
    fn passed(&self) -> bool {
        self.result.is_ok() && self.failures.is_empty()
    }
}

pub fn skipped(step: &Step, phase: Phase, run: &RunCtx<'_>) -> StepResult {
    StepResult {
        id: step.id.clone(),
        phase,
        method: step.kind.word().into(),
        url: run.redactor.redact_string(step.kind.target_source()),
        status: None,
        outcome: StepOutcome::Skipped,
        started_at: Utc::now(),
        duration: Duration::ZERO,
        attempts: 0,
        error: None,
        failures: vec![],
        captures: vec![],
        critical: step.critical,
        timings: Default::default(),
        kind: None,
        hops: vec![],
        http_version: None,
        proxy: None,
    }
}

impl RunCtx<'_> {
    pub async fn execute(&mut self, step: &Step, phase: Phase) -> StepResult {
        if let Some(name) = &step.only_if_defined
            && !self.scope.is_defined(name)
        {
            return skipped(step, phase, self);
        }
        let started_at = Utc::now();
        let clock = Instant::now();
        let request = match self.render(step) {
            Ok(r) => r,
            Err(e) => {
                self.prober_error = true;
                let mut r = skipped(step, phase, self);
                r.outcome = StepOutcome::Fail;
                r.error = Some(
                    self.redactor
                        .cut(&format!("prober error: {e}"), expect::SHOWN),
                );
                r.kind = Some(FailureKind::Prober);
                return r;
            }
        };
        let (attempt, attempts, waited) = self.send_until_done(step, &request, phase).await;
        let exchange = attempt.result.as_ref().ok();
        let mut result = StepResult {
            id: step.id.clone(),
            phase,
            method: step.kind.word().into(),
            url: self.redactor.redact_string(request.target()),
            status: exchange.filter(|e| e.is_http()).map(|e| e.status),
            outcome: if attempt.passed() {
                StepOutcome::Pass
            } else {
                StepOutcome::Fail
            },
            started_at,
            duration: clock.elapsed(),
            attempts,
            error: attempt.result.as_ref().err().map(|e| {
                let text = poll_note(step, e.to_string(), attempts, waited);
                self.redactor.cut(&text, 4 * expect::SHOWN)
            }),
            failures: self.redact_failures(attempt.failures.clone(), step, attempts, waited),
            captures: vec![],
            critical: step.critical,
            timings: exchange.map(|x| x.timings).unwrap_or_default(),
            kind: match &attempt.result {
                Err(e) => Some(e.kind),
                Ok(_) if !attempt.failures.is_empty() => Some(FailureKind::Assertion),
                Ok(_) => None,
            },
            hops: match &attempt.result {
                Ok(x) => self.hops(&x.hops),
                Err(e) => self.hops(&e.hops),
            },
            http_version: exchange
                .map(|x| x.version.clone())
                .filter(|v| !v.is_empty()),
            // The request that got (or failed to get) the last answer.
            proxy: match request {
                Prepared::Http(request) => self.clients.proxies.for_url(match &attempt.result {
                    Ok(x) => &x.final_url,
                    Err(e) => e.hops.last().map_or(&request.url, |h| &h.url),
                }),
                _ => None,
            },
        };
        if let (true, Ok(exchange)) = (attempt.passed(), &attempt.result) {
            let (shown, failures) = self.capture(step, exchange);
            result.captures = shown;
            if !failures.is_empty() {
                result.outcome = StepOutcome::Fail;
                result.kind = Some(FailureKind::Assertion);
                result.failures = failures;
            }
        }
        result
    }

    /// The redirect chain as stored: secrets masked in every URL.
    fn hops(&self, hops: &[http::RawHop]) -> Vec<Hop> {
        hops.iter()
            .map(|h| Hop {
                method: h.method.as_str().into(),
                url: self.redactor.redact_string(h.url.clone()),
                status: h.status,
            })
            .collect()
    }

    fn render(&self, step: &Step) -> Result<Prepared, RenderError> {
        let scope = &self.scope;
        Ok(match &step.kind {
            StepKind::Http(h) => Prepared::Http(self.render_http(h)?),
            StepKind::Tcp(t) => Prepared::Tcp(tcp::Target::render(t, scope)?),
            StepKind::Tls(t) => Prepared::Tls(handshake::Target::render(t, scope)?),
            StepKind::Dns(d) => Prepared::Dns(dns::Question::render(d, scope)?),
            StepKind::Exec(e) => Prepared::Exec(exec::Program::render(e, scope)?),
            StepKind::Sql(s) => Prepared::Sql(sql::Statement::render(s, scope)?),
        })
    }

    fn render_http(&self, step: &HttpStep) -> Result<Request, RenderError> {
        let scope = &self.scope;
        let headers = step
            .headers
            .iter()
            .map(|(k, v)| Ok((k.clone(), v.render_string(scope)?)))
            .collect::<Result<_, RenderError>>()?;
        let body = match &step.body {
            Body::None => RequestBody::None,
            Body::Json(v) => RequestBody::Json(v.render(scope)?),
            Body::Form(f) => RequestBody::Form(
                f.iter()
                    .map(|(k, v)| Ok((k.clone(), v.render_string(scope)?)))
                    .collect::<Result<_, RenderError>>()?,
            ),
            Body::Raw(t) => RequestBody::Raw(t.render_string(scope)?),
        };
        let basic_auth = match &step.basic_auth {
            Some(b) => Some((
                b.user.render_string(scope)?,
                b.password.render_string(scope)?,
            )),
            None => None,
        };
        Ok(Request {
            method: step.method,
            url: step.url.render_url(scope)?,
            headers,
            body,
            basic_auth,
        })
    }

    /// Sends with `retry:` for transport errors and 5xx, and `poll:` until
    /// `expect` holds or its bound passes. Returns the last attempt, the
    /// number of requests sent and the time spent waiting.
    async fn send_until_done(
        &mut self,
        step: &Step,
        request: &Prepared,
        phase: Phase,
    ) -> (Attempt, u32, Duration) {
        let clock = Instant::now();
        let mut sent = 0;
        loop {
            let (attempt, n) = self.send_with_retry(step, request, phase).await;
            sent += n;
            let Some(poll) = step.poll else {
                return (attempt, sent, clock.elapsed());
            };
            let next = clock.elapsed().saturating_add(poll.every);
            if attempt.passed() || next > poll.within || self.past_deadline(phase, poll.every) {
                return (attempt, sent, clock.elapsed());
            }
            tokio::time::sleep(poll.every).await;
        }
    }

    async fn send_with_retry(
        &self,
        step: &Step,
        request: &Prepared,
        phase: Phase,
    ) -> (Attempt, u32) {
        let mut sent = 0;
        loop {
            let attempt = self.send_once(step, request, phase).await;
            sent += 1;
            let retryable = match &attempt.result {
                Err(e) => {
                    (e.is_connect() && step.retry.on_connect)
                        || (e.is_timeout() && step.retry.on_timeout)
                }
                Ok(x) => x.is_http() && x.status >= 500 && step.retry.on_5xx,
            };
            if !retryable
                || sent >= step.retry.attempts
                || self.past_deadline(phase, step.retry.backoff)
            {
                return (attempt, sent);
            }
            tokio::time::sleep(step.retry.backoff).await;
        }
    }

    async fn send_once(&self, step: &Step, request: &Prepared, phase: Phase) -> Attempt {
        let timeout = self.budget(step.timeout, phase);
        if timeout.is_zero() {
            return Attempt {
                result: Err(TransportError::new(
                    FailureKind::Timeout,
                    "journey deadline exceeded",
                )),
                failures: vec![],
            };
        }
        let result = match (request, &step.kind) {
            (Prepared::Http(request), StepKind::Http(h)) => {
                self.send_http(h, request, timeout).await
            }
            (Prepared::Tcp(t), _) => tcp::send(t, timeout).await,
            (Prepared::Tls(t), _) => {
                let probe = self.probe;
                handshake::send(t, probe.insecure_tls, probe.ca.as_deref(), timeout).await
            }
            (Prepared::Dns(q), _) => dns::send(q, timeout).await,
            (Prepared::Exec(p), _) => exec::send(p, timeout, self.probe.max_body_bytes).await,
            (Prepared::Sql(s), _) => sql::send(s, timeout, self.probe.max_body_bytes).await,
            (Prepared::Http(_), _) => Err(TransportError::new(
                FailureKind::Prober,
                "an HTTP request was prepared for a step of another kind",
            )),
        };
        let failures = match &result {
            Ok(x) => expect::check_expect(
                &step.expect,
                &Response::new(x, Utc::now().timestamp()),
                &self.scope,
            ),
            Err(_) => vec![],
        };
        Attempt { result, failures }
    }

    async fn send_http(
        &self,
        step: &HttpStep,
        request: &Request,
        timeout: Duration,
    ) -> Result<Exchange, TransportError> {
        let limits = http::Limits {
            timeout,
            max_body: self.probe.max_body_bytes,
            redirects: step.redirects,
        };
        let client = self
            .clients
            .get(self.probe.insecure_tls, self.probe.ca.as_deref(), step.http);
        match client {
            Ok(client) => http::send(&client, request, &self.cookies, limits).await,
            Err(e) => Err(TransportError::new(FailureKind::Prober, e.to_string())),
        }
    }

    /// The step timeout, cut short by the journey deadline (cleanup is exempt).
    fn budget(&self, timeout: Duration, phase: Phase) -> Duration {
        match (phase, self.deadline) {
            (Phase::Steps, Some(d)) => timeout.min(d.saturating_duration_since(Instant::now())),
            _ => timeout,
        }
    }

    fn past_deadline(&self, phase: Phase, wait: Duration) -> bool {
        phase == Phase::Steps
            && self
                .deadline
                .is_some_and(|d| Instant::now().checked_add(wait).is_none_or(|t| t >= d))
    }

    /// Captures each value; one that matches nothing (or cannot be asked,
    /// e.g. JSON on an HTML body) fails the step unless `optional: true`.
    fn capture(
        &mut self,
        step: &Step,
        exchange: &Exchange,
    ) -> (Vec<(String, String)>, Vec<AssertionFailure>) {
        let resp = Response::new(exchange, Utc::now().timestamp());
        let mut shown = Vec::new();
        let mut failures = Vec::new();
        for c in &step.capture {
            let found = expect::query(&c.query, &resp, &self.scope);
            let value = match &found {
                Ok(f) if f.exists() => f.value().unwrap_or(Value::Null),
                _ if c.optional => Value::Null,
                Ok(_) => {
                    let why = match (&c.query, found) {
                        (
                            crate::config::Query::Json(_, src),
                            Ok(Found::Nodes(_) | Found::Nothing),
                        ) => {
                            format!("{src} matched nothing")
                        }
                        (q, _) => format!("{} matched nothing", q.describe()),
                    };
                    failures.push(capture_failure(&c.name, why));
                    continue;
                }
                Err(why) => {
                    failures.push(capture_failure(
                        &c.name,
                        self.redactor.cut(why, expect::SHOWN),
                    ));
                    continue;
                }
            };
            if c.secret {
                let plain = expect::plain(&value);
                self.redactor.add(&plain);
                if let Some(mask) = self.log_mask {
                    self.held.push(mask.hold(&plain));
                }
            }
            let display = if c.secret {
                crate::redact::MASK.to_string()
            } else {
                self.redactor
                    .cut(&expect::show(Some(&value)), expect::SHOWN)
            };
            shown.push((c.name.clone(), display));
            self.scope.capture(&c.name, value);
        }
        (shown, failures)
    }

    fn redact_failures(
        &self,
        failures: Vec<AssertionFailure>,
        step: &Step,
        attempts: u32,
        waited: Duration,
    ) -> Vec<AssertionFailure> {
        failures
            .into_iter()
            .map(|f| AssertionFailure {
                check: self.redactor.cut(&f.check, expect::SHOWN),
                expected: self.redactor.cut(&f.expected, expect::SHOWN),
                actual: poll_note(
                    step,
                    self.redactor.cut(&f.actual, expect::SHOWN),
                    attempts,
                    waited,
                ),
            })
            .collect()
    }
}

/// A capture that found nothing: "capture `app_id`: $.id matched nothing".
fn capture_failure(name: &str, why: String) -> AssertionFailure {
    AssertionFailure {
        check: format!("capture `{name}`"),
        expected: String::new(),
        actual: why,
    }
}

/// Adds "after N attempts over 20s" to what a polled step last saw.
fn poll_note(step: &Step, text: String, attempts: u32, waited: Duration) -> String {
    match step.poll {
        Some(_) => format!(
            "{text} (last of {attempts} attempts over {})",
            crate::human::duration(waited)
        ),
        None => text,
    }
}
