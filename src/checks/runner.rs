//! The runner: every check of [`spec::PROBE`](super::spec::PROBE) that the run asks for
//! starts at once and waits for the facts it needs on a [`Board`]; a check whose need
//! is missing skips with the reason its producer left. Order, concurrency and skips
//! come from the declaration — the runner knows no check by name, and each check's
//! step (below, in declared order) knows only the facts it reads and yields.
//!
//! All steps are futures of one task: the work is network-bound, so a run's wall time
//! is its longest chain of dependent requests, not the sum of its requests.

use super::access::{self, AuthorizeRequest, SiteLogin};
use super::spec::{self, Fact, Spec};
use super::{idp, ids, login, o2p, tls};
use crate::cloudflare::AccessLogin;
use crate::config::{Config, Gateway, IdpSource};
use crate::finding::{CheckResult, IDP_UNKNOWN, Status};
use crate::http::{Accept, Http, Request};
use crate::oauth2proxy::ProxyLogin;
use crate::pocketid::oidc::Discovery;
use futures::FutureExt;
use futures::future::BoxFuture;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::time::Instant;
use url::Url;

/// What runs a check: reads its facts from the board, yields its own, returns its
/// result (several for `tls.<host>`).
pub type Step = for<'a, 'r> fn(&'a Board<'r>) -> BoxFuture<'a, Vec<CheckResult>>;

/// A fact of the run: pending, known, or known to be missing (with the skip text of
/// the checks that need it).
pub struct Slot<T> {
    tx: watch::Sender<Option<Result<Arc<T>, String>>>,
}

impl<T> Slot<T> {
    fn new() -> Slot<T> {
        Slot {
            tx: watch::Sender::new(None),
        }
    }

    /// Settles the fact, once: later calls change nothing.
    fn settle(&self, value: Result<Arc<T>, String>) {
        self.tx.send_if_modified(|s| {
            if s.is_none() {
                *s = Some(value);
                true
            } else {
                false
            }
        });
    }

    /// The fact is known.
    fn put(&self, value: T) {
        self.settle(Ok(Arc::new(value)));
    }

    /// The fact will not be known; `why` is the skip text of the checks that need it.
    fn missing(&self, why: impl Into<String>) {
        self.settle(Err(why.into()));
    }

    /// The fact, once settled.
    async fn get(&self) -> Result<Arc<T>, String> {
        let mut rx = self.tx.subscribe();
        match rx.wait_for(Option::is_some).await {
            Ok(v) => v.clone().unwrap_or_else(|| Err(IDP_UNKNOWN.to_string())),
            // The sender lives as long as the board.
            Err(_) => Err(IDP_UNKNOWN.to_string()),
        }
    }

    /// The fact if it is known, without waiting.
    fn now(&self) -> Option<Arc<T>> {
        self.tx.borrow().clone().and_then(Result::ok)
    }
}

/// A slot whatever its fact's type: waited for and closed by the runner.
trait AnySlot: Sync {
    fn ready(&self) -> BoxFuture<'_, Result<(), String>>;
    fn close(&self, why: &str);
}

impl<T: Send + Sync> AnySlot for Slot<T> {
    fn ready(&self) -> BoxFuture<'_, Result<(), String>> {
        async { self.get().await.map(|_| ()) }.boxed()
    }

    fn close(&self, why: &str) {
        self.missing(why);
    }
}

/// A check's status and details, once it ran.
type Outcome = (Status, serde_json::Map<String, serde_json::Value>);

/// The facts of one run, as the checks find them, and each check's outcome.
pub struct Board<'r> {
    config: &'r Config,
    http: &'r Http,
    /// The gateway in front of the site, as its answer shows it.
    gateway: Slot<Gateway>,
    /// The Access login the site redirects to (with the team and the AUD).
    access_login: Slot<AccessLogin>,
    /// oauth2-proxy's login the site sends to.
    proxy_login: Slot<ProxyLogin>,
    /// The team domain: `--team`, or the Access login's.
    team: Slot<String>,
    /// The run's settings with Pocket ID's URL known (given, or adopted from Access's
    /// authorization request).
    idp: Slot<Config>,
    authorize: Slot<AuthorizeRequest>,
    authorize_asked: Slot<()>,
    discovery: Slot<Arc<Discovery>>,
    interaction: Slot<Url>,
    session: Slot<()>,
    code: Slot<Url>,
    /// Where Access's callback left the browser: the site, with `CF_Authorization`
    /// (or the site itself, in service-token mode).
    app_session: Slot<Url>,
    /// The team's certs, fetched as soon as the team is known (not a check's fact:
    /// `access.token` asks again if the team it needs is another).
    certs: Slot<login::Certs>,
    /// Each check's status and details, once it ran.
    outcomes: Vec<(&'static str, Slot<Outcome>)>,
}

