//! What the sites share: the visit cookie that keys a browser's flow and
//! session, the CSRF token derived from it, and the audit helper.

mod first_login;
pub mod kaigo;
pub mod portal;
pub mod recovery;
mod register;

use crate::app::App;
use crate::config::GuardConfig;
use crate::http::{Method, Request, Response};
use crate::limit::Action;
use crate::pages;
use crate::secret::{constant_time_eq, Purpose, Token};
use crate::site::{Area, Site};
use crate::store::{
    Account, AuditEvent, ClaimGuard, LinkKind, LinkState, LoginGuard, Secret, Session,
    SessionState, StoreError,
};

/// A handler's result: a page, or a storage failure (a 500 in one place).
pub type Outcome = Result<Response, StoreError>;

/// The browser's visit: a random cookie, one per site. The server keeps
/// only its digest (as the key of the flow and session records) and derives
/// the CSRF token from it, so a form is bound to the browser that got it.
pub struct Visit {
    token: Token,
    /// Digest of the cookie: the key of this visit's records.
    pub key: String,
    /// The token every form of this visit carries.
    pub csrf: String,
    /// The cookie was made by this request and must be set on the answer.
    pub is_new: bool,
    area: Area,
}

impl Visit {
    /// The visit named by the request's cookie, or a new one.
    pub fn of(app: &App, req: &Request, area: Area) -> Result<Visit, StoreError> {
        match req.cookie(&cookie_name(app, area)).and_then(Token::parse) {
            Some(token) => Visit::from_token(app, token, area, false),
            None => Visit::new(app, area),
        }
    }

    /// A new visit: a fresh cookie (at first sight, and at login so that a
    /// cookie planted before login is worth nothing after it).
    pub fn new(app: &App, area: Area) -> Result<Visit, StoreError> {
        Visit::from_token(app, Token::generate(), area, true)
    }

    fn from_token(app: &App, token: Token, area: Area, is_new: bool) -> Result<Visit, StoreError> {
        Ok(Visit {
            key: app.digest(Purpose::Visit, token.expose())?,
            csrf: app.digest(Purpose::Csrf, token.expose())?,
            token,
            is_new,
            area,
        })
    }

    /// Whether a POST carries this visit's CSRF token. A visit made by this
    /// very request cannot have sent a form.
    pub fn csrf_ok(&self, req: &Request) -> bool {
        !self.is_new && constant_time_eq(req.field("csrf"), &self.csrf)
    }

    /// Adds the cookie to `response`. Under https it is a `__Host-` cookie
    /// (Secure, Path=/, no Domain: no other host or path can set or shadow
    /// it); otherwise it is scoped to the site's path.
    pub fn set_on(&self, app: &App, response: Response) -> Response {
        let scope = if app.config.is_https() {
            "Path=/; Secure".to_string()
        } else {
            format!("Path=/{}", self.area.name())
        };
        response.with_header(
            "Set-Cookie",
            format!(
                "{}={}; {scope}; HttpOnly; SameSite=Strict",
                cookie_name(app, self.area),
                self.token.expose(),
            ),
        )
    }
}

/// One request's view of a site: what every handler gets.
pub struct Ctx<'a> {
    pub app: &'a App,
    pub req: &'a Request,
    pub now: u64,
    pub site: Site,
    pub visit: &'a Visit,
}

impl Ctx<'_> {
    /// The words of the request's language.
    pub fn t(&self) -> &'static crate::text::Texts {
        self.req.lang.texts()
    }

    pub fn audit(
        &self,
        event: &str,
        account: Option<&str>,
        outcome: &str,
    ) -> Result<(), StoreError> {
        let site = Some(self.site);
        audit(self.app, self.req, self.now, site, event, account, outcome)
    }

    /// The key of a claimed identity's guard record: a keyed digest of the
    /// site and the claim's parts, so that the store never holds the address.
    pub fn claim_key(&self, parts: &[&str]) -> Result<String, StoreError> {
        claim_key(self.app, self.site, parts)
    }

    /// Applies `change` to the guard record of `claim` atomically (it may
    /// run more than once, on a fresh copy each time: keep it pure).
    pub fn update_claim<R>(
        &self,
        claim: &str,
        change: impl FnMut(&mut ClaimGuard) -> R,
    ) -> Result<R, StoreError> {
        let window = self.app.config.guard.window_secs;
        self.app
            .store
            .update_claim_guard(claim, self.now, window, change)
    }

    /// The value of `name` in the query string, or "".
    pub fn query(&self, name: &str) -> &str {
        self.req.query_value(name)
    }
}

