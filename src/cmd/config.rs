//! `ssoprobe config check`: validates the configuration without touching the network.

use super::{AppError, NoOrigins};
use crate::cli::CheckArgs;
use crate::config::{Config, OriginOf};

pub(crate) fn run(args: &CheckArgs, origins: Option<&dyn OriginOf>) -> Result<u8, AppError> {
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
        let idp = match c.idp_source {
            crate::config::IdpSource::Unknown => {
                "Pocket ID (found from Access's redirect at run time)".to_string()
            }
            _ => c.idp.to_string(),
        };
        println!("  {name}: {} → {idp}{login}", c.service);
        if let Some(proxies) = c.http.proxies.describe() {
            println!("    through the proxy for {proxies}");
        }
    }
    Ok(0)
}
