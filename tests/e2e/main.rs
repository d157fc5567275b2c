//! The black-box suite as one test binary: each module drives the real
//! service (or the real binary) against real servers on loopback.

mod support;

mod admin;
mod browser;
mod cli;
mod config_agreement;
mod config_corpus;
mod config_fuzz;
mod crash;
mod heartbeat;
mod journey;
mod lifecycle;
mod notifiers;
mod ops;
mod paging;
mod recovery;
mod report;
mod retention;
mod schedule;
mod schema;
mod secrets;
mod status_page;
mod store_failure;
mod subscribers;
mod truth;
mod uptime;
mod walking_skeleton;
mod watchdog;