/// The key of a claimed identity's guard record on `site` (see
/// `Ctx::claim_key`).
pub fn claim_key(app: &App, site: Site, parts: &[&str]) -> Result<String, StoreError> {
    let mut text = site.name().to_string();
    for part in parts {
        text.push('\0');
        text.push_str(part);
    }
    app.digest(Purpose::Claim, &text)
}

/// What answers one method of one path of a site.
pub type Handler = for<'a> fn(&Ctx<'a>) -> Outcome;

/// One path of an area: what answers a GET (and HEAD) and a POST (`H`: a
/// site's `Handler`, or the console's), and the rate limit each takes. An
/// area's table of these is the only place a path is named: 404, 405 with
/// `Allow`, and the limits are derived from it.
pub struct Route<H = Handler> {
    pub path: &'static str,
    pub get: Option<H>,
    pub post: Option<H>,
    /// The limit a GET takes (drawing a CAPTCHA costs the request thread
    /// like answering one does).
    pub get_limit: Option<Action>,
    pub post_limit: Option<Action>,
    /// The POST computes an argon2id hash (a password or a security code):
    /// it runs on a hashing worker, never on the request thread.
    pub hashes: bool,
    /// The GET reads much of the store (the whole audit trail, to check
    /// its chain): it too runs on a hashing worker, off the request thread.
    pub reads_much: bool,
}

impl<H> Route<H> {
    /// A path that answers nothing: the base of a table's entries.
    pub const NONE: Route<H> = Route {
        path: "",
        get: None,
        post: None,
        get_limit: None,
        post_limit: None,
        hashes: false,
        reads_much: false,
    };

    /// The methods the path answers, as `Allow` lists them.
    pub fn allow(&self) -> String {
        let mut methods = Vec::new();
        if self.get.is_some() {
            methods.extend(["GET", "HEAD"]);
        }
        if self.post.is_some() {
            methods.push("POST");
        }
        methods.join(", ")
    }
}

impl Route {
    /// `/<site>/not-me`, the same on every site.
    pub const fn not_me(path: &'static str) -> Route {
        Route {
            path,
            get: Some(|c| not_me(c, Method::Get)),
            post: Some(|c| not_me(c, Method::Post)),
            ..Route::NONE
        }
    }
}

/// Routes a request within a site by its table (`serve_area`), and calls
/// the route's handler with the request's `Ctx`.
pub fn serve_site(app: &App, req: &Request, now: u64, site: Site, routes: &[Route]) -> Outcome {
    serve_area(app, req, now, Area::Site(site), routes, |handler, visit| {
        handler(&Ctx {
            app,
            req,
            now,
            site,
            visit,
        })
    })
}

/// Routes a request within an area by its table: 404 for a path not in
/// `routes`, 405 (with `Allow`) for a method the path does not answer, 403
/// for a POST without this visit's CSRF token (nothing is read or written
/// then), 429 past the route's rate limit, and 503 for new work below
/// `store.min_free_bytes`. `call` runs the route's handler with the visit;
/// the visit cookie is set on the answer when this request made it.
pub fn serve_area<H: Copy>(
    app: &App,
    req: &Request,
    now: u64,
    area: Area,
    routes: &[Route<H>],
    call: impl FnOnce(H, &Visit) -> Outcome,
) -> Outcome {
    let Some(route) = find_route(routes, area, &req.path) else {
        return Ok(Response::error(404));
    };
    let visit = Visit::of(app, req, area)?;
    let (handler, limit) = match req.method {
        Method::Get | Method::Head => (route.get, route.get_limit),
        Method::Post => (route.post, route.post_limit),
        _ => (None, None),
    };
    let Some(handler) = handler else {
        return Ok(Response::method_not_allowed(&route.allow()));
    };
    if req.method == Method::Post && !visit.csrf_ok(req) {
        return Ok(visit.set_on(app, Response::error(403)));
    }
    if let Some(action) = limit {
        // Below `store.min_free_bytes` nothing new is started that an
        // anonymous client makes kagi write; what is under way (logins,
        // codes, new passwords) goes on.
        let low_on_disk = || {
            app.store
                .free_bytes()
                .is_some_and(|free| free < app.config.store.min_free_bytes)
        };
        if req.method == Method::Post && action.starts_new_work() && low_on_disk() {
            let page = match area.site() {
                Some(site) => {
                    Response::html_status(503, pages::not_taking_new_work(site, req.lang))
                }
                None => Response::error(503),
            };
            return Ok(page.with_header("Retry-After", "300".into()));
        }
        if let Some(refused) = over_limit(app, req, now, area, action) {
            return Ok(refused);
        }
    }
    let response = call(handler, &visit)?;
    let already_set = response.headers.iter().any(|(n, _)| *n == "Set-Cookie");
    Ok(if visit.is_new && !already_set {
        visit.set_on(app, response)
    } else {
        response
    })
}

