//! `ssoprobe lab`: runs the lab in the foreground and prints how to check it.

use super::{AppError, wait_for_stop};
use crate::cli::LabArgs;
use ssoprobe_lab::{self as lab, Fault, Gateway, Lab, LabConfig, Variant};
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

/// The largest `--rtt`: the lab drops a client whose TLS handshake (2 RTT from the
/// accept) takes 10 s, and no real path is that slow.
const MAX_RTT: Duration = Duration::from_secs(2);

/// The lab configuration of `--fault`, `--variant`, `--rtt` and `--gateway` (Cloudflare
/// Access in front of the site without it).
pub(crate) fn lab_config(
    faults: &[String],
    variant: Option<&str>,
    rtt: Option<&str>,
    gateway: Option<&str>,
) -> Result<LabConfig, AppError> {
    lab_config_for(faults, variant, rtt, parse_gateway(gateway)?)
}

/// `--gateway`: a gateway the lab knows, else a usage error naming them.
pub(crate) fn parse_gateway(name: Option<&str>) -> Result<Gateway, AppError> {
    let Some(name) = name else {
        return Ok(Gateway::default());
    };
    name.parse::<Gateway>().map_err(|_| {
        let names = Gateway::ALL.map(Gateway::name);
        AppError::Usage(format!(
            "--gateway: unknown gateway '{}'{} (the lab's gateways: {})",
            crate::redact::terminal_safe(name),
            crate::text::did_you_mean(name, names),
            names.join(", ")
        ))
    })
}

/// The lab configuration of `--fault`, `--variant` and `--rtt` with `gateway` in front
/// of the site; a fault that breaks another gateway is a usage error.
fn lab_config_for(
    faults: &[String],
    variant: Option<&str>,
    rtt: Option<&str>,
    gateway: Gateway,
) -> Result<LabConfig, AppError> {
    let variant = match variant {
        Some(name) => name.parse::<Variant>().map_err(|_| {
            let names = Variant::ALL.map(Variant::name);
            AppError::Usage(format!(
                "--variant: unknown variant '{}'{} (the lab's variants: {})",
                crate::redact::terminal_safe(name),
                crate::text::did_you_mean(name, names),
                names.join(", ")
            ))
        })?,
        None => Variant::default(),
    };
    let faults = parse_faults(faults)?;
    if let Some(fault) = faults.iter().find(|f| f.gateway() != gateway) {
        let how = match fault.gateway() {
            Gateway::Access => "run it without --gateway".to_string(),
            other => format!(
                "run `ssoprobe demo --gateway {other} --fault {fault}` (or `ssoprobe lab --gateway {other} --fault {fault}`)"
            ),
        };
        return Err(AppError::Usage(format!(
            "--fault: {fault} breaks the lab's {} gateway, not {gateway}: {how}",
            fault.gateway()
        )));
    }
    Ok(LabConfig::default()
        .with_faults(faults)
        .with_variant(variant)
        .with_rtt(parse_rtt(rtt)?)
        .with_gateway(gateway))
}

/// `--rtt`: a duration up to [`MAX_RTT`], or `0` (`0ms`, `0s`) for none; the same
/// syntax as every duration setting.
fn parse_rtt(value: Option<&str>) -> Result<Duration, AppError> {
    let Some(value) = value else {
        return Ok(Duration::ZERO);
    };
    let range = crate::config::DurationRange {
        min: Duration::from_millis(1),
        max: MAX_RTT,
        zero_is_off: true,
    };
    Ok(crate::config::parse_duration_in(
        "rtt",
        value,
        &crate::config::Origin::Flag,
        range,
    )?)
}

/// `--fault`'s names; an unknown one is named with the nearest the lab knows (the whole
/// list is `lab --list-faults`).
fn parse_faults(names: &[String]) -> Result<Vec<Fault>, AppError> {
    names
        .iter()
        .map(|n| {
            n.parse::<Fault>().map_err(|_| {
                AppError::Usage(format!(
                    "--fault: unknown fault '{}'{} (`ssoprobe lab --list-faults` lists every fault)",
                    crate::redact::terminal_safe(n),
                    crate::text::did_you_mean(n, Fault::ALL.iter().map(|f| f.name())),
                ))
            })
        })
        .collect()
}

