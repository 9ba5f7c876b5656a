//! `service.redirect` and `access.login`: the anonymous hops through Cloudflare Access.

use super::{ids, unexpected};
use crate::cloudflare::{self, AccessLogin, EdgePage};
use crate::config::{Config, Gateway};
use crate::finding::{CheckResult, Findings};
use crate::http::{Accept, Http, Request, Response};
use crate::oauth2proxy::{self, ProxyLogin};
use crate::pocketid::{Discovery, normalise_base, paths};
use crate::redact::{self, Secret};
use std::future::Future;
use std::sync::Arc;
use url::Url;

/// The authorization request Access built, to be replayed at Pocket ID.
#[derive(Debug, Clone)]
pub struct AuthorizeRequest {
    /// The full authorize URL, as Access sent it.
    pub url: Url,
    /// `client_id`.
    pub client_id: String,
    /// `redirect_uri`.
    pub redirect_uri: Option<String>,
    /// The callback the gateway should send as `redirect_uri`: the team's Access
    /// callback, or oauth2-proxy's `…/oauth2/callback`.
    pub expected_callback: String,
    /// The gateway that sent it.
    pub gateway: Gateway,
    /// `state` (secret).
    pub state: Option<Secret>,
}

/// An AUD shortened for a finding: its first 6 and last 4 characters. The AUD comes
/// from the server, so it is cut by characters, never by bytes, and made terminal-safe.
fn short(aud: &str) -> String {
    let chars: Vec<char> = aud.chars().collect();
    let text = if chars.len() > 12 {
        let head: String = chars[..6].iter().collect();
        let tail: String = chars[chars.len() - 4..].iter().collect();
        format!("{head}…{tail}")
    } else {
        aud.to_string()
    };
    crate::redact::terminal_safe(&text)
}

/// The login the site sends an anonymous visitor to, by gateway.
#[derive(Debug, Clone)]
pub enum SiteLogin {
    /// This team's Access login.
    Access(AccessLogin),
    /// oauth2-proxy's login.
    OAuth2Proxy(ProxyLogin),
}

/// `service.redirect`: an anonymous GET must be sent to a login: this team's Access
/// login, or oauth2-proxy's.
pub async fn service_redirect(config: &Config, http: &Http) -> (CheckResult, Option<SiteLogin>) {
    let mut f = Findings::start(ids::SERVICE_REDIRECT);
    let service_host = config
        .service
        .host_str()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let leaves_host = |r: &crate::http::Response| match r.location() {
        Some(Ok(u)) => u
            .host_str()
            .is_some_and(|h| !h.eq_ignore_ascii_case(&service_host)),
        _ => true,
    };
    // JSON first: the edge then answers its own errors as JSON too. Managed OAuth
    // answers a non-browser 401; a browser still gets the login, so ask again as one
    // (its Accept and its User-Agent: Access tells browsers apart by both).
    let first = Request::get(config.service.clone(), Accept::Json);
    let Some(mut chain) = ask(&mut f, config, http, first, &leaves_host).await else {
        return (f.finish(""), None);
    };
    let mut as_browser = false;
    if managed_oauth(&chain.last) {
        f.detail("managed_oauth", true);
        let browser = Request::get(config.service.clone(), Accept::Html).like_browser();
        let Some(again) = ask(&mut f, config, http, browser, &leaves_host).await else {
            return (f.finish(""), None);
        };
        // A browser-shaped request that gets the 401 too is judged below: only then
        // is it said to come "even to a browser".
        as_browser = !managed_oauth(&again.last);
        f.detail("browser_gets_login", as_browser);
        if as_browser {
            f.warn(
                "Managed OAuth is on: Access answers non-browser clients (ssoprobe, scripts) 401 with an OAuth bearer challenge; the check goes on shaped like a browser (its Accept and User-Agent)",
                "turn off Managed OAuth for the application (Zero Trust → Access → Applications → the application) if scripts and API clients of this site should not need an OAuth token from Access; a browser still gets the login, and the rest of the chain is checked the way a browser gets it",
            );
        }
        chain = again;
    } else if oauth2proxy::json_refusal(&chain.last) {
        // oauth2-proxy tells scripts from browsers by `Accept` alone: an exact
        // `application/json` item gets 401 `{}`. A browser gets its login.
        f.detail("json_401", true);
        let browser = Request::get(config.service.clone(), Accept::Html).like_browser();
        let Some(again) = ask(&mut f, config, http, browser, &leaves_host).await else {
            return (f.finish(""), None);
        };
        chain = again;
    }
    f.detail("hops", chain.hops.len() + 1);
    if let Some(login) = oauth2proxy::recognise(&chain.last, &config.service) {
        return proxy_login(f, config, chain, login);
    }
    let last = &chain.last;
    f.detail("status", last.status.as_u16());
    if let Some(Ok(location)) = last.location() {
        let Some(mut login) = cloudflare::parse_login_url(&location) else {
            f.fail(
                format!("redirects to {} instead of a login ssoprobe knows (Cloudflare Access, oauth2-proxy)", redact::url(&location)),
                format!(
                    "Access is not in front of {service_host}, or something answers before it (the app's own login, a proxy redirect); add a self-hosted Access application for this hostname in Zero Trust → Access → Applications"
                ),
            );
            return (f.finish(""), None);
        };
        login.as_browser = as_browser;
        f.detail("gateway", Gateway::Access.name());
        judge_gateway(&mut f, config, Gateway::Access);
        judge_login(&mut f, config, &service_host, &login, last);
        let summary = format!(
            "redirects to Access team {} ({}), AUD {}",
            login.team,
            login.team_domain,
            login.aud.as_deref().map(short).unwrap_or_default()
        );
        let ok = !f.failed();
        return (f.finish(summary), ok.then_some(SiteLogin::Access(login)));
    }
    judge_no_redirect(&mut f, config, last);
    (f.finish(""), None)
}

