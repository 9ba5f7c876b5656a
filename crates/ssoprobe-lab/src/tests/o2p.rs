//! The oauth2-proxy gateway: its answers without a session, the whole passkey login
//! through it under every face, and each of its faults, as `reference/oauth2-proxy.md`
//! describes the real v7.15.6 in front of Pocket ID.

use super::*;

/// The lab with oauth2-proxy in front of the site.
async fn start_o2p(variant: Variant, faults: &[Fault]) -> Probe {
    let config = LabConfig::default()
        .with_faults(faults.to_vec())
        .with_variant(variant)
        .with_gateway(Gateway::Oauth2Proxy);
    let lab = Lab::start(config).await.expect("the lab starts");
    let client = client(&lab, |b| b);
    Probe { lab, client }
}

/// The no-cache headers oauth2-proxy puts on its pages and `/oauth2/` answers.
fn assert_no_cache(response: &Response) {
    assert_eq!(
        header(response, "cache-control"),
        "no-cache, no-store, must-revalidate, max-age=0"
    );
    assert_eq!(header(response, "x-accel-expires"), "0");
}

/// The front proxy's `Server` header under each face.
fn front_server(variant: Variant) -> &'static str {
    match variant {
        Variant::Classic => "Caddy",
        Variant::Rebranded => "nginx",
        Variant::Terse => "",
    }
}

/// Checks a redirect to Pocket ID's authorize as oauth2-proxy sends it, with PKCE or
/// without, returning to `rd`; returns the URL.
fn assert_authorize(response: &Response, pkce: bool, rd: &str) -> Url {
    assert_eq!(response.status(), StatusCode::FOUND);
    let url = Url::parse(location(response)).expect("an absolute authorize URL");
    assert_eq!(url.host_str(), Some(IDP_HOST));
    assert_eq!(url.path(), "/authorize");
    let q = query(&url);
    assert_eq!(q["approval_prompt"], "force");
    assert_eq!(q["client_id"], O2P_CLIENT_ID);
    assert_eq!(q["redirect_uri"], O2P_CALLBACK_URL);
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["scope"], "openid email profile");
    let (nonce, state_rd) = q["state"].split_once(':').expect("NONCE:RD");
    assert_eq!(nonce.len(), 43);
    assert_eq!(
        state_rd,
        url::form_urlencoded::byte_serialize(rd.as_bytes()).collect::<String>()
    );
    if pkce {
        assert_eq!(q["code_challenge"].len(), 43);
        assert_eq!(q["code_challenge_method"], "S256");
    } else {
        assert!(!q.contains_key("code_challenge"), "{url}");
        assert!(!q.contains_key("code_challenge_method"), "{url}");
    }
    // Go's url.Values.Encode: the parameters sorted by name.
    let names: Vec<String> = url.query_pairs().map(|(k, _)| k.into_owned()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    let (_, csrf) = set_cookie(response, "_oauth2_proxy_csrf").expect("a CSRF cookie");
    assert!(
        csrf.ends_with("; Path=/; Max-Age=900; HttpOnly; Secure"),
        "{csrf}"
    );
    url
}

impl Probe {
    /// In `browser`, from the site to Pocket ID's authorize URL: through the sign-in
    /// page's form where the face shows one.
    async fn o2p_authorize_url(&self, browser: &Client) -> Url {
        let home = self.url(SERVICE_HOST, "/");
        let first = browser.get(&home).send().await.expect("a response");
        let start = if first.status() == StatusCode::FORBIDDEN {
            let page = first.text().await.expect("a page");
            let html = scraper::Html::parse_document(&page);
            let forms = scraper::Selector::parse("form").expect("selector");
            let form = html
                .select(&forms)
                .find(|f| f.value().attr("action") == Some("/oauth2/start"))
                .expect("a form to /oauth2/start");
            let inputs = scraper::Selector::parse("input[name=rd]").expect("selector");
            let rd = form
                .select(&inputs)
                .next()
                .and_then(|i| i.value().attr("value"))
                .expect("rd")
                .to_string();
            let mut url = Url::parse(&self.url(SERVICE_HOST, "/oauth2/start")).expect("a URL");
            url.query_pairs_mut().append_pair("rd", &rd);
            browser.get(url).send().await.expect("a response")
        } else {
            first
        };
        assert_eq!(start.status(), StatusCode::FOUND);
        Url::parse(location(&start)).expect("an authorize URL")
    }

