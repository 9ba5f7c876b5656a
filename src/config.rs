//! Flags, `SSOPROBE_*` variables and the TOML file, merged into one validated
//! [`Config`]. Every error names the flag, variable or file key at fault, says what is
//! wrong with it and how to fix it.

use crate::cli::{CheckArgs, ColorChoice, Format};
use crate::cloudflare;
use crate::http::{HttpOptions, Route, RouteKind};
use crate::proxy::Proxies;
use crate::redact::Secret;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;
use url::Url;

/// Where a value came from, so that an error can point at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A command-line flag.
    Flag,
    /// An `SSOPROBE_*` environment variable.
    Env,
    /// A key of the config file.
    File(PathBuf),
    /// Built in (demo and lab).
    Builtin,
}

/// A configuration problem: which setting, what is wrong, how to fix it.
#[derive(Debug, thiserror::Error)]
#[error("{setting}: {problem}")]
pub struct ConfigError {
    /// "--service", "SSOPROBE_TIMEOUT" or "sites.toml: key `idp`".
    pub setting: String,
    /// What is wrong, and what to do.
    pub problem: String,
}

/// Setting `key` as it was given, to lead an error: "--tls-warn-days",
/// "SSOPROBE_TLS_WARN_DAYS" or "probe.toml: key `tls_warn_days`".
pub fn setting_name(key: &str, origin: &Origin) -> String {
    match origin {
        Origin::Flag | Origin::Builtin => format!("--{}", key.replace('_', "-")),
        Origin::Env => format!("SSOPROBE_{}", key.to_ascii_uppercase()),
        Origin::File(path) => format!("{}: key `{key}`", path.display()),
    }
}

/// Setting `key` as it was given, inside a sentence: "--tls-fail-days",
/// "SSOPROBE_TLS_FAIL_DAYS" or "`tls_fail_days` in probe.toml"; when not given (`None`),
/// its default: "the default of --tls-fail-days".
fn mention(key: &str, origin: Option<&Origin>) -> String {
    match origin {
        Some(Origin::File(path)) => format!("`{key}` in {}", path.display()),
        Some(o) => setting_name(key, o),
        None => format!("the default of --{}", key.replace('_', "-")),
    }
}

/// How to give setting `key` the way `origin` gave another: "add --client-id", "set
/// SSOPROBE_CLIENT_ID", "add `client_id` to probe.toml".
fn give(key: &str, origin: &Origin) -> String {
    match origin {
        Origin::Env => format!("set {}", setting_name(key, origin)),
        Origin::File(path) => format!("add `{key}` to {}", path.display()),
        Origin::Flag | Origin::Builtin => format!("add {}", setting_name(key, origin)),
    }
}

/// Where setting `id` of `check` came from, as its errors name it ("--output" or
/// "SSOPROBE_OUTPUT"), for a setting read outside [`Config`].
pub fn named(origins: &dyn OriginOf, id: &str) -> String {
    setting_name(id, &origins.origin_of(id).unwrap_or(Origin::Flag))
}

fn err(key: &str, origin: &Origin, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        setting: setting_name(key, origin),
        problem: problem.into(),
    }
}

/// The validated configuration of one run.
#[derive(Debug, Clone)]
pub struct Config {
    /// The protected site.
    pub service: Url,
    /// Pocket ID's public URL (meaningful only when `idp_source` is not `Unknown`).
    pub idp: Url,
    /// Where `idp` came from.
    pub idp_source: IdpSource,
    /// The Access team domain, when known in advance.
    pub team_domain: Option<String>,
    /// The expected OIDC client id.
    pub client_id: Option<String>,
    /// The expected Access AUD.
    pub aud: Option<String>,
    /// The gateway the site must be behind (`--gateway`); `None`: whichever the site's
    /// answer shows.
    pub gateway: Option<Gateway>,
    /// HTTP client settings.
    pub http: HttpOptions,
    /// Certificate expiry warning threshold, days.
    pub tls_warn_days: i64,
    /// Certificate expiry failure threshold, days.
    pub tls_fail_days: i64,
    /// Report format.
    pub format: Format,
    /// Color choice.
    pub color: ColorChoice,
    /// Print nothing but errors.
    pub quiet: bool,
    /// The passkey to log in with, and where its file is (the counter is saved back).
    pub passkey: Option<(crate::passkey::CredentialFile, PathBuf)>,
    /// The status the site must answer after login.
    pub expect_status: u16,
    /// Text the site's answer must contain after login.
    pub expect_body: Option<String>,
    /// The OIDC client secret, for `idp.exchange`.
    pub client_secret: Option<Secret>,
    /// An Access service token (id, secret), for `service.reach` without a passkey.
    pub service_token: Option<(Secret, Secret)>,
    /// API credentials for the `config.*` checks (`doctor`).
    pub doctor: DoctorConfig,
    /// Where to write the HAR archive of the run: `--har`, `SSOPROBE_HAR`, or the
    /// config file's top-level `har` (relative to the file).
    pub har: Option<PathBuf>,
    /// The reports written to files beside the one `--format` prints
    /// (`--report-json FILE`, …, or the config file's top-level `report_json`, …).
    pub reports: Vec<ReportFile>,
    /// The time thresholds (`--warning`, `--critical`): the run's and some checks'.
    pub time_limits: Vec<TimeLimit>,
}

/// A report written to a file beside the one `--format` prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportFile {
    /// Its format (never human).
    pub format: Format,
    /// Where (a config file's path made relative to the file).
    pub path: PathBuf,
    /// The setting that named it, for errors: `--report-junit`,
    /// `SSOPROBE_REPORT_JUNIT` or `FILE: key `report_junit``.
    pub setting: String,
}

/// The report files' settings: the config key and the format each writes.
pub const REPORT_FILE_KEYS: [(&str, Format); 4] = [
    ("report_json", Format::Json),
    ("report_junit", Format::Junit),
    ("report_nagios", Format::Nagios),
    ("report_prometheus", Format::Prometheus),
];

/// A time threshold: check_http's `-w`/`-c` for the run, or for one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeLimit {
    /// The check it applies to (its id as `ssoprobe checks` lists it, or `tls.HOST`);
    /// `None` for the checks as a whole (the run's duration).
    pub check: Option<String>,
    /// `--critical` (a longer time fails) rather than `--warning` (it warns).
    pub critical: bool,
    /// A time longer than this crosses the threshold.
    pub over: Duration,
    /// The setting that gave it, for errors.
    pub setting: String,
}

/// Cloudflare's API, unless `--cf-api-url` says otherwise.
pub const DEFAULT_CF_API_URL: &str = "https://api.cloudflare.com/client/v4";

/// Where and how to read Cloudflare's configuration.
#[derive(Debug, Clone)]
pub struct CfSettings {
    /// The API token (read permissions).
    pub token: Secret,
    /// The account, when given (else found from the token).
    pub account: Option<String>,
    /// The API's base URL.
    pub url: Url,
}

/// What `doctor` (and `check` with API credentials) reads with.
#[derive(Debug, Clone, Default)]
pub struct DoctorConfig {
    /// Cloudflare's API.
    pub cf: Option<CfSettings>,
    /// Pocket ID's admin API key.
    pub api_key: Option<Secret>,
    /// The monitoring user's e-mail.
    pub user: Option<String>,
    /// `doctor`: the configuration checks only, no probe.
    pub only: bool,
}

impl DoctorConfig {
    /// Whether there is anything to read with.
    pub fn enabled(&self) -> bool {
        self.cf.is_some() || self.api_key.is_some()
    }
}

/// Where the IdP's URL came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdpSource {
    /// `--idp`, `SSOPROBE_IDP` or the config file.
    Given,
    /// The `--passkey` file (enrolled at that Pocket ID).
    PasskeyFile,
    /// Access's redirect to it, found by the run.
    Discovered,
    /// oauth2-proxy's redirect to it, found by the run.
    DiscoveredByProxy,
    /// The Auth URL of Cloudflare's login method for it (`doctor`).
    CloudflareLoginMethod,
    /// Not known before the run: found from Access's redirect, or not at all.
    Unknown,
}

impl IdpSource {
    /// Whether the operator named it (flag, environment, config file, passkey file):
    /// only then do credentials for Pocket ID (client secret, API key) go there.
    pub fn named(self) -> bool {
        matches!(self, IdpSource::Given | IdpSource::PasskeyFile)
    }

    /// Where it came from, in words for the report.
    pub fn from_text(self) -> &'static str {
        match self {
            IdpSource::Given => "given",
            IdpSource::PasskeyFile => "the passkey file",
            IdpSource::Discovered => "Access's redirect to it",
            IdpSource::DiscoveredByProxy => "oauth2-proxy's redirect to it",
            IdpSource::CloudflareLoginMethod => "the Auth URL of Cloudflare's login method",
            IdpSource::Unknown => "unknown",
        }
    }
}

/// Default per-request timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default run deadline.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(30);
/// How a run's deadline is set, for the hint of a run it cut.
pub const DEADLINE_LIMIT: &str = "--deadline";
/// Default expiry warning threshold.
pub const DEFAULT_TLS_WARN_DAYS: i64 = 21;
/// Default expiry failure threshold.
pub const DEFAULT_TLS_FAIL_DAYS: i64 = 7;

/// The keys a config file (or a `[targets.NAME]` table) takes besides `targets`: each
/// is the flag's name with `_` for `-`.
pub const FILE_KEYS: &[&str] = &[
    "service",
    "idp",
    "team",
    "client_id",
    "aud",
    "gateway",
    "resolve",
    "connect_to",
    "ca_file",
    "insecure",
    "timeout",
    "connect_timeout",
    "header",
    "deadline",
    "tls_warn_days",
    "tls_fail_days",
    "passkey",
    "expect_status",
    "expect_body",
    "client_secret_file",
    "service_token_id",
    "service_token_secret_file",
    "cf_api_token_file",
    "cf_account_id",
    "cf_api_url",
    "api_key_file",
    "user",
    "har",
    "report_json",
    "report_junit",
    "report_nagios",
    "report_prometheus",
    "warning",
    "critical",
    "proxy",
    "noproxy",
];

