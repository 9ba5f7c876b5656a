//! Pocket ID's OpenID Connect wire shapes: the discovery document, the JWKS, the token
//! endpoint's OAuth errors and the outcomes of `/authorize`.

use serde::Deserialize;
use url::Url;

/// Pocket ID's fixed paths, relative to its public URL (APP_URL).
pub mod paths {
    /// OpenID Connect discovery.
    pub const DISCOVERY: &str = "/.well-known/openid-configuration";
    /// The signing keys.
    pub const JWKS: &str = "/.well-known/jwks.json";
    /// The token endpoint Cloudflare redeems codes at.
    pub const TOKEN: &str = "/api/oidc/token";
    /// The authorization endpoint (a server route since v2.10).
    pub const AUTHORIZE: &str = "/authorize";
    /// Liveness.
    pub const HEALTH: &str = "/healthz";
}

/// The fields of the discovery document that ssoprobe checks.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct Discovery {
    /// Must equal the public URL exactly.
    pub issuer: Option<String>,
    /// APP_URL + `/authorize`.
    pub authorization_endpoint: Option<String>,
    /// INTERNAL_APP_URL + `/api/oidc/token`.
    pub token_endpoint: Option<String>,
    /// INTERNAL_APP_URL + `/.well-known/jwks.json`.
    pub jwks_uri: Option<String>,
    /// INTERNAL_APP_URL + `/api/oidc/userinfo`.
    pub userinfo_endpoint: Option<String>,
    /// The algorithm of the signing key.
    #[serde(default)]
    pub id_token_signing_alg_values_supported: Vec<String>,
    /// Must contain `code`.
    #[serde(default)]
    pub response_types_supported: Vec<String>,
    /// Should contain `S256`.
    #[serde(default)]
    pub code_challenge_methods_supported: Vec<String>,
    /// The scopes a client may ask for.
    #[serde(default)]
    pub scopes_supported: Vec<String>,
    /// The claims Pocket ID can send.
    #[serde(default)]
    pub claims_supported: Vec<String>,
}

/// The algorithms Cloudflare Access can verify id_tokens with (generic OIDC).
pub const ACCESS_ALGS: &[&str] = &["RS256", "RS512", "PS512", "ES256", "ES384", "ES512"];

/// Normalises a base URL the way Pocket ID normalises APP_URL: lower case, no trailing `/`.
pub fn normalise_base(url: &Url) -> String {
    url.as_str().trim_end_matches('/').to_ascii_lowercase()
}

/// Pocket ID's public URL (APP_URL) from its authorization endpoint: the https URL
/// without its query, fragment and trailing `/authorize`. `None` for anything else.
pub fn app_url_of_authorize(authorize: &Url) -> Option<Url> {
    if authorize.scheme() != "https" {
        return None;
    }
    let mut base = authorize.clone();
    base.set_query(None);
    base.set_fragment(None);
    let path = base
        .path()
        .trim_end_matches('/')
        .strip_suffix(paths::AUTHORIZE)?
        .to_string();
    base.set_path(if path.is_empty() { "/" } else { &path });
    Some(base)
}

/// An OAuth 2.0 error body (RFC 6749 §5.2).
#[derive(Debug, Clone, Deserialize)]
pub struct OAuthError {
    /// The error code.
    pub error: String,
    /// Human text; fosite appends its hint here.
    #[serde(default)]
    pub error_description: Option<String>,
}

/// OAuth error codes that a token endpoint gives a bogus code.
pub const EXPECTED_TOKEN_ERRORS: &[&str] = &["invalid_grant", "invalid_request", "invalid_client"];

/// What `GET /authorize` without a session led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizeOutcome {
    /// `302 /interaction?interaction=…`: client and callback accepted, login required.
    Interaction,
    /// `302 /interaction/error?error=…`: refused before returning to the client.
    InteractionError(String),
    /// `303` to the callback with `error=`.
    CallbackError {
        /// The OAuth error code.
        error: String,
        /// Its description, if any.
        description: Option<String>,
    },
    /// `303` to the callback with a code (a session already existed).
    CallbackCode,
    /// A page instead of a redirect (Pocket ID before v2.10 served `/authorize` as a page).
    Page,
    /// Anything else.
    Unexpected,
}