/// The route of `path` in an area's table (a trailing `/` ignored; the
/// area's bare path is its home).
fn find_route<'r, H>(routes: &'r [Route<H>], area: Area, path: &str) -> Option<&'r Route<H>> {
    let path = path.trim_end_matches('/');
    let home = format!("/{}", area.name());
    let path = if path.is_empty() { home.as_str() } else { path };
    routes.iter().find(|r| r.path == path)
}

/// The path, as an area's table names it, of the route that answers
/// `path`: what `/metrics` counts a request under.
pub fn route_path<H>(routes: &[Route<H>], area: Area, path: &str) -> Option<&'static str> {
    find_route(routes, area, path).map(|r| r.path)
}

/// Whether `req` is for a worker of the hashing pool, by its route in
/// `routes`: a POST that computes a hash, or a GET that reads much.
pub fn runs_on_pool<H>(routes: &[Route<H>], area: Area, req: &Request) -> bool {
    find_route(routes, area, &req.path).is_some_and(|r| match req.method {
        Method::Post => r.hashes,
        Method::Get | Method::Head => r.reads_much,
        Method::Other => false,
    })
}

/// Which hashing worker a request goes to: the same for every request of
/// one visit (its cookie), so that a browser's requests run in the order
/// it sent them. None without a visit cookie.
pub fn visit_shard(app: &App, req: &Request) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let area = Area::of_path(&req.path)?;
    let cookie = req.cookie(&cookie_name(app, area))?;
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    cookie.hash(&mut hasher);
    Some(hasher.finish())
}

/// Takes a token of `action` for the request's client: None when there was
/// one; otherwise the 429 page saying how long to wait. A refusal is
/// counted, not written one by one: the audit trail gets one entry per
/// client, action and minute.
fn over_limit(app: &App, req: &Request, now: u64, area: Area, action: Action) -> Option<Response> {
    let wait = app.limiter.take(action, req.client, now).err()?;
    app.limiter
        .tally_refusal(area.site(), action, req.client, now);
    Some(
        Response::html_status(
            429,
            pages::rate_limited(wait, area, pages::lang_in(Some(area), req.lang)),
        )
        .with_header("Retry-After", wait.to_string()),
    )
}

/// The visit's session and its account, if the session is still good: not
/// idle too long, not past its absolute lifetime, not from before a password
/// change. A good session's idle clock restarts.
pub fn current_session(
    app: &App,
    visit: &Visit,
    now: u64,
) -> Result<Option<(Session, Account)>, StoreError> {
    let limits = &app.config.session;
    let Some(mut session) = app.store.session(&visit.key, now)? else {
        return Ok(None);
    };
    // A session is its site's: one site's cookie under the other's name
    // is nothing there.
    if visit.area != Area::Site(session.site) {
        return Ok(None);
    }
    let account = app.store.account(session.site, &session.account)?;
    // A disabled account's sessions end with it.
    let good = |a: &Account| {
        a.generation == session.generation
            && a.is_enabled()
            && now < session.created + limits.absolute_secs
    };
    let Some(account) = account.filter(good) else {
        app.store.remove_session(&visit.key)?;
        return Ok(None);
    };
    session.last_seen = now;
    save_session(app, visit, &session, now)?;
    Ok(Some((session, account)))
}

