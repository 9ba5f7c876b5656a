//! `ssoprobe config check`: validates the configuration without touching the network,
//! then prints every setting each target's run uses and where it came from (a flag, a
//! variable, the config file and its table, or the default), as `git config
//! --show-origin` does.

use super::{AppError, NoOrigins};
use crate::cli::{CheckArgs, Cli};
use crate::config::{Config, FILE_KEYS, OriginOf};
use clap::CommandFactory;

pub(crate) fn run(args: &CheckArgs, matches: Option<&clap::ArgMatches>) -> Result<u8, AppError> {
    let origins = matches.map(|m| m as &dyn OriginOf);
    let targets = Config::targets_from_check_args(args, origins.unwrap_or(&NoOrigins))?;
    super::known_checks(&targets)?;
    if let Some(u) = &args.ping_url {
        let named = crate::config::named(origins.unwrap_or(&NoOrigins), "ping_url");
        crate::ping::PingUrl::parse_as(u, &named)?;
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
        let idp = match c.idp_source {
            crate::config::IdpSource::Unknown => {
                "Pocket ID (found from the gateway's redirect at run time)".to_string()
            }
            _ => crate::pocketid::oidc::normalise_base(&c.idp),
        };
        println!(
            "  {name}: {} → {idp}{login}",
            crate::redact::configured_url(&c.service)
        );
        if let Some(proxies) = c.http.proxies.describe() {
            println!("    through the proxy for {proxies}");
        }
    }
    // The file was read and validated above; read again as a table, for where each key
    // came from.
    let file = args.config.as_ref().and_then(|path| {
        let text = std::fs::read_to_string(path).ok()?;
        Some((path.clone(), text.parse::<toml::Table>().ok()?))
    });
    let several = targets.len() > 1
        || file
            .as_ref()
            .is_some_and(|(_, t)| t.contains_key("targets"));
    let mut cli = Cli::command();
    cli.build();
    let Some(check) = cli
        .find_subcommand("config")
        .and_then(|c| c.find_subcommand("check"))
    else {
        return Ok(0);
    };
    for (name, _) in &targets {
        println!("\nsettings of {name} (value, then where it came from):");
        let rows = settings(
            check,
            matches,
            file.as_ref(),
            several.then_some(name.as_str()),
        );
        let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
        let value_width = rows
            .iter()
            .map(|r| r.1.chars().count())
            .filter(|n| *n <= 40)
            .max()
            .unwrap_or(0);
        for (key, value, from) in rows {
            println!("  {key:<width$}  {value:<value_width$}  # {from}");
        }
    }
    Ok(0)
}

/// Every setting of `check` (`config check`'s definition) that has a value: (key, value as shown, origin). Header
/// values are secrets: their names only.
fn settings(
    check: &clap::Command,
    matches: Option<&clap::ArgMatches>,
    file: Option<&(std::path::PathBuf, toml::Table)>,
    target: Option<&str>,
) -> Vec<(String, String, String)> {
    let mut rows = Vec::new();
    for arg in check.get_arguments() {
        let id = arg.get_id().as_str();
        if arg.is_hide_set()
            || matches!(
                id,
                "help" | "version" | "config" | "target" | "print_config"
            )
        {
            continue;
        }
        let shown = |values: Vec<String>| -> String {
            if id == "ping_url" {
                "(given; not shown: the ping URL is a capability)".to_string()
            } else if matches!(id, "url" | "service" | "idp" | "cf_api_url") {
                // A query or user info may carry a token: shown as reports show it.
                values
                    .iter()
                    .map(|v| match url::Url::parse(v) {
                        Ok(u) => crate::redact::configured_url(&u),
                        Err(_) => crate::text::server_text(v),
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            } else if id == "proxy" {
                // A proxy URL may carry a password: as every report shows it.
                values
                    .iter()
                    .map(|v| match crate::proxy::Proxy::parse(v, "--proxy") {
                        Ok(p) => p.shown(),
                        Err(_) if v.is_empty() => "\"\" (none)".to_string(),
                        Err(_) => "(not a proxy URL)".to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            } else if id == "header" {
                values
                    .iter()
                    .map(|v| format!("{}: …", v.split(':').next().unwrap_or_default().trim()))
                    .collect::<Vec<_>>()
                    .join(", ")
            } else {
                values.join(", ")
            }
        };
        let given = matches.and_then(|m| {
            let origin = m.origin_of(id)?;
            let values: Vec<String> = m
                .try_get_raw(id)
                .ok()
                .flatten()?
                .map(|v| v.to_string_lossy().into_owned())
                .collect();
            let from = match origin {
                crate::config::Origin::Env => arg
                    .get_env()
                    .map(|e| format!("variable {}", e.to_string_lossy()))
                    .unwrap_or_else(|| "variable".into()),
                _ => match arg.get_long() {
                    Some(long) => format!("flag --{long}"),
                    None => "argument".into(),
                },
            };
            Some((shown(values), from))
        });
        let in_file = || {
            let (path, table) = file?;
            if !FILE_KEYS.contains(&id) {
                return None;
            }
            let own = target.and_then(|t| {
                table
                    .get("targets")?
                    .as_table()?
                    .get(t)?
                    .as_table()?
                    .get(id)
            });
            let (value, place) = match own {
                Some(v) => (
                    v,
                    format!(
                        "{} [targets.{}]",
                        path.display(),
                        target.unwrap_or_default()
                    ),
                ),
                None => (table.get(id)?, path.display().to_string()),
            };
            let values = match value {
                toml::Value::String(s) => vec![s.clone()],
                toml::Value::Array(a) => a
                    .iter()
                    .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                    .collect(),
                other => vec![other.to_string()],
            };
            Some((shown(values), format!("file {place}")))
        };
        let default = || {
            // The proxies in effect (from the environment too) are on the target's line.
            if matches!(id, "proxy" | "noproxy") {
                return None;
            }
            if let Some(v) = arg.get_default_values().first() {
                return Some((v.to_string_lossy().into_owned(), "default".to_string()));
            }
            let help = arg.get_long_help().or(arg.get_help())?.to_string();
            let at = help.find("[default: ")? + "[default: ".len();
            let rest = help.get(at..)?;
            let value = rest.get(..rest.find(']')?)?.to_string();
            Some((value, "default".to_string()))
        };
        if let Some((value, from)) = given.or_else(in_file).or_else(default) {
            rows.push((id.to_string(), value, from));
        }
    }
    rows
}
