//! The software passkey: a small platform-style authenticator and its credential file.
//!
//! Pocket ID needs what the test authenticators of webauthn-authenticator-rs do not give:
//! a discoverable credential whose assertion carries the user handle, the user
//! verification flag, usernameless login (no `allowCredentials`), and an attestation a
//! strict verifier accepts for good. So ssoprobe has its own: one ES256 key per file,
//! `none` attestation, UP|UV flags, the stored user handle, a counter that only grows.
//! It implements webauthn-authenticator-rs's [`AuthenticatorBackend`], so the client
//! side of the ceremony (origin and RP ID rules) comes from that crate's
//! [`WebauthnAuthenticator`] and our own rules come on top: the origin's host must be
//! the credential's RP ID, over https.
//!
//! "User verification" here is possession of the credential file, which is why the file
//! is a secret: written atomically with mode 0600, refused when others can read it.

use crate::redact::Secret;
use crate::text::io_words;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use url::Url;
use webauthn_authenticator_rs::AuthenticatorBackend;
pub use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::error::WebauthnCError;
use webauthn_rs_proto::{
    AuthenticatorAssertionResponseRaw, AuthenticatorAttestationResponseRaw, AuthenticatorTransport,
    PublicKeyCredential, PublicKeyCredentialCreationOptions, PublicKeyCredentialRequestOptions,
    RegisterPublicKeyCredential,
};

/// The credential file format version this build writes and reads.
pub const FILE_VERSION: u32 = 1;
/// Largest credential file ssoprobe reads.
const FILE_CAP: u64 = 64 * 1024;
/// authenticatorData flags: user present.
const UP: u8 = 0x01;
/// authenticatorData flags: user verified.
const UV: u8 = 0x04;
/// authenticatorData flags: attested credential data included.
const AT: u8 = 0x40;
/// COSE algorithm ES256.
const COSE_ES256: i64 = -7;

/// What went wrong with a passkey or its file.
#[derive(Debug, thiserror::Error)]
pub enum PasskeyError {
    /// The file cannot be read.
    #[error("cannot read the passkey file {path}: {detail}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        detail: String,
    },
    /// Others may read the file.
    #[error(
        "the passkey file {path} is readable by group or others (mode {mode:o}); it holds a private key: run chmod 600 {path}"
    )]
    Permissions {
        /// The file.
        path: PathBuf,
        /// Its mode bits.
        mode: u32,
    },
    /// The path is a symbolic link.
    #[error(
        "the passkey file {path} is a symbolic link; ssoprobe refuses symlinked passkey files (as ssh does for private keys), since saving the counter would replace the link with a regular file: give the real file's path (readlink -f {path})"
    )]
    Symlink {
        /// The link.
        path: PathBuf,
    },
    /// The file belongs to another user.
    #[error(
        "the passkey file {path} belongs to uid {owner}, not to the user running ssoprobe (uid {uid}); it holds a private key: run ssoprobe as its owner, or take it over with chown {uid} {path}"
    )]
    Owner {
        /// The file.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// The effective uid of this process.
        uid: u32,
    },
    /// Others may replace the file.
    #[error(
        "the directory {dir} of the passkey file {path} is writable by group or others (mode {mode:o}); whoever can write there can replace the passkey: run chmod 700 {dir} (or at least chmod go-w {dir}), or keep the file in a directory of its own"
    )]
    Directory {
        /// The file.
        path: PathBuf,
        /// Its directory.
        dir: PathBuf,
        /// The directory's mode bits.
        mode: u32,
    },
    /// Another run holds the file's lock.
    #[error(
        "the passkey file {path} is in use by another ssoprobe run (waited {waited} s for its lock); runs with one passkey take turns: let the other finish, or give each monitor a passkey of its own"
    )]
    Locked {
        /// The file.
        path: PathBuf,
        /// Seconds waited.
        waited: u64,
    },
    /// The content is not a credential file.
    #[error("{path} is not an ssoprobe passkey file: {detail}")]
    Format {
        /// The file.
        path: PathBuf,
        /// Why.
        detail: String,
    },
    /// The file cannot be written.
    #[error("cannot write the passkey file {path}: {detail}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        detail: String,
    },
    /// The ceremony was refused by the authenticator's own rules.
    #[error("the passkey refuses: {0}")]
    Refused(String),
    /// Key or signature failure.
    #[error("passkey cryptography failed: {0}")]
    Crypto(String),
}

/// The credential file: who the passkey belongs to, where it is valid, and its key.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialFile {
    /// [`FILE_VERSION`].
    pub version: u32,
    /// Pocket ID's public URL (the WebAuthn origin).
    pub idp: String,
    /// The relying party id (Pocket ID's host).
    pub rp_id: String,
    /// The Pocket ID user id (UUID); its UTF-8 bytes are the user handle.
    pub user_id: String,
    /// The user's username.
    pub username: String,
    /// The user's e-mail, if any.
    pub email: Option<String>,
    /// The credential id, base64url.
    pub credential_id: String,
    /// Pocket ID's id for the stored passkey (for removal).
    pub pocket_id_passkey_id: Option<String>,
    /// PKCS#8 of the P-256 private key, base64url.
    pub private_key: Secret,
    /// Signature counter; only grows.
    pub counter: u32,
    /// When the passkey was registered (Unix seconds).
    pub created_at: i64,
    /// When it last signed a login (Unix seconds).
    pub last_used_at: Option<i64>,
}

impl fmt::Debug for CredentialFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialFile")
            .field("idp", &self.idp)
            .field("user_id", &self.user_id)
            .field("credential", &self.credential_fingerprint())
            .field("counter", &self.counter)
            .finish_non_exhaustive()
    }
}

