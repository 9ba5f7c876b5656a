//! The Pocket ID checks: `idp.authorize`, `idp.discovery`, `idp.jwks`, `idp.token`,
//! `idp.health`.

use super::access::AuthorizeRequest;
use super::{ids, unexpected, unexpected_or};
use crate::cloudflare;
use crate::config::{Config, Gateway};
use crate::finding::{CheckResult, Findings};
use crate::http::{Accept, Http, Request};
use crate::pocketid::{
    self, ACCESS_ALGS, AuthorizeOutcome, Discovery, EXPECTED_TOKEN_ERRORS, OAuthError,
    RefusalCause, normalise_base, paths,
};
use crate::redact;
use base64::Engine;
use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use url::Url;

fn endpoint(config: &Config, path: &str) -> Url {
    let mut u = config.idp.clone();
    u.set_path(path);
    u.set_query(None);
    u
}

/// The anonymous requests of `idp.discovery`, `idp.jwks` and `idp.health` to the Pocket
/// ID of `config`, as those checks send them (for [`Http::prefetch`]).
pub fn public_requests(config: &Config) -> [(&'static str, Request); 3] {
    [
        (ids::IDP_DISCOVERY, discovery_request(config)),
        (ids::IDP_JWKS, jwks_request(config)),
        (ids::IDP_HEALTH, health_request(config)),
    ]
}

fn discovery_request(config: &Config) -> Request {
    Request::get(endpoint(config, paths::DISCOVERY), Accept::Json)
}

fn jwks_request(config: &Config) -> Request {
    // Off the critical path: shares the connection discovery opens.
    Request::get(endpoint(config, paths::JWKS), Accept::Json).patient()
}

fn health_request(config: &Config) -> Request {
    Request::get(endpoint(config, paths::HEALTH), Accept::Json).patient()
}

/// `idp.authorize`: Pocket ID, without a session, must accept Access's client and
/// callback and ask for a login (`302 /interaction?interaction=…`).
pub async fn authorize(http: &Http, request: &AuthorizeRequest) -> (CheckResult, Option<Url>) {
    let mut f = Findings::start(ids::IDP_AUTHORIZE);
    let response = match http
        .send(
            ids::IDP_AUTHORIZE,
            Request::get(request.url.clone(), Accept::Html),
        )
        .await
    {
        Ok(r) => r,
        Err(e) => {
            f.request_failed("GET /authorize at Pocket ID", &e);
            return (f.finish(""), None);
        }
    };
    f.detail("status", response.status.as_u16());
    let location = match response.location() {
        Some(Ok(u)) => Some(u),
        _ => None,
    };
    if let Some(l) = &location {
        f.detail("location", redact::url(l));
    }
    let client = &request.client_id;
    let outcome = if response.status.is_redirection() {
        pocketid::classify_authorize(
            response.status.as_u16(),
            location.as_ref(),
            request.redirect_uri.as_deref(),
        )
    } else if response.status.as_u16() == 200 && cloudflare::classify(&response).is_none() {
        AuthorizeOutcome::Page
    } else {
        AuthorizeOutcome::Unexpected
    };
    let mut interaction = None;
    match outcome {
        AuthorizeOutcome::Interaction => interaction = location.clone(),
        AuthorizeOutcome::CallbackCode => {}
        AuthorizeOutcome::InteractionError(message) => {
            f.detail("pocket_id_error", message.clone());
            let (finding, hint) = refusal(pocketid::refusal_cause(None, &message), request, &message);
            f.fail(finding, hint);
        }
        AuthorizeOutcome::CallbackError { error, description } => {
            f.detail("pocket_id_error", format!("{error}: {}", description.clone().unwrap_or_default()));
            let text = description.clone().unwrap_or_default();
            let cause = pocketid::refusal_cause(Some(&error), &text);
            if cause == RefusalCause::Unrecognizable {
                // Several causes give it: `causes::attribute` names what the run's
                // evidence leaves.
                f.detail("symptom", UNRECOGNIZABLE_SYMPTOM);
            }
            let (finding, hint) = refusal(cause, request, &format!("{error}: {text}"));
            f.fail(finding, hint);
            if let (Some(l), Some(sent)) = (&location, &request.state) {
                let back = l.query_pairs().find(|(k, _)| k == "state").map(|(_, v)| v.into_owned());
                if back.as_deref() != Some(sent.expose()) {
                    let who = request.gateway.who();
                    f.warn(format!("the error redirect does not carry {who}'s state back"), format!("Pocket ID echoes the state on error redirects; without it {who} cannot match the answer to the login: check for a proxy rewriting the redirect"));
                }
            }
        }
        AuthorizeOutcome::Page => f.warn(
            "Pocket ID serves /authorize as a page: client and callback are only checked after login",
            "Pocket ID before v2.10 validates the request in the browser; upgrade Pocket ID to a current v2 release".to_string(),
        ),
        AuthorizeOutcome::Unexpected => {
            let (finding, hint) = unexpected("GET /authorize", &response);
            f.fail(finding, hint);
        }
    }
    let result = f.finish(format!(
        "Pocket ID accepts client {client} with {}'s callback and asks for a login",
        request.gateway.who()
    ));
    (result, interaction)
}

/// The symptom `idp.authorize` records when Pocket ID answers fosite's catch-all
/// (`error=error`, "The error is unrecognizable"), declared in `causes.rs`.
pub const UNRECOGNIZABLE_SYMPTOM: &str = "idp.authorize_unrecognizable_error";

fn refusal(cause: RefusalCause, request: &AuthorizeRequest, message: &str) -> (String, String) {
    if request.gateway == Gateway::OAuth2Proxy {
        return proxy_refusal(cause, request, message);
    }
    let client = request.client_id.as_str();
    let callback = request.redirect_uri.clone().unwrap_or_default();
    let expected_callback = request.expected_callback.as_str();
    match cause {
        RefusalCause::UnknownClient => (
            format!("Pocket ID has no OIDC client {client}"),
            format!(
                "Cloudflare sends client_id {client}; in Zero Trust → Settings → Authentication → (Pocket ID), App ID must be the Client ID shown in Pocket ID → OIDC Clients"
            ),
        ),
        RefusalCause::CallbackNotRegistered if callback != expected_callback => (
            format!(
                "Pocket ID refuses the redirect_uri {callback} that Access sends for client {client}{}",
                crate::text::small_difference(&callback, expected_callback)
                    .map(|fix| format!(" (its team callback is {expected_callback}: {fix})"))
                    .unwrap_or_default()
            ),
            format!(
                "Access sends {callback}, which is not its team callback {expected_callback}: fix what makes Access send it (a Worker or rule rewriting the authorization request, a changed team domain) so that it sends {expected_callback}, and have exactly {expected_callback} in Pocket ID → OIDC Clients → (the Cloudflare client) → Callback URLs; to let this login through as it is, register exactly {callback} there instead"
            ),
        ),
        RefusalCause::CallbackNotRegistered => (
            format!("Pocket ID refuses Access's callback URL for client {client}"),
            format!(
                "in Pocket ID → OIDC Clients → (the Cloudflare client) → Callback URLs, add exactly {callback}"
            ),
        ),
        RefusalCause::PkceRequired => (
            "the Pocket ID client requires PKCE but Access sent no code_challenge".to_string(),
            "tick 'PKCE' in Cloudflare's Pocket ID identity provider (Zero Trust → Settings → Authentication), or untick PKCE on the client in Pocket ID".to_string(),
        ),
        RefusalCause::PkceMethod => (
            format!("Pocket ID refuses the PKCE method: {message}"),
            "Access must use S256".to_string(),
        ),
        RefusalCause::State => (
            format!("Pocket ID refuses the state parameter: {message}"),
            "something strips or shortens Access's state (a proxy or Worker rewriting the URL)".to_string(),
        ),
        RefusalCause::Scope => (
            format!("Pocket ID refuses the scope: {message}"),
            "set Cloudflare's OIDC Scopes to openid email profile".to_string(),
        ),
        RefusalCause::NotAllowed => (
            format!("Pocket ID refuses: {message}"),
            "the client is restricted to user groups; add the user to an allowed group".to_string(),
        ),
        RefusalCause::Unrecognizable => (
            format!("Pocket ID refused Access's authorization request for client {client} with an error it does not name (error=error, \"The error is unrecognizable\")"),
            format!("if client {client} has \"Requires Pushed Authorization Requests\" on (Pocket ID → OIDC Clients → the client → Show Advanced Options), turn it off: Access cannot push its requests; otherwise Pocket ID's log names the error in its line \"Failed to authorize request\""),
        ),
        RefusalCause::Other => (
            format!("Pocket ID refused the authorization request: {message}"),
            format!("Pocket ID's own words name the setting of client {client} to change (Pocket ID → OIDC Clients); compare them with what Access sends, shown in access.login's details"),
        ),
    }
}

/// Pocket ID's refusal of oauth2-proxy's authorization request: the fixes are
/// oauth2-proxy's flags or its client in Pocket ID.
fn proxy_refusal(
    cause: RefusalCause,
    request: &AuthorizeRequest,
    message: &str,
) -> (String, String) {
    let client = request.client_id.as_str();
    let callback = request.redirect_uri.clone().unwrap_or_default();
    let expected = request.expected_callback.as_str();
    match cause {
        RefusalCause::UnknownClient => (
            format!("Pocket ID has no OIDC client {client}"),
            format!(
                "oauth2-proxy sends client_id {client}: set its --client-id (OAUTH2_PROXY_CLIENT_ID) to the Client ID shown in Pocket ID → OIDC Clients, and restart it"
            ),
        ),
        RefusalCause::CallbackNotRegistered if callback != expected => (
            format!(
                "Pocket ID refuses the redirect_uri {callback} that oauth2-proxy sends for client {client}{}",
                crate::text::small_difference(&callback, expected)
                    .map(|fix| format!(" (its callback is {expected}: {fix})"))
                    .unwrap_or_default()
            ),
            format!(
                "start oauth2-proxy with --redirect-url={expected} (https, the host and path browsers use) and have exactly that in Pocket ID → OIDC Clients → (oauth2-proxy's client) → Callback URLs; to let this login through as it is, register exactly {callback} there instead"
            ),
        ),
        RefusalCause::CallbackNotRegistered => (
            format!("Pocket ID refuses oauth2-proxy's callback URL {callback} for client {client}"),
            format!(
                "in Pocket ID → OIDC Clients → (oauth2-proxy's client) → Callback URLs, add exactly {callback}"
            ),
        ),
        RefusalCause::PkceRequired => (
            "the Pocket ID client requires PKCE but oauth2-proxy sent no code_challenge (a browser sees oauth2-proxy's 403 \"Login Failed: The upstream identity provider returned an error: invalid_request\")".to_string(),
            "start oauth2-proxy with --code-challenge-method=S256 (OAUTH2_PROXY_CODE_CHALLENGE_METHOD), or untick PKCE on its client in Pocket ID".to_string(),
        ),
        RefusalCause::PkceMethod => (
            format!("Pocket ID refuses the PKCE method: {message}"),
            "start oauth2-proxy with --code-challenge-method=S256".to_string(),
        ),
        RefusalCause::State => (
            format!("Pocket ID refuses the state parameter: {message}"),
            "something strips or shortens oauth2-proxy's state (a proxy rewriting the URL)".to_string(),
        ),
        RefusalCause::Scope => (
            format!("Pocket ID refuses the scope: {message}"),
            "set oauth2-proxy's --scope to \"openid email profile\" (or leave it out)".to_string(),
        ),
        RefusalCause::NotAllowed => (
            format!("Pocket ID refuses: {message}"),
            "the client is restricted to user groups; add the user to an allowed group".to_string(),
        ),
        RefusalCause::Unrecognizable => (
            format!("Pocket ID refused oauth2-proxy's authorization request for client {client} with an error it does not name (error=error, \"The error is unrecognizable\")"),
            format!("if client {client} has \"Requires Pushed Authorization Requests\" on (Pocket ID → OIDC Clients → the client → Show Advanced Options), turn it off: oauth2-proxy cannot push its requests; otherwise Pocket ID's log names the error in its line \"Failed to authorize request\""),
        ),
        RefusalCause::Other => (
            format!("Pocket ID refused the authorization request: {message}"),
            format!("Pocket ID's own words name the setting of client {client} to change (Pocket ID → OIDC Clients); compare them with what oauth2-proxy sends, shown in o2p.start's details"),
        ),
    }
}

/// `idp.discovery`: the issuer must equal the public URL, and every endpoint Access's
/// setup uses must be on the public host.
pub async fn discovery(config: &Config, http: &Http) -> (CheckResult, Option<Arc<Discovery>>) {
    let mut f = Findings::start(ids::IDP_DISCOVERY);
    let Some(doc) = fetch_discovery(config, http, &mut f).await else {
        return (f.finish(""), None);
    };
    let base = normalise_base(&config.idp);
    judge_issuer(&mut f, config, &doc, &base);
    f.detail("issuer", doc.issuer.clone().unwrap_or_default());
    judge_endpoints(&mut f, config, &doc, &base);
    judge_flows(&mut f, &doc);
    f.detail(
        "id_token_signing_alg_values_supported",
        doc.id_token_signing_alg_values_supported.clone(),
    );
    let summary = format!("issuer {base}; authorize, token and JWKS endpoints on the public host");
    (f.finish(summary), Some(Arc::new(doc)))
}

/// Pocket ID's discovery document; None, with the failure on `f`, when it could not be
/// read or is not one.
async fn fetch_discovery(config: &Config, http: &Http, f: &mut Findings) -> Option<Discovery> {
    let response = match http
        .send(ids::IDP_DISCOVERY, discovery_request(config))
        .await
    {
        Ok(r) => r,
        Err(e) => {
            f.request_failed(format!("GET {}", paths::DISCOVERY), &e);
            return None;
        }
    };
    f.detail("status", response.status.as_u16());
    if response.status.as_u16() != 200 {
        let (finding, hint) = unexpected_or(&format!("GET {}", paths::DISCOVERY), &response);
        let hint = hint.unwrap_or_else(|| {
            format!(
                "is {} Pocket ID? Its discovery document is served at {}",
                config.idp,
                paths::DISCOVERY
            )
        });
        f.fail(finding, hint);
        return None;
    }
    match serde_json::from_slice(&response.body) {
        Ok(d) => Some(d),
        Err(e) => {
            let what = if response.is_json() {
                format!(
                    "not a discovery document: {}",
                    crate::text::json_problem(&e)
                )
            } else {
                "an HTML page, not JSON".to_string()
            };
            f.fail(
                format!("{} answers {what}", paths::DISCOVERY),
                "the path is answered by something other than Pocket ID (a proxy rule or another app)".to_string(),
            );
            None
        }
    }
}

/// Judges the issuer: it must be Pocket ID's public URL `base`; the hint names the
/// usual ways APP_URL is wrong.
fn judge_issuer(f: &mut Findings, config: &Config, doc: &Discovery, base: &str) {
    match doc.issuer.as_deref() {
        None => f.fail("the discovery document has no issuer", format!("Pocket ID always names its issuer (its APP_URL); is {} Pocket ID, or does a proxy serve another document at this path?", config.idp)),
        Some(issuer) if issuer == base => {}
        Some(issuer) => {
            let hint = if issuer.starts_with("http://")
                && issuer.replacen("http://", "https://", 1) == base
            {
                format!(
                    "Pocket ID's APP_URL is {issuer}; set APP_URL={base} (https) and restart it: Cloudflare Access rejects id_tokens whose iss is not the URL it was given, and oauth2-proxy does not start with an --oidc-issuer-url other than the issuer"
                )
            } else if issuer.contains("localhost") || issuer.contains("127.0.0.1") {
                format!(
                    "Pocket ID's APP_URL was left at {issuer}; set APP_URL={base} and restart it"
                )
            } else {
                format!(
                    "Pocket ID's APP_URL is {issuer}; set it to {base} (the URL users and the gateway reach it at), or check --idp"
                )
            };
            f.fail(format!("issuer is {issuer}, expected {base}"), hint);
        }
    }
}

/// Judges the endpoints Access's setup uses: each must be Pocket ID's own path under
/// `base`, and the ones Cloudflare calls itself must be on the public host.
fn judge_endpoints(f: &mut Findings, config: &Config, doc: &Discovery, base: &str) {
    let public_host = config
        .idp
        .host_str()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let expectations = [
        (
            "authorization_endpoint",
            &doc.authorization_endpoint,
            paths::AUTHORIZE,
            "Auth URL",
            false,
        ),
        (
            "token_endpoint",
            &doc.token_endpoint,
            paths::TOKEN,
            "Token URL",
            true,
        ),
        (
            "jwks_uri",
            &doc.jwks_uri,
            paths::JWKS,
            "Certificate URL",
            true,
        ),
    ];
    for (field, value, path, cf_field, internal) in expectations {
        let want = format!("{base}{path}");
        match value.as_deref() {
            None => f.fail(format!("the discovery document has no {field}"), format!("Pocket ID always lists it; is {} Pocket ID, or does a proxy serve another document at this path?", config.idp)),
            Some(v) if v.eq_ignore_ascii_case(&want) => {}
            Some(v) => {
                let host = Url::parse(v)
                    .ok()
                    .and_then(|u| u.host_str().map(str::to_ascii_lowercase));
                if internal && host.as_deref() != Some(public_host.as_str()) {
                    f.fail(
                        format!("{field} {v} is not on the public host {public_host}"),
                        if behind_proxy(config) {
                            format!(
                                "oauth2-proxy calls the {field} discovery names from where it runs: unset Pocket ID's INTERNAL_APP_URL unless oauth2-proxy reaches {v} there (else its callback answers its generic 500)"
                            )
                        } else {
                            format!(
                                "Pocket ID's INTERNAL_APP_URL points discovery at an address Cloudflare cannot reach; unset it, and set Cloudflare's {cf_field} to {want}"
                            )
                        },
                    );
                } else if v.starts_with("http://")
                    && v.replacen("http://", "https://", 1)
                        .eq_ignore_ascii_case(&want)
                {
                    // Same cause as an http issuer, already reported there.
                } else {
                    f.fail(
                        format!("{field} is {v}, expected {want}"),
                        if behind_proxy(config) {
                            format!("check Pocket ID's APP_URL and the proxy in front of it: oauth2-proxy uses the {field} discovery names, which should be {want}")
                        } else {
                            format!(
                                "set Cloudflare's {cf_field} to {want} and check Pocket ID's APP_URL"
                            )
                        },
                    );
                }
            }
        }
        if let Some(v) = value {
            f.detail(field, v.clone());
        }
    }
}

/// Whether the site's gateway is oauth2-proxy (pinned, or found by the run before the
/// check began): the hints then name its settings instead of Cloudflare's.
fn behind_proxy(config: &Config) -> bool {
    config.gateway == Some(Gateway::OAuth2Proxy)
}

/// Judges what discovery says of the flow Access uses: the code response type, and S256
/// for PKCE.
fn judge_flows(f: &mut Findings, doc: &Discovery) {
    if !doc.response_types_supported.is_empty()
        && !doc.response_types_supported.iter().any(|r| r == "code")
    {
        f.fail("response_types_supported lacks code", "Cloudflare Access uses the authorization code flow; an IdP that does not offer response_type code cannot serve it");
    }
    if !doc.code_challenge_methods_supported.is_empty()
        && !doc
            .code_challenge_methods_supported
            .iter()
            .any(|m| m == "S256")
    {
        f.warn("code_challenge_methods_supported lacks S256", "Access uses PKCE with S256 when PKCE is ticked; untick PKCE in Cloudflare's Pocket ID identity provider, or upgrade Pocket ID");
    }
}

/// `idp.jwks`: at least one signing key; every key parses; algorithms agree with
/// discovery and are ones Cloudflare Access can verify; kids are unique.
pub async fn jwks(
    config: &Config,
    http: &Http,
    discovery: impl Future<Output = Option<Arc<Discovery>>>,
) -> CheckResult {
    let mut f = Findings::start(ids::IDP_JWKS);
    let fetched = http.send(ids::IDP_JWKS, jwks_request(config)).await;
    // Discovery is fetched concurrently; a slow one is not this check's time.
    let discovery = f.waiting_for(discovery).await;
    let response = match fetched {
        Ok(r) => r,
        Err(e) => {
            f.request_failed(format!("GET {}", paths::JWKS), &e);
            return f.finish("");
        }
    };
    let Some(keys) = read_keys(&mut f, &response, behind_proxy(config)) else {
        return f.finish("");
    };
    let advertised = discovery.map(|d| d.id_token_signing_alg_values_supported.clone());
    let mut kids = HashSet::new();
    let mut described = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        if let Some(description) = judge_key(
            &mut f,
            i,
            key,
            &mut kids,
            (advertised.as_deref(), behind_proxy(config)),
        ) {
            described.push(description);
        }
    }
    if advertised.is_none() {
        f.detail("algorithms_compared", false);
    }
    f.finish(format!(
        "{} signing key{}: {}",
        keys.len(),
        if keys.len() == 1 { "" } else { "s" },
        described.join(", ")
    ))
}

