//! A tiny software authenticator for the lab's own tests: one discoverable ES256
//! credential, `none` attestation, UP|UV, the user handle it was given, a counter
//! that grows. Written from the WebAuthn spec, independent of `src/passkey.rs`.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

/// User present.
pub(super) const UP: u8 = 0x01;
/// User verified.
pub(super) const UV: u8 = 0x04;
/// Attested credential data included.
const AT: u8 = 0x40;

/// Minimal CBOR (RFC 8949) for attestation objects and COSE keys.
mod cbor {
    fn head(major: u8, n: u64, out: &mut Vec<u8>) {
        let major = major << 5;
        match n {
            0..=23 => out.push(major | n as u8),
            24..=0xff => out.extend([major | 24, n as u8]),
            0x100..=0xffff => {
                out.push(major | 25);
                out.extend((n as u16).to_be_bytes());
            }
            _ => {
                out.push(major | 26);
                out.extend((n as u32).to_be_bytes());
            }
        }
    }

    pub(super) fn int(n: i64, out: &mut Vec<u8>) {
        if n >= 0 {
            head(0, n as u64, out);
        } else {
            head(1, (-1 - n) as u64, out);
        }
    }

    pub(super) fn bytes(b: &[u8], out: &mut Vec<u8>) {
        head(2, b.len() as u64, out);
        out.extend_from_slice(b);
    }

    pub(super) fn text(s: &str, out: &mut Vec<u8>) {
        head(3, s.len() as u64, out);
        out.extend_from_slice(s.as_bytes());
    }

    pub(super) fn map(entries: usize, out: &mut Vec<u8>) {
        head(5, entries as u64, out);
    }
}

fn b64u(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64u(s: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .expect("base64url from the server")
}

/// One resident credential.
pub(super) struct SoftKey {
    key: EcdsaKeyPair,
    pub(super) credential_id: Vec<u8>,
    /// The `user.id` bytes the credential was created with.
    pub(super) user_handle: Vec<u8>,
    pub(super) rp_id: String,
    counter: u32,
}

impl SoftKey {
    /// Creates the credential for creation `options` (the bare
    /// PublicKeyCredentialCreationOptions) and answers the registration JSON, with
    /// the authenticator `flags` (UP|UV normally) and `origin` in clientDataJSON.
    pub(super) fn register(options: &Value, origin: &str, flags: u8) -> (SoftKey, Value) {
        let key = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING).expect("a P-256 key");
        let mut key = SoftKey {
            key,
            credential_id: rand::random::<[u8; 16]>().to_vec(),
            user_handle: unb64u(options["user"]["id"].as_str().expect("user.id")),
            rp_id: options["rp"]["id"].as_str().expect("rp.id").to_string(),
            counter: 0,
        };
        let client_data = json!({
            "type": "webauthn.create",
            "challenge": options["challenge"],
            "origin": origin,
            "crossOrigin": false,
        })
        .to_string();
        let point = key.key.public_key().as_ref().to_vec();
        assert_eq!(point.len(), 65, "an uncompressed P-256 point");
        let mut cose = Vec::new();
        cbor::map(5, &mut cose);
        for (label, value) in [(1, 2), (3, -7), (-1, 1)] {
            cbor::int(label, &mut cose);
            cbor::int(value, &mut cose);
        }
        cbor::int(-2, &mut cose);
        cbor::bytes(&point[1..33], &mut cose);
        cbor::int(-3, &mut cose);
        cbor::bytes(&point[33..], &mut cose);

        let mut auth_data = key.auth_data_head(flags | AT);
        auth_data.extend([0u8; 16]);
        auth_data.extend((key.credential_id.len() as u16).to_be_bytes());
        auth_data.extend(&key.credential_id);
        auth_data.extend(cose);

        let mut attestation = Vec::new();
        cbor::map(3, &mut attestation);
        cbor::text("fmt", &mut attestation);
        cbor::text("none", &mut attestation);
        cbor::text("attStmt", &mut attestation);
        cbor::map(0, &mut attestation);
        cbor::text("authData", &mut attestation);
        cbor::bytes(&auth_data, &mut attestation);

        let id = b64u(&key.credential_id);
        key.counter += 1;
        let response = json!({
            "id": id,
            "rawId": id,
            "type": "public-key",
            "response": {
                "clientDataJSON": b64u(client_data.as_bytes()),
                "attestationObject": b64u(&attestation),
                "transports": ["internal"],
            },
            "clientExtensionResults": {},
            "authenticatorAttachment": "platform",
        });
        (key, response)
    }

    /// RP ID hash, flags and the big-endian counter: the first 37 bytes of every
    /// authenticator data.
    fn auth_data_head(&self, flags: u8) -> Vec<u8> {
        let mut data = Sha256::digest(self.rp_id.as_bytes()).to_vec();
        data.push(flags);
        data.extend(self.counter.to_be_bytes());
        data
    }

    /// The assertion for request `options`, or `None` when the authenticator refuses
    /// because the RP ID is not its credential's (the rule that stops phishing).
    pub(super) fn assert(&mut self, options: &Value, origin: &str, flags: u8) -> Option<Value> {
        if options["rpId"].as_str() != Some(self.rp_id.as_str()) {
            return None;
        }
        Some(self.assert_anyway(options, origin, flags))
    }

    /// The assertion for `options` signed with this credential's own RP ID, even when
    /// the request names another (a broken client).
    pub(super) fn assert_anyway(&mut self, options: &Value, origin: &str, flags: u8) -> Value {
        let client_data = json!({
            "type": "webauthn.get",
            "challenge": options["challenge"],
            "origin": origin,
            "crossOrigin": false,
        })
        .to_string();
        let auth_data = self.auth_data_head(flags);
        self.counter += 1;
        let mut signed = auth_data.clone();
        signed.extend(Sha256::digest(client_data.as_bytes()));
        let signature = self
            .key
            .sign(&SystemRandom::new(), &signed)
            .expect("a signature");
        let id = b64u(&self.credential_id);
        json!({
            "id": id,
            "rawId": id,
            "type": "public-key",
            "response": {
                "clientDataJSON": b64u(client_data.as_bytes()),
                "authenticatorData": b64u(&auth_data),
                "signature": b64u(signature.as_ref()),
                "userHandle": b64u(&self.user_handle),
            },
            "clientExtensionResults": {},
            "authenticatorAttachment": "platform",
        })
    }
}
