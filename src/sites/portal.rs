//! The portal site (`/portal`): login, and the self-service recovery of the
//! seed as a state machine over `PortalFlow` and `Link`: user name + CAPTCHA
//! (① 特定) → registered address (② 検証) → a mailed link → new password
//! (③ リセット).

use super::password_problems;
use super::recovery::{self, Mailing};
use super::{
    attempt_login, current_session, normalize_width, open_session, register, serve_site, Ctx,
    Outcome, Route,
};
use crate::address;
use crate::app::App;
use crate::captcha;
use crate::http::{Request, Response};
use crate::limit::Action;
use crate::mail::templates;
use crate::metrics::Issued;
use crate::pages::portal::{self as page, Frame};
use crate::pages::Problem;
use crate::policy;
use crate::secret::{constant_time_eq, Purpose, Token};
use crate::site::Site;
use crate::store::{
    Account, Flow, Link, LinkKind, LinkState, PortalFlow, SessionState, StoreError,
};
use crate::text::{fill, Lang, Texts};

pub(super) const SITE: Site = Site::Portal;

/// What the portal pages and flow read of a request.
pub(super) trait Portal {
    fn frame<'f>(&'f self, user: Option<&'f str>) -> Frame<'f>;
    fn flow(&self) -> Result<Option<PortalFlow>, StoreError>;
    fn put_flow(&self, flow: PortalFlow) -> Result<(), StoreError>;
    fn logged_in(&self) -> Result<Option<Account>, StoreError>;
}

impl Portal for Ctx<'_> {
    fn frame<'f>(&'f self, user: Option<&'f str>) -> Frame<'f> {
        Frame {
            csrf: &self.visit.csrf,
            banner: self.app.banner,
            user,
            lang: self.req.lang,
            here: &self.req.path,
        }
    }

    fn flow(&self) -> Result<Option<PortalFlow>, StoreError> {
        Ok(match self.app.store.flow(&self.visit.key, self.now)? {
            Some(Flow::Portal(f)) => Some(f),
            _ => None,
        })
    }

    fn put_flow(&self, flow: PortalFlow) -> Result<(), StoreError> {
        let expires = self.now + self.app.config.portal.flow_lifetime_secs;
        self.app
            .store
            .put_flow(&self.visit.key, &Flow::Portal(flow), expires)
    }

    fn logged_in(&self) -> Result<Option<Account>, StoreError> {
        Ok(current_session(self.app, self.visit, self.now)?
            .and_then(|(s, a)| (s.state == SessionState::Active).then_some(a)))
    }
}

/// Every path of the site: what answers it and the limit it takes.
pub const ROUTES: &[Route] = &[
    Route {
        path: "/portal",
        get: Some(top),
        ..Route::NONE
    },
    Route {
        path: "/portal/login",
        get: Some(|c| Ok(Response::html(page::login(&c.frame(None), "", None)))),
        post: Some(login),
        post_limit: Some(Action::Login),
        hashes: true,
        ..Route::NONE
    },
    Route {
        path: "/portal/home",
        get: Some(home),
        ..Route::NONE
    },
    Route {
        path: "/portal/logout",
        post: Some(logout),
        ..Route::NONE
    },
    Route {
        path: "/portal/reset",
        // Drawing a CAPTCHA takes a token of the bucket answering one does.
        get: Some(|c| identify_page(c, "", None)),
        get_limit: Some(Action::Captcha),
        post: Some(identify),
        post_limit: Some(Action::Captcha),
        ..Route::NONE
    },
    Route {
        path: "/portal/reset/verify",
        get: Some(verify_page),
        post: Some(verify),
        post_limit: Some(Action::Recovery),
        ..Route::NONE
    },
    Route {
        path: "/portal/reset/sent",
        get: Some(sent_page),
        ..Route::NONE
    },
    Route {
        path: "/portal/passwordreset",
        get: Some(reset_page),
        post: Some(reset_password),
        hashes: true,
        ..Route::NONE
    },
    Route {
        path: "/portal/passwordreset/done",
        get: Some(reset_done_page),
        ..Route::NONE
    },
    Route {
        path: "/portal/register",
        // Drawing a CAPTCHA takes a token of the bucket answering one does.
        get: Some(register::form_page),
        get_limit: Some(Action::Captcha),
        post: Some(register::submit),
        post_limit: Some(Action::Recovery),
        ..Route::NONE
    },
    Route {
        path: "/portal/register/sent",
        get: Some(register::sent_page),
        ..Route::NONE
    },
    Route {
        path: "/portal/register/confirm",
        get: Some(register::confirm_page),
        post: Some(register::confirm),
        // A user name found taken is said here: probes are limited.
        post_limit: Some(Action::Login),
        hashes: true,
        ..Route::NONE
    },
    Route {
        path: "/portal/register/done",
        get: Some(register::done_page),
        ..Route::NONE
    },
    Route::not_me("/portal/not-me"),
];

