//! The lab over HTTPS on loopback, as a client sees it: a real TLS client that trusts
//! only the lab CA, reaches the hosts through `resolve` (like `--resolve`) and
//! follows no redirects.

mod doctor;
mod o2p;
mod softkey;

use super::*;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::header::{HeaderMap, SET_COOKIE};
use reqwest::redirect::Policy;
use reqwest::{Client, Response, StatusCode};
use serde_json::Value;
use std::collections::HashMap;
use std::time::Duration;
use url::Url;

/// A running lab and a client routed to it.
struct Probe {
    lab: Lab,
    client: Client,
}

async fn start(faults: &[Fault]) -> Probe {
    start_as(Variant::Classic, faults).await
}

/// The lab with `faults`, showing `variant`'s face.
async fn start_as(variant: Variant, faults: &[Fault]) -> Probe {
    let config = LabConfig::default()
        .with_faults(faults.to_vec())
        .with_variant(variant);
    let lab = Lab::start(config).await.expect("the lab starts");
    let client = client(&lab, |b| b);
    Probe { lab, client }
}

/// A client that trusts only the lab CA, with `tune` applied.
fn client(
    lab: &Lab,
    tune: impl FnOnce(reqwest::ClientBuilder) -> reqwest::ClientBuilder,
) -> Client {
    let ca = reqwest::Certificate::from_pem(lab.ca_pem().as_bytes()).expect("the CA is PEM");
    let mut builder = Client::builder()
        .redirect(Policy::none())
        .tls_certs_only([ca])
        .tls_info(true)
        .timeout(Duration::from_secs(5));
    for host in [SERVICE_HOST, TEAM_HOST, IDP_HOST, CF_API_HOST] {
        builder = builder.resolve(host, lab.addr());
    }
    tune(builder).build().expect("a client")
}

impl Probe {
    /// `https://host/path`, with the lab's port when it is not 443 (`resolve` keeps
    /// the URL's port).
    fn url(&self, host: &str, path: &str) -> String {
        self.route(&format!("https://{host}{path}"))
    }

    /// A Location (absolute, or relative to `base`, the URL that answered) pointed
    /// at the lab's port.
    fn follow(&self, base: &str, location: &str) -> String {
        let base = Url::parse(base).expect("an absolute base");
        self.route(base.join(location).expect("a URL reference").as_str())
    }

    /// An absolute URL from a Location header, pointed at the lab's port.
    fn route(&self, url: &str) -> String {
        let mut url = Url::parse(url).expect("an absolute URL");
        let port = self.lab.addr().port();
        if port != 443 {
            url.set_port(Some(port)).expect("https URLs take a port");
        }
        url.to_string()
    }

    async fn get(&self, url: &str) -> Response {
        self.client.get(url).send().await.expect("a response")
    }

    async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> Response {
        self.client
            .post(self.url(IDP_HOST, path))
            .form(form)
            .send()
            .await
            .expect("a response")
    }

    /// Service → team login → the authorize URL Access sends the browser to.
    async fn authorize_url(&self) -> Url {
        let first = self.get(&self.url(SERVICE_HOST, "/")).await;
        assert_eq!(first.status(), StatusCode::FOUND);
        let login = self.get(&self.route(location(&first))).await;
        assert_eq!(login.status(), StatusCode::FOUND);
        Url::parse(location(&login)).expect("an absolute authorize URL")
    }

    /// GET of `url` on the IdP with one query parameter replaced (or removed).
    async fn authorize_with(&self, url: &Url, key: &str, value: Option<&str>) -> Response {
        let mut url = url.clone();
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(k, _)| k != key)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        {
            let mut query = url.query_pairs_mut();
            query.clear();
            for (k, v) in &pairs {
                query.append_pair(k, v);
            }
            if let Some(value) = value {
                query.append_pair(key, value);
            }
        }
        self.get(&self.route(url.as_str())).await
    }
}

fn header<'a>(response: &'a Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

fn location(response: &Response) -> &str {
    header(response, "location")
}

fn cookies(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_string))
        .collect()
}

fn query(url: &Url) -> HashMap<String, String> {
    url.query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn assert_edge(response: &Response) {
    assert_eq!(header(response, "server"), "cloudflare");
    let ray = header(response, "cf-ray");
    let (hex, colo) = ray.split_once('-').expect("cf-ray has a colo");
    assert!(is_hex(hex, 16), "cf-ray {ray}");
    assert_eq!(colo, "LAB");
}

/// The not-after of the certificate the server presented, in Unix seconds.
fn peer_not_after(response: &Response) -> i64 {
    let info = response
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .expect("TLS info");
    let der = info.peer_certificate().expect("a peer certificate");
    let (_, cert) = x509_parser::parse_x509_certificate(der).expect("X.509");
    cert.validity().not_after.timestamp()
}

fn days_left(not_after: i64) -> f64 {
    (not_after - wire::unix_now() as i64) as f64 / 86_400.0
}

#[test]
fn fault_names_round_trip() {
    assert_eq!(Fault::ALL.len(), 83);
    for fault in Fault::ALL {
        assert_eq!(fault.name().parse::<Fault>(), Ok(*fault));
        assert_eq!(fault.to_string(), fault.name());
        assert!(!fault.description().is_empty());
        assert!(!fault.description().contains('\n'));
    }
    let mut names: Vec<_> = Fault::ALL.iter().map(|f| f.name()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), Fault::ALL.len());
}

#[test]
fn public_constants_agree_with_each_other() {
    assert_eq!(TEAM_HOST, format!("{TEAM}.cloudflareaccess.com"));
    assert_eq!(
        CALLBACK_URL,
        format!("https://{TEAM_HOST}/cdn-cgi/access/callback")
    );
    assert!(is_hex(AUD, 64));
    assert!(uuid::Uuid::parse_str(CLIENT_ID).is_ok());
}

#[test]
fn unknown_fault_names_the_value_and_lists_the_valid_ones() {
    let error = "tls-broken".parse::<Fault>().expect_err("not a fault");
    let text = error.to_string();
    assert!(text.contains("tls-broken"), "{text}");
    for fault in Fault::ALL {
        assert!(text.contains(fault.name()), "{text} lacks {fault}");
    }
}

#[tokio::test]
async fn starts_and_routes_like_a_user_would() {
    // (How fast it starts is the benchmark's business: bench/critical-path.sh's RTT-0 runs.)
    let p = start(&[Fault::JwksEmpty, Fault::JwksEmpty]).await;
    assert_eq!(p.lab.faults(), &[Fault::JwksEmpty]);
    assert!(p.lab.addr().ip().is_loopback());
    let args = p.lab.route_args();
    assert_eq!(args.len(), 6);
    let ip = p.lab.addr().ip();
    if p.lab.addr().port() == 443 {
        assert_eq!(args[0], "--resolve");
        assert_eq!(args[1], format!("{SERVICE_HOST}:443:{ip}"));
        assert_eq!(args[5], format!("{IDP_HOST}:443:{ip}"));
    } else {
        assert_eq!(args[0], "--connect-to");
        assert_eq!(
            args[3],
            format!("{TEAM_HOST}:443:{ip}:{}", p.lab.addr().port())
        );
    }
    let debug = format!("{:?}", p.lab);
    assert!(!debug.contains(p.lab.client_secret()), "{debug}");
    assert!(!debug.contains(p.lab.static_api_key()), "{debug}");
    assert!(!debug.contains(p.lab.service_token().1), "{debug}");
    assert_eq!(p.lab.client_secret().len(), 32);
    assert!(p.lab.static_api_key().len() >= 16);
    let (id, secret) = p.lab.service_token();
    let hex = id.strip_suffix(".access").expect("a service token id");
    assert!(is_hex(hex, 32), "{id}");
    assert!(is_hex(secret, 64));

    // A host the lab does not serve.
    let misdirected = p
        .client
        .get(p.url(SERVICE_HOST, "/"))
        .header("host", "nope.example.com")
        .send()
        .await
        .expect("a response");
    assert_eq!(misdirected.status(), StatusCode::MISDIRECTED_REQUEST);
    p.lab.shutdown().await;
}

#[tokio::test]
async fn service_redirects_anonymous_users_to_the_team_login() {
    let p = start(&[]).await;
    let r = p
        .get(&p.url(SERVICE_HOST, "/api/build-info?x=1&y=%2F"))
        .await;
    assert_eq!(r.status(), StatusCode::FOUND);
    assert_edge(&r);
    assert_eq!(
        header(&r, "cache-control"),
        "private, max-age=0, no-store, no-cache, must-revalidate, post-check=0, pre-check=0"
    );
    assert_eq!(header(&r, "expires"), "Thu, 01 Jan 1970 00:00:01 GMT");
    assert_eq!(header(&r, "content-type"), "text/html");
    assert_eq!(header(&r, "access-control-allow-credentials"), "true");
    assert_eq!(
        header(&r, "www-authenticate"),
        "Cloudflare-Access resource_metadata=\"https://service.example.com/.well-known/cloudflare-access-protected-resource/api/build-info\""
    );
    let raw_location = location(&r).to_string();
    assert!(
        raw_location.starts_with(&format!(
            "https://xyz.cloudflareaccess.com/cdn-cgi/access/login/service.example.com?kid={AUD}&redirect_url=%2Fapi%2Fbuild-info%3Fx%3D1%26y%3D%252F&meta="
        )),
        "{raw_location}"
    );
    let set_cookies = cookies(r.headers());
    assert_eq!(set_cookies.len(), 1);
    let cookie = &set_cookies[0];
    let value = cookie
        .strip_prefix("CF_AppSession=n")
        .and_then(|c| c.split(';').next())
        .expect("CF_AppSession");
    assert!(is_hex(value, 16), "{cookie}");
    assert!(cookie.contains("; Expires="), "{cookie}");
    assert!(
        cookie.ends_with(" GMT; Path=/; Secure; HttpOnly"),
        "{cookie}"
    );
    let body = r.text().await.expect("a body");
    assert_eq!(body.len(), 143);
    assert!(body.contains("302 Found"));

    // The meta JWT verifies with the current key of the team's certs.
    let login = Url::parse(&raw_location).expect("URL");
    let meta = query(&login)["meta"].clone();
    let certs: Value = p
        .get(&p.url(TEAM_HOST, "/cdn-cgi/access/certs"))
        .await
        .json()
        .await
        .expect("certs JSON");
    let current: Jwk = serde_json::from_value(certs["keys"][0].clone()).expect("a JWK");
    let mut validation = Validation::new(Algorithm::RS256);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.set_audience(&[AUD]);
    let decoded = jsonwebtoken::decode::<Value>(
        &meta,
        &DecodingKey::from_jwk(&current).expect("a decoding key"),
        &validation,
    )
    .expect("meta verifies");
    assert_eq!(
        decoded.header.kid.as_deref(),
        current.common.key_id.as_deref()
    );
    assert_eq!(decoded.claims["type"], "meta");
    assert_eq!(decoded.claims["hostname"], SERVICE_HOST);
    assert_eq!(decoded.claims["redirect_url"], "/api/build-info?x=1&y=%2F");
    assert_eq!(decoded.claims["auth_status"], "NONE");

    // HEAD gets the same redirect.
    let head = p
        .client
        .head(p.url(SERVICE_HOST, "/"))
        .send()
        .await
        .expect("a response");
    assert_eq!(head.status(), StatusCode::FOUND);
    assert!(location(&head).contains("redirect_url=%2F&"));
}

#[tokio::test]
async fn team_login_sends_the_browser_to_pocket_id_with_pkce() {
    let p = start(&[]).await;
    let first = p.get(&p.url(SERVICE_HOST, "/admin/")).await;
    let login = p.get(&p.route(location(&first))).await;
    assert_eq!(login.status(), StatusCode::FOUND);
    assert_edge(&login);
    let session = cookies(login.headers());
    assert_eq!(session.len(), 1);
    assert!(session[0].starts_with("CF_Session="), "{session:?}");
    assert!(
        session[0].ends_with("; Path=/; Secure; HttpOnly; SameSite=None"),
        "{session:?}"
    );
    let raw = location(&login);
    assert!(
        raw.starts_with(&format!(
            "https://id.example.com/authorize?client_id={CLIENT_ID}&redirect_uri=https%3A%2F%2Fxyz.cloudflareaccess.com%2Fcdn-cgi%2Faccess%2Fcallback&response_type=code&scope=openid+email+profile&state="
        )),
        "{raw}"
    );
    let authorize = Url::parse(raw).expect("URL");
    let q = query(&authorize);
    assert_eq!(q["redirect_uri"], CALLBACK_URL);
    assert_eq!(q["scope"], "openid email profile");
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["code_challenge"].len(), 43);
    let (mac, payload) = q["state"].split_once('.').expect("state has a dot");
    assert!(is_hex(mac, 64));
    assert!(!payload.is_empty());

    // A kid that is not the application's, another hostname, no kid at all.
    let wrong_kid = p
        .get(&p.url(
            TEAM_HOST,
            &format!(
                "/cdn-cgi/access/login/{SERVICE_HOST}?kid={}",
                "0".repeat(64)
            ),
        ))
        .await;
    assert_eq!(wrong_kid.status(), StatusCode::NOT_FOUND);
    assert!(header(&wrong_kid, "content-type").starts_with("text/html"));
    let other_host = p
        .get(&p.url(
            TEAM_HOST,
            &format!("/cdn-cgi/access/login/other.example.com?kid={AUD}"),
        ))
        .await;
    assert_eq!(other_host.status(), StatusCode::NOT_FOUND);
    let no_kid = p
        .get(&p.url(TEAM_HOST, "/cdn-cgi/access/login/service.example.com"))
        .await;
    assert_eq!(no_kid.status(), StatusCode::BAD_REQUEST);
    let text = no_kid.text().await.expect("a body");
    assert!(text.contains("<title>Error ・ Cloudflare Access</title>"));
}

#[tokio::test]
async fn access_certs_publish_current_and_previous_keys() {
    let p = start(&[]).await;
    let r = p.get(&p.url(TEAM_HOST, "/cdn-cgi/access/certs")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_edge(&r);
    let certs: Value = r.json().await.expect("JSON");
    let keys = certs["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 2);
    for key in keys {
        assert!(is_hex(key["kid"].as_str().unwrap_or(""), 64), "{key}");
        assert_eq!(key["kty"], "RSA");
        assert_eq!(key["alg"], "RS256");
        assert_eq!(key["use"], "sig");
        assert_eq!(key["e"], "AQAB");
        let jwk: Jwk = serde_json::from_value(key.clone()).expect("a JWK");
        DecodingKey::from_jwk(&jwk).expect("usable");
    }
    assert_ne!(keys[0]["kid"], keys[1]["kid"]);
    assert_eq!(certs["public_cert"]["kid"], keys[0]["kid"]);
    let public_certs = certs["public_certs"].as_array().expect("public_certs");
    assert_eq!(public_certs.len(), 2);
    for (cert, key) in public_certs.iter().zip(keys) {
        assert_eq!(cert["kid"], key["kid"]);
        let pem = cert["cert"].as_str().expect("PEM");
        let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).expect("PEM");
        pem.parse_x509().expect("a certificate");
    }
}

#[tokio::test]
async fn pocket_id_discovery_jwks_and_health() {
    let p = start(&[]).await;
    let r = p
        .get(&p.url(IDP_HOST, "/.well-known/openid-configuration"))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        header(&r, "content-type"),
        "application/json; charset=utf-8"
    );
    assert_eq!(header(&r, "access-control-allow-origin"), "*");
    assert!(!header(&r, "x-request-id").is_empty());
    assert_eq!(header(&r, "cache-control"), "private, no-store");
    let text = r.text().await.expect("a body");
    let doc: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(doc["issuer"], "https://id.example.com");
    assert_eq!(
        doc["authorization_endpoint"],
        "https://id.example.com/authorize"
    );
    assert_eq!(
        doc["token_endpoint"],
        "https://id.example.com/api/oidc/token"
    );
    assert_eq!(
        doc["jwks_uri"],
        "https://id.example.com/.well-known/jwks.json"
    );
    assert_eq!(
        doc["id_token_signing_alg_values_supported"],
        serde_json::json!(["RS256"])
    );
    assert_eq!(
        doc["code_challenge_methods_supported"],
        serde_json::json!(["plain", "S256"])
    );
    assert_eq!(doc.as_object().map(|o| o.len()), Some(27));
    let rfc8414 = p
        .get(&p.url(IDP_HOST, "/.well-known/oauth-authorization-server"))
        .await
        .text()
        .await
        .expect("a body");
    assert_eq!(rfc8414, text);

    let jwks: Value = p
        .get(&p.url(IDP_HOST, "/.well-known/jwks.json"))
        .await
        .json()
        .await
        .expect("JSON");
    let keys = jwks["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 1);
    let kid = keys[0]["kid"].as_str().expect("kid");
    assert_eq!(kid.len(), 11);
    assert_eq!(keys[0]["use"], "sig");
    assert_eq!(keys[0]["alg"], "RS256");
    let jwk: Jwk = serde_json::from_value(keys[0].clone()).expect("a JWK");
    DecodingKey::from_jwk(&jwk).expect("usable");

    for method in [reqwest::Method::GET, reqwest::Method::HEAD] {
        let health = p
            .client
            .request(method, p.url(IDP_HOST, "/healthz"))
            .send()
            .await
            .expect("a response");
        assert_eq!(health.status(), StatusCode::NO_CONTENT);
        assert_edge(&health);
        assert!(health.text().await.expect("a body").is_empty());
    }

    let spa = p.get(&p.url(IDP_HOST, "/interaction/error?error=x")).await;
    assert_eq!(spa.status(), StatusCode::OK);
    // The shell embeds a per-request nonce, so Pocket ID sets its own Cache-Control.
    assert_eq!(header(&spa, "cache-control"), "no-store");
    assert!(
        spa.text()
            .await
            .expect("a body")
            .contains("<title>Pocket ID</title>")
    );
    let unknown = p.get(&p.url(IDP_HOST, "/api/nothing/here")).await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        unknown.text().await.expect("a body"),
        r#"{"error":"API endpoint not found"}"#
    );
}