/// The keys of the JWKS answer; None, with the failure on `f`, when it is not a key set
/// or has no key. A suspiciously long list warns.
fn read_keys(
    f: &mut Findings,
    response: &crate::http::Response,
    proxied: bool,
) -> Option<Vec<serde_json::Value>> {
    f.detail("status", response.status.as_u16());
    if response.status.as_u16() != 200 {
        let (finding, hint) = unexpected_or(&format!("GET {}", paths::JWKS), response);
        f.fail(finding, hint.unwrap_or_else(|| if proxied {
            "oauth2-proxy fetches the keys from discovery's jwks_uri to verify id_tokens; it must answer the JWKS"
        } else {
            "Cloudflare fetches the keys from the Certificate URL to verify id_tokens; it must answer the JWKS"
        }.to_string()));
        return None;
    }
    let set: serde_json::Value = match serde_json::from_slice(&response.body) {
        Ok(v) => v,
        Err(_) => {
            f.fail(
                format!("{} is not JSON", paths::JWKS),
                "the path is answered by something other than Pocket ID".to_string(),
            );
            return None;
        }
    };
    let keys = set
        .get("keys")
        .and_then(|k| k.as_array())
        .cloned()
        .unwrap_or_default();
    f.detail("keys", keys.len());
    if keys.is_empty() {
        let who = if proxied {
            "oauth2-proxy cannot verify any id_token (its callback answers its generic 500)"
        } else {
            "Cloudflare cannot verify any id_token ('Failed to verify oidc token with fresh keys')"
        };
        f.fail(
            "the JWKS has no keys",
            format!("{who}; Pocket ID publishes its signing key here — check its logs for a key that failed to load (ENCRYPTION_KEY) and whether a proxy serves a stale file"),
        );
        return None;
    }
    if keys.len() > MANY_KEYS {
        f.warn(
            format!("the JWKS has {} keys", keys.len()),
            "Pocket ID publishes one signing key (two during a rotation); a long list suggests a proxy serving another key set, or keys that were never retired",
        );
    }
    Some(keys)
}

