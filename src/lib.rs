//! Lookout watches a hosting platform from the outside the way its customers
//! use it, pages people until someone answers, and tells the public the truth
//! on a status page.
//!
//! # Map
//!
//! ```text
//! probes.yaml ─▶ config ─▶ scheduler ─▶ runner ─▶ (mpsc) ─▶ monitor ─▶ store
//! jobs ─▶ /ping/{token} ─▶ heartbeat_watcher ─▶ (the same mpsc) ─▶ │
//!                                   evaluate, join (pure) ◀────────┤
//!                         wakes (signal) ┌─────────────────────────┤
//!                                        ▼                         ▼ public updates
//!     escalation, hold (pure) ─▶ pager ─▶ outbox ◀── subscribers (mail)
//!                                          │ wakes
//!                                          ▼
//!                        delivery (outbox worker) ─▶ notify (wire formats)
//!
//! store ─▶ statuspage ─▶ web (status page, /api/v2, ack links, admin API) ─▶ publish
//! monitor ─▶ console::Board (memory) ─▶ console (pure) ─▶ web (/api/admin/probes)
//! web (Run now) ─▶ scheduler::RunNow ─▶ scheduler (same slot, same gates) ─▶ runner
//! store (hourly.latency) ─▶ latency (pure p50/p95) ─▶ web (/admin/probes/{name})
//! ```
//!
//! # Layers
//!
//! Bottom first; a module uses modules of its own layer or lower ones only,
//! never one above (`tests/e2e/architecture.rs` checks it, and that the
//! module graph has no cycle at any level):
//!
//! 1. vocabulary, no decisions: [`human`] (durations and times in words),
//!    [`schedule`], [`redact`], [`message`] (what a notification says, and
//!    webhook body templates), [`journey`] (what a run produced),
//!    [`maintenance`] (windows), [`installation`], [`ack`], [`changes`],
//!    [`signal`] (wake-ups between tasks), [`lanes`] (the outbox's own mail
//!    lanes), [`crash`] (the crash-recovery tests' hook), [`http_client`]
//!    (the one place HTTP clients are built).
//! 2. configuration: [`config`], [`reload`], [`logging`].
//! 3. domain, pure decisions and wire formats, no storage: [`evaluate`],
//!    [`join`], [`hold`], [`escalation`], [`heartbeat`], [`concurrency`],
//!    [`uptime`], [`notify`], [`latency`], [`quorum`].
//! 4. storage: [`store`], every SQL statement, its interface in the types above.
//! 5. the writer and readers over the store: [`runner`], [`monitor`],
//!    [`notice`], [`statuspage`], [`heartbeat_watcher`], [`health`],
//!    [`metrics`], [`report`], [`retention`], [`console`], [`cluster`].
//! 6. tasks: [`pager`], [`subscribers`], [`delivery`] (woken after the
//!    monitor), and [`scheduler`], [`watchdog`], [`connectivity`] (upstream
//!    of it or beside it; here because connectivity's self-alert uses the
//!    pager).
//! 7. surface: [`web`], [`publish`], [`app`], [`agent`], [`cli`].
//!
//! # Modules
//!
//! - [`config`]: probes.yaml → validated, typed [`config::Config`], with
//!   file:line:column diagnostics; [`reload`]: hot reload on SIGHUP or file
//!   change; the configuration in force is a [`config::Live`] every task
//!   reads once per operation.
//! - [`schedule`] / [`scheduler`]: when probes run (a grid per `every:`,
//!   croner for `cron:`), on the scheduler's own thread, bounded by
//!   [`concurrency`] (journeys at once overall and per host; skipped starts).
//! - [`runner`]: runs one probe's steps (HTTP requests, TCP connections,
//!   TLS handshakes, DNS queries, programs); what it produced is
//!   [`journey`] data. [`redact`] masks secrets in everything it keeps.
//! - [`monitor`]: the single writer: stores runs, applies [`evaluate`],
//!   opens, joins ([`join`], pure) and resolves incidents, then wakes the
//!   pager and hands public updates to [`subscribers`]' mail.
//! - [`quorum`]: a probe run from several locations (agents, issue 18)
//!   fails when enough of them fail at once; silent locations drop out.
//! - [`escalation`] (who is paged when) and [`hold`] (may an incident page
//!   now: [`maintenance`], silences), both pure functions of `now`.
//! - [`pager`]: woken by the monitor and on its tick, turns escalation
//!   decisions, acks and resolutions into outbox rows; [`notice`] composes
//!   each receiver's [`message::Message`].
//! - [`delivery`]: the outbox worker, with backoff; [`notify`]: the
//!   receivers' wire formats (webhook, PagerDuty, Slack, email).
//! - [`heartbeat`]: passive probes' deadlines (pure); [`heartbeat_watcher`]
//!   takes pings (`/ping/{token}`) and sends a missed ping or an overrun to
//!   the monitor as a failed run, like any probe's.
//! - [`health`] (`/readyz`) and [`metrics`] (`/metrics`, Prometheus);
//!   [`watchdog`]: pings an external dead man's switch while healthy;
//!   [`connectivity`]: is the prober itself offline?
//! - [`console`]: the operators' console as data: every probe's state,
//!   last run, next start, recent results and failure counts, from the
//!   board the monitor keeps in memory (`console::Board`), never raw runs.
//! - [`latency`]: response-time percentiles (p50/p95 per hour) from the
//!   log-spaced duration histograms the hourly rollup keeps.
//! - [`report`]: the weekly report (uptime, incidents, TTA/TTR, slowest
//!   steps, leaked cleanups) for `/admin/report` and the email digest.
//! - [`subscribers`]: what email and webhook subscribers hear, through the
//!   outbox; `notify::endpoint` holds the rules a subscribed webhook
//!   URL must meet (https, public addresses only, checked at every delivery).
//! - [`ack`]: signed acknowledgement links; [`installation`]: the random
//!   identity kept in the database that every outgoing id carries.
//! - [`store`]: every SQL statement (SQLite or PostgreSQL, migrations in
//!   `migrations/sqlite` and `migrations/postgres`);
//!   [`retention`]: pruning of old runs and rollups.
//! - [`uptime`]: the uptime history as pure functions: time in each state per
//!   local day, uptime %, daily response time, from rollups the monitor keeps.
//! - [`statuspage`]: the page, components, incidents and maintenance as
//!   view models and Statuspage JSON (`/api/v2`, webhook bodies).
//! - [`web`]: axum + askama: `/`, `/incidents/{id}`, `/api/v2/…`, `/ack/…`,
//!   the admin API and page; [`publish`]: the site written to a directory;
//!   [`changes`]: the counter that tells the page cache to re-render.
//! - [`cluster`]: several instances on one PostgreSQL, one leader (a
//!   session advisory lock; `cluster::role::step` is the election as a pure
//!   state machine); followers serve every endpoint, relay heartbeat pings
//!   through the store, and hear of changes by `NOTIFY`.
//! - [`app`]: builds the service and runs it until stopped; [`agent`]:
//!   `lookout agent`, which runs a location's probes for a server and
//!   sends their runs (`web`'s `/api/agent/*`) into the monitor.
//! - [`cli`]: the `lookout` commands; [`logging`]: stderr logs, every line
//!   masked for secrets; [`human`]: the one place durations and times are
//!   rendered for people.

pub mod ack;
pub mod agent;
pub mod app;
pub mod changes;
pub mod cli;
pub mod cluster;
pub mod concurrency;
pub mod config;
pub mod connectivity;
pub mod console;
pub mod crash;
pub mod delivery;
pub mod escalation;
pub mod evaluate;
pub mod health;
pub mod heartbeat;
pub mod heartbeat_watcher;
pub mod hold;
pub mod http_client;
pub mod human;
pub mod installation;
pub mod join;
pub mod journey;
pub mod lanes;
pub mod latency;
pub mod logging;
pub mod maintenance;
pub mod message;
pub mod metrics;
pub mod monitor;
pub mod notice;
pub mod notify;
pub mod pager;

pub mod publish;
pub mod quorum;
pub mod redact;
pub mod reload;
pub mod report;
pub mod retention;
pub mod runner;
pub mod schedule;
pub mod scheduler;
pub mod signal;
pub mod statuspage;
pub mod store;
pub mod subscribers;
pub mod uptime;
pub mod watchdog;
pub mod web;