/// The config file's keys.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    service: Option<String>,
    idp: Option<String>,
    team: Option<String>,
    client_id: Option<String>,
    aud: Option<String>,
    gateway: Option<String>,
    resolve: Option<Vec<String>>,
    connect_to: Option<Vec<String>>,
    ca_file: Option<PathBuf>,
    insecure: Option<bool>,
    timeout: Option<Scalar>,
    connect_timeout: Option<Scalar>,
    header: Option<Vec<String>>,
    deadline: Option<Scalar>,
    tls_warn_days: Option<Scalar>,
    tls_fail_days: Option<Scalar>,
    passkey: Option<PathBuf>,
    expect_status: Option<Scalar>,
    expect_body: Option<String>,
    client_secret_file: Option<PathBuf>,
    service_token_id: Option<String>,
    service_token_secret_file: Option<PathBuf>,
    cf_api_token_file: Option<PathBuf>,
    cf_account_id: Option<String>,
    cf_api_url: Option<String>,
    api_key_file: Option<PathBuf>,
    user: Option<String>,
    /// The HAR archive of every run (top level only: one archive holds every target's
    /// run).
    har: Option<PathBuf>,
    /// The report files (top level only, like `har`: one report holds every target).
    report_json: Option<PathBuf>,
    report_junit: Option<PathBuf>,
    report_nagios: Option<PathBuf>,
    report_prometheus: Option<PathBuf>,
    /// Time thresholds: `"5s"`, `["5s", "passkey.login=2s"]`.
    warning: Option<ScalarList>,
    critical: Option<ScalarList>,
    proxy: Option<String>,
    noproxy: Option<String>,
    /// Named targets; the keys above are their shared defaults.
    targets: Option<std::collections::BTreeMap<String, FileConfig>>,
}

impl FileConfig {
    /// This target's keys, falling back to the shared defaults.
    fn merged_over(self, defaults: &FileConfig) -> FileConfig {
        macro_rules! merge {
            ($($f:ident),*) => { FileConfig { $($f: self.$f.or_else(|| defaults.$f.clone()),)* targets: None } };
        }
        merge!(
            service,
            idp,
            team,
            client_id,
            aud,
            gateway,
            resolve,
            connect_to,
            ca_file,
            insecure,
            timeout,
            connect_timeout,
            header,
            deadline,
            tls_warn_days,
            tls_fail_days,
            passkey,
            expect_status,
            expect_body,
            client_secret_file,
            service_token_id,
            service_token_secret_file,
            cf_api_token_file,
            cf_account_id,
            cf_api_url,
            api_key_file,
            user,
            har,
            report_json,
            report_junit,
            report_nagios,
            report_prometheus,
            warning,
            critical,
            proxy,
            noproxy
        )
    }
}

/// A TOML value that may be written as a string or a number (`timeout = 10` or `"10s"`).
#[derive(Debug, Clone)]
enum Scalar {
    Int(i64),
    Float(f64),
    Text(String),
}

/// Says what is wanted in words ("a number or a string such as \"10s\""), where an
/// untagged enum would name the type.
impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Scalar, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Scalar;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a number or a string, such as 200, 21 or \"10s\"")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar::Int(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Scalar, E> {
                i64::try_from(v)
                    .map(Scalar::Int)
                    .map_err(|_| E::custom("the number is too large"))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar::Float(v))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar::Text(v.to_string()))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl Scalar {
    fn text(&self) -> String {
        match self {
            Scalar::Int(i) => i.to_string(),
            Scalar::Float(f) => f.to_string(),
            Scalar::Text(s) => s.clone(),
        }
    }
}

/// One [`Scalar`] or a list of them (`warning = "5s"` or `warning = ["5s", "x=1s"]`).
#[derive(Debug, Clone)]
struct ScalarList(Vec<Scalar>);

