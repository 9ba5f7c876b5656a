//! Command-line definitions. Every flag of `check` can also come from an `SSOPROBE_*`
//! environment variable or a key of the `--config` TOML file (flags win, then the
//! environment, then the file).

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Proves that single sign-on in front of a self-hosted site works, end to end, and
/// says which link is broken when it does not.
#[derive(Debug, Parser)]
#[command(name = "ssoprobe", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a deployment: the Access redirect chain, Pocket ID's endpoints, TLS.
    #[command(after_long_help = CHECK_AFTER_HELP)]
    Check(Box<CheckArgs>),
    /// Read Cloudflare's and Pocket ID's configuration through their APIs (read-only)
    /// and name every mismatch between them, without a login.
    // The settings of a login mean nothing here: hidden (and refused when given).
    #[command(
        after_long_help = DOCTOR_AFTER_HELP,
        mut_arg("ping_url", |a| a.hide(true)),
        mut_arg("expect_status", |a| a.hide(true)),
        mut_arg("expect_body", |a| a.hide(true)),
        mut_arg("client_secret_file", |a| a.hide(true)),
        mut_arg("header", |a| a.hide(true)),
        mut_arg("print_config", |a| a.hide(true))
    )]
    Doctor(Box<CheckArgs>),
    /// Start the embedded lab on loopback and check it (add --fault to break it).
    Demo(DemoArgs),
    /// Run the embedded lab in the foreground and print how to check it.
    Lab(LabArgs),
    /// Give a dedicated monitoring user a software passkey at Pocket ID.
    #[command(after_long_help = ENROLL_AFTER_HELP)]
    Enroll(EnrollArgs),
    /// Show or remove a passkey file.
    Passkey {
        /// What to do with it.
        #[command(subcommand)]
        command: PasskeyCommand,
    },
    /// Run a Prometheus multi-target exporter: GET /probe?target=NAME checks a target.
    // The report settings of `check` mean nothing here: hidden (and refused when given).
    #[command(
        mut_arg("format", |a| a.hide(true)),
        mut_arg("output", |a| a.hide(true)),
        mut_arg("color", |a| a.hide(true)),
        mut_arg("no_color", |a| a.hide(true)),
        mut_arg("quiet", |a| a.hide(true)),
        mut_arg("ping_url", |a| a.hide(true)),
        mut_arg("har", |a| a.hide(true)),
        mut_arg("print_config", |a| a.hide(true)),
        mut_arg("report_json", |a| a.hide(true)),
        mut_arg("report_junit", |a| a.hide(true)),
        mut_arg("report_nagios", |a| a.hide(true)),
        mut_arg("report_prometheus", |a| a.hide(true))
    )]
    Serve(Box<ServeArgs>),
    /// Validate a configuration without touching the network.
    #[command(after_long_help = CONFIG_AFTER_HELP)]
    Config {
        /// What to do.
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// List every check: its id, what it proves, when it runs and what makes it skip.
    Checks {
        /// Output format.
        #[arg(
            long,
            value_enum,
            ignore_case = true,
            default_value_t = ListFormat::Human,
            value_name = "FORMAT"
        )]
        format: ListFormat,
    },
    /// Print the JSON Schema of `check --format json`.
    Schema,
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        #[arg(value_enum, ignore_case = true)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), or write one page per subcommand into --dir.
    Man {
        /// Write ssoprobe.1 and one page per subcommand (ssoprobe-check.1, …) into DIR,
        /// created if missing, and print their paths.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

/// Arguments of `serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address or host name and port to listen on (loopback unless you say otherwise);
    /// `:PORT` is every interface, as blackbox_exporter's `:9115`, and a bare `PORT` is
    /// loopback on that port.
    #[arg(
        long,
        env = "SSOPROBE_LISTEN",
        default_value = "127.0.0.1:9797",
        value_name = "HOST:PORT"
    )]
    pub listen: String,
    /// Least time between two full logins of one target; a probe inside it gets the
    /// last result and its age (Pocket ID rate-limits passkey logins).
    #[arg(
        long,
        env = "SSOPROBE_MIN_LOGIN_INTERVAL",
        default_value = "60s",
        value_name = "DURATION"
    )]
    pub min_login_interval: String,
    /// Most target runs at once.
    #[arg(long, env = "SSOPROBE_CONCURRENCY", default_value_t = 4)]
    pub concurrency: usize,
    /// The targets: the same flags and config file as `check`.
    #[command(flatten)]
    pub check: CheckArgs,
}