    /// The whole login in a fresh browser up to oauth2-proxy's callback answer.
    async fn o2p_login_to_callback(&self, enrolled: &mut Enrolled) -> (Client, Response) {
        let browser = browser(self);
        let authorize = self.o2p_authorize_url(&browser).await;
        let interaction = self.interaction_at(&browser, &authorize).await;
        let code = self
            .sign_in_at_pocket_id(&browser, &interaction, &mut enrolled.key)
            .await;
        assert_eq!(code.status(), StatusCode::SEE_OTHER);
        let back = Url::parse(location(&code)).expect("the callback");
        assert_eq!(
            format!("https://{}{}", back.host_str().unwrap_or(""), back.path()),
            O2P_CALLBACK_URL
        );
        assert_eq!(query(&back)["state"], query(&authorize)["state"]);
        let callback = browser
            .get(self.route(back.as_str()))
            .send()
            .await
            .expect("a response");
        (browser, callback)
    }
}

#[tokio::test]
async fn anonymous_requests_get_the_sign_in_page_or_the_login_and_scripts_401() {
    let cases = Variant::ALL
        .into_iter()
        .flat_map(|v| [(v, false), (v, true)]);
    for (variant, sign_in_page) in cases {
        let faults: &[Fault] = if sign_in_page {
            &[Fault::O2pSignInPage]
        } else {
            &[]
        };
        let p = start_o2p(variant, faults).await;
        let home = p.url(SERVICE_HOST, "/x?y=1");
        for accept in [Some(BROWSER_ACCEPT), Some("*/*"), None] {
            let mut request = p.client.get(&home);
            if let Some(accept) = accept {
                request = request.header("accept", accept);
            }
            let r = request.send().await.expect("a response");
            assert_eq!(header(&r, "server"), front_server(variant));
            if !sign_in_page {
                // --skip-provider-button: straight to Pocket ID.
                assert_authorize(&r, true, "/x?y=1");
                continue;
            }
            assert_eq!(r.status(), StatusCode::FORBIDDEN, "{variant} {accept:?}");
            assert_no_cache(&r);
            assert!(cookies(r.headers()).is_empty());
            assert_eq!(location(&r), "");
            assert!(header(&r, "content-type").starts_with("text/html"));
            let page = r.text().await.expect("a page");
            assert!(page.contains("action=\"/oauth2/start\""), "{page}");
            assert!(page.contains("value=\"/x?y=1\""), "{page}");
            assert!(!page.contains("{{"), "unfilled placeholder in {page}");
        }
        // A script: 401 {} and nothing else, whatever the face.
        for accept in [
            "application/json",
            "application/json, text/plain, */*",
            "text/html, application/json",
        ] {
            let r = p
                .client
                .get(&home)
                .header("accept", accept)
                .send()
                .await
                .expect("a response");
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{accept}");
            assert_eq!(header(&r, "content-type"), "application/json");
            assert_eq!(location(&r), "");
            assert_eq!(header(&r, "www-authenticate"), "");
            assert!(cookies(r.headers()).is_empty());
            assert_eq!(r.text().await.expect("a body"), "{}");
        }
        // A JSON item with parameters is a browser's.
        let r = p
            .client
            .get(&home)
            .header("accept", "application/json;q=0.9")
            .send()
            .await
            .expect("a response");
        assert_ne!(r.status(), StatusCode::UNAUTHORIZED);

        let start = p.get(&p.url(SERVICE_HOST, "/oauth2/start")).await;
        assert_no_cache(&start);
        assert_authorize(&start, true, "/");
        let off_site = p
            .get(&p.url(SERVICE_HOST, "/oauth2/start?rd=https://evil.example.net/"))
            .await;
        assert_authorize(&off_site, true, "/");
        let sign_in = p.get(&p.url(SERVICE_HOST, "/oauth2/sign_in?rd=/foo")).await;
        if !sign_in_page {
            assert_authorize(&sign_in, true, "/foo");
        } else {
            assert_eq!(sign_in.status(), StatusCode::OK);
            assert!(sign_in.text().await.expect("a page").contains("\"/foo\""));
        }

        for path in ["/ping", "/ready"] {
            let r = p
                .client
                .get(p.url(SERVICE_HOST, path))
                .header("accept", "application/json")
                .send()
                .await
                .expect("a response");
            assert_eq!(r.status(), StatusCode::OK, "{path}");
            assert_eq!(r.text().await.expect("a body"), "OK");
        }
        let auth = p.get(&p.url(SERVICE_HOST, "/oauth2/auth")).await;
        assert_eq!(auth.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(header(&auth, "cache-control"), "");
        assert_eq!(auth.text().await.expect("a body"), "Unauthorized\n");
        let userinfo = p.get(&p.url(SERVICE_HOST, "/oauth2/userinfo")).await;
        assert_eq!(userinfo.status(), StatusCode::UNAUTHORIZED);
        assert_no_cache(&userinfo);
        let out = p.get(&p.url(SERVICE_HOST, "/oauth2/sign_out")).await;
        assert_eq!(out.status(), StatusCode::FOUND);
        assert_eq!(location(&out), "/");
        assert!(cookies(out.headers()).is_empty());
    }
}

#[tokio::test]
async fn the_whole_login_through_oauth2_proxy_reaches_the_site_under_every_face() {
    for variant in Variant::ALL {
        let p = start_o2p(variant, &[]).await;
        let mut enrolled = p.enrol().await;
        let (browser, callback) = p.o2p_login_to_callback(&mut enrolled).await;
        assert_eq!(callback.status(), StatusCode::FOUND, "{variant}");
        assert_eq!(location(&callback), "/");
        let lines = cookies(callback.headers());
        assert_eq!(
            lines[0], "_oauth2_proxy_csrf=; Path=/; Max-Age=0; HttpOnly; Secure",
            "{lines:?}"
        );
        let (session, line) = set_cookie(&callback, "_oauth2_proxy").expect("a session");
        assert!(
            line.ends_with("; Path=/; Max-Age=604800; HttpOnly; Secure"),
            "{line}"
        );
        assert!(!line.contains("Domain") && !line.contains("SameSite"));

        let home = browser
            .get(p.url(SERVICE_HOST, "/"))
            .send()
            .await
            .expect("a response");
        assert_eq!(home.status(), StatusCode::OK, "{variant}");
        assert_eq!(header(&home, "gap-auth"), PROBE_EMAIL);
        assert!(
            home.text()
                .await
                .expect("a page")
                .contains("Signed in as probe@example.com")
        );
        // With the cookie a script is let through too.
        let json = browser
            .get(p.url(SERVICE_HOST, "/"))
            .header("accept", "application/json")
            .send()
            .await
            .expect("a response");
        assert_eq!(json.status(), StatusCode::OK);

        let auth = browser
            .get(p.url(SERVICE_HOST, "/oauth2/auth"))
            .send()
            .await
            .expect("a response");
        assert_eq!(auth.status(), StatusCode::ACCEPTED);
        assert_eq!(header(&auth, "gap-auth"), PROBE_EMAIL);
        let userinfo: Value = browser
            .get(p.url(SERVICE_HOST, "/oauth2/userinfo"))
            .send()
            .await
            .expect("a response")
            .json()
            .await
            .expect("JSON");
        assert_eq!(userinfo["email"], PROBE_EMAIL);
        assert_eq!(userinfo["user"], enrolled.user_id.as_str());
        assert_eq!(userinfo["preferredUsername"], "probe");

        // Sign-out asks the browser to drop the cookie and ends the session in the
        // store (a copy of the cookie no longer works).
        let out = browser
            .get(p.url(SERVICE_HOST, "/oauth2/sign_out"))
            .send()
            .await
            .expect("a response");
        assert_eq!(out.status(), StatusCode::FOUND);
        let (cleared, _) = set_cookie(&out, "_oauth2_proxy").expect("the cookie cleared");
        assert_eq!(cleared, "");
        let replayed = p
            .client
            .get(p.url(SERVICE_HOST, "/"))
            .header("cookie", format!("_oauth2_proxy={session}"))
            .header("accept", "application/json")
            .send()
            .await
            .expect("a response");
        assert_eq!(replayed.status(), StatusCode::UNAUTHORIZED);
        // A cookie oauth2-proxy never made is no session.
        let forged = p
            .client
            .get(p.url(SERVICE_HOST, "/"))
            .header("cookie", "_oauth2_proxy=forged")
            .header("accept", "application/json")
            .send()
            .await
            .expect("a response");
        assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn the_callback_checks_in_oauth2_proxys_order() {
    let p = start_o2p(Variant::Classic, &[]).await;
    let callback = |query: &str| p.url(SERVICE_HOST, &format!("/oauth2/callback{query}"));
    let page = |r: Response| async move {
        let status = r.status();
        (status, r.text().await.expect("a page"))
    };
    let (status, text) = page(
        p.get(&callback("?error=access_denied&error_description=x"))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        text.contains(
            "Login Failed: The upstream identity provider returned an error: access_denied"
        )
    );
    let (status, text) = page(p.get(&callback("?state=garbage&code=x")).await).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(text.contains("Oops! Something went wrong."));
    let (status, text) = page(p.get(&callback("?state=n:%2F&code=x")).await).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(text.contains("Unable to find a valid CSRF token"));
    // With the CSRF cookie of a login just started, a bogus code fails its redemption.
    let browser = browser(&p);
    let start = browser
        .get(p.url(SERVICE_HOST, "/oauth2/start"))
        .send()
        .await
        .expect("a response");
    let state = query(&assert_authorize(&start, true, "/"))["state"].clone();
    let mut url = Url::parse(&callback("")).expect("a URL");
    url.query_pairs_mut()
        .append_pair("code", "pocket_id_ac_bogus")
        .append_pair("state", &state);
    let r = browser.get(url).send().await.expect("a response");
    assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(set_cookie(&r, "_oauth2_proxy").is_none());
}

#[tokio::test]
async fn pocket_id_has_oauth2_proxys_client_only_under_that_gateway() {
    let path = format!("/api/oidc/clients/{O2P_CLIENT_ID}");
    let p = start_o2p(Variant::Classic, &[]).await;
    let r = p.admin(reqwest::Method::GET, &path, None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let client: Value = r.json().await.expect("JSON");
    assert_eq!(
        client["callbackURLs"],
        serde_json::json!([O2P_CALLBACK_URL])
    );
    assert_eq!(client["pkceEnabled"], true);
    assert_eq!(client["isPublic"], false);
    // Access's client is still there (a real instance may hold both).
    let access = p
        .admin(
            reqwest::Method::GET,
            &format!("/api/oidc/clients/{CLIENT_ID}"),
            None,
        )
        .await;
    assert_eq!(access.status(), StatusCode::OK);

    let p = start(&[]).await;
    let r = p.admin(reqwest::Method::GET, &path, None).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // Under Access the site still redirects to the team domain.
    let first = p.get(&p.url(SERVICE_HOST, "/")).await;
    assert_eq!(first.status(), StatusCode::FOUND);
    assert!(location(&first).starts_with(&format!("https://{TEAM_HOST}/")));
}

#[tokio::test]
async fn a_fault_of_another_gateway_is_refused() {
    let access_with_o2p = LabConfig::default().with_faults(vec![Fault::O2pBadSecret]);
    assert!(matches!(
        Lab::start(access_with_o2p).await,
        Err(LabError::FaultForOtherGateway {
            fault: Fault::O2pBadSecret,
            needs: Gateway::Oauth2Proxy,
            gateway: Gateway::Access,
        })
    ));
    let o2p_with_access = LabConfig::default()
        .with_faults(vec![Fault::NoPkce])
        .with_gateway(Gateway::Oauth2Proxy);
    assert!(matches!(
        Lab::start(o2p_with_access).await,
        Err(LabError::FaultForOtherGateway {
            fault: Fault::NoPkce,
            ..
        })
    ));
    for fault in Fault::ALL {
        let o2p = fault.name().starts_with("o2p-");
        assert_eq!(fault.gateway() == Gateway::Oauth2Proxy, o2p, "{fault}");
    }
}

#[test]
fn gateway_names_round_trip() {
    assert_eq!(Gateway::default(), Gateway::Access);
    for gateway in Gateway::ALL {
        assert_eq!(gateway.name().parse::<Gateway>(), Ok(gateway));
        assert!(!gateway.description().is_empty());
    }
    assert!(
        "cloudflare"
            .parse::<Gateway>()
            .unwrap_err()
            .to_string()
            .contains("access, oauth2-proxy")
    );
}

#[tokio::test]
async fn fault_o2p_callback_not_registered() {
    for variant in Variant::ALL {
        let p = start_o2p(variant, &[Fault::O2pCallbackNotRegistered]).await;
        let start = p.get(&p.url(SERVICE_HOST, "/oauth2/start")).await;
        let authorize = assert_authorize(&start, true, "/");
        let r = p.get(&p.route(authorize.as_str())).await;
        assert_eq!(r.status(), StatusCode::FOUND);
        assert_eq!(
            location(&r),
            "/interaction/error?error=The+redirect_uri+%27https%3A%2F%2Fservice.example.com%2Foauth2%2Fcallback%27+is+not+registered+for+this+client."
        );
    }
}

#[tokio::test]
async fn fault_o2p_pkce_required() {
    for variant in Variant::ALL {
        let p = start_o2p(variant, &[Fault::O2pPkceRequired]).await;
        let browser = browser(&p);
        let start = browser
            .get(p.url(SERVICE_HOST, "/oauth2/start"))
            .send()
            .await
            .expect("a response");
        let authorize = assert_authorize(&start, false, "/");
        // Pocket ID sends the error straight back to the callback, before any login.
        let r = browser
            .get(p.route(authorize.as_str()))
            .send()
            .await
            .expect("a response");
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let back = Url::parse(location(&r)).expect("the callback");
        let q = query(&back);
        assert_eq!(q["error"], "invalid_request");
        assert!(
            q["error_description"].contains(
                "This client requires PKCE, but the 'code_challenge' parameter is missing."
            ),
            "{back}"
        );
        assert_eq!(q["state"], query(&authorize)["state"]);
        let callback = browser
            .get(p.route(back.as_str()))
            .send()
            .await
            .expect("a response");
        assert_eq!(callback.status(), StatusCode::FORBIDDEN);
        assert_no_cache(&callback);
        let page = callback.text().await.expect("a page");
        assert!(
            page.contains(
                "Login Failed: The upstream identity provider returned an error: invalid_request"
            ),
            "{page}"
        );
        assert!(
            !page.contains("code_challenge"),
            "the description is dropped"
        );
        assert!(!page.contains("{{"), "unfilled placeholder in {page}");
    }
}

#[tokio::test]
async fn fault_o2p_bad_secret() {
    for variant in Variant::ALL {
        let p = start_o2p(variant, &[Fault::O2pBadSecret]).await;
        let mut enrolled = p.enrol().await;
        let (_, callback) = p.o2p_login_to_callback(&mut enrolled).await;
        assert_eq!(callback.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(set_cookie(&callback, "_oauth2_proxy").is_none());
        // The CSRF cookie is not cleared.
        assert!(set_cookie(&callback, "_oauth2_proxy_csrf").is_none());
        let page = callback.text().await.expect("a page");
        assert!(
            page.contains("Oops! Something went wrong. For more information contact your server administrator."),
            "{page}"
        );
        assert!(
            !page.contains("invalid_client"),
            "the cause is only in the log"
        );
    }
}

#[tokio::test]
async fn fault_o2p_not_running() {
    for variant in Variant::ALL {
        let p = start_o2p(variant, &[Fault::O2pNotRunning]).await;
        for path in ["/", "/ping", "/oauth2/start"] {
            let r = p.get(&p.url(SERVICE_HOST, path)).await;
            assert_eq!(r.status(), StatusCode::BAD_GATEWAY, "{path}");
            assert_eq!(header(&r, "server"), front_server(variant));
            assert!(cookies(r.headers()).is_empty());
        }
        // Pocket ID is fine.
        let health = p.get(&p.url(IDP_HOST, "/healthz")).await;
        assert_eq!(health.status(), StatusCode::NO_CONTENT);
    }
}

#[tokio::test]
async fn fault_o2p_upstream_down() {
    for variant in Variant::ALL {
        let p = start_o2p(variant, &[Fault::O2pUpstreamDown]).await;
        let mut enrolled = p.enrol().await;
        let (browser, callback) = p.o2p_login_to_callback(&mut enrolled).await;
        assert_eq!(callback.status(), StatusCode::FOUND);
        let home = browser
            .get(p.url(SERVICE_HOST, "/"))
            .send()
            .await
            .expect("a response");
        assert_eq!(home.status(), StatusCode::BAD_GATEWAY);
        // The session was fine.
        assert_eq!(header(&home, "gap-auth"), PROBE_EMAIL);
        assert!(header(&home, "content-type").starts_with("text/html"));
        let page = home.text().await.expect("a page");
        assert!(
            page.contains("There was a problem connecting to the upstream server."),
            "{page}"
        );
        assert!(!page.contains("/oauth2/sign_in"), "no Sign in button");
        // oauth2-proxy itself answers.
        let auth = browser
            .get(p.url(SERVICE_HOST, "/oauth2/auth"))
            .send()
            .await
            .expect("a response");
        assert_eq!(auth.status(), StatusCode::ACCEPTED);
    }
}

#[tokio::test]
async fn fault_o2p_email_unverified() {
    for variant in Variant::ALL {
        let p = start_o2p(variant, &[Fault::O2pEmailUnverified]).await;
        let mut enrolled = p.enrol().await;
        let user: Value = p
            .admin(
                reqwest::Method::GET,
                &format!("/api/users/{}", enrolled.user_id),
                None,
            )
            .await
            .json()
            .await
            .expect("JSON");
        assert_eq!(user["emailVerified"], false);
        let (_, callback) = p.o2p_login_to_callback(&mut enrolled).await;
        assert_eq!(callback.status(), StatusCode::FORBIDDEN);
        assert!(set_cookie(&callback, "_oauth2_proxy").is_none());
        let page = callback.text().await.expect("a page");
        assert!(
            page.contains("You do not have permission to access this resource."),
            "{page}"
        );
    }
}

#[tokio::test]
async fn with_the_cookie_session_store_sign_out_leaves_a_copy_working() {
    let p = start_o2p(Variant::Terse, &[Fault::O2pCookieSession]).await;
    let mut enrolled = p.enrol().await;
    let (browser, callback) = p.o2p_login_to_callback(&mut enrolled).await;
    let (session, _) = set_cookie(&callback, "_oauth2_proxy").expect("a session");
    // The cookie store's cookie is the encrypted session itself (2844 characters as
    // captured), a server-side store's a short ticket.
    assert!(session.len() > 2000, "{}", session.len());
    let out = browser
        .get(p.url(SERVICE_HOST, "/oauth2/sign_out"))
        .send()
        .await
        .expect("a response");
    assert_eq!(out.status(), StatusCode::FOUND);
    let replayed = p
        .client
        .get(p.url(SERVICE_HOST, "/oauth2/auth"))
        .header("cookie", format!("_oauth2_proxy={session}"))
        .send()
        .await
        .expect("a response");
    assert_eq!(replayed.status(), StatusCode::ACCEPTED);
}
