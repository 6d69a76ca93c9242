//! `vakt-agent`: parse the command line, set up logging, dispatch. Everything else lives in
//! the library so tests can run it in-process.

use std::io::IsTerminal;
use std::process::ExitCode;

use agent::cli::{self, Cli, Command};
use clap::Parser;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            // Under Nagios a usage error must read UNKNOWN (3), not CRITICAL (2, clap's code).
            let is_check = std::env::args().nth(1).is_some_and(|a| a == "check");
            let _ = error.print();
            return match error.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => ExitCode::SUCCESS,
                _ if is_check => ExitCode::from(3),
                _ => ExitCode::from(2),
            };
        }
    };
    let default_level = match (cli.verbose, &cli.command) {
        (0, Command::Run { .. }) => "info",
        (0, _) => "warn",
        (1, _) => "info",
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
            .with_filter(filter.and(limit.clone()));
        tracing_subscriber::registry().with(layer).init();
    }
    limit.report();

    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!(error = %error, "cannot start the async runtime");
            return ExitCode::from(3);
        }
    };
    match cli.command {
        Command::Check(args) => {
            let output = runtime.block_on(cli::check(args, cli.cache_dir));
            println!("{}", output.text);
            if let Some(timing) = output.timing {
                #[allow(clippy::print_stderr)] // the timing report is for the terminal, next to stdout
                {
                    eprintln!("{timing}");
                }
            }
            ExitCode::from(u8::try_from(output.exit_code).unwrap_or(3))
        }
        Command::Plugins { format } => match runtime.block_on(cli::plugins(format, cli.cache_dir)) {
            Ok(text) => {
                println!("{text}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                tracing::error!(error = %error, "listing plugins failed");
                ExitCode::FAILURE
            }
        },
        Command::Enroll(args) => match runtime.block_on(cli::enroll(args)) {
            Ok(text) => {
                println!("{text}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                tracing::error!(error = %error, "enrollment failed");
                ExitCode::FAILURE
            }
        },
        Command::Componentize { input, output } => match cli::componentize(&input, &output) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                tracing::error!(error = %error, "componentize failed");
                ExitCode::FAILURE
            }
        },
        Command::Run { config } => match runtime.block_on(cli::run(config, cli.cache_dir)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                tracing::error!(error = %common::report(&error), "agent stopped");
                ExitCode::from(2)
            }
        },
    }
}