/// `ssoprobe config …`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Parse and validate flags, SSOPROBE_* variables and --config (reads the files it
    /// names, sends nothing); exit 3 with the field named on error.
    Check(Box<CheckArgs>),
}

/// The config file, and how it holds several sites (`ssoprobe check URL1 URL2` points
/// here).
pub const CONFIG_AFTER_HELP: &str = "\
The config file (--config FILE, or SSOPROBE_CONFIG) is TOML with the keys of the flags,
`_` for `-` (service, idp, team, resolve, timeout, ...); flags win over SSOPROBE_*
variables, variables over the file. resolve, connect_to and header are TOML lists.

One run checks several sites from one file: each [targets.NAME] table is a site, and
the keys above the tables are the sites' shared defaults. `ssoprobe check --config FILE`
checks every target, --target NAME one of them.

Example:
  idp = \"https://id.example.com\"
  [targets.wiki]
  service = \"https://wiki.example.com\"
  [targets.grafana]
  service = \"https://grafana.example.com\"";

const ENROLL_AFTER_HELP: &str = "\
Examples:
  ssoprobe enroll --idp https://id.example.com --api-key-file key.txt --user probe@example.com --out probe.passkey
  ssoprobe enroll --idp https://id.example.com --login-code https://id.example.com/lc/ABC123 --out probe.passkey

The passkey file holds a private key: it is written with mode 0600 and ssoprobe refuses
to use it when group or others can read it.";

/// `ssoprobe passkey …`.
#[derive(Debug, Subcommand)]
pub enum PasskeyCommand {
    /// Show who and where a passkey file is for (never the key).
    Show {
        /// The passkey file.
        file: PathBuf,
    },
    /// Delete the passkey at Pocket ID (admin API key), then the file.
    Remove {
        /// The passkey file.
        file: PathBuf,
        /// File holding a Pocket ID admin API key.
        #[arg(long, value_name = "FILE")]
        api_key_file: PathBuf,
        /// Connection options.
        #[command(flatten)]
        connect: ConnectArgs,
    },
}

/// How to reach Pocket ID (shared by `enroll` and `passkey remove`).
#[derive(Debug, Clone, Args)]
pub struct ConnectArgs {
    /// Pin HOST:PORT to an address, as curl does: HOST:PORT:ADDR (repeatable, or several
    /// in one value separated by commas).
    #[arg(long, value_name = "HOST:PORT:ADDR", value_delimiter = ',')]
    pub resolve: Vec<String>,
    /// Send connections for HOST:PORT to ADDR:PORT2 (repeatable, or several in one value
    /// separated by commas).
    #[arg(long, value_name = "HOST:PORT:ADDR:PORT2", value_delimiter = ',')]
    pub connect_to: Vec<String>,
    /// Extra trusted root certificates (PEM).
    #[arg(long, value_name = "PEM")]
    pub ca_file: Option<PathBuf>,
    /// Accept any certificate (warns).
    #[arg(short = 'k', long)]
    pub insecure: bool,
    /// Per-request timeout [default: 10s].
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,
    /// Time to set up a connection (TCP and TLS) [default: the --timeout].
    #[arg(long, value_name = "DURATION")]
    pub connect_timeout: Option<String>,
    /// Send requests through this proxy (http://, socks5://, socks5h://; "" for none)
    /// [default: HTTPS_PROXY, HTTP_PROXY, ALL_PROXY].
    #[arg(long, value_name = "URL")]
    pub proxy: Option<String>,
    /// Hosts reached without the proxy, comma-separated (curl's syntax; * for all)
    /// [default: NO_PROXY].
    #[arg(long, value_name = "LIST")]
    pub noproxy: Option<String>,
    /// Print every HTTP hop on stderr (secrets redacted).
    #[arg(short = 'v', long, visible_alias = "verbose")]
    pub trace: bool,
}