/// Judges key `i` of the set: it must parse, be sound, sign, have a kid of its own (in
/// `kids`, the ones seen) and an algorithm discovery `advertised` and Access verifies.
/// Its description for the summary; None when it is unusable.
fn judge_key(
    f: &mut Findings,
    i: usize,
    key: &serde_json::Value,
    kids: &mut HashSet<String>,
    (advertised, proxied): (Option<&[String]>, bool),
) -> Option<String> {
    let kid = key.get("kid").and_then(|k| k.as_str()).map(str::to_string);
    let label = kid.clone().unwrap_or_else(|| format!("#{i}"));
    let jwk: jsonwebtoken::jwk::Jwk = match serde_json::from_value(key.clone()) {
        Ok(j) => j,
        Err(e) => {
            f.fail(format!("key {label} is not a usable JWK: {}", crate::text::json_problem(&e)), "Cloudflare cannot use a malformed key; restart Pocket ID so that it republishes its keys, or rotate them: pocket-id key-rotate --alg RS256");
            return None;
        }
    };
    if let Err((finding, hint)) = judge_key_material(&label, key) {
        f.fail(finding, hint);
        return None;
    }
    if let Err(e) = jsonwebtoken::DecodingKey::from_jwk(&jwk) {
        f.fail(format!("key {label} does not parse: {}", super::jwt_problem(&e)), "Cloudflare cannot use a malformed key; restart Pocket ID so that it republishes its keys, or rotate them: pocket-id key-rotate --alg RS256");
        return None;
    }
    if key
        .get("use")
        .and_then(|u| u.as_str())
        .is_some_and(|u| u != "sig")
    {
        f.warn(
            format!("key {label} is not a signing key (use is not sig)"),
            "Cloudflare verifies id_tokens with signing keys only; rotate Pocket ID's key: pocket-id key-rotate --alg RS256",
        );
    }
    match &kid {
        Some(k) if !kids.insert(k.clone()) => f.fail(
            format!("kid {k} appears twice"),
            "verifiers pick keys by kid; every key needs its own".to_string(),
        ),
        None => f.warn(format!("key {label} has no kid"), "Pocket ID's keys carry a kid that its tokens name; a key without one suggests a proxy serving another JWKS at this path"),
        _ => {}
    }
    let alg = key.get("alg").and_then(|a| a.as_str()).map(str::to_string);
    if let Some(alg) = &alg {
        judge_alg(f, &label, alg, advertised, proxied);
    }
    Some(describe_key(key, alg.as_deref()))
}