impl<'de> Deserialize<'de> for ScalarList {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<ScalarList, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = ScalarList;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string such as \"5s\" or \"passkey.login=2s\", or a list of them")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<ScalarList, E> {
                Ok(ScalarList(vec![Scalar::Int(v)]))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<ScalarList, E> {
                i64::try_from(v)
                    .map(|v| ScalarList(vec![Scalar::Int(v)]))
                    .map_err(|_| E::custom("the number is too large"))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<ScalarList, E> {
                Ok(ScalarList(vec![Scalar::Float(v)]))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ScalarList, E> {
                Ok(ScalarList(vec![Scalar::Text(v.to_string())]))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<ScalarList, A::Error> {
                let mut out = Vec::new();
                while let Some(v) = seq.next_element::<Scalar>()? {
                    out.push(v);
                }
                Ok(ScalarList(out))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// Which check arguments came from the command line, which from the environment.
pub trait OriginOf {
    /// The origin of argument `id` (the clap id, e.g. "service"), if it was given.
    fn origin_of(&self, id: &str) -> Option<Origin>;
}

impl OriginOf for clap::ArgMatches {
    fn origin_of(&self, id: &str) -> Option<Origin> {
        match self.value_source(id)? {
            clap::parser::ValueSource::CommandLine => Some(Origin::Flag),
            clap::parser::ValueSource::EnvVariable => Some(Origin::Env),
            _ => None,
        }
    }
}

impl Config {
    /// Whether the operator named Pocket ID: see [`IdpSource::named`].
    pub fn idp_named(&self) -> bool {
        self.idp_source.named()
    }

    /// Why a credential for Pocket ID is not sent to the one this run found, and how to
    /// send it: for the check that would have used `what`.
    pub fn idp_not_named(&self, what: &str) -> String {
        let idp = crate::pocketid::oidc::normalise_base(&self.idp);
        format!(
            "skipped: {what} goes only to a Pocket ID you name, and {idp} was found from {}: pass --idp {idp} to use it",
            self.idp_source.from_text()
        )
    }

    /// Builds the configuration of `check` from its arguments and, if named, the file.
    pub fn from_check_args(
        args: &CheckArgs,
        origins: &dyn OriginOf,
    ) -> Result<Config, ConfigError> {
        let mut all = Config::targets_from_check_args(args, origins)?;
        if all.len() != 1 {
            return Err(ConfigError {
                setting: "target".into(),
                problem: "the config file names several targets; pick one with --target NAME"
                    .into(),
            });
        }
        Ok(all.remove(0).1)
    }

    /// Every target of the configuration (one when the file has no `[targets.NAME]`
    /// tables; only `--target`'s when given), each with its name.
    pub fn targets_from_check_args(
        args: &CheckArgs,
        origins: &dyn OriginOf,
    ) -> Result<Vec<(String, Config)>, ConfigError> {
        let file = match &args.config {
            Some(path) => Some((path.clone(), load_file(path, origins)?)),
            None => None,
        };
        let target_origin = origins.origin_of("target").unwrap_or(Origin::Flag);
        let Some((path, mut fc)) = file else {
            if args.target.is_some() {
                return Err(err(
                    "target",
                    &target_origin,
                    "names a target, but no --config file defines targets",
                ));
            }
            let config = Config::from_parts(args, origins, None, &FileConfig::default())?;
            let name = config.service.host_str().unwrap_or("target").to_string();
            return Ok(vec![(name, config)]);
        };
        let Some(targets) = fc.targets.take() else {
            if args.target.is_some() {
                return Err(err(
                    "target",
                    &target_origin,
                    format!("{} has no [targets.NAME] tables", path.display()),
                ));
            }
            let config = Config::from_parts(args, origins, Some((&path, None)), &fc)?;
            let name = config.service.host_str().unwrap_or("target").to_string();
            return Ok(vec![(name, config)]);
        };
        if targets.is_empty() {
            return Err(ConfigError {
                setting: path.display().to_string(),
                problem:
                    "[targets] is empty; add [targets.NAME] tables with at least service and idp"
                        .into(),
            });
        }
        if let Some(wanted) = &args.target
            && !targets.contains_key(wanted)
        {
            let names: Vec<&str> = targets.keys().map(String::as_str).collect();
            return Err(err(
                "target",
                &target_origin,
                format!(
                    "'{}' is not a target of {}{} ({})",
                    crate::redact::terminal_safe(wanted),
                    path.display(),
                    crate::text::did_you_mean(wanted, names.iter().copied()),
                    target_list(&names)
                ),
            ));
        }
        let mut out = Vec::new();
        for (name, t) in targets {
            if args.target.as_ref().is_some_and(|w| *w != name) {
                continue;
            }
            if t.targets.is_some() {
                return Err(ConfigError {
                    setting: format!("{} [targets.{name}]", path.display()),
                    problem: "targets cannot nest".into(),
                });
            }
            if t.har.is_some() {
                return Err(ConfigError {
                    setting: format!("{} [targets.{name}] har", path.display()),
                    problem: "har belongs at the top of the file: one archive holds the run of every target".into(),
                });
            }
            let reports = [
                &t.report_json,
                &t.report_junit,
                &t.report_nagios,
                &t.report_prometheus,
            ];
            for ((key, _), value) in REPORT_FILE_KEYS.iter().zip(reports) {
                if value.is_some() {
                    return Err(ConfigError {
                        setting: format!("{} [targets.{name}] {key}", path.display()),
                        problem: format!(
                            "{key} belongs at the top of the file: one report holds the run of every target"
                        ),
                    });
                }
            }
            let merged = t.merged_over(&fc);
            let config = Config::from_parts(args, origins, Some((&path, Some(&name))), &merged)?;
            out.push((name, config));
        }
        Ok(out)
    }

    /// One target's configuration from its flags, variables and file keys (`fc`, already
    /// merged over the file's shared defaults); `file` names the file and target table
    /// for errors and relative paths.
    fn from_parts(
        args: &CheckArgs,
        origins: &dyn OriginOf,
        file: Option<(&Path, Option<&str>)>,
        fc: &FileConfig,
    ) -> Result<Config, ConfigError> {
        let given = Given::new(args, fc, origins, file);
        let service = site_url(&given)?;
        let idp_given = given.read("idp", &args.idp, &fc.idp, parse_idp_url)?;
        let team_domain = given.read("team", &args.team, &fc.team, parse_team)?;
        let client_id = given.read("client_id", &args.client_id, &fc.client_id, parse_client_id)?;
        let aud = given.read("aud", &args.aud, &fc.aud, parse_aud)?;
        let gateway = given.read("gateway", &args.gateway, &fc.gateway, parse_gateway)?;
        let transport = Transport::read(&given)?;
        let (tls_warn_days, tls_fail_days) = tls_thresholds(&given)?;
        let passkey = match given.pick_path("passkey", &args.passkey, &fc.passkey) {
            Some((p, o)) => Some((load_passkey(&p, &o)?, p, o)),
            None => None,
        };
        let (idp, idp_source) = pocket_id(idp_given, passkey.as_ref(), &service)?;
        let passkey_origin = passkey.as_ref().map(|(_, _, o)| o.clone());
        let passkey = passkey.map(|(file, path, _)| (file, path));
        let expected = Expectations::read(&given)?;
        let client_secret = client_secret(&given, client_id.is_some())?;
        let service_token = service_token(&given)?;
        refuse_ineffective(
            passkey_origin.as_ref(),
            service_token.as_ref().map(|(_, o)| o),
            &expected,
        )?;
        let service_token = service_token.map(|(token, _)| token);
        let doctor = doctor_settings(&given)?;
        let time_limits = time_limits(&given)?;
        let reports = report_files(&given);
        let credential_origins = credential_origins(&service, &idp, idp_source, &doctor);
        let site = (
            service.host_str().unwrap_or_default().to_ascii_lowercase(),
            service.port_or_known_default().unwrap_or(443),
        );
        Ok(Config {
            service,
            idp,
            idp_source,
            team_domain: team_domain.map(|(team, _)| team),
            client_id: client_id.map(|(id, _)| id),
            aud: aud.map(|(aud, _)| aud),
            gateway: gateway.map(|(gateway, _)| gateway),
            http: transport.into_options(site, credential_origins, args.output.trace),
            tls_warn_days,
            tls_fail_days,
            format: args.output.format,
            color: if args.output.no_color {
                ColorChoice::Never
            } else {
                args.output.color
            },
            quiet: args.output.quiet,
            passkey,
            expect_status: expected.status,
            expect_body: expected.body,
            client_secret,
            service_token,
            doctor,
            har: given
                .pick_path("har", &args.har, &fc.har)
                .map(|(path, _)| path),
            reports,
            time_limits,
        })
    }
}

/// The targets a file has, for the error about one it has not: all of them when few,
/// else the first few and how many more.
fn target_list(names: &[&str]) -> String {
    const SHOWN: usize = 8;
    let shown: Vec<String> = names
        .iter()
        .take(SHOWN)
        .map(|n| crate::redact::terminal_safe(n))
        .collect();
    match names.len().saturating_sub(SHOWN) {
        0 => format!("it has: {}", shown.join(", ")),
        more => format!("it has: {}, and {more} more", shown.join(", ")),
    }
}

/// One target's settings as given: flags and `SSOPROBE_*` variables (`args`), the config
/// file's keys (`fc`), and where each came from.
struct Given<'a> {
    args: &'a CheckArgs,
    fc: &'a FileConfig,
    origins: &'a dyn OriginOf,
    /// The config file, whose directory a path in it is relative to.
    file_path: Option<PathBuf>,
    /// The file and target table an error about a file key names.
    file_label: Option<PathBuf>,
}

impl<'a> Given<'a> {
    fn new(
        args: &'a CheckArgs,
        fc: &'a FileConfig,
        origins: &'a dyn OriginOf,
        file: Option<(&Path, Option<&str>)>,
    ) -> Given<'a> {
        Given {
            args,
            fc,
            origins,
            file_path: file.map(|(p, _)| p.to_path_buf()),
            file_label: file.map(|(p, target)| match target {
                Some(t) => PathBuf::from(format!("{} [targets.{t}]", p.display())),
                None => p.to_path_buf(),
            }),
        }
    }

    /// Where flag or variable `id` came from (a flag when clap does not say).
    fn origin(&self, id: &str) -> Origin {
        self.origins.origin_of(id).unwrap_or(Origin::Flag)
    }

    /// The origin of a value read from the file.
    fn file_origin(&self) -> Origin {
        Origin::File(self.file_label.clone().unwrap_or_default())
    }

    /// The flag/env value if given, else the file's, with its origin.
    fn pick(
        &self,
        id: &str,
        cli: &Option<String>,
        filev: &Option<String>,
    ) -> Option<(String, Origin)> {
        match (cli, filev) {
            (Some(v), _) => Some((v.clone(), self.origin(id))),
            (None, Some(v)) => Some((v.clone(), self.file_origin())),
            _ => None,
        }
    }

    /// `pick` for a key the file may write as a number or a string.
    fn pick_scalar(
        &self,
        id: &str,
        cli: &Option<String>,
        filev: &Option<Scalar>,
    ) -> Option<(String, Origin)> {
        self.pick(id, cli, &filev.as_ref().map(Scalar::text))
    }

    /// A path from a flag as given; one from the file relative to the file.
    fn pick_path(
        &self,
        id: &str,
        cli: &Option<PathBuf>,
        filev: &Option<PathBuf>,
    ) -> Option<(PathBuf, Origin)> {
        match (cli, filev) {
            (Some(p), _) => Some((p.clone(), self.origin(id))),
            (None, Some(p)) => {
                let base = self
                    .file_path
                    .as_deref()
                    .and_then(Path::parent)
                    .unwrap_or(Path::new(""));
                Some((base.join(p), self.file_origin()))
            }
            _ => None,
        }
    }

    /// The setting `id` when given (see [`Given::pick`]), read by `parse`, with its
    /// origin.
    fn read<T>(
        &self,
        id: &str,
        cli: &Option<String>,
        filev: &Option<String>,
        parse: impl FnOnce(&str, &Origin) -> Result<T, ConfigError>,
    ) -> Result<Option<(T, Origin)>, ConfigError> {
        let Some((v, o)) = self.pick(id, cli, filev) else {
            return Ok(None);
        };
        Ok(Some((parse(&v, &o)?, o)))
    }

    /// The secret in the file that setting `id` names, when given (see
    /// [`read_secret_file`]).
    fn secret_file(
        &self,
        id: &str,
        cli: &Option<PathBuf>,
        filev: &Option<PathBuf>,
    ) -> Result<Option<Secret>, ConfigError> {
        Ok(self
            .secret_file_from(id, cli, filev)?
            .map(|(secret, _)| secret))
    }

    /// [`Given::secret_file`], with where the setting came from.
    fn secret_file_from(
        &self,
        id: &str,
        cli: &Option<PathBuf>,
        filev: &Option<PathBuf>,
    ) -> Result<Option<(Secret, Origin)>, ConfigError> {
        self.pick_path(id, cli, filev)
            .map(|(p, o)| read_secret_file(id, &p, &o).map(|secret| (secret, o)))
            .transpose()
    }
}

/// The report files: each given as a flag, a variable or a top-level key of the file.
fn report_files(given: &Given<'_>) -> Vec<ReportFile> {
    let (out, fc) = (&given.args.output, given.fc);
    let values = [
        (&out.report_json, &fc.report_json),
        (&out.report_junit, &fc.report_junit),
        (&out.report_nagios, &fc.report_nagios),
        (&out.report_prometheus, &fc.report_prometheus),
    ];
    REPORT_FILE_KEYS
        .iter()
        .zip(values)
        .filter_map(|((key, format), (cli, filev))| {
            let (path, origin) = given.pick_path(key, cli, filev)?;
            Some(ReportFile {
                format: *format,
                path,
                setting: setting_name(key, &origin),
            })
        })
        .collect()
}

/// The time thresholds of `--warning` and `--critical` (flags and variables replace the
/// file's lists): `DURATION` for the checks as a whole, `CHECK=DURATION` for one check.
/// Each subject takes one warning and one critical threshold, the warning no longer
/// than the critical one. Whether CHECK is a check is for the caller to say (the
/// declaration of checks lives above this module).
fn time_limits(given: &Given<'_>) -> Result<Vec<TimeLimit>, ConfigError> {
    let (args, fc) = (given.args, given.fc);
    let mut limits: Vec<TimeLimit> = Vec::new();
    for (key, critical, cli, filev) in [
        ("warning", false, &args.warning, &fc.warning),
        ("critical", true, &args.critical, &fc.critical),
    ] {
        let (values, origin) = if !cli.is_empty() {
            (cli.clone(), given.origin(key))
        } else {
            let list = filev
                .as_ref()
                .map(|l| l.0.iter().map(Scalar::text).collect());
            (list.unwrap_or_default(), given.file_origin())
        };
        for value in values {
            let (check, duration) = match value.split_once('=') {
                // Check ids are lower case (a host name in `tls.HOST` may be given in any).
                Some((check, duration)) => (Some(check.trim().to_ascii_lowercase()), duration),
                None => (None, value.as_str()),
            };
            if let Some(c) = &check
                && c.is_empty()
            {
                return Err(err(
                    key,
                    &origin,
                    format!(
                        "'{value}' names no check; write CHECK=DURATION, e.g. passkey.login=2s"
                    ),
                ));
            }
            let over = parse_duration(key, duration, &origin)?;
            let subject = |c: &Option<String>| match c {
                Some(c) => c.clone(),
                None => "the checks as a whole".into(),
            };
            if limits
                .iter()
                .any(|l| l.check == check && l.critical == critical)
            {
                return Err(err(
                    key,
                    &origin,
                    format!(
                        "gives {} two thresholds; give one (and the other level with --{})",
                        subject(&check),
                        if critical { "warning" } else { "critical" }
                    ),
                ));
            }
            limits.push(TimeLimit {
                check,
                critical,
                over,
                setting: setting_name(key, &origin),
            });
        }
    }
    for warning in limits.iter().filter(|l| !l.critical) {
        if let Some(critical) = limits
            .iter()
            .find(|l| l.critical && l.check == warning.check)
            && warning.over > critical.over
        {
            return Err(ConfigError {
                setting: warning.setting.clone(),
                problem: format!(
                    "the warning threshold {} is longer than the critical one {} ({}); a warning must come first",
                    duration_text(warning.over),
                    duration_text(critical.over),
                    critical.setting
                ),
            });
        }
    }
    Ok(limits)
}

/// The site: the URL argument or --service (SSOPROBE_SERVICE, `service`), once.
fn site_url(given: &Given<'_>) -> Result<Url, ConfigError> {
    let args = given.args;
    let service_pick = match (
        &args.url,
        given.pick("service", &args.service, &given.fc.service),
    ) {
        (Some(_), Some((_, o))) if o != given.file_origin() => {
            return Err(ConfigError {
                setting: format!("the URL argument and {}", setting_name("service", &o)),
                problem: "both name the site; give it once (the URL argument, or --service)".into(),
            });
        }
        (Some(url), _) => Some((url.clone(), Origin::Flag)),
        (None, other) => other,
    };
    let from_argument = args.url.is_some();
    match service_pick {
        Some((v, o)) => parse_site_url("service", &v, &o).map_err(|mut e| {
            if from_argument {
                e.setting = "the URL argument".into();
            }
            e
        }),
        None => Err(ConfigError {
            setting: "service".into(),
            problem: "no protected site given: pass its URL, e.g. ssoprobe check https://service.example.com (or --service, SSOPROBE_SERVICE, or `service` in the config file)".into(),
        }),
    }
}

/// The OIDC client id the login must use: never empty.
fn parse_client_id(value: &str, origin: &Origin) -> Result<String, ConfigError> {
    let v = value.trim();
    if v.is_empty() {
        return Err(err(
            "client_id",
            origin,
            "is empty; give the Client ID of the Pocket ID OIDC client Cloudflare uses, or leave it out",
        ));
    }
    Ok(v.to_string())
}

/// What stands in front of the site and sends its visitors to Pocket ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub enum Gateway {
    /// Cloudflare Access.
    #[default]
    #[serde(rename = "access")]
    Access,
    /// oauth2-proxy (provider `oidc`), on its own or behind a front proxy's forward-auth.
    #[serde(rename = "oauth2-proxy")]
    OAuth2Proxy,
}

impl Gateway {
    /// Every gateway, the default first.
    pub const ALL: [Gateway; 2] = [Gateway::Access, Gateway::OAuth2Proxy];

    /// The name `--gateway` takes, and reports show.
    pub fn name(self) -> &'static str {
        match self {
            Gateway::Access => "access",
            Gateway::OAuth2Proxy => "oauth2-proxy",
        }
    }

    /// The gateway in a sentence: "Access", "oauth2-proxy".
    pub fn who(self) -> &'static str {
        match self {
            Gateway::Access => "Access",
            Gateway::OAuth2Proxy => "oauth2-proxy",
        }
    }

