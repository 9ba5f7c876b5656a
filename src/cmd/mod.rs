//! From parsed arguments to an exit code: one file per subcommand, each turning its
//! arguments into a run and the run into the exit code of the monitoring-plugin
//! convention (0 pass, 1 warnings, 2 failures, 3 could not run).

mod check;
mod checks;
mod config;
#[cfg(feature = "lab")]
mod demo;
mod enroll;
#[cfg(feature = "lab")]
mod lab;
mod man;
mod pages;
mod passkey;
pub mod serve;
mod usage;

pub use check::{Files, run_targets};

use crate::cli::{Cli, Command};
use crate::config::{ConfigError, Origin, OriginOf};
use crate::report;
use clap::{CommandFactory, FromArgMatches};
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

/// Exit code: the tool could not run (usage, configuration, unreadable file).
pub const EXIT_UNUSABLE: u8 = 3;

/// Everything that stops ssoprobe from running checks at all (exit code 3).
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Bad usage of a subcommand.
    #[error("{0}")]
    Usage(String),
    /// The lab failed to start.
    #[error("the lab could not start: {0}")]
    Lab(String),
    /// Anything else that prevents a run.
    #[error("{0}")]
    Io(String),
    /// A command other than `check` failed at the server (exit 2).
    #[error("{0}")]
    Failed(String),
    /// Stopped by Ctrl-C or SIGTERM after cleaning up (exit 130, as shells report it).
    #[error("interrupted; the temporary files are removed")]
    Interrupted,
}

/// The command line's definition: `cli`'s, with the names the lab knows (faults,
/// variants) as the values of `--fault` and `--variant`, for shell completion (they are
/// checked, with a "did you mean", when the lab starts).
pub fn command() -> clap::Command {
    let cmd = Cli::command();
    #[cfg(feature = "lab")]
    let cmd = lab::with_names(cmd);
    cmd
}

/// Parses the command line, runs, and maps the result to an exit code.
pub fn main() -> ExitCode {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let matches = match command().try_get_matches_from(&argv) {
        Ok(m) => m,
        Err(e) => {
            let e = usage::explain(e, &command(), &argv);
            use clap::error::ErrorKind;
            let code = match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => 0,
                ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => EXIT_UNUSABLE,
                _ => EXIT_UNUSABLE,
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(EXIT_UNUSABLE);
        }
    };
    // The exporter serves scrapes on two threads; a run is network-bound and spends
    // less CPU on one (no wake-ups across threads).
    let runtime = match &cli.command {
        Command::Serve(_) => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build(),
        _ => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
    };
    let runtime = match runtime {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_UNUSABLE);
        }
    };
    // Commands that only print end quietly when their reader goes away (`| head`), as
    // Unix tools do; the others ignore a closed stdout or never write to it.
    let only_prints = match &cli.command {
        Command::Schema | Command::Completions { .. } | Command::Man { .. } => true,
        Command::Checks { .. } => true,
        Command::Config { .. } | Command::Passkey { .. } => true,
        #[cfg(feature = "lab")]
        Command::Lab(args) => args.list_faults || args.list_variants,
        _ => false,
    };
    if only_prints {
        die_quietly_on_a_closed_pipe();
    }
    // A run that cannot start still answers in the format asked for (a monitoring
    // plugin always prints its status line).
    // (With --quiet only the error, on stderr.)
    let format = match &cli.command {
        Command::Check(args) | Command::Doctor(args) if !args.output.quiet => {
            Some(args.output.format)
        }
        #[cfg(feature = "lab")]
        Command::Demo(args) if !args.output.quiet => Some(args.output.format),
        _ => None,
    };
    let result = runtime.block_on(dispatch(cli, &matches));
    // Stalled lab handlers must not keep the process alive.
    runtime.shutdown_timeout(Duration::from_millis(200));
    exit_code(result, format)
}