impl CredentialFile {
    /// Reads and validates a credential file without locking it (for `passkey show`
    /// and configuration checks). Refuses a symbolic link, a file that is not the
    /// current user's or that group or others can read, and one in a directory that
    /// group or others can write (the rules ssh applies to private keys).
    pub fn load(path: &Path) -> Result<CredentialFile, PasskeyError> {
        let (file, _) = open_checked(path)?;
        let text = read_capped(path, &file)?;
        parse(path, &text)
    }

    /// Reads a credential file like [`CredentialFile::load`] while holding an advisory
    /// exclusive lock on it, and returns the lock: hold it from before signing until the
    /// counter is saved with [`CredentialFile::save`], so that runs in parallel (other
    /// processes included) sign with strictly increasing counters. Waits up to
    /// [`LOCK_WAIT`] for another run to finish; blocking (use `spawn_blocking` in async code).
    pub fn load_locked(path: &Path) -> Result<(CredentialFile, PasskeyLock), PasskeyError> {
        Self::load_locked_within(path, LOCK_WAIT)
    }

    /// [`CredentialFile::load_locked`], waiting at most `wait` for the lock.
    pub fn load_locked_within(
        path: &Path,
        wait: Duration,
    ) -> Result<(CredentialFile, PasskeyLock), PasskeyError> {
        let started = Instant::now();
        loop {
            let (file, meta) = open_checked(path)?;
            match file.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => {
                    if started.elapsed() >= wait {
                        return Err(PasskeyError::Locked {
                            path: path.to_path_buf(),
                            waited: wait.as_secs(),
                        });
                    }
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                }
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(PasskeyError::Read {
                        path: path.to_path_buf(),
                        detail: format!("cannot lock it: {e}"),
                    });
                }
            }
            // A save replaces the file (rename): if it happened while this run waited,
            // the lock is on the old file; start again on the new one.
            if !same_file(&meta, path) {
                continue;
            }
            let text = read_capped(path, &file)?;
            let credential = parse(path, &text)?;
            return Ok((
                credential,
                PasskeyLock {
                    _file: file,
                    path: path.to_path_buf(),
                },
            ));
        }
    }

    /// Writes the file atomically: a temporary file in the same directory, mode 0600,
    /// fsync, rename over the target, fsync of the directory. A crash at any point
    /// leaves either the old file or the new one, never a torn one. Refuses to replace
    /// a symbolic link, and to write into a directory group or others can write.
    pub fn save(&self, path: &Path) -> Result<(), PasskeyError> {
        let write_err = |detail: String| PasskeyError::Write {
            path: path.to_path_buf(),
            detail,
        };
        if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(PasskeyError::Symlink {
                path: path.to_path_buf(),
            });
        }
        check_directory(path)?;
        let mut json = serde_json::to_string_pretty(self).map_err(|e| write_err(e.to_string()))?;
        json.push('\n');
        crate::atomic::write(path, json.as_bytes(), 0o600).map_err(|e| write_err(io_words(&e)))
    }

    fn key(&self) -> Result<EcdsaKeyPair, PasskeyError> {
        let pkcs8 = URL_SAFE_NO_PAD
            .decode(self.private_key.expose())
            .map_err(|_| PasskeyError::Crypto("the private key is not base64url".into()))?;
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &pkcs8)
            .map_err(|_| PasskeyError::Crypto("the private key is not a P-256 PKCS#8 key".into()))
    }

    /// The raw credential id.
    pub fn credential_id_bytes(&self) -> Vec<u8> {
        URL_SAFE_NO_PAD
            .decode(&self.credential_id)
            .unwrap_or_default()
    }

    /// A short, non-secret fingerprint of the credential id: `SHA256:ab12cd34…`.
    pub fn credential_fingerprint(&self) -> String {
        let digest = Sha256::digest(self.credential_id.as_bytes());
        let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        format!("SHA256:{hex}")
    }
}

/// How long [`CredentialFile::load_locked`] waits for another run to release the file.
pub const LOCK_WAIT: Duration = Duration::from_secs(30);

/// An advisory exclusive lock on a passkey file (see [`CredentialFile::load_locked`]);
/// released when dropped. Other runs that load the file locked wait for it; it does not
/// stop a plain [`CredentialFile::load`].
#[must_use = "the passkey file is unlocked as soon as this is dropped"]
pub struct PasskeyLock {
    _file: std::fs::File,
    path: PathBuf,
}

impl PasskeyLock {
    /// The locked file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl fmt::Debug for PasskeyLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasskeyLock")
            .field("path", &self.path)
            .finish()
    }
}

/// The effective user id of this process.
#[cfg(unix)]
fn effective_uid() -> u32 {
    unsafe extern "C" {
        // POSIX: always succeeds, touches no memory.
        safe fn geteuid() -> u32;
    }
    geteuid()
}

/// Opens the credential file after the checks on it and its directory; the open file is
/// the checked one (a file swapped in between is caught, and the open is retried).
fn open_checked(path: &Path) -> Result<(std::fs::File, std::fs::Metadata), PasskeyError> {
    let read_err = |detail: String| PasskeyError::Read {
        path: path.to_path_buf(),
        detail,
    };
    for _ in 0..10 {
        let meta = std::fs::symlink_metadata(path).map_err(|e| read_err(io_words(&e)))?;
        if meta.file_type().is_symlink() {
            return Err(PasskeyError::Symlink {
                path: path.to_path_buf(),
            });
        }
        if !meta.is_file() {
            return Err(read_err("not a regular file".into()));
        }
        check_owner_and_mode(path, &meta)?;
        check_directory(path)?;
        if meta.len() > FILE_CAP {
            return Err(PasskeyError::Format {
                path: path.to_path_buf(),
                detail: format!("larger than {} KiB", FILE_CAP / 1024),
            });
        }
        let file = std::fs::File::open(path).map_err(|e| read_err(io_words(&e)))?;
        let opened = file.metadata().map_err(|e| read_err(io_words(&e)))?;
        if same_inode(&meta, &opened) {
            return Ok((file, opened));
        }
        // Replaced (a save renamed a new file over it) between the checks and the open.
    }
    Err(read_err(
        "it keeps being replaced while ssoprobe opens it".into(),
    ))
}