impl<'r> Board<'r> {
    fn new(config: &'r Config, http: &'r Http) -> Board<'r> {
        Board {
            config,
            http,
            gateway: Slot::new(),
            access_login: Slot::new(),
            proxy_login: Slot::new(),
            team: Slot::new(),
            idp: Slot::new(),
            authorize: Slot::new(),
            authorize_asked: Slot::new(),
            discovery: Slot::new(),
            interaction: Slot::new(),
            session: Slot::new(),
            code: Slot::new(),
            app_session: Slot::new(),
            certs: Slot::new(),
            outcomes: spec::PROBE.iter().map(|s| (s.id, Slot::new())).collect(),
        }
    }

    /// The slot of a fact found during the run; `None` for facts the operator gives.
    fn slot(&self, fact: Fact) -> Option<&dyn AnySlot> {
        Some(match fact {
            Fact::AccessLogin | Fact::Aud => &self.access_login,
            Fact::ProxyLogin => &self.proxy_login,
            Fact::TeamDomain => &self.team,
            Fact::IdpUrl => &self.idp,
            Fact::AuthorizeRequest => &self.authorize,
            Fact::AuthorizeAsked => &self.authorize_asked,
            Fact::Discovery => &self.discovery,
            Fact::Interaction => &self.interaction,
            Fact::IdpSession => &self.session,
            Fact::Code => &self.code,
            Fact::AppSession => &self.app_session,
            Fact::Site
            | Fact::Passkey
            | Fact::ClientSecret
            | Fact::ServiceToken
            | Fact::CloudflareConfig
            | Fact::PocketIdConfig => return None,
        })
    }

    /// What the run knows before any check: the facts its settings give.
    fn seed(&self) {
        let config = self.config;
        if let Some(team) = &config.team_domain {
            self.team.put(team.clone());
        }
        if config.idp_source != IdpSource::Unknown {
            self.idp.put(config.clone());
        }
        if config.passkey.is_none() && config.service_token.is_some() {
            self.app_session.put(config.service.clone());
        }
    }

    /// Whether `spec` belongs to this run's chain: every gateway's checks do; a
    /// gateway's own checks when the site's answer shows that gateway — or, when it
    /// shows none, when `--gateway` names it (Access without it).
    async fn ours(&self, spec: &Spec) -> bool {
        let Some(gateway) = spec.gateway else {
            return true;
        };
        match self.gateway.get().await {
            Ok(found) => *found == gateway,
            Err(_) => self.config.gateway.unwrap_or_default() == gateway,
        }
    }

    /// Pocket ID's URL from the gateway's `answer` (see [`super::adopted_idp`]): the
    /// run's settings with it, `from` where it came from; else the reason its checks
    /// skip.
    fn adopt_idp(&self, answer: &crate::http::Response, callback_path: &str, from: IdpSource) {
        match super::adopted_idp(answer, callback_path) {
            Ok(idp) => {
                let mut known = self.config.clone();
                known.idp = idp;
                known.idp_source = from;
                self.idp.put(known);
            }
            Err(why) => self.idp.missing(why),
        }
    }

    /// The outcome of check `id`: `None` when the run does not ask for it.
    async fn outcome(&self, id: &str) -> Option<Status> {
        let (_, slot) = self.outcomes.iter().find(|(i, _)| *i == id)?;
        slot.get().await.ok().map(|s| s.0)
    }

    /// Detail `key` of check `id`, once it ran.
    async fn detail(&self, id: &str, key: &str) -> Option<serde_json::Value> {
        let (_, slot) = self.outcomes.iter().find(|(i, _)| *i == id)?;
        slot.get().await.ok()?.1.get(key).cloned()
    }

    /// Pocket ID's discovery document, when `idp.discovery` read one.
    async fn discovered(&self) -> Option<Arc<Discovery>> {
        self.discovery.get().await.ok().map(|d| (*d).clone())
    }

    /// The settings with Pocket ID known, else the run's own.
    /// The settings with Pocket ID known, else the run's own, as given (what the run
    /// reports it used).
    fn known(&self) -> Arc<Config> {
        self.idp
            .now()
            .unwrap_or_else(|| Arc::new(self.config.clone()))
    }

    /// [`Board::known`] with the gateway the site's answer showed, once known: the
    /// shared checks' hints name its settings.
    fn settings(&self) -> Arc<Config> {
        let settings = self.known();
        match self.gateway.now() {
            Some(found) if settings.gateway != Some(*found) => {
                let mut with = (*settings).clone();
                with.gateway = Some(*found);
                Arc::new(with)
            }
            _ => settings,
        }
    }
}