/// Why oauth2-proxy is not running behind its front proxy, for a hint.
pub const O2P_EXITS: &str = "it exits at start-up, and never retries, when it cannot read Pocket ID's discovery (Pocket ID down or unreachable when it started), when --oidc-issuer-url is not exactly Pocket ID's APP_URL (a trailing slash, http for https), or when its cookie secret is not 16, 24 or 32 bytes — the last line of its log says which: fix that and start it again";

/// Fails the check when the gateway found is not the one `--gateway` names.
fn judge_gateway(f: &mut Findings, config: &Config, found: Gateway) {
    if let Some(expected) = config.gateway
        && expected != found
    {
        f.detail("expected_gateway", expected.name());
        f.fail(
            format!(
                "the site is behind {}, expected {} (--gateway {})",
                found.title(),
                expected.title(),
                expected.name()
            ),
            format!(
                "{} answers for {} instead of {}: check which proxy the site's DNS record and front proxy lead to (a changed DNS record, a Cloudflare proxy toggled, a front-proxy route to the wrong service), or correct --gateway",
                found.title(),
                redact::url(&config.service),
                expected.title()
            ),
        );
    }
}

/// The site sends its visitors to oauth2-proxy's login: the gateway, how it sends
/// them, and what a script gets.
fn proxy_login(
    mut f: Findings,
    config: &Config,
    chain: crate::http::Chain,
    mut login: ProxyLogin,
) -> (CheckResult, Option<SiteLogin>) {
    f.detail("gateway", Gateway::OAuth2Proxy.name());
    f.detail("status", chain.last.status.as_u16());
    if login.via == oauth2proxy::Via::Straight {
        // The site's redirect started the login: o2p.start reads it, not a second one.
        login.started = Some(std::sync::Arc::new(chain.last));
    }
    f.detail("via", login.via.text());
    f.detail("oauth2_proxy", redact::url(&login.base));
    judge_gateway(&mut f, config, Gateway::OAuth2Proxy);
    if config.team_domain.is_some() || config.aud.is_some() {
        f.warn(
            "--team or --aud is given, but the site is behind oauth2-proxy, not Cloudflare Access: they are not checked",
            "leave out --team and --aud for a site behind oauth2-proxy (or check that the site is meant to be behind Access)",
        );
    }
    let json = f.has_detail("json_401");
    let summary = format!(
        "oauth2-proxy ({}) sends anonymous visitors to {}{}",
        redact::url(&login.base),
        login.via.text(),
        if json {
            "; scripts asking for JSON get its 401 {}"
        } else {
            ""
        }
    );
    let ok = !f.failed();
    (
        f.finish(summary),
        ok.then_some(SiteLogin::OAuth2Proxy(login)),
    )
}

