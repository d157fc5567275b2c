//! `lookout agent` (run a location's probes for a server) and
//! `lookout agent-token create|revoke|list` (issue 18).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::agent::AgentOptions;
use crate::config::Secret;

/// `lookout agent`'s arguments.
#[derive(Args, Debug)]
pub struct AgentArgs {
    /// The server's base URL, e.g. `https://lookout.example.com`. Give it
    /// once per instance of a cluster (or a comma-separated list in
    /// `LOOKOUT_AGENT_SERVERS`): the agent talks to one at a time and moves
    /// to the next when one cannot be reached or is a follower.
    #[arg(
        long = "server",
        env = "LOOKOUT_AGENT_SERVERS",
        value_delimiter = ',',
        required = true,
        num_args = 1
    )]
    pub servers: Vec<String>,
    /// This agent's location id (declared under the server's `locations:`).
    #[arg(long)]
    pub location: String,
    /// A file holding the agent's token; without it, `LOOKOUT_AGENT_TOKEN`.
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// The spool: runs not yet delivered to the server (a SQLite file).
    #[arg(long, default_value = "lookout-agent.db")]
    pub spool: PathBuf,
    /// Most runs the spool holds; the oldest are dropped (and counted) past it.
    #[arg(long, default_value_t = 100_000)]
    pub spool_max: u64,
    /// How often to ask the server whether the probes changed.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub poll: std::time::Duration,
    /// How often to send spooled runs.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub send_every: std::time::Duration,
}

/// `lookout agent-token …`.
#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Make a token for an agent at LOCATION; prints it once (only its hash is kept).
    Create {
        /// A unique name for the token, e.g. `eu-west-1`.
        name: String,
        #[arg(long)]
        location: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Revoke the token NAME: the agent's next request is refused.
    Revoke {
        name: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List tokens (names, locations, when created, revoked, last seen).
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// Which database the token commands use, as `serve` chooses it.
#[derive(Args, Debug)]
pub struct StoreArgs {
    #[arg(long, default_value = "probes.yaml")]
    pub config: PathBuf,
    /// A SQLite file path or a PostgreSQL URL (as `serve --database`).
    #[arg(long, env = "LOOKOUT_DATABASE_URL")]
    pub database: Option<String>,
}

/// The token: `--token-file` (trimmed) or `LOOKOUT_AGENT_TOKEN`.
fn token(file: Option<&Path>) -> Result<Secret, String> {
    match file {
        Some(path) => std::fs::read_to_string(path)
            .map(|t| Secret::new(t.trim()))
            .map_err(|e| format!("cannot read {}: {e}", path.display())),
        None => std::env::var("LOOKOUT_AGENT_TOKEN")
            .map(|t| Secret::new(t.trim()))
            .map_err(|_| "give --token-file or set LOOKOUT_AGENT_TOKEN".into()),
    }
}

pub async fn agent(args: AgentArgs) -> ExitCode {
    let token = match token(args.token_file.as_deref()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let Some(first) = args.servers.first() else {
        eprintln!("error: give --server URL (or LOOKOUT_AGENT_SERVERS)");
        return ExitCode::from(2);
    };
    let mut opts =
        AgentOptions::new(first, &args.location, token, args.spool).with_servers(&args.servers);
    opts.spool_max = args.spool_max;
    opts.poll = args.poll;
    opts.send_every = args.send_every;
    match crate::agent::run(opts, super::shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

/// The database the token commands open: `--database`, else the
/// configuration's `database:`, else the file beside it.
fn database(store: &StoreArgs) -> crate::store::Database {
    let from_config = || {
        crate::config::load_with(
            &store.config,
            &|n| std::env::var(n).ok(),
            crate::config::SecretsNeeded::Optional,
        )
        .ok()
        .and_then(|c| c.database)
    };
    store
        .database
        .clone()
        .or_else(from_config)
        .map(|d| crate::store::Database::parse(&d))
        .unwrap_or_else(|| super::default_database(&store.config).into())
}

pub async fn token_command(command: TokenCommand) -> ExitCode {
    let args = match &command {
        TokenCommand::Create { store, .. }
        | TokenCommand::Revoke { store, .. }
        | TokenCommand::List { store } => store,
    };
    let store = match crate::store::Store::connect(&database(args)).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let now = chrono::Utc::now();
    let code = match command {
        TokenCommand::Create {
            name,
            location,
            store: args,
        } => {
            // The location must be declared, as the admin API checks.
            let declared = crate::config::load_with(
                &args.config,
                &|n| std::env::var(n).ok(),
                crate::config::SecretsNeeded::Optional,
            )
            .map(|c| c.locations.iter().any(|l| l.id == location));
            match declared {
                Ok(true) => {}
                Ok(false) => {
                    eprintln!(
                        "error: location `{location}` is not declared under `locations:` in {}",
                        args.config.display()
                    );
                    store.close().await;
                    return ExitCode::from(2);
                }
                Err(d) => {
                    eprintln!("{}", d.render());
                    store.close().await;
                    return ExitCode::from(2);
                }
            }
            match store.create_agent_token(&name, &location, now).await {
                Ok(Some(token)) => {
                    super::stdout(&format!("{token}\n"));
                    ExitCode::SUCCESS
                }
                Ok(None) => {
                    eprintln!(
                        "error: a token named `{name}` exists; revoke it or pick another name"
                    );
                    ExitCode::from(2)
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(1)
                }
            }
        }
        TokenCommand::Revoke { name, .. } => match store.revoke_agent_token(&name, now).await {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => {
                eprintln!("error: no live token named `{name}`");
                ExitCode::from(2)
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(1)
            }
        },
        TokenCommand::List { .. } => match store.agent_tokens().await {
            Ok(tokens) => {
                for t in tokens {
                    let revoked = t
                        .revoked_at
                        .map_or(String::new(), |r| format!(" revoked {r}"));
                    let seen = t
                        .last_seen_at
                        .map_or("never".to_string(), |s| s.to_rfc3339());
                    super::stdout(&format!(
                        "{}\t{}\tcreated {}{revoked}\tlast seen {seen}\n",
                        t.name,
                        t.location,
                        t.created_at.to_rfc3339()
                    ));
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(1)
            }
        },
    };
    store.close().await;
    code
}