/// Writes a session back, expiring at whichever of its limits comes first.
pub fn save_session(
    app: &App,
    visit: &Visit,
    session: &Session,
    now: u64,
) -> Result<(), StoreError> {
    let limits = &app.config.session;
    let expires = (now + limits.idle_secs).min(session.created + limits.absolute_secs);
    app.store.put_session(&visit.key, session, expires)
}

/// Logs `account` in: the old visit's records go, and the session lives
/// under a new cookie (whatever cookie the browser had before is worth
/// nothing afterwards: no session fixation). Returns the new visit.
pub fn open_session(
    app: &App,
    old: &Visit,
    account: &Account,
    state: SessionState,
    now: u64,
) -> Result<Visit, StoreError> {
    app.store.remove_session(&old.key)?;
    app.store.remove_flow(&old.key)?;
    let fresh = Visit::new(app, Area::Site(account.site))?;
    let session = Session {
        site: account.site,
        account: account.id.clone(),
        generation: account.generation,
        state,
        created: now,
        last_seen: now,
    };
    save_session(app, &fresh, &session, now)?;
    Ok(fresh)
}

/// `/<site>/not-me`: GET shows what the link will do (a mail scanner that
/// fetches it changes nothing); POST locks the account, ends its sessions
/// and kills its codes and links. A new recovery lifts the lock.
fn not_me(ctx: &Ctx<'_>, method: Method) -> Outcome {
    let (app, now, site) = (ctx.app, ctx.now, ctx.site);
    let token = match method {
        Method::Post => ctx.req.field("token"),
        _ => ctx.query("token"),
    };
    let doc = pages::Doc {
        lang: ctx.req.lang,
        banner: app.banner,
        here: Some(&ctx.req.path),
    };
    let invalid = || Response::html_status(404, pages::not_me_invalid(site, &doc));
    let Some(token) = Token::parse(token) else {
        return Ok(invalid());
    };
    let key = app.digest(Purpose::Link, token.expose())?;
    let link = app
        .store
        .link(&key, now)?
        .filter(|l| l.kind == LinkKind::NotMe && l.site == site && l.state == LinkState::Live);
    let account = match &link {
        Some(l) => app
            .store
            .account(site, &l.account)?
            .filter(|a| a.generation == l.generation),
        None => None,
    };
    let Some(account) = account else {
        return Ok(invalid());
    };
    if method != Method::Post {
        return Ok(Response::html(pages::not_me_confirm(
            site,
            token.expose(),
            &ctx.visit.csrf,
            &doc,
        )));
    }
    if !app.store.use_link(&key, now)? {
        return Ok(invalid());
    }
    let generation = account.generation;
    let locked = app.store.update_account(site, &account.id, |a| {
        let same = a.generation == generation;
        if same {
            a.locked = true;
            a.generation += 1;
        }
        same
    })?;
    // A password changed meanwhile: the link was of the old one.
    if locked != Some(true) {
        return Ok(invalid());
    }
    ctx.audit("not_me_lock", Some(&account.id), "locked; sessions ended")?;
    app.store.flush()?;
    Ok(Response::html(pages::not_me_done(site, &doc)))
}

/// What checking a secret under its guard came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Checked {
    Right,
    Wrong,
    /// The user name waits out earlier failures for this many seconds more
    /// (whether or not the secret was right).
    Waiting(u64),
}

/// Counts an attempt at one secret of a user name (known account or not)
/// against its guard. `right`: the secret matched; the caller verified it
/// in every case, so that every answer costs the same. After
/// `guard.login_failures` failures the name waits `lockout_initial_secs`,
/// doubling with every further failure up to `lockout_max_secs`; during the
/// wait even the right secret is refused. Each failure is audited as
/// `event`; a right secret forgives that secret's failures, not another's.
pub fn check_guarded(
    app: &App,
    req: &Request,
    now: u64,
    (secret, area, user): (Secret, Area, &str),
    right: bool,
    event: &str,
) -> Result<Checked, StoreError> {
    let site = area.site();
    let limits = &app.config.guard;
    // A right secret with no failures behind it changes nothing: no write.
    let guard = app.store.login_guard(secret, area, user, now)?;
    if right && guard == LoginGuard::default() {
        return Ok(Checked::Right);
    }
    let longest = limits.lockout_max_secs;
    let step = app
        .store
        .update_login_guard((secret, area, user), now, longest, |g| {
            guard_step(g, right, now, limits)
        })?;
    match step {
        GuardStep::Waited(secs) => {
            let outcome = "failed; waiting out earlier failures";
            audit(app, req, now, site, event, Some(user), outcome)?;
            Ok(Checked::Waiting(secs))
        }
        GuardStep::Forgiven => Ok(Checked::Right),
        GuardStep::Failed => {
            audit(app, req, now, site, event, Some(user), "failed")?;
            Ok(Checked::Wrong)
        }
        GuardStep::Locked { failures, wait } => {
            app.metrics.locked_out(area.name());
            let note = format!("{event}: {failures} failures; waits {wait} s");
            audit(app, req, now, site, "lockout", Some(user), &note)?;
            audit(app, req, now, site, event, Some(user), "failed")?;
            Ok(Checked::Waiting(wait))
        }
    }
}