/// Classifies a redirect from `/authorize` given where it points.
pub fn classify_authorize(
    status: u16,
    location: Option<&Url>,
    redirect_uri: Option<&str>,
) -> AuthorizeOutcome {
    let Some(location) = location else {
        return if status == 200 {
            AuthorizeOutcome::Page
        } else {
            AuthorizeOutcome::Unexpected
        };
    };
    let param = |name: &str| {
        location
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    if location.path() == "/interaction/error" {
        return AuthorizeOutcome::InteractionError(
            param("error").unwrap_or_else(|| "(no message)".into()),
        );
    }
    if location.path() == "/interaction" && param("interaction").is_some() {
        return AuthorizeOutcome::Interaction;
    }
    let to_callback = redirect_uri.is_some_and(|r| {
        let mut bare = location.clone();
        bare.set_query(None);
        bare.set_fragment(None);
        bare.as_str() == r || bare.as_str().trim_end_matches('/') == r.trim_end_matches('/')
    });
    if to_callback || param("error").is_some() || param("code").is_some() {
        if let Some(error) = param("error") {
            return AuthorizeOutcome::CallbackError {
                error,
                description: param("error_description"),
            };
        }
        if param("code").is_some() {
            return AuthorizeOutcome::CallbackCode;
        }
    }
    AuthorizeOutcome::Unexpected
}

/// The cause behind an `/authorize` refusal, recognised from fosite's and Pocket ID's texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalCause {
    /// The client id is not a Pocket ID client.
    UnknownClient,
    /// The callback URL is not registered for the client.
    CallbackNotRegistered,
    /// The client requires PKCE and no challenge came.
    PkceRequired,
    /// The PKCE method is not supported.
    PkceMethod,
    /// `state` missing or too short.
    State,
    /// The scope was refused.
    Scope,
    /// The user is not in an allowed group.
    NotAllowed,
    /// fosite's catch-all for an error that is no OAuth error (`error=error`, "The error
    /// is unrecognizable"): Pocket ID's answer names no cause, only its log does.
    Unrecognizable,
    /// Something else.
    Other,
}

/// The `error` fosite sends for an error that is no RFC 6749 error (its
/// `ErrorToRFC6749Error`), with the description "The error is unrecognizable".
pub const UNRECOGNIZABLE_ERROR: &str = "error";

/// Reads the cause from an error code and its text.
pub fn refusal_cause(error: Option<&str>, text: &str) -> RefusalCause {
    let t = text.to_ascii_lowercase();
    if error == Some(UNRECOGNIZABLE_ERROR) {
        RefusalCause::Unrecognizable
    } else if t.contains("client does not exist")
        || t.contains("unknown client")
        || t.contains("client not found")
    {
        RefusalCause::UnknownClient
    } else if t.contains("redirect_uri") || t.contains("redirect url") || t.contains("callback") {
        RefusalCause::CallbackNotRegistered
    } else if t.contains("requires pkce")
        || t.contains("code_challenge' parameter is missing")
        || t.contains("must include a code_challenge")
    {
        RefusalCause::PkceRequired
    } else if t.contains("code_challenge_method") {
        RefusalCause::PkceMethod
    } else if error == Some("invalid_state") || t.contains("state") && t.contains("entropy") {
        RefusalCause::State
    } else if error == Some("invalid_scope") {
        RefusalCause::Scope
    } else if t.contains("not allowed to access") {
        RefusalCause::NotAllowed
    } else {
        RefusalCause::Other
    }
}

/// The `Authorization` header of a confidential client (`client_secret_basic`: both
/// parts form-urlencoded, RFC 6749 §2.3.1), as Access sends it to the token endpoint.
pub fn client_basic(client_id: &str, secret: &crate::redact::Secret) -> crate::redact::Secret {
    use base64::Engine as _;
    let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    crate::redact::Secret::configured(format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            encode(client_id),
            encode(secret.expose())
        ))
    ))
}

