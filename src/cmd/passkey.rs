//! `ssoprobe passkey show|remove`: a credential file's facts, or its deletion at Pocket ID.

use super::AppError;
use crate::cli::PasskeyCommand;
use crate::config::Origin;
use crate::http::Http;
use crate::pocketid::enroll::Removal;

pub(crate) async fn run(command: PasskeyCommand) -> Result<u8, AppError> {
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
            // Locked until the file is gone, so that a check running now cannot write
            // the file back after its removal.
            let (cred, _lock) = crate::passkey::CredentialFile::load_locked(&file)
                .map_err(|e| AppError::Io(e.to_string()))?;
            // Checked before the key is read: the key goes to the file's IdP.
            let idp = url::Url::parse(&cred.idp)
                .ok()
                .filter(|u| u.scheme() == "https");
            let Some(idp) = idp else {
                return Err(AppError::Usage(format!(
                    "the passkey file {} names the IdP {}, which is not https; passkey remove sends the admin API key there, and a secret must never travel in clear: set the file's idp to Pocket ID's https URL (its APP_URL, e.g. https://id.example.com), or delete the passkey in Pocket ID → Users → (user) → Passkeys and remove the file yourself",
                    file.display(),
                    crate::redact::terminal_safe(&cred.idp)
                )));
            };
            let key =
                crate::config::read_secret_file("api_key_file", &api_key_file, &Origin::Flag)?;
            let options = crate::config::connect_options(&connect, &idp)?;
            let http = Http::new(&options).map_err(|e| AppError::Io(e.to_string()))?;
            let removal = crate::pocketid::enroll::remove(&http, &cred, key)
                .await
                .map_err(|e| AppError::Failed(e.to_string()))?;
            let done = match removal {
                Removal::Deleted => "deleted at Pocket ID",
                Removal::AlreadyGone => "already deleted at Pocket ID",
            };
            std::fs::remove_file(&file).map_err(|e| {
                AppError::Io(format!(
                    "the passkey was {done}, but {} could not be removed: {}",
                    file.display(),
                    crate::text::io_words(&e)
                ))
            })?;
            match removal {
                Removal::Deleted => println!(
                    "deleted passkey {} of {} at {} and removed {}",
                    cred.credential_fingerprint(),
                    cred.email.as_deref().unwrap_or(&cred.username),
                    cred.idp,
                    file.display()
                ),
                Removal::AlreadyGone => println!(
                    "passkey {} of {} was already deleted at Pocket ID ({}); removed {}",
                    cred.credential_fingerprint(),
                    cred.email.as_deref().unwrap_or(&cred.username),
                    cred.idp,
                    file.display()
                ),
            }
            Ok(0)
        }
    }
}