/// Arguments of `enroll`.
#[derive(Debug, Clone, Args)]
#[command(group = clap::ArgGroup::new("bootstrap").required(true).args(["api_key_file", "login_code"]))]
pub struct EnrollArgs {
    /// Pocket ID's public URL (its APP_URL).
    #[arg(long, env = "SSOPROBE_IDP", value_name = "URL")]
    pub idp: String,
    /// File holding a Pocket ID admin API key (finds or creates --user).
    #[arg(long, value_name = "FILE", conflicts_with = "login_code")]
    pub api_key_file: Option<PathBuf>,
    /// The monitoring user's e-mail (or username), with --api-key-file.
    #[arg(long, value_name = "EMAIL", requires = "api_key_file")]
    pub user: Option<String>,
    /// A one-time login code, or its /lc/ link, made for the user in Pocket ID.
    #[arg(long, value_name = "CODE")]
    pub login_code: Option<String>,
    /// Where to write the passkey file.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Overwrite --out if it exists.
    #[arg(long)]
    pub force: bool,
    /// Connection options.
    #[command(flatten)]
    pub connect: ConnectArgs,
}

const CHECK_AFTER_HELP: &str = "\
Exit codes: 0 all checks passed, 1 warnings only, 2 at least one check failed,
3 ssoprobe could not run (bad usage, bad configuration, unreadable file).

Example:
  ssoprobe check --service https://service.example.com --idp https://id.example.com --team xyz";

const DOCTOR_AFTER_HELP: &str = "\
doctor sends only GET requests. The Cloudflare token needs, for the account:
Access: Apps and Policies Read; Access: Organizations, Identity Providers, and Groups
Read; Cloudflare Tunnel Read; and for the zones of the site and Pocket ID: Zone Read,
DNS Read, Bot Management Read. The Pocket ID key must be an admin's.

Exit codes: 0 all checks passed, 1 warnings only, 2 at least one check failed,
3 ssoprobe could not run (bad usage, bad configuration, unreadable file).

Example:
  ssoprobe doctor --service https://service.example.com --idp https://id.example.com \\
    --cf-api-token-file cf-token.txt --api-key-file pocket-id-key.txt --user probe@example.com";

/// How `ssoprobe checks` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    /// One block per check.
    Human,
    /// One JSON array.
    Json,
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One line per check, hints under problems, a summary.
    Human,
    /// One JSON document (schema: `ssoprobe schema`).
    Json,
    /// JUnit XML: a testsuite per target, a testcase per check.
    Junit,
    /// A monitoring-plugins status line with perfdata, details after it.
    Nagios,
    /// Prometheus text exposition (for node_exporter's textfile collector).
    Prometheus,
}