/// Whether `response` is Managed OAuth's 401 asking for a bearer token.
fn managed_oauth(response: &Response) -> bool {
    response.location().is_none() && cloudflare::classify(response) == Some(EdgePage::ManagedOAuth)
}

/// Follows `request` from the site until the chain leaves its host; `None` with the
/// failure recorded when no answer came.
async fn ask(
    f: &mut Findings,
    config: &Config,
    http: &Http,
    request: Request,
    leaves_host: impl Fn(&Response) -> bool,
) -> Option<crate::http::Chain> {
    match http
        .follow_request(ids::SERVICE_REDIRECT, request, leaves_host)
        .await
    {
        Ok(c) => Some(c),
        // A downgrade to http is the site's answer, not a failure to get one.
        Err(e @ crate::http::HttpError::InsecureRedirect { .. }) => {
            f.fail(
                format!("GET {}: {e}", redact::url(&config.service)),
                e.hint(),
            );
            None
        }
        Err(e) => {
            f.request_failed(format!("GET {}", redact::url(&config.service)), &e);
            None
        }
    }
}

/// Records what the Access login URL says (team, application host, AUD) and judges it
/// against the expectations.
fn judge_login(
    f: &mut Findings,
    config: &Config,
    service_host: &str,
    login: &AccessLogin,
    last: &Response,
) {
    f.detail("team_domain", login.team_domain.clone());
    f.detail("app_host", login.app_host.clone());
    if let Some(aud) = &login.aud {
        f.detail("aud", aud.clone());
    }
    if let Some(r) = &login.redirect_url {
        f.detail("redirect_url", r.clone());
    }
    f.detail(
        "app_session_cookie",
        last.cookies_set().iter().any(|c| c == "CF_AppSession"),
    );
    if let Some(expected) = &config.team_domain
        && &login.team_domain != expected
    {
        // What a check of the named team's own host found (a mistyped team's host does
        // not resolve) follows from this (checks::attribute_causes).
        f.detail("expected_team_domain", expected.clone());
        let named = expected
            .strip_suffix(cloudflare::TEAM_SUFFIX)
            .unwrap_or(expected);
        let other_org = format!(
            "{service_host} is protected by another Zero Trust organization than the one you named"
        );
        // A name one or two letters from the team Access uses is most likely mistyped.
        let near = named.len() <= 256
            && strsim::osa_distance(&named.to_lowercase(), &login.team.to_lowercase()) <= 2;
        let hint = if near {
            format!(
                "correct --team to {} (you named {named}, a near spelling); if {named} is right, {other_org}: check which account owns the hostname's Access application",
                login.team
            )
        } else {
            format!(
                "{other_org}; check which account owns the hostname's Access application, or correct --team"
            )
        };
        f.fail(
            format!(
                "redirects to Access team '{}' ({}), expected {expected}",
                login.team, login.team_domain
            ),
            hint,
        );
    }
    if login.app_host != service_host {
        f.warn(
            format!("the Access login is for application host {}, not {service_host}", login.app_host),
            "the hostname is covered by another application's domain (a wildcard or multi-domain app); check the application list in Zero Trust".to_string(),
        );
    }
    match (&login.aud, &config.aud) {
        (None, _) => f.fail(
            "the Access login URL carries no kid (application AUD)",
            "this does not look like Access's own redirect; check for a Worker or page rule rewriting it".to_string(),
        ),
        (Some(aud), Some(expected)) if aud != expected => f.fail(
            format!("redirects to the Access application with AUD {}, expected {}", short(aud), short(expected)),
            "another Access application (a more specific path or a wildcard) covers this URL; check Zero Trust → Access → Applications".to_string(),
        ),
        (Some(aud), _) if !cloudflare::is_aud(aud) => f.warn(
            format!("the AUD '{}' is not 64 hex characters", short(aud)),
            "Access AUD tags are 64 hex characters; this login URL was probably rewritten by a Worker or proxy rule, copy the AUD from Zero Trust → Access → Applications → the application → Overview",
        ),
        _ => {}
    }
}

