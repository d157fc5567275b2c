//! The `lookout` commands: `check`, `run`, `serve`, `demo`, `schema`,
//! `platform`, `agent` and `agent-token`.

mod agent;
mod check;
mod demo;
mod run;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::app::{App, AppOptions, Tuning};
use crate::config::{self, Config};

#[derive(Parser, Debug)]
#[command(
    name = "lookout",
    version,
    about = "Probes a platform like its users do, pages until acknowledged, and runs its status page."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Validate the configuration and show each probe's next runs.
    Check {
        #[arg(long, default_value = "probes.yaml")]
        config: PathBuf,
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
    },
    /// Run one probe once and print a trace of its steps.
    Run {
        probe: String,
        #[arg(long, default_value = "probes.yaml")]
        config: PathBuf,
    },
    /// Run the service: scheduler, paging and the status page.
    Serve {
        #[arg(long, default_value = "probes.yaml")]
        config: PathBuf,
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Where to store: a SQLite file path, or a PostgreSQL URL
        /// (`postgres://user:password@host:5432/lookout`) shared by several
        /// instances. Defaults to the configuration's name with `.db`, beside it.
        #[arg(long, env = "LOOKOUT_DATABASE_URL")]
        database: Option<String>,
        #[command(flatten)]
        cluster: ClusterArgs,
    },
    /// Start the built-in sample platform and the service watching it.
    Demo(demo::DemoArgs),
    /// Print the JSON Schema of probes.yaml (for editors).
    Schema,
    /// Run a location's probes for a server and send it the results.
    Agent(agent::AgentArgs),
    /// Create, revoke or list agents' tokens.
    #[command(subcommand)]
    AgentToken(agent::TokenCommand),
    /// Run only the built-in sample platform (a target for experiments and benchmarks).
    Platform {
        #[arg(long, default_value = "127.0.0.1:8081")]
        listen: SocketAddr,
        /// Start with a fault injected, e.g. `login=error`.
        #[arg(long = "fault")]
        faults: Vec<sample_platform::FaultSpec>,
        /// How long a new app stays `deploying`.
        #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
        deploy_delay: std::time::Duration,
    },
}

/// How `lookout serve` takes part in a cluster of instances on one
/// PostgreSQL database.
#[derive(clap::Args, Debug, Clone)]
pub struct ClusterArgs {
    /// Join the cluster on the `--database` PostgreSQL server: one
    /// instance leads (schedules, evaluates, pages), the others serve
    /// every endpoint and take over when it dies.
    #[arg(long, env = "LOOKOUT_CLUSTER")]
    pub cluster: bool,
    /// The takeover bound: a new leader leads within about this long after
    /// the leader died or was cut off.
    #[arg(long, env = "LOOKOUT_CLUSTER_LEASE", default_value = "10s", value_parser = humantime::parse_duration)]
    pub lease: std::time::Duration,
    /// This instance's name in the cluster (default `<host>:<port>:<pid>`).
    #[arg(long, env = "LOOKOUT_INSTANCE")]
    pub instance: Option<String>,
}

/// The exit status of a leader that lost its lock (EX_TEMPFAIL, BSD
/// sysexits.h): its supervisor starts it again, as a follower.
pub const DEPOSED_EXIT: u8 = 75;

/// Installs logging on stderr; the returned mask is handed to [`run`],
/// which points it at the secrets of the configuration it loads.
pub fn init_logging(cli: &Cli) -> crate::logging::LogMask {
    let mask = crate::logging::LogMask::default();
    crate::logging::init(matches!(cli.log_format, LogFormat::Json), &mask);
    mask
}

pub async fn run(cli: Cli, mask: crate::logging::LogMask) -> ExitCode {
    match cli.command {
        Command::Check { config, format } => check::check(&config, format),
        Command::Run { probe, config } => run::run(&config, &probe, &mask).await,
        Command::Serve {
            config,
            listen,
            database,
            cluster,
        } => serve(&config, listen, database, cluster, &mask).await,
        Command::Demo(args) => demo::demo(args, &mask).await,
        Command::Platform {
            listen,
            faults,
            deploy_delay,
        } => demo::platform_only(listen, faults, deploy_delay).await,
        Command::Agent(args) => agent::agent(args).await,
        Command::AgentToken(command) => agent::token_command(command).await,
        Command::Schema => {
            stdout(&format!("{}\n", config::SCHEMA.trim_end()));
            ExitCode::SUCCESS
        }
    }
}

/// Loads the configuration with secrets from the process environment,
/// printing diagnostics on failure.
fn load(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ExitCode> {
    config::load(path, env).map_err(|d| {
        eprintln!("{}", d.render());
        ExitCode::from(2)
    })
}

/// Writes `text` to stdout. A reader that went away (`lookout check |
/// head -1`) ends the output quietly: not a panic, not an error.
fn stdout(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// `probes.yaml` → `probes.db` in the same directory.
pub fn default_database(config: &Path) -> PathBuf {
    config.with_extension("db")
}

async fn serve(
    path: &Path,
    listen: SocketAddr,
    database: Option<String>,
    cluster: ClusterArgs,
    mask: &crate::logging::LogMask,
) -> ExitCode {
    let started = chrono::Utc::now();
    let config = match load(path, &process_env) {
        Ok(c) => c,
        Err(code) => return code,
    };
    // `--database` (or `LOOKOUT_DATABASE_URL`), then the file's
    // `database:`, then the file beside the configuration.
    let database = database
        .or_else(|| config.database.clone())
        .map(|d| crate::store::Database::parse(&d))
        .unwrap_or_else(|| default_database(path).into());
    let source = crate::reload::Source::new(path.to_path_buf());
    let cluster = cluster
        .cluster
        .then(|| crate::cluster::Settings::new(cluster.lease, cluster.instance, listen.port()));
    serve_config(config, listen, database, source, started, cluster, mask).await
}

async fn serve_config(
    config: Config,
    listen: SocketAddr,
    database: crate::store::Database,
    source: crate::reload::Source,
    started: chrono::DateTime<chrono::Utc>,
    cluster: Option<crate::cluster::Settings>,
    mask: &crate::logging::LogMask,
) -> ExitCode {
    mask.set(&config.redactor);
    let opts = AppOptions {
        config,
        database,
        listen,
        tuning: Tuning::default(),
        source: Some(source),
        started: Some(started),
    };
    let built = match cluster {
        Some(settings) => App::build_clustered(opts, settings).await,
        None => App::build(opts).await,
    };
    let app = match built {
        Ok(app) => app.with_log_mask(mask.clone()),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    eprintln!("Status page: {}", app.url());
    let following = mask.follow(app.state().config.clone());
    let stopped = app.run_until_stopped(shutdown_signal()).await;
    following.abort();
    match stopped {
        Ok(()) => ExitCode::SUCCESS,
        Err(e @ crate::app::AppError::Deposed(_)) => {
            // At once: the scheduler's thread and anything in flight end
            // with the process, not after a graceful stop.
            eprintln!("error: {e}; exiting for the supervisor to start this instance again");
            std::process::exit(i32::from(DEPOSED_EXIT));
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutting down");
}
