//! From parsed arguments to an exit code.

use crate::checks;
use crate::checks::Outcome;
use crate::cli::{
    CheckArgs, Cli, ColorChoice, Command, DemoArgs, EnrollArgs, Format, LabArgs, OutputArgs,
    PasskeyCommand,
};
use crate::config::{Config, ConfigError, Origin, OriginOf};
use crate::http::Http;
use crate::lab::{self, Fault, Lab, LabConfig};
use crate::report::{self, Target};
use clap::{CommandFactory, FromArgMatches};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
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
}

/// Parses the command line, runs, and maps the result to an exit code.
pub fn main() -> ExitCode {
    let matches = match Cli::command().try_get_matches() {
        Ok(m) => m,
        Err(e) => {
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
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_UNUSABLE);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Check(args) => {
                let origins = matches.subcommand_matches("check");
                check(&args, origins.map(|m| m as &dyn OriginOf)).await
            }
            Command::Demo(args) => demo(&args).await,
            Command::Lab(args) => run_lab(&args).await,
            Command::Enroll(args) => enroll(&args).await,
            Command::Serve(args) => {
                let origins = matches.subcommand_matches("serve");
                serve(&args, origins.map(|m| m as &dyn OriginOf)).await
            }
            Command::Config {
                command: crate::cli::ConfigCommand::Check(args),
            } => {
                let origins = matches
                    .subcommand_matches("config")
                    .and_then(|m| m.subcommand_matches("check"));
                config_check(&args, origins.map(|m| m as &dyn OriginOf))
            }
            Command::Passkey { command } => passkey_command(command).await,
            Command::Completions { shell } => {
                let mut cmd = Cli::command();
                clap_complete::generate(shell, &mut cmd, "ssoprobe", &mut std::io::stdout());
                Ok(0)
            }
            Command::Man => {
                let mut out = Vec::new();
                clap_mangen::Man::new(Cli::command())
                    .render(&mut out)
                    .map_err(|e| AppError::Io(format!("cannot render the man page: {e}")))?;
                let _ = std::io::stdout().write_all(&out);
                Ok(0)
            }
            Command::Schema => {
                print!("{}", report::JSON_SCHEMA);
                Ok(0)
            }
        }
    });
    // Stalled lab handlers must not keep the process alive.
    runtime.shutdown_timeout(Duration::from_millis(200));
    match result {
        Ok(code) => ExitCode::from(code),
        Err(AppError::Failed(e)) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_UNUSABLE)
        }
    }
}

struct NoOrigins;
impl OriginOf for NoOrigins {
    fn origin_of(&self, _: &str) -> Option<Origin> {
        None
    }
}

async fn check(args: &CheckArgs, origins: Option<&dyn OriginOf>) -> Result<u8, AppError> {
    let targets = Config::targets_from_check_args(args, origins.unwrap_or(&NoOrigins))?;
    let ping = match &args.ping_url {
        Some(u) => Some(crate::ping::PingUrl::parse(u)?),
        None => None,
    };
    run_targets(targets, args.output.output.as_deref(), ping).await
}

async fn serve(
    args: &crate::cli::ServeArgs,
    origins: Option<&dyn OriginOf>,
) -> Result<u8, AppError> {
    let targets = Config::targets_from_check_args(&args.check, origins.unwrap_or(&NoOrigins))?;
    let listen: std::net::SocketAddr = args.listen.parse().map_err(|_| {
        AppError::Usage(format!(
            "--listen: '{}' is not ADDR:PORT, e.g. 127.0.0.1:9797",
            args.listen
        ))
    })?;
    if !listen.ip().is_loopback() {
        eprintln!(
            "warning: --listen {listen} is reachable from other machines; ssoprobe's endpoints carry no secrets, but anyone who reaches them can trigger logins"
        );
    }
    let min_login_interval = crate::config::parse_duration(
        "min_login_interval",
        &args.min_login_interval,
        &Origin::Flag,
    )?;
    let options = crate::serve::ServeOptions {
        listen,
        min_login_interval,
        concurrency: args.concurrency,
    };
    crate::serve::serve(targets, options, wait_for_stop())
        .await
        .map_err(|e| AppError::Io(e.to_string()))?;
    Ok(0)
}