/// Judges a site that did not redirect: public, refused by Access, or something else.
fn judge_no_redirect(f: &mut Findings, config: &Config, last: &Response) {
    if last.status.is_success() {
        f.fail(
            format!("site is publicly reachable without login (HTTP {})", last.status.as_u16()),
            format!(
                "no Access application covers {} (or a Bypass policy lets everyone in); add a self-hosted application for this hostname in Zero Trust → Access → Applications with Allow policies only, and make sure its DNS record is proxied (orange cloud)",
                redact::url(&config.service)
            ),
        );
        return;
    }
    match cloudflare::classify(last) {
        Some(EdgePage::AccessForbidden) => f.fail(
            format!(
                "Access refuses with HTTP {} and offers no login: the application admits only service tokens",
                last.status.as_u16()
            ),
            "its policies are Service Auth (or Block) only, so nobody can log in through Pocket ID: add an Allow policy for the people (and the monitoring user) who log in, or probe it with --service-token-id and --service-token-secret-file".to_string(),
        ),
        Some(EdgePage::ManagedOAuth) => f.fail(
            "Access answers 401 asking for an OAuth bearer token (Managed OAuth is on), even to a browser: a request with a browser's Accept and User-Agent got it too",
            "turn off Managed OAuth for the application (Zero Trust → Access → Applications → the application), or probe it with a service token (--service-token-id, --service-token-secret-file); Access normally still sends browsers to its login, but here it offered none, so the login through Pocket ID cannot be checked".to_string(),
        ),
        None if matches!(last.status.as_u16(), 502..=504) => {
            f.detail("symptom", "service.front_proxy_alone");
            if let Some(expected) = config.gateway {
                // Evidence for checks::front_proxy_alone: what stands behind it.
                f.detail("expected_gateway", expected.name());
            }
            let status = last.status.as_u16();
            let finding = format!(
                "instead of sending to a login, the site answers HTTP {status}: the proxy in front of it finds nothing answering behind it{}",
                last.header("server")
                    .map(|s| format!(" (Server: {})", crate::text::server_text(s)))
                    .unwrap_or_default()
            );
            let hint = match config.gateway {
                Some(Gateway::OAuth2Proxy) => format!("oauth2-proxy is not running: {O2P_EXITS}"),
                _ => format!(
                    "start what the front proxy forwards {} to, or correct its upstream address; if that is oauth2-proxy, {O2P_EXITS}",
                    last.url.host_str().unwrap_or_default()
                ),
            };
            f.fail(finding, hint);
        }
        _ => {
            let (finding, hint) = unexpected("instead of sending to a login", last);
            f.fail(finding, hint);
        }
    }
}

/// A request already made for a check: its answer or failure, and the time it took.
pub type Answered = (
    Result<Response, crate::http::HttpError>,
    std::time::Duration,
);