/// Judges key `label`'s algorithm: one discovery `advertised` (when it lists any), and
/// one Access verifies.
fn judge_alg(
    f: &mut Findings,
    label: &str,
    alg: &String,
    advertised: Option<&[String]>,
    proxied: bool,
) {
    if let Some(list) = advertised
        && !list.is_empty()
        && !list.contains(alg)
    {
        f.fail(
            format!(
                "key {label} is {alg}, but discovery advertises {}",
                list.join(", ")
            ),
            "restart Pocket ID after a key rotation so that discovery and JWKS agree",
        );
    }
    if proxied {
        if !crate::oauth2proxy::VERIFIED_ALGS.contains(&alg.as_str()) {
            f.fail(
                format!("key {label} is {alg}, which oauth2-proxy cannot verify"),
                format!(
                    "oauth2-proxy verifies {}; rotate Pocket ID's key: pocket-id key-rotate --alg RS256",
                    crate::oauth2proxy::VERIFIED_ALGS.join(", ")
                ),
            );
        }
    } else if !ACCESS_ALGS.contains(&alg.as_str()) {
        f.fail(
            format!("key {label} is {alg}, which Cloudflare Access cannot verify"),
            format!(
                "Access supports {}; rotate Pocket ID's key: pocket-id key-rotate --alg RS256",
                ACCESS_ALGS.join(", ")
            ),
        );
    }
}

