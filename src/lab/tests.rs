//! The lab over HTTPS on loopback, as a client sees it: a real TLS client that trusts
//! only the lab CA, reaches the hosts through `resolve` (like `--resolve`) and
//! follows no redirects.

use super::*;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::header::{HeaderMap, SET_COOKIE};
use reqwest::redirect::Policy;
use reqwest::{Client, Response, StatusCode};
use serde_json::Value;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use url::Url;

/// A running lab and a client routed to it.
struct Probe {
    lab: Lab,
    client: Client,
}

async fn start(faults: &[Fault]) -> Probe {
    let lab = Lab::start(LabConfig {
        faults: faults.to_vec(),
    })
    .await
    .expect("the lab starts");
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
    for host in [SERVICE_HOST, TEAM_HOST, IDP_HOST] {
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
    assert_eq!(Fault::ALL.len(), 17);
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
async fn starts_quickly_and_routes_like_a_user_would() {
    let started = Instant::now();
    let p = start(&[Fault::JwksEmpty, Fault::JwksEmpty]).await;
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(5), "start took {elapsed:?}");
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
    assert_eq!(p.lab.client_secret().len(), 32);

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
    let started = Instant::now();
    let error = impatient
        .get(p.url(IDP_HOST, "/healthz"))
        .send()
        .await
        .expect_err("stalls");
    assert!(error.is_timeout(), "{error:?}");
    assert!(
        !error.is_connect(),
        "the TLS handshake completes: {error:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
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
    let started = Instant::now();
    p.lab.shutdown().await;
    assert!(started.elapsed() < Duration::from_secs(1));
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
