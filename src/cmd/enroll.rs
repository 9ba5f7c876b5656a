//! `ssoprobe enroll`: gives the monitoring user a software passkey at Pocket ID.

use super::AppError;
use crate::cli::EnrollArgs;
use crate::config::Origin;
use crate::http::Http;

pub(crate) async fn run(args: &EnrollArgs) -> Result<u8, AppError> {
    let idp = crate::config::parse_idp_url(&args.idp, &Origin::Flag)?;
    // Checked before any secret is read: the API key or login code goes to this URL.
    if idp.scheme() != "https" {
        return Err(AppError::Usage(format!(
            "--idp: {} is not https; enroll sends the admin API key (or the login code) there, and a secret must never travel in clear: give Pocket ID's https URL (its APP_URL), e.g. --idp https://{}",
            idp.origin().ascii_serialization(),
            idp.host_str().unwrap_or("id.example.com")
        )));
    }
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
            crate::pocketid::enroll::Bootstrap::ApiKey { key, user }
        }
        (None, Some(code)) => crate::pocketid::enroll::Bootstrap::LoginCode(
            crate::redact::Secret::configured(crate::pocketid::enroll::login_code(code)),
        ),
        _ => {
            return Err(AppError::Usage(
                "give either --api-key-file with --user, or --login-code".into(),
            ));
        }
    };
    let options = crate::config::connect_options(&args.connect, &idp)?;
    if options.insecure {
        eprintln!("warning: --insecure: certificates are not verified");
    }
    let http = Http::new(&options).map_err(|e| AppError::Io(e.to_string()))?;
    let file = crate::pocketid::enroll::enroll(&http, &idp, how)
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