#[cfg(unix)]
fn same_inode(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.dev() == b.dev() && a.ino() == b.ino()
}

#[cfg(not(unix))]
fn same_inode(_: &std::fs::Metadata, _: &std::fs::Metadata) -> bool {
    true
}

/// Whether `path` still names the file `opened` was read from.
fn same_file(opened: &std::fs::Metadata, path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|now| same_inode(opened, &now))
}

/// Mode 0600 (or stricter) and owned by the user running ssoprobe.
fn check_owner_and_mode(path: &Path, meta: &std::fs::Metadata) -> Result<(), PasskeyError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(PasskeyError::Permissions {
                path: path.to_path_buf(),
                mode,
            });
        }
        let uid = effective_uid();
        if meta.uid() != uid {
            return Err(PasskeyError::Owner {
                path: path.to_path_buf(),
                owner: meta.uid(),
                uid,
            });
        }
    }
    #[cfg(not(unix))]
    let _ = (path, meta);
    Ok(())
}

/// The file's directory must not be writable by group or others (who could replace the
/// file), as ssh requires of the directories of its keys. One exception: a directory
/// with the sticky bit, like /tmp, where others can neither remove nor rename a file
/// that is not theirs (and the file itself must be the user's, see
/// [`check_owner_and_mode`]).
fn check_directory(path: &Path) -> Result<(), PasskeyError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        // A missing directory is the write's or the read's own error.
        if let Ok(meta) = std::fs::metadata(&dir) {
            let mode = meta.permissions().mode() & 0o7777;
            let sticky = mode & 0o1000 != 0;
            if mode & 0o022 != 0 && !sticky {
                return Err(PasskeyError::Directory {
                    path: path.to_path_buf(),
                    dir,
                    mode,
                });
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Reads the open file, at most [`FILE_CAP`].
fn read_capped(path: &Path, file: &std::fs::File) -> Result<String, PasskeyError> {
    let mut bytes = Vec::new();
    file.take(FILE_CAP + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| PasskeyError::Read {
            path: path.to_path_buf(),
            detail: io_words(&e),
        })?;
    let format_err = |detail: String| PasskeyError::Format {
        path: path.to_path_buf(),
        detail,
    };
    if bytes.len() as u64 > FILE_CAP {
        return Err(format_err(format!("larger than {} KiB", FILE_CAP / 1024)));
    }
    String::from_utf8(bytes).map_err(|_| format_err("not UTF-8 text".into()))
}

/// What a field of the file holds.
#[derive(Clone, Copy)]
enum Kind {
    Text,
    Count,
    Time,
}

/// The fields of format version 1: name, kind, required.
const FIELDS: &[(&str, Kind, bool)] = &[
    ("version", Kind::Count, true),
    ("idp", Kind::Text, true),
    ("rp_id", Kind::Text, true),
    ("user_id", Kind::Text, true),
    ("username", Kind::Text, true),
    ("email", Kind::Text, false),
    ("credential_id", Kind::Text, true),
    ("pocket_id_passkey_id", Kind::Text, false),
    ("private_key", Kind::Text, true),
    ("counter", Kind::Count, true),
    ("created_at", Kind::Time, true),
    ("last_used_at", Kind::Time, false),
];

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "true or false",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "text",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "an object",
    }
}