fn config_check(args: &CheckArgs, origins: Option<&dyn OriginOf>) -> Result<u8, AppError> {
    let targets = Config::targets_from_check_args(args, origins.unwrap_or(&NoOrigins))?;
    if let Some(u) = &args.ping_url {
        crate::ping::PingUrl::parse(u)?;
    }
    println!(
        "configuration ok: {} target{}",
        targets.len(),
        if targets.len() == 1 { "" } else { "s" }
    );
    for (name, c) in &targets {
        let login = match &c.passkey {
            Some((file, path)) => format!(
                ", login as {} with {}",
                file.email.as_deref().unwrap_or(&file.username),
                path.display()
            ),
            None if c.service_token.is_some() => ", service token".to_string(),
            None => String::new(),
        };
        println!("  {name}: {} → {}{login}", c.service, c.idp);
    }
    Ok(0)
}

fn color_enabled(choice: ColorChoice) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                && std::io::stdout().is_terminal()
        }
    }
}

/// Most targets checked at the same time.
const TARGET_CONCURRENCY: usize = 4;

/// Runs the checks of every target (at most [`TARGET_CONCURRENCY`] at once), writes the
/// report, pings, and returns the exit code: the worst of all targets.
pub async fn run_targets(
    targets: Vec<(String, Config)>,
    output: Option<&std::path::Path>,
    ping: Option<crate::ping::PingUrl>,
) -> Result<u8, AppError> {
    use futures::StreamExt;
    let Some((_, first)) = targets.first() else {
        return Err(AppError::Usage("no target to check".into()));
    };
    let (format, color, mut ping_http) = (first.format, first.color, first.http.clone());
    // The ping URL is a capability: it is never traced.
    ping_http.trace = false;
    colored::control::set_override(output.is_none() && color_enabled(color));
    if targets.iter().any(|(_, c)| c.http.insecure) {
        eprintln!(
            "warning: --insecure: certificates are not verified for HTTP requests (the tls.* checks still judge them); never use this in monitoring"
        );
    }
    let pinger = match ping {
        Some(url) => Some((
            Http::new(&ping_http).map_err(|e| AppError::Io(e.to_string()))?,
            url,
        )),
        None => None,
    };
    if let Some((http, url)) = &pinger {
        url.start(http).await;
    }
    let results: Vec<Result<(String, Target, Outcome, i64), AppError>> =
        futures::stream::iter(targets.into_iter().map(|(name, config)| async move {
            let started_unix = crate::timefmt::unix_now();
            let http = Http::new(&config.http).map_err(|e| AppError::Io(e.to_string()))?;
            // Every request is bounded by the deadline; this guard only catches a check
            // that forgot to be.
            let guard = config.http.deadline + Duration::from_secs(2);
            let outcome = tokio::time::timeout(guard, checks::run(&config, &http))
                .await
                .map_err(|_| {
                    AppError::Io(format!(
                        "the run of {name} overran its deadline of {}",
                        crate::http::human_duration(config.http.deadline)
                    ))
                })?;
            let target = Target {
                service: config.service.to_string(),
                idp: config.idp.to_string(),
                team_domain: config.team_domain.clone(),
            };
            Ok((name, target, outcome, started_unix))
        }))
        .buffered(TARGET_CONCURRENCY)
        .collect()
        .await;
    let mut done = Vec::new();
    for r in results {
        done.push(r?);
    }
    let runs: Vec<report::TargetRun<'_>> = done
        .iter()
        .map(|(name, target, outcome, started)| report::TargetRun {
            name,
            target,
            outcome,
            started_unix: *started,
        })
        .collect();
    let text = match format {
        Format::Human => report::human_all(&runs),
        Format::Json => report::json_all(&runs),
        Format::Junit => report::junit::render(&runs),
        Format::Nagios => report::nagios::render(&runs),
        Format::Prometheus => report::prometheus::render(&runs),
    };
    let code = runs
        .iter()
        .map(|r| report::exit_code(r.outcome.status()))
        .max()
        .unwrap_or(0);
    match output {
        Some(path) => crate::atomic::write(path, text.as_bytes(), 0o644)
            .map_err(|e| AppError::Io(format!("--output: cannot write {}: {e}", path.display())))?,
        None => {
            let mut stdout = std::io::stdout().lock();
            // A closed pipe (| head) is not an error of the checks.
            let _ = stdout.write_all(text.as_bytes());
            let _ = stdout.flush();
        }
    }
    if let Some((http, url)) = &pinger {
        colored::control::set_override(false);
        let body = if format == Format::Human {
            text.clone()
        } else {
            report::human_all(&runs)
        };
        url.finish(http, code, &body).await;
    }
    Ok(code)
}