/// What one attempt did to a guard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuardStep {
    /// The name was waiting: nothing counted, right or wrong.
    Waited(u64),
    /// Right: earlier failures are forgiven.
    Forgiven,
    /// Wrong, and counted.
    Failed,
    /// Wrong, and the name now waits `wait` seconds.
    Locked { failures: u32, wait: u64 },
}

/// One attempt at a secret, as a pure transition of its guard: after
/// `login_failures` failures the name waits `lockout_initial_secs`,
/// doubling with every further failure up to `lockout_max_secs`; during the
/// wait even the right secret is refused.
pub fn guard_step(g: &mut LoginGuard, right: bool, now: u64, limits: &GuardConfig) -> GuardStep {
    if now < g.locked_until {
        return GuardStep::Waited(g.locked_until - now);
    }
    if right {
        *g = LoginGuard::default();
        return GuardStep::Forgiven;
    }
    g.failures += 1;
    if g.failures < limits.login_failures {
        return GuardStep::Failed;
    }
    let doublings = (g.failures - limits.login_failures).min(20);
    let wait = limits
        .lockout_initial_secs
        .saturating_mul(1 << doublings)
        .min(limits.lockout_max_secs);
    g.locked_until = now + wait;
    GuardStep::Locked {
        failures: g.failures,
        wait,
    }
}

/// Checks a password of a user name. The password is verified in every
/// case (against a decoy when there is no account), so that an unknown,
/// locked or waiting account answers like a wrong password, in the same
/// time. The account only when the password is right, the account is not
/// locked, and the user name is not waiting out failures; failures count
/// per user name, known or not, whether they are made at the login or on
/// a form that asks for the current password (`event` says which).
pub fn check_login(
    app: &App,
    req: &Request,
    now: u64,
    (site, user): (Site, &str),
    account: Option<Account>,
    password: &str,
    event: &str,
) -> Result<Option<Account>, StoreError> {
    let ok = app
        .hasher
        .verify_login(account.as_ref().map(|a| a.password_phc.as_str()), password);
    // A locked or disabled account answers like a wrong password.
    let right = ok
        && account
            .as_ref()
            .is_some_and(|a| !a.locked && a.is_enabled());
    let who = (Secret::Password, Area::Site(site), user);
    let checked = check_guarded(app, req, now, who, right, event)?;
    let Some(mut account) = account.filter(|_| checked == Checked::Right) else {
        return Ok(None);
    };
    // A hash made at another cost (an import, an older setting) is made
    // anew at the configured one, now that the password is known.
    if !app.hasher.is_current(&account.password_phc) {
        let (old, new) = (account.password_phc.clone(), app.hasher.hash(password));
        // Only over the hash just verified: a password set meanwhile stays.
        app.store.update_account(site, &account.id, |a| {
            let same = a.password_phc == old;
            if same {
                a.password_phc = new.clone();
            }
            same
        })?;
        account.password_phc = new;
    }
    Ok(Some(account))
}

/// A login with the user name as typed. `user` is None when the name
/// cannot be an account (wrong form): its password is still verified
/// against a decoy and the failure audited, so that the answer costs the
/// same, but no failure is counted under a name that can never exist.
pub fn attempt_login(
    app: &App,
    req: &Request,
    now: u64,
    (site, user): (Site, Option<&str>),
    password: &str,
) -> Result<Option<Account>, StoreError> {
    let Some(user) = user else {
        app.hasher.verify_login(None, password);
        audit(app, req, now, Some(site), "login", None, "failed")?;
        return Ok(None);
    };
    let account = app.store.account(site, user)?;
    check_login(app, req, now, (site, user), account, password, "login")
}