/// When to color the human report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// On a terminal, unless NO_COLOR is set.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// How the report looks; shared by `check` and `demo`.
#[derive(Debug, Clone, Args)]
pub struct OutputArgs {
    /// Report format.
    #[arg(
        long,
        value_enum,
        ignore_case = true,
        env = "SSOPROBE_FORMAT",
        default_value = "human"
    )]
    pub format: Format,
    /// Print every HTTP hop on stderr (method, URL, status, Location, cookie names, timing;
    /// secrets redacted).
    #[arg(
        short = 'v',
        long,
        visible_alias = "verbose",
        env = "SSOPROBE_TRACE",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub trace: bool,
    /// Print nothing but errors: the exit code tells the result (a report still goes to
    /// --output when given).
    #[arg(
        short = 'q',
        long,
        env = "SSOPROBE_QUIET",
        value_parser = clap::builder::BoolishValueParser::new(),
        conflicts_with = "trace"
    )]
    pub quiet: bool,
    /// Color the human report.
    #[arg(long, value_enum, ignore_case = true, default_value = "auto")]
    pub color: ColorChoice,
    /// Never color the report (the same as --color never).
    #[arg(long, conflicts_with = "color")]
    pub no_color: bool,
    /// Write the report to FILE (atomically: a temporary file renamed over it) instead of
    /// standard output.
    #[arg(long, env = "SSOPROBE_OUTPUT", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Also write the JSON report of the same run to FILE (atomically), whatever
    /// --format prints.
    #[arg(long, env = "SSOPROBE_REPORT_JSON", value_name = "FILE")]
    pub report_json: Option<PathBuf>,
    /// Also write the JUnit XML report of the same run to FILE (atomically), whatever
    /// --format prints.
    #[arg(long, env = "SSOPROBE_REPORT_JUNIT", value_name = "FILE")]
    pub report_junit: Option<PathBuf>,
    /// Also write the Nagios plugin output of the same run to FILE (atomically), whatever
    /// --format prints.
    #[arg(long, env = "SSOPROBE_REPORT_NAGIOS", value_name = "FILE")]
    pub report_nagios: Option<PathBuf>,
    /// Also write the Prometheus exposition of the same run to FILE (atomically), e.g.
    /// for node_exporter's textfile collector, whatever --format prints.
    #[arg(long, env = "SSOPROBE_REPORT_PROMETHEUS", value_name = "FILE")]
    pub report_prometheus: Option<PathBuf>,
}