/// Checks the shape of the file field by field. The messages name the field and what
/// is wrong with it, never its value: values may be secrets (the private key).
fn check_fields(obj: &serde_json::Map<String, serde_json::Value>) -> Result<(), String> {
    for name in obj.keys() {
        if !FIELDS.iter().any(|(f, _, _)| f == name) {
            // A name like ssoprobe's own is shown; anything else might be a pasted value.
            let shown =
                if name.len() <= 32 && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
                    format!("`{name}`")
                } else {
                    "(a name not shown)".to_string()
                };
            return Err(format!(
                "unknown field {shown}; a version {FILE_VERSION} file has only {}",
                FIELDS
                    .iter()
                    .map(|(f, _, _)| *f)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    for (name, kind, required) in FIELDS {
        let value = match obj.get(*name) {
            None | Some(serde_json::Value::Null) if !required => continue,
            None => return Err(format!("field `{name}` is missing")),
            Some(v) => v,
        };
        let (fits, wanted) = match kind {
            Kind::Text => (value.is_string(), "text"),
            Kind::Count => (
                value.as_u64().is_some_and(|n| n <= u64::from(u32::MAX)),
                "a whole number from 0 to 4294967295",
            ),
            Kind::Time => (value.as_i64().is_some(), "a Unix time in whole seconds"),
        };
        if !fits {
            let got = match value {
                serde_json::Value::Number(_) => "a number out of range or with a fraction",
                other => json_kind(other),
            };
            let optional = if *required { "" } else { " (or null)" };
            return Err(format!(
                "field `{name}` must be {wanted}{optional}, not {got}"
            ));
        }
    }
    Ok(())
}

/// Whether `id` is a UUID in Pocket ID's form (lower-case, hyphenated).
pub fn is_uuid(id: &str) -> bool {
    uuid::Uuid::try_parse(id).is_ok_and(|u| u.hyphenated().to_string() == id)
}

/// Parses and validates the text of a credential file.
fn parse(path: &Path, text: &str) -> Result<CredentialFile, PasskeyError> {
    let format_err = |detail: String| PasskeyError::Format {
        path: path.to_path_buf(),
        detail,
    };
    // serde_json's syntax errors name a position, its type errors quote the value: only
    // the position is used, and the types are checked here.
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        format_err(format!(
            "not JSON (syntax error at line {} column {})",
            e.line(),
            e.column()
        ))
    })?;
    let Some(obj) = value.as_object() else {
        return Err(format_err(format!(
            "not a JSON object but {}",
            json_kind(&value)
        )));
    };
    // Peek at the version first so that a newer file gets a clear message.
    match obj.get("version").and_then(|v| v.as_u64()) {
        Some(v) if v == u64::from(FILE_VERSION) => {}
        Some(v) => {
            return Err(format_err(format!(
                "format version {v}; this ssoprobe reads version {FILE_VERSION} (upgrade ssoprobe, or enrol again)"
            )));
        }
        None => return Err(format_err("no format version".into())),
    }
    check_fields(obj).map_err(format_err)?;
    let file: CredentialFile = serde_json::from_value(value)
        .map_err(|_| format_err("its fields do not have the types of the format".into()))?;
    file.key().map_err(|_| {
        format_err("field `private_key` does not hold a P-256 PKCS#8 key in base64url".into())
    })?;
    if URL_SAFE_NO_PAD.decode(&file.credential_id).is_err() {
        return Err(format_err("field `credential_id` is not base64url".into()));
    }
    if !is_uuid(&file.user_id) {
        return Err(format_err(
            "field `user_id` is not a Pocket ID user id (a lower-case UUID); enrol again".into(),
        ));
    }
    if file
        .pocket_id_passkey_id
        .as_deref()
        .is_some_and(|id| !is_uuid(id))
    {
        return Err(format_err(
            "field `pocket_id_passkey_id` is not a Pocket ID passkey id (a lower-case UUID); enrol again".into(),
        ));
    }
    Ok(file)
}

/// An authenticator holding one credential, for assertions.
pub struct SoftPasskey {
    file: CredentialFile,
    key: EcdsaKeyPair,
}

impl SoftPasskey {
    /// Loads the authenticator from its credential file content.
    pub fn new(file: CredentialFile) -> Result<SoftPasskey, PasskeyError> {
        let key = file.key()?;
        Ok(SoftPasskey { file, key })
    }

    /// The credential file, with the counter and last use of the latest assertion.
    pub fn file(&self) -> &CredentialFile {
        &self.file
    }

    /// Signs Pocket ID's `login/start` options for `origin` (Pocket ID's public URL).
    /// The checks of the WebAuthn client (origin vs RP ID, https) run first.
    pub fn assert(
        &mut self,
        origin: &Url,
        options: PublicKeyCredentialRequestOptions,
    ) -> Result<PublicKeyCredential, PasskeyError> {
        let request = webauthn_rs_proto::RequestChallengeResponse {
            public_key: options,
            mediation: None,
        };
        let rp_id = request.public_key.rp_id.clone();
        self.do_authentication(origin.clone(), request)
            .map_err(|e| refusal(e, origin, &rp_id))
    }
}

fn refusal(error: WebauthnCError, origin: &Url, rp_id: &str) -> PasskeyError {
    match error {
        WebauthnCError::Security => PasskeyError::Refused(format!(
            "the relying party id '{rp_id}' does not belong to the origin {origin} (or the origin is not https)"
        )),
        WebauthnCError::NotSupported => {
            PasskeyError::Refused("the request asks for something this passkey cannot do".into())
        }
        // The authenticator library's other errors name its internals, not the cause.
        _ => PasskeyError::Refused(
            "the request for an assertion is not one this passkey can answer".into(),
        ),
    }
}

/// The rules of the authenticator itself, whatever the client checked: https, and the
/// origin's host is the RP ID the credential (or registration) is bound to.
fn check_origin(origin: &Url, rp_id: &str) -> Result<(), WebauthnCError> {
    let host = origin.host_str().unwrap_or_default();
    if origin.scheme() != "https" || !host.eq_ignore_ascii_case(rp_id) {
        return Err(WebauthnCError::Security);
    }
    Ok(())
}

/// `{"type":…,"challenge":…,"origin":…,"crossOrigin":false}` as a browser writes it.
fn client_data(kind: &str, challenge: &[u8], origin: &Url) -> Vec<u8> {
    let origin = origin.origin().ascii_serialization();
    serde_json::json!({
        "type": kind,
        "challenge": URL_SAFE_NO_PAD.encode(challenge),
        "origin": origin,
        "crossOrigin": false,
    })
    .to_string()
    .into_bytes()
}

impl AuthenticatorBackend for SoftPasskey {
    fn perform_register(
        &mut self,
        _origin: Url,
        _options: PublicKeyCredentialCreationOptions,
        _timeout_ms: u32,
    ) -> Result<RegisterPublicKeyCredential, WebauthnCError> {
        // One file, one credential: registration makes a new file (see `Registrar`).
        Err(WebauthnCError::NotSupported)
    }

    fn perform_auth(
        &mut self,
        origin: Url,
        options: PublicKeyCredentialRequestOptions,
        _timeout_ms: u32,
    ) -> Result<PublicKeyCredential, WebauthnCError> {
        check_origin(&origin, &self.file.rp_id)?;
        if !options.rp_id.eq_ignore_ascii_case(&self.file.rp_id) {
            return Err(WebauthnCError::Security);
        }
        let credential_id = self.file.credential_id_bytes();
        if !options.allow_credentials.is_empty()
            && !options
                .allow_credentials
                .iter()
                .any(|c| c.id == credential_id)
        {
            return Err(WebauthnCError::NoSelectedToken);
        }
        let counter = self
            .file
            .counter
            .checked_add(1)
            .ok_or(WebauthnCError::Internal)?;
        let mut auth_data = Sha256::digest(self.file.rp_id.as_bytes()).to_vec();
        auth_data.push(UP | UV);
        auth_data.extend_from_slice(&counter.to_be_bytes());
        let cdj = client_data("webauthn.get", &options.challenge, &origin);
        let mut signed = auth_data.clone();
        signed.extend_from_slice(&Sha256::digest(&cdj));
        let signature = self
            .key
            .sign(&SystemRandom::new(), &signed)
            .map_err(|_| WebauthnCError::CryptographyEcdsaSignature)?;
        self.file.counter = counter;
        self.file.last_used_at = Some(crate::timefmt::unix_now());
        Ok(PublicKeyCredential {
            id: URL_SAFE_NO_PAD.encode(&credential_id),
            raw_id: credential_id,
            response: AuthenticatorAssertionResponseRaw {
                authenticator_data: auth_data,
                client_data_json: cdj,
                signature: signature.as_ref().to_vec(),
                user_handle: Some(self.file.user_id.as_bytes().to_vec()),
            },
            extensions: Default::default(),
            type_: "public-key".to_string(),
        })
    }
}

/// An authenticator that makes one new credential, for enrolment.
#[derive(Default)]
pub struct Registrar {
    made: Option<NewCredential>,
}

/// A credential made by [`Registrar`], before the server has accepted it.
pub struct NewCredential {
    /// The relying party id.
    pub rp_id: String,
    /// The user handle (Pocket ID: the user id as UTF-8).
    pub user_handle: Vec<u8>,
    /// The credential id.
    pub credential_id: Vec<u8>,
    /// PKCS#8 of the key.
    pub pkcs8: Secret,
}

impl Registrar {
    /// Runs the client and authenticator side of a registration for `origin`.
    pub fn register(
        &mut self,
        origin: &Url,
        options: PublicKeyCredentialCreationOptions,
    ) -> Result<(RegisterPublicKeyCredential, NewCredential), PasskeyError> {
        let rp_id = options.rp.id.clone();
        let request = webauthn_rs_proto::CreationChallengeResponse {
            public_key: options,
        };
        let response = self
            .do_registration(origin.clone(), request)
            .map_err(|e| refusal(e, origin, &rp_id))?;
        let made = self
            .made
            .take()
            .ok_or_else(|| PasskeyError::Crypto("no credential was made".into()))?;
        Ok((response, made))
    }
}

impl AuthenticatorBackend for Registrar {
    fn perform_register(
        &mut self,
        origin: Url,
        options: PublicKeyCredentialCreationOptions,
        _timeout_ms: u32,
    ) -> Result<RegisterPublicKeyCredential, WebauthnCError> {
        check_origin(&origin, &options.rp.id)?;
        if !options
            .pub_key_cred_params
            .iter()
            .any(|p| p.alg == COSE_ES256 && p.type_ == "public-key")
        {
            return Err(WebauthnCError::NotSupported);
        }
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
            .map_err(|_| WebauthnCError::Internal)?;
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref())
            .map_err(|_| WebauthnCError::Internal)?;
        let mut credential_id = vec![0u8; 32];
        aws_lc_rs::rand::SecureRandom::fill(&rng, &mut credential_id)
            .map_err(|_| WebauthnCError::Internal)?;
        let point = key.public_key().as_ref();
        if point.len() != 65 || point[0] != 0x04 {
            return Err(WebauthnCError::Internal);
        }
        let mut cose = Cbor::default();
        cose.map(5);
        cose.int(1).int(2); // kty: EC2
        cose.int(3).int(COSE_ES256); // alg
        cose.int(-1).int(1); // crv: P-256
        cose.int(-2).bytes(&point[1..33]);
        cose.int(-3).bytes(&point[33..65]);

        let mut auth_data = Sha256::digest(options.rp.id.as_bytes()).to_vec();
        auth_data.push(UP | UV | AT);
        auth_data.extend_from_slice(&0u32.to_be_bytes());
        auth_data.extend_from_slice(&[0u8; 16]); // AAGUID: none claimed
        auth_data.extend_from_slice(&(credential_id.len() as u16).to_be_bytes());
        auth_data.extend_from_slice(&credential_id);
        auth_data.extend_from_slice(&cose.out);

        let mut attestation = Cbor::default();
        attestation.map(3);
        attestation.text("fmt").text("none");
        attestation.text("attStmt").map(0);
        attestation.text("authData").bytes(&auth_data);

        let cdj = client_data("webauthn.create", &options.challenge, &origin);
        self.made = Some(NewCredential {
            rp_id: options.rp.id.clone(),
            user_handle: options.user.id.clone(),
            credential_id: credential_id.clone(),
            pkcs8: Secret::configured(URL_SAFE_NO_PAD.encode(pkcs8.as_ref())),
        });
        Ok(RegisterPublicKeyCredential {
            id: URL_SAFE_NO_PAD.encode(&credential_id),
            raw_id: credential_id,
            response: AuthenticatorAttestationResponseRaw {
                attestation_object: attestation.out,
                client_data_json: cdj,
                transports: Some(vec![AuthenticatorTransport::Internal]),
            },
            type_: "public-key".to_string(),
            extensions: Default::default(),
        })
    }

    fn perform_auth(
        &mut self,
        _origin: Url,
        _options: PublicKeyCredentialRequestOptions,
        _timeout_ms: u32,
    ) -> Result<PublicKeyCredential, WebauthnCError> {
        Err(WebauthnCError::NotSupported)
    }
}