/// A key in a few words for the summary: its algorithm, type and (RSA) modulus size.
fn describe_key(key: &serde_json::Value, alg: Option<&str>) -> String {
    let kty = key.get("kty").and_then(|a| a.as_str()).unwrap_or("?");
    let size = key
        .get("n")
        .and_then(|n| n.as_str())
        .and_then(|n| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(n.trim_end_matches('='))
                .ok()
        })
        .map(|n| format!(" {}", n.len() * 8))
        .unwrap_or_default();
    format!("{} ({kty}{size})", alg.unwrap_or("no alg"))
}

/// More keys than a Pocket ID publishes, by far.
const MANY_KEYS: usize = 16;

/// The smallest RSA modulus a verifier should accept.
const MIN_RSA_BITS: usize = 2048;

/// Whether a JWK's key material is sound: no secret key in a public set, RSA of 2048
/// bits or more with a usable exponent, an EC point on its curve. Decoding is bounded by
/// the body cap the key set was read under.
pub(crate) fn judge_key_material(
    label: &str,
    key: &serde_json::Value,
) -> Result<(), (String, String)> {
    let b64 = |name: &str| {
        key.get(name).and_then(|v| v.as_str()).and_then(|v| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(v.trim_end_matches('='))
                .ok()
        })
    };
    let rotate = "rotate Pocket ID's key: pocket-id key-rotate --alg RS256, then restart it";
    match key.get("kty").and_then(|k| k.as_str()).unwrap_or("") {
        "oct" => Err((
            format!("key {label} is a symmetric (oct) key: a secret published in a public key set"),
            "anyone who reads the JWKS can sign tokens with it: remove it from whatever serves this URL and change every secret it protects; Pocket ID itself publishes only public keys".to_string(),
        )),
        "RSA" => {
            let n = b64("n").unwrap_or_default();
            let bits = n
                .iter()
                .position(|b| *b != 0)
                .map_or(0, |first| (n.len() - first) * 8 - n[first].leading_zeros() as usize);
            if bits < MIN_RSA_BITS {
                return Err((
                    format!("key {label} is RSA with a {bits}-bit modulus, under {MIN_RSA_BITS}"),
                    rotate.to_string(),
                ));
            }
            let e = b64("e").unwrap_or_default();
            let exponent_ok = e.iter().any(|b| *b != 0)
                && e.last().is_some_and(|last| last & 1 == 1)
                && !(e.iter().rev().skip(1).all(|b| *b == 0) && e.last() == Some(&1));
            if !exponent_ok {
                return Err((
                    format!("key {label} has an unusable RSA exponent"),
                    rotate.to_string(),
                ));
            }
            Ok(())
        }
        "EC" => {
            use aws_lc_rs::signature as sig;
            let alg: &'static dyn sig::VerificationAlgorithm =
                match key.get("crv").and_then(|c| c.as_str()).unwrap_or("") {
                    "P-256" => &sig::ECDSA_P256_SHA256_ASN1,
                    "P-384" => &sig::ECDSA_P384_SHA384_ASN1,
                    "P-521" => &sig::ECDSA_P521_SHA512_ASN1,
                    other => {
                        return Err((
                            format!(
                                "key {label} is on curve '{}', which Cloudflare Access cannot verify",
                                crate::redact::terminal_safe(other)
                            ),
                            rotate.to_string(),
                        ));
                    }
                };
            let mut point = vec![4u8];
            point.extend(b64("x").unwrap_or_default());
            point.extend(b64("y").unwrap_or_default());
            sig::ParsedPublicKey::new(alg, &point).map(|_| ()).map_err(|_| {
                (
                    format!("key {label}'s EC point is not on its curve"),
                    rotate.to_string(),
                )
            })
        }
        _ => Ok(()),
    }
}