/// Arguments of `check`. Values stay text here; `config` parses them and names the flag,
/// variable or file key in any error.
#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    /// The protected site, e.g. https://service.example.com (the same as --service); the
    /// team, AUD, Pocket ID and client id are found from its login chain.
    // The URL may carry an access key in its query.
    #[arg(value_name = "URL")]
    pub url: Option<String>,
    /// Print what the run found (service, team, AUD, Pocket ID, client id) as a config
    /// file, to pin as expectations for monitoring, instead of the report.
    #[arg(long)]
    pub print_config: bool,
    /// TOML file with the same keys as the flags (service, idp, team, client_id, aud,
    /// resolve, connect_to, ca_file, insecure, timeout, connect_timeout, header, deadline,
    /// tls_warn_days, tls_fail_days, passkey, expect_status, expect_body, …).
    #[arg(long, env = "SSOPROBE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Check only this target of the config file's [targets.NAME] tables.
    #[arg(long, env = "SSOPROBE_TARGET", value_name = "NAME")]
    pub target: Option<String>,
    /// Healthchecks-style dead-man's switch: ping URL/start before the run, then URL on
    /// success or URL/<exit code>, with the report as the body.
    // A capability URL: its value never shows in --help.
    #[arg(
        long,
        env = "SSOPROBE_PING_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub ping_url: Option<String>,
    /// The protected site, e.g. https://service.example.com.
    // The URL may carry an access key in its query.
    #[arg(
        long,
        env = "SSOPROBE_SERVICE",
        value_name = "URL",
        hide_env_values = true
    )]
    pub service: Option<String>,
    /// Pocket ID's public URL (its APP_URL), e.g. https://id.example.com [default: found
    /// from Access's redirect to it, or the --passkey file].
    #[arg(long, env = "SSOPROBE_IDP", value_name = "URL")]
    pub idp: Option<String>,
    /// The Cloudflare Zero Trust team name (xyz) or team domain (xyz.cloudflareaccess.com)
    /// Access must redirect to [default: found from the redirect].
    #[arg(long, env = "SSOPROBE_TEAM")]
    pub team: Option<String>,
    /// The OIDC client id Cloudflare should send to Pocket ID (checked when given).
    #[arg(long, env = "SSOPROBE_CLIENT_ID", value_name = "ID")]
    pub client_id: Option<String>,
    /// The Access application's AUD tag (checked when given).
    #[arg(long, env = "SSOPROBE_AUD")]
    pub aud: Option<String>,
    /// The gateway the site must be behind: `access` (Cloudflare Access) or
    /// `oauth2-proxy` [default: recognised from the site's answer].
    #[arg(long, env = "SSOPROBE_GATEWAY", value_name = "NAME")]
    pub gateway: Option<String>,
    /// Pin HOST:PORT to an address, as curl does: HOST:PORT:ADDR (repeatable, or several
    /// in one value separated by commas, as SSOPROBE_RESOLVE takes them; the file's
    /// `resolve` is a list).
    #[arg(
        long,
        env = "SSOPROBE_RESOLVE",
        value_name = "HOST:PORT:ADDR",
        value_delimiter = ','
    )]
    pub resolve: Vec<String>,
    /// Send connections for HOST:PORT to ADDR:PORT2, as curl does (repeatable, or several
    /// in one value separated by commas, as SSOPROBE_CONNECT_TO takes them; the file's
    /// `connect_to` is a list).
    #[arg(
        long,
        env = "SSOPROBE_CONNECT_TO",
        value_name = "HOST:PORT:ADDR:PORT2",
        value_delimiter = ','
    )]
    pub connect_to: Vec<String>,
    /// Extra trusted root certificates (PEM), e.g. an internal CA.
    #[arg(long, env = "SSOPROBE_CA_FILE", value_name = "PEM")]
    pub ca_file: Option<PathBuf>,
    /// Accept any certificate for HTTP requests (the tls.* checks still judge them).
    /// Prints a warning on every run.
    #[arg(
        short = 'k',
        long,
        env = "SSOPROBE_INSECURE",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub insecure: bool,
    /// Per-request timeout, e.g. 10s, 500ms [default: 10s].
    #[arg(long, env = "SSOPROBE_TIMEOUT", value_name = "DURATION")]
    pub timeout: Option<String>,
    /// Time to set up a connection (TCP and TLS handshake), at most the --timeout
    /// [default: the --timeout].
    #[arg(long, env = "SSOPROBE_CONNECT_TIMEOUT", value_name = "DURATION")]
    pub connect_timeout: Option<String>,
    /// Send requests through this proxy, as curl does: http://HOST:PORT (tunnels https),
    /// socks5://, socks5h://; user:password@ before the host when it asks; "" for none
    /// [default: HTTPS_PROXY, HTTP_PROXY, ALL_PROXY].
    // May carry the proxy's password: its value never shows in --help.
    #[arg(
        long,
        env = "SSOPROBE_PROXY",
        value_name = "URL",
        hide_env_values = true
    )]
    pub proxy: Option<String>,
    /// Hosts reached without the proxy, comma-separated, as curl reads them: a name
    /// covers its subdomains; addresses, CIDR networks, :PORT; * for all [default:
    /// NO_PROXY].
    #[arg(long, env = "SSOPROBE_NOPROXY", value_name = "LIST")]
    pub noproxy: Option<String>,
    /// Extra request header for the site's host only, e.g. a WAF skip header (repeatable,
    /// one header per -H; SSOPROBE_HEADER takes one per line, the file's `header` a list;
    /// the value is treated as a secret and never printed).
    // The value may be a shared secret (a WAF bypass token). No value delimiter: it would
    // split a flag's value too, and a line break in one -H must be refused, not make two
    // headers; `config` splits the variable alone.
    #[arg(
        short = 'H',
        long = "header",
        env = "SSOPROBE_HEADER",
        value_name = "NAME: VALUE",
        hide_env_values = true
    )]
    pub header: Vec<String>,
    /// Deadline for the whole run [default: 30s].
    #[arg(long, env = "SSOPROBE_DEADLINE", value_name = "DURATION")]
    pub deadline: Option<String>,
    /// Warn when a certificate expires in fewer days than this [default: 21].
    #[arg(long, env = "SSOPROBE_TLS_WARN_DAYS", value_name = "DAYS")]
    pub tls_warn_days: Option<String>,
    /// Fail when a certificate expires in fewer days than this [default: 7].
    #[arg(long, env = "SSOPROBE_TLS_FAIL_DAYS", value_name = "DAYS")]
    pub tls_fail_days: Option<String>,
    /// A passkey file from `ssoprobe enroll`: log in with it and reach the site.
    #[arg(long, env = "SSOPROBE_PASSKEY", value_name = "FILE")]
    pub passkey: Option<PathBuf>,
    /// The status the site must answer after login [default: 200].
    #[arg(long, env = "SSOPROBE_EXPECT_STATUS", value_name = "CODE")]
    pub expect_status: Option<String>,
    /// Text the site's answer must contain after login.
    #[arg(long, env = "SSOPROBE_EXPECT_BODY", value_name = "TEXT")]
    pub expect_body: Option<String>,
    /// File with the OIDC client secret: with --passkey, ssoprobe then runs its own code
    /// flow for the client and verifies the id_token (`idp.exchange`).
    #[arg(long, env = "SSOPROBE_CLIENT_SECRET_FILE", value_name = "FILE")]
    pub client_secret_file: Option<PathBuf>,
    /// Access service token id: reach the site with it, without a passkey.
    #[arg(
        long,
        env = "SSOPROBE_SERVICE_TOKEN_ID",
        hide_env_values = true,
        value_name = "ID",
        requires = "service_token_secret_file"
    )]
    pub service_token_id: Option<String>,
    /// File with the Access service token secret.
    #[arg(
        long,
        env = "SSOPROBE_SERVICE_TOKEN_SECRET_FILE",
        value_name = "FILE",
        requires = "service_token_id"
    )]
    pub service_token_secret_file: Option<PathBuf>,
    /// File with a Cloudflare API token (read permissions; see docs/doctor.md): the
    /// `config.*` checks read Access, the tunnel and DNS with it.
    #[arg(long, env = "SSOPROBE_CF_API_TOKEN_FILE", value_name = "FILE")]
    pub cf_api_token_file: Option<PathBuf>,
    /// The Cloudflare account id (32 hex) [default: the token's only account].
    #[arg(long, env = "SSOPROBE_CF_ACCOUNT_ID", value_name = "ID")]
    pub cf_account_id: Option<String>,
    /// Cloudflare's API [default: https://api.cloudflare.com/client/v4].
    #[arg(long, env = "SSOPROBE_CF_API_URL", value_name = "URL")]
    pub cf_api_url: Option<String>,
    /// File with a Pocket ID admin API key: the `config.*` checks read the OIDC client
    /// and the monitoring user with it.
    #[arg(long, env = "SSOPROBE_API_KEY_FILE", value_name = "FILE")]
    pub api_key_file: Option<PathBuf>,
    /// The monitoring user's e-mail, for the `config.*` checks of policies and the
    /// user [default: the --passkey file's].
    #[arg(long, env = "SSOPROBE_USER", value_name = "EMAIL")]
    pub user: Option<String>,
    /// Also write every request and answer of the run to FILE as a HAR 1.2 archive
    /// (secrets redacted as in --trace; opens in a browser's network panel).
    #[arg(long, env = "SSOPROBE_HAR", value_name = "FILE")]
    pub har: Option<PathBuf>,
    /// Warn when the checks take longer than DURATION, or when check CHECK takes longer
    /// (CHECK=DURATION; repeatable): the `run.time` check says which (check_http's -w).
    #[arg(
        long,
        env = "SSOPROBE_WARNING",
        value_name = "[CHECK=]DURATION",
        value_delimiter = ','
    )]
    pub warning: Vec<String>,
    /// Fail when the checks take longer than DURATION, or when check CHECK takes longer
    /// (CHECK=DURATION; repeatable): the `run.time` check says which (check_http's -c).
    #[arg(
        long,
        env = "SSOPROBE_CRITICAL",
        value_name = "[CHECK=]DURATION",
        value_delimiter = ','
    )]
    pub critical: Vec<String>,
    /// Output options.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Arguments of `demo`.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Run only the anonymous checks (no passkey enrolment and login).
    #[arg(long)]
    pub no_login: bool,
    /// Also read the lab's Cloudflare API and Pocket ID admin API and run the
    /// `config.*` checks beside the probe (what `doctor` checks).
    #[arg(long)]
    pub doctor: bool,
    /// Write the check's requests and answers to FILE as a HAR 1.2 archive (not the
    /// lab's set-up).
    #[arg(long, value_name = "FILE")]
    pub har: Option<PathBuf>,
    /// Break the lab the way real deployments break (repeatable, or several in one value
    /// separated by commas; `ssoprobe lab --list-faults`).
    #[arg(long = "fault", value_name = "NAME", value_delimiter = ',')]
    pub faults: Vec<String>,
    /// Which face of Cloudflare the lab shows (`ssoprobe lab --list-variants`) [default: classic].
    #[arg(long, value_name = "NAME")]
    pub variant: Option<String>,
    /// What stands in front of the lab's site: `access` (Cloudflare Access) or
    /// `oauth2-proxy` (`ssoprobe lab --gateway NAME --list-faults` lists its faults)
    /// [default: access].
    #[arg(long, value_name = "NAME")]
    pub gateway: Option<String>,
    /// Simulated network round-trip time to the lab's hosts, e.g. 20ms: half of it
    /// each way on every connection, TCP's handshake included [default: 0 = off].
    #[arg(long, value_name = "DURATION")]
    pub rtt: Option<String>,
    /// Per-request timeout [default: 10s].
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,
    /// Deadline for the whole run [default: 30s].
    #[arg(long, value_name = "DURATION")]
    pub deadline: Option<String>,
    /// Warn when a certificate expires in fewer days than this [default: 21].
    #[arg(long, value_name = "DAYS")]
    pub tls_warn_days: Option<String>,
    /// Fail when a certificate expires in fewer days than this [default: 7].
    #[arg(long, value_name = "DAYS")]
    pub tls_fail_days: Option<String>,
    /// Warn when the checks take longer than DURATION, or check CHECK does
    /// (CHECK=DURATION; repeatable).
    #[arg(long, value_name = "[CHECK=]DURATION")]
    pub warning: Vec<String>,
    /// Fail when the checks take longer than DURATION, or check CHECK does
    /// (CHECK=DURATION; repeatable).
    #[arg(long, value_name = "[CHECK=]DURATION")]
    pub critical: Vec<String>,
    /// Output options.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Arguments of `lab`.