/// Why a check the run gave one of its two settings for does not run: a client secret
/// without a passkey, whose code flow has nobody to log in.
fn half_asked(spec: &Spec, config: &Config) -> Option<String> {
    (spec.runs == spec::Runs::WithPasskeyAndSecret
        && config.client_secret.is_some()
        && config.passkey.is_none())
    .then(|| {
        "skipped: --client-secret-file is for ssoprobe's own code flow, which logs in with the passkey: add --passkey FILE".to_string()
    })
}

/// Whether the run asks for `spec`.
fn asked(spec: &Spec, config: &Config) -> bool {
    use spec::Runs;
    let passkey = config.passkey.is_some();
    match spec.runs {
        Runs::Always => true,
        Runs::WithPasskey => passkey,
        Runs::WithPasskeyAndSecret => passkey && config.client_secret.is_some(),
        Runs::WithLoginOrServiceToken => passkey || config.service_token.is_some(),
        Runs::WithApiCredentials => config.doctor.enabled(),
    }
}

/// Runs one declared check: waits for its needs (the first missing one makes it skip
/// with that fact's reason), runs its step, then settles what it yields — a yield its
/// step did not give is missing, with the reason its result leaves.
async fn run_one(board: &Board<'_>, spec: &'static Spec, step: Step) -> Vec<CheckResult> {
    let mut missing = None;
    for fact in spec.needs {
        if let Some(slot) = board.slot(*fact)
            && let Err(why) = slot.ready().await
        {
            missing = Some(why);
            break;
        }
    }
    let (results, why) = match missing {
        Some(why) => (vec![CheckResult::skip(spec.id, why.clone())], why),
        None => {
            let mut results = step(board).await;
            if results.is_empty() {
                // A step that found its needs gone (it reads them again) skips.
                results.push(CheckResult::skip(
                    spec.id,
                    format!("skipped: {} is unknown", fact_list(spec.needs)),
                ));
            }
            let why = format!("skipped: {} {}", spec.id, spec.stops);
            (results, why)
        }
    };
    for fact in spec.yields {
        if let Some(slot) = board.slot(*fact) {
            // Pocket ID not found is said one way, whatever stopped the chain.
            slot.close(if *fact == Fact::IdpUrl {
                IDP_UNKNOWN
            } else {
                &why
            });
        }
    }
    // The worst decided status of its results (Status orders Pass < Warn < Fail).
    let status = results
        .iter()
        .map(|r| r.status)
        .filter(|s| *s != Status::Skip)
        .max()
        .unwrap_or(Status::Skip);
    if let Some((_, slot)) = board.outcomes.iter().find(|(i, _)| *i == spec.id) {
        let details = results
            .first()
            .map(|r| r.details.clone())
            .unwrap_or_default();
        slot.put((status, details));
    }
    results
}

fn fact_list(facts: &[Fact]) -> String {
    facts
        .iter()
        .map(|f| f.text())
        .collect::<Vec<_>>()
        .join(" or ")
}

