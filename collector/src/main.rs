//! `vakt-collector`: parse the command line, set up logging, dispatch.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use collector::app::cli::{self, Cli, Command};
use tokio::sync::watch;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_level = match cli.verbose {
        0 => "info,rumqttd=warn",
        1 => "debug,rumqttd=info",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_env("VAKT_LOG").unwrap_or_else(|_| EnvFilter::new(default_level));
    // Every call site is rate-limited (see agent::log_limit): a loop that fails says why, but
    // does not fill the disk saying it.
    let limit = common::log_limit::RateLimit::new();
    {
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::util::SubscriberInitExt;
        use tracing_subscriber::{Layer, filter::FilterExt};
        let layer = tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .with_filter(filter.and(limit.clone()).and(collector::app::broker::RoutineBrokerLines));
        tracing_subscriber::registry().with(layer).init();
    }
    limit.report();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!(error = %error, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let (stop_tx, stop_rx) = watch::channel(false);
        tokio::spawn(async move {
            shutdown_signal().await;
            tracing::info!("stopping");
            let _ = stop_tx.send(true);
        });
        match cli.command {
            Command::Up {
                data_dir,
                mqtt_listen,
                mqtt_tls,
                mqtt_tls_names,
                insecure_plaintext,
                http_listen,
                https,
                no_agent,
                config,
                tls_cert,
                tls_key,
            } => {
                if insecure_plaintext && !mqtt_listen.ip().is_loopback() {
                    tracing::warn!(listen = %mqtt_listen, "--insecure-plaintext: MQTT in plaintext beyond loopback; anyone on the network can read results, and anyone with the shared password can speak for any agent");
                }
                let files = tls_cert.zip(tls_key);
                let https = cli::Https::choose(files, http_listen, https, insecure_plaintext, mqtt_tls_names.clone());
                if https == cli::Https::Plain && !http_listen.ip().is_loopback() {
                    tracing::warn!(listen = %http_listen, "--insecure-plaintext: HTTP in plaintext beyond loopback; passwords, session cookies and enrollment tokens cross the network readable");
                }
                let mqtt = cli::MqttListener {
                    addr: mqtt_listen,
                    tls: collector::app::broker_gate::needs_tls(mqtt_listen, mqtt_tls, insecure_plaintext),
                    names: mqtt_tls_names,
                };
                cli::up(&data_dir, mqtt, http_listen, !no_agent, config.as_deref(), https, stop_rx).await
            }
            Command::Incident { action, data_dir, config } => cli::incident(action, &data_dir, config.as_deref()).await,
            Command::User { action, data_dir, config } => {
                match collector::app::cli::admin::open_target(&data_dir, config.as_deref()) {
                    Ok((db, _)) => collector::app::cli::admin::user(action, &db).await,
                    Err(e) => Err(e),
                }
            }
            Command::Token { action, data_dir, config } => {
                match collector::app::cli::admin::open_target(&data_dir, config.as_deref()) {
                    Ok((db, _)) => collector::app::cli::admin::token(action, &db).await,
                    Err(e) => Err(e),
                }
            }
            Command::Enroll { action, data_dir, config } => {
                match collector::app::cli::admin::open_target(&data_dir, config.as_deref()) {
                    Ok((db, _)) => collector::app::cli::admin::enroll(action, &db).await,
                    Err(e) => Err(e),
                }
            }
            Command::Agents { action, data_dir, config } => {
                match collector::app::cli::admin::open_target(&data_dir, config.as_deref()) {
                    Ok((db, _)) => collector::app::cli::admin::agents(action, &db).await,
                    Err(e) => Err(e),
                }
            }
            Command::Audit { action, data_dir, config } => {
                match collector::app::cli::admin::open_target(&data_dir, config.as_deref()) {
                    Ok((db, _)) => collector::app::cli::admin::audit(action, &db).await,
                    Err(e) => Err(e),
                }
            }
            Command::Backup { file, data_dir, config } => {
                match collector::app::cli::admin::open_target(&data_dir, config.as_deref()) {
                    Ok((db, _)) => collector::app::cli::admin::backup(&file, &db).await,
                    Err(e) => Err(e),
                }
            }
            Command::Run { config } => cli::run(&config, stop_rx).await,
            Command::Key { data_dir, config } => cli::key(&data_dir, config.as_deref()),
            Command::Ca { action, data_dir, config } => {
                collector::app::cli::admin::ca(action, &data_dir, config.as_deref())
            }
            Command::MosquittoAcl { collector_user, prefix } => {
                collector::app::cli::admin::mosquitto_acl(&collector_user, &prefix)
            }
            Command::MosquittoPasswd { ids, out } => collector::app::cli::admin::mosquitto_passwd(&ids, &out),
            Command::Command { agent, what, data_dir, config, mqtt } => {
                cli::command(&agent, what, &data_dir, config.as_deref(), mqtt).await
            }
            Command::CheckConfig { file } => collector::app::config::CollectorConfig::load(&file)
                .map(|_| println!("{}: ok", file.display()))
                .map_err(Into::into),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = %common::report(&error), "vakt-collector stopped");
            ExitCode::FAILURE
        }
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