/// A resource indicator (RFC 8707) no Pocket ID defines: asking for a client-credentials
/// token for it is refused with `invalid_target` after the client has authenticated,
/// which Pocket ID does not log as an error.
pub const UNKNOWN_RESOURCE: &str = "https://ssoprobe.invalid/no-such-resource";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_app_url_is_the_authorize_url_without_authorize() {
        let at = |u: &str| app_url_of_authorize(&Url::parse(u).unwrap()).map(|u| u.to_string());
        assert_eq!(
            at("https://id.example.com/authorize?client_id=x"),
            Some("https://id.example.com/".into())
        );
        assert_eq!(
            at("https://h.example/pocket/authorize/"),
            Some("https://h.example/pocket".into())
        );
        assert_eq!(at("https://h.example/oauth2/auth"), None);
        assert_eq!(at("http://h.example/authorize"), None);
    }

    fn loc(s: &str) -> Url {
        Url::parse("https://id.example.com/authorize")
            .unwrap()
            .join(s)
            .unwrap()
    }

    #[test]
    fn interaction_redirect_is_acceptance() {
        assert_eq!(
            classify_authorize(302, Some(&loc("/interaction?interaction=abc")), None),
            AuthorizeOutcome::Interaction
        );
    }

    #[test]
    fn interaction_error_carries_the_message() {
        let o = classify_authorize(
            302,
            Some(&loc(
                "/interaction/error?error=The+requested+OAuth+2.0+Client+does+not+exist.",
            )),
            None,
        );
        assert_eq!(
            o,
            AuthorizeOutcome::InteractionError(
                "The requested OAuth 2.0 Client does not exist.".into()
            )
        );
    }

    #[test]
    fn callback_error_is_read() {
        let cb = "https://xyz.cloudflareaccess.com/cdn-cgi/access/callback";
        let l = Url::parse(&format!("{cb}?error=invalid_request&error_description=This+client+requires+PKCE%2C+but+the+%27code_challenge%27+parameter+is+missing.&state=abcdefgh")).unwrap();
        match classify_authorize(303, Some(&l), Some(cb)) {
            AuthorizeOutcome::CallbackError { error, description } => {
                assert_eq!(error, "invalid_request");
                assert_eq!(
                    refusal_cause(Some(&error), description.as_deref().unwrap()),
                    RefusalCause::PkceRequired
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn causes_are_recognised() {
        assert_eq!(
            refusal_cause(None, "The requested OAuth 2.0 Client does not exist."),
            RefusalCause::UnknownClient
        );
        assert_eq!(
            refusal_cause(
                None,
                "The 'redirect_uri' parameter does not match any of the OAuth 2.0 Client's pre-registered redirect urls."
            ),
            RefusalCause::CallbackNotRegistered
        );
        assert_eq!(
            refusal_cause(None, "You are not allowed to access this service."),
            RefusalCause::NotAllowed
        );
    }

    #[test]
    fn discovery_parses_with_missing_fields() {
        let d: Discovery = serde_json::from_str(r#"{"issuer":"https://id.example.com"}"#).unwrap();
        assert_eq!(d.issuer.as_deref(), Some("https://id.example.com"));
        assert!(d.id_token_signing_alg_values_supported.is_empty());
    }

    #[test]
    fn real_authorize_answers_are_classified() {
        let cb = "https://xyz.cloudflareaccess.com/cdn-cgi/access/callback";
        for line in include_str!("../../fixtures/pocketid/authorize-locations.txt").lines() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let (expected, location) = line.split_once(' ').unwrap();
            let l = loc(location);
            let status = if location.starts_with('/') { 302 } else { 303 };
            let outcome = classify_authorize(status, Some(&l), Some(cb));
            let cause = match &outcome {
                AuthorizeOutcome::Interaction => "interaction",
                AuthorizeOutcome::InteractionError(m) => match refusal_cause(None, m) {
                    RefusalCause::UnknownClient => "unknown-client",
                    RefusalCause::CallbackNotRegistered => "callback-not-registered",
                    RefusalCause::NotAllowed => "not-allowed",
                    _ => "other",
                },
                AuthorizeOutcome::CallbackError { error, description } => {
                    match refusal_cause(Some(error), description.as_deref().unwrap_or("")) {
                        RefusalCause::PkceRequired => "pkce-required",
                        RefusalCause::State => "state",
                        RefusalCause::Unrecognizable => "unrecognizable",
                        _ => "other",
                    }
                }
                _ => "other",
            };
            assert_eq!(cause, expected, "{location} -> {outcome:?}");
        }
    }

    #[test]
    fn real_discovery_document_parses() {
        let d: Discovery =
            serde_json::from_str(include_str!("../../fixtures/pocketid/discovery.json")).unwrap();
        assert_eq!(d.issuer.as_deref(), Some("https://id.example.com"));
        assert_eq!(
            d.token_endpoint.as_deref(),
            Some("https://id.example.com/api/oidc/token")
        );
        assert_eq!(d.id_token_signing_alg_values_supported, ["RS256"]);
        assert!(
            d.code_challenge_methods_supported
                .iter()
                .any(|m| m == "S256")
        );
    }

    #[test]
    fn real_token_errors_parse() {
        let v: serde_json::Value =
            serde_json::from_str(include_str!("../../fixtures/pocketid/token-errors.json"))
                .unwrap();
        for key in ["invalid_grant", "invalid_client"] {
            let e: OAuthError = serde_json::from_value(v[key].clone()).unwrap();
            assert!(EXPECTED_TOKEN_ERRORS.contains(&e.error.as_str()));
        }
    }
}