/// Answers a request under `/portal`.
pub fn handle(app: &App, req: &Request, now: u64) -> Outcome {
    serve_site(app, req, now, SITE, ROUTES)
}

fn top(ctx: &Ctx<'_>) -> Outcome {
    let user = ctx.logged_in()?.map(|a| a.id);
    Ok(Response::html(page::top(&ctx.frame(user.as_deref()))))
}

fn home(ctx: &Ctx<'_>) -> Outcome {
    Ok(match ctx.logged_in()? {
        Some(a) => Response::html(page::home(
            &ctx.frame(Some(&a.id)),
            &a.id,
            a.coordinator,
            a.is_provisional(),
        )),
        None => Response::see_other("/portal/login"),
    })
}

fn logout(ctx: &Ctx<'_>) -> Outcome {
    ctx.app.store.remove_session(&ctx.visit.key)?;
    Ok(Response::see_other("/portal"))
}

fn verify_page(ctx: &Ctx<'_>) -> Outcome {
    Ok(match ctx.flow()? {
        Some(PortalFlow::Identified { .. }) => Response::html(page::verify(&ctx.frame(None), None)),
        _ => expired(ctx, 2),
    })
}

fn reset_page(ctx: &Ctx<'_>) -> Outcome {
    let token = ctx.query("token");
    // Opening the link only shows the form: a mail scanner that fetches it
    // uses nothing up.
    Ok(match live_link(ctx, token)? {
        Some(_) => Response::html(page::reset(&ctx.frame(None), token, &[])),
        None => invalid_link(ctx),
    })
}

fn reset_done_page(ctx: &Ctx<'_>) -> Outcome {
    Ok(match ctx.flow()? {
        Some(PortalFlow::Reset) => Response::html(page::reset_done(&ctx.frame(None))),
        _ => Response::see_other("/portal/login"),
    })
}

// ----- login ---------------------------------------------------------------

fn login(ctx: &Ctx<'_>) -> Outcome {
    let app = ctx.app;
    let user = ctx.req.field("user").trim();
    let plausible = (!user.is_empty() && user.chars().count() <= 100).then_some(user);
    let password = ctx.req.field("password");
    let checked = attempt_login(app, ctx.req, ctx.now, (SITE, plausible), password)?;
    let Some(account) = checked else {
        let message = ctx.t().p_login_failed;
        return Ok(Response::html(page::login(
            &ctx.frame(None),
            user,
            Some(message),
        )));
    };
    ctx.audit("login", Some(&account.id), "ok")?;
    let fresh = open_session(app, ctx.visit, &account, SessionState::Active, ctx.now)?;
    Ok(fresh.set_on(app, Response::see_other("/portal/home")))
}

// ----- recovery --------------------------------------------------------------

/// ① with a fresh CAPTCHA. The challenge is stored as digests only; the
/// image (or sound) goes out inline with this page and nowhere else.
fn identify_page(ctx: &Ctx<'_>, user: &str, error: Option<Problem>) -> Outcome {
    let (id, shown) = new_captcha(ctx)?;
    Ok(Response::html(page::identify(
        &ctx.frame(None),
        user,
        &id,
        &shown,
        error,
    )))
}

/// What the form's buttons ask of the CAPTCHA: another image (画像を変更),
/// the sound instead (音声で聞く, 別の音声を聞く) or the image again
/// (画像に戻る). The form comes back with a new challenge and what was
/// typed, nothing checked.
pub(super) fn captcha_changed(ctx: &Ctx<'_>) -> bool {
    matches!(ctx.req.field("action"), "refresh" | "audio" | "image")
}

/// The kind of CAPTCHA the form showed: the sound's form says so in a
/// hidden field, so that a wrong answer brings a new sound, not an image.
fn captcha_shown(ctx: &Ctx<'_>) -> captcha::Kind {
    match ctx.req.field("captcha_mode") {
        "audio" => captcha::Kind::Audio,
        _ => captcha::Kind::Image,
    }
}

