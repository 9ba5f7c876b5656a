//! `ssoprobe passkey show|remove`: a credential file's facts, or its deletion at Pocket ID.

use super::AppError;
use crate::cli::PasskeyCommand;
use crate::config::Origin;
use crate::http::Http;

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
            let cred = crate::passkey::CredentialFile::load(&file)
                .map_err(|e| AppError::Io(e.to_string()))?;
            let key =
                crate::config::read_secret_file("api_key_file", &api_key_file, &Origin::Flag)?;
            let options = crate::config::connect_options(&connect)?;
            let http = Http::new(&options).map_err(|e| AppError::Io(e.to_string()))?;
            crate::pocketid::enroll::remove(&http, &cred, key)
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