#[tokio::test]
async fn pocket_id_token_endpoint_answers_like_fosite() {
    let p = start(&[]).await;
    let secret = p.lab.client_secret().to_string();

    let empty = p.post_form("/api/oidc/token", &[]).await;
    assert_eq!(empty.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        header(&empty, "content-type"),
        "application/json;charset=UTF-8"
    );
    assert_eq!(header(&empty, "cache-control"), "no-store");
    assert_eq!(header(&empty, "pragma"), "no-cache");
    assert_eq!(header(&empty, "access-control-allow-origin"), "*");
    let body: Value = empty.json().await.expect("JSON");
    assert_eq!(body["error"], "invalid_request");
    assert_eq!(
        body["error_description"],
        "The request is missing a required parameter, includes an invalid parameter value, includes a parameter more than once, or is otherwise malformed. The POST body can not be empty."
    );

    let bogus_code = [
        ("grant_type", "authorization_code"),
        ("code", "bogus"),
        ("redirect_uri", CALLBACK_URL),
    ];
    // HTTP Basic.
    let basic = p
        .client
        .post(p.url(IDP_HOST, "/api/oidc/token"))
        .basic_auth(CLIENT_ID, Some(&secret))
        .form(&bogus_code)
        .send()
        .await
        .expect("a response");
    assert_eq!(basic.status(), StatusCode::BAD_REQUEST);
    let body: Value = basic.json().await.expect("JSON");
    assert_eq!(body["error"], "invalid_grant");
    assert!(body.get("error_hint").is_none());

    let cases = [
        (
            [
                &bogus_code[..],
                &[("client_id", CLIENT_ID), ("client_secret", &secret)],
            ]
            .concat(),
            StatusCode::BAD_REQUEST,
            "invalid_grant",
        ),
        (
            [
                &bogus_code[..],
                &[("client_id", CLIENT_ID), ("client_secret", "wrong")],
            ]
            .concat(),
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            [&bogus_code[..], &[("client_id", CLIENT_ID)]].concat(),
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            [
                &bogus_code[..],
                &[("client_id", "someone-else"), ("client_secret", "x")],
            ]
            .concat(),
            StatusCode::UNAUTHORIZED,
            "invalid_client",
        ),
        (
            bogus_code.to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            vec![("code", "bogus"), ("client_id", CLIENT_ID)],
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
    ];
    for (form, status, error) in cases {
        let r = p.post_form("/api/oidc/token", &form).await;
        assert_eq!(r.status(), status, "{form:?}");
        let body: Value = r.json().await.expect("JSON");
        assert_eq!(body["error"], error, "{form:?}: {body}");
    }
    let unknown_grant = p
        .post_form(
            "/api/oidc/token",
            &[("grant_type", "password"), ("client_id", "x")],
        )
        .await;
    let body: Value = unknown_grant.json().await.expect("JSON");
    assert_eq!(body["error"], "invalid_request");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap_or("")
            .ends_with("exactly whitelisted the redirect_uri you specified.")
    );

    let get = p.get(&p.url(IDP_HOST, "/api/oidc/token")).await;
    assert_eq!(get.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        get.text().await.expect("a body"),
        r#"{"error":"API endpoint not found"}"#
    );
}

#[tokio::test]
async fn pocket_id_authorize_starts_an_interaction_or_names_the_error() {
    let p = start(&[]).await;
    let authorize = p.authorize_url().await;

    let r = p.get(&p.route(authorize.as_str())).await;
    assert_eq!(r.status(), StatusCode::FOUND);
    assert_edge(&r);
    assert_eq!(header(&r, "content-type"), "text/html; charset=utf-8");
    let id = location(&r)
        .strip_prefix("/interaction?interaction=")
        .expect("a relative interaction Location")
        .to_string();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
    let request_id = header(&r, "x-request-id").to_string();
    assert!(uuid::Uuid::parse_str(&request_id).is_ok());

    let interaction: Value = p
        .get(&p.url(IDP_HOST, &format!("/api/oidc/interactions/{id}")))
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(interaction["id"], id.as_str());
    assert_eq!(interaction["currentStep"], "authenticate");
    assert_eq!(interaction["client"]["name"], "Cloudflare Access");
    assert_eq!(interaction["client"]["id"], CLIENT_ID);
    assert_eq!(
        interaction["scopes"],
        serde_json::json!(["openid", "email", "profile"])
    );

    let missing = p
        .get(&p.url(
            IDP_HOST,
            "/api/oidc/interactions/00000000-0000-4000-8000-000000000000",
        ))
        .await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let request_id = header(&missing, "x-request-id").to_string();
    let body: Value = missing.json().await.expect("JSON");
    assert_eq!(body["error"], "OIDC interaction not found or expired");
    assert_eq!(body["code"], "not_found");
    assert_eq!(body["details"]["resource"], "OIDC interaction");
    assert_eq!(body["request_id"], request_id.as_str());

    // Resuming the interaction without a session asks for sign-in again.
    let resumed = p
        .get(&p.url(IDP_HOST, &format!("/authorize?interaction={id}")))
        .await;
    assert!(location(&resumed).starts_with("/interaction?interaction="));
    let expired = p.get(&p.url(IDP_HOST, "/authorize?interaction=gone")).await;
    assert_eq!(
        location(&expired),
        "/interaction/error?error=The+interaction+session+is+invalid+or+has+expired."
    );

    let unknown_client = p
        .authorize_with(
            &authorize,
            "client_id",
            Some("ca908581-9ca6-47a3-bfdb-a1a00b9af6a1"),
        )
        .await;
    assert_eq!(unknown_client.status(), StatusCode::FOUND);
    assert_eq!(
        location(&unknown_client),
        "/interaction/error?error=The+requested+OAuth+2.0+Client+does+not+exist."
    );
    let other_callback = p
        .authorize_with(
            &authorize,
            "redirect_uri",
            Some("https://evil.example.net/cb"),
        )
        .await;
    assert_eq!(
        location(&other_callback),
        "/interaction/error?error=The+redirect_uri+%27https%3A%2F%2Fevil.example.net%2Fcb%27+is+not+registered+for+this+client."
    );

    let short_state = p.authorize_with(&authorize, "state", Some("short")).await;
    assert_eq!(short_state.status(), StatusCode::SEE_OTHER);
    assert_eq!(header(&short_state, "cache-control"), "no-store");
    assert_eq!(
        location(&short_state),
        "https://xyz.cloudflareaccess.com/cdn-cgi/access/callback?error=invalid_state&error_description=The+state+is+missing+or+does+not+have+enough+characters+and+is+therefore+considered+too+weak.+Request+parameter+%27state%27+must+be+at+least+be+8+characters+long+to+ensure+sufficient+entropy.&state=short"
    );
    let token_flow = p
        .authorize_with(&authorize, "response_type", Some("token"))
        .await;
    assert_eq!(token_flow.status(), StatusCode::SEE_OTHER);
    let q = query(&Url::parse(location(&token_flow)).expect("URL"));
    assert_eq!(q["error"], "unsupported_response_type");
    assert_eq!(q["state"], query(&authorize)["state"]);

    let no_pkce = p.authorize_with(&authorize, "code_challenge", None).await;
    assert_eq!(no_pkce.status(), StatusCode::SEE_OTHER);
    let callback = Url::parse(location(&no_pkce)).expect("URL");
    assert_eq!(callback.as_str().split('?').next(), Some(CALLBACK_URL));
    let q = query(&callback);
    assert_eq!(q["error"], "invalid_request");
    assert!(
        q["error_description"]
            .ends_with("This client requires PKCE, but the 'code_challenge' parameter is missing."),
        "{q:?}"
    );
}