/// `access.login`: the team login must send the browser to Pocket ID's authorization
/// endpoint with the right client, callback, scope and PKCE.
/// `answered`: the team login's answer (or failure) when the walk that found Pocket ID
/// already asked for it (the chain is walked once).
pub async fn access_login(
    config: &Config,
    http: &Http,
    login: &AccessLogin,
    answered: Option<Answered>,
    discovery: impl Future<Output = Option<Arc<Discovery>>>,
) -> (CheckResult, Option<AuthorizeRequest>) {
    let mut f = Findings::start(ids::ACCESS_LOGIN);
    let answer = match answered {
        Some((answer, took)) => {
            f.spent_before(took);
            answer
        }
        None => {
            http.send(
                ids::ACCESS_LOGIN,
                // With --team the certs' request is already opening the team's
                // connection: sharing it costs less than opening another.
                Request::get(login.url.clone(), Accept::Html)
                    .like_browser_if(login.as_browser)
                    .patient(),
            )
            .await
        }
    };
    let response = match answer {
        Ok(r) => r,
        Err(e) => {
            f.request_failed(format!("GET the Access login at {}", login.team_domain), &e);
            return (f.finish(""), None);
        }
    };
    f.detail("status", response.status.as_u16());
    let idp_host = config
        .idp
        .host_str()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let Some(candidate) =
        where_access_sends(&mut f, http, &response, &idp_host, login.as_browser).await
    else {
        return (f.finish(""), None);
    };
    // Pocket ID serves its authorization endpoint at the fixed path: a login sent
    // there needs no wait for discovery (idp.discovery compares what it advertises),
    // so a Pocket ID that answers nothing holds the chain up for one timeout, not two.
    let fixed = format!("{}{}", normalise_base(&config.idp), paths::AUTHORIZE);
    let at_fixed_path = Url::parse(&fixed).is_ok_and(|e| {
        e.host_str() == candidate.host_str()
            && e.port_or_known_default() == candidate.port_or_known_default()
            && e.path() == candidate.path()
    });
    let discovered = if at_fixed_path {
        None
    } else {
        f.waiting_for(discovery).await
    };
    let expected = match discovered.and_then(|d| d.authorization_endpoint.clone()) {
        Some(e) => e,
        None => {
            f.detail(
                "compared_with",
                if at_fixed_path {
                    "Pocket ID's fixed path"
                } else {
                    "discovery unavailable: compared with Pocket ID's fixed path"
                },
            );
            fixed
        }
    };
    f.detail("authorize_url", redact::url(&candidate));
    if !judge_destination(&mut f, &candidate, &idp_host, &expected) {
        return (f.finish(""), None);
    }
    let params = judge_parameters(&mut f, config, login, &candidate);
    let summary = format!(
        "Access sends the login to {}{} with client {}, its callback and PKCE",
        idp_host,
        candidate.path(),
        params.client_id.as_deref().unwrap_or("?")
    );
    let request = (!f.failed()).then(|| AuthorizeRequest {
        url: candidate.clone(),
        client_id: params.client_id.clone().unwrap_or_default(),
        redirect_uri: params.redirect_uri.clone(),
        expected_callback: cloudflare::callback_url(&login.team_domain),
        gateway: Gateway::Access,
        state: params.state.map(Secret::new),
    });
    (f.finish(summary), request)
}

/// Where the team login sends the browser: its redirect, or — when Access shows its
/// sign-in page (Instant Auth off, or several login methods) — the choice on that page
/// that leads to Pocket ID. `None` (with the finding recorded) when nothing leads on.
/// `as_browser`: the choices are sent shaped like a browser's (see
/// [`AccessLogin::as_browser`]).
async fn where_access_sends(
    f: &mut Findings,
    http: &Http,
    response: &Response,
    idp_host: &str,
    as_browser: bool,
) -> Option<Url> {
    if let Some(Ok(location)) = response.location() {
        return Some(location);
    }
    let page = cloudflare::classify(response);
    // A 200 page from the team login is the sign-in page whatever its branding.
    let sign_in = matches!(page, Some(EdgePage::AccessSignIn))
        || (page.is_none() && response.status.as_u16() == 200 && !response.is_json());
    if !sign_in {
        let (finding, hint) =
            unexpected("instead of redirecting to the identity provider", response);
        f.fail(finding, hint);
        return None;
    }
    let body = response.text().into_owned();
    if !cloudflare::html_tractable(&body) {
        f.fail(
            format!(
                "the Access sign-in page could not be read: it nests elements more than {} deep or has more than {} tags",
                cloudflare::edge::MAX_HTML_DEPTH,
                cloudflare::edge::MAX_HTML_TAGS
            ),
            "Access's own sign-in page is small; something else answers the team login (a proxy or a captive portal): look at the answer with --trace",
        );
        return None;
    }
    // Parsing is CPU work: off the async threads, so timeouts keep firing meanwhile.
    let base = response.url.clone();
    let choices = tokio::task::spawn_blocking(move || login_choices(&body, &base))
        .await
        .unwrap_or_default();
    let (found, seen) = follow_choices(http, &choices, &response.url, idp_host, as_browser).await;
    f.detail("login_choices", seen.clone());
    match found {
        Some(url) => {
            f.warn(
                "Access shows its sign-in page instead of sending the login straight to Pocket ID (Instant Auth is off, or the application has several login methods); the login goes on through its Pocket ID choice",
                "in the application's Login methods, keep Pocket ID as the only identity provider and turn on Instant Auth, so that users (and monitors) go straight to Pocket ID",
            );
            Some(url)
        }
        None => {
            let hint = if seen.is_empty() {
                format!(
                    "the sign-in page offers no identity provider at all (only the one-time PIN, if that); add Pocket ID ({idp_host}) to the application's Login methods in Zero Trust → Access → Applications"
                )
            } else {
                format!(
                    "the page's login choices lead to {}, none to Pocket ID ({idp_host}); add Pocket ID to the application's Login methods, or check that its Auth URL in Zero Trust → Settings → Authentication is on {idp_host}",
                    seen.join(", ")
                )
            };
            f.fail(
                format!(
                    "the Access sign-in page has no choice that leads to Pocket ID ({idp_host})"
                ),
                hint,
            );
            None
        }
    }
}