/// What a wrong CAPTCHA answer is told, in the words of the kind shown.
pub(super) fn captcha_wrong(ctx: &Ctx<'_>) -> &'static str {
    match captcha_shown(ctx) {
        captcha::Kind::Image => ctx.t().p_captcha_wrong,
        captcha::Kind::Audio => ctx.t().p_captcha_audio_wrong,
    }
}

/// A new CAPTCHA challenge: its id for the form, and its image, or its
/// sound when the form asked for that or showed it. Image and sound are
/// challenges of one table, one lifetime and one rate limit. Stored as
/// digests only; the image or sound goes out inline with its page and
/// nowhere else.
pub(super) fn new_captcha(ctx: &Ctx<'_>) -> Result<(String, captcha::Shown), StoreError> {
    let app = ctx.app;
    let kind = match ctx.req.field("action") {
        "audio" => captcha::Kind::Audio,
        "image" | "refresh" => captcha::Kind::Image,
        _ => captcha_shown(ctx),
    };
    // The sound speaks the page's language.
    let voice = match ctx.req.lang {
        Lang::Ja => captcha::audio::Voice::Japanese,
        Lang::En => captcha::audio::Voice::English,
    };
    let (answer, shown) = captcha::challenge(kind, voice);
    let id = Token::generate();
    let expires = ctx.now + app.config.portal.captcha_lifetime_secs;
    app.challenges.put(
        &app.digest(Purpose::CaptchaId, id.expose())?,
        &app.digest(Purpose::CaptchaAnswer, &answer)?,
        expires,
        ctx.now,
    );
    app.remember_dev_captcha(id.expose(), &answer, expires, ctx.now);
    Ok((id.expose().to_string(), shown))
}

/// Whether the CAPTCHA of the form was answered right. Either way it is
/// used up: each challenge answers once.
pub(super) fn captcha_solved(ctx: &Ctx<'_>) -> Result<bool, StoreError> {
    let app = ctx.app;
    let id = ctx.req.field("captcha_id");
    let Some(id) = Token::parse(id) else {
        return Ok(false);
    };
    app.forget_dev_captcha(id.expose());
    let Some(answer_digest) = app
        .challenges
        .take(&app.digest(Purpose::CaptchaId, id.expose())?, ctx.now)
    else {
        return Ok(false);
    };
    // Full-width characters (a Japanese input method's digits) and spaces
    // between groups do not make an answer wrong.
    let typed: String = normalize_width(ctx.req.field("captcha"))
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let typed = typed.to_ascii_lowercase();
    Ok(constant_time_eq(
        &app.digest(Purpose::CaptchaAnswer, &typed)?,
        &answer_digest,
    ))
}

/// ① 特定 submitted: on to ② whatever the user name, if the CAPTCHA is right.
fn identify(ctx: &Ctx<'_>) -> Outcome {
    let user = ctx.req.field("user").trim();
    let solved = captcha_solved(ctx)?;
    if captcha_changed(ctx) {
        return identify_page(ctx, user, None);
    }
    if !solved {
        ctx.audit("captcha", None, "failed")?;
        return identify_page(ctx, user, Some(Problem::of("captcha", captcha_wrong(ctx))));
    }
    if user.is_empty() || user.chars().count() > 100 || user.chars().any(char::is_control) {
        return identify_page(ctx, user, Some(Problem::of("user", ctx.t().p_user_empty)));
    }
    ctx.audit("recovery_started", None, "captcha passed")?;
    ctx.put_flow(PortalFlow::Identified {
        user: user.to_string(),
    })?;
    Ok(Response::see_other("/portal/reset/verify"))
}

/// ② 検証: a link goes out only when the user name and address match an
/// account that mail can reach; the answer is the same page regardless.
fn verify(ctx: &Ctx<'_>) -> Outcome {
    let app = ctx.app;
    let Some(PortalFlow::Identified { user }) = ctx.flow()? else {
        return Ok(expired(ctx, 2));
    };
    let email = normalize_width(ctx.req.field("email"));
    if !address::is_plausible(&email) {
        return Ok(Response::html(page::verify(
            &ctx.frame(None),
            Some(ctx.t().p_email_wrong),
        )));
    }
    let account = app.store.account(SITE, &user)?;
    let matched = account.filter(|a| {
        a.is_enabled()
            && !a.is_provisional()
            && a.email.as_deref().is_some_and(|e| address::same(e, &email))
    });
    // The same guard record, the same token and the same link record on
    // both branches (`recovery::deliver`): without a match the record
    // belongs to no account and can set nothing. While the claim cools
    // down, the link already mailed stays valid.
    let admitted = recovery::admit_link(ctx, &[&user, &address::normalize(&email)])?;
    let token = Token::generate();
    let key = app.digest(Purpose::Link, token.expose())?;
    let lifetime = app.config.portal.link_lifetime_secs;
    let letter = reset_letter(app, ctx.t(), &token);
    let link = Link {
        kind: LinkKind::Reset,
        site: SITE,
        account: matched
            .as_ref()
            .filter(|_| admitted)
            .map_or(String::new(), |a| a.id.clone()),
        generation: matched.as_ref().map_or(0, |a| a.generation),
        state: LinkState::Live,
        lang: ctx.req.lang,
    };
    app.store.put_link(&key, &link, ctx.now + lifetime)?;
    let mailing = Mailing {
        event: "link_issued",
        issues: Issued::ResetLink,
        matched: matched.as_ref(),
        admitted,
        typed: &email,
        from: app.config.portal.mail_from.as_deref(),
        letter: &letter,
        lifetime,
        unmatched: "no matching reachable account; not sent",
    };
    recovery::deliver(ctx, &mailing, || ctx.put_flow(PortalFlow::Sent))?;
    Ok(Response::see_other("/portal/reset/sent"))
}

/// The mail with a reset link of `token`. The link is built from the
/// configured address, never from the request's Host.
pub fn reset_letter(app: &App, t: &Texts, token: &Token) -> templates::Letter {
    let url = format!("{}/passwordreset?token={}", portal_url(app), token.expose());
    templates::portal_reset_link(
        t,
        &url,
        &templates::lifetime(t, app.config.portal.link_lifetime_secs),
        &portal_url(app),
        &app.config.portal.contact,
    )
}

/// The portal's public address, as mails name it.
pub(super) fn portal_url(app: &App) -> String {
    format!("{}/portal", app.config.public_base())
}

fn sent_page(ctx: &Ctx<'_>) -> Outcome {
    if !matches!(ctx.flow()?, Some(PortalFlow::Sent)) {
        return Ok(Response::see_other("/portal/reset"));
    }
    let config = &ctx.app.config;
    // The address the mail comes from, as the mail says it: never empty.
    let sender = config.portal_sender();
    let from = crate::address::envelope(&sender);
    Ok(Response::html(page::sent(
        &ctx.frame(None),
        from,
        &templates::lifetime(ctx.t(), config.portal.link_lifetime_secs),
    )))
}

/// The link named by `token` with its key and account, if it can still set
/// a password: present, not expired, not used, and made under the account's
/// current generation.
fn live_link(ctx: &Ctx<'_>, token: &str) -> Result<Option<(String, Link, Account)>, StoreError> {
    let app = ctx.app;
    let Some(token) = Token::parse(token) else {
        return Ok(None);
    };
    let key = app.digest(Purpose::Link, token.expose())?;
    let Some(link) = app.store.link(&key, ctx.now)? else {
        return Ok(None);
    };
    // A "not me" link is no reset link.
    if link.state != LinkState::Live || link.kind != LinkKind::Reset {
        return Ok(None);
    }
    // A disabled account's link opens nothing, as one that never matched.
    let account = app
        .store
        .account(SITE, &link.account)?
        .filter(|a| a.generation == link.generation && a.is_enabled());
    Ok(account.map(|a| (key, link, a)))
}

fn invalid_link(ctx: &Ctx<'_>) -> Response {
    let t = ctx.t();
    let lifetime = templates::lifetime(t, ctx.app.config.portal.link_lifetime_secs);
    let message = fill(t.p_link_invalid, &[("lifetime", &lifetime)]);
    Response::html_status(404, page::stopped(&ctx.frame(None), 3, &message))
}

fn expired(ctx: &Ctx<'_>, step: usize) -> Response {
    let message = ctx.t().k_stop_expired;
    Response::html(page::stopped(&ctx.frame(None), step, message))
}

/// ③ リセット submitted: the link is used up here, and only here.
fn reset_password(ctx: &Ctx<'_>) -> Outcome {
    let app = ctx.app;
    let token = ctx.req.field("token");
    let Some((key, link, mut account)) = live_link(ctx, token)? else {
        return Ok(invalid_link(ctx));
    };
    let password = ctx.req.field("password");
    let broken = policy::check_portal(
        app.config.portal.password_policy,
        password,
        ctx.req.field("password_confirm"),
    );
    if !broken.is_empty() {
        let problems = password_problems(ctx.t(), &broken);
        return Ok(Response::html(page::reset(
            &ctx.frame(None),
            token,
            &problems,
        )));
    }
    // Used up only now that the password passed the policy, and only by
    // one request: the link turns from live to used by compare-and-swap.
    if !app.store.use_link(&key, ctx.now)? {
        return Ok(invalid_link(ctx));
    }
    if !recovery::change_password(app, &mut account, password)? {
        // Changed meanwhile by another recovery: the link was of the old one.
        return Ok(invalid_link(ctx));
    }
    ctx.put_flow(PortalFlow::Reset)?;
    ctx.audit("link_used", Some(&account.id), "ok")?;
    ctx.audit("password_changed", Some(&account.id), "ok")?;
    let (portal, contact) = (portal_url(app), &app.config.portal.contact);
    let from = app.config.portal.mail_from.as_deref();
    recovery::notify_password_changed(ctx, &account, from, |notice| {
        templates::portal_password_changed(link.lang.texts(), notice, &portal, contact)
    })?;
    app.store.flush()?;
    Ok(Response::see_other("/portal/passwordreset/done"))
}