    /// The gateway in a title: "Cloudflare Access", "oauth2-proxy".
    pub fn title(self) -> &'static str {
        match self {
            Gateway::Access => "Cloudflare Access",
            Gateway::OAuth2Proxy => "oauth2-proxy",
        }
    }

    /// Its OIDC client at Pocket ID, in a hint: "the Cloudflare client".
    pub fn client(self) -> &'static str {
        match self {
            Gateway::Access => "the Cloudflare client",
            Gateway::OAuth2Proxy => "oauth2-proxy's client",
        }
    }
}

impl std::fmt::Display for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// `--gateway`: a gateway ssoprobe knows, by name.
fn parse_gateway(value: &str, origin: &Origin) -> Result<Gateway, ConfigError> {
    let v = value.trim().to_ascii_lowercase();
    let v = match v.as_str() {
        "cloudflare" | "cloudflare-access" | "cf" => "access",
        "oauth2proxy" | "oauth2_proxy" | "o2p" => "oauth2-proxy",
        other => other,
    };
    Gateway::ALL
        .into_iter()
        .find(|g| g.name() == v)
        .ok_or_else(|| {
            let names = Gateway::ALL.map(Gateway::name).join(", ");
            err(
                "gateway",
                origin,
                format!(
                    "'{}' is not a gateway ssoprobe knows ({names}); leave it out to recognise it from the site's answer",
                    crate::redact::terminal_safe(value.trim())
                ),
            )
        })
}

/// The Access AUD the site's token must carry: an AUD tag, lower case.
fn parse_aud(value: &str, origin: &Origin) -> Result<String, ConfigError> {
    let v = value.trim().to_ascii_lowercase();
    if !cloudflare::is_aud(&v) {
        return Err(err(
            "aud",
            origin,
            format!(
                "'{v}' is not an Access AUD tag (64 hex characters; copy it from the application's Overview in Zero Trust)"
            ),
        ));
    }
    Ok(v)
}

/// How requests travel: routes, trust, timeouts, the site's extra headers and the run's
/// deadline; the parts of `HttpOptions` the settings give directly.
struct Transport {
    routes: Vec<Route>,
    extra_roots: Vec<Vec<u8>>,
    insecure: bool,
    timeout: Duration,
    connect_timeout: Duration,
    site_headers: Vec<(String, Secret)>,
    deadline: Duration,
    proxies: Proxies,
}

impl Transport {
    /// Reads the transport settings, in the order their errors are reported.
    fn read(given: &Given<'_>) -> Result<Transport, ConfigError> {
        let (args, fc) = (given.args, given.fc);
        let routes = routes(given)?;
        let extra_roots = match given.pick_path("ca_file", &args.ca_file, &fc.ca_file) {
            Some((p, o)) => read_ca_file(&p, &o)?,
            None => Vec::new(),
        };
        let insecure = args.insecure || fc.insecure.unwrap_or(false);
        let (timeout, connect_timeout) = timeouts(given)?;
        // An SSOPROBE_HEADER of empty lines only gives none: the file's apply then.
        let mut site_headers = parse_headers(&args.header, &given.origin("header"))?;
        if site_headers.is_empty() {
            site_headers = parse_headers(
                fc.header.as_deref().unwrap_or_default(),
                &given.file_origin(),
            )?;
        }
        let deadline = match given.pick_scalar("deadline", &args.deadline, &fc.deadline) {
            Some((v, o)) => parse_duration("deadline", &v, &o)?,
            None => DEFAULT_DEADLINE,
        };
        let named = |key: &str, pick: Option<(String, Origin)>| {
            pick.map(|(v, o)| (v, setting_name(key, &o)))
        };
        let proxies = read_proxies(
            named("proxy", given.pick("proxy", &args.proxy, &fc.proxy)),
            named("noproxy", given.pick("noproxy", &args.noproxy, &fc.noproxy)),
        )?;
        Ok(Transport {
            routes,
            extra_roots,
            insecure,
            timeout,
            connect_timeout,
            site_headers,
            deadline,
            proxies,
        })
    }

    /// The HTTP client's options: these settings, the site `site_headers` go to and the
    /// origins credentials may go to.
    fn into_options(
        self,
        site: (String, u16),
        credential_origins: Vec<url::Origin>,
        trace: bool,
    ) -> HttpOptions {
        HttpOptions {
            timeout: self.timeout,
            connect_timeout: self.connect_timeout,
            deadline: self.deadline,
            site: Some(site),
            site_headers: self.site_headers,
            credential_origins,
            deadline_limit: DEADLINE_LIMIT,
            routes: self.routes,
            extra_roots: self.extra_roots,
            insecure: self.insecure,
            trace,
            proxies: self.proxies,
        }
    }
}

/// The proxies of a run: `proxy` and `noproxy` as given (value, setting name) — from a
/// flag, an `SSOPROBE_*` variable or the file — else, where they say nothing, the
/// environment's `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY`, as curl reads
/// them (see [`crate::proxy`]).
fn read_proxies(
    proxy: Option<(String, String)>,
    noproxy: Option<(String, String)>,
) -> Result<Proxies, ConfigError> {
    Proxies::read(
        proxy.as_ref().map(|(v, s)| (v.as_str(), s.as_str())),
        noproxy.as_ref().map(|(v, s)| (v.as_str(), s.as_str())),
        &|name| std::env::var(name).ok(),
    )
    .map_err(|e| ConfigError {
        setting: e.setting,
        problem: e.problem,
    })
}

/// The pinned addresses: `--resolve`'s, then `--connect-to`'s; flags replace the file's
/// list rather than adding to it.
fn routes(given: &Given<'_>) -> Result<Vec<Route>, ConfigError> {
    let (args, fc) = (given.args, given.fc);
    let mut routes = Vec::new();
    let (resolve, resolve_origin) = if !args.resolve.is_empty() {
        (args.resolve.clone(), given.origin("resolve"))
    } else {
        (fc.resolve.clone().unwrap_or_default(), given.file_origin())
    };
    for r in &resolve {
        routes.push(parse_resolve(r, &resolve_origin)?);
    }
    let (connect, connect_origin) = if !args.connect_to.is_empty() {
        (args.connect_to.clone(), given.origin("connect_to"))
    } else {
        (
            fc.connect_to.clone().unwrap_or_default(),
            given.file_origin(),
        )
    };
    for c in &connect {
        routes.push(parse_connect_to(c, &connect_origin)?);
    }
    Ok(routes)
}

/// The per-request timeout and the connect timeout, which defaults to it and may not
/// exceed it.
fn timeouts(given: &Given<'_>) -> Result<(Duration, Duration), ConfigError> {
    let (args, fc) = (given.args, given.fc);
    let (timeout, timeout_origin) = match given.pick_scalar("timeout", &args.timeout, &fc.timeout) {
        Some((v, o)) => (parse_duration("timeout", &v, &o)?, Some(o)),
        None => (DEFAULT_TIMEOUT, None),
    };
    let connect_timeout = match given.pick_scalar(
        "connect_timeout",
        &args.connect_timeout,
        &fc.connect_timeout,
    ) {
        Some((v, o)) => {
            let d = parse_duration("connect_timeout", &v, &o)?;
            check_connect_timeout(d, &o, timeout, timeout_origin.as_ref())?
        }
        None => timeout,
    };
    Ok((timeout, connect_timeout))
}

/// The certificate expiry thresholds (warn, fail), in days; warn before fail.
fn tls_thresholds(given: &Given<'_>) -> Result<(i64, i64), ConfigError> {
    let (args, fc) = (given.args, given.fc);
    let warn = match given.pick_scalar("tls_warn_days", &args.tls_warn_days, &fc.tls_warn_days) {
        Some((v, o)) => (parse_days("tls_warn_days", &v, &o)?, Some(o)),
        None => (DEFAULT_TLS_WARN_DAYS, None),
    };
    let fail = match given.pick_scalar("tls_fail_days", &args.tls_fail_days, &fc.tls_fail_days) {
        Some((v, o)) => (parse_days("tls_fail_days", &v, &o)?, Some(o)),
        None => (DEFAULT_TLS_FAIL_DAYS, None),
    };
    check_thresholds(&warn, &fail)?;
    Ok((warn.0, fail.0))
}