/// The few CBOR items a `none` attestation and a COSE key need.
#[derive(Default)]
struct Cbor {
    out: Vec<u8>,
}

impl Cbor {
    fn head(&mut self, major: u8, n: u64) -> &mut Self {
        let m = major << 5;
        match n {
            0..=23 => self.out.push(m | n as u8),
            24..=0xff => self.out.extend_from_slice(&[m | 24, n as u8]),
            0x100..=0xffff => {
                self.out.push(m | 25);
                self.out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            _ => {
                self.out.push(m | 26);
                self.out.extend_from_slice(&(n as u32).to_be_bytes());
            }
        }
        self
    }

    fn int(&mut self, v: i64) -> &mut Self {
        if v >= 0 {
            self.head(0, v as u64)
        } else {
            self.head(1, (-1 - v) as u64)
        }
    }

    fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.head(2, b.len() as u64);
        self.out.extend_from_slice(b);
        self
    }

    fn text(&mut self, t: &str) -> &mut Self {
        self.head(3, t.len() as u64);
        self.out.extend_from_slice(t.as_bytes());
        self
    }

    fn map(&mut self, entries: u64) -> &mut Self {
        self.head(5, entries)
    }
}

/// The JSON Pocket ID's `login/finish` takes (SimpleWebAuthn's shape).
pub fn assertion_json(credential: &PublicKeyCredential) -> serde_json::Value {
    let b = |v: &[u8]| URL_SAFE_NO_PAD.encode(v);
    serde_json::json!({
        "id": credential.id,
        "rawId": b(&credential.raw_id),
        "type": "public-key",
        "response": {
            "clientDataJSON": b(&credential.response.client_data_json),
            "authenticatorData": b(&credential.response.authenticator_data),
            "signature": b(&credential.response.signature),
            "userHandle": credential.response.user_handle.as_ref().map(|h| b(h)),
        },
        "clientExtensionResults": {},
        "authenticatorAttachment": "platform",
    })
}

