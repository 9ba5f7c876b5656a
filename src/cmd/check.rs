//! `ssoprobe check`: every target's checks, one report, one exit code (the worst).

use super::{AppError, NoOrigins};
use crate::checks::Outcome;
use crate::cli::{CheckArgs, ColorChoice, Format};
use crate::config::{Config, OriginOf, ReportFile};
use crate::http::{Http, HttpOptions, Waits};
use crate::report::har::TargetEntries;
use crate::report::{self, Target};
use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

pub(crate) async fn run(args: &CheckArgs, origins: Option<&dyn OriginOf>) -> Result<u8, AppError> {
    run_from(args, origins, Instant::now()).await
}

/// Like [`run`], for a run that began at `started` (the demo's, before its lab started):
/// the deadline counts from there.
pub(crate) async fn run_from(
    args: &CheckArgs,
    origins: Option<&dyn OriginOf>,
    started: Instant,
) -> Result<u8, AppError> {
    let origins = origins.unwrap_or(&NoOrigins);
    let targets = Config::targets_from_check_args(args, origins)?;
    super::known_checks(&targets)?;
    let ping = match &args.ping_url {
        Some(u) => Some(crate::ping::PingUrl::parse_as(
            u,
            &crate::config::named(origins, "ping_url"),
        )?),
        None => None,
    };
    let (har, reports) = run_files(&targets);
    let routing = routing_lines(args);
    let files = Files {
        output: args.output.output.as_deref(),
        har: har.as_deref(),
        print_config: args.print_config.then_some(routing.as_slice()),
        reports: &reports,
        named: Files::named(origins),
    };
    run_targets(targets, files, ping, started).await
}

/// `ssoprobe doctor`: the configuration checks of every target, no probe.
pub(crate) async fn run_doctor(
    args: &CheckArgs,
    origins: Option<&dyn OriginOf>,
) -> Result<u8, AppError> {
    // The deadline covers finding Pocket ID from Cloudflare too.
    let started = Instant::now();
    let origins = origins.unwrap_or(&NoOrigins);
    // Flags that only a login uses mean nothing here (the same keys in a config file
    // shared with `check` are fine).
    for (id, flag) in [
        ("expect_status", "--expect-status"),
        ("expect_body", "--expect-body"),
        ("client_secret_file", "--client-secret-file"),
        ("header", "--header"),
        ("ping_url", "--ping-url"),
    ] {
        if origins.origin_of(id) == Some(crate::config::Origin::Flag) {
            return Err(AppError::Usage(format!(
                "{flag} has no effect in doctor, which reads configuration and logs nobody in; use it with `ssoprobe check`"
            )));
        }
    }
    let mut targets = Config::targets_from_check_args(args, origins)?;
    super::known_checks(&targets)?;
    for (_, config) in &mut targets {
        // Pocket ID's URL: given, the passkey file's, or Cloudflare's login method's.
        // When Cloudflare's configuration does not name it, doctor runs without it: the
        // check whose finding kept it from being read says why (a refused token, no
        // application covering the site, not one OpenID Connect login method), and
        // Pocket ID's checks skip naming that check.
        if config.idp_source == crate::config::IdpSource::Unknown {
            if config.doctor.cf.is_none() {
                return Err(AppError::Usage(
                    "doctor reads Pocket ID at its URL, and it could not be found (no --idp, no --passkey file, and no Cloudflare API token to read it from the site's Access application): give --idp https://id.example.com (its APP_URL), or --cf-api-token-file".into(),
                ));
            }
            let http = Http::new(&config.http).map_err(|e| AppError::Io(e.to_string()))?;
            if let Some(idp) = crate::doctor::idp_from_cloudflare(config, &http).await {
                config.idp = idp;
                config.idp_source = crate::config::IdpSource::CloudflareLoginMethod;
            }
        }
        if !config.doctor.enabled() {
            return Err(AppError::Usage(
                "doctor reads configuration through the APIs: give --cf-api-token-file FILE (Cloudflare) and/or --api-key-file FILE (Pocket ID admin API key)".into(),
            ));
        }
        config.doctor.only = true;
    }
    if args.print_config {
        return Err(AppError::Usage(
            "--print-config belongs to `ssoprobe check URL`, which finds the team, AUD, Pocket ID and client id from the login chain".into(),
        ));
    }
    let (har, reports) = run_files(&targets);
    let files = Files {
        output: args.output.output.as_deref(),
        har: har.as_deref(),
        print_config: None,
        reports: &reports,
        named: Files::named(origins),
    };
    run_targets(targets, files, None, started).await
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

/// The most one ping (start or result) may take.
pub const PING_TIMEOUT: Duration = Duration::from_secs(2);

/// Most targets checked at the same time.
const TARGET_CONCURRENCY: usize = 4;

/// How long a run goes without a progress line.
const PROGRESS_AFTER: Duration = Duration::from_secs(1);

/// Where a run writes its report and its HAR archive (standard output and nowhere
/// when `None`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Files<'a> {
    /// `--output`.
    pub output: Option<&'a std::path::Path>,
    /// `--har`.
    pub har: Option<&'a std::path::Path>,
    /// `--print-config`: the TOML of what the run found instead of the report, with
    /// these routing and trust settings of the run (`resolve = […]`, …) on top.
    pub print_config: Option<&'a [String]>,
    /// `--report-json FILE`, …: the same run's report in other formats, each in its
    /// file, beside the one `--format` prints.
    pub reports: &'a [ReportFile],
    /// How `output` and `har` were given, as their errors name them ("--output" or
    /// "SSOPROBE_OUTPUT"; the flags when empty).
    pub named: (&'static str, &'static str),
}