#[tokio::test]
async fn fault_site_public() {
    let p = start(&[Fault::SitePublic]).await;
    let r = p.get(&p.url(SERVICE_HOST, "/")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_edge(&r);
    assert!(cookies(r.headers()).is_empty());
    assert!(
        r.text()
            .await
            .expect("a body")
            .contains("Welcome to service.example.com")
    );
}

#[tokio::test]
async fn fault_wrong_team() {
    let p = start(&[Fault::WrongTeam]).await;
    let r = p.get(&p.url(SERVICE_HOST, "/")).await;
    assert_eq!(r.status(), StatusCode::FOUND);
    let login = Url::parse(location(&r)).expect("URL");
    assert_eq!(login.host_str(), Some("other-team.cloudflareaccess.com"));
    assert_eq!(login.path(), "/cdn-cgi/access/login/service.example.com");
    let q = query(&login);
    assert_eq!(q["kid"], AUD);
    assert_eq!(q["redirect_url"], "/");
    assert!(q.contains_key("meta"));
}

#[tokio::test]
async fn fault_challenge() {
    let p = start(&[Fault::Challenge]).await;
    let r = p.get(&p.url(SERVICE_HOST, "/it's")).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_edge(&r);
    assert_eq!(header(&r, "cf-mitigated"), "challenge");
    assert!(header(&r, "content-type").starts_with("text/html"));
    let body = r.text().await.expect("a body");
    assert!(body.contains("<title>Just a moment...</title>"));
    assert!(body.contains("/cdn-cgi/challenge-platform/"));
    assert!(body.contains(r#"<form id="challenge-form" action="/it%27s?__cf_chl_f_tk="#));
}

#[tokio::test]
async fn fault_no_instant_auth() {
    let p = start(&[Fault::NoInstantAuth]).await;
    let first = p.get(&p.url(SERVICE_HOST, "/")).await;
    let r = p.get(&p.route(location(&first))).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_edge(&r);
    assert_eq!(header(&r, "cf-access-domain"), SERVICE_HOST);
    assert!(cookies(r.headers())[0].starts_with("CF_Session="));
    let page = scraper::Html::parse_document(&r.text().await.expect("a body"));
    let title = scraper::Selector::parse("title").expect("selector");
    let title: String = page.select(&title).flat_map(|t| t.text()).collect();
    assert_eq!(title, "Sign in ・ Cloudflare Access");
    let email = scraper::Selector::parse(".AuthBox input[type=email]").expect("selector");
    assert_eq!(page.select(&email).count(), 1);
    let link = scraper::Selector::parse(".AuthBox a").expect("selector");
    let links: Vec<_> = page.select(&link).collect();
    let pocket_id = links
        .iter()
        .find(|a| a.text().collect::<String>() == "Pocket ID")
        .expect("a Pocket ID button");
    let href = Url::parse(pocket_id.value().attr("href").expect("href")).expect("URL");
    assert_eq!(href.host_str(), Some(IDP_HOST));
    assert_eq!(href.path(), "/authorize");
    let q = query(&href);
    assert_eq!(q["client_id"], CLIENT_ID);
    assert_eq!(q["code_challenge_method"], "S256");
    // The link leads to a working login.
    let r = p.get(&p.route(href.as_str())).await;
    assert!(location(&r).starts_with("/interaction?interaction="));
}

#[tokio::test]
async fn fault_wrong_auth_url() {
    let p = start(&[Fault::WrongAuthUrl]).await;
    let authorize = p.authorize_url().await;
    assert_eq!(authorize.host_str(), Some(IDP_HOST));
    assert_eq!(authorize.path(), "/oauth2/authorize");
    // Pocket ID has no such route: its SPA answers.
    let r = p.get(&p.route(authorize.as_str())).await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn fault_no_pkce() {
    let p = start(&[Fault::NoPkce]).await;
    let authorize = p.authorize_url().await;
    let q = query(&authorize);
    assert!(!q.contains_key("code_challenge"));
    assert!(!q.contains_key("code_challenge_method"));
    let r = p.get(&p.route(authorize.as_str())).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let callback = query(&Url::parse(location(&r)).expect("URL"));
    assert_eq!(callback["error"], "invalid_request");
    assert!(callback["error_description"].contains("This client requires PKCE"));
    assert_eq!(callback["state"], q["state"]);
}

#[tokio::test]
async fn fault_unknown_client() {
    let p = start(&[Fault::UnknownClient]).await;
    let authorize = p.authorize_url().await;
    let client_id = query(&authorize)["client_id"].clone();
    assert_ne!(client_id, CLIENT_ID);
    assert!(uuid::Uuid::parse_str(&client_id).is_ok());
    let r = p.get(&p.route(authorize.as_str())).await;
    assert_eq!(r.status(), StatusCode::FOUND);
    assert_eq!(
        location(&r),
        "/interaction/error?error=The+requested+OAuth+2.0+Client+does+not+exist."
    );
}

#[tokio::test]
async fn fault_callback_not_registered() {
    let p = start(&[Fault::CallbackNotRegistered]).await;
    let authorize = p.authorize_url().await;
    assert_eq!(query(&authorize)["redirect_uri"], CALLBACK_URL);
    let r = p.get(&p.route(authorize.as_str())).await;
    assert_eq!(r.status(), StatusCode::FOUND);
    assert!(
        location(&r).starts_with(
            "/interaction/error?error=The+redirect_uri+%27https%3A%2F%2Fxyz.cloudflareaccess.com%2Fcdn-cgi%2Faccess%2Fcallback%27+is+not+registered"
        ),
        "{}",
        location(&r)
    );
}

async fn discovery(p: &Probe) -> Value {
    p.get(&p.url(IDP_HOST, "/.well-known/openid-configuration"))
        .await
        .json()
        .await
        .expect("JSON")
}

#[tokio::test]
async fn fault_issuer_mismatch() {
    let p = start(&[Fault::IssuerMismatch]).await;
    let doc = discovery(&p).await;
    assert_eq!(doc["issuer"], "http://id.example.com");
    assert_eq!(
        doc["authorization_endpoint"],
        "http://id.example.com/authorize"
    );
    assert_eq!(
        doc["token_endpoint"],
        "http://id.example.com/api/oidc/token"
    );
}

#[tokio::test]
async fn fault_internal_url() {
    let p = start(&[Fault::InternalUrl]).await;
    let doc = discovery(&p).await;
    assert_eq!(doc["issuer"], "https://id.example.com");
    assert_eq!(
        doc["authorization_endpoint"],
        "https://id.example.com/authorize"
    );
    assert_eq!(
        doc["token_endpoint"],
        "http://pocket-id:1411/api/oidc/token"
    );
    assert_eq!(
        doc["jwks_uri"],
        "http://pocket-id:1411/.well-known/jwks.json"
    );
    assert_eq!(
        doc["userinfo_endpoint"],
        "http://pocket-id:1411/api/oidc/userinfo"
    );
    assert_eq!(
        doc["end_session_endpoint"],
        "https://id.example.com/api/oidc/end-session"
    );
}

#[tokio::test]
async fn fault_jwks_empty() {
    let p = start(&[Fault::JwksEmpty]).await;
    let r = p.get(&p.url(IDP_HOST, "/.well-known/jwks.json")).await;
    assert_eq!(r.text().await.expect("a body"), r#"{"keys":[]}"#);
}

#[tokio::test]
async fn fault_token_404() {
    let p = start(&[Fault::Token404]).await;
    let r = p
        .post_form("/api/oidc/token", &[("grant_type", "authorization_code")])
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(header(&r, "content-type"), "text/plain; charset=utf-8");
    assert!(header(&r, "x-request-id").is_empty());
    assert_eq!(r.text().await.expect("a body"), "404 page not found\n");
    // The rest of Pocket ID still works.
    let doc = discovery(&p).await;
    assert_eq!(doc["issuer"], "https://id.example.com");
}

#[tokio::test]
async fn fault_token_challenge() {
    let p = start(&[Fault::TokenChallenge]).await;
    let r = p
        .post_form("/api/oidc/token", &[("grant_type", "authorization_code")])
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_edge(&r);
    assert_eq!(header(&r, "cf-mitigated"), "challenge");
    assert!(r.text().await.expect("a body").contains("Just a moment..."));
    let health = p.get(&p.url(IDP_HOST, "/healthz")).await;
    assert_eq!(health.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn fault_idp_down() {
    let p = start(&[Fault::IdpDown]).await;
    for path in [
        "/healthz",
        "/.well-known/openid-configuration",
        "/authorize?x=1",
    ] {
        let r = p.get(&p.url(IDP_HOST, path)).await;
        assert_eq!(r.status(), StatusCode::BAD_GATEWAY, "{path}");
        assert_edge(&r);
        let ray = header(&r, "cf-ray")
            .split('-')
            .next()
            .unwrap_or("")
            .to_string();
        let body = r.text().await.expect("a body");
        assert!(body.contains("Error code 502"));
        assert!(body.contains(&ray), "the page shows the header's Ray ID");
    }
    let token = p.post_form("/api/oidc/token", &[("a", "b")]).await;
    assert_eq!(token.status(), StatusCode::BAD_GATEWAY);
    // Access itself is unaffected.
    let r = p.get(&p.url(SERVICE_HOST, "/")).await;
    assert_eq!(r.status(), StatusCode::FOUND);
}

#[tokio::test]
async fn fault_idp_slow_times_out_and_shutdown_does_not_hang() {
    let p = start(&[Fault::IdpSlow]).await;
    let impatient = client(&p.lab, |b| b.timeout(Duration::from_millis(300)));
    let error = impatient
        .get(p.url(IDP_HOST, "/healthz"))
        .send()
        .await
        .expect_err("stalls");
    // Cut by the client's own 300 ms timeout, after a completed handshake.
    assert!(error.is_timeout(), "{error:?}");
    assert!(
        !error.is_connect(),
        "the TLS handshake completes: {error:?}"
    );
    // The other hosts answer.
    let r = p.get(&p.url(TEAM_HOST, "/cdn-cgi/access/certs")).await;
    assert_eq!(r.status(), StatusCode::OK);

    // A request stalled inside a handler does not hold up shutdown.
    let stalled = tokio::spawn({
        let client = p.client.clone();
        let url = p.url(IDP_HOST, "/.well-known/jwks.json");
        async move { client.get(url).send().await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    // A hang guard, not a timing: shutdown ends although a handler is stalled for 120 s.
    tokio::time::timeout(Duration::from_secs(60), p.lab.shutdown())
        .await
        .expect("shutdown does not wait for the stalled handler");
    let outcome = tokio::time::timeout(Duration::from_secs(3), stalled)
        .await
        .expect("the stalled request ends with the lab");
    assert!(matches!(outcome, Ok(Err(_))), "{outcome:?}");
}

#[tokio::test]
async fn fault_cert_expiring() {
    let p = start(&[Fault::CertExpiring]).await;
    let r = p.get(&p.url(SERVICE_HOST, "/")).await;
    let left = days_left(peer_not_after(&r));
    assert!((9.9..=10.0).contains(&left), "{left} days left");
    let team = p.get(&p.url(TEAM_HOST, "/cdn-cgi/access/certs")).await;
    let left = days_left(peer_not_after(&team));
    assert!((89.9..=90.0).contains(&left), "{left} days left");
}

#[tokio::test]
async fn fault_cert_expired() {
    let p = start(&[Fault::CertExpired]).await;
    let error = p
        .client
        .get(p.url(IDP_HOST, "/healthz"))
        .send()
        .await
        .expect_err("an expired certificate is refused");
    assert!(
        format!("{error:?}")
            .to_ascii_lowercase()
            .contains("expired"),
        "{error:?}"
    );
    let careless = client(&p.lab, |b| b.tls_danger_accept_invalid_certs(true));
    let r = careless
        .get(p.url(IDP_HOST, "/healthz"))
        .send()
        .await
        .expect("a response");
    let left = days_left(peer_not_after(&r));
    assert!((-2.1..=-2.0).contains(&left), "{left} days left");
    // The other hosts are fine.
    let service = p.get(&p.url(SERVICE_HOST, "/")).await;
    assert_eq!(service.status(), StatusCode::FOUND);
}

// ---------------------------------------------------------------------------------
// Passkeys, the interaction flow, the code exchange and Access's half of the login.

use softkey::{SoftKey, UP, UV};

/// Pocket ID's APP_URL: the origin browsers put in clientDataJSON.
const ORIGIN: &str = "https://id.example.com";

/// What browsers send as `Accept` when they navigate.
const BROWSER_ACCEPT: &str =
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8";

/// What a desktop browser sends as `User-Agent`.
const BROWSER_USER_AGENT: &str =
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";

/// A browser: a client with a cookie jar that asks for HTML as navigations do, under
/// a browser's User-Agent.
fn browser(p: &Probe) -> Client {
    client(&p.lab, |b| {
        let mut headers = HeaderMap::new();
        headers.insert(
            reqwest::header::ACCEPT,
            reqwest::header::HeaderValue::from_static(BROWSER_ACCEPT),
        );
        b.cookie_store(true)
            .default_headers(headers)
            .user_agent(BROWSER_USER_AGENT)
    })
}

/// A user created through the admin API with a registered passkey, and the browser
/// that enrolled it (it holds the one-time-code session).
struct Enrolled {
    user_id: String,
    key: SoftKey,
    browser: Client,
}

impl Probe {
    /// An admin API call with the static key.
    async fn admin(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Response {
        let mut request = self
            .client
            .request(method, self.url(IDP_HOST, path))
            .header("x-api-key", self.lab.static_api_key());
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.expect("a response")
    }

    /// `username` created with `email` (none when empty).
    async fn create_user(&self, username: &str, email: &str) -> String {
        let r = self
            .admin(
                reqwest::Method::POST,
                "/api/users",
                Some(serde_json::json!({
                    "username": username,
                    "email": (!email.is_empty()).then_some(email),
                    "emailVerified": true,
                    "firstName": "Probe",
                    "lastName": "Monitor",
                    "displayName": "Probe Monitor",
                    "isAdmin": false,
                    "disabled": false,
                })),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let user: Value = r.json().await.expect("JSON");
        user["id"].as_str().expect("an id").to_string()
    }

    async fn one_time_code(&self, user_id: &str, body: Value) -> Response {
        self.admin(
            reqwest::Method::POST,
            &format!("/api/users/{user_id}/one-time-access-token"),
            Some(body),
        )
        .await
    }

    /// probe@example.com created, signed in with a one-time code, passkey registered.
    async fn enrol(&self) -> Enrolled {
        self.enrol_as("probe", "probe@example.com").await
    }

    /// `username` with `email` created, signed in with a one-time code, passkey
    /// registered.
    async fn enrol_as(&self, username: &str, email: &str) -> Enrolled {
        let user_id = self.create_user(username, email).await;
        let code: Value = self
            .one_time_code(&user_id, serde_json::json!({}))
            .await
            .json()
            .await
            .expect("JSON");
        let browser = browser(self);
        let token = code["token"].as_str().expect("a token");
        let signed_in = browser
            .post(self.url(IDP_HOST, &format!("/api/one-time-access-token/{token}")))
            .send()
            .await
            .expect("a response");
        assert_eq!(signed_in.status(), StatusCode::OK);
        let options: Value = browser
            .get(self.url(IDP_HOST, "/api/webauthn/register/start"))
            .send()
            .await
            .expect("a response")
            .json()
            .await
            .expect("JSON");
        let (key, registration) = SoftKey::register(&options, ORIGIN, UP | UV);
        let finished = browser
            .post(self.url(IDP_HOST, "/api/webauthn/register/finish"))
            .json(&registration)
            .send()
            .await
            .expect("a response");
        assert_eq!(finished.status(), StatusCode::OK);
        Enrolled {
            user_id,
            key,
            browser,
        }
    }

    /// login/start and login/finish with `key`, in `browser`.
    async fn passkey_login(&self, browser: &Client, key: &mut SoftKey) -> Response {
        let start: Value = browser
            .get(self.url(IDP_HOST, "/api/webauthn/login/start"))
            .send()
            .await
            .expect("a response")
            .json()
            .await
            .expect("JSON");
        let assertion = key
            .assert(&start, ORIGIN, UP | UV)
            .expect("the authenticator signs for its RP");
        browser
            .post(self.url(IDP_HOST, "/api/webauthn/login/finish"))
            .json(&assertion)
            .send()
            .await
            .expect("a response")
    }

    /// The Pocket ID button of a sign-in page that `page_url` answered: where a
    /// browser goes (on the lab's port) and, for a form, the fields it posts.
    fn pocket_id_choice(
        &self,
        page_url: &str,
        page: &str,
    ) -> (String, Option<Vec<(String, String)>>) {
        let html = scraper::Html::parse_document(page);
        let is_pocket_id =
            |e: &scraper::ElementRef<'_>| e.text().collect::<String>().trim() == "Pocket ID";
        let links = scraper::Selector::parse("a[href]").expect("selector");
        if let Some(link) = html.select(&links).find(is_pocket_id) {
            let href = link.value().attr("href").unwrap_or_default();
            return (self.follow(page_url, href), None);
        }
        let forms = scraper::Selector::parse("form").expect("selector");
        let buttons = scraper::Selector::parse("button").expect("selector");
        let form = html
            .select(&forms)
            .find(|f| f.select(&buttons).any(|b| is_pocket_id(&b)))
            .expect("a Pocket ID link or form");
        assert_eq!(form.value().attr("method"), Some("post"));
        let hidden = scraper::Selector::parse("input[type=hidden]").expect("selector");
        let fields = form
            .select(&hidden)
            .filter_map(|i| {
                let input = i.value();
                Some((
                    input.attr("name")?.to_string(),
                    input.attr("value")?.to_string(),
                ))
            })
            .collect();
        let action = form.value().attr("action").unwrap_or_default();
        (self.follow(page_url, action), Some(fields))
    }

    /// Takes a choice from [`Probe::pocket_id_choice`] in `browser`.
    async fn choose(
        &self,
        browser: &Client,
        (url, form): (String, Option<Vec<(String, String)>>),
    ) -> Response {
        let request = match form {
            Some(fields) => browser.post(url).form(&fields),
            None => browser.get(url),
        };
        request.send().await.expect("a response")
    }

    /// Service → team login (→ its sign-in page and the Pocket ID button, when
    /// Instant Auth is off) → the authorize URL Access sends `browser` to.
    async fn access_authorize_url(&self, browser: &Client) -> Url {
        let first = browser
            .get(self.url(SERVICE_HOST, "/"))
            .send()
            .await
            .expect("a response");
        assert_eq!(first.status(), StatusCode::FOUND);
        let login_url = self.route(location(&first));
        let mut login = browser.get(&login_url).send().await.expect("a response");
        if login.status() == StatusCode::OK {
            let page = login.text().await.expect("a page");
            let choice = self.pocket_id_choice(&login_url, &page);
            let url = Url::parse(&choice.0).expect("a URL");
            if choice.1.is_none() && url.host_str() == Some(IDP_HOST) {
                // The button links straight to Pocket ID's authorize URL.
                return url;
            }
            login = self.choose(browser, choice).await;
        }
        assert_eq!(login.status(), StatusCode::FOUND);
        Url::parse(location(&login)).expect("an authorize URL")
    }

    /// Service → team login → Pocket ID's authorize, in `browser`: the state Access
    /// sent and the interaction Pocket ID started.
    async fn start_access_login(&self, browser: &Client) -> (String, String) {
        let authorize = self.access_authorize_url(browser).await;
        let state = query(&authorize)["state"].clone();
        (state, self.interaction_at(browser, &authorize).await)
    }

    /// Pocket ID's `authorize`, in `browser` without a Pocket ID session: the
    /// interaction it starts.
    async fn interaction_at(&self, browser: &Client, authorize: &Url) -> String {
        let r = browser
            .get(self.route(authorize.as_str()))
            .send()
            .await
            .expect("a response");
        location(&r)
            .strip_prefix("/interaction?interaction=")
            .unwrap_or_else(|| panic!("an interaction: {}", location(&r)))
            .to_string()
    }

    /// `POST /api/oidc/interactions/<id>/complete` with `step`, in `browser`.
    async fn complete(&self, browser: &Client, interaction: &str, step: &str) -> Response {
        browser
            .post(self.url(
                IDP_HOST,
                &format!("/api/oidc/interactions/{interaction}/complete"),
            ))
            .json(&serde_json::json!({ "step": step }))
            .send()
            .await
            .expect("a response")
    }

    /// The login of a fresh browser from the site up to Pocket ID's final redirect:
    /// the browser and the 303 (or whatever /authorize answered).
    async fn login_to_code(&self, enrolled: &mut Enrolled) -> (Client, String, Response) {
        let browser = browser(self);
        let (state, interaction) = self.start_access_login(&browser).await;
        let r = self
            .sign_in_at_pocket_id(&browser, &interaction, &mut enrolled.key)
            .await;
        (browser, state, r)
    }

    /// In `browser`, at Pocket ID's `interaction`: the passkey login with `key`,
    /// every step Pocket ID asks for, and Pocket ID's final redirect.
    async fn sign_in_at_pocket_id(
        &self,
        browser: &Client,
        interaction: &str,
        key: &mut SoftKey,
    ) -> Response {
        let finished = self.passkey_login(browser, key).await;
        assert_eq!(finished.status(), StatusCode::OK);
        let mut step = "authenticate".to_string();
        let redirect = loop {
            let r: Value = self
                .complete(browser, interaction, &step)
                .await
                .json()
                .await
                .expect("JSON");
            if let Some(url) = r["redirectUrl"].as_str() {
                break url.to_string();
            }
            step = r["interaction"]["currentStep"]
                .as_str()
                .expect("a next step")
                .to_string();
        };
        browser
            .get(self.url(IDP_HOST, &redirect))
            .send()
            .await
            .expect("a response")
    }

    /// The whole login up to Access's callback answer.
    async fn login_to_callback(&self, enrolled: &mut Enrolled) -> (Client, Response) {
        let (browser, _, code) = self.login_to_code(enrolled).await;
        assert_eq!(code.status(), StatusCode::SEE_OTHER);
        let callback = browser
            .get(self.route(location(&code)))
            .send()
            .await
            .expect("a response");
        (browser, callback)
    }

    /// The whole login, back on the site with its session.
    async fn login_to_site(&self, enrolled: &mut Enrolled) -> Client {
        let (browser, callback) = self.login_to_callback(enrolled).await;
        assert_eq!(callback.status(), StatusCode::FOUND);
        let authorized = browser
            .get(self.route(location(&callback)))
            .send()
            .await
            .expect("a response");
        assert_eq!(authorized.status(), StatusCode::FOUND);
        browser
    }
}

/// The JSON claims of a JWT, unverified (for shape checks).
fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("a JWT");
    let bytes = base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

/// The value of cookie `name` in a response's Set-Cookie headers, and the whole line.
fn set_cookie(response: &Response, name: &str) -> Option<(String, String)> {
    cookies(response.headers()).into_iter().find_map(|line| {
        let value = line
            .strip_prefix(&format!("{name}="))?
            .split(';')
            .next()?
            .to_string();
        Some((value, line))
    })
}

/// Pocket ID's JWKS key.
async fn pocket_id_key(p: &Probe) -> DecodingKey {
    let jwks: Value = p
        .get(&p.url(IDP_HOST, "/.well-known/jwks.json"))
        .await
        .json()
        .await
        .expect("JSON");
    let jwk: Jwk = serde_json::from_value(jwks["keys"][0].clone()).expect("a JWK");
    DecodingKey::from_jwk(&jwk).expect("a key")
}

async fn error_code(response: Response) -> (StatusCode, String) {
    let status = response.status();
    let body: Value = response.json().await.expect("a JSON error");
    (status, body["code"].as_str().unwrap_or("").to_string())
}

#[tokio::test]
async fn full_passkey_login_reaches_the_site() {
    let p = start(&[]).await;

    // Enrolment, step by step: user, one-time code, session, passkey.
    let user_id = p.create_user("probe", "probe@example.com").await;
    let code = p.one_time_code(&user_id, serde_json::json!({})).await;
    assert_eq!(code.status(), StatusCode::CREATED);
    let code: Value = code.json().await.expect("JSON");
    let token = code["token"].as_str().expect("a token").to_string();
    assert_eq!(token.len(), 6);
    let enrolment = browser(&p);
    let signed_in = enrolment
        .post(p.url(IDP_HOST, &format!("/api/one-time-access-token/{token}")))
        .send()
        .await
        .expect("a response");
    assert_eq!(signed_in.status(), StatusCode::OK);
    let (session, line) = set_cookie(&signed_in, "__Host-access_token").expect("a session");
    assert!(
        line.ends_with("; Path=/; Max-Age=3600; HttpOnly; Secure; SameSite=Lax"),
        "{line}"
    );
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[ORIGIN]);
    validation.set_issuer(&[ORIGIN]);
    let verified = jsonwebtoken::decode::<Value>(&session, &pocket_id_key(&p).await, &validation)
        .expect("the session JWT verifies with the JWKS");
    assert_eq!(verified.claims["aud"], serde_json::json!([ORIGIN]));
    assert_eq!(verified.claims["type"], "access-token");
    assert_eq!(verified.claims["amr"], serde_json::json!(["otp"]));
    assert_eq!(verified.claims["sub"], user_id.as_str());
    let user: Value = signed_in.json().await.expect("a UserDto");
    // The lab puts the probe user in group `probers` when it is created.
    assert_eq!(user["userGroups"][0]["name"], "probers");
    assert_eq!(user["userGroups"].as_array().map(Vec::len), Some(1));
    let again = p
        .client
        .post(p.url(IDP_HOST, &format!("/api/one-time-access-token/{token}")))
        .send()
        .await
        .expect("a response");
    assert_eq!(
        error_code(again).await,
        (StatusCode::UNAUTHORIZED, "token_invalid_or_expired".into())
    );

    let start_registration = enrolment
        .get(p.url(IDP_HOST, "/api/webauthn/register/start"))
        .send()
        .await
        .expect("a response");
    assert_eq!(start_registration.status(), StatusCode::OK);
    let (_, line) = set_cookie(&start_registration, "__Host-session").expect("a ceremony cookie");
    assert!(
        line.ends_with("; Path=/; Max-Age=60; HttpOnly; Secure; SameSite=Lax"),
        "{line}"
    );
    let text = start_registration.text().await.expect("a body");
    let user_handle = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        user_id.as_bytes(),
    );
    assert!(
        text.starts_with(&format!(
            r#"{{"rp":{{"name":"Pocket ID","id":"id.example.com"}},"user":{{"name":"probe","displayName":"Probe Monitor","id":"{user_handle}"}},"challenge":""#
        )),
        "{text}"
    );
    assert!(
        text.contains(r#""pubKeyCredParams":[{"type":"public-key","alg":-7},{"type":"public-key","alg":-35},{"type":"public-key","alg":-36},{"type":"public-key","alg":-257},{"type":"public-key","alg":-258},{"type":"public-key","alg":-259},{"type":"public-key","alg":-37},{"type":"public-key","alg":-38},{"type":"public-key","alg":-39},{"type":"public-key","alg":-8}],"timeout":60000,"authenticatorSelection":{"requireResidentKey":true,"residentKey":"required","userVerification":"required"},"extensions":{"credProps":true}}"#),
        "{text}"
    );
    let options: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(options["challenge"].as_str().map(str::len), Some(43));
    let (key, registration) = SoftKey::register(&options, ORIGIN, UP | UV);
    let finished = enrolment
        .post(p.url(IDP_HOST, "/api/webauthn/register/finish"))
        .json(&registration)
        .send()
        .await
        .expect("a response");
    assert_eq!(finished.status(), StatusCode::OK);
    let text = finished.text().await.expect("a body");
    assert!(
        text.contains(r#","name":"New Passkey","credentialID":""#),
        "{text}"
    );
    assert!(
        text.contains(r#","attestationType":"none","transport":["internal"],"backupEligible":false,"backupState":false,"createdAt":""#),
        "{text}"
    );
    let row: Value = serde_json::from_str(&text).expect("JSON");
    let listed: Value = p
        .admin(
            reqwest::Method::GET,
            &format!("/api/users/{user_id}/webauthn-credentials"),
            None,
        )
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
    assert_eq!(listed[0]["id"], row["id"]);

    // The login, as a fresh browser would do it.
    let mut enrolled = Enrolled {
        user_id: user_id.clone(),
        key,
        browser: enrolment,
    };
    let b = browser(&p);
    let first = b
        .get(p.url(SERVICE_HOST, "/"))
        .send()
        .await
        .expect("a response");
    assert!(set_cookie(&first, "CF_AppSession").is_some());
    let login = b
        .get(p.route(location(&first)))
        .send()
        .await
        .expect("a response");
    let authorize = Url::parse(location(&login)).expect("URL");
    let state = query(&authorize)["state"].clone();
    let interaction = p.interaction_at(&b, &authorize).await;

    let start: Value = b
        .get(p.url(IDP_HOST, "/api/webauthn/login/start"))
        .send()
        .await
        .expect("a response")
        .json()
        .await
        .expect("JSON");
    let mut keys = start
        .as_object()
        .map(|o| o.keys().cloned().collect::<Vec<_>>())
        .unwrap_or_default();
    keys.sort();
    assert_eq!(keys, ["challenge", "rpId", "timeout", "userVerification"]);
    assert_eq!(start["rpId"], IDP_HOST);
    assert_eq!(start["timeout"], 60000);
    assert_eq!(start["userVerification"], "required");
    let assertion = enrolled
        .key
        .assert(&start, ORIGIN, UP | UV)
        .expect("signed");
    let finished = b
        .post(p.url(IDP_HOST, "/api/webauthn/login/finish"))
        .json(&assertion)
        .send()
        .await
        .expect("a response");
    assert_eq!(finished.status(), StatusCode::OK);
    let (session, _) = set_cookie(&finished, "__Host-access_token").expect("a session");
    assert_eq!(claims(&session)["amr"], serde_json::json!(["phr"]));
    let me: Value = finished.json().await.expect("a UserDto");
    assert_eq!(me["id"], user_id.as_str());

    // An API key cannot act for the user; the wrong step is named.
    let api_key = p
        .client
        .post(p.url(
            IDP_HOST,
            &format!("/api/oidc/interactions/{interaction}/complete"),
        ))
        .header("x-api-key", p.lab.static_api_key())
        .json(&serde_json::json!({ "step": "authenticate" }))
        .send()
        .await
        .expect("a response");
    assert_eq!(
        error_code(api_key).await,
        (StatusCode::FORBIDDEN, "api_key_auth_not_allowed".into())
    );
    let r: Value = p
        .complete(&b, &interaction, "authenticate")
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(r["interaction"]["currentStep"], "consent");
    assert_eq!(
        r["interaction"]["requiredSteps"],
        serde_json::json!(["consent"])
    );
    assert_eq!(r["interaction"]["client"]["clientType"], "standard");
    let wrong = p.complete(&b, &interaction, "authenticate").await;
    assert_eq!(wrong.status(), StatusCode::BAD_REQUEST);
    let wrong: Value = wrong.json().await.expect("JSON");
    assert_eq!(
        wrong["error"],
        "Expected interaction step consent but got authenticate"
    );
    assert_eq!(wrong["code"], "validation_failed");
    assert!(wrong.get("details").is_none());
    let r: Value = p
        .complete(&b, &interaction, "consent")
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        r["redirectUrl"],
        format!("/authorize?interaction={interaction}")
    );

    let code = b
        .get(p.url(IDP_HOST, &format!("/authorize?interaction={interaction}")))
        .send()
        .await
        .expect("a response");
    assert_eq!(code.status(), StatusCode::SEE_OTHER);
    assert_eq!(header(&code, "cache-control"), "no-store");
    assert_eq!(header(&code, "pragma"), "no-cache");
    let callback = location(&code).to_string();
    let prefix = format!("{CALLBACK_URL}?code=pocket_id_ac_");
    assert!(callback.starts_with(&prefix), "{callback}");
    let suffix = format!(
        "&iss=https%3A%2F%2Fid.example.com&scope=openid+email+profile&state={}",
        wire::go_query_escape(&state)
    );
    assert!(callback.ends_with(&suffix), "{callback}");
    let code_value = &callback[prefix.len()..callback.len() - suffix.len()];
    let (a, b2) = code_value.split_once('.').expect("two parts");
    assert_eq!((a.len(), b2.len()), (43, 43));
    // One code per interaction.
    let replay = b
        .get(p.url(IDP_HOST, &format!("/authorize?interaction={interaction}")))
        .send()
        .await
        .expect("a response");
    assert_eq!(
        location(&replay),
        "/interaction/error?error=The+interaction+session+is+invalid+or+has+expired."
    );

    // Access takes the code back, redeems it and hands the browser to the site.
    let back = b.get(p.route(&callback)).send().await.expect("a response");
    assert_eq!(back.status(), StatusCode::FOUND);
    assert_edge(&back);
    let (org, line) = set_cookie(&back, "CF_Authorization").expect("the global session");
    assert!(
        line.ends_with("; Path=/; Secure; HttpOnly; SameSite=None"),
        "{line}"
    );
    assert_eq!(claims(&org)["type"], "org");
    let authorized = Url::parse(location(&back)).expect("URL");
    assert_eq!(authorized.host_str(), Some(SERVICE_HOST));
    assert_eq!(authorized.path(), "/cdn-cgi/access/authorized");
    let q = query(&authorized);
    assert!(q.contains_key("nonce"));
    assert_eq!(q["state"], state);
    let replayed = b.get(p.route(&callback)).send().await.expect("a response");
    assert_eq!(replayed.status(), StatusCode::BAD_REQUEST);
    assert!(
        replayed
            .text()
            .await
            .expect("a body")
            .contains("Invalid login session")
    );
    // Another browser (no CF_AppSession) cannot claim the login.
    let stranger = p.get(&p.route(authorized.as_str())).await;
    assert_eq!(stranger.status(), StatusCode::BAD_REQUEST);
    let home = b
        .get(p.route(authorized.as_str()))
        .send()
        .await
        .expect("a response");
    assert_eq!(home.status(), StatusCode::FOUND);
    assert_eq!(location(&home), "https://service.example.com/");
    let (app, line) = set_cookie(&home, "CF_Authorization").expect("the app session");
    assert!(line.contains("; Expires="), "{line}");
    assert!(
        line.ends_with(" GMT; Path=/; Secure; SameSite=none; HttpOnly"),
        "{line}"
    );

    let site = b
        .get(p.url(SERVICE_HOST, "/"))
        .send()
        .await
        .expect("a response");
    assert_eq!(site.status(), StatusCode::OK);
    assert_edge(&site);
    let page = site.text().await.expect("a body");
    assert!(page.contains("Welcome to service.example.com"), "{page}");
    assert!(page.contains("probe@example.com"), "{page}");

    // The application token verifies against the team's certs.
    let certs: Value = p
        .get(&p.url(TEAM_HOST, "/cdn-cgi/access/certs"))
        .await
        .json()
        .await
        .expect("JSON");
    let current: Jwk = serde_json::from_value(certs["keys"][0].clone()).expect("a JWK");
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[AUD]);
    validation.set_issuer(&["https://xyz.cloudflareaccess.com"]);
    let token = jsonwebtoken::decode::<Value>(
        &app,
        &DecodingKey::from_jwk(&current).expect("a key"),
        &validation,
    )
    .expect("CF_Authorization verifies");
    assert_eq!(
        token.header.kid.as_deref(),
        current.common.key_id.as_deref()
    );
    let c = &token.claims;
    assert_eq!(c["type"], "app");
    assert_eq!(c["email"], "probe@example.com");
    assert_eq!(c["aud"], serde_json::json!([AUD]));
    assert_eq!(c["country"], "XX");
    assert_eq!(
        c["exp"].as_u64().zip(c["iat"].as_u64()).map(|(e, i)| e - i),
        Some(86_400)
    );
    assert_eq!(c["identity_nonce"].as_str().map(str::len), Some(16));
    assert!(uuid::Uuid::parse_str(c["sub"].as_str().unwrap_or("")).is_ok());

    // A second login needs no consent: /authorize with the session answers at once.
    let second = browser(&p);
    let (_, interaction) = p.start_access_login(&second).await;
    let finished = p.passkey_login(&second, &mut enrolled.key).await;
    assert_eq!(finished.status(), StatusCode::OK);
    let r: Value = p
        .complete(&second, &interaction, "authenticate")
        .await
        .json()
        .await
        .expect("JSON");
    assert!(r["redirectUrl"].is_string(), "{r}");
}

#[tokio::test]
async fn admin_api_manages_users_and_passkeys() {
    let p = start(&[]).await;
    let no_key = p.get(&p.url(IDP_HOST, "/api/users")).await;
    assert_eq!(
        error_code(no_key).await,
        (StatusCode::UNAUTHORIZED, "not_signed_in".into())
    );
    let wrong_key = p
        .client
        .get(p.url(IDP_HOST, "/api/users"))
        .header("x-api-key", "not-the-key-at-all")
        .send()
        .await
        .expect("a response");
    assert_eq!(wrong_key.status(), StatusCode::UNAUTHORIZED);

    let created = p
        .admin(
            reqwest::Method::POST,
            "/api/users",
            Some(serde_json::json!({
                "username": "probe", "email": "probe@example.com", "emailVerified": true,
                "firstName": "Probe", "lastName": "Monitor", "displayName": "Probe Monitor",
            })),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let request_id = header(&created, "x-request-id").to_string();
    assert!(uuid::Uuid::parse_str(&request_id).is_ok());
    let text = created.text().await.expect("a body");
    let user: Value = serde_json::from_str(&text).expect("JSON");
    let id = user["id"].as_str().expect("id").to_string();
    assert_eq!(
        text,
        format!(
            r#"{{"id":"{id}","username":"probe","email":"probe@example.com","emailVerified":true,"firstName":"Probe","lastName":"Monitor","displayName":"Probe Monitor","isAdmin":false,"locale":null,"customClaims":[],"userGroups":[{{"id":"3d8f6a2c-1b7e-4f90-a5c4-8e2d7b1f6c39","friendlyName":"Probers","name":"probers","customClaims":[],"userCount":0,"ldapId":null,"createdAt":"2025-11-02T09:00:00Z"}}],"ldapId":null,"disabled":false}}"#
        )
    );

    let taken = p
        .admin(
            reqwest::Method::POST,
            "/api/users",
            Some(serde_json::json!({ "username": "probe", "email": "other@example.com" })),
        )
        .await;
    assert_eq!(taken.status(), StatusCode::CONFLICT);
    let request_id = header(&taken, "x-request-id").to_string();
    let body: Value = taken.json().await.expect("JSON");
    assert_eq!(body["error"], "Username is already in use");
    assert_eq!(body["code"], "already_in_use");
    assert_eq!(body["details"]["property"], "username");
    assert_eq!(body["request_id"], request_id.as_str());
    let email_taken = p
        .admin(
            reqwest::Method::POST,
            "/api/users",
            Some(serde_json::json!({ "username": "other", "email": "probe@example.com" })),
        )
        .await;
    let body: Value = email_taken.json().await.expect("JSON");
    assert_eq!(body["error"], "Email is already in use");
    let invalid = p
        .admin(
            reqwest::Method::POST,
            "/api/users",
            Some(serde_json::json!({ "username": "-bad-", "email": "x@example.com" })),
        )
        .await;
    assert_eq!(invalid.status(), StatusCode::BAD_REQUEST);
    let body: Value = invalid.json().await.expect("JSON");
    assert_eq!(body["code"], "validation_failed");
    assert_eq!(body["details"]["fields"][0]["field"], "username");
    assert_eq!(body["details"]["fields"][0]["code"], "invalid_format");
    let no_email = p
        .admin(
            reqwest::Method::POST,
            "/api/users",
            Some(serde_json::json!({ "username": "nomail" })),
        )
        .await;
    let body: Value = no_email.json().await.expect("JSON");
    assert_eq!(body["error"], "Email is required");
    let not_json = p
        .client
        .post(p.url(IDP_HOST, "/api/users"))
        .header("x-api-key", p.lab.static_api_key())
        .body("username=x")
        .send()
        .await
        .expect("a response");
    assert_eq!(
        error_code(not_json).await,
        (StatusCode::BAD_REQUEST, "invalid_request_body".into())
    );

    let list: Value = p
        .admin(reqwest::Method::GET, "/api/users?search=PROBE", None)
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(list["data"].as_array().map(Vec::len), Some(1));
    assert_eq!(list["data"][0]["id"], id.as_str());
    assert_eq!(
        list["pagination"],
        serde_json::json!({ "totalPages": 1, "totalItems": 1, "currentPage": 1, "itemsPerPage": 2 })
    );
    let none: Value = p
        .admin(reqwest::Method::GET, "/api/users?search=nobody", None)
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(none["data"], serde_json::json!([]));
    let one = p
        .admin(reqwest::Method::GET, &format!("/api/users/{id}"), None)
        .await;
    assert_eq!(one.status(), StatusCode::OK);
    let missing = p
        .admin(
            reqwest::Method::GET,
            "/api/users/7d4a1a52-2c1b-4f0e-9d36-1b1b8b5f0c11",
            None,
        )
        .await;
    assert_eq!(
        error_code(missing).await,
        (StatusCode::NOT_FOUND, "user_not_found".into())
    );

    // Codes: 12 characters when they live longer than 15 minutes; a disabled user's
    // code is refused but kept.
    let long: Value = p
        .one_time_code(&id, serde_json::json!({ "ttl": "1h" }))
        .await
        .json()
        .await
        .expect("JSON");
    let long = long["token"].as_str().expect("a token").to_string();
    assert_eq!(long.len(), 12);
    let bad_ttl = p
        .one_time_code(&id, serde_json::json!({ "ttl": 40 * 86_400 }))
        .await;
    assert_eq!(
        error_code(bad_ttl).await,
        (StatusCode::BAD_REQUEST, "validation_failed".into())
    );
    let disable = |disabled: bool| {
        serde_json::json!({
            "username": "probe", "email": "probe@example.com", "emailVerified": true,
            "firstName": "Probe", "lastName": "Monitor", "displayName": "Probe Monitor",
            "disabled": disabled,
        })
    };
    let disabled: Value = p
        .admin(
            reqwest::Method::PUT,
            &format!("/api/users/{id}"),
            Some(disable(true)),
        )
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(disabled["disabled"], true);
    let exchange = |token: String| {
        let url = p.url(IDP_HOST, &format!("/api/one-time-access-token/{token}"));
        let client = p.client.clone();
        async move { client.post(url).send().await.expect("a response") }
    };
    assert_eq!(
        error_code(exchange(long.clone()).await).await,
        (StatusCode::FORBIDDEN, "user_disabled".into())
    );
    p.admin(
        reqwest::Method::PUT,
        &format!("/api/users/{id}"),
        Some(disable(false)),
    )
    .await;
    assert_eq!(exchange(long).await.status(), StatusCode::OK);
    assert_eq!(
        error_code(exchange("ZZZZZZ".to_string()).await).await,
        (StatusCode::UNAUTHORIZED, "token_invalid_or_expired".into())
    );

    // Registration needs a browser session.
    let with_key = p
        .client
        .get(p.url(IDP_HOST, "/api/webauthn/register/start"))
        .header("x-api-key", p.lab.static_api_key())
        .send()
        .await
        .expect("a response");
    assert_eq!(
        error_code(with_key).await,
        (StatusCode::FORBIDDEN, "api_key_auth_not_allowed".into())
    );
    let anonymous = p
        .get(&p.url(IDP_HOST, "/api/webauthn/register/start"))
        .await;
    assert_eq!(
        error_code(anonymous).await,
        (StatusCode::UNAUTHORIZED, "not_signed_in".into())
    );
    // The static key's user appears once the key has been used, as in Pocket ID.
    let me: Value = p
        .admin(reqwest::Method::GET, "/api/users/me", None)
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(me["id"], "00000000-0000-0000-0000-000000000000");
    assert_eq!(me["isAdmin"], true);

    let credentials: Value = p
        .admin(
            reqwest::Method::GET,
            &format!("/api/users/{id}/webauthn-credentials"),
            None,
        )
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(credentials, serde_json::json!([]));
    let gone = p
        .admin(
            reqwest::Method::DELETE,
            &format!("/api/users/{id}/webauthn-credentials/6f3c0f7e-8a43-4c59-9e47-2c1d1f0b9a77"),
            None,
        )
        .await;
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    let body: Value = gone.json().await.expect("JSON");
    assert_eq!(body["error"], "Passkey not found");
    assert_eq!(body["details"]["resource"], "Passkey");
}

#[tokio::test]
async fn passkey_login_errors_match_pocket_id() {
    let p = start(&[]).await;
    let mut enrolled = p.enrol().await;
    let b = browser(&p);
    let login = p.url(IDP_HOST, "/api/webauthn/login/finish");
    let post = |body: String| {
        let (b, login) = (b.clone(), login.clone());
        async move {
            b.post(login)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .expect("a response")
        }
    };

    let start: Value = b
        .get(p.url(IDP_HOST, "/api/webauthn/login/start"))
        .send()
        .await
        .expect("a response")
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        error_code(post("this is not json".into()).await).await,
        (StatusCode::BAD_REQUEST, "invalid_webauthn_response".into())
    );
    let no_uv = enrolled.key.assert(&start, ORIGIN, UP).expect("signed");
    assert_eq!(
        error_code(post(no_uv.to_string()).await).await,
        (
            StatusCode::BAD_REQUEST,
            "passkey_user_verification_required".into()
        )
    );
    // A failed attempt does not end the ceremony.
    let good = enrolled
        .key
        .assert(&start, ORIGIN, UP | UV)
        .expect("signed");
    let ok = post(good.to_string()).await;
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(
        error_code(post(good.to_string()).await).await,
        (StatusCode::BAD_REQUEST, "invalid_webauthn_session".into())
    );

    let start: Value = b
        .get(p.url(IDP_HOST, "/api/webauthn/login/start"))
        .send()
        .await
        .expect("a response")
        .json()
        .await
        .expect("JSON");
    let mut forged = enrolled
        .key
        .assert(&start, ORIGIN, UP | UV)
        .expect("signed");
    let b64 = &base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut signature =
        base64::Engine::decode(b64, forged["response"]["signature"].as_str().unwrap_or(""))
            .expect("base64url");
    // Corrupt the middle of the DER signature (an r or s byte), as capture 97 did.
    let middle = signature.len() / 2;
    signature[middle] ^= 0x55;
    forged["response"]["signature"] = Value::from(base64::Engine::encode(b64, &signature));
    assert_eq!(
        error_code(post(forged.to_string()).await).await,
        (
            StatusCode::UNAUTHORIZED,
            "webauthn_authentication_failed".into()
        )
    );
    let other_origin = enrolled
        .key
        .assert(&start, "https://evil.example.net", UP | UV)
        .expect("signed");
    assert_eq!(
        error_code(post(other_origin.to_string()).await).await,
        (
            StatusCode::UNAUTHORIZED,
            "webauthn_authentication_failed".into()
        )
    );

    // No ceremony cookie at all.
    let no_cookie = p
        .client
        .post(p.url(IDP_HOST, "/api/webauthn/login/finish"))
        .json(&serde_json::json!({}))
        .send()
        .await
        .expect("a response");
    assert_eq!(
        error_code(no_cookie).await,
        (StatusCode::BAD_REQUEST, "missing_session_id".into())
    );

    // The session works with the cookie and as a bearer token.
    let me = b
        .get(p.url(IDP_HOST, "/api/users/me"))
        .send()
        .await
        .expect("a response");
    assert_eq!(me.status(), StatusCode::OK);
    let session = {
        // A client without a cookie jar carries the ceremony cookie by hand.
        let r = p
            .client
            .get(p.url(IDP_HOST, "/api/webauthn/login/start"))
            .send()
            .await
            .expect("a response");
        let (ceremony, _) = set_cookie(&r, "__Host-session").expect("a ceremony");
        let start: Value = r.json().await.expect("JSON");
        let assertion = enrolled
            .key
            .assert(&start, ORIGIN, UP | UV)
            .expect("signed");
        let r = p
            .client
            .post(p.url(IDP_HOST, "/api/webauthn/login/finish"))
            .header("cookie", format!("__Host-session={ceremony}"))
            .json(&assertion)
            .send()
            .await
            .expect("a response");
        set_cookie(&r, "__Host-access_token").expect("a session").0
    };
    let bearer = p
        .client
        .get(p.url(IDP_HOST, "/api/users/me"))
        .bearer_auth(&session)
        .send()
        .await
        .expect("a response");
    assert_eq!(bearer.status(), StatusCode::OK);
    let garbage = p
        .client
        .get(p.url(IDP_HOST, "/api/users/me"))
        .header("cookie", "__Host-access_token=garbage")
        .send()
        .await
        .expect("a response");
    assert_eq!(
        error_code(garbage).await,
        (StatusCode::UNAUTHORIZED, "not_signed_in".into())
    );
}

#[tokio::test]
async fn login_finish_is_rate_limited_after_a_burst_of_ten() {
    let p = start(&[]).await;
    for attempt in 1..=10 {
        let r = p
            .client
            .post(p.url(IDP_HOST, "/api/webauthn/login/finish"))
            .json(&serde_json::json!({}))
            .send()
            .await
            .expect("a response");
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "attempt {attempt}");
    }
    let r = p
        .client
        .post(p.url(IDP_HOST, "/api/webauthn/login/finish"))
        .json(&serde_json::json!({}))
        .send()
        .await
        .expect("a response");
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&r, "retry-after"), "5");
    let request_id = header(&r, "x-request-id").to_string();
    assert_eq!(
        r.text().await.expect("a body"),
        format!(
            r#"{{"error":"Too many requests","code":"rate_limited","request_id":"{request_id}"}}"#
        )
    );
    // Only login/finish is limited.
    let start = p.get(&p.url(IDP_HOST, "/api/webauthn/login/start")).await;
    assert_eq!(start.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_token_endpoint_redeems_codes_like_fosite() {
    let p = start(&[]).await;
    let enrolled = p.enrol().await;
    let b = &enrolled.browser;
    let verifier = "M25iVXpKU3puUjFaYWg3T1NDTDQtcW1ROUY5YXlwalNoc0hhakxifmZHag";
    let authorize = |nonce: &str| {
        let mut url = Url::parse(&p.url(IDP_HOST, "/authorize")).expect("URL");
        url.query_pairs_mut()
            .append_pair("client_id", CLIENT_ID)
            .append_pair("redirect_uri", CALLBACK_URL)
            .append_pair("response_type", "code")
            .append_pair("scope", "openid email profile bogus")
            .append_pair("state", "state-of-the-test")
            .append_pair("nonce", nonce)
            .append_pair("code_challenge", &wire::pkce_s256(verifier))
            .append_pair("code_challenge_method", "S256");
        url.to_string()
    };
    // First time: the signed-in user is asked for consent only.
    let r = b.get(authorize("n-1")).send().await.expect("a response");
    let interaction = location(&r)
        .strip_prefix("/interaction?interaction=")
        .expect("an interaction")
        .to_string();
    let i: Value = p
        .get(&p.url(IDP_HOST, &format!("/api/oidc/interactions/{interaction}")))
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(i["currentStep"], "consent");
    assert_eq!(
        i["scopes"],
        serde_json::json!(["openid", "email", "profile"])
    );
    let done: Value = p
        .complete(b, &interaction, "consent")
        .await
        .json()
        .await
        .expect("JSON");
    let code_of = |r: &Response| {
        let url = Url::parse(location(r)).expect("a callback URL");
        query(&url)["code"].clone()
    };
    let r = b
        .get(p.url(IDP_HOST, done["redirectUrl"].as_str().expect("a URL")))
        .send()
        .await
        .expect("a response");
    let first = code_of(&r);
    // Consent is recorded: the next /authorize answers at once.
    let fresh = || async {
        let r = b.get(authorize("n-2")).send().await.expect("a response");
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        code_of(&r)
    };
    let redeem = |code: String, extra: Vec<(&'static str, String)>| {
        let client = p.client.clone();
        let url = p.url(IDP_HOST, "/api/oidc/token");
        let secret = p.lab.client_secret().to_string();
        async move {
            let mut form = vec![
                ("grant_type", "authorization_code".to_string()),
                ("code", code),
            ];
            form.extend(extra);
            let r = client
                .post(url)
                .basic_auth(CLIENT_ID, Some(secret))
                .form(&form)
                .send()
                .await
                .expect("a response");
            let status = r.status();
            let body: Value = r.json().await.expect("JSON");
            (status, body)
        }
    };
    let redirect = || ("redirect_uri", CALLBACK_URL.to_string());
    let hint = |body: &Value| {
        body["error_description"]
            .as_str()
            .unwrap_or("")
            .rsplit(". ")
            .next()
            .unwrap_or("")
            .to_string()
    };

    // A wrong verifier burns the PKCE record, not the code.
    let (status, body) = redeem(
        first.clone(),
        vec![redirect(), ("code_verifier", "x".repeat(43))],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    assert_eq!(
        hint(&body),
        "The PKCE code challenge did not match the code verifier."
    );
    let (_, body) = redeem(
        first,
        vec![redirect(), ("code_verifier", verifier.to_string())],
    )
    .await;
    assert_eq!(
        hint(&body),
        "Unable to find initial PKCE data tied to this request"
    );

    let second = fresh().await;
    let (_, body) = redeem(
        second.clone(),
        vec![
            (
                "redirect_uri",
                "https://xyz.cloudflareaccess.com/other".into(),
            ),
            ("code_verifier", verifier.into()),
        ],
    )
    .await;
    assert_eq!(
        hint(&body),
        "The 'redirect_uri' from this request does not match the one from the authorize request."
    );
    let (_, body) = redeem(second, vec![redirect()]).await;
    assert_eq!(
        hint(&body),
        "The PKCE code verifier must be at least 43 characters."
    );

    let third = fresh().await;
    let wrong_secret = p
        .client
        .post(p.url(IDP_HOST, "/api/oidc/token"))
        .basic_auth(CLIENT_ID, Some("wrong"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", third.as_str()),
        ])
        .send()
        .await
        .expect("a response");
    assert_eq!(wrong_secret.status(), StatusCode::UNAUTHORIZED);
    // client_secret_post works as well as Basic.
    let r = p
        .post_form(
            "/api/oidc/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", third.as_str()),
                ("redirect_uri", CALLBACK_URL),
                ("code_verifier", verifier),
                ("client_id", CLIENT_ID),
                ("client_secret", p.lab.client_secret()),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "content-type"), "application/json;charset=UTF-8");
    assert_eq!(header(&r, "cache-control"), "no-store");
    assert_eq!(header(&r, "pragma"), "no-cache");
    let text = r.text().await.expect("a body");
    let tokens: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(
        tokens
            .as_object()
            .map(|o| o.keys().cloned().collect::<Vec<_>>()),
        Some(
            [
                "access_token",
                "expires_in",
                "id_token",
                "refresh_token",
                "scope",
                "token_type"
            ]
            .map(String::from)
            .to_vec()
        )
    );
    assert_eq!(tokens["token_type"], "bearer");
    assert_eq!(tokens["expires_in"], 3600);
    assert_eq!(tokens["scope"], "openid email profile");
    assert!(
        tokens["refresh_token"]
            .as_str()
            .unwrap_or("")
            .starts_with("pocket_id_rt_")
    );
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[CLIENT_ID]);
    validation.set_issuer(&[ORIGIN]);
    let id_token = jsonwebtoken::decode::<Value>(
        tokens["id_token"].as_str().expect("an id_token"),
        &pocket_id_key(&p).await,
        &validation,
    )
    .expect("the id_token verifies with the JWKS");
    let c = &id_token.claims;
    assert_eq!(c["sub"], enrolled.user_id.as_str());
    assert_eq!(c["aud"], serde_json::json!([CLIENT_ID]));
    assert_eq!(c["nonce"], "n-2");
    assert_eq!(c["amr"], serde_json::json!(["otp"]));
    assert_eq!(c["email"], "probe@example.com");
    assert_eq!(c["email_verified"], true);
    assert_eq!(c["name"], "Probe Monitor");
    assert_eq!(c["given_name"], "Probe");
    assert_eq!(c["family_name"], "Monitor");
    assert_eq!(c["preferred_username"], "probe");
    assert_eq!(c["type"], "id-token");
    assert_eq!(
        c["exp"].as_u64().zip(c["iat"].as_u64()).map(|(e, i)| e - i),
        Some(3600)
    );
    assert!(c["auth_time"].as_u64().is_some());
    let access = claims(tokens["access_token"].as_str().expect("an access token"));
    assert_eq!(access["aud"], serde_json::json!([CLIENT_ID, ORIGIN]));

    // userinfo answers the access token with the user's claims; anything else (no
    // token, the id_token, garbage) with fosite's request_unauthorized and a Bearer
    // challenge repeating it, as a real v2.14 instance does.
    let userinfo = |token: Option<&str>| {
        let mut request = p.client.get(p.url(IDP_HOST, "/api/oidc/userinfo"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    let r = userinfo(tokens["access_token"].as_str())
        .await
        .expect("a response");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "access-control-allow-origin"), "*");
    let info: Value = r.json().await.expect("JSON");
    assert_eq!(info["sub"], enrolled.user_id.as_str());
    assert_eq!(info["email"], "probe@example.com");
    assert_eq!(info["preferred_username"], "probe");
    let unauthorized = "The request could not be authorized. Check that you provided valid credentials in the right format.";
    for token in [None, tokens["id_token"].as_str(), Some("garbage")] {
        let r = userinfo(token).await.expect("a response");
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{token:?}");
        assert_eq!(
            header(&r, "www-authenticate"),
            format!("Bearer error=\"request_unauthorized\", error_description=\"{unauthorized}\"")
        );
        assert_eq!(
            header(&r, "content-type"),
            "application/json; charset=utf-8"
        );
        let body: Value = r.json().await.expect("JSON");
        assert_eq!(body["error"], "request_unauthorized");
        assert_eq!(body["error_description"], unauthorized);
    }
    let (_, body) = redeem(
        third,
        vec![redirect(), ("code_verifier", verifier.to_string())],
    )
    .await;
    assert_eq!(hint(&body), "The authorization code has already been used.");
}

#[tokio::test]
async fn service_tokens_pass_access_without_a_login() {
    let p = start(&[]).await;
    let (id, secret) = p.lab.service_token();
    let r = p
        .client
        .get(p.url(SERVICE_HOST, "/status"))
        .header("cf-access-client-id", id)
        .header("cf-access-client-secret", secret)
        .send()
        .await
        .expect("a response");
    assert_eq!(r.status(), StatusCode::OK);
    let (token, _) = set_cookie(&r, "CF_Authorization").expect("a session cookie");
    let c = claims(&token);
    assert_eq!(c["common_name"], id);
    assert_eq!(c["sub"], "");
    assert_eq!(c["type"], "app");
    let page = r.text().await.expect("a body");
    assert!(page.contains("Welcome to service.example.com"));
    assert!(page.contains(id));

    let wrong = p
        .client
        .get(p.url(SERVICE_HOST, "/"))
        .header("cf-access-client-id", id)
        .header("cf-access-client-secret", "0".repeat(64))
        .send()
        .await
        .expect("a response");
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    assert_eq!(header(&wrong, "cf-access-aud"), AUD);
    assert!(
        wrong
            .text()
            .await
            .expect("a body")
            .contains("Error ・ Cloudflare Access")
    );

    // A client cannot hand the origin an assertion of its own.
    let forged = p
        .client
        .get(p.url(SERVICE_HOST, "/"))
        .header("cookie", format!("CF_Authorization={token}x"))
        .header("cf-access-jwt-assertion", &token)
        .send()
        .await
        .expect("a response");
    assert_eq!(forged.status(), StatusCode::FOUND);
}

#[tokio::test]
async fn fault_no_service_auth() {
    let p = start(&[Fault::NoServiceAuth]).await;
    let (id, secret) = p.lab.service_token();
    let r = p
        .client
        .get(p.url(SERVICE_HOST, "/"))
        .header("cf-access-client-id", id)
        .header("cf-access-client-secret", secret)
        .send()
        .await
        .expect("a response");
    assert_eq!(r.status(), StatusCode::FOUND);
    assert!(location(&r).contains("/cdn-cgi/access/login/service.example.com"));
}

#[tokio::test]
async fn fault_passkey_revoked() {
    let p = start(&[Fault::PasskeyRevoked]).await;
    let mut enrolled = p.enrol().await;
    let listed: Value = p
        .admin(
            reqwest::Method::GET,
            &format!("/api/users/{}/webauthn-credentials", enrolled.user_id),
            None,
        )
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(listed, serde_json::json!([]));
    let b = browser(&p);
    let r = p.passkey_login(&b, &mut enrolled.key).await;
    assert_eq!(
        error_code(r).await,
        (
            StatusCode::UNAUTHORIZED,
            "webauthn_authentication_failed".into()
        )
    );
}

#[tokio::test]
async fn fault_user_disabled() {
    let p = start(&[Fault::UserDisabled]).await;
    let mut enrolled = p.enrol().await;
    let b = browser(&p);
    let r = p.passkey_login(&b, &mut enrolled.key).await;
    let body: Value = {
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        r.json().await.expect("JSON")
    };
    assert_eq!(body["code"], "user_disabled");
    assert_eq!(body["error"], "User account is disabled");
}

#[tokio::test]
async fn fault_user_not_allowed() {
    let p = start(&[Fault::UserNotAllowed]).await;
    let mut enrolled = p.enrol().await;
    let (_, _, r) = p.login_to_code(&mut enrolled).await;
    assert_eq!(r.status(), StatusCode::FOUND);
    assert_eq!(
        location(&r),
        "/interaction/error?error=You+are+not+allowed+to+access+this+service."
    );
}

#[tokio::test]
async fn fault_access_bad_secret() {
    let p = start(&[Fault::AccessBadSecret]).await;
    let mut enrolled = p.enrol().await;
    let (_, r) = p.login_to_callback(&mut enrolled).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_edge(&r);
    let page = r.text().await.expect("a body");
    assert!(page.contains("<title>Error ・ Cloudflare Access</title>"));
    assert!(page.contains(
        "OIDC ERROR: Failed to exchange code for token. Make sure the client secret is correct."
    ));
}

#[tokio::test]
async fn fault_access_jwks_unreachable() {
    let p = start(&[Fault::AccessJwksUnreachable]).await;
    let mut enrolled = p.enrol().await;
    let (_, r) = p.login_to_callback(&mut enrolled).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let page = r.text().await.expect("a body");
    assert!(
        page.contains("Failed to verify oidc token with fresh keys"),
        "{page}"
    );
    // Pocket ID's own JWKS is fine; only Access's Certificate URL is wrong.
    let jwks = p.get(&p.url(IDP_HOST, "/.well-known/jwks.json")).await;
    assert_eq!(jwks.status(), StatusCode::OK);
}

#[tokio::test]
async fn fault_access_policy_deny() {
    let p = start(&[Fault::AccessPolicyDeny]).await;
    let mut enrolled = p.enrol().await;
    let (_, r) = p.login_to_callback(&mut enrolled).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(set_cookie(&r, "CF_Authorization").is_none());
    let page = r.text().await.expect("a body");
    assert!(page.contains("<title>Sign in ・ Cloudflare Access</title>"));
    assert!(page.contains("That account does not have access"));
}

#[tokio::test]
async fn fault_tunnel_down() {
    let p = start(&[Fault::TunnelDown]).await;
    // Access is evaluated first: anonymous requests still get the login redirect.
    let anonymous = p.get(&p.url(SERVICE_HOST, "/")).await;
    assert_eq!(anonymous.status(), StatusCode::FOUND);
    let mut enrolled = p.enrol().await;
    let b = p.login_to_site(&mut enrolled).await;
    let html = b
        .get(p.url(SERVICE_HOST, "/"))
        .send()
        .await
        .expect("a response");
    assert_eq!(html.status().as_u16(), 530);
    assert_edge(&html);
    assert_eq!(header(&html, "retry-after"), "120");
    let page = html.text().await.expect("a body");
    assert!(page.contains(r#"cf-error-code">1033<"#), "{page}");
    assert!(page.contains("Cloudflare Tunnel error"));
    let json = b
        .get(p.url(SERVICE_HOST, "/"))
        .header("accept", "application/json")
        .send()
        .await
        .expect("a response");
    assert_eq!(json.status().as_u16(), 530);
    assert_eq!(
        header(&json, "content-type"),
        "application/json; charset=utf-8"
    );
    let body: Value = json.json().await.expect("RFC 9457 JSON");
    assert_eq!(body["status"], 530);
    assert_eq!(body["error_code"], 1033);
    assert_eq!(body["error_category"], "config");
    assert_eq!(body["retryable"], true);
    assert_eq!(body["retry_after"], 120);
    assert!(body["ray_id"].as_str().is_some_and(|r| is_hex(r, 16)));
}

#[tokio::test]
async fn fault_origin_down() {
    let p = start(&[Fault::OriginDown]).await;
    let mut enrolled = p.enrol().await;
    let b = p.login_to_site(&mut enrolled).await;
    let r = b
        .get(p.url(SERVICE_HOST, "/"))
        .send()
        .await
        .expect("a response");
    assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
    assert_edge(&r);
    assert_eq!(header(&r, "content-type"), "text/plain; charset=utf-8");
    assert!(
        r.text()
            .await
            .expect("a body")
            .starts_with("Unable to reach the origin service. The service may be down or it may not be responding to traffic from cloudflared")
    );
}

/// The site's answer after a login under `variant` with `fault`: status, content
/// type and body.
async fn site_after_login(variant: Variant, fault: Fault) -> (StatusCode, Option<String>, String) {
    let p = start_as(variant, &[fault]).await;
    let mut enrolled = p.enrol().await;
    let b = p.login_to_site(&mut enrolled).await;
    let r = b
        .get(p.url(SERVICE_HOST, "/"))
        .send()
        .await
        .expect("a response");
    assert_edge(&r);
    let content_type = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (r.status(), content_type, r.text().await.expect("a body"))
}

#[tokio::test]
async fn fault_ingress_missing() {
    // cloudflared's catch-all http_status:404: the status alone, under every face.
    for variant in Variant::ALL {
        let (status, content_type, body) = site_after_login(variant, Fault::IngressMissing).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{variant}");
        assert_eq!(content_type, None, "{variant}");
        assert_eq!(body, "", "{variant}");
    }
}

#[tokio::test]
async fn fault_origin_404() {
    // The application's own 404 has a face per variant; one of them is the bare
    // status, byte for byte what cloudflared's catch-all answers.
    let mut bodies = Vec::new();
    for variant in Variant::ALL {
        let (status, content_type, body) = site_after_login(variant, Fault::Origin404).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{variant}");
        assert_eq!(
            content_type.is_some(),
            !body.is_empty(),
            "{variant}: {body}"
        );
        bodies.push(body);
    }
    assert!(bodies.iter().any(String::is_empty), "{bodies:?}");
    assert!(
        bodies.iter().filter(|b| !b.is_empty()).count() >= 2,
        "{bodies:?}"
    );
    bodies.dedup();
    assert_eq!(bodies.len(), Variant::ALL.len(), "{bodies:?}");
}

#[tokio::test]
async fn fault_wrong_rp_id() {
    let p = start(&[Fault::WrongRpId]).await;
    // The passkey was enrolled before APP_URL changed.
    let mut enrolled = p.enrol().await;
    assert_eq!(enrolled.key.rp_id, IDP_HOST);
    let b = browser(&p);
    let start: Value = b
        .get(p.url(IDP_HOST, "/api/webauthn/login/start"))
        .send()
        .await
        .expect("a response")
        .json()
        .await
        .expect("JSON");
    assert_eq!(start["rpId"], "pocket-id.internal");
    assert!(enrolled.key.assert(&start, ORIGIN, UP | UV).is_none());
    // Signed anyway for the real host: Pocket ID checks against the other RP.
    let forced = enrolled.key.assert_anyway(&start, ORIGIN, UP | UV);
    let r = b
        .post(p.url(IDP_HOST, "/api/webauthn/login/finish"))
        .json(&forced)
        .send()
        .await
        .expect("a response");
    assert_eq!(
        error_code(r).await,
        (
            StatusCode::UNAUTHORIZED,
            "webauthn_authentication_failed".into()
        )
    );
}

#[tokio::test]
async fn access_refuses_logins_it_cannot_tie_to_a_browser() {
    let p = start(&[]).await;
    let callback = p
        .get(&p.url(
            TEAM_HOST,
            "/cdn-cgi/access/callback?code=x&state=not-a-state",
        ))
        .await;
    assert_eq!(callback.status(), StatusCode::BAD_REQUEST);
    assert!(
        callback
            .text()
            .await
            .expect("a body")
            .contains("Invalid login session")
    );
    let authorized = p
        .get(&p.url(SERVICE_HOST, "/cdn-cgi/access/authorized?nonce=t&state=t"))
        .await;
    assert_eq!(authorized.status(), StatusCode::BAD_REQUEST);
    // An OAuth error from the IdP ends on Access's error page.
    let b = browser(&p);
    let first = b
        .get(p.url(SERVICE_HOST, "/"))
        .send()
        .await
        .expect("a response");
    let login = b
        .get(p.route(location(&first)))
        .send()
        .await
        .expect("a response");
    let state = query(&Url::parse(location(&login)).expect("URL"))["state"].clone();
    let mut url = Url::parse(&p.url(TEAM_HOST, "/cdn-cgi/access/callback")).expect("URL");
    url.query_pairs_mut()
        .append_pair("error", "access_denied")
        .append_pair("state", &state);
    let r = b.get(url).send().await.expect("a response");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.expect("a body").contains("access_denied"));
}

// ---------------------------------------------------------------------------------
// The faults added with the faces, and the faces themselves.

#[tokio::test]
async fn fault_idp_chooser_via_team() {
    let p = start(&[Fault::IdpChooserViaTeam]).await;
    let b = browser(&p);
    let first = b
        .get(p.url(SERVICE_HOST, "/"))
        .send()
        .await
        .expect("a response");
    let login_url = p.route(location(&first));
    let page = b.get(&login_url).send().await.expect("a response");
    assert_eq!(page.status(), StatusCode::OK);
    let text = page.text().await.expect("a page");
    assert!(text.contains("<title>Sign in ・ Cloudflare Access</title>"));
    let (url, form) = p.pocket_id_choice(&login_url, &text);
    assert!(form.is_none(), "the classic page has links");
    // The link is absolute, on the team domain, with the IdP's id.
    let html = scraper::Html::parse_document(&text);
    let link = scraper::Selector::parse(".AuthBox-idps a").expect("selector");
    let href = html
        .select(&link)
        .next()
        .and_then(|a| a.value().attr("href"))
        .expect("a Pocket ID link");
    let href = Url::parse(href).expect("an absolute link");
    assert_eq!(href.host_str(), Some(TEAM_HOST));
    assert_eq!(href.path(), "/cdn-cgi/access/login/service.example.com");
    let q = query(&href);
    assert_eq!(q["kid"], AUD);
    assert_eq!(q["redirect_url"], "/");
    assert!(q.contains_key("meta"));
    assert!(uuid::Uuid::parse_str(&q["idp"]).is_ok());
    // One more request: the team domain sends the browser to Pocket ID.
    let hop = p.choose(&b, (url, None)).await;
    assert_eq!(hop.status(), StatusCode::FOUND);
    assert_edge(&hop);
    assert!(set_cookie(&hop, "CF_Session").is_some());
    let authorize = Url::parse(location(&hop)).expect("an authorize URL");
    assert_eq!(authorize.host_str(), Some(IDP_HOST));
    assert_eq!(authorize.path(), "/authorize");
    assert_eq!(query(&authorize)["redirect_uri"], CALLBACK_URL);
    assert_eq!(query(&authorize)["code_challenge_method"], "S256");
    // An id the team does not have.
    let mut unknown = Url::parse(&p.route(href.as_str())).expect("URL");
    let pairs: Vec<(String, String)> = unknown
        .query_pairs()
        .filter(|(k, _)| k != "idp")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    unknown
        .query_pairs_mut()
        .clear()
        .extend_pairs(pairs)
        .append_pair("idp", "00000000-0000-4000-8000-000000000000");
    let refused = b.get(unknown).send().await.expect("a response");
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);

    // The login completes through the chooser.
    let mut enrolled = p.enrol().await;
    let b = p.login_to_site(&mut enrolled).await;
    let site = b
        .get(p.url(SERVICE_HOST, "/"))
        .send()
        .await
        .expect("a response");
    assert_eq!(site.status(), StatusCode::OK);
}

#[tokio::test]
async fn fault_callback_trailing_slash() {
    let p = start(&[Fault::CallbackTrailingSlash]).await;
    let authorize = p.authorize_url().await;
    assert_eq!(
        query(&authorize)["redirect_uri"],
        format!("{CALLBACK_URL}/")
    );
    let r = p.get(&p.route(authorize.as_str())).await;
    assert_eq!(r.status(), StatusCode::FOUND);
    assert_eq!(
        location(&r),
        "/interaction/error?error=The+redirect_uri+%27https%3A%2F%2Fxyz.cloudflareaccess.com%2Fcdn-cgi%2Faccess%2Fcallback%2F%27+is+not+registered+for+this+client."
    );
}

#[tokio::test]
async fn fault_service_auth_only() {
    let p = start(&[Fault::ServiceAuthOnly]).await;
    for accept in ["*/*", BROWSER_ACCEPT] {
        let r = p
            .client
            .get(p.url(SERVICE_HOST, "/"))
            .header("accept", accept)
            .send()
            .await
            .expect("a response");
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert_edge(&r);
        assert_eq!(location(&r), "");
        assert_eq!(header(&r, "cf-access-aud"), AUD);
        assert_eq!(header(&r, "cf-access-domain"), SERVICE_HOST);
        assert!(cookies(r.headers()).is_empty());
        let page = r.text().await.expect("a body");
        assert!(page.contains("<title>Error ・ Cloudflare Access</title>"));
        assert!(page.contains("You don&#39;t have permission to view this."));
    }
    let (id, secret) = p.lab.service_token();
    let r = p
        .client
        .get(p.url(SERVICE_HOST, "/"))
        .header("cf-access-client-id", id)
        .header("cf-access-client-secret", secret)
        .send()
        .await
        .expect("a response");
    assert_eq!(r.status(), StatusCode::OK);
}

/// The answer of the site's gate to an anonymous GET / with `accept` and `agent`.
async fn gate_answer(p: &Probe, accept: Option<&str>, agent: Option<&str>) -> Response {
    let mut request = p.client.get(p.url(SERVICE_HOST, "/"));
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    if let Some(agent) = agent {
        request = request.header("user-agent", agent);
    }
    request.send().await.expect("a response")
}

/// Asserts Managed OAuth's 401: the Bearer challenge pointing at the resource metadata.
async fn assert_bearer_challenge(r: Response, what: &str) {
    let metadata = "https://service.example.com/.well-known/cloudflare-access-protected-resource/";
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{what}");
    assert_edge(&r);
    assert_eq!(location(&r), "");
    assert_eq!(
        header(&r, "www-authenticate"),
        format!(
            "Bearer realm=\"OAuth\", error=\"invalid_token\", resource_metadata=\"{metadata}\""
        )
    );
    assert_eq!(header(&r, "content-type"), "application/json");
    let body: Value = r.json().await.expect("JSON");
    assert_eq!(
        body,
        serde_json::json!({ "error": "invalid_token", "resource_metadata": metadata })
    );
}

/// A curl, a script or a CLI: never a browser, whatever the face.
const NOT_BROWSERS: [(Option<&str>, Option<&str>); 5] = [
    (None, None),
    (Some("*/*"), Some("curl/8.5.0")),
    (Some("application/json"), Some("ssoprobe/0.1.0")),
    // A browser's Accept does not make a browser.
    (Some(BROWSER_ACCEPT), Some("ssoprobe/0.1.0")),
    (Some(BROWSER_ACCEPT), None),
];

#[tokio::test]
async fn fault_managed_oauth_tells_browsers_by_accept_and_user_agent() {
    // A browser's User-Agent without a rendering engine's token.
    let bare = "Mozilla/5.0 (compatible; Monitor/1.0)";
    for variant in Variant::ALL {
        let p = start_as(variant, &[Fault::ManagedOauth]).await;
        for (accept, agent) in NOT_BROWSERS {
            let r = gate_answer(&p, accept, agent).await;
            assert_bearer_challenge(r, &format!("{variant}: {accept:?} {agent:?}")).await;
        }
        let r = gate_answer(&p, Some(BROWSER_ACCEPT), Some(BROWSER_USER_AGENT)).await;
        assert_eq!(r.status(), StatusCode::FOUND, "{variant}");
        // Where the faces differ: the User-Agent alone (terse), and how much of a
        // browser's it must be (rebranded).
        let r = gate_answer(&p, Some("application/json"), Some(BROWSER_USER_AGENT)).await;
        let expected = match variant {
            Variant::Terse => StatusCode::FOUND,
            Variant::Classic | Variant::Rebranded => StatusCode::UNAUTHORIZED,
        };
        assert_eq!(
            r.status(),
            expected,
            "{variant}: a browser's User-Agent only"
        );
        let r = gate_answer(&p, Some(BROWSER_ACCEPT), Some(bare)).await;
        let expected = match variant {
            Variant::Rebranded => StatusCode::UNAUTHORIZED,
            Variant::Classic | Variant::Terse => StatusCode::FOUND,
        };
        assert_eq!(r.status(), expected, "{variant}: {bare}");
    }
}

#[tokio::test]
async fn fault_managed_oauth_everyone_answers_browsers_401_too() {
    for variant in Variant::ALL {
        let p = start_as(variant, &[Fault::ManagedOauthEveryone]).await;
        let browser_shape = [(Some(BROWSER_ACCEPT), Some(BROWSER_USER_AGENT))];
        for (accept, agent) in NOT_BROWSERS.into_iter().chain(browser_shape) {
            let r = gate_answer(&p, accept, agent).await;
            assert_bearer_challenge(r, &format!("{variant}: {accept:?} {agent:?}")).await;
        }
        // A service token still passes.
        let (id, secret) = p.lab.service_token();
        let r = p
            .client
            .get(p.url(SERVICE_HOST, "/"))
            .header("cf-access-client-id", id)
            .header("cf-access-client-secret", secret)
            .send()
            .await
            .expect("a response");
        assert_eq!(r.status(), StatusCode::OK, "{variant}");
    }
}

#[tokio::test]
async fn fault_managed_oauth() {
    let p = start(&[Fault::ManagedOauth]).await;
    // A browser is sent to log in, and the login works.
    let b = browser(&p);
    let r = b
        .get(p.url(SERVICE_HOST, "/"))
        .send()
        .await
        .expect("a response");
    assert_eq!(r.status(), StatusCode::FOUND);
    assert!(location(&r).starts_with("https://xyz.cloudflareaccess.com/cdn-cgi/access/login/"));
    let mut enrolled = p.enrol().await;
    let b = p.login_to_site(&mut enrolled).await;
    let site = b
        .get(p.url(SERVICE_HOST, "/"))
        .send()
        .await
        .expect("a response");
    assert_eq!(site.status(), StatusCode::OK);
    // The session counts for a CLI too.
    let cli = b
        .get(p.url(SERVICE_HOST, "/"))
        .header("accept", "application/json")
        .header("user-agent", "curl/8.5.0")
        .send()
        .await
        .expect("a response");
    assert_eq!(cli.status(), StatusCode::OK);
}

#[tokio::test]
async fn fault_clock_skew() {
    let p = start(&[Fault::ClockSkew]).await;
    let mut enrolled = p.enrol().await;
    let (b, callback) = p.login_to_callback(&mut enrolled).await;
    assert_eq!(callback.status(), StatusCode::FOUND);
    let (org, _) = set_cookie(&callback, "CF_Authorization").expect("the global session");
    let now = wire::unix_now();
    let org_iat = claims(&org)["iat"].as_u64().unwrap_or(0);
    assert!(org_iat.abs_diff(now) < 5, "the global session is on time");
    let authorized = b
        .get(p.route(location(&callback)))
        .send()
        .await
        .expect("a response");
    assert_eq!(authorized.status(), StatusCode::FOUND);
    let (app, _) = set_cookie(&authorized, "CF_Authorization").expect("the app session");
    let c = claims(&app);
    let (iat, nbf, exp) = (
        c["iat"].as_u64().unwrap_or(0),
        c["nbf"].as_u64().unwrap_or(0),
        c["exp"].as_u64().unwrap_or(0),
    );
    assert!(
        (595..=605).contains(&(iat.saturating_sub(now))),
        "iat {iat}, now {now}"
    );
    assert_eq!(nbf, iat);
    assert_eq!(exp - iat, 86_400);
    // The edge's clock is right, so the token is not valid yet: back to the login.
    let before = wire::unix_now();
    let site = b
        .get(p.url(SERVICE_HOST, "/"))
        .send()
        .await
        .expect("a response");
    let after = wire::unix_now();
    assert_eq!(site.status(), StatusCode::FOUND);
    assert!(location(&site).contains("/cdn-cgi/access/login/service.example.com"));
    let date = header(&site, "date");
    assert!(
        (before.saturating_sub(1)..=after).any(|t| wire::imf_fixdate(t) == date),
        "Date {date} is not between {before} and {after}"
    );
}

#[tokio::test]
async fn fault_token_blocked_for_access() {
    let p = start(&[Fault::TokenBlockedForAccess]).await;
    let form = [("grant_type", "authorization_code"), ("code", "x")];
    let blocked = p
        .client
        .post(p.url(IDP_HOST, "/api/oidc/token"))
        .header("user-agent", "cloudflare-access")
        .form(&form)
        .send()
        .await
        .expect("a response");
    assert_eq!(blocked.status(), StatusCode::FORBIDDEN);
    assert_edge(&blocked);
    assert_eq!(header(&blocked, "cf-mitigated"), "challenge");
    assert!(header(&blocked, "x-request-id").is_empty());
    assert!(
        blocked
            .text()
            .await
            .expect("a body")
            .contains("Just a moment...")
    );
    // Any other client reaches Pocket ID.
    for agent in ["ssoprobe/1.0", "curl/8.5.0"] {
        let r = p
            .client
            .post(p.url(IDP_HOST, "/api/oidc/token"))
            .header("user-agent", agent)
            .form(&form)
            .send()
            .await
            .expect("a response");
        assert_ne!(r.status(), StatusCode::FORBIDDEN);
        assert!(header(&r, "cf-mitigated").is_empty());
        assert!(!header(&r, "x-request-id").is_empty(), "Pocket ID answered");
    }
    // Access's own redemption is challenged: its callback says so.
    let mut enrolled = p.enrol().await;
    let (_, r) = p.login_to_callback(&mut enrolled).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let page = r.text().await.expect("a body");
    assert!(page.contains("Failed to exchange code for token"), "{page}");
}

/// Access's page when the id_token gives it no e-mail address in the claim it reads.
const NO_IDENTITY: &str = "Failed to fetch user/group information from the identity provider";

#[tokio::test]
async fn faults_that_leave_access_without_an_identity() {
    // The login method reads claim `mail`: Pocket ID sends `email`.
    let p = start(&[Fault::EmailClaimName]).await;
    let mut enrolled = p.enrol().await;
    let (_, r) = p.login_to_callback(&mut enrolled).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_edge(&r);
    assert!(r.text().await.expect("a body").contains(NO_IDENTITY));
    // A user without an address, where Pocket ID does not require one.
    let p = start(&[Fault::UserinfoFails]).await;
    let mut enrolled = p.enrol_as("probe", "").await;
    let (_, r) = p.login_to_callback(&mut enrolled).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.expect("a body").contains(NO_IDENTITY));
    // Pocket ID requires one otherwise.
    let p = start(&[]).await;
    let r = p
        .admin(
            reqwest::Method::POST,
            "/api/users",
            Some(serde_json::json!({ "username": "probe" })),
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // Access asks without the scope email: Pocket ID's id_token has no address.
    let p = start(&[Fault::ScopesWithoutEmail]).await;
    let authorize = p.access_authorize_url(&browser(&p)).await;
    assert_eq!(query(&authorize)["scope"], "openid profile");
    let mut enrolled = p.enrol().await;
    let (_, r) = p.login_to_callback(&mut enrolled).await;
    assert!(r.text().await.expect("a body").contains(NO_IDENTITY));
}

#[tokio::test]
async fn fault_token_url_wrong() {
    let p = start(&[Fault::TokenUrlWrong]).await;
    // Pocket ID serves its token endpoint; the path Access was given answers 404.
    let wrong = p
        .client
        .post(p.url(IDP_HOST, "/api/oidc/tokens"))
        .form(&[("grant_type", "authorization_code"), ("code", "x")])
        .send()
        .await
        .expect("a response");
    assert_eq!(wrong.status(), StatusCode::NOT_FOUND);
    assert!(
        !header(&wrong, "x-request-id").is_empty(),
        "Pocket ID answered"
    );
    // Access's redemption goes there: the same page as a wrong secret.
    let mut enrolled = p.enrol().await;
    let (_, r) = p.login_to_callback(&mut enrolled).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_edge(&r);
    let page = r.text().await.expect("a body");
    assert!(page.contains("Failed to exchange code for token"), "{page}");
}

#[tokio::test]
async fn fault_jwks_blocked_for_access() {
    let p = start(&[Fault::JwksBlockedForAccess]).await;
    let get = |agent: &'static str| {
        p.client
            .get(p.url(IDP_HOST, "/.well-known/jwks.json"))
            .header("user-agent", agent)
            .send()
    };
    let blocked = get("cloudflare-access").await.expect("a response");
    assert_eq!(blocked.status(), StatusCode::FORBIDDEN);
    assert_edge(&blocked);
    assert_eq!(header(&blocked, "cf-mitigated"), "challenge");
    assert!(header(&blocked, "x-request-id").is_empty());
    // Any other client reaches Pocket ID's keys.
    for agent in ["ssoprobe/1.0", "curl/8.5.0"] {
        let r = get(agent).await.expect("a response");
        assert_eq!(r.status(), StatusCode::OK);
        assert!(header(&r, "cf-mitigated").is_empty());
        let keys: Value = r.json().await.expect("JSON");
        assert!(!keys["keys"].as_array().expect("keys").is_empty());
    }
    // Access redeems the code, then cannot fetch the keys: its callback says so.
    let mut enrolled = p.enrol().await;
    let (_, r) = p.login_to_callback(&mut enrolled).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let page = r.text().await.expect("a body");
    assert!(
        page.contains("Failed to verify oidc token with fresh keys"),
        "{page}"
    );
}

#[tokio::test]
async fn fault_idp_behind_tunnel_down() {
    let p = start(&[Fault::IdpBehindTunnelDown]).await;
    for path in [
        "/healthz",
        "/.well-known/openid-configuration",
        "/authorize?x=1",
        "/login",
    ] {
        let r = p.get(&p.url(IDP_HOST, path)).await;
        assert_eq!(r.status().as_u16(), 530, "{path}");
        assert_edge(&r);
        assert_eq!(header(&r, "retry-after"), "120");
        let body = r.text().await.expect("a body");
        assert!(body.contains(r#"cf-error-code">1033<"#), "{body}");
        assert!(body.contains("id.example.com"));
    }
    let token = p.post_form("/api/oidc/token", &[("a", "b")]).await;
    assert_eq!(token.status().as_u16(), 530);
    let json = p
        .client
        .get(p.url(IDP_HOST, "/.well-known/jwks.json"))
        .header("accept", "application/json")
        .send()
        .await
        .expect("a response");
    assert_eq!(json.status().as_u16(), 530);
    let body: Value = json.json().await.expect("RFC 9457 JSON");
    assert_eq!(body["error_code"], 1033);
    assert_eq!(body["zone"], IDP_HOST);
    // Access itself is unaffected.
    let r = p.get(&p.url(SERVICE_HOST, "/")).await;
    assert_eq!(r.status(), StatusCode::FOUND);
}

#[test]
fn variant_names_round_trip() {
    assert_eq!(Variant::default(), Variant::Classic);
    assert_eq!(LabConfig::default().variant, Variant::Classic);
    assert_eq!(
        LabConfig::default().with_variant(Variant::Terse).variant,
        Variant::Terse
    );
    for variant in Variant::ALL {
        assert_eq!(variant.name().parse::<Variant>(), Ok(variant));
        assert_eq!(variant.to_string(), variant.name());
        assert!(!variant.description().is_empty());
        assert!(!variant.description().contains('\n'));
    }
    let error = "fancy".parse::<Variant>().expect_err("not a variant");
    let text = error.to_string();
    assert!(text.contains("fancy"), "{text}");
    for variant in Variant::ALL {
        assert!(text.contains(variant.name()), "{text} lacks {variant}");
    }
}

/// The `<title>` of a page.
fn title(page: &str) -> String {
    let html = scraper::Html::parse_document(page);
    let title = scraper::Selector::parse("title").expect("selector");
    html.select(&title).flat_map(|t| t.text()).collect()
}

/// The markup of a page without its text: each element's name, id and classes, in
/// document order (Ray IDs, tokens and times are text or attribute values).
fn skeleton(page: &str) -> String {
    let html = scraper::Html::parse_document(page);
    let all = scraper::Selector::parse("*").expect("selector");
    html.select(&all)
        .map(|e| {
            let element = e.value();
            let classes: Vec<&str> = element.classes().collect();
            format!(
                "{}#{}.{}",
                element.name(),
                element.id().unwrap_or_default(),
                classes.join(".")
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The attribute names of a `Set-Cookie` line, in order and case.
fn cookie_attributes(line: &str) -> String {
    line.split(';')
        .skip(1)
        .map(|a| a.split('=').next().unwrap_or_default().trim())
        .collect::<Vec<_>>()
        .join(";")
}

/// The head of the answer to `GET path` on `host` as it crosses the wire (reqwest
/// shows header names lower-cased whatever the server wrote).
async fn raw_head(p: &Probe, host: &str, path: &str) -> String {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, ServerName};
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(p.lab.ca_pem().as_bytes()) {
        roots.add(cert.expect("PEM")).expect("a CA certificate");
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(p.lab.addr())
        .await
        .expect("connects");
    let name = ServerName::try_from(host.to_string()).expect("a host name");
    let mut tls = connector.connect(name, tcp).await.expect("TLS");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    tls.write_all(request.as_bytes()).await.expect("sent");
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    // The head is all that is needed.
    while !raw.windows(4).any(|w| w == b"\r\n\r\n") {
        match tls.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    text.split("\r\n\r\n")
        .next()
        .unwrap_or_default()
        .to_string()
}

/// The header names of a raw response head, in order.
fn header_names(head: &str) -> Vec<String> {
    head.lines()
        .skip(1)
        .filter_map(|line| line.split_once(':').map(|(name, _)| name.to_string()))
        .collect()
}

/// What one face of the lab shows, gathered while logging in through it.
struct Face {
    variant: Variant,
    /// The sign-in page's title (Instant Auth off).
    sign_in_title: String,
    /// Title and markup of Access's pages: the policy's denial, the team's 404,
    /// the refused service token.
    pages: Vec<String>,
    /// The attribute names of `CF_AppSession`, `CF_Session`, the team's and the
    /// application's `CF_Authorization`.
    cookies: Vec<String>,
    /// The first redirect's Location without its meta, and its `www-authenticate`.
    login_redirect: (String, String),
    /// Where `/cdn-cgi/access/authorized` sends the browser back to.
    return_location: String,
    /// The header names of the team's 404, as written on the wire.
    header_names: Vec<String>,
}

/// Visits `variant`'s face: a login through its sign-in page (Instant Auth off)
/// with its error pages, and a login with Instant Auth; checks what every face must
/// keep.
async fn visit(variant: Variant) -> Face {
    let mut face = Face {
        variant,
        sign_in_title: String::new(),
        pages: Vec::new(),
        cookies: Vec::new(),
        login_redirect: (String::new(), String::new()),
        return_location: String::new(),
        header_names: Vec::new(),
    };
    sign_in_through_the_page(variant, &mut face).await;

    // Instant Auth: the usual login, following every Location.
    let p = start_as(variant, &[]).await;
    let mut enrolled = p.enrol().await;
    let site = login_and_visit(&p, &mut enrolled).await;
    assert_eq!(site.status(), StatusCode::OK, "{variant}");
    assert!(
        site.text()
            .await
            .expect("a body")
            .contains("Signed in as probe@example.com.")
    );

    face
}

/// The login through `variant`'s sign-in page (Instant Auth off), to the site,
/// recording what `face` keeps of it; then a second account the policy denies and
/// Access's other error pages.
async fn sign_in_through_the_page(variant: Variant, face: &mut Face) {
    let p = start_as(variant, &[Fault::NoInstantAuth]).await;
    assert_eq!(p.lab.variant(), variant);
    let mut enrolled = p.enrol().await;
    let b = browser(&p);
    let first = b
        .get(p.url(SERVICE_HOST, "/a?b=c"))
        .send()
        .await
        .expect("a response");
    assert_eq!(first.status(), StatusCode::FOUND);
    assert_eq!(header(&first, "access-control-allow-credentials"), "true");
    let login_url = p.route(location(&first));
    let login = Url::parse(&login_url).expect("an absolute URL");
    assert_eq!(login.host_str(), Some(TEAM_HOST));
    assert_eq!(query(&login)["kid"], AUD);
    assert_eq!(query(&login)["redirect_url"], "/a?b=c");
    face.login_redirect = (
        location(&first)
            .split("&meta=")
            .next()
            .unwrap_or_default()
            .to_string(),
        header(&first, "www-authenticate").to_string(),
    );
    let (_, line) = set_cookie(&first, "CF_AppSession").expect("CF_AppSession");
    face.cookies.push(cookie_attributes(&line));

    let r = b.get(&login_url).send().await.expect("a response");
    assert_eq!(r.status(), StatusCode::OK, "{variant}");
    assert_edge(&r);
    assert_eq!(header(&r, "cf-access-domain"), SERVICE_HOST);
    let (_, line) = set_cookie(&r, "CF_Session").expect("CF_Session");
    face.cookies.push(cookie_attributes(&line));
    let page = r.text().await.expect("a page");
    face.sign_in_title = title(&page);
    assert!(
        face.sign_in_title.contains("Cloudflare Access"),
        "{variant}: {page}"
    );
    // Every face keeps the one-time-PIN block.
    let html = scraper::Html::parse_document(&page);
    let email = scraper::Selector::parse("form input[type=email]").expect("selector");
    assert_eq!(html.select(&email).count(), 1, "{variant}");
    assert!(page.contains("Send me a code"));

    let choice = p.pocket_id_choice(&login_url, &page);
    let via = Url::parse(&choice.0).expect("URL");
    let authorize = match variant {
        Variant::Classic => {
            // Straight to Pocket ID.
            assert!(choice.1.is_none());
            via
        }
        Variant::Rebranded | Variant::Terse => {
            assert_eq!(via.host_str(), Some(TEAM_HOST));
            assert_eq!(via.path(), "/cdn-cgi/access/login/service.example.com");
            assert_eq!(query(&via)["kid"], AUD);
            if variant == Variant::Rebranded {
                // A relative link, with the IdP's id.
                assert!(choice.1.is_none());
                assert!(page.contains(r#"href="/cdn-cgi/access/login/service.example.com?kid="#));
                assert!(uuid::Uuid::parse_str(&query(&via)["idp"]).is_ok());
            } else {
                let fields = choice.1.clone().expect("a form");
                assert_eq!(fields.len(), 1);
                assert_eq!(fields[0].0, "idp");
                assert!(!query(&via).contains_key("idp"));
            }
            // One more request: the team domain sends the browser to Pocket ID.
            let hop = p.choose(&b, choice).await;
            assert_eq!(hop.status(), StatusCode::FOUND, "{variant}");
            assert_edge(&hop);
            Url::parse(location(&hop)).expect("an authorize URL")
        }
    };
    assert_eq!(authorize.host_str(), Some(IDP_HOST));
    assert_eq!(authorize.path(), "/authorize");
    let q = query(&authorize);
    assert_eq!(q["client_id"], CLIENT_ID);
    assert_eq!(q["redirect_uri"], CALLBACK_URL);
    assert_eq!(q["scope"], "openid email profile");
    assert_eq!(q["code_challenge_method"], "S256");
    let interaction = p.interaction_at(&b, &authorize).await;
    let code = p
        .sign_in_at_pocket_id(&b, &interaction, &mut enrolled.key)
        .await;
    assert_eq!(code.status(), StatusCode::SEE_OTHER);
    let callback = b
        .get(p.route(location(&code)))
        .send()
        .await
        .expect("a response");
    assert_eq!(callback.status(), StatusCode::FOUND, "{variant}");
    let (_, line) = set_cookie(&callback, "CF_Authorization").expect("the global session");
    face.cookies.push(cookie_attributes(&line));
    let authorized_url = p.route(location(&callback));
    let authorized = b.get(&authorized_url).send().await.expect("a response");
    assert_eq!(authorized.status(), StatusCode::FOUND, "{variant}");
    let (_, line) = set_cookie(&authorized, "CF_Authorization").expect("the app session");
    face.cookies.push(cookie_attributes(&line));
    face.return_location = location(&authorized).to_string();
    let home = p.follow(&authorized_url, location(&authorized));
    assert_eq!(home, p.url(SERVICE_HOST, "/a?b=c"));
    let site = b.get(home).send().await.expect("a response");
    assert_eq!(site.status(), StatusCode::OK, "{variant}");

    // Someone the policy does not include gets the denial.
    let mut outsider = p.enrol_as("outsider", "outsider@example.org").await;
    let (_, denied) = p.login_to_callback(&mut outsider).await;
    assert_eq!(denied.status(), StatusCode::FORBIDDEN, "{variant}");
    assert_edge(&denied);
    assert_eq!(header(&denied, "cf-access-domain"), SERVICE_HOST);
    let body = denied.text().await.expect("a body");
    assert!(
        body.contains("That account does not have access"),
        "{variant}: {body}"
    );
    assert!(
        title(&body).contains("Cloudflare Access"),
        "{variant}: {body}"
    );
    assert!(body.contains("outsider@example.org"));
    face.pages
        .push(format!("{} | {}", title(&body), skeleton(&body)));
    let (id, _) = p.lab.service_token();
    let refused = p
        .client
        .get(p.url(SERVICE_HOST, "/"))
        .header("cf-access-client-id", id)
        .header("cf-access-client-secret", "0".repeat(64))
        .send()
        .await
        .expect("a response");
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(header(&refused, "cf-access-aud"), AUD);
    assert_eq!(header(&refused, "cf-access-domain"), SERVICE_HOST);
    let not_found = p.get(&p.url(TEAM_HOST, "/nope")).await;
    assert_eq!(not_found.status(), StatusCode::NOT_FOUND);
    for r in [refused, not_found] {
        assert_edge(&r);
        let body = r.text().await.expect("a body");
        assert!(
            title(&body).contains("Cloudflare Access"),
            "{variant}: {body}"
        );
        face.pages
            .push(format!("{} | {}", title(&body), skeleton(&body)));
    }
    face.header_names = header_names(&raw_head(&p, TEAM_HOST, "/nope").await);

    // The other faces offer GitHub too, through the team domain.
    if variant != Variant::Classic {
        let any = scraper::Selector::parse("a, form").expect("selector");
        let github = html
            .select(&any)
            .find(|e| e.text().collect::<String>().contains("GitHub"))
            .expect("a GitHub button");
        let input = scraper::Selector::parse("input[name=idp]").expect("selector");
        let choice = match github.value().attr("href") {
            Some(href) => (p.follow(&login_url, href), None),
            None => {
                let idp = github
                    .select(&input)
                    .next()
                    .and_then(|i| i.value().attr("value"))
                    .expect("an idp field");
                let action = github.value().attr("action").unwrap_or_default();
                (
                    p.follow(&login_url, action),
                    Some(vec![("idp".to_string(), idp.to_string())]),
                )
            }
        };
        let r = p.choose(&b, choice).await;
        assert_eq!(r.status(), StatusCode::FOUND);
        let github = Url::parse(location(&r)).expect("URL");
        assert_eq!(github.host_str(), Some("github.com"));
        assert_eq!(github.path(), "/login/oauth/authorize");
        assert_eq!(query(&github)["redirect_uri"], CALLBACK_URL);
    }
}

/// The whole login in a fresh browser, following every Location (relative ones
/// too), and the site it ends on.
async fn login_and_visit(p: &Probe, enrolled: &mut Enrolled) -> Response {
    let (b, callback) = p.login_to_callback(enrolled).await;
    assert_eq!(callback.status(), StatusCode::FOUND);
    let authorized_url = p.route(location(&callback));
    let authorized = b.get(&authorized_url).send().await.expect("a response");
    assert_eq!(authorized.status(), StatusCode::FOUND);
    let home = p.follow(&authorized_url, location(&authorized));
    assert_eq!(home, p.url(SERVICE_HOST, "/"));
    b.get(home).send().await.expect("a response")
}

#[tokio::test]
async fn every_face_logs_in_and_looks_different() {
    let faces = futures::future::join_all(Variant::ALL.map(visit)).await;
    let [classic, rebranded, terse] = &faces[..] else {
        unreachable!("three faces")
    };
    assert_eq!(classic.sign_in_title, "Sign in ・ Cloudflare Access");
    assert_eq!(classic.return_location, "https://service.example.com/a?b=c");
    assert!(
        classic
            .login_redirect
            .1
            .starts_with("Cloudflare-Access resource_metadata=")
    );
    assert!(classic.header_names.iter().any(|n| n == "cf-ray"));
    for other in [rebranded, terse] {
        let v = other.variant;
        assert_ne!(other.sign_in_title, classic.sign_in_title, "{v}");
        for (mine, theirs) in other.pages.iter().zip(&classic.pages) {
            assert_ne!(mine, theirs, "{v}: a page looks like classic");
        }
        assert_eq!(other.cookies.len(), 4);
        for (mine, theirs) in other.cookies.iter().zip(&classic.cookies) {
            assert_ne!(mine, theirs, "{v}: a cookie looks like classic");
        }
    }
    assert_ne!(rebranded.sign_in_title, terse.sign_in_title);
    // Same-host returns: relative in one face, absolute in the others.
    assert_eq!(rebranded.return_location, "/a?b=c");
    assert_eq!(terse.return_location, classic.return_location);
    // The terse face: another query order, no RFC 9728 hint, Title-Case header
    // names written sorted (hyper adds its own after them).
    assert_ne!(terse.login_redirect.0, classic.login_redirect.0);
    assert_eq!(terse.login_redirect.1, "");
    assert!(
        terse.header_names.iter().any(|n| n == "Cf-Ray"),
        "{:?}",
        terse.header_names
    );
    assert!(terse.header_names.iter().any(|n| n == "Server"));
    let edge_set = |names: &[String]| -> Vec<String> {
        names
            .iter()
            .filter(|n| {
                !["connection", "content-length", "date"].contains(&n.to_ascii_lowercase().as_str())
            })
            .cloned()
            .collect()
    };
    let terse_names = edge_set(&terse.header_names);
    let mut sorted = terse_names.clone();
    sorted.sort_by_key(|n| n.to_ascii_lowercase());
    assert_eq!(terse_names, sorted);
    let classic_names = edge_set(&classic.header_names);
    let mut sorted = classic_names.clone();
    sorted.sort();
    assert_ne!(classic_names, sorted, "classic keeps the handlers' order");
}

#[tokio::test]
async fn a_simulated_rtt_delays_every_connection_and_the_login_still_works() {
    const RTT: Duration = Duration::from_millis(30);
    let lab = Lab::start(LabConfig::default().with_rtt(RTT))
        .await
        .expect("the lab starts");
    assert_eq!(lab.rtt(), RTT);
    assert!(format!("{lab:?}").contains("rtt: 30ms"));
    let p = Probe {
        client: client(&lab, |b| b),
        lab,
    };
    // The delay line's timing is tested on tokio's paused clock (src/delay.rs) and
    // measured by bench/critical-path.sh; here, that answers cross it intact, on a
    // fresh connection and on the reused one.
    let first = p.get(&p.url(SERVICE_HOST, "/")).await;
    assert_eq!(first.status(), StatusCode::FOUND);
    let again = p.get(&p.url(SERVICE_HOST, "/")).await;
    assert_eq!(again.status(), StatusCode::FOUND);
    // The same login URL but for its signed `meta`, whose iat may fall in the next second.
    let without_meta = |l: &str| l.split("&meta=").next().unwrap_or_default().to_string();
    assert_eq!(
        without_meta(location(&again)),
        without_meta(location(&first))
    );

    // The whole login goes through the delay lines, and Access still redeems the
    // code at Pocket ID (on its back channel).
    let mut enrolled = p.enrol().await;
    let browser = p.login_to_site(&mut enrolled).await;
    let site = browser
        .get(p.url(SERVICE_HOST, "/"))
        .send()
        .await
        .expect("a response");
    assert_eq!(site.status(), StatusCode::OK);
    p.lab.shutdown().await;
}

#[tokio::test]
async fn speaks_http2_to_clients_that_offer_it_and_http1_to_the_others() {
    let p = start(&[]).await;
    // Cloudflare's edge offers HTTP/2 in ALPN; so does the lab, on every host.
    for host in [SERVICE_HOST, TEAM_HOST, IDP_HOST] {
        let r = p.get(&p.url(host, "/")).await;
        assert_eq!(r.version(), reqwest::Version::HTTP_2, "{host}");
    }
    let h1 = client(&p.lab, |b| b.http1_only());
    let r = h1
        .get(p.url(IDP_HOST, "/healthz"))
        .send()
        .await
        .expect("a response");
    assert_eq!(r.version(), reqwest::Version::HTTP_11);
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    p.lab.shutdown().await;
}