fn parse_faults(names: &[String]) -> Result<Vec<Fault>, AppError> {
    names
        .iter()
        .map(|n| {
            n.parse::<Fault>()
                .map_err(|e| AppError::Usage(format!("--fault: {e}")))
        })
        .collect()
}

/// A file in the temp directory removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn write(prefix: &str, contents: &str) -> Result<TempFile, AppError> {
        let path = std::env::temp_dir().join(format!(
            "{prefix}-{}-{}.pem",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::write(&path, contents)
            .map_err(|e| AppError::Io(format!("cannot write {}: {e}", path.display())))?;
        Ok(TempFile(path))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The `check` arguments a user would type to probe the running lab.
fn lab_check_args(lab: &Lab, ca_file: &std::path::Path) -> Vec<String> {
    let mut args = vec![
        "--service".to_string(),
        format!("https://{}", lab::SERVICE_HOST),
        "--idp".to_string(),
        format!("https://{}", lab::IDP_HOST),
        "--team".to_string(),
        lab::TEAM.to_string(),
        "--aud".to_string(),
        lab::AUD.to_string(),
    ];
    args.extend(lab.route_args());
    args.push("--ca-file".to_string());
    args.push(ca_file.display().to_string());
    args
}

async fn demo(args: &DemoArgs) -> Result<u8, AppError> {
    let faults = parse_faults(&args.faults)?;
    let lab = Lab::start(LabConfig {
        faults,
        ..LabConfig::default()
    })
    .await
    .map_err(|e| AppError::Lab(e.to_string()))?;
    let ca = TempFile::write("ssoprobe-lab-ca", lab.ca_pem())?;
    // The demo goes through the same argument parsing as a user's `check`.
    let mut argv = vec!["ssoprobe".to_string(), "check".to_string()];
    argv.extend(lab_check_args(&lab, &ca.0));
    let mut _passkey = None;
    if !args.no_login {
        // Enrolment gets the demo's own time limits, so a broken lab cannot stall it.
        let limit = [&args.timeout, &args.deadline]
            .into_iter()
            .flatten()
            .filter_map(|v| crate::config::parse_duration("timeout", v, &Origin::Flag).ok())
            .min()
            .unwrap_or(std::time::Duration::from_secs(5));
        match demo_enrol(&lab, &ca.0, limit).await {
            Ok(file) => {
                argv.push("--passkey".into());
                argv.push(file.0.display().to_string());
                _passkey = Some(file);
            }
            Err(e) => eprintln!(
                "demo: no passkey could be enrolled in the lab ({e}); the anonymous checks run alone"
            ),
        }
    }
    let passthrough: [(&str, &Option<String>); 4] = [
        ("--timeout", &args.timeout),
        ("--deadline", &args.deadline),
        ("--tls-warn-days", &args.tls_warn_days),
        ("--tls-fail-days", &args.tls_fail_days),
    ];
    for (flag, value) in passthrough {
        if let Some(v) = value {
            argv.push(flag.to_string());
            argv.push(v.clone());
        }
    }
    push_output_args(&mut argv, &args.output);
    let matches = Cli::command()
        .try_get_matches_from(&argv)
        .map_err(|e| AppError::Usage(e.to_string()))?;
    let cli = Cli::from_arg_matches(&matches).map_err(|e| AppError::Usage(e.to_string()))?;
    let Command::Check(check_args) = cli.command else {
        return Err(AppError::Usage(
            "internal: demo did not build a check".into(),
        ));
    };
    let origins = matches
        .subcommand_matches("check")
        .map(|m| m as &dyn OriginOf);
    let result = check(&check_args, origins).await;
    lab.shutdown().await;
    result
}

/// Enrols a passkey for probe@example.com in the lab, through `enroll`'s code path.
async fn demo_enrol(
    lab: &Lab,
    ca: &std::path::Path,
    limit: std::time::Duration,
) -> Result<TempFile, String> {
    let mut connect = crate::cli::ConnectArgs {
        resolve: Vec::new(),
        connect_to: Vec::new(),
        ca_file: Some(ca.to_path_buf()),
        insecure: false,
        timeout: Some(format!("{}ms", limit.as_millis().max(1))),
        trace: false,
    };
    for pair in lab.route_args().chunks(2) {
        match pair {
            [flag, value] if flag == "--resolve" => connect.resolve.push(value.clone()),
            [flag, value] if flag == "--connect-to" => connect.connect_to.push(value.clone()),
            _ => {}
        }
    }
    let options = crate::config::connect_options(&connect).map_err(|e| e.to_string())?;
    let http = Http::new(&options).map_err(|e| e.to_string())?;
    let idp = url::Url::parse(&format!("https://{}", lab::IDP_HOST)).map_err(|e| e.to_string())?;
    let how = crate::enroll::Bootstrap::ApiKey {
        key: crate::redact::Secret::new(lab.static_api_key()),
        user: "probe@example.com".into(),
    };
    let file = tokio::time::timeout(limit, crate::enroll::enroll(&http, &idp, how))
        .await
        .map_err(|_| {
            format!(
                "enrolment took longer than {}",
                crate::http::human_duration(limit)
            )
        })?
        .map_err(|e| e.to_string())?;
    let path = std::env::temp_dir().join(format!(
        "ssoprobe-demo-{}-{}.passkey",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    file.save(&path).map_err(|e| e.to_string())?;
    Ok(TempFile(path))
}

fn push_output_args(argv: &mut Vec<String>, output: &OutputArgs) {
    argv.push("--format".into());
    argv.push(
        clap::ValueEnum::to_possible_value(&output.format)
            .map(|v| v.get_name().to_string())
            .unwrap_or_else(|| "human".into()),
    );
    if output.trace {
        argv.push("--trace".into());
    }
    if let Some(path) = &output.output {
        argv.push("--output".into());
        argv.push(path.display().to_string());
    }
    argv.push("--color".into());
    argv.push(match output.color {
        ColorChoice::Auto => "auto".into(),
        ColorChoice::Always => "always".into(),
        ColorChoice::Never => "never".into(),
    });
}

async fn run_lab(args: &LabArgs) -> Result<u8, AppError> {
    if args.list_faults {
        for f in Fault::ALL {
            println!("{:<24} {}", f.name(), f.description());
        }
        return Ok(0);
    }
    let faults = parse_faults(&args.faults)?;
    let lab = Lab::start(LabConfig {
        faults: faults.clone(),
        ..LabConfig::default()
    })
    .await
    .map_err(|e| AppError::Lab(e.to_string()))?;
    let (dir, _cleanup) = match &args.dir {
        Some(d) => {
            std::fs::create_dir_all(d)
                .map_err(|e| AppError::Io(format!("--dir: cannot create {}: {e}", d.display())))?;
            (d.clone(), None)
        }
        None => {
            let d = std::env::temp_dir().join(format!(
                "ssoprobe-lab-{}-{}",
                std::process::id(),
                uuid::Uuid::new_v4().simple()
            ));
            std::fs::create_dir_all(&d)
                .map_err(|e| AppError::Io(format!("cannot create {}: {e}", d.display())))?;
            (d.clone(), Some(TempDir(d)))
        }
    };
    let ca_path = args.ca_out.clone().unwrap_or_else(|| dir.join("ca.pem"));
    write_private(&ca_path, lab.ca_pem())?;
    let key_path = dir.join("api-key.txt");
    write_private(&key_path, lab.static_api_key())?;
    let secret_path = dir.join("client-secret.txt");
    write_private(&secret_path, lab.client_secret())?;
    let (token_id, token_secret) = lab.service_token();
    let token_path = dir.join("service-token-secret.txt");
    write_private(&token_path, token_secret)?;
    write_private(&dir.join("service-token-id.txt"), token_id)?;
    let check_args = lab_check_args(&lab, &ca_path);
    let faults_text = if faults.is_empty() {
        "none".to_string()
    } else {
        faults
            .iter()
            .map(|f| f.name())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut toml = String::new();
    let mut it = check_args.chunks(2);
    let mut routes = Vec::new();
    let mut route_key = "resolve";
    for pair in it.by_ref() {
        if let [flag, value] = pair {
            match flag.as_str() {
                "--resolve" | "--connect-to" => {
                    route_key = if flag == "--resolve" {
                        "resolve"
                    } else {
                        "connect_to"
                    };
                    routes.push(format!("\"{value}\""));
                }
                other => toml.push_str(&format!(
                    "{} = \"{value}\"\n",
                    other.trim_start_matches("--").replace('-', "_")
                )),
            }
        }
    }
    toml.push_str(&format!("{route_key} = [{}]\n", routes.join(", ")));
    println!(
        "ssoprobe lab: Cloudflare Access edge, Pocket ID and the site on https://{} (faults: {faults_text})\n",
        lab.addr()
    );
    println!(
        "Check it with:\n  ssoprobe check {}\n",
        check_args.join(" ")
    );
    println!("or put this in a file and run `ssoprobe check --config FILE`:\n");
    for line in toml.lines() {
        println!("  {line}");
    }
    let routes = lab
        .route_args()
        .chunks(2)
        .map(|p| p.join(" "))
        .collect::<Vec<_>>()
        .join(" ");
    let passkey_path = dir.join("probe.passkey");
    println!(
        "\nTo log in as well, enrol a passkey for the lab's monitoring user:\n  ssoprobe enroll --idp https://{} --api-key-file {} --user probe@example.com --out {} {routes} --ca-file {}",
        lab::IDP_HOST,
        key_path.display(),
        passkey_path.display(),
        ca_path.display()
    );
    println!(
        "and add to the check above:  --passkey {}",
        passkey_path.display()
    );
    println!(
        "Own code flow (idp.exchange): --client-id {} --client-secret-file {}",
        lab::CLIENT_ID,
        secret_path.display()
    );
    println!(
        "Service token instead of a login: --service-token-id {token_id} --service-token-secret-file {}",
        token_path.display()
    );
    println!("\nPress Ctrl-C to stop.");
    let _ = std::io::stdout().flush();
    wait_for_stop().await;
    lab.shutdown().await;
    Ok(0)
}

/// Writes a file only its owner can read.
fn write_private(path: &std::path::Path, contents: &str) -> Result<(), AppError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
        .open(path)
        .and_then(|mut f| f.write_all(contents.as_bytes()))
        .map_err(|e| AppError::Io(format!("cannot write {}: {e}", path.display())))
}

/// A directory in the temp directory removed when dropped.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

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

async fn enroll(args: &EnrollArgs) -> Result<u8, AppError> {
    let idp = crate::config::parse_idp_url(&args.idp, &Origin::Flag)?;
    if args.out.exists() && !args.force {
        return Err(AppError::Usage(format!(
            "--out: {} exists; pass --force to replace it, or choose another file",
            args.out.display()
        )));
    }
    let how = match (&args.api_key_file, &args.login_code) {
        (Some(path), None) => {
            let key = crate::config::read_secret_file("api_key_file", path, &Origin::Flag)?;
            let user = args.user.clone().ok_or_else(|| {
                AppError::Usage(
                    "--user: give the monitoring user's e-mail, e.g. --user probe@example.com"
                        .into(),
                )
            })?;
            crate::enroll::Bootstrap::ApiKey { key, user }
        }
        (None, Some(code)) => crate::enroll::Bootstrap::LoginCode(crate::redact::Secret::new(
            crate::enroll::login_code(code),
        )),
        _ => {
            return Err(AppError::Usage(
                "give either --api-key-file with --user, or --login-code".into(),
            ));
        }
    };
    let options = crate::config::connect_options(&args.connect)?;
    if options.insecure {
        eprintln!("warning: --insecure: certificates are not verified");
    }
    let http = Http::new(&options).map_err(|e| AppError::Io(e.to_string()))?;
    let file = crate::enroll::enroll(&http, &idp, how)
        .await
        .map_err(|e| AppError::Failed(e.to_string()))?;
    file.save(&args.out)
        .map_err(|e| AppError::Io(e.to_string()))?;
    println!(
        "enrolled a passkey for {} ({}) at {}\n  credential {}\n  written to {} (mode 0600)",
        file.email.as_deref().unwrap_or(&file.username),
        file.user_id,
        file.idp,
        file.credential_fingerprint(),
        args.out.display()
    );
    Ok(0)
}

async fn passkey_command(command: PasskeyCommand) -> Result<u8, AppError> {
    match command {
        PasskeyCommand::Show { file } => {
            let cred = crate::passkey::CredentialFile::load(&file)
                .map_err(|e| AppError::Io(e.to_string()))?;
            let when = |t: Option<i64>| {
                t.map(crate::timefmt::rfc3339)
                    .unwrap_or_else(|| "never".into())
            };
            println!("passkey file {}", file.display());
            println!(
                "  user        {} ({})",
                cred.email.as_deref().unwrap_or(&cred.username),
                cred.user_id
            );
            println!("  username    {}", cred.username);
            println!(
                "  idp         {} (relying party id {})",
                cred.idp, cred.rp_id
            );
            println!("  credential  {}", cred.credential_fingerprint());
            println!("  created     {}", when(Some(cred.created_at)));
            println!("  last used   {}", when(cred.last_used_at));
            println!("  counter     {}", cred.counter);
            Ok(0)
        }
        PasskeyCommand::Remove {
            file,
            api_key_file,
            connect,
        } => {
            let cred = crate::passkey::CredentialFile::load(&file)
                .map_err(|e| AppError::Io(e.to_string()))?;
            let key =
                crate::config::read_secret_file("api_key_file", &api_key_file, &Origin::Flag)?;
            let options = crate::config::connect_options(&connect)?;
            let http = Http::new(&options).map_err(|e| AppError::Io(e.to_string()))?;
            crate::enroll::remove(&http, &cred, key)
                .await
                .map_err(|e| AppError::Failed(e.to_string()))?;
            std::fs::remove_file(&file).map_err(|e| {
                AppError::Io(format!(
                    "the passkey was deleted at Pocket ID, but {} could not be removed: {e}",
                    file.display()
                ))
            })?;
            println!(
                "deleted passkey {} of {} at {} and removed {}",
                cred.credential_fingerprint(),
                cred.email.as_deref().unwrap_or(&cred.username),
                cred.idp,
                file.display()
            );
            Ok(0)
        }
    }
}