/// `cmd` with the lab's fault and variant names as the values of `demo` and `lab`'s
/// `--fault` and `--variant`, each with its description, for shell completion. The
/// values are not listed in `--help` (`lab --list-faults` does, with the descriptions)
/// and are checked by [`lab_config`].
pub(crate) fn with_names(cmd: clap::Command) -> clap::Command {
    let faults: Vec<(&'static str, &'static str)> = Fault::ALL
        .iter()
        .map(|f| (f.name(), f.description()))
        .collect();
    let variants: Vec<(&'static str, &'static str)> = Variant::ALL
        .iter()
        .map(|v| (v.name(), v.description()))
        .collect();
    let names = move |sub: clap::Command| {
        let (faults, variants) = (faults.clone(), variants.clone());
        sub.mut_arg("faults", |a| {
            a.value_parser(Names(faults)).hide_possible_values(true)
        })
        .mut_arg("variant", |a| {
            a.value_parser(Names(variants)).hide_possible_values(true)
        })
    };
    // In place (`mut_subcommand` would move them to the end of the list).
    cmd.mut_subcommands(|sub| match sub.get_name() {
        "demo" | "lab" => names(sub),
        _ => sub,
    })
}

/// Any text, offering `names` (each with its description) as the possible values.
#[derive(Clone)]
struct Names(Vec<(&'static str, &'static str)>);

impl clap::builder::TypedValueParser for Names {
    type Value = String;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<String, clap::Error> {
        clap::builder::StringValueParser::new().parse_ref(cmd, arg, value)
    }

    fn possible_values(
        &self,
    ) -> Option<Box<dyn Iterator<Item = clap::builder::PossibleValue> + '_>> {
        Some(Box::new(self.0.iter().map(|(name, help)| {
            clap::builder::PossibleValue::new(*name).help(*help)
        })))
    }
}

/// A file in the temp directory removed when dropped.
pub(crate) struct TempFile(pub(crate) PathBuf);