/// One login method a sign-in page offers: a link, or a form and its fields.
#[derive(Debug, PartialEq)]
struct Choice {
    url: Url,
    /// `Some` for a form that is posted, with its hidden fields.
    post: Option<Vec<(String, String)>>,
}

impl Choice {
    /// Whether choosing it goes back through Access's login endpoint with an explicit
    /// identity provider (`idp=`), the only kind of choice ssoprobe follows: a form
    /// without one may be the one-time-PIN form, which would send an e-mail.
    fn names_an_idp(&self) -> bool {
        self.url.query_pairs().any(|(k, _)| k == "idp")
            || self
                .post
                .as_ref()
                .is_some_and(|fields| fields.iter().any(|(k, _)| k == "idp"))
    }
}

/// The links and forms of a sign-in page, resolved against its URL.
fn login_choices(body: &str, base: &Url) -> Vec<Choice> {
    let doc = scraper::Html::parse_document(body);
    let (Ok(links), Ok(forms), Ok(fields)) = (
        scraper::Selector::parse("a[href]"),
        scraper::Selector::parse("form"),
        scraper::Selector::parse("input[name], button[name]"),
    ) else {
        return Vec::new();
    };
    let mut out: Vec<Choice> = doc
        .select(&links)
        .filter_map(|a| a.value().attr("href"))
        .filter_map(|href| base.join(href.trim()).ok())
        .map(|url| Choice { url, post: None })
        .collect();
    for form in doc.select(&forms) {
        let action = form.value().attr("action").unwrap_or("");
        let Ok(mut url) = base.join(action.trim()) else {
            continue;
        };
        let values: Vec<(String, String)> = form
            .select(&fields)
            .filter(|e| {
                e.value().name() == "button"
                    || e.value()
                        .attr("type")
                        .is_some_and(|t| t.eq_ignore_ascii_case("hidden"))
            })
            .filter_map(|e| {
                Some((
                    e.value().attr("name")?.to_string(),
                    e.value().attr("value").unwrap_or("").to_string(),
                ))
            })
            .collect();
        let post = form
            .value()
            .attr("method")
            .is_some_and(|m| m.eq_ignore_ascii_case("post"));
        if post {
            out.push(Choice {
                url,
                post: Some(values),
            });
        } else {
            url.query_pairs_mut().extend_pairs(values);
            out.push(Choice { url, post: None });
        }
    }
    out
}

/// Most choices ssoprobe tries through Access's login endpoint.
const MAX_CHOICES: usize = 4;

/// Tries the page's choices: one that links straight to Pocket ID wins; else each
/// choice that goes back through Access's login endpoint naming an identity provider
/// is sent once, and the one Access redirects to Pocket ID wins. Returns it and where
/// the choices led (hosts, for the finding). `as_browser`: sent shaped like a browser's.
async fn follow_choices(
    http: &Http,
    choices: &[Choice],
    page: &Url,
    idp_host: &str,
    as_browser: bool,
) -> (Option<Url>, Vec<String>) {
    let is_idp = |u: &Url| {
        u.host_str()
            .is_some_and(|h| h.eq_ignore_ascii_case(idp_host))
    };
    let mut seen = Vec::new();
    if let Some(direct) = choices.iter().find(|c| c.post.is_none() && is_idp(&c.url)) {
        return (Some(direct.url.clone()), vec![idp_host.to_string()]);
    }
    let through_access = choices
        .iter()
        .filter(|c| {
            c.url.host_str() == page.host_str()
                && c.url.path().starts_with("/cdn-cgi/access/login/")
                && c.names_an_idp()
        })
        .take(MAX_CHOICES);
    for choice in through_access {
        let request = match &choice.post {
            Some(fields) => Request::post_form(choice.url.clone(), fields.clone()),
            None => Request::get(choice.url.clone(), Accept::Html),
        };
        let request = request.like_browser_if(as_browser);
        let Ok(answer) = http.send(ids::ACCESS_LOGIN, request).await else {
            continue;
        };
        let Some(Ok(next)) = answer.location() else {
            continue;
        };
        if is_idp(&next) {
            return (Some(next), vec![idp_host.to_string()]);
        }
        if let Some(host) = next.host_str() {
            seen.push(host.to_ascii_lowercase());
        }
    }
    for c in choices {
        if let Some(host) = c.url.host_str()
            && host != page.host_str().unwrap_or_default()
            && !seen.iter().any(|s| s == host)
        {
            seen.push(host.to_ascii_lowercase());
        }
    }
    (None, seen)
}