/// `idp.token`: the token endpoint answers like Pocket ID's OAuth token endpoint.
///
/// Pocket ID logs every token request it refuses before the client has authenticated at
/// error level, with a stack trace: a monitor running every minute must not fill its
/// log. So with the client secret the probe authenticates and asks for a token for a
/// resource nobody defines (refused as `invalid_target`, logged at info level); with a
/// passkey the login itself proves the endpoint ([`token_proved_by_login`]) and this
/// runs only when the login failed; without either, a bogus code is sent.
pub async fn token(config: &Config, http: &Http) -> CheckResult {
    let mut f = Findings::start(ids::IDP_TOKEN);
    let authenticated = config
        .client_id
        .as_deref()
        .zip(config.client_secret.as_ref());
    if authenticated.is_some() && !config.idp_named() {
        return CheckResult::skip(ids::IDP_TOKEN, config.idp_not_named("the client secret"));
    }
    let request = token_request(config, authenticated, &mut f);
    let response = match http.send(ids::IDP_TOKEN, request.patient()).await {
        Ok(r) => r,
        Err(e) => {
            f.request_failed(format!("POST {}", paths::TOKEN), &e);
            return f.finish("");
        }
    };
    let status = response.status.as_u16();
    f.detail("status", status);
    let oauth: Option<OAuthError> = serde_json::from_slice(&response.body).ok();
    if let Some(err) = oauth.filter(|_| (400..500).contains(&status)) {
        return judge_oauth_error(f, &err, status, authenticated.map(|(id, _)| id));
    }
    if let Some((client_id, _)) = authenticated
        && status == 200
        && response.is_json()
    {
        // A resource with the probe's name exists; the client authenticated all the same.
        return f.finish(format!(
            "authenticates client {client_id} with its secret and issues tokens (HTTP 200)"
        ));
    }
    let (finding, hint) = token_failure(config, &response);
    f.fail(finding, hint);
    f.finish("")
}