impl TempFile {
    /// `prefix-PID-RANDOM.pem` when `prefix` names a CA, else `.txt`; mode 0600 (it may
    /// hold a key).
    pub(crate) fn write(prefix: &str, contents: &str) -> Result<TempFile, AppError> {
        let ext = if prefix.ends_with("-ca") {
            "pem"
        } else {
            "txt"
        };
        let path = std::env::temp_dir().join(format!(
            "{prefix}-{}-{}.{ext}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        write_private(&path, contents)?;
        Ok(TempFile(path))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The `check` arguments a user would type to probe the running lab.
pub(crate) fn lab_check_args(lab: &Lab, ca_file: &std::path::Path) -> Vec<String> {
    let mut args = vec![
        "--service".to_string(),
        format!("https://{}", lab::SERVICE_HOST),
        "--idp".to_string(),
        format!("https://{}", lab::IDP_HOST),
    ];
    match lab.gateway() {
        Gateway::Access => args.extend([
            "--team".to_string(),
            lab::TEAM.to_string(),
            "--aud".to_string(),
            lab::AUD.to_string(),
        ]),
        Gateway::Oauth2Proxy => args.extend([
            "--gateway".to_string(),
            "oauth2-proxy".to_string(),
            "--client-id".to_string(),
            lab::O2P_CLIENT_ID.to_string(),
        ]),
    }
    args.extend(lab.route_args());
    args.push("--ca-file".to_string());
    args.push(ca_file.display().to_string());
    args
}

/// What `check` needs besides [`lab_check_args`] to read the lab's configuration
/// through its APIs (the `config.*` checks): the Cloudflare API's URL, route and token,
/// Pocket ID's admin key, the monitoring user.
pub(crate) fn lab_api_args(
    lab: &Lab,
    cf_token: &std::path::Path,
    api_key: &std::path::Path,
) -> Vec<String> {
    let mut args = Vec::new();
    // oauth2-proxy has no API: behind it, only Pocket ID's configuration is read.
    if lab.gateway() == Gateway::Access {
        args.extend([
            "--cf-api-url".to_string(),
            lab::CF_API_URL.to_string(),
            "--cf-api-token-file".to_string(),
            cf_token.display().to_string(),
        ]);
    }
    args.extend([
        "--api-key-file".to_string(),
        api_key.display().to_string(),
        "--user".to_string(),
        lab::PROBE_EMAIL.to_string(),
    ]);
    let site_routes: Vec<String> = lab.route_args();
    let site_pairs: Vec<&[String]> = site_routes.chunks(2).collect();
    for pair in lab.doctor_route_args().chunks(2) {
        if !site_pairs.contains(&pair) {
            args.extend(pair.iter().cloned());
        }
    }
    args
}

/// `ssoprobe lab`: lists the faults or variants, or runs the lab until stopped: writes
/// the files a check of it needs, prints how to check it and logs its API requests.
pub(crate) async fn run(args: &LabArgs) -> Result<u8, AppError> {
    let gateway = parse_gateway(args.gateway.as_deref())?;
    if args.list_faults {
        for f in Fault::ALL.iter().filter(|f| f.gateway() == gateway) {
            println!("{:<24} {}", f.name(), f.description());
        }
        return Ok(0);
    }
    if args.list_variants {
        for v in Variant::ALL {
            println!("{:<24} {}", v.name(), v.description());
        }
        return Ok(0);
    }
    let config = lab_config_for(
        &args.faults,
        args.variant.as_deref(),
        args.rtt.as_deref(),
        gateway,
    )?;
    let faults = config.faults.clone();
    let variant = config.variant;
    let lab = Lab::start(config)
        .await
        .map_err(|e| AppError::Lab(e.to_string()))?;
    let (dir, _cleanup) = files_dir(args.dir.as_deref())?;
    let files = LabFiles::write(&lab, &dir, args.ca_out.clone())?;
    if gateway == Gateway::Oauth2Proxy {
        print_oauth2_proxy(
            &lab,
            &files,
            &dir,
            &faults,
            variant,
            &lab_check_args(&lab, &files.ca),
        );
        println!("\nPress Ctrl-C to stop. API requests are listed below as they come.");
        let _ = std::io::stdout().flush();
        let log = log_api_requests(&lab);
        wait_for_stop().await;
        log.abort();
        lab.shutdown().await;
        return Ok(0);
    }
    let check_args = lab_check_args(&lab, &files.ca);
    print_how_to_check(&lab, &check_args, &faults, variant);
    print_how_to_log_in(&lab, &files, &dir);
    let mut doctor_args = check_args.clone();
    doctor_args.extend(lab_api_args(&lab, &files.cf_token, &files.api_key));
    println!(
        "\nRead both configurations through their APIs (read-only) and cross-check them — after the enrol line above, which creates the monitoring user config.user looks for (before it, config.user fails: Pocket ID has no such user yet):\n  ssoprobe doctor {}",
        doctor_args.join(" ")
    );
    println!("\nPress Ctrl-C to stop. API requests are listed below as they come.");
    let _ = std::io::stdout().flush();
    let log = log_api_requests(&lab);
    wait_for_stop().await;
    log.abort();
    lab.shutdown().await;
    Ok(0)
}

/// Where the lab's files go: `--dir` (kept), else a new directory in the temp directory,
/// removed when the returned guard drops.
fn files_dir(dir: Option<&std::path::Path>) -> Result<(PathBuf, Option<TempDir>), AppError> {
    match dir {
        Some(d) => {
            std::fs::create_dir_all(d).map_err(|e| {
                AppError::Io(format!(
                    "--dir: cannot create {}: {}",
                    d.display(),
                    crate::text::io_words(&e)
                ))
            })?;
            Ok((d.to_path_buf(), None))
        }
        None => {
            let d = std::env::temp_dir().join(format!(
                "ssoprobe-lab-{}-{}",
                std::process::id(),
                uuid::Uuid::new_v4().simple()
            ));
            std::fs::create_dir_all(&d).map_err(|e| {
                AppError::Io(format!(
                    "cannot create {}: {}",
                    d.display(),
                    crate::text::io_words(&e)
                ))
            })?;
            Ok((d.clone(), Some(TempDir(d))))
        }
    }
}

/// The files the printed commands name: the lab's CA and its credentials, each 0600.
struct LabFiles {
    ca: PathBuf,
    api_key: PathBuf,
    client_secret: PathBuf,
    service_token_secret: PathBuf,
    cf_token: PathBuf,
    /// oauth2-proxy's client secret, under the oauth2-proxy gateway.
    proxy_client_secret: Option<PathBuf>,
}

impl LabFiles {
    /// Writes them in `dir` (the CA at `ca_out` when given), with the service token's id
    /// beside its secret.
    fn write(
        lab: &Lab,
        dir: &std::path::Path,
        ca_out: Option<PathBuf>,
    ) -> Result<LabFiles, AppError> {
        let ca = ca_out.unwrap_or_else(|| dir.join("ca.pem"));
        write_private(&ca, lab.ca_pem())?;
        let api_key = dir.join("api-key.txt");
        write_private(&api_key, lab.static_api_key())?;
        let client_secret = dir.join("client-secret.txt");
        write_private(&client_secret, lab.client_secret())?;
        let (token_id, token_secret) = lab.service_token();
        let service_token_secret = dir.join("service-token-secret.txt");
        write_private(&service_token_secret, token_secret)?;
        write_private(&dir.join("service-token-id.txt"), token_id)?;
        let cf_token = dir.join("cf-api-token.txt");
        write_private(&cf_token, lab.cf_api_token())?;
        let proxy_client_secret = match lab.proxy_client_secret() {
            Some(secret) => {
                let path = dir.join("oauth2-proxy-client-secret.txt");
                write_private(&path, secret)?;
                Some(path)
            }
            None => None,
        };
        Ok(LabFiles {
            proxy_client_secret,
            ca,
            api_key,
            client_secret,
            service_token_secret,
            cf_token,
        })
    }
}

/// Prints what runs, and three ways to check it: the URL alone, everything pinned, a
/// config file.
fn print_how_to_check(lab: &Lab, check_args: &[String], faults: &[Fault], variant: Variant) {
    let faults_text = if faults.is_empty() {
        "none".to_string()
    } else {
        faults
            .iter()
            .map(|f| f.name())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let rtt_text = if lab.rtt().is_zero() {
        "0 (off)".to_string()
    } else {
        crate::timefmt::human_duration(lab.rtt())
    };
    println!(
        "ssoprobe lab: Cloudflare Access edge, Pocket ID and the site on https://{} (faults: {faults_text}; variant: {variant}; rtt: {rtt_text})\n",
        lab.addr()
    );
    print_short_check(check_args);
    println!(
        "or with the team, AUD and Pocket ID pinned as expectations (a change is then a finding):\n  ssoprobe check {}\n",
        check_args.join(" ")
    );
    println!("or put this in a file and run `ssoprobe check --config FILE`:\n");
    for line in config_file_text(check_args).lines() {
        println!("  {line}");
    }
}

/// The config file of `check_args`: one key per flag, the routes in one list.
fn config_file_text(check_args: &[String]) -> String {
    let mut toml = String::new();
    let mut routes = Vec::new();
    let mut route_key = "resolve";
    for pair in check_args.chunks(2) {
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
    toml
}

/// The `ssoprobe enroll` line that gives the lab's monitoring user a passkey in
/// `passkey_path`.
fn enrol_command(lab: &Lab, files: &LabFiles, passkey_path: &std::path::Path) -> String {
    format!(
        "ssoprobe enroll --idp https://{} --api-key-file {} --user {} --out {} {} --ca-file {}",
        lab::IDP_HOST,
        files.api_key.display(),
        lab.monitor_user(),
        passkey_path.display(),
        lab.route_args().join(" "),
        files.ca.display()
    )
}

/// Prints how to get past Access: enrol a passkey and log in, exchange the code with the
/// client secret, or present the service token.
fn print_how_to_log_in(lab: &Lab, files: &LabFiles, dir: &std::path::Path) {
    let passkey_path = dir.join("probe.passkey");
    println!(
        "\nTo log in as well, enrol a passkey for the lab's monitoring user:\n  {}",
        enrol_command(lab, files, &passkey_path)
    );
    println!(
        "and add to the check above:  --passkey {}",
        passkey_path.display()
    );
    println!(
        "Own code flow (idp.exchange): --client-id {} --client-secret-file {}",
        lab::CLIENT_ID,
        files.client_secret.display()
    );
    let (token_id, _) = lab.service_token();
    println!(
        "Service token instead of a login: --service-token-id {token_id} --service-token-secret-file {}",
        files.service_token_secret.display()
    );
}

/// The short form of the check command: the site's URL and how to reach the lab (its
/// routes and CA); the gateway, the team, the AUD and Pocket ID are found.
fn print_short_check(check_args: &[String]) {
    let routes_and_ca: Vec<String> = check_args
        .chunks(2)
        .filter(|p| matches!(p[0].as_str(), "--resolve" | "--connect-to" | "--ca-file"))
        .flat_map(|p| p.to_vec())
        .collect();
    println!(
        "Check it with:\n  ssoprobe check https://{} {}\n",
        lab::SERVICE_HOST,
        routes_and_ca.join(" ")
    );
}

/// What runs under the oauth2-proxy gateway and how to look at it: the check command,
/// the enrolment, doctor (Pocket ID's side only), oauth2-proxy's client, and its
/// endpoints for curl.
fn print_oauth2_proxy(
    lab: &Lab,
    files: &LabFiles,
    dir: &std::path::Path,
    faults: &[Fault],
    variant: Variant,
    check_args: &[String],
) {
    let faults_text = if faults.is_empty() {
        "none".to_string()
    } else {
        faults
            .iter()
            .map(|f| f.name())
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!(
        "ssoprobe lab: oauth2-proxy in front of the site, Pocket ID, on https://{} (gateway: {}; faults: {faults_text}; variant: {variant})\n",
        lab.addr(),
        lab.gateway()
    );
    print_short_check(check_args);
    let passkey_path = dir.join("probe.passkey");
    println!(
        "Enrol a passkey for the lab's monitoring user, then add --passkey {} to the check for the whole login:\n  {}",
        passkey_path.display(),
        enrol_command(lab, files, &passkey_path),
    );
    let mut doctor_args = check_args.to_vec();
    doctor_args.extend(lab_api_args(lab, &files.cf_token, &files.api_key));
    println!(
        "\nRead Pocket ID's configuration through its admin API (oauth2-proxy has none; after the enrol line above):\n  ssoprobe doctor {}",
        doctor_args.join(" ")
    );
    println!(
        "\noauth2-proxy's client at Pocket ID: {} (callback {}); its secret: {}",
        lab::O2P_CLIENT_ID,
        lab::O2P_CALLBACK_URL,
        files
            .proxy_client_secret
            .as_ref()
            .map_or_else(|| "none".to_string(), |p| p.display().to_string())
    );
    let (ip, port) = (lab.addr().ip(), lab.addr().port());
    println!(
        "Its endpoints, by hand:\n  curl --cacert {} --connect-to {}:443:{ip}:{port} -i https://{}/oauth2/start",
        files.ca.display(),
        lab::SERVICE_HOST,
        lab::SERVICE_HOST
    );
    println!(
        "  (also /ping, /ready, /oauth2/sign_in, /oauth2/auth, /oauth2/userinfo; `-H 'Accept: application/json'` on / gets 401 {{}})"
    );
}

/// An access log of the API requests (method, host, path, status) on standard output:
/// what doctor reads, and proof that it only reads.
fn log_api_requests(lab: &Lab) -> tokio::task::JoinHandle<()> {
    let mut requests = lab.subscribe_api_requests();
    tokio::spawn(async move {
        loop {
            match requests.recv().await {
                // A reader that went away is not an error of the lab.
                Ok(r) => {
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(out, "api: {} {} {} {}", r.method, r.host, r.path, r.status);
                    let _ = out.flush();
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    let _ = writeln!(std::io::stdout(), "api: ({n} requests not shown)");
                }
                Err(_) => break,
            }
        }
    })
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
        .map_err(|e| {
            AppError::Io(format!(
                "cannot write {}: {}",
                path.display(),
                crate::text::io_words(&e)
            ))
        })
}

/// A directory in the temp directory removed when dropped.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtt_is_off_by_default_and_takes_zero_or_a_duration() {
        assert_eq!(parse_rtt(None).unwrap(), Duration::ZERO);
        for zero in ["0", "0ms", "0s", " 0 "] {
            assert_eq!(parse_rtt(Some(zero)).unwrap(), Duration::ZERO, "{zero}");
        }
        assert_eq!(parse_rtt(Some("20ms")).unwrap(), Duration::from_millis(20));
        assert_eq!(parse_rtt(Some("2s")).unwrap(), MAX_RTT);
        for bad in ["0.5ms", "3s", "2m", "1h"] {
            let e = parse_rtt(Some(bad)).unwrap_err().to_string();
            assert!(
                e.contains("give 0 (off) or between 1ms and 2s"),
                "{bad}: {e}"
            );
            // The bounds the message names are accepted.
            let (_, range) = e.split_once("between ").unwrap();
            let (min, max) = range.split_once(" and ").unwrap();
            assert_eq!(
                parse_rtt(Some(min)).unwrap(),
                Duration::from_millis(1),
                "{e}"
            );
            assert_eq!(parse_rtt(Some(max.trim_end())).unwrap(), MAX_RTT, "{e}");
        }
        let e = parse_rtt(Some("fast")).unwrap_err().to_string();
        assert!(e.contains("--rtt") && e.contains("not a duration"), "{e}");
        let config = lab_config(&[], None, Some("50ms"), None).unwrap();
        assert_eq!(config.rtt, Duration::from_millis(50));
    }
}