/// Where the last run of the same settings found the team and Pocket ID (`serve`
/// probes a target again and again): their connections open, and Pocket ID's public
/// answers are asked for, at the run's start. Nothing found earlier is trusted: each
/// check still waits for this run's own chain to name its host, judges this run's
/// answers, and asks again itself if the chain names another host.
#[derive(Debug, Clone, Default)]
pub struct Hints {
    /// The team domain the last run found.
    pub team: Option<String>,
    /// Pocket ID's URL the last run adopted.
    pub idp: Option<Url>,
}

/// The checks of one run in report order, with what Pocket ID's URL turned out to be.
pub async fn run(config: &Config, http: &Http, hints: &Hints) -> (Vec<CheckResult>, Arc<Config>) {
    let board = Board::new(config, http);
    board.seed();
    let steps = spec::PROBE.iter().map(|s| {
        let board = &board;
        async move {
            let ours = board.ours(s).await;
            match s.step {
                Some(step) if ours && asked(s, board.config) => run_one(board, s, step).await,
                _ if !ours => {
                    // Another gateway's check: what it would yield is that gateway's
                    // to give (this run's gateway has its own check for it).
                    if let Some((_, slot)) = board.outcomes.iter().find(|(i, _)| *i == s.id) {
                        slot.missing("not part of this run");
                    }
                    Vec::new()
                }
                _ => {
                    // Not asked: what it would yield is missing, and said so.
                    for fact in s.yields {
                        if let Some(slot) = board.slot(*fact) {
                            slot.close(&format!("skipped: {} is not part of this run", s.id));
                        }
                    }
                    if let Some((_, slot)) = board.outcomes.iter().find(|(i, _)| *i == s.id) {
                        slot.missing("not asked");
                    }
                    // Asked for by half its settings: a skip that names the other half.
                    match half_asked(s, board.config) {
                        Some(why) => vec![CheckResult::skip(s.id, why)],
                        None => Vec::new(),
                    }
                }
            }
        }
    });
    let checks = async { tokio::join!(futures::future::join_all(steps), doctor(&board)) };
    // Requests ahead of their checks: the run does not wait for them — an answer no
    // check took when the checks are done is dropped.
    let ahead = async {
        tokio::join!(
            prefetch_certs(&board, hints.team.as_deref()),
            prefetch_idp(&board, hints.idp.as_ref()),
        );
        std::future::pending::<std::convert::Infallible>().await
    };
    let (results, doctor) = tokio::select! {
        biased;
        done = checks => done,
        never = ahead => match never {},
    };
    let mut checks: Vec<CheckResult> = results.into_iter().flatten().collect();
    checks.extend(doctor);
    (checks, board.known())
}

/// The team's certs (for `access.token`) as soon as the team is known or hinted: off
/// the end of the login, and — with `--team` or a hint, in every run — the request
/// that opens the team's connection while the site answers; `access.login`'s request
/// shares it.
async fn prefetch_certs(board: &Board<'_>, hint: Option<&str>) {
    let config = board.config;
    let team = match (&config.team_domain, hint) {
        (Some(team), _) => team.clone(),
        (None, Some(hint)) => hint.to_string(),
        (None, None) if config.passkey.is_none() => {
            board.certs.missing("not needed");
            return;
        }
        (None, None) => match board.team.get().await {
            Ok(team) => (*team).clone(),
            Err(why) => {
                board.certs.missing(why);
                return;
            }
        },
    };
    board.certs.put(login::fetch_certs(board.http, team).await);
}

/// Pocket ID's public answers (discovery, JWKS, health) from the Pocket ID the last
/// run adopted, when this run must find it again: its checks take them if this run's
/// chain names the same URL.
async fn prefetch_idp(board: &Board<'_>, hint: Option<&Url>) {
    let Some(idp) = hint else { return };
    if board.config.idp_source != IdpSource::Unknown || super::implausible_idp(idp).is_some() {
        return;
    }
    let mut hinted = board.config.clone();
    hinted.idp = idp.clone();
    let requests =
        idp::public_requests(&hinted).map(|(check, request)| board.http.prefetch(check, request));
    futures::future::join_all(requests).await;
}