#[derive(Debug, Clone, Args)]
pub struct LabArgs {
    /// Break the lab (repeatable, or several in one value separated by commas; `ssoprobe
    /// lab --list-faults`).
    #[arg(long = "fault", value_name = "NAME", value_delimiter = ',')]
    pub faults: Vec<String>,
    /// Where to write the lab's CA certificate [default: ca.pem in --dir].
    #[arg(long, value_name = "FILE")]
    pub ca_out: Option<PathBuf>,
    /// Where to write the lab's CA, admin API key, client secret and service token
    /// secret (files mode 0600) [default: a new directory in the temp directory].
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Which face of Cloudflare the lab shows: page markup, link shapes, header case,
    /// cookie attribute order [default: classic].
    #[arg(long, value_name = "NAME")]
    pub variant: Option<String>,
    /// What stands in front of the site: `access` (Cloudflare Access) or `oauth2-proxy`
    /// (oauth2-proxy with its own Pocket ID client) [default: access].
    #[arg(long, value_name = "NAME")]
    pub gateway: Option<String>,
    /// Simulated network round-trip time to the lab's hosts, e.g. 20ms: half of it
    /// each way on every connection, TCP's handshake included [default: 0 = off].
    #[arg(long, value_name = "DURATION")]
    pub rtt: Option<String>,
    /// List the faults of --gateway's lab and exit.
    #[arg(long)]
    pub list_faults: bool,
    /// List the variants and exit.
    #[arg(long)]
    pub list_variants: bool,
}