/// Pocket ID and where it came from: given, else the passkey file's, else found by the
/// run. A passkey file must be for the Pocket ID the run uses.
fn pocket_id(
    idp_given: Option<(Url, Origin)>,
    passkey: Option<&(crate::passkey::CredentialFile, PathBuf, Origin)>,
    service: &Url,
) -> Result<(Url, IdpSource), ConfigError> {
    let idp_origin = idp_given.as_ref().map(|(_, o)| o.clone());
    let (idp, idp_source) = match (idp_given, passkey) {
        (Some((idp, _)), _) => (idp, IdpSource::Given),
        (None, Some((file, _, origin))) => match parse_idp_url(&file.idp, &Origin::Builtin) {
            Ok(idp) => (idp, IdpSource::PasskeyFile),
            Err(_) => {
                return Err(ConfigError {
                    setting: setting_name("passkey", origin),
                    problem: format!(
                        "the passkey file names Pocket ID as '{}', which is not an https URL; enrol again with ssoprobe enroll",
                        crate::redact::terminal_safe(&file.idp)
                    ),
                });
            }
        },
        // Unknown until the run finds it; the site stands in and is never used as
        // Pocket ID.
        (None, None) => (service.clone(), IdpSource::Unknown),
    };
    if let Some((file, _, origin)) = passkey {
        let file_origin = Url::parse(&file.idp)
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_default();
        if file_origin != idp.origin().ascii_serialization() {
            return Err(ConfigError {
                setting: setting_name("passkey", origin),
                problem: format!(
                    "the passkey file is for {}, not {} ({}); enrol a passkey for this Pocket ID with ssoprobe enroll",
                    crate::redact::terminal_safe(&file.idp),
                    idp,
                    mention("idp", idp_origin.as_ref())
                ),
            });
        }
    }
    Ok((idp, idp_source))
}

/// What the site must answer once reached, and where each expectation was given (none
/// when defaulted), for the error when nothing will reach the site.
struct Expectations {
    status: u16,
    status_given: Option<Origin>,
    body: Option<String>,
    body_given: Option<Origin>,
}

impl Expectations {
    /// Reads `expect_status` (an HTTP status, 200 by default) and `expect_body`.
    fn read(given: &Given<'_>) -> Result<Expectations, ConfigError> {
        let (args, fc) = (given.args, given.fc);
        let status_pick =
            given.pick_scalar("expect_status", &args.expect_status, &fc.expect_status);
        let status_given = status_pick.as_ref().map(|(_, o)| o.clone());
        let status = match status_pick {
            Some((v, o)) => match v.trim().parse::<u16>() {
                Ok(code) if (100..=599).contains(&code) => code,
                _ => {
                    return Err(err(
                        "expect_status",
                        &o,
                        format!("'{v}' is not an HTTP status (100-599)"),
                    ));
                }
            },
            None => 200,
        };
        let body_pick = given.pick("expect_body", &args.expect_body, &fc.expect_body);
        let body_given = body_pick.as_ref().map(|(_, o)| o.clone());
        Ok(Expectations {
            status,
            status_given,
            body: body_pick.map(|(v, _)| v),
            body_given,
        })
    }
}

/// The OIDC client secret for `idp.exchange`, which needs the client id with it.
fn client_secret(given: &Given<'_>, has_client_id: bool) -> Result<Option<Secret>, ConfigError> {
    let (args, fc) = (given.args, given.fc);
    let client_secret = given.secret_file_from(
        "client_secret_file",
        &args.client_secret_file,
        &fc.client_secret_file,
    )?;
    if let Some((_, origin)) = &client_secret
        && !has_client_id
    {
        return Err(err(
            "client_secret_file",
            origin,
            format!(
                "idp.exchange needs the client id with the secret: {} (the Client ID of Pocket ID's OIDC client)",
                give("client_id", origin)
            ),
        ));
    }
    Ok(client_secret.map(|(secret, _)| secret))
}

/// The Access service token (id, secret): both halves or neither; with where its id
/// came from.
#[allow(clippy::type_complexity)]
fn service_token(given: &Given<'_>) -> Result<Option<((Secret, Secret), Origin)>, ConfigError> {
    let (args, fc) = (given.args, given.fc);
    let token_id = given.pick(
        "service_token_id",
        &args.service_token_id,
        &fc.service_token_id,
    );
    let token_secret = given.secret_file_from(
        "service_token_secret_file",
        &args.service_token_secret_file,
        &fc.service_token_secret_file,
    )?;
    match (token_id, token_secret) {
        (Some((id, o)), Some((secret, _))) => {
            Ok(Some(((Secret::configured(id.trim()), secret), o)))
        }
        (None, None) => Ok(None),
        (Some((_, o)), None) => Err(err(
            "service_token_id",
            &o,
            format!(
                "a service token needs its secret too: {} (a file holding the token's Client Secret)",
                give("service_token_secret_file", &o)
            ),
        )),
        (None, Some((_, o))) => Err(err(
            "service_token_secret_file",
            &o,
            format!(
                "a service token needs its id too: {} (the token's Client ID)",
                give("service_token_id", &o)
            ),
        )),
    }
}

/// A setting that cannot take effect is a usage error, not a silent pass: a service
/// token next to a passkey, or an expectation of the site when nothing reaches it.
fn refuse_ineffective(
    passkey: Option<&Origin>,
    service_token: Option<&Origin>,
    expected: &Expectations,
) -> Result<(), ConfigError> {
    if let (Some(passkey), Some(token)) = (passkey, service_token) {
        return Err(err(
            "service_token_id",
            token,
            format!(
                "give either a passkey ({}, a full login) or a service token, not both: with a passkey the token would never be sent",
                mention("passkey", Some(passkey))
            ),
        ));
    }
    if passkey.is_none() && service_token.is_none() {
        let unreachable = [
            ("expect_status", &expected.status_given),
            ("expect_body", &expected.body_given),
        ];
        if let Some((key, Some(o))) = unreachable.into_iter().find(|(_, o)| o.is_some()) {
            return Err(err(
                key,
                o,
                "is checked only once ssoprobe reaches the site: add --passkey FILE (a login) or a service token (--service-token-id and --service-token-secret-file)",
            ));
        }
    }
    Ok(())
}

/// The origins the operator named: the site, Pocket ID when given or in the passkey
/// file, Cloudflare's API. Credentials go nowhere else (http::Http::send).
fn credential_origins(
    service: &Url,
    idp: &Url,
    idp_source: IdpSource,
    doctor: &DoctorConfig,
) -> Vec<url::Origin> {
    let mut origins = vec![service.origin()];
    if idp_source.named() {
        origins.push(idp.origin());
    }
    if let Some(cf) = &doctor.cf {
        origins.push(cf.url.origin());
    }
    origins
}

/// The API credentials of the `config.*` checks; a setting that needs another one to
/// take effect is refused without it.
fn doctor_settings(given: &Given<'_>) -> Result<DoctorConfig, ConfigError> {
    let (args, fc) = (given.args, given.fc);
    let token = given.secret_file(
        "cf_api_token_file",
        &args.cf_api_token_file,
        &fc.cf_api_token_file,
    )?;
    let account = given.read(
        "cf_account_id",
        &args.cf_account_id,
        &fc.cf_account_id,
        parse_account_id,
    )?;
    let url = given.read(
        "cf_api_url",
        &args.cf_api_url,
        &fc.cf_api_url,
        parse_cf_api_url,
    )?;
    let api_key = given.secret_file("api_key_file", &args.api_key_file, &fc.api_key_file)?;
    let user = given.read("user", &args.user, &fc.user, parse_user)?;
    if token.is_none() {
        for (key, origin) in [
            ("cf_account_id", account.as_ref().map(|a| &a.1)),
            ("cf_api_url", url.as_ref().map(|u| &u.1)),
        ] {
            if let Some(o) = origin {
                return Err(err(
                    key,
                    o,
                    "is used only with a Cloudflare API token: add --cf-api-token-file FILE",
                ));
            }
        }
    }
    if token.is_none()
        && api_key.is_none()
        && let Some((_, o)) = &user
    {
        return Err(err(
            "user",
            o,
            "is used only by the config.* checks: add --cf-api-token-file or --api-key-file",
        ));
    }
    let url = match url {
        Some((u, _)) => u,
        None => Url::parse(DEFAULT_CF_API_URL).map_err(|_| ConfigError {
            setting: "cf_api_url".into(),
            problem: "the built-in default does not parse; give --cf-api-url".into(),
        })?,
    };
    Ok(DoctorConfig {
        cf: token.map(|token| CfSettings {
            token,
            account: account.map(|a| a.0),
            url,
        }),
        api_key,
        user: user.map(|u| u.0),
        only: false,
    })
}

/// A Cloudflare account id: 32 hex digits, lower case.
fn parse_account_id(value: &str, origin: &Origin) -> Result<String, ConfigError> {
    let v = value.trim().to_ascii_lowercase();
    if v.len() != 32 || !v.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(err(
            "cf_account_id",
            origin,
            "is not a Cloudflare account id (32 hex digits; copy it from the dashboard's URL or the account's Overview)",
        ));
    }
    Ok(v)
}

/// Cloudflare's API URL: https without a query, since the API token travels with every
/// request.
fn parse_cf_api_url(value: &str, origin: &Origin) -> Result<Url, ConfigError> {
    let v = value.trim();
    let url = Url::parse(v).map_err(|_| {
        err(
            "cf_api_url",
            origin,
            format!(
                "'{}' is not a URL; the default is {}",
                crate::redact::terminal_safe(v),
                DEFAULT_CF_API_URL
            ),
        )
    })?;
    if url.scheme() != "https" || url.host_str().is_none() || url.query().is_some() {
        return Err(err(
            "cf_api_url",
            origin,
            "must be an https URL without a query: the API token travels with every request",
        ));
    }
    Ok(url)
}

/// The monitoring user's e-mail.
fn parse_user(value: &str, origin: &Origin) -> Result<String, ConfigError> {
    let v = value.trim();
    if !v.contains('@') || v.chars().any(char::is_whitespace) || v.chars().any(char::is_control) {
        return Err(err(
            "user",
            origin,
            "is not an e-mail address: give the monitoring user's e-mail, e.g. probe@example.com",
        ));
    }
    Ok(v.to_string())
}

fn load_passkey(
    path: &Path,
    origin: &Origin,
) -> Result<crate::passkey::CredentialFile, ConfigError> {
    crate::passkey::CredentialFile::load(path).map_err(|e| err("passkey", origin, e.to_string()))
}