/// The probe of the token endpoint: with the client secret, a client-credentials request
/// for a resource nobody defines; without, a bogus code (noted on `f`: Pocket ID logs
/// it at error level).
fn token_request(
    config: &Config,
    authenticated: Option<(&str, &redact::Secret)>,
    f: &mut Findings,
) -> Request {
    let url = endpoint(config, paths::TOKEN);
    if let Some((client_id, secret)) = authenticated {
        return Request::post_form(
            url,
            vec![
                ("grant_type".to_string(), "client_credentials".to_string()),
                (
                    "resource".to_string(),
                    pocketid::UNKNOWN_RESOURCE.to_string(),
                ),
            ],
        )
        .header("authorization", &pocketid::client_basic(client_id, secret));
    }
    f.detail(
        "note",
        "Pocket ID logs this probe (a bogus code) at error level; with --passkey or --client-secret-file ssoprobe proves the endpoint without it",
    );
    let mut form = vec![
        ("grant_type".to_string(), "authorization_code".to_string()),
        (
            "code".to_string(),
            format!("ssoprobe-bogus-{}", uuid::Uuid::new_v4().simple()),
        ),
        (
            "client_id".to_string(),
            config
                .client_id
                .clone()
                .unwrap_or_else(|| "ssoprobe-probe".into()),
        ),
    ];
    if let Some(team) = &config.team_domain {
        form.push(("redirect_uri".to_string(), cloudflare::callback_url(team)));
    }
    Request::post_form(url, form)
}

/// The verdict on an OAuth error answer (HTTP 4xx): the expected refusal of the probe,
/// unless it says the client secret (of `client_id`, when one was sent) is wrong.
fn judge_oauth_error(
    mut f: Findings,
    err: &OAuthError,
    status: u16,
    client_id: Option<&str>,
) -> CheckResult {
    f.detail("error", err.error.clone());
    if err.error.contains(' ') {
        f.warn(
            format!("answers a non-standard error \"{}\" (HTTP {status})", err.error),
            "Pocket ID before v2.10 had a hand-written token endpoint; upgrade to a current v2 release".to_string(),
        );
    }
    if let Some(client_id) = client_id {
        if err.error == "invalid_client" {
            f.fail(
                format!("Pocket ID refuses the client secret of client {client_id} (invalid_client)"),
                "the secret in --client-secret-file is not the client's; if Cloudflare holds the same one its token exchange fails too ('Failed to exchange code for token'): create a new secret in Pocket ID → OIDC Clients and set it in both",
            );
            return f.finish("");
        }
        return f.finish(format!(
            "authenticates client {client_id} with its secret and answers like an OAuth token endpoint ({} for an unknown resource, HTTP {status})",
            err.error
        ));
    }
    let expected = if EXPECTED_TOKEN_ERRORS.contains(&err.error.as_str()) {
        ""
    } else {
        " (an unusual answer to a bogus code)"
    };
    f.finish(format!(
        "answers a bogus code with {} (HTTP {status}) like an OAuth token endpoint{expected}",
        err.error
    ))
}

/// `idp.token` when the login proved the endpoint: Access redeemed Pocket ID's code there.
/// `idp.token` proved by the token request the callback check sent shaped like Access's
/// code exchange: Pocket ID answered it (HTTP `status`) with an OAuth error.
pub fn token_proved_by_request(status: &str) -> CheckResult {
    let mut f = Findings::start(ids::IDP_TOKEN);
    f.detail("proved_by", ids::ACCESS_CALLBACK);
    f.finish(format!(
        "answered the token request shaped like Access's code exchange (access.callback) with an OAuth error (HTTP {status}), like an OAuth token endpoint; no request of its own"
    ))
}

pub fn token_proved_by_login(gateway: Gateway) -> CheckResult {
    let mut f = Findings::start(ids::IDP_TOKEN);
    let (callback, whom) = match gateway {
        Gateway::Access => (ids::ACCESS_CALLBACK, "Cloudflare"),
        Gateway::OAuth2Proxy => (ids::O2P_CALLBACK, "oauth2-proxy"),
    };
    f.detail("proved_by", callback);
    f.finish(format!(
        "{} redeemed the login's code at {} ({callback} passed), so the endpoint works for {whom}",
        gateway.who(),
        paths::TOKEN,
    ))
}