/// The JSON Pocket ID's `register/finish` takes.
pub fn registration_json(credential: &RegisterPublicKeyCredential) -> serde_json::Value {
    let b = |v: &[u8]| URL_SAFE_NO_PAD.encode(v);
    serde_json::json!({
        "id": credential.id,
        "rawId": b(&credential.raw_id),
        "type": "public-key",
        "response": {
            "clientDataJSON": b(&credential.response.client_data_json),
            "attestationObject": b(&credential.response.attestation_object),
            "transports": ["internal"],
        },
        "clientExtensionResults": {"credProps": {"rk": true}},
        "authenticatorAttachment": "platform",
    })
}

/// Parses Pocket ID's bare request options, which omit members webauthn-rs-proto
/// requires (`allowCredentials` for discoverable login).
pub fn parse_request_options(
    mut value: serde_json::Value,
) -> Result<PublicKeyCredentialRequestOptions, String> {
    if let Some(obj) = value.as_object_mut() {
        obj.entry("allowCredentials")
            .or_insert(serde_json::json!([]));
        obj.entry("userVerification")
            .or_insert(serde_json::json!("preferred"));
    }
    serde_json::from_value(value).map_err(|e| e.to_string())
}

/// Parses Pocket ID's bare creation options.
pub fn parse_creation_options(
    mut value: serde_json::Value,
) -> Result<PublicKeyCredentialCreationOptions, String> {
    if let Some(sel) = value
        .get_mut("authenticatorSelection")
        .and_then(|s| s.as_object_mut())
    {
        sel.entry("requireResidentKey")
            .or_insert(serde_json::json!(false));
        sel.entry("userVerification")
            .or_insert(serde_json::json!("preferred"));
    }
    serde_json::from_value(value).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Url {
        Url::parse("https://id.example.com").unwrap()
    }

    fn creation() -> PublicKeyCredentialCreationOptions {
        parse_creation_options(serde_json::json!({
            "rp": {"name": "Pocket ID", "id": "id.example.com"},
            "user": {"name": "probe", "displayName": "Probe", "id": URL_SAFE_NO_PAD.encode("44f4b412-fe14-4ead-8ac6-2b91ae42330a")},
            "challenge": URL_SAFE_NO_PAD.encode([7u8; 32]),
            "pubKeyCredParams": [{"type": "public-key", "alg": -7}, {"type": "public-key", "alg": -257}],
            "timeout": 60000,
            "authenticatorSelection": {"requireResidentKey": true, "residentKey": "required", "userVerification": "required"},
            "extensions": {"credProps": true}
        }))
        .unwrap()
    }

    fn enrolled() -> CredentialFile {
        let (_, made) = Registrar::default()
            .register(&origin(), creation())
            .unwrap();
        CredentialFile {
            version: FILE_VERSION,
            idp: "https://id.example.com".into(),
            rp_id: made.rp_id,
            user_id: String::from_utf8(made.user_handle).unwrap(),
            username: "probe".into(),
            email: Some("probe@example.com".into()),
            credential_id: URL_SAFE_NO_PAD.encode(&made.credential_id),
            pocket_id_passkey_id: None,
            private_key: made.pkcs8,
            counter: 0,
            created_at: 1,
            last_used_at: None,
        }
    }

    fn login_options(rp_id: &str) -> PublicKeyCredentialRequestOptions {
        parse_request_options(serde_json::json!({
            "challenge": URL_SAFE_NO_PAD.encode([9u8; 32]),
            "timeout": 60000,
            "rpId": rp_id,
            "userVerification": "required"
        }))
        .unwrap()
    }

    #[test]
    fn registration_makes_a_none_attestation_with_uv_and_at() {
        let (reg, made) = Registrar::default()
            .register(&origin(), creation())
            .unwrap();
        let att = reg.response.attestation_object.clone();
        // map(3) "fmt" "none"
        assert_eq!(att[0], 0xa3);
        assert!(att.windows(4).any(|w| w == b"none"));
        let cdj: serde_json::Value =
            serde_json::from_slice(&reg.response.client_data_json).unwrap();
        assert_eq!(cdj["type"], "webauthn.create");
        assert_eq!(cdj["origin"], "https://id.example.com");
        assert_eq!(made.user_handle, b"44f4b412-fe14-4ead-8ac6-2b91ae42330a");
    }

    #[test]
    fn assertion_carries_user_handle_uv_and_a_growing_counter() {
        let mut pk = SoftPasskey::new(enrolled()).unwrap();
        let a = pk
            .assert(&origin(), login_options("id.example.com"))
            .unwrap();
        let ad = &a.response.authenticator_data;
        assert_eq!(ad.len(), 37);
        assert_eq!(ad[32], UP | UV);
        assert_eq!(u32::from_be_bytes([ad[33], ad[34], ad[35], ad[36]]), 1);
        assert_eq!(
            a.response.user_handle.clone(),
            Some(b"44f4b412-fe14-4ead-8ac6-2b91ae42330a".to_vec())
        );
        let b = pk
            .assert(&origin(), login_options("id.example.com"))
            .unwrap();
        assert_eq!(b.response.authenticator_data[36], 2);
        assert_eq!(pk.file().counter, 2);
        let json = assertion_json(&b);
        assert!(json["response"]["userHandle"].is_string());
    }

    #[test]
    fn refuses_a_foreign_rp_id_or_plain_http() {
        let mut pk = SoftPasskey::new(enrolled()).unwrap();
        let e = pk
            .assert(&origin(), login_options("pocket-id.internal"))
            .unwrap_err();
        assert!(e.to_string().contains("pocket-id.internal"), "{e}");
        let http = Url::parse("http://id.example.com").unwrap();
        assert!(pk.assert(&http, login_options("id.example.com")).is_err());
        let other = Url::parse("https://evil.example.net").unwrap();
        assert!(pk.assert(&other, login_options("id.example.com")).is_err());
    }

    fn temp_dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("ssoprobe-pk-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&d).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).unwrap();
        }
        d
    }

    #[test]
    fn file_round_trip_is_0600_and_never_prints_the_key() {
        let dir = temp_dir();
        let path = dir.join("probe.passkey");
        let file = enrolled();
        file.save(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let back = CredentialFile::load(&path).unwrap();
        assert_eq!(back.credential_id, file.credential_id);
        let shown = format!("{back:?}");
        assert!(!shown.contains(file.private_key.expose()), "{shown}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn refuses_a_file_others_can_read() {
        use std::os::unix::fs::PermissionsExt;
        let dir = temp_dir();
        let path = dir.join("probe.passkey");
        enrolled().save(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = CredentialFile::load(&path).unwrap_err().to_string();
        assert!(e.contains("chmod 600"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_crash_before_the_rename_leaves_the_old_file_intact() {
        let dir = temp_dir();
        let path = dir.join("probe.passkey");
        let old = enrolled();
        old.save(&path).unwrap();
        let before = std::fs::read(&path).unwrap();
        // A crash mid-write leaves a partial temporary file behind; the target is untouched.
        let torn = dir.join(".probe.passkey.tmp-1-dead");
        std::fs::write(&torn, &before[..before.len() / 2]).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), before);
        assert!(CredentialFile::load(&path).is_ok());
        // The next save clears what the crash left, once it is old (and locked by no one).
        std::fs::File::options()
            .write(true)
            .open(&torn)
            .unwrap()
            .set_modified(std::time::SystemTime::now() - crate::atomic::STALE_AFTER * 2)
            .unwrap();
        old.save(&path).unwrap();
        assert!(!torn.exists());
        // A failed save (the directory is gone) reports an error and writes nothing.
        let gone = dir.join("missing").join("probe.passkey");
        assert!(old.save(&gone).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_files_are_named() {
        let dir = temp_dir();
        let path = dir.join("bad.passkey");
        for (content, expected) in [
            ("not json", "not JSON"),
            ("{\"version\": 9}", "format version 9"),
            ("{}", "no format version"),
            (
                "{\"version\": 1, \"idp\": 3}",
                "not an ssoprobe passkey file",
            ),
        ] {
            std::fs::write(&path, content).unwrap();
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
            }
            let e = CredentialFile::load(&path).unwrap_err().to_string();
            assert!(e.contains(expected), "{content}: {e}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn write_0600(path: &Path, content: &str) {
        std::fs::write(path, content).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
    }

    #[test]
    fn parse_errors_name_the_field_and_never_quote_a_value() {
        let dir = temp_dir();
        let path = dir.join("bad.passkey");
        let mut good: serde_json::Value = serde_json::to_value(enrolled()).unwrap();
        let secret = "S3CRET-VALUE-do-not-print";
        for (field, value, expected) in [
            (
                "counter",
                serde_json::json!(secret),
                "field `counter` must be a whole number",
            ),
            (
                "private_key",
                serde_json::json!(12345),
                "field `private_key` must be text",
            ),
            (
                "private_key",
                serde_json::json!(secret),
                "field `private_key` does not hold",
            ),
            (
                "user_id",
                serde_json::json!(secret),
                "field `user_id` is not a Pocket ID user id",
            ),
            (
                "user_id",
                serde_json::json!("../../api/users"),
                "field `user_id`",
            ),
            (
                "pocket_id_passkey_id",
                serde_json::json!(secret),
                "field `pocket_id_passkey_id`",
            ),
            (
                "email",
                serde_json::json!([secret]),
                "field `email` must be text (or null), not a list",
            ),
            ("created_at", serde_json::json!(1.5), "field `created_at`"),
        ] {
            let saved = good[field].clone();
            good[field] = value;
            write_0600(&path, &good.to_string());
            let e = CredentialFile::load(&path).unwrap_err().to_string();
            assert!(e.contains(expected), "{field}: {e}");
            assert!(
                !e.contains("S3CRET") && !e.contains("12345"),
                "{field}: {e}"
            );
            good[field] = saved;
        }
        let mut extra = good.clone();
        extra[secret] = serde_json::json!(1);
        write_0600(&path, &extra.to_string());
        let e = CredentialFile::load(&path).unwrap_err().to_string();
        assert!(e.contains("unknown field (a name not shown)"), "{e}");
        assert!(!e.contains("S3CRET"), "{e}");
        let mut missing = good.clone();
        missing.as_object_mut().unwrap().remove("rp_id");
        write_0600(&path, &missing.to_string());
        let e = CredentialFile::load(&path).unwrap_err().to_string();
        assert!(e.contains("field `rp_id` is missing"), "{e}");
        // A syntax error inside a value names the position only.
        write_0600(
            &path,
            &format!("{{\"version\": 1, \"private_key\": \"{secret}\\q\"}}"),
        );
        let e = CredentialFile::load(&path).unwrap_err().to_string();
        assert!(e.contains("not JSON (syntax error at line 1"), "{e}");
        assert!(!e.contains("S3CRET"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_are_refused_and_never_replaced() {
        let dir = temp_dir();
        let real = dir.join("real.passkey");
        let link = dir.join("link.passkey");
        let file = enrolled();
        file.save(&real).unwrap();
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let e = CredentialFile::load(&link).unwrap_err().to_string();
        assert!(
            e.contains("symbolic link") && e.contains("real file"),
            "{e}"
        );
        assert!(CredentialFile::load_locked(&link).is_err());
        let e = file.save(&link).unwrap_err().to_string();
        assert!(e.contains("symbolic link"), "{e}");
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_directory_others_can_write_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = temp_dir();
        let path = dir.join("probe.passkey");
        enrolled().save(&path).unwrap();
        for mode in [0o770, 0o757, 0o777] {
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode)).unwrap();
            let e = CredentialFile::load(&path).unwrap_err().to_string();
            assert!(e.contains(&format!("chmod 700 {}", dir.display())), "{e}");
            assert!(enrolled().save(&path).is_err());
        }
        // Like /tmp: sticky, others cannot remove or rename the user's file.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
        assert!(CredentialFile::load(&path).is_ok());
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o750)).unwrap();
        assert!(CredentialFile::load(&path).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_file_of_another_user_is_refused() {
        let dir = temp_dir();
        let path = dir.join("probe.passkey");
        enrolled().save(&path).unwrap();
        // Only root can give a file away; elsewhere the owner is always us.
        if effective_uid() == 0 {
            std::os::unix::fs::chown(&path, Some(65534), None).unwrap();
            let e = CredentialFile::load(&path).unwrap_err().to_string();
            assert!(
                e.contains("belongs to uid 65534") && e.contains("chown 0"),
                "{e}"
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn locked_runs_sign_with_strictly_increasing_counters() {
        let dir = temp_dir();
        let path = dir.join("probe.passkey");
        enrolled().save(&path).unwrap();
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let path = path.clone();
                std::thread::spawn(move || {
                    let mut signed = Vec::new();
                    for _ in 0..5 {
                        let (file, lock) = CredentialFile::load_locked(&path).unwrap();
                        let mut pk = SoftPasskey::new(file).unwrap();
                        let a = pk
                            .assert(&origin(), login_options("id.example.com"))
                            .unwrap();
                        let ad = &a.response.authenticator_data;
                        signed.push(u32::from_be_bytes([ad[33], ad[34], ad[35], ad[36]]));
                        pk.file().save(lock.path()).unwrap();
                        drop(lock);
                    }
                    signed
                })
            })
            .collect();
        let mut all: Vec<u32> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        all.sort_unstable();
        assert_eq!(
            all,
            (1..=40).collect::<Vec<_>>(),
            "a counter was signed twice"
        );
        assert_eq!(CredentialFile::load(&path).unwrap().counter, 40);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_held_lock_makes_others_wait_then_time_out() {
        let dir = temp_dir();
        let path = dir.join("probe.passkey");
        enrolled().save(&path).unwrap();
        let (_, held) = CredentialFile::load_locked(&path).unwrap();
        let e = CredentialFile::load_locked_within(&path, Duration::from_millis(100))
            .unwrap_err()
            .to_string();
        assert!(e.contains("in use by another ssoprobe run"), "{e}");
        // A plain load (passkey show) is not blocked.
        assert!(CredentialFile::load(&path).is_ok());
        drop(held);
        assert!(CredentialFile::load_locked_within(&path, Duration::from_millis(100)).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