/// The `config.*` checks (with API credentials), beside the probe: a failing login
/// comes with its configuration cause in the same report. They read Pocket ID's URL
/// once the chain has named it.
async fn doctor(board: &Board<'_>) -> Vec<CheckResult> {
    if !board.config.doctor.enabled() {
        return Vec::new();
    }
    // Which gateway's client to judge: the site's first answer says.
    let relying = match board.gateway.get().await {
        Ok(g) if *g == Gateway::OAuth2Proxy => {
            // The client id its authorization request names (o2p.start's), for a run
            // that was not given one.
            let client_id = match board.config.client_id {
                Some(_) => None,
                None => board
                    .authorize
                    .get()
                    .await
                    .ok()
                    .map(|a| a.client_id.clone()),
            };
            board.proxy_login.now().map(|login| crate::doctor::Relying {
                gateway: Gateway::OAuth2Proxy,
                callback: login.callback(),
                client_id,
            })
        }
        _ => None,
    };
    match board.idp.get().await {
        Ok(known) => crate::doctor::run(&known, board.http, true, relying.as_ref()).await,
        Err(_) => crate::doctor::run(board.config, board.http, false, relying.as_ref()).await,
    }
}

// ---------------------------------------------------------------- the steps

/// `tls.<host>`: the site, the team (once known) and Pocket ID (once known).
pub fn tls_hosts<'a>(b: &'a Board<'_>) -> BoxFuture<'a, Vec<CheckResult>> {
    async move {
        tls::run_all(
            b.config,
            b.http,
            async {
                let team = b.team.get().await.ok().map(|t| (*t).clone());
                // The found gateway's; else --gateway's (Access without it), as for
                // the checks (`Board::ours`).
                let gateway = match b.gateway.get().await {
                    Ok(g) => *g,
                    Err(_) => b.config.gateway.unwrap_or_default(),
                };
                (gateway == Gateway::Access).then_some(team)
            },
            b.idp.get().map(|c| c.ok().map(|c| c.idp.clone())),
        )
        .await
    }
    .boxed()
}

/// `service.redirect`.
pub fn service_redirect<'a>(b: &'a Board<'_>) -> BoxFuture<'a, Vec<CheckResult>> {
    async move {
        let (result, login) = access::service_redirect(b.config, b.http).await;
        match login {
            Some(SiteLogin::Access(login)) => {
                b.gateway.put(Gateway::Access);
                b.team.put(login.team_domain.clone());
                b.access_login.put(login);
            }
            Some(SiteLogin::OAuth2Proxy(login)) => {
                b.gateway.put(Gateway::OAuth2Proxy);
                let why = "skipped: the site is behind oauth2-proxy, not Cloudflare Access";
                b.access_login.missing(why);
                b.team.missing(why);
                b.proxy_login.put(login);
            }
            None => b.gateway.missing("no login found"),
        }
        vec![result]
    }
    .boxed()
}

/// `access.login`. Without Pocket ID's URL, its answer names it: adopted (see
/// [`super::adopted_idp`]) before it is judged, so Pocket ID's checks start at once.
pub fn access_login<'a>(b: &'a Board<'_>) -> BoxFuture<'a, Vec<CheckResult>> {
    async move {
        let Ok(login) = b.access_login.get().await else {
            return Vec::new();
        };
        let mut answered = None;
        if b.config.idp_source == IdpSource::Unknown {
            let asked = Instant::now();
            let answer = b
                .http
                .send(
                    ids::ACCESS_LOGIN,
                    // The certs' request is opening the team's connection when a hint
                    // named the team: sharing it costs less than opening another.
                    Request::get(login.url.clone(), Accept::Html)
                        .like_browser_if(login.as_browser)
                        .patient(),
                )
                .await;
            match &answer {
                Ok(a) => b.adopt_idp(a, "/cdn-cgi/access/callback", IdpSource::Discovered),
                Err(_) => b.idp.missing(IDP_UNKNOWN),
            }
            answered = Some((answer, asked.elapsed()));
        }
        let config = b.settings();
        let (result, request) =
            access::access_login(&config, b.http, &login, answered, b.discovered()).await;
        if let Some(request) = request {
            b.authorize.put(request);
        }
        vec![result]
    }
    .boxed()
}

/// `idp.authorize`: says when its request has left (the passkey's login/finish waits
/// for that: Pocket ID's answer must not see the session).
pub fn idp_authorize<'a>(b: &'a Board<'_>) -> BoxFuture<'a, Vec<CheckResult>> {
    async move {
        let Ok(request) = b.authorize.get().await else {
            return Vec::new();
        };
        b.authorize_asked.put(());
        let (result, interaction) = idp::authorize(b.http, &request).await;
        if let Some(interaction) = interaction {
            b.interaction.put(interaction);
        }
        vec![result]
    }
    .boxed()
}