/// The warning threshold must not be below the failure threshold. Each is (days, where
/// it was given; `None` for the default); the error names the one given (the warning
/// threshold when both were) and the other as it was given.
fn check_thresholds(
    warn: &(i64, Option<Origin>),
    fail: &(i64, Option<Origin>),
) -> Result<(), ConfigError> {
    let ((warn_days, warn_origin), (fail_days, fail_origin)) = (warn, fail);
    if warn_days >= fail_days {
        return Ok(());
    }
    let rule = "the warning threshold must be at least the failure threshold";
    let (warn_named, fail_named) = (
        mention("tls_warn_days", warn_origin.as_ref()),
        mention("tls_fail_days", fail_origin.as_ref()),
    );
    Err(match (warn_origin, fail_origin) {
        (Some(o), _) => err(
            "tls_warn_days",
            o,
            format!(
                "{warn_days} is below {fail_named} ({fail_days}); {rule}: raise it to {fail_days} or more{}",
                match fail_origin {
                    Some(_) => format!(", or lower {fail_named}"),
                    None => String::new(),
                }
            ),
        ),
        (None, Some(o)) => err(
            "tls_fail_days",
            o,
            format!(
                "{fail_days} is above {warn_named} ({warn_days}); {rule}: lower it to {warn_days} or less, or raise the warning threshold too (--tls-warn-days)"
            ),
        ),
        (None, None) => ConfigError {
            setting: "tls_warn_days".into(),
            problem: format!("the defaults ({warn_days}, {fail_days}) are out of order"),
        },
    })
}

fn load_file(path: &Path, origins: &dyn OriginOf) -> Result<FileConfig, ConfigError> {
    let o = origins.origin_of("config").unwrap_or(Origin::Flag);
    let text = std::fs::read_to_string(path).map_err(|e| cannot_read("config", &o, path, &e))?;
    toml::from_str(&text).map_err(|e| ConfigError {
        setting: path.display().to_string(),
        problem: format!(
            "not a valid ssoprobe config file: {}",
            e.to_string().trim_end()
        ),
    })
}

fn parse_site_url(key: &str, value: &str, origin: &Origin) -> Result<Url, ConfigError> {
    let v = value.trim();
    let url = Url::parse(v).map_err(|e| {
        // In words, not the parser's.
        let what = match e {
            url::ParseError::RelativeUrlWithoutBase => "it has no scheme",
            url::ParseError::EmptyHost => "it has no host",
            url::ParseError::InvalidPort => "its port is not a number from 1 to 65535",
            url::ParseError::InvalidIpv4Address | url::ParseError::InvalidIpv6Address => {
                "its IP address is malformed"
            }
            url::ParseError::IdnaError | url::ParseError::InvalidDomainCharacter => {
                "its host name has characters a host name cannot have"
            }
            _ => "it cannot be parsed",
        };
        let fix = if !v.contains("://") {
            format!(" (did you mean https://{v}?)")
        } else {
            String::new()
        };
        err(key, origin, format!("'{v}' is not a URL: {what}{fix}"))
    })?;
    // One rule for every URL setting: Access, Pocket ID's passkeys and the secrets
    // ssoprobe sends all live on https.
    if url.scheme() != "https" {
        return Err(err(
            key,
            origin,
            match v.split_once("://") {
                Some(("http", rest)) => format!(
                    "'{v}' is not https; use https://{rest} (Cloudflare Access, Pocket ID's passkeys and the secrets ssoprobe sends need https)"
                ),
                _ => format!("'{v}' must be an https:// URL"),
            },
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(err(key, origin, format!("'{v}' has no host")));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(err(
            key,
            origin,
            "must not contain credentials; ssoprobe logs in the way a user does",
        ));
    }
    Ok(url)
}

/// Pocket ID's public URL: an http(s) URL with no path (Pocket ID cannot live under one).
pub fn parse_idp_url(value: &str, origin: &Origin) -> Result<Url, ConfigError> {
    let u = parse_site_url("idp", value, origin)?;
    let extra = if u.path() != "/" {
        Some("a path")
    } else if u.query().is_some() {
        Some("a query")
    } else if u.fragment().is_some() {
        Some("a fragment")
    } else {
        None
    };
    if let Some(extra) = extra {
        return Err(err(
            "idp",
            origin,
            format!(
                "'{value}' has {extra}; Pocket ID is served at the root of its host, give its APP_URL (e.g. https://id.example.com)"
            ),
        ));
    }
    Ok(u)
}

fn parse_team(value: &str, origin: &Origin) -> Result<String, ConfigError> {
    let domain = cloudflare::team_domain(value);
    let name = domain.strip_suffix(cloudflare::TEAM_SUFFIX).unwrap_or("");
    let valid = !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !name.starts_with('-');
    if !valid {
        return Err(err(
            "team",
            origin,
            format!(
                "'{value}' is not a Zero Trust team name; give the name (xyz) or the team domain (xyz.cloudflareaccess.com) from Zero Trust → Settings → Custom Pages"
            ),
        ));
    }
    Ok(domain)
}

fn parse_host(key: &str, host: &str, origin: &Origin, whole: &str) -> Result<String, ConfigError> {
    let h = host.trim().to_ascii_lowercase();
    if h.is_empty()
        || !h
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        return Err(err(
            key,
            origin,
            format!("'{whole}': '{host}' is not a host name"),
        ));
    }
    Ok(h)
}

fn parse_port(key: &str, port: &str, origin: &Origin, whole: &str) -> Result<u16, ConfigError> {
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(err(
            key,
            origin,
            format!("'{whole}': '{port}' is not a port (1-65535)"),
        )),
    }
}

fn parse_ip(key: &str, addr: &str, origin: &Origin, whole: &str) -> Result<IpAddr, ConfigError> {
    let a = addr.trim_start_matches('[').trim_end_matches(']');
    a.parse::<IpAddr>().map_err(|_| {
        err(
            key,
            origin,
            format!("'{whole}': '{addr}' is not an IP address (IPv6 goes in brackets: [::1])"),
        )
    })
}

/// The HOST of a pin: a host name, or `*` (and, for `--connect-to`, nothing) for any.
fn parse_route_host(
    key: &str,
    host: &str,
    origin: &Origin,
    whole: &str,
    empty_is_any: bool,
) -> Result<String, ConfigError> {
    let h = host.trim();
    if h == Route::ANY_HOST || (empty_is_any && h.is_empty()) {
        return Ok(Route::ANY_HOST.to_string());
    }
    parse_host(key, h.trim_end_matches('.'), origin, whole)
}

/// `HOST:PORT:ADDR` — connections for HOST on PORT (and no other port) go to
/// ADDR:PORT, as with curl; HOST `*` stands for any host.
pub fn parse_resolve(value: &str, origin: &Origin) -> Result<Route, ConfigError> {
    let usage =
        "expected HOST:PORT:ADDR, e.g. service.example.com:443:203.0.113.7 (HOST * for any host)";
    let mut parts = value.splitn(3, ':');
    let (Some(host), Some(port), Some(addr)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(err("resolve", origin, format!("'{value}': {usage}")));
    };
    let host = parse_route_host("resolve", host, origin, value, false)?;
    let port = parse_port("resolve", port, origin, value)?;
    let ip = parse_ip("resolve", addr, origin, value)?;
    Ok(Route {
        host,
        port,
        addr: SocketAddr::new(ip, port),
        kind: RouteKind::Resolve,
    })
}

/// `HOST:PORT:ADDR:PORT2` — connections for HOST on PORT (and no other port) go to
/// ADDR:PORT2, as with curl; an empty HOST or PORT (or `*`) stands for any.
pub fn parse_connect_to(value: &str, origin: &Origin) -> Result<Route, ConfigError> {
    let usage = "expected HOST:PORT:ADDR:PORT2, e.g. service.example.com:443:127.0.0.1:8443 (an empty HOST or PORT for any)";
    let Some((front, port2)) = value.rsplit_once(':') else {
        return Err(err("connect_to", origin, format!("'{value}': {usage}")));
    };
    let mut parts = front.splitn(3, ':');
    let (Some(host), Some(port), Some(addr)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(err("connect_to", origin, format!("'{value}': {usage}")));
    };
    let host = parse_route_host("connect_to", host, origin, value, true)?;
    let port = match port.trim() {
        "" | "*" => Route::ANY_PORT,
        p => parse_port("connect_to", p, origin, value)?,
    };
    let ip = parse_ip("connect_to", addr, origin, value)?;
    let port2 = parse_port("connect_to", port2, origin, value)?;
    Ok(Route {
        host,
        port,
        addr: SocketAddr::new(ip, port2),
        kind: RouteKind::ConnectTo,
    })
}

/// Reads PEM certificates; an empty or unreadable file is an error.
pub fn read_ca_file(path: &Path, origin: &Origin) -> Result<Vec<Vec<u8>>, ConfigError> {
    let bytes = std::fs::read(path).map_err(|e| cannot_read("ca_file", origin, path, &e))?;
    let mut certs = Vec::new();
    for cert in CertificateDer::pem_slice_iter(&bytes) {
        let cert = cert.map_err(|e| {
            err(
                "ca_file",
                origin,
                format!("{} is not valid PEM: {e}", path.display()),
            )
        })?;
        certs.push(cert.as_ref().to_vec());
    }
    if certs.is_empty() {
        return Err(err(
            "ca_file",
            origin,
            format!(
                "{} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
                path.display()
            ),
        ));
    }
    Ok(certs)
}

/// What a duration setting accepts: `min..=max`, and 0 too when 0 turns it off.
#[derive(Debug, Clone, Copy)]
pub struct DurationRange {
    /// The shortest, included.
    pub min: Duration,
    /// The longest, included.
    pub max: Duration,
    /// Whether 0 is accepted (and means off).
    pub zero_is_off: bool,
}

impl DurationRange {
    /// The range of --timeout, --connect-timeout, --deadline and --min-login-interval.
    pub const SETTINGS: DurationRange = DurationRange {
        min: Duration::from_millis(1),
        max: Duration::from_secs(3600),
        zero_is_off: false,
    };

    /// The range in words, each bound written as [`parse_duration_in`] reads it.
    fn text(&self) -> String {
        format!(
            "{}between {} and {}",
            if self.zero_is_off { "0 (off) or " } else { "" },
            duration_text(self.min),
            duration_text(self.max)
        )
    }
}

