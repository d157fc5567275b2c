//! Lookout watches a hosting platform from the outside the way its customers
//! use it, pages people until someone answers, and tells the public the truth
//! on a status page.
//!
//! # Map
//!
//! ```text
//! probes.yaml ─▶ config ─▶ scheduler ─▶ journey (runner) ─▶ monitor ─▶ store
//! jobs ─▶ /ping/{token} ─▶ heartbeat (watcher) ──────────────▶ │
//!                                         evaluate (pure) ◀────┤
//!                                                              ▼
//!               notify ◀── delivery (outbox worker) ◀── pager ◀── escalation (pure)
//!
//! store ─▶ web (status page, /api/v2, ack links, admin API)
//! ```
//!
//! - [`config`]: probes.yaml → validated, typed [`config::Config`], with
//!   file:line:column diagnostics.
//! - [`schedule`] / [`scheduler`]: when probes run (a grid per `every:`,
//!   croner for `cron:`), on the scheduler's own thread, bounded by
//!   [`pressure`] (journeys at once overall and per host; skipped starts).
//! - [`reload`]: hot reload on SIGHUP or file change; the configuration in
//!   force is a [`config::Live`] every task reads per operation.
//! - [`journey`]: runs one probe's steps over HTTP; results are data.
//! - [`monitor`]: the single writer: stores runs, applies [`evaluate`], opens,
//!   joins and resolves incidents.
//! - [`join`]: which incident a probe that starts failing takes part in
//!   (pure; joining never reduces paging).
//! - [`escalation`]: who is paged when, as a pure function of time.
//! - [`pager`]: turns escalation decisions, acks and resolutions into outbox rows.
//! - [`delivery`]: the outbox worker, with backoff; [`notify`]: the receivers'
//!   wire formats (webhook, PagerDuty, Slack, email).
//! - [`heartbeat`]: passive probes its jobs ping (`/ping/{token}`); a missed
//!   ping or an overrun becomes a failed run for the monitor, like any probe's.
//! - [`health`] (`/readyz`) and [`metrics`] (`/metrics`, Prometheus);
//!   [`watchdog`]: pings an external dead man's switch while healthy.
//! - [`report`]: the weekly report (uptime, incidents, TTA/TTR, slowest
//!   steps, leaked cleanups) for `/admin/report` and the email digest.
//! - [`ack`]: signed acknowledgement links.
//! - [`installation`]: the random identity kept in the database that every
//!   outgoing id (webhook-id, dedup_key, Message-ID) carries.
//! - [`store`]: every SQL statement (SQLite, migrations in `migrations/`).
//! - [`uptime`]: the uptime history as pure functions: time in each state per
//!   local day, uptime %, daily response time, from rollups the monitor keeps.
//! - [`web`]: axum + askama: `/`, `/incidents/{id}`, `/api/v2/…`, `/ack/…`.
//! - [`subscribers`]: what email and webhook subscribers hear, through the
//!   outbox; `subscribers::endpoint` holds the rules a subscribed webhook
//!   URL must meet (https, public addresses only, checked at every delivery).
//! - [`app`]: builds the service and runs it until stopped.
//! - [`cli`]: the `lookout` commands; [`logging`]: stderr logs, every line
//!   masked for secrets.

pub mod ack;
pub mod app;
pub mod changes;
pub mod cli;
pub mod config;
pub mod connectivity;
pub mod delivery;
pub mod escalation;
pub mod evaluate;
pub mod fmt;
pub mod health;
pub mod heartbeat;
pub mod hold;
pub mod installation;
pub mod join;
pub mod journey;
pub mod logging;
pub mod maintenance;
pub mod metrics;
pub mod monitor;
pub mod notify;
pub mod pager;
pub mod pressure;
pub mod publish;
pub mod reload;
pub mod report;
pub mod retention;
pub mod schedule;
pub mod scheduler;
pub mod store;
pub mod subscribers;
pub mod uptime;
pub mod watchdog;
pub mod web;