/// `idp.discovery`.
pub fn idp_discovery<'a>(b: &'a Board<'_>) -> BoxFuture<'a, Vec<CheckResult>> {
    async move {
        let config = b.settings();
        let (result, doc) = idp::discovery(&config, b.http).await;
        if let Some(doc) = doc {
            b.discovery.put(doc);
        }
        vec![result]
    }
    .boxed()
}

/// `idp.jwks`: compared with discovery's algorithms when discovery answers.
pub fn idp_jwks<'a>(b: &'a Board<'_>) -> BoxFuture<'a, Vec<CheckResult>> {
    async move {
        let config = b.settings();
        vec![idp::jwks(&config, b.http, b.discovered()).await]
    }
    .boxed()
}

/// `idp.token`. With a passkey (and no client secret) the login proves the token
/// endpoint, and the probe that Pocket ID would log as an error runs only if the
/// login's code exchange failed.
pub fn idp_token<'a>(b: &'a Board<'_>) -> BoxFuture<'a, Vec<CheckResult>> {
    async move {
        let config = b.settings();
        if b.config.passkey.is_none() || b.config.client_secret.is_some() {
            return vec![idp::token(&config, b.http).await];
        }
        if b.gateway.get().await.is_ok_and(|g| *g == Gateway::OAuth2Proxy) {
            // oauth2-proxy redeems the code itself: its callback passing proves the
            // endpoint; else the probe tells whether the endpoint is to blame.
            return vec![match b.outcome(ids::O2P_CALLBACK).await {
                Some(Status::Pass | Status::Warn) => idp::token_proved_by_login(Gateway::OAuth2Proxy),
                Some(Status::Fail) => idp::token(&config, b.http).await,
                _ => CheckResult::skip(
                    ids::IDP_TOKEN,
                    "skipped: the login did not reach the code exchange that proves the token endpoint (pass --client-secret-file to check it on its own, without a line in Pocket ID's error log)",
                ),
            }];
        }
        vec![match b.outcome(ids::ACCESS_CALLBACK).await {
            Some(Status::Pass) => idp::token_proved_by_login(Gateway::Access),
            Some(Status::Fail) => match b.detail(ids::ACCESS_CALLBACK, "token_request_like_access_status").await {
                // The callback's own token request (shaped like Access's) got an OAuth
                // error from Pocket ID: that proves the endpoint, without another line
                // in Pocket ID's error log.
                Some(status)
                    if b.detail(ids::ACCESS_CALLBACK, "token_request_like_access_oauth_error").await
                        == Some(serde_json::Value::Bool(true)) =>
                {
                    idp::token_proved_by_request(&status.to_string())
                }
                _ => idp::token(&config, b.http).await,
            },
            _ => CheckResult::skip(
                ids::IDP_TOKEN,
                "skipped: the login did not reach the code exchange that proves the token endpoint (pass --client-secret-file to check it on its own, without a line in Pocket ID's error log)",
            ),
        }]
    }
    .boxed()
}

/// `idp.health`.
pub fn idp_health<'a>(b: &'a Board<'_>) -> BoxFuture<'a, Vec<CheckResult>> {
    async move {
        let config = b.settings();
        vec![idp::health(&config, b.http).await]
    }
    .boxed()
}

/// `passkey.login`: signs beside the anonymous chain; sends login/finish once
/// `idp.authorize`'s request has left (its cookies are fixed then). A chain that stops
/// before it never opens a session; a problem found while signing is still reported.
pub fn passkey_login<'a>(b: &'a Board<'_>) -> BoxFuture<'a, Vec<CheckResult>> {
    async move {
        let config = b.settings();
        let begun = match login::passkey_begin(&config, b.http).await {
            Ok(begun) => begun,
            Err(failed) => return vec![failed],
        };
        if let Err(why) = b.authorize_asked.get().await {
            return vec![CheckResult::skip(ids::PASSKEY_LOGIN, why)];
        }
        // One turn of the scheduler: idp.authorize's request has been handed to the
        // client, with the cookies of that moment.
        tokio::task::yield_now().await;
        let (result, ok) = login::passkey_finish(&config, b.http, begun).await;
        if ok {
            b.session.put(());
        }
        vec![result]
    }
    .boxed()
}