/// `d` in the duration syntax, in its largest whole unit: "1h", "90s", "250ms" (whole
/// milliseconds, as every bound is).
pub fn duration_text(d: Duration) -> String {
    let ms = d.as_millis();
    for (unit, size) in [("h", 3_600_000), ("m", 60_000), ("s", 1000)] {
        if ms >= size && ms.is_multiple_of(size) {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

/// A duration setting in [`DurationRange::SETTINGS`]: see [`parse_duration_in`].
pub fn parse_duration(key: &str, value: &str, origin: &Origin) -> Result<Duration, ConfigError> {
    parse_duration_in(key, value, origin, DurationRange::SETTINGS)
}

/// The one duration syntax of every setting, flag, variable and file key alike: a
/// number with a unit, ms, s, m (or min) or h, or a bare number of seconds ("10s",
/// "500ms", "1.5m", "1h", "3"). The range is the setting's, and the error for a value
/// outside it names the bounds in this same syntax, so both bounds are accepted.
pub fn parse_duration_in(
    key: &str,
    value: &str,
    origin: &Origin,
    range: DurationRange,
) -> Result<Duration, ConfigError> {
    let v = value.trim();
    let not_a_duration = || {
        err(
            key,
            origin,
            format!("'{v}' is not a duration; write e.g. 10s or 500ms"),
        )
    };
    // Cut where the unit starts (a character boundary: `find` returns one).
    let (number, unit) = match v.find(|c: char| c.is_alphabetic()) {
        Some(i) => v.split_at(i),
        None => (v, "s"),
    };
    let nanos_per_unit: f64 = match unit {
        "ms" => 1e6,
        "s" => 1e9,
        "m" | "min" => 60e9,
        "h" => 3600e9,
        _ if number.trim().is_empty() => return Err(not_a_duration()),
        _ => {
            return Err(err(
                key,
                origin,
                format!("'{v}': unknown unit '{unit}'; use ms, s, m or h (e.g. 10s)"),
            ));
        }
    };
    let n: f64 = number.trim().parse().map_err(|_| not_a_duration())?;
    // Whole nanoseconds, so that "1ms" and "3600000ms" are exactly their bounds.
    let nanos = (n * nanos_per_unit).round();
    if range.zero_is_off && nanos == 0.0 {
        return Ok(Duration::ZERO);
    }
    let within = (range.min.as_nanos() as f64..=range.max.as_nanos() as f64).contains(&nanos);
    if !within {
        return Err(err(
            key,
            origin,
            format!("'{v}' is out of range; give {}", range.text()),
        ));
    }
    Ok(Duration::from_nanos(nanos as u64))
}

/// A whole number of days, 0..=3650.
pub fn parse_days(key: &str, value: &str, origin: &Origin) -> Result<i64, ConfigError> {
    match value.trim().parse::<i64>() {
        Ok(d) if (0..=3650).contains(&d) => Ok(d),
        _ => Err(err(
            key,
            origin,
            format!("'{value}' is not a number of days (0-3650)"),
        )),
    }
}

/// Client options for `enroll` and `passkey remove` (flags only).
/// `idp` is the Pocket ID the command names: the one origin its API key may go to.
pub fn connect_options(
    args: &crate::cli::ConnectArgs,
    idp: &Url,
) -> Result<HttpOptions, ConfigError> {
    let o = Origin::Flag;
    let mut routes = Vec::new();
    for r in &args.resolve {
        routes.push(parse_resolve(r, &o)?);
    }
    for c in &args.connect_to {
        routes.push(parse_connect_to(c, &o)?);
    }
    let extra_roots = match &args.ca_file {
        Some(p) => read_ca_file(p, &o)?,
        None => Vec::new(),
    };
    let timeout = match &args.timeout {
        Some(t) => parse_duration("timeout", t, &o)?,
        None => DEFAULT_TIMEOUT,
    };
    let timeout_origin = args.timeout.as_ref().map(|_| o.clone());
    let connect_timeout = match &args.connect_timeout {
        Some(t) => check_connect_timeout(
            parse_duration("connect_timeout", t, &o)?,
            &o,
            timeout,
            timeout_origin.as_ref(),
        )?,
        None => timeout,
    };
    let proxies = read_proxies(
        args.proxy.clone().map(|v| (v, "--proxy".to_string())),
        args.noproxy.clone().map(|v| (v, "--noproxy".to_string())),
    )?;
    Ok(HttpOptions {
        timeout,
        connect_timeout,
        deadline: DEFAULT_DEADLINE,
        site: None,
        site_headers: Vec::new(),
        credential_origins: vec![idp.origin()],
        deadline_limit: DEADLINE_LIMIT,
        routes,
        extra_roots,
        insecure: args.insecure,
        trace: args.trace,
        proxies,
    })
}

/// A connection timeout longer than the request timeout could never take effect: the
/// request's timeout covers its connection too.
/// `timeout_origin` is where the timeout was given (`None`: its default).
fn check_connect_timeout(
    connect: Duration,
    origin: &Origin,
    timeout: Duration,
    timeout_origin: Option<&Origin>,
) -> Result<Duration, ConfigError> {
    if connect > timeout {
        let timeout_named = mention("timeout", timeout_origin);
        return Err(err(
            "connect_timeout",
            origin,
            format!(
                "{} is longer than the per-request timeout ({}, {timeout_named}), which bounds the connection too; lower it, or raise {}",
                crate::timefmt::human_duration(connect),
                crate::timefmt::human_duration(timeout),
                match timeout_origin {
                    Some(_) => timeout_named.clone(),
                    None => "the timeout (--timeout)".to_string(),
                }
            ),
        ));
    }
    Ok(connect)
}

/// Headers ssoprobe sets itself, or that another setting owns: a `--header` for them
/// would be dropped or would break the request.
const OWN_HEADERS: &[(&str, &str)] = &[
    (
        "host",
        "the site's host comes from --service (pin its address with --resolve)",
    ),
    ("content-length", "ssoprobe frames its requests itself"),
    ("transfer-encoding", "ssoprobe frames its requests itself"),
    ("connection", "ssoprobe manages its connections itself"),
    ("upgrade", "ssoprobe manages its connections itself"),
    ("te", "ssoprobe manages its connections itself"),
    (
        "cookie",
        "the cookie jar sends the login's cookies; a fixed cookie would fight it",
    ),
    (
        "user-agent",
        "ssoprobe names itself, so that a WAF rule can match it",
    ),
    (
        "cf-access-client-id",
        "use --service-token-id and --service-token-secret-file",
    ),
    (
        "cf-access-client-secret",
        "use --service-token-id and --service-token-secret-file",
    ),
    (
        "cf-access-token",
        "ssoprobe logs in to get its own token (use --passkey)",
    ),
];

/// Parses the `--header` values of one source, one header each.
///
/// Only `SSOPROBE_HEADER` is a list in one value (a variable cannot be repeated): it is
/// split on line feeds, a line's closing carriage return going with its feed, and its
/// empty lines are skipped, so a trailing newline or an empty variable adds nothing.
/// A `-H` flag, or one string of the file's `header` list, is one header.
fn parse_headers(values: &[String], origin: &Origin) -> Result<Vec<(String, Secret)>, ConfigError> {
    let mut out = Vec::new();
    for value in values {
        let entries: Vec<&str> = match origin {
            Origin::Env => value
                .split('\n')
                .map(|line| line.strip_suffix('\r').unwrap_or(line))
                .filter(|line| !line.trim().is_empty())
                .collect(),
            _ => vec![value.as_str()],
        };
        for entry in entries {
            out.push(parse_header(entry, origin)?);
        }
    }
    Ok(out)
}

/// Parses one `--header "Name: value"`: the name an HTTP token, the value printable
/// ASCII. The value is a secret from here on (a WAF bypass token is one).
pub fn parse_header(value: &str, origin: &Origin) -> Result<(String, Secret), ConfigError> {
    // One value is one header: a line break in it would send a second one, of the
    // server's choosing, to the site. Refused before anything is trimmed.
    if value.contains(['\r', '\n']) {
        return Err(match origin {
            Origin::Env => err(
                "header",
                origin,
                "a line holds a carriage return that ends no line; give one header per line, each ending in a line feed (or CR LF)",
            ),
            Origin::File(_) => err(
                "header",
                origin,
                "a string holds a line break, which would send a second header; write each header as its own string, e.g. header = [\"X-A: 1\", \"X-B: 2\"]",
            ),
            Origin::Flag | Origin::Builtin => ConfigError {
                setting: "-H/--header".into(),
                problem: "the value holds a line break, which would send a second header; give one -H per header (only the SSOPROBE_HEADER variable is split into lines)".into(),
            },
        });
    }
    let Some((name, v)) = value.split_once(':') else {
        return Err(err(
            "header",
            origin,
            "has no colon: write it as 'Name: value', e.g. --header 'X-Probe: 1'",
        ));
    };
    let name = name.trim();
    let tchar = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if name.is_empty() || !name.chars().all(tchar) {
        return Err(err(
            "header",
            origin,
            format!(
                "'{}' is not a header name (letters, digits and !#$%&'*+-.^_`|~ only); write e.g. --header 'X-Probe: 1'",
                crate::redact::terminal_safe(name)
            ),
        ));
    }
    let lower = name.to_ascii_lowercase();
    if let Some((_, why)) = OWN_HEADERS.iter().find(|(n, _)| *n == lower) {
        return Err(err("header", origin, format!("cannot set {name}: {why}")));
    }
    let v = v.trim();
    // The value is never quoted back: it may be the secret.
    if !v.chars().all(|c| c == '\t' || (' '..='~').contains(&c)) {
        return Err(err(
            "header",
            origin,
            format!(
                "the value of {name} has characters a header cannot carry (only printable ASCII; no line breaks)"
            ),
        ));
    }
    Ok((name.to_string(), Secret::configured(v)))
}

/// Reads a secret (API key, client secret) from a file: at most 4 KiB, trimmed, not empty.
///
/// "cannot read PATH: why", for setting `key`.
fn cannot_read(key: &str, origin: &Origin, path: &Path, e: &std::io::Error) -> ConfigError {
    err(
        key,
        origin,
        format!(
            "cannot read {}: {}",
            path.display(),
            crate::text::io_words(e)
        ),
    )
}

/// The rule, one for every secret file (API key, client secret, service-token secret):
/// a regular file (a link is followed: Kubernetes and systemd secrets are links) that
/// others cannot read, at most 4 KiB, one line of text; errors never show its content.
pub fn read_secret_file(key: &str, path: &Path, origin: &Origin) -> Result<Secret, ConfigError> {
    let meta = std::fs::metadata(path).map_err(|e| cannot_read(key, origin, path, &e))?;
    if !meta.is_file() {
        return Err(err(
            key,
            origin,
            format!("{} is not a regular file", path.display()),
        ));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o004 != 0 {
            return Err(err(
                key,
                origin,
                format!(
                    "{} can be read by every user of this machine; restrict it: chmod 600 {}",
                    path.display(),
                    path.display()
                ),
            ));
        }
    }
    if meta.len() > 4096 {
        return Err(err(
            key,
            origin,
            format!(
                "{} is larger than 4 KiB; it should hold one secret",
                path.display()
            ),
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| cannot_read(key, origin, path, &e))?;
    let value = text.trim();
    if value.is_empty() {
        return Err(err(key, origin, format!("{} is empty", path.display())));
    }
    if value.chars().any(char::is_control) {
        return Err(err(
            key,
            origin,
            format!(
                "{} holds more than one line (or control characters); it should hold the secret alone",
                path.display()
            ),
        ));
    }
    Ok(Secret::configured(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_types_in_the_file_say_what_is_wanted() {
        let e = toml::from_str::<FileConfig>("timeout = true")
            .unwrap_err()
            .to_string();
        assert!(e.contains("a number or a string"), "{e}");
        assert!(!e.contains("untagged") && !e.contains("Scalar"), "{e}");
    }

    #[test]
    fn secret_files_follow_one_rule() {
        let dir =
            std::env::temp_dir().join(format!("ssoprobe-secret-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("secret.txt");
        std::fs::write(&path, "s3cr3t-value-0123\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let e = read_secret_file("client_secret_file", &path, &Origin::Flag).unwrap_err();
            assert!(e.to_string().contains("chmod 600"), "{e}");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let secret = read_secret_file("client_secret_file", &path, &Origin::Flag).unwrap();
        assert_eq!(secret.expose(), "s3cr3t-value-0123");
        std::fs::write(&path, "line one\nline two s3cr3t").unwrap();
        let e = read_secret_file("client_secret_file", &path, &Origin::Flag).unwrap_err();
        assert!(!e.to_string().contains("s3cr3t"), "{e}");
        assert!(e.to_string().contains("more than one line"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn durations() {
        let o = Origin::Flag;
        assert_eq!(
            parse_duration("timeout", "10s", &o).unwrap(),
            Duration::from_secs(10)
        );
        assert_eq!(
            parse_duration("timeout", "250ms", &o).unwrap(),
            Duration::from_millis(250)
        );
        assert_eq!(
            parse_duration("timeout", "2m", &o).unwrap(),
            Duration::from_secs(120)
        );
        assert_eq!(
            parse_duration("timeout", "3", &o).unwrap(),
            Duration::from_secs(3)
        );
        let e = parse_duration("timeout", "ten", &o)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("--timeout:"), "{e}");
        let e = parse_duration("deadline", "0s", &Origin::Env)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("SSOPROBE_DEADLINE:"), "{e}");
        assert!(parse_duration("timeout", "5h", &o).is_err());
    }

    /// The `min` and `max` a range message names ("… between 1ms and 1h").
    fn named_bounds(message: &str) -> (String, String) {
        let (_, range) = message
            .split_once("between ")
            .unwrap_or_else(|| panic!("no range in {message:?}"));
        let (min, max) = range.split_once(" and ").unwrap();
        (min.to_string(), max.trim_end().to_string())
    }

    #[test]
    fn every_duration_unit_is_read_and_the_named_bounds_are_accepted() {
        let d = |v: &str| parse_duration("connect_timeout", v, &Origin::Flag);
        let secs = Duration::from_secs;
        for (text, want) in [
            ("1ms", Duration::from_millis(1)),
            ("1500ms", Duration::from_millis(1500)),
            ("1s", secs(1)),
            ("1.5s", Duration::from_millis(1500)),
            ("1m", secs(60)),
            ("1min", secs(60)),
            ("1.5m", secs(90)),
            ("60m", secs(3600)),
            ("1h", secs(3600)),
            ("0.5h", secs(1800)),
            ("3600000ms", secs(3600)),
            ("3600", secs(3600)),
            (" 10 s ", secs(10)),
        ] {
            assert_eq!(d(text).unwrap(), want, "{text:?}");
        }
        // Inclusive bounds: just past them is refused, and the bounds the message names
        // are themselves accepted.
        for past in ["0.9ms", "0", "0s", "-1s", "3600001ms", "1.01h", "61m", "2h"] {
            let e = d(past).unwrap_err().to_string();
            assert!(e.contains("out of range; give between "), "{past}: {e}");
            let (min, max) = named_bounds(&e);
            assert_eq!(d(&min).unwrap(), Duration::from_millis(1), "{e}");
            assert_eq!(d(&max).unwrap(), secs(3600), "{e}");
        }
        // Garbage is refused, naming the setting as the user gave it.
        for (origin, named) in [
            (Origin::Flag, "--connect-timeout: "),
            (Origin::Env, "SSOPROBE_CONNECT_TIMEOUT: "),
            (
                Origin::File(PathBuf::from("probe.toml")),
                "probe.toml: key `connect_timeout`: ",
            ),
        ] {
            for garbage in [
                "ten", "10 sec", "1e3", "h", "", "1h30m", "½s", "10µs", "NaN", "inf",
            ] {
                let e = parse_duration("connect_timeout", garbage, &origin)
                    .unwrap_err()
                    .to_string();
                assert!(e.starts_with(named), "{garbage:?}: {e}");
                assert!(
                    e.contains("not a duration") || e.contains("unknown unit"),
                    "{garbage:?}: {e}"
                );
                assert!(e.contains("ms, s, m or h") || e.contains("e.g. 10s"), "{e}");
            }
        }
    }

    #[test]
    fn resolve_and_connect_to() {
        let o = Origin::Flag;
        let r = parse_resolve("Service.Example.com:443:127.0.0.2", &o).unwrap();
        assert_eq!(r.host, "service.example.com");
        assert_eq!(r.addr, "127.0.0.2:443".parse().unwrap());
        let r = parse_resolve("id.example.com:443:[::1]", &o).unwrap();
        assert_eq!(r.addr, "[::1]:443".parse().unwrap());
        let c = parse_connect_to("id.example.com:443:127.0.0.1:8443", &o).unwrap();
        assert_eq!(c.addr, "127.0.0.1:8443".parse().unwrap());
        for bad in [
            "id.example.com",
            "id.example.com:443",
            "id.example.com:x:1.2.3.4",
            "id.example.com:443:nohost",
        ] {
            let e = parse_resolve(bad, &o).unwrap_err().to_string();
            assert!(e.starts_with("--resolve:") && e.contains(bad), "{e}");
        }
        assert!(parse_connect_to("id.example.com:443:127.0.0.1", &o).is_err());
    }

    #[test]
    fn pins_keep_their_port_and_take_wildcards() {
        let o = Origin::Flag;
        let r = parse_resolve("id.example.com:8443:127.0.0.1", &o).unwrap();
        assert_eq!((r.port, r.kind), (8443, RouteKind::Resolve));
        assert!(r.matches("id.example.com", 8443) && !r.matches("id.example.com", 443));
        let any = parse_resolve("*:443:127.0.0.1", &o).unwrap();
        assert!(any.matches("anything.example", 443) && !any.matches("anything.example", 80));
        let c = parse_connect_to("::127.0.0.1:9443", &o).unwrap();
        assert_eq!(
            (c.host.as_str(), c.port),
            (Route::ANY_HOST, Route::ANY_PORT)
        );
        assert_eq!(c.kind, RouteKind::ConnectTo);
        assert!(c.matches("a.example", 1) && c.matches("b.example", 443));
        let c = parse_connect_to("id.example.com::[::1]:9443", &o).unwrap();
        assert!(c.matches("id.example.com", 8443) && !c.matches("x.example.com", 8443));
        assert_eq!(c.addr, "[::1]:9443".parse().unwrap());
        assert!(parse_resolve(":443:127.0.0.1", &o).is_err());
        assert!(parse_resolve("id.example.com::127.0.0.1", &o).is_err());
    }

    #[test]
    fn team_names() {
        assert_eq!(
            parse_team("xyz", &Origin::Flag).unwrap(),
            "xyz.cloudflareaccess.com"
        );
        assert!(parse_team("bad team", &Origin::Flag).is_err());
        assert!(parse_team("", &Origin::Flag).is_err());
    }

    #[test]
    fn thresholds_are_ordered_and_named_as_given() {
        let file = Origin::File(PathBuf::from("probe.toml"));
        assert!(check_thresholds(&(21, None), &(7, None)).is_ok());
        assert!(check_thresholds(&(7, Some(Origin::Flag)), &(7, Some(Origin::Env))).is_ok());
        let e = |warn, fail| check_thresholds(&warn, &fail).unwrap_err().to_string();
        let both = e((5, Some(Origin::Flag)), (10, Some(Origin::Flag)));
        assert!(
            both.starts_with("--tls-warn-days: 5 is below --tls-fail-days (10)"),
            "{both}"
        );
        assert!(!both.contains("tls_"), "{both}");
        let mixed = e((5, Some(Origin::Env)), (10, Some(file.clone())));
        assert!(
            mixed.starts_with(
                "SSOPROBE_TLS_WARN_DAYS: 5 is below `tls_fail_days` in probe.toml (10)"
            ),
            "{mixed}"
        );
        let default_fail = e((3, Some(Origin::Flag)), (7, None));
        assert!(
            default_fail.contains("below the default of --tls-fail-days (7)"),
            "{default_fail}"
        );
        let default_warn = e((21, None), (30, Some(file)));
        assert!(
            default_warn.starts_with(
                "probe.toml: key `tls_fail_days`: 30 is above the default of --tls-warn-days (21)"
            ),
            "{default_warn}"
        );
    }

    #[test]
    fn file_keys_are_the_files_keys() {
        // serde names every field it expects when it meets an unknown one.
        let e = toml::from_str::<FileConfig>("no_such_key = 1")
            .unwrap_err()
            .to_string();
        let expected: Vec<&str> = e
            .split('`')
            .skip(3)
            .step_by(2)
            .filter(|k| *k != "targets")
            .collect();
        assert_eq!(expected, FILE_KEYS, "{e}");
    }

    #[test]
    fn unknown_file_keys_are_named() {
        let e = toml::from_str::<FileConfig>("servce = \"https://x\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("servce"), "{e}");
    }
}
