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
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use std::path::{Path, PathBuf};
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
    /// Reads and validates a credential file; refuses one that group or others can read.
    pub fn load(path: &Path) -> Result<CredentialFile, PasskeyError> {
        let read_err = |detail: String| PasskeyError::Read {
            path: path.to_path_buf(),
            detail,
        };
        let meta = std::fs::metadata(path).map_err(|e| read_err(e.to_string()))?;
        if !meta.is_file() {
            return Err(read_err("not a regular file".into()));
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(PasskeyError::Permissions {
                    path: path.to_path_buf(),
                    mode,
                });
            }
        }
        if meta.len() > FILE_CAP {
            return Err(PasskeyError::Format {
                path: path.to_path_buf(),
                detail: format!("larger than {} KiB", FILE_CAP / 1024),
            });
        }
        let text = std::fs::read_to_string(path).map_err(|e| read_err(e.to_string()))?;
        let format_err = |detail: String| PasskeyError::Format {
            path: path.to_path_buf(),
            detail,
        };
        // Peek at the version first so that a newer file gets a clear message.
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| format_err(format!("not JSON ({e})")))?;
        match value.get("version").and_then(|v| v.as_u64()) {
            Some(v) if v == u64::from(FILE_VERSION) => {}
            Some(v) => {
                return Err(format_err(format!(
                    "format version {v}; this ssoprobe reads version {FILE_VERSION} (upgrade ssoprobe, or enrol again)"
                )));
            }
            None => return Err(format_err("no format version".into())),
        }
        let file: CredentialFile = serde_json::from_value(value).map_err(|e| {
            // serde's message names the field, never a value.
            format_err(e.to_string())
        })?;
        file.key()
            .map_err(|_| format_err("the private key does not load".into()))?;
        if URL_SAFE_NO_PAD.decode(&file.credential_id).is_err() {
            return Err(format_err("credential_id is not base64url".into()));
        }
        Ok(file)
    }

    /// Writes the file atomically: a temporary file in the same directory, mode 0600,
    /// fsync, rename over the target, fsync of the directory. A crash at any point
    /// leaves either the old file or the new one, never a torn one.
    pub fn save(&self, path: &Path) -> Result<(), PasskeyError> {
        let write_err = |detail: String| PasskeyError::Write {
            path: path.to_path_buf(),
            detail,
        };
        let mut json = serde_json::to_string_pretty(self).map_err(|e| write_err(e.to_string()))?;
        json.push('\n');
        crate::atomic::write(path, json.as_bytes(), 0o600).map_err(|e| write_err(e.to_string()))
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
            pkcs8: Secret::new(URL_SAFE_NO_PAD.encode(pkcs8.as_ref())),
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
        // The next save clears what the crash left.
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
}