/// Whether the login goes to Pocket ID's host (false stops the check) and to its
/// authorization endpoint `expected` (a failure, but the parameters are still judged).
fn judge_destination(f: &mut Findings, candidate: &Url, idp_host: &str, expected: &str) -> bool {
    let host = candidate
        .host_str()
        .unwrap_or_default()
        .to_ascii_lowercase();
    if host != idp_host {
        f.fail(
            format!("Access sends the login to {host}, not to Pocket ID ({idp_host})"),
            format!(
                "the application's identity provider is not the Pocket ID one; in Zero Trust → Settings → Authentication, the OpenID Connect provider's Auth URL must be {expected}"
            ),
        );
        return false;
    }
    if let Ok(e) = Url::parse(expected) {
        let same_host = e.host_str().is_some_and(|h| h.eq_ignore_ascii_case(&host));
        if !same_host || e.path() != candidate.path() {
            f.fail(
                format!(
                    "Access sends the login to {host}{}, but Pocket ID's authorization endpoint is {expected}",
                    candidate.path()
                ),
                format!(
                    "in Zero Trust → Settings → Authentication → (Pocket ID), set Auth URL to {expected}"
                ),
            );
        }
    }
    true
}

/// The authorization request's parameters that the login carries on.
struct AuthParams {
    client_id: Option<String>,
    redirect_uri: Option<String>,
    state: Option<String>,
}

