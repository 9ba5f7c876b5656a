//! `ssoprobe demo`: starts the lab, enrols a passkey in it and runs the full check
//! through the same argument parsing as a user's `check`.

use super::AppError;
use super::lab::{TempFile, lab_api_args, lab_check_args, lab_config};
use crate::cli::{Cli, ColorChoice, Command, DemoArgs, OutputArgs};
use crate::config::{Origin, OriginOf};
use crate::http::Http;
use clap::{CommandFactory, FromArgMatches};
use ssoprobe_lab::{self as lab, Lab};

/// Runs the demo until it ends or is interrupted; either way its temporary files (the
/// lab's CA, the passkey) are removed, as the demo's future is dropped.
pub(crate) async fn run(args: &DemoArgs) -> Result<u8, AppError> {
    tokio::select! {
        result = demo(args) => result,
        () = super::wait_for_stop() => Err(AppError::Interrupted),
    }
}

async fn demo(args: &DemoArgs) -> Result<u8, AppError> {
    // The deadline covers the whole demo: the lab's start and the enrolment count.
    let started = tokio::time::Instant::now();
    let deadline = match &args.deadline {
        Some(d) => crate::config::parse_duration("deadline", d, &Origin::Flag)?,
        None => crate::config::DEFAULT_DEADLINE,
    };
    let until = started + deadline;
    let lab = tokio::time::timeout_at(
        until,
        Lab::start(lab_config(
            &args.faults,
            args.variant.as_deref(),
            args.rtt.as_deref(),
            args.gateway.as_deref(),
        )?),
    )
    .await
    .map_err(|_| {
        AppError::Lab(format!(
            "it did not start within the deadline of {}",
            crate::timefmt::human_duration(deadline)
        ))
    })?
    .map_err(|e| AppError::Lab(e.to_string()))?;
    let ca = TempFile::write("ssoprobe-lab-ca", lab.ca_pem())?;
    // The demo goes through the same argument parsing as a user's `check`.
    let mut argv = vec!["ssoprobe".to_string(), "check".to_string()];
    argv.extend(lab_check_args(&lab, &ca.0));
    // The lab runs in this process, on loopback: never through a proxy, whatever the
    // environment says.
    argv.extend(["--proxy".to_string(), String::new()]);
    // With --doctor: the API credentials, in files like a user's.
    let mut _api_files = None;
    if args.doctor {
        let token = TempFile::write("ssoprobe-lab-cf-token", lab.cf_api_token())?;
        let key = TempFile::write("ssoprobe-lab-api-key", lab.static_api_key())?;
        argv.extend(lab_api_args(&lab, &token.0, &key.0));
        _api_files = Some((token, key));
    }
    let mut _passkey = None;
    if !args.no_login {
        // Enrolment gets at most half of what is left of the deadline (and the
        // per-request timeout), so a broken lab leaves the checks time to say why.
        let timeout = match &args.timeout {
            Some(t) => crate::config::parse_duration("timeout", t, &Origin::Flag)?,
            None => crate::config::DEFAULT_TIMEOUT,
        };
        let limit = timeout
            .min(until.saturating_duration_since(tokio::time::Instant::now()) / 2)
            .max(std::time::Duration::from_millis(1));
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
    for (flag, values) in [("--warning", &args.warning), ("--critical", &args.critical)] {
        for v in values {
            argv.push(flag.to_string());
            argv.push(v.clone());
        }
    }
    push_output_args(&mut argv, &args.output);
    if let Some(path) = &args.har {
        argv.push("--har".into());
        argv.push(path.display().to_string());
    }
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
    let result = super::check::run_from(&check_args, origins, started).await;
    lab.shutdown().await;
    result
}

/// Enrols a passkey for the lab's monitoring user in the lab, through `enroll`'s code path.
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
        connect_timeout: None,
        proxy: Some(String::new()),
        noproxy: None,
        trace: false,
    };
    for pair in lab.route_args().chunks(2) {
        match pair {
            [flag, value] if flag == "--resolve" => connect.resolve.push(value.clone()),
            [flag, value] if flag == "--connect-to" => connect.connect_to.push(value.clone()),
            _ => {}
        }
    }
    let idp = url::Url::parse(&format!("https://{}", lab::IDP_HOST)).map_err(|e| e.to_string())?;
    let options = crate::config::connect_options(&connect, &idp).map_err(|e| e.to_string())?;
    let http = Http::new(&options).map_err(|e| e.to_string())?;
    let how = crate::pocketid::enroll::Bootstrap::ApiKey {
        key: crate::redact::Secret::configured(lab.static_api_key()),
        user: lab.monitor_user().into(),
    };
    let file = tokio::time::timeout(limit, crate::pocketid::enroll::enroll(&http, &idp, how))
        .await
        .map_err(|_| {
            format!(
                "enrolment took longer than {}",
                crate::timefmt::human_duration(limit)
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
    if output.quiet {
        argv.push("--quiet".into());
    }
    if let Some(path) = &output.output {
        argv.push("--output".into());
        argv.push(path.display().to_string());
    }
    for (flag, path) in [
        ("--report-json", &output.report_json),
        ("--report-junit", &output.report_junit),
        ("--report-nagios", &output.report_nagios),
        ("--report-prometheus", &output.report_prometheus),
    ] {
        if let Some(path) = path {
            argv.push(flag.into());
            argv.push(path.display().to_string());
        }
    }
    argv.push("--color".into());
    argv.push(match output.color {
        _ if output.no_color => "never".into(),
        ColorChoice::Auto => "auto".into(),
        ColorChoice::Always => "always".into(),
        ColorChoice::Never => "never".into(),
    });
}