/// What Access's login checks read of the chain: the Access login and the
/// authorization request (after discovery, which they wait for).
struct Known {
    login: Arc<AccessLogin>,
    authorize: Arc<AuthorizeRequest>,
}

impl Known {
    fn chain(&self) -> login::Chain<'_> {
        login::Chain {
            login: &self.login,
            authorize: &self.authorize,
        }
    }
}

async fn chain_of(b: &Board<'_>) -> Option<Known> {
    let known = Known {
        login: b.access_login.get().await.ok()?,
        authorize: b.authorize.get().await.ok()?,
    };
    let _ = b.discovered().await;
    Some(known)
}

/// `idp.code`.
pub fn idp_code<'a>(b: &'a Board<'_>) -> BoxFuture<'a, Vec<CheckResult>> {
    async move {
        let (Ok(authorize), Ok(interaction)) = (b.authorize.get().await, b.interaction.get().await)
        else {
            return Vec::new();
        };
        let config = b.settings();
        let (result, code) = login::code(
            &config,
            b.http,
            &authorize,
            b.discovered().await,
            &interaction,
        )
        .await;
        if let Some(code) = code {
            b.code.put(code);
        }
        vec![result]
    }
    .boxed()
}

/// `idp.exchange`.
pub fn idp_exchange<'a>(b: &'a Board<'_>) -> BoxFuture<'a, Vec<CheckResult>> {
    async move {
        let (Ok(authorize), Some(secret)) =
            (b.authorize.get().await, b.config.client_secret.as_ref())
        else {
            return Vec::new();
        };
        let config = b.settings();
        vec![login::exchange(&config, b.http, &authorize, b.discovered().await, secret).await]
    }
    .boxed()
}

/// `access.callback`: after `idp.exchange` when it runs.
pub fn access_callback<'a>(b: &'a Board<'_>) -> BoxFuture<'a, Vec<CheckResult>> {
    async move {
        let (Some(known), Ok(code)) = (chain_of(b).await, b.code.get().await) else {
            return Vec::new();
        };
        // The login's steps go one at a time, as before: idp.exchange first when it
        // runs (its verdict is evidence for the callback's failures, checks::causes).
        let _ = b.outcome(ids::IDP_EXCHANGE).await;
        let config = b.settings();
        let (result, landed) =
            login::access_callback(&config, b.http, &known.chain(), (*code).clone()).await;
        if let Some(landed) = landed {
            b.app_session.put(landed);
        }
        vec![result]
    }
    .boxed()
}

/// `service.reach`: with the login's session, or with the service token.
pub fn service_reach<'a>(b: &'a Board<'_>) -> BoxFuture<'a, Vec<CheckResult>> {
    async move {
        let config = b.settings();
        let proxied = b.gateway.get().await.is_ok_and(|g| *g == Gateway::OAuth2Proxy);
        match (&config.passkey, &config.service_token) {
            (None, Some(_)) if proxied => vec![CheckResult::skip(
                ids::SERVICE_REACH,
                "skipped: service tokens are Cloudflare Access's, and the site is behind oauth2-proxy: pass --passkey to reach it with a login",
            )],
            (None, Some(token)) => vec![login::service_token_reach(&config, b.http, token).await],
            _ if b.proxy_login.now().is_some() => match b.app_session.get().await {
                Ok(landed) => vec![o2p::service_reach(&config, b.http, (*landed).clone()).await],
                Err(_) => Vec::new(),
            },
            _ => match b.app_session.get().await {
                Ok(landed) => {
                    // Shaped like a browser's when the site sends only a browser to log in.
                    let as_browser = b.access_login.now().is_some_and(|l| l.as_browser);
                    vec![login::service_reach(&config, b.http, (*landed).clone(), as_browser).await]
                }
                Err(_) => Vec::new(),
            },
        }
    }
    .boxed()
}