/// Finding and hint for a token endpoint that did not answer OAuth JSON.
fn token_failure(config: &Config, response: &crate::http::Response) -> (String, String) {
    let status = response.status.as_u16();
    let challenge = cloudflare::classify(response) == Some(cloudflare::EdgePage::Challenge);
    let (finding, hint) = if challenge {
        (
            format!(
                "POST {}: Cloudflare answers a challenge (HTTP {status}, cf-mitigated: challenge)",
                paths::TOKEN
            ),
            format!(
                "Cloudflare Access redeems codes server-side (User-Agent cloudflare-access, from AS13335) and cannot solve challenges ('Failed to exchange code for token'); add a WAF custom rule on {} that skips security features for path {} (or for AS13335), and turn off Bot Fight Mode for the zone",
                config.idp.host_str().unwrap_or_default(),
                paths::TOKEN
            ),
        )
    } else if status == 404 || status == 405 {
        (
            format!("POST {} answers HTTP {status}", paths::TOKEN),
            format!(
                "the request does not reach Pocket ID's token endpoint: a reverse proxy is not forwarding /api to Pocket ID{}",
                if behind_proxy(config) {
                    "; oauth2-proxy's callback then answers its generic 500".to_string()
                } else {
                    format!(
                        ", or Cloudflare's Token URL path is wrong (it must be {}{}); Cloudflare then shows 'Failed to exchange code for token'",
                        normalise_base(&config.idp),
                        paths::TOKEN
                    )
                }
            ),
        )
    } else if (200..300).contains(&status) {
        (
            format!("POST {} answers HTTP {status} {}, not an OAuth error", paths::TOKEN, if response.is_json() { "JSON" } else { "with a page" }),
            "the path is answered by something other than Pocket ID's token endpoint (a proxy rule or a single-page app fallback)".to_string(),
        )
    } else {
        let (finding, hint) = unexpected_or(&format!("POST {}", paths::TOKEN), response);
        (
            finding,
            hint.unwrap_or_else(|| {
                if behind_proxy(config) {
                    "oauth2-proxy redeems the login code here; it must answer OAuth JSON"
                } else {
                    "Cloudflare redeems the login code here; it must answer OAuth JSON"
                }
                .to_string()
            }),
        )
    };
    (finding, hint)
}

/// `idp.health`: Pocket ID's `/healthz` answers 204.
pub async fn health(config: &Config, http: &Http) -> CheckResult {
    let mut f = Findings::start(ids::IDP_HEALTH);
    let response = match http.send(ids::IDP_HEALTH, health_request(config)).await {
        Ok(r) => r,
        Err(e) => {
            f.request_failed(format!("GET {}", paths::HEALTH), &e);
            return f.finish("");
        }
    };
    f.detail("status", response.status.as_u16());
    match response.status.as_u16() {
        204 => {}
        200 => f.warn(
            format!("{} answers 200, Pocket ID answers 204", paths::HEALTH),
            "something other than Pocket ID answers this path".to_string(),
        ),
        _ => {
            let (finding, hint) = unexpected_or(&format!("GET {}", paths::HEALTH), &response);
            f.fail(
                finding,
                hint.unwrap_or_else(|| {
                    "Pocket ID is down or the proxy does not forward /healthz to it".to_string()
                }),
            );
        }
    }
    f.finish(format!(
        "{} answers 204 in {} ms",
        paths::HEALTH,
        response.elapsed.as_millis()
    ))
}

#[cfg(test)]
mod tests {

    #[test]
    fn an_algorithm_is_judged_against_the_gateway_that_verifies_it() {
        let failed = |alg: &str, proxied: bool| {
            let mut f = Findings::start(ids::IDP_JWKS);
            judge_alg(&mut f, "k", &alg.to_string(), None, proxied);
            f.failed()
        };
        // Pocket ID can rotate to EdDSA: oauth2-proxy verifies it, Access does not.
        assert!(failed("EdDSA", false));
        assert!(!failed("EdDSA", true));
        assert!(!failed("RS256", false));
        assert!(!failed("RS256", true));
        assert!(failed("HS256", true));
    }

    use super::*;

    fn real_key() -> serde_json::Value {
        let set: serde_json::Value =
            serde_json::from_str(include_str!("../../fixtures/pocketid/jwks.json")).unwrap();
        set["keys"][0].clone()
    }

    #[test]
    fn pocket_ids_real_key_is_sound() {
        assert!(judge_key_material("k", &real_key()).is_ok());
    }

    #[test]
    fn unsound_keys_fail() {
        let oct = serde_json::json!({"kty": "oct", "k": "c2VjcmV0"});
        assert!(
            judge_key_material("k", &oct)
                .unwrap_err()
                .0
                .contains("symmetric")
        );

        let mut small = real_key();
        small["n"] = "tVO4irw_R2YgGqAcxURrNrxJjzGSzbyfp7TeYa0zfmrDU_2VCngp2cpu1XukNckOnbTLXsHjmB-YmfsosIoqBuA".into();
        assert!(
            judge_key_material("k", &small)
                .unwrap_err()
                .0
                .contains("modulus")
        );

        for e in ["AQ", "AA", "AAE", "AQAA"] {
            let mut weak = real_key();
            weak["e"] = e.into();
            assert!(
                judge_key_material("k", &weak)
                    .unwrap_err()
                    .0
                    .contains("exponent"),
                "{e}"
            );
        }

        let off_curve = serde_json::json!({
            "kty": "EC", "crv": "P-256",
            "x": "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "y": "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
        });
        assert!(
            judge_key_material("k", &off_curve)
                .unwrap_err()
                .0
                .contains("curve")
        );
    }

    #[test]
    fn a_huge_key_is_judged_without_a_stall() {
        let mut huge = real_key();
        huge["n"] = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(vec![0xffu8; 2048])
            .into();
        assert!(judge_key_material("k", &huge).is_ok());
    }
}