/// Runs the subcommand.
async fn dispatch(cli: Cli, matches: &clap::ArgMatches) -> Result<u8, AppError> {
    match cli.command {
        Command::Check(args) => {
            let origins = matches.subcommand_matches("check");
            check::run(&args, origins.map(|m| m as &dyn OriginOf)).await
        }
        Command::Doctor(args) => {
            let origins = matches.subcommand_matches("doctor");
            check::run_doctor(&args, origins.map(|m| m as &dyn OriginOf)).await
        }
        #[cfg(feature = "lab")]
        Command::Demo(args) => demo::run(&args).await,
        #[cfg(feature = "lab")]
        Command::Lab(args) => lab::run(&args).await,
        #[cfg(not(feature = "lab"))]
        Command::Demo(_) => Err(without_lab("demo")),
        #[cfg(not(feature = "lab"))]
        Command::Lab(_) => Err(without_lab("lab")),
        Command::Enroll(args) => enroll::run(&args).await,
        Command::Serve(args) => {
            let origins = matches.subcommand_matches("serve");
            serve::run(&args, origins.map(|m| m as &dyn OriginOf)).await
        }
        Command::Config {
            command: crate::cli::ConfigCommand::Check(args),
        } => {
            let origins = matches
                .subcommand_matches("config")
                .and_then(|m| m.subcommand_matches("check"));
            config::run(&args, origins)
        }
        Command::Passkey { command } => passkey::run(command).await,
        Command::Completions { shell } => {
            let mut cmd = command();
            clap_complete::generate(shell, &mut cmd, "ssoprobe", &mut std::io::stdout());
            Ok(0)
        }
        Command::Man { dir } => man::run(dir.as_deref()),
        Command::Checks { format } => checks::run(format),
        Command::Schema => {
            print!("{}", report::JSON_SCHEMA);
            Ok(0)
        }
    }
}

/// The process's exit code for `result`; a run that could not start still answers in
/// the `format` asked for (a monitoring plugin always prints its status line).
fn exit_code(result: Result<u8, AppError>, format: Option<crate::cli::Format>) -> ExitCode {
    match result {
        Ok(code) => ExitCode::from(code),
        Err(AppError::Failed(e)) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
        Err(AppError::Interrupted) => {
            eprintln!("{}", AppError::Interrupted);
            ExitCode::from(130)
        }
        Err(e) => {
            eprintln!("error: {e}");
            let message = e.to_string();
            let document = match format {
                Some(crate::cli::Format::Nagios) => Some(report::nagios::unknown(&message)),
                Some(crate::cli::Format::Json) => Some(report::json_error(&message)),
                Some(crate::cli::Format::Junit) => Some(report::junit::unknown(&message)),
                Some(crate::cli::Format::Prometheus) => Some(report::prometheus::unknown(&message)),
                Some(crate::cli::Format::Human) | None => None,
            };
            if let Some(document) = document {
                let mut stdout = std::io::stdout().lock();
                let _ = stdout.write_all(document.as_bytes());
                let _ = stdout.flush();
            }
            ExitCode::from(EXIT_UNUSABLE)
        }
    }
}

/// The error of `demo` and `lab` in a build without the lab.
#[cfg(not(feature = "lab"))]
fn without_lab(command: &str) -> AppError {
    AppError::Usage(format!(
        "`ssoprobe {command}` needs the embedded lab, and this ssoprobe was built without it \
         (cargo feature `lab`); build one with it: `cargo install --path .` or \
         `cargo build --release` from the source, without --no-default-features"
    ))
}

/// Refuses a `--warning CHECK=DURATION` or `--critical CHECK=DURATION` whose CHECK is
/// not a check (`ssoprobe checks` lists them; `tls.HOST` for a certificate's): a
/// threshold that can never apply would pass every run silently.
fn known_checks(targets: &[(String, crate::config::Config)]) -> Result<(), AppError> {
    for (_, config) in targets {
        for limit in &config.time_limits {
            let Some(check) = &limit.check else { continue };
            let known = match check.strip_prefix(crate::checks::ids::TLS_PREFIX) {
                Some(host) => {
                    !host.is_empty()
                        && host
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
                }
                None => crate::checks::spec::of(check).is_some(),
            };
            if !known {
                return Err(AppError::Usage(format!(
                    "{}: '{}' is not a check; `ssoprobe checks` lists them (tls.HOST for a host's certificate)",
                    limit.setting,
                    crate::text::server_text(check)
                )));
            }
        }
    }
    Ok(())
}

/// Where configuration values come from when there are no parsed arguments to ask.
struct NoOrigins;
impl OriginOf for NoOrigins {
    fn origin_of(&self, _: &str) -> Option<Origin> {
        None
    }
}

/// Returns at SIGTERM or Ctrl-C.
async fn wait_for_stop() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// Restores the default action of SIGPIPE (Rust ignores it, so that a write to a closed
/// pipe is an error; `println!` turns that error into a panic).
fn die_quietly_on_a_closed_pipe() {
    #[cfg(unix)]
    // SAFETY: setting a signal's disposition to its default has no preconditions; it is
    // done before any other thread writes to stdout.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
