//! `lookout demo`: the sample platform, a receiver that prints pages, and the
//! full service watching the platform, in one process.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::app::{App, AppOptions, Tuning};
use sample_platform::{FaultSpec, PlatformOptions};

#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    #[arg(long, default_value = "probes.yaml")]
    config: PathBuf,
    /// Where the status page listens.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Where the sample platform listens (the default probes.yaml expects 8081).
    #[arg(long, default_value = "127.0.0.1:8081")]
    platform_listen: SocketAddr,
    /// Where the demo's page receiver listens (the default probes.yaml expects 8082).
    #[arg(long, default_value = "127.0.0.1:8082")]
    receiver_listen: SocketAddr,
    /// Start with a fault injected, e.g. `login=error`, `write=slow:2s`, `read=hang`.
    #[arg(long = "fault")]
    faults: Vec<FaultSpec>,
    #[arg(long)]
    database: Option<PathBuf>,
}

pub async fn demo(args: DemoArgs, mask: &crate::logging::LogMask) -> ExitCode {
    match start(args, mask).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

async fn start(
    args: DemoArgs,
    mask: &crate::logging::LogMask,
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let password =
        std::env::var("LOOKOUT_SAMPLE_PASSWORD").unwrap_or_else(|_| "demo-password".into());
    let admin_token = std::env::var("LOOKOUT_ADMIN_TOKEN").unwrap_or_else(|_| {
        let bytes: [u8; 12] = rand::random();
        crate::human::hex(&bytes)
    });
    // The demo provisions the credentials the default probes.yaml reads.
    let (pw, token) = (password.clone(), admin_token.clone());
    let env = move |name: &str| match name {
        "LOOKOUT_SAMPLE_PASSWORD" => Some(pw.clone()),
        "LOOKOUT_ADMIN_TOKEN" => Some(token.clone()),
        // The shipped `database` probe's PostgreSQL: empty when unset, and
        // its SQL steps skip.
        "LOOKOUT_DEMO_DATABASE_URL" => Some(std::env::var(name).unwrap_or_default()),
        other => std::env::var(other).ok(),
    };
    let config = match super::load(&args.config, &env) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let platform_listener = tokio::net::TcpListener::bind(args.platform_listen).await?;
    let opts = PlatformOptions {
        password: password.clone(),
        faults: args.faults.clone(),
        ..PlatformOptions::default()
    };
    let platform = sample_platform::start(platform_listener, opts).await?;
    for warning in target_mismatch(&config, &platform.url) {
        eprintln!("warning: {warning}");
    }
    let receiver = tokio::net::TcpListener::bind(args.receiver_listen).await?;
    let receiver_url = format!("http://{}", receiver.local_addr()?);
    tokio::spawn(sample_platform::receiver::serve(receiver));
    let database = args
        .database
        .unwrap_or_else(|| super::default_database(&args.config))
        .into();
    let app = App::build(AppOptions {
        config,
        database,
        listen: args.listen,
        tuning: Tuning::default(),
        source: Some(crate::reload::Source {
            path: args.config.clone(),
            env: std::sync::Arc::new(env),
        }),
        started: None,
    })
    .await?
    .with_log_mask(mask.clone());
    print_banner(&app.url(), &platform.url, &receiver_url, &admin_token);
    let following = mask.follow(app.state().config.clone());
    let stopped = app.run_until_stopped(super::shutdown_signal()).await;
    following.abort();
    stopped?;
    Ok(ExitCode::SUCCESS)
}

/// `lookout platform`: the sample platform alone, until Ctrl-C.
pub async fn platform_only(
    listen: SocketAddr,
    faults: Vec<FaultSpec>,
    deploy_delay: std::time::Duration,
) -> ExitCode {
    let password =
        std::env::var("LOOKOUT_SAMPLE_PASSWORD").unwrap_or_else(|_| "demo-password".into());
    let opts = PlatformOptions {
        password,
        faults,
        deploy_delay,
        ..PlatformOptions::default()
    };
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot listen on {listen}: {e}");
            return ExitCode::from(1);
        }
    };
    match sample_platform::start(listener, opts).await {
        Ok(p) => {
            println!("sample platform on {}", p.url);
            super::shutdown_signal().await;
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

/// Warnings when the configuration's probes do not aim at the sample
/// platform the demo started (another `--platform-listen`, an edited
/// `vars.api`): the demo would then watch something else.
pub fn target_mismatch(config: &crate::config::Config, platform_url: &str) -> Vec<String> {
    let Ok(platform) = url::Url::parse(platform_url) else {
        return vec![];
    };
    let here = format!(
        "{}:{}",
        platform.host_str().unwrap_or_default(),
        platform.port_or_known_default().unwrap_or_default()
    );
    let mut elsewhere: Vec<String> = config
        .probes
        .iter()
        .filter(|p| !p.steps.is_empty())
        .flat_map(|p| crate::concurrency::hosts_of(config, p))
        .filter(|h| *h != here)
        .collect();
    elsewhere.sort();
    elsewhere.dedup();
    elsewhere
        .into_iter()
        .map(|t| {
            format!(
                "the configuration probes {t}, but the sample platform listens on {platform_url}: \
                 the demo will not watch it (check `vars` in the configuration or --platform-listen)"
            )
        })
        .collect()
}

fn print_banner(page: &str, platform: &str, receiver: &str, token: &str) {
    println!(
        "\nLookout demo\n\
         \x20 status page      {page}\n\
         \x20 sample platform  {platform}   (faults: GET/POST/DELETE {platform}/_faults)\n\
         \x20 page receiver    {receiver}/hook   (pages are printed below)\n\
         \x20 admin token      {token}\n\n\
         Break the login step:  curl -X POST {platform}/_faults -H 'content-type: application/json' -d '{{\"endpoint\":\"login\",\"mode\":\"error\"}}'\n\
         Heal everything:       curl -X DELETE {platform}/_faults\n\
         Acknowledge by API:    curl -X POST {page}/api/incidents/1/ack -H 'authorization: Bearer {token}'\n\
         Break git pushes:      curl -X POST {platform}/_faults -H 'content-type: application/json' -d '{{\"endpoint\":\"push\",\"mode\":\"hang\"}}'\n\
         The SQL check (probe `database`) runs when LOOKOUT_DEMO_DATABASE_URL names a PostgreSQL database.\n"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(api: &str) -> crate::config::Config {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("probes.yaml");
        std::fs::write(
            &path,
            format!(
                "version: 1\npage: {{ title: T }}\ncomponents: [{{ id: api, name: API }}]\n\
                 vars: {{ api: \"{api}\" }}\nprobes:\n  - name: health\n    component: api\n    every: 1m\n    \
                 steps:\n      - {{ id: h, get: \"{{{{ api }}}}/healthz\" }}\n"
            ),
        )
        .unwrap();
        crate::config::load(&path, &|_| None).unwrap()
    }

    #[test]
    fn warns_when_the_configuration_aims_elsewhere_than_the_platform() {
        let c = config("http://127.0.0.1:8081");
        assert!(target_mismatch(&c, "http://127.0.0.1:8081").is_empty());
        let w = target_mismatch(&c, "http://127.0.0.1:9091");
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("127.0.0.1:8081") && w[0].contains("127.0.0.1:9091"));
    }
}