impl Files<'_> {
    /// How `--output` and `--har` were given: the flag, or its variable.
    pub fn named(origins: &dyn OriginOf) -> (&'static str, &'static str) {
        let pick =
            |id: &str, flag: &'static str, variable: &'static str| match origins.origin_of(id) {
                Some(crate::config::Origin::Env) => variable,
                _ => flag,
            };
        (
            pick("output", "--output", "SSOPROBE_OUTPUT"),
            pick("har", "--har", "SSOPROBE_HAR"),
        )
    }
}

/// The HAR archive and report files of a run: `--har`, `--report-*`, their variables or
/// the config file's top-level keys — the same in every target's configuration, since
/// one archive and one report hold every target.
fn run_files(targets: &[(String, Config)]) -> (Option<std::path::PathBuf>, Vec<ReportFile>) {
    match targets.first() {
        Some((_, c)) => (c.har.clone(), c.reports.clone()),
        None => (None, Vec::new()),
    }
}

/// Runs the checks of every target (at most [`TARGET_CONCURRENCY`] at once), writes the
/// report, pings, and returns the exit code: the worst of all targets.
///
/// The deadline of a target counts from `started` (what came before — the start ping,
/// the demo's lab — is part of the run), or from its own start when it waited for a
/// slot; only the final ping comes after it (at most [`PING_TIMEOUT`]).
pub async fn run_targets(
    targets: Vec<(String, Config)>,
    files: Files<'_>,
    ping: Option<crate::ping::PingUrl>,
    started: Instant,
) -> Result<u8, AppError> {
    let Some((_, first)) = targets.first() else {
        return Err(AppError::Usage("no target to check".into()));
    };
    check_writable(files)?;
    let (format, color, quiet, trace) = (first.format, first.color, first.quiet, first.http.trace);
    let (start_ping_http, ping_http) = ping_options(&first.http);
    colored::control::set_override(files.output.is_none() && color_enabled(color));
    if targets.iter().any(|(_, c)| c.http.insecure) {
        eprintln!(
            "warning: --insecure: certificates are not verified for HTTP requests (the tls.* checks still judge them); never use this in monitoring"
        );
    }
    let pinger = match ping {
        Some(url) => Some(start_ping(url, &start_ping_http, &ping_http).await?),
        None => None,
    };
    // What came before the checks (a start ping, a lab) counts against the deadline.
    let prelude = started.elapsed();
    let show_progress = !quiet && !trace && std::io::stderr().is_terminal();
    let done = check_all(targets, prelude, files.har.is_some(), show_progress).await?;
    if let Some(path) = files.har {
        write_har(path, &done)?;
    }
    let runs: Vec<report::TargetRun<'_>> = done
        .iter()
        .map(|d| report::TargetRun {
            name: &d.name,
            target: &d.target,
            outcome: &d.outcome,
            started_unix: d.started_unix,
        })
        .collect();
    let text = render(format, files.print_config, trace, &runs);
    let code = runs
        .iter()
        .map(|r| report::exit_code(r.outcome.status()))
        .max()
        .unwrap_or(0);
    write_report(files.output, quiet, &text)?;
    write_report_files(files.reports, &runs)?;
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

/// Refuses a run whose report, report files or HAR archive could not be written, or
/// two of which would go to the same file, before it starts.
fn check_writable(files: Files<'_>) -> Result<(), AppError> {
    let or_flag = |named: &'static str, flag: &'static str| {
        if named.is_empty() { flag } else { named }
    };
    if let Some(path) = files.output {
        writable_as(or_flag(files.named.0, "--output"), path)?;
    }
    if let Some(path) = files.har {
        writable_as(or_flag(files.named.1, "--har"), path)?;
    }
    let mut taken: Vec<(std::path::PathBuf, &str)> = Vec::new();
    let named = [("--output", files.output), ("--har", files.har)];
    let named = named
        .into_iter()
        .filter_map(|(setting, path)| Some((setting, path?)));
    let reports = files
        .reports
        .iter()
        .map(|r| (r.setting.as_str(), r.path.as_path()));
    for (setting, path) in named.chain(reports) {
        let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        if let Some((_, other)) = taken.iter().find(|(p, _)| *p == absolute) {
            return Err(AppError::Usage(format!(
                "{setting}: {} is also the file of {other}; give each report its own file",
                path.display()
            )));
        }
        taken.push((absolute, setting));
    }
    for report in files.reports {
        writable_as(&report.setting, &report.path)?;
    }
    Ok(())
}

/// The HTTP options of the start ping and of the final ping, from the first target's.
fn ping_options(first: &HttpOptions) -> (HttpOptions, HttpOptions) {
    let mut ping_http = first.clone();
    // The ping URL is a capability: it is never traced.
    ping_http.trace = false;
    // Each ping gets at most PING_TIMEOUT. The start ping counts against the run's
    // deadline and gets at most a quarter of it; only the final ping comes after it.
    ping_http.timeout = ping_http.timeout.min(PING_TIMEOUT);
    ping_http.deadline += PING_TIMEOUT;
    let mut start_ping_http = ping_http.clone();
    start_ping_http.timeout = ping_http.timeout.min(first.deadline / 4);
    start_ping_http.connect_timeout = start_ping_http.connect_timeout.min(start_ping_http.timeout);
    ping_http.connect_timeout = ping_http.connect_timeout.min(ping_http.timeout);
    (start_ping_http, ping_http)
}

/// Sends the start ping; returns the client and URL of the final one.
async fn start_ping(
    url: crate::ping::PingUrl,
    start_ping_http: &HttpOptions,
    ping_http: &HttpOptions,
) -> Result<(Http, crate::ping::PingUrl), AppError> {
    let start = Http::new(start_ping_http).map_err(|e| AppError::Io(e.to_string()))?;
    url.start(&start).await;
    let finish = Http::new(ping_http).map_err(|e| AppError::Io(e.to_string()))?;
    Ok((finish, url))
}

/// One target's finished run: what its report and its HAR archive need.
struct TargetDone {
    name: String,
    target: Target,
    outcome: Outcome,
    started_unix: i64,
    entries: Vec<crate::har::Entry>,
}

/// Runs every target (at most [`TARGET_CONCURRENCY`] at once, in order), with a progress
/// line while it lasts when `show_progress`; the first target that could not run is the
/// error.
async fn check_all(
    targets: Vec<(String, Config)>,
    prelude: Duration,
    record_har: bool,
    show_progress: bool,
) -> Result<Vec<TargetDone>, AppError> {
    use futures::StreamExt;
    let waits: Vec<Arc<Waits>> = targets.iter().map(|_| Arc::default()).collect();
    let names: Vec<String> = targets.iter().map(|(n, _)| n.clone()).collect();
    let progress = show_progress.then(|| tokio::spawn(progress_line(names, waits.clone())));
    let results: Vec<Result<TargetDone, AppError>> = futures::stream::iter(
        targets
            .into_iter()
            .zip(waits)
            .map(|((name, config), waits)| check_target(name, config, waits, prelude, record_har)),
    )
    .buffered(TARGET_CONCURRENCY)
    .collect()
    .await;
    if let Some(progress) = progress {
        progress.abort();
        // The line is gone before the report prints.
        let _ = progress.await;
    }
    results.into_iter().collect()
}

/// Runs one target's checks until its deadline, less `prelude` (what came before them).
async fn check_target(
    name: String,
    config: Config,
    waits: Arc<Waits>,
    prelude: Duration,
    record_har: bool,
) -> Result<TargetDone, AppError> {
    let started_unix = crate::timefmt::unix_now();
    let until = (Instant::now() + config.http.deadline)
        .checked_sub(prelude)
        .unwrap_or_else(Instant::now);
    let mut http =
        Http::new_until(&config.http, until, waits).map_err(|e| AppError::Io(e.to_string()))?;
    if record_har {
        http.record_har();
    }
    let (mut outcome, found) = crate::checks::run_found(&config, &http).await;
    outcome.before = prelude;
    let target = Target::of(&config, found);
    Ok(TargetDone {
        name,
        target,
        outcome,
        started_unix,
        entries: http.har_entries(),
    })
}

/// Writes the HAR archive of every target's run to `path`.
fn write_har(path: &std::path::Path, done: &[TargetDone]) -> Result<(), AppError> {
    let archives: Vec<TargetEntries<'_>> = done
        .iter()
        .map(|d| TargetEntries {
            name: &d.name,
            entries: d.entries.clone(),
            checks: &d.outcome.checks,
        })
        .collect();
    let document = report::har::document(&archives);
    let text = serde_json::to_string_pretty(&document).unwrap_or_default();
    // Rule: a file that may hold secrets is its owner's alone (0600) from creation.
    crate::atomic::write(path, text.as_bytes(), 0o600).map_err(|e| {
        AppError::Io(format!(
            "--har: cannot write {}: {}",
            path.display(),
            crate::text::io_words(&e)
        ))
    })
}

/// The routing, trust and login settings given as flags or variables (`--resolve`,
/// `--connect-to`, `--ca-file` and `--passkey` made absolute, `--insecure`, the proxy
/// without its credentials), as config-file lines: the printed config checks the same
/// origins the same way the run did.
fn routing_lines(args: &CheckArgs) -> Vec<String> {
    let list = |values: &[String]| {
        toml::Value::Array(values.iter().cloned().map(toml::Value::String).collect()).to_string()
    };
    let mut lines = Vec::new();
    if !args.resolve.is_empty() {
        lines.push(format!("resolve = {}", list(&args.resolve)));
    }
    if !args.connect_to.is_empty() {
        lines.push(format!("connect_to = {}", list(&args.connect_to)));
    }
    if let Some(ca) = &args.ca_file {
        let ca = std::fs::canonicalize(ca).unwrap_or_else(|_| ca.clone());
        lines.push(format!(
            "ca_file = {}",
            toml::Value::String(ca.display().to_string())
        ));
    }
    if args.insecure {
        lines.push("insecure = true".into());
    }
    // The login too: without it the pinned file would check the anonymous chain alone.
    if let Some(passkey) = &args.passkey {
        let passkey = std::fs::canonicalize(passkey).unwrap_or_else(|_| passkey.clone());
        lines.push(format!(
            "passkey = {}",
            toml::Value::String(passkey.display().to_string())
        ));
    }
    // The proxy, never its credentials: the line says to put them back.
    if let Some(proxy) = &args.proxy {
        match crate::proxy::Proxy::parse(proxy, "--proxy") {
            Ok(p) if p.has_credentials() => lines.push(format!(
                "# proxy = {}   (its user:password left out: put them back in place of ***)",
                toml::Value::String(p.shown())
            )),
            Ok(_) | Err(_) if proxy.is_empty() => lines.push("proxy = \"\"".into()),
            Ok(p) => lines.push(format!("proxy = {}", toml::Value::String(p.shown()))),
            Err(_) => {}
        }
    }
    if let Some(noproxy) = &args.noproxy {
        lines.push(format!(
            "noproxy = {}",
            toml::Value::String(noproxy.clone())
        ));
    }
    lines
}

/// The report in `format`, or the TOML of what the run found for `--print-config`.
fn render(
    format: Format,
    print_config: Option<&[String]>,
    every_problem: bool,
    runs: &[report::TargetRun<'_>],
) -> String {
    match format {
        _ if let Some(routing) = print_config => report::config_toml(runs, routing),
        Format::Human => report::human_all_with(runs, every_problem),
        Format::Json => report::json_all(runs),
        Format::Junit => report::junit::render(runs),
        Format::Nagios => report::nagios::render(runs),
        Format::Prometheus => report::prometheus::render(runs),
    }
}

/// Writes the report files (`--report-json FILE`, …), each atomically; the first that
/// cannot be written is the error (the others are still written).
fn write_report_files(
    reports: &[ReportFile],
    runs: &[report::TargetRun<'_>],
) -> Result<(), AppError> {
    let mut first_error = None;
    for report in reports {
        let text = render(report.format, None, false, runs);
        if let Err(e) = crate::atomic::write(&report.path, text.as_bytes(), 0o644) {
            first_error.get_or_insert_with(|| {
                AppError::Io(format!(
                    "{}: cannot write {}: {}",
                    report.setting,
                    report.path.display(),
                    crate::text::io_words(&e)
                ))
            });
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Writes the report to `--output`, else to standard output unless `--quiet`.
fn write_report(output: Option<&std::path::Path>, quiet: bool, text: &str) -> Result<(), AppError> {
    match output {
        Some(path) => crate::atomic::write(path, text.as_bytes(), 0o644).map_err(|e| {
            AppError::Io(format!(
                "--output: cannot write {}: {}",
                path.display(),
                crate::text::io_words(&e)
            ))
        })?,
        None if quiet => {}
        None => {
            let mut stdout = std::io::stdout().lock();
            // A closed pipe (| head) is not an error of the checks.
            let _ = stdout.write_all(text.as_bytes());
            let _ = stdout.flush();
        }
    }
    Ok(())
}

/// While the run lasts longer than [`PROGRESS_AFTER`], a line on the terminal's stderr
/// says which check waits for what, and for how long; it is cleared when the task is
/// aborted (the report is about to print).
async fn progress_line(names: Vec<String>, waits: Vec<Arc<Waits>>) {
    use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
    tokio::time::sleep(PROGRESS_AFTER).await;
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{spinner} {wide_msg}") {
        bar.set_style(style);
    }
    // Cleared however the task ends (aborted when the report is ready).
    struct Clear(ProgressBar);
    impl Drop for Clear {
        fn drop(&mut self) {
            self.0.finish_and_clear();
        }
    }
    let bar = Clear(bar);
    let started = Instant::now() - PROGRESS_AFTER;
    let several = names.len() > 1;
    loop {
        let longest = names
            .iter()
            .zip(&waits)
            .filter_map(|(name, w)| w.longest().map(|wait| (name, wait)))
            .min_by_key(|(_, wait)| wait.since);
        let message = match longest {
            Some((name, wait)) => format!(
                "{}{} waiting {} for {}",
                if several {
                    format!("[{name}] ")
                } else {
                    String::new()
                },
                wait.check,
                crate::timefmt::human_duration(Duration::from_millis(
                    wait.since.elapsed().as_millis() as u64 / 100 * 100
                )),
                wait.what
            ),
            None => format!(
                "checking… {}",
                crate::timefmt::human_duration(Duration::from_secs(started.elapsed().as_secs()))
            ),
        };
        bar.0.set_message(message);
        bar.0.tick();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Whether a file can be written at `path` (checked before the run, so that the run's
/// evidence is not lost at its end; the report is written atomically: a file beside it,
/// then a rename); errors name `flag`.
fn writable_as(flag: &str, path: &std::path::Path) -> Result<(), AppError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    if path.is_dir() {
        return Err(AppError::Usage(format!(
            "{flag}: {} is a directory; give a file name in it",
            path.display()
        )));
    }
    let probe = dir.join(format!(
        ".ssoprobe-write-test-{}",
        uuid::Uuid::new_v4().simple()
    ));
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
    {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => Err(AppError::Usage(format!(
            "{flag}: cannot write in {} ({}); choose a directory you can write to",
            dir.display(),
            crate::text::io_words(&e)
        ))),
    }
}