pub fn cookie_name(app: &App, area: Area) -> String {
    if app.config.is_https() {
        format!("__Host-kagi_{}", area.name())
    } else {
        format!("kagi_{}", area.name())
    }
}

/// Appends to the audit trail. A failed audit write fails the request: an
/// event that cannot be recorded must not happen silently.
pub fn audit(
    app: &App,
    req: &Request,
    now: u64,
    site: Option<Site>,
    event: &str,
    account: Option<&str>,
    outcome: &str,
) -> Result<(), StoreError> {
    app.store.audit(&AuditEvent {
        prev: String::new(),
        time: now,
        request: Some(req.id.clone()),
        site,
        event: event.into(),
        account: account.map(str::to_string),
        client: req.client.to_string(),
        outcome: outcome.into(),
        ..Default::default()
    })
}

/// Turns full-width ASCII (`１３１１`, `ａｂｃ＠ｅｘａｍｐｌｅ．ｊｐ`), as Japanese
/// keyboards often type it, into ASCII, and trims spaces of both widths.
pub fn normalize_width(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            '\u{3000}' => ' ',
            c => c,
        })
        .collect::<String>()
        .trim()
        .to_string()
}

/// What a new password breaks, each on the field it is about (the
/// password, or its confirmation), in the page's words.
pub(super) fn password_problems(
    t: &crate::text::Texts,
    broken: &[crate::policy::Violation],
) -> Vec<crate::pages::Problem> {
    broken
        .iter()
        .map(|v| crate::pages::Problem::of(v.field(), v.message(t)))
        .collect()
}

/// What is wrong with a required text field of at most `max` characters.
pub(super) fn text_problem(
    t: &crate::text::Texts,
    label: &str,
    text: &str,
    max: usize,
) -> Option<String> {
    let text_of =
        |template| crate::text::fill(template, &[("label", label), ("max", &max.to_string())]);
    if text.is_empty() {
        Some(text_of(t.c_field_empty))
    } else if text.chars().count() > max {
        Some(text_of(t.c_field_too_long))
    } else if text.chars().any(char::is_control) {
        Some(text_of(t.c_field_bad_chars))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_make_a_name_wait_doubling_and_a_right_secret_forgives_them() {
        let limits = GuardConfig {
            login_failures: 3,
            lockout_initial_secs: 60,
            lockout_max_secs: 200,
            ..GuardConfig::default()
        };
        let mut g = LoginGuard::default();
        assert_eq!(guard_step(&mut g, false, 0, &limits), GuardStep::Failed);
        assert_eq!(guard_step(&mut g, false, 0, &limits), GuardStep::Failed);
        let locked = GuardStep::Locked {
            failures: 3,
            wait: 60,
        };
        assert_eq!(guard_step(&mut g, false, 0, &limits), locked);
        // While it waits, even the right secret counts for nothing.
        assert_eq!(guard_step(&mut g, true, 30, &limits), GuardStep::Waited(30));
        let locked = GuardStep::Locked {
            failures: 4,
            wait: 120,
        };
        assert_eq!(guard_step(&mut g, false, 60, &limits), locked);
        let capped = GuardStep::Locked {
            failures: 5,
            wait: 200,
        };
        assert_eq!(guard_step(&mut g, false, 180, &limits), capped);
        assert_eq!(guard_step(&mut g, true, 380, &limits), GuardStep::Forgiven);
        assert_eq!(g, LoginGuard::default());
    }

    #[test]
    fn full_width_ascii_becomes_ascii() {
        assert_eq!(normalize_width("　１３１１１１１１１１ "), "1311111111");
        assert_eq!(
            normalize_width("ＯＦＦＩＣＥ－ｏｓａｋａ＠ｅｘａｍｐｌｅ．ｊｐ"),
            "OFFICE-osaka@example.jp"
        );
        assert_eq!(normalize_width("１２３４５６"), "123456");
        assert_eq!(normalize_width("事業所"), "事業所");
    }
}
