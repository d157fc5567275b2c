//! The black-box suite as one test binary: each module drives the real
//! service (or the real binary) against real servers on loopback.

mod support;

mod admin;
mod architecture;
mod body_templates;
mod browser;
mod cli;
mod config_agreement;
mod config_corpus;
mod config_fuzz;
mod crash;
mod disk_faults;
mod exec;
mod extreme_values;
mod heartbeat;
mod hostile_clients;
mod journey;
mod lifecycle;
mod mail;
mod maintenance;
mod notifiers;
mod operator_incidents;
mod ops;
mod paging;
mod paging_safety;
mod recovery;
mod reload_moves;
mod report;
mod retention;
mod schedule;
mod schema;
mod secrets;
mod shipped_config;
mod status_page;
mod store_failure;
mod subscribers;
mod transports;
mod trust;
mod truth;
mod uptime;
mod walking_skeleton;
mod watchdog;
mod webhook_subscriptions;