/// `access.token`.
pub fn access_token<'a>(b: &'a Board<'_>) -> BoxFuture<'a, Vec<CheckResult>> {
    async move {
        let (Ok(access_login), Ok(authorize)) =
            (b.access_login.get().await, b.authorize.get().await)
        else {
            return Vec::new();
        };
        let chain = login::Chain {
            login: &access_login,
            authorize: &authorize,
        };
        let certs = b.certs.get().await.ok();
        let config = b.settings();
        vec![login::access_token(&config, b.http, &chain, certs).await]
    }
    .boxed()
}

/// `o2p.start`. Without Pocket ID's URL, the authorization request names it (adopted
/// like Access's, see [`super::adopted_idp`]) and Pocket ID's checks start at once.
pub fn o2p_start<'a>(b: &'a Board<'_>) -> BoxFuture<'a, Vec<CheckResult>> {
    async move {
        let Ok(login) = b.proxy_login.get().await else {
            return Vec::new();
        };
        let (result, request) = o2p::start(b.config, b.http, &login, |answer| {
            if b.config.idp_source == IdpSource::Unknown {
                let callback = login.endpoint("callback");
                b.adopt_idp(answer, callback.path(), IdpSource::DiscoveredByProxy);
            }
        })
        .await;
        if let Some(request) = request {
            b.authorize.put(request);
        }
        vec![result]
    }
    .boxed()
}

/// `o2p.callback`: reads what the run recorded that tells the causes of oauth2-proxy's
/// one 403 apart (the user's verified e-mail, a `groups` scope).
pub fn o2p_callback<'a>(b: &'a Board<'_>) -> BoxFuture<'a, Vec<CheckResult>> {
    async move {
        let (Ok(login), Ok(code)) = (b.proxy_login.get().await, b.code.get().await) else {
            return Vec::new();
        };
        let _ = b.outcome(ids::IDP_EXCHANGE).await;
        let evidence = o2p::Evidence {
            email_verified: b
                .detail(ids::PASSKEY_LOGIN, "email_verified")
                .await
                .and_then(|v| v.as_bool()),
            scope_has_groups: b
                .detail(ids::O2P_START, "scope_has_groups")
                .await
                .and_then(|v| v.as_bool()),
        };
        let config = b.settings();
        let (result, landed) =
            o2p::callback(&config, b.http, &login, (*code).clone(), evidence).await;
        if let Some(landed) = landed {
            b.app_session.put(landed);
        }
        vec![result]
    }
    .boxed()
}

/// `o2p.endpoints`: the anonymous answers at once, the signed-in ones after the login.
pub fn o2p_endpoints<'a>(b: &'a Board<'_>) -> BoxFuture<'a, Vec<CheckResult>> {
    async move {
        let Ok(login) = b.proxy_login.get().await else {
            return Vec::new();
        };
        let config = b.settings();
        // The login's session (a service token is Access's, not oauth2-proxy's):
        // after service.reach, whose verdict comes first.
        let session = async {
            match b.outcome(ids::O2P_CALLBACK).await {
                Some(Status::Pass | Status::Warn) => {
                    let _ = b.outcome(ids::SERVICE_REACH).await;
                    b.detail(ids::O2P_CALLBACK, "session_cookie_base")
                        .await
                        .and_then(|v| v.as_str().map(str::to_string))
                }
                _ => None,
            }
        };
        vec![o2p::endpoints(&config, b.http, &login, session).await]
    }
    .boxed()
}

/// `o2p.session`: after every other use of the session (it ends it).
pub fn o2p_session<'a>(b: &'a Board<'_>) -> BoxFuture<'a, Vec<CheckResult>> {
    async move {
        let (Ok(login), Ok(_)) = (b.proxy_login.get().await, b.app_session.get().await) else {
            return Vec::new();
        };
        let _ = b.outcome(ids::SERVICE_REACH).await;
        let _ = b.outcome(ids::O2P_ENDPOINTS).await;
        // The session cookie's name as o2p.callback found it (`--cookie-name`).
        let base = b
            .detail(ids::O2P_CALLBACK, "session_cookie_base")
            .await
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_else(|| crate::oauth2proxy::SESSION_COOKIE.to_string());
        let config = b.settings();
        vec![o2p::session(&config, b.http, &login, &base).await]
    }
    .boxed()
}