/// Judges the authorization request's parameters: client, callback, response type,
/// scopes, state and PKCE.
fn judge_parameters(
    f: &mut Findings,
    config: &Config,
    login: &AccessLogin,
    candidate: &Url,
) -> AuthParams {
    let param = |name: &str| {
        candidate
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    let client_id = param("client_id");
    match (&client_id, &config.client_id) {
        (None, _) => f.fail(
            "the authorization request has no client_id",
            "set App ID in Cloudflare's Pocket ID identity provider to the Client ID of the Pocket ID OIDC client".to_string(),
        ),
        (Some(got), Some(want)) if got != want => f.fail(
            format!("Access sends client_id {got}, expected {want}"),
            format!("set App ID in Cloudflare's Pocket ID identity provider to {want}"),
        ),
        _ => {}
    }
    if let Some(c) = &client_id {
        f.detail("client_id", c.clone());
    }
    let callback = cloudflare::callback_url(&login.team_domain);
    let redirect_uri = param("redirect_uri");
    match &redirect_uri {
        Some(r) if *r == callback => {}
        // Not a stop: Pocket ID decides whether it accepts it, and idp.authorize says.
        Some(r) => f.warn(
            format!("Access sends redirect_uri {r}, not its team callback {callback}"),
            format!("Pocket ID must have exactly {r} registered for the login to go on (idp.authorize shows whether it does); Access normally sends {callback}: look for a Worker or rule rewriting its authorization request, or a team domain that changed"),
        ),
        None => f.fail("the authorization request has no redirect_uri", "Access always sends redirect_uri; something rewrites its authorization request (a Worker or a proxy rule on the team domain or the IdP host)"),
    }
    match param("response_type").as_deref() {
        Some("code") => {}
        other => f.fail(
            format!(
                "response_type is {}, expected code",
                other.unwrap_or("missing")
            ),
            "Access always asks for response_type=code; something rewrites its authorization request (a Worker or a proxy rule)",
        ),
    }
    let scope = param("scope").unwrap_or_default();
    let scopes: Vec<&str> = scope.split_whitespace().collect();
    f.detail("scope", scope.clone());
    f.detail("scope_has_email", scopes.contains(&"email"));
    for needed in ["openid", "email"] {
        if !scopes.contains(&needed) {
            let without = if needed == "email" {
                "Pocket ID's id_token then carries no e-mail address and Access cannot identify the user"
            } else {
                "without it Pocket ID answers no OpenID Connect login"
            };
            f.fail(
                format!("scope '{scope}' lacks {needed}"),
                format!("add {needed} to the OIDC scopes of Access's Pocket ID login method (Zero Trust → Settings → Authentication; default: openid email profile): {without}"),
            );
        }
    }
    let state = param("state");
    if state.is_none() {
        f.fail("the authorization request has no state", "Access always sends a state; something strips it from its authorization request (a Worker or a proxy rule), and Access will refuse the callback");
    }
    match (param("code_challenge"), param("code_challenge_method")) {
        (Some(_), Some(m)) if m == "S256" => {
            f.detail("pkce", "S256");
        }
        (Some(_), m) => {
            f.detail("pkce", m.clone().unwrap_or_else(|| "plain".into()));
            f.warn(
                format!(
                    "PKCE uses method {}, not S256",
                    m.unwrap_or_else(|| "plain".into())
                ),
                "tick PKCE in Cloudflare's Pocket ID identity provider settings (Zero Trust → Settings → Authentication): Access then uses S256",
            );
        }
        (None, _) => {
            f.detail("pkce", "none");
            f.warn(
                "Access sends no PKCE code_challenge",
                "tick 'PKCE' in Cloudflare's Pocket ID identity provider settings (Zero Trust → Settings → Authentication)".to_string(),
            );
        }
    }
    AuthParams {
        client_id,
        redirect_uri,
        state,
    }
}

/// The first link on an Access sign-in page that leads to the IdP host.
#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn short_never_panics_and_stays_short(aud in "\\PC*") {
            let s = short(&aud);
            proptest::prop_assert!(s.chars().count() <= 12);
            proptest::prop_assert!(!s.chars().any(char::is_control));
        }

        #[test]
        fn choices_of_any_page_never_panic(body in "\\PC{0,300}") {
            let base = Url::parse("https://xyz.cloudflareaccess.com/cdn-cgi/access/login/x").unwrap();
            let _ = login_choices(&body, &base);
        }
    }

    #[test]
    fn short_cuts_multibyte_auds_by_character() {
        assert_eq!(short("aéééééééééééééé"), "aééééé…éééé");
        assert_eq!(short("2b908b8615d3590ac9e4"), "2b908b…c9e4");
    }

    #[test]
    fn sign_in_page_choices_are_links_and_forms() {
        let base =
            Url::parse("https://xyz.cloudflareaccess.com/cdn-cgi/access/login/x?kid=k").unwrap();
        let body = r#"<html><title>Example ・ Cloudflare Access</title><a href="/help">Help</a>
            <a class="idp" href="https://id.example.com/authorize?client_id=c&amp;state=abcdefgh">Pocket ID</a>
            <a href="/cdn-cgi/access/login/x?kid=k&amp;idp=1234">GitHub</a>
            <form method="POST" action="/cdn-cgi/access/login/x?kid=k"><input type="email" name="email"><button>Send me a code</button></form>
            <FORM method="post" action="/cdn-cgi/access/login/x?kid=k"><input type="hidden" name="idp" value="abcd"><button type="submit">Pocket ID</button></FORM></html>"#;
        let choices = login_choices(body, &base);
        assert_eq!(choices.len(), 5);
        assert_eq!(choices[1].url.path(), "/authorize");
        assert!(choices[2].names_an_idp());
        // The one-time-PIN form is never a choice ssoprobe follows.
        assert!(!choices[3].names_an_idp());
        assert!(choices[4].names_an_idp());
        assert_eq!(
            choices[4].post.as_deref(),
            Some(&[("idp".to_string(), "abcd".to_string())][..])
        );
    }
}
