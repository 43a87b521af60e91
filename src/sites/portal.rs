//! The portal site (`/portal`): login, and the self-service recovery of the
//! seed as a state machine over `PortalFlow` and `Link`: user name + CAPTCHA
//! (① 特定) → registered address (② 検証) → a mailed link → new password
//! (③ リセット).

use super::{
    audit, change_password, check_login, claim_key, current_session, normalize_width, not_me,
    not_me_link, open_session, serve_site, Outcome, Visit,
};
use crate::app::App;
use crate::captcha;
use crate::clock;
use crate::http::{Method, Request, Response};
use crate::mail::templates;
use crate::pages::portal::{self as page, Frame};
use crate::policy;
use crate::secret::{constant_time_eq, Purpose, Token};
use crate::store::{
    Account, Flow, Link, LinkKind, LinkState, PortalFlow, SessionState, Site, StoreError, DAY,
};

const SITE: Site = Site::Portal;

/// Every path of the site with the methods it answers.
const ROUTES: &[(&str, &str)] = &[
    ("/portal", "GET, HEAD"),
    ("/portal/login", "GET, HEAD, POST"),
    ("/portal/home", "GET, HEAD"),
    ("/portal/logout", "POST"),
    ("/portal/reset", "GET, HEAD, POST"),
    ("/portal/reset/verify", "GET, HEAD, POST"),
    ("/portal/reset/sent", "GET, HEAD"),
    ("/portal/passwordreset", "GET, HEAD, POST"),
    ("/portal/passwordreset/done", "GET, HEAD"),
    ("/portal/not-me", "GET, HEAD, POST"),
];

struct Ctx<'a> {
    app: &'a App,
    req: &'a Request,
    now: u64,
    visit: &'a Visit,
}

impl Ctx<'_> {
    fn frame<'f>(&'f self, user: Option<&'f str>) -> Frame<'f> {
        Frame {
            csrf: &self.visit.csrf,
            banner: self.app.banner.as_deref(),
            user,
        }
    }

    fn audit(&self, event: &str, account: Option<&str>, outcome: &str) -> Result<(), StoreError> {
        audit(self.app, self.req, self.now, SITE, event, account, outcome)
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

/// Answers a request under `/portal`.
pub fn handle(app: &App, req: &Request, now: u64) -> Outcome {
    serve_site(app, req, now, SITE, ROUTES, |visit, path, method| {
        let ctx = Ctx {
            app,
            req,
            now,
            visit,
        };
        match (method, path) {
            (_, "/portal/not-me") => not_me(app, req, now, SITE, visit, method),
            (Method::Post, _) => post(&ctx, path),
            _ => get(&ctx, path),
        }
    })
}

fn get(ctx: &Ctx<'_>, path: &str) -> Outcome {
    Ok(match path {
        "/portal" => match ctx.logged_in()? {
            Some(a) => Response::html(page::top(&ctx.frame(Some(&a.id)))),
            None => Response::html(page::top(&ctx.frame(None))),
        },
        "/portal/login" => Response::html(page::login(&ctx.frame(None), "", None)),
        "/portal/home" => match ctx.logged_in()? {
            Some(a) => Response::html(page::home(&ctx.frame(Some(&a.id)), &a.id, a.coordinator)),
            None => Response::see_other("/portal/login"),
        },
        "/portal/reset" => identify_page(ctx, "", None)?,
        "/portal/reset/verify" => match ctx.flow()? {
            Some(PortalFlow::Identified { .. }) => {
                Response::html(page::verify(&ctx.frame(None), None))
            }
            _ => expired(ctx, 2),
        },
        "/portal/reset/sent" => match ctx.flow()? {
            Some(PortalFlow::Sent) => sent_page(ctx),
            _ => Response::see_other("/portal/reset"),
        },
        "/portal/passwordreset" => {
            let token = ctx
                .req
                .query
                .iter()
                .find(|(k, _)| k == "token")
                .map_or("", |(_, v)| v.as_str());
            // Opening the link only shows the form: a mail scanner that
            // fetches it uses nothing up.
            match live_link(ctx, token)? {
                Some(_) => Response::html(page::reset(&ctx.frame(None), token, &[])),
                None => invalid_link(ctx),
            }
        }
        "/portal/passwordreset/done" => match ctx.flow()? {
            Some(PortalFlow::Reset) => Response::html(page::reset_done(&ctx.frame(None))),
            _ => Response::see_other("/portal/login"),
        },
        _ => Response::error(404),
    })
}

fn post(ctx: &Ctx<'_>, path: &str) -> Outcome {
    match path {
        "/portal/login" => login(ctx),
        "/portal/logout" => {
            ctx.app.store.remove_session(&ctx.visit.key)?;
            Ok(Response::see_other("/portal"))
        }
        "/portal/reset" => identify(ctx),
        "/portal/reset/verify" => verify(ctx),
        "/portal/passwordreset" => reset_password(ctx),
        _ => Ok(Response::error(404)),
    }
}

// ----- login ---------------------------------------------------------------

fn login(ctx: &Ctx<'_>) -> Outcome {
    let app = ctx.app;
    let user = ctx.req.field("user").trim();
    let plausible = !user.is_empty() && user.chars().count() <= 100;
    let account = if plausible {
        app.store.account(SITE, user)?
    } else {
        None
    };
    let password = ctx.req.field("password");
    let checked = if plausible {
        check_login(
            app,
            ctx.req,
            ctx.now,
            (SITE, user),
            account,
            password,
            "login",
        )?
    } else {
        app.hasher.verify_login(None, password);
        ctx.audit("login", None, "failed")?;
        None
    };
    let Some(account) = checked else {
        let message = "ユーザー名またはパスワードが正しくありません。";
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
/// image goes out inline with this page and nowhere else.
fn identify_page(ctx: &Ctx<'_>, user: &str, error: Option<&str>) -> Outcome {
    let app = ctx.app;
    let answer = captcha::answer();
    let id = Token::generate();
    let expires = ctx.now + app.config.portal.captcha_lifetime_secs;
    app.challenges.put(
        &app.digest(Purpose::CaptchaId, id.expose())?,
        &app.digest(Purpose::CaptchaAnswer, &answer)?,
        expires,
        ctx.now,
    );
    app.remember_dev_captcha(id.expose(), &answer, expires, ctx.now);
    let image = captcha::data_uri(&answer);
    Ok(Response::html(page::identify(
        &ctx.frame(None),
        user,
        id.expose(),
        &image,
        error,
    )))
}

/// Whether the CAPTCHA of the form was answered right. Either way it is
/// used up: each challenge answers once.
fn captcha_solved(ctx: &Ctx<'_>) -> Result<bool, StoreError> {
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
    let typed = ctx.req.field("captcha").trim().to_ascii_lowercase();
    Ok(constant_time_eq(
        &app.digest(Purpose::CaptchaAnswer, &typed)?,
        &answer_digest,
    ))
}

/// ① 特定 submitted: on to ② whatever the user name, if the CAPTCHA is right.
fn identify(ctx: &Ctx<'_>) -> Outcome {
    let user = ctx.req.field("user").trim();
    let solved = captcha_solved(ctx)?;
    if ctx.req.field("action") == "refresh" {
        return identify_page(ctx, user, None);
    }
    if !solved {
        ctx.audit("captcha", None, "failed")?;
        return identify_page(
            ctx,
            user,
            Some("表示されている文字が正しくありません。新しく表示された文字を入力してください。"),
        );
    }
    if user.is_empty() || user.chars().count() > 100 || user.chars().any(char::is_control) {
        return identify_page(ctx, user, Some("ユーザー名を入力してください。"));
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
    if email.len() > 254
        || email.contains(|c: char| c.is_whitespace() || c.is_control())
        || !email.contains('@')
    {
        return Ok(Response::html(page::verify(
            &ctx.frame(None),
            Some("メールアドレスを正しく入力してください。"),
        )));
    }
    let now = ctx.now;
    let limits = &app.config.guard;
    let account = app.store.account(SITE, &user)?;
    let matched = account.filter(|a| {
        !a.is_provisional()
            && a.email
                .as_deref()
                .is_some_and(|e| e.eq_ignore_ascii_case(&email))
    });
    // The same guard record and the same token on both branches, so that
    // both follow the same limits and cost the same: `links_per_day` a day,
    // none within `send_cooldown_secs` of the last (the link already
    // mailed stays valid).
    let claim = claim_key(app, SITE, &[&user, &email.to_ascii_lowercase()])?;
    let allowed = app
        .store
        .update_claim_guard(&claim, now, limits.window_secs, |g| {
            g.issued.retain(|t| t + limits.window_secs > now);
            let cooling = g
                .issued
                .last()
                .is_some_and(|t| now < t + limits.send_cooldown_secs);
            if cooling || g.issued.len() >= limits.links_per_day {
                return false;
            }
            g.issued.push(now);
            true
        })?;
    let token = Token::generate();
    let key = app.digest(Purpose::Link, token.expose())?;
    let lifetime = app.config.portal.link_lifetime_secs;
    // Built from the configured address, never from the request's Host.
    let url = format!("{}/passwordreset?token={}", portal_url(app), token.expose());
    let letter = templates::portal_reset_link(
        &url,
        &templates::lifetime_ja(lifetime),
        &portal_url(app),
        &app.config.portal.contact,
    );
    let link = Link {
        kind: LinkKind::Reset,
        site: SITE,
        account: matched
            .as_ref()
            .filter(|_| allowed)
            .map_or(String::new(), |a| a.id.clone()),
        generation: matched.as_ref().map_or(0, |a| a.generation),
        state: LinkState::Live,
    };
    // Both branches write a link record and queue a letter; without a
    // match the record belongs to no account (it can set nothing) and the
    // letter is a decoy that is never sent.
    app.store.put_link(&key, &link, now + lifetime)?;
    match (&matched, allowed) {
        (Some(account), true) => {
            let to = account.email.as_deref().unwrap_or_default();
            send_mail(ctx, to, &letter, lifetime)?;
            ctx.audit("link_issued", Some(&account.id), "sent")?;
        }
        (Some(account), false) => {
            app.outbox
                .send_decoy(&app.store, SITE, &email, &letter, now..now + lifetime)?;
            ctx.audit(
                "link_issued",
                Some(&account.id),
                "send suppressed: cooldown or daily limit",
            )?;
        }
        (None, _) => {
            app.outbox
                .send_decoy(&app.store, SITE, &email, &letter, now..now + lifetime)?;
            ctx.audit(
                "link_issued",
                None,
                "no matching reachable account; not sent",
            )?;
        }
    }
    ctx.put_flow(PortalFlow::Sent)?;
    app.store.flush()?;
    Ok(Response::see_other("/portal/reset/sent"))
}

/// The portal's public address, as mails name it.
fn portal_url(app: &App) -> String {
    format!("{}/portal", app.config.public_base())
}

/// Queues a portal mail, from the portal's sender, useful for `lifetime`.
fn send_mail(
    ctx: &Ctx<'_>,
    to: &str,
    letter: &templates::Letter,
    lifetime: u64,
) -> Result<u64, StoreError> {
    let app = ctx.app;
    let from = app.config.portal.mail_from.as_deref();
    app.outbox.send(
        &app.store,
        SITE,
        from,
        to,
        letter,
        ctx.now..ctx.now + lifetime,
    )
}

fn sent_page(ctx: &Ctx<'_>) -> Response {
    let config = &ctx.app.config;
    let from = config
        .portal
        .mail_from
        .as_deref()
        .or(config.mail.from.as_deref())
        .unwrap_or("");
    let from = templates::envelope_address(from);
    Response::html(page::sent(
        &ctx.frame(None),
        from,
        &templates::lifetime_ja(config.portal.link_lifetime_secs),
    ))
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
    let account = app
        .store
        .account(SITE, &link.account)?
        .filter(|a| a.generation == link.generation);
    Ok(account.map(|a| (key, link, a)))
}

fn invalid_link(ctx: &Ctx<'_>) -> Response {
    let lifetime = templates::lifetime_ja(ctx.app.config.portal.link_lifetime_secs);
    let message = format!("このURLは無効です。有効期限（{lifetime}）が過ぎたか、既に使用されたURLです。お手数ですが、もう一度パスワードの再設定を行ってください。");
    Response::html_status(404, page::stopped(&ctx.frame(None), 3, &message))
}

fn expired(ctx: &Ctx<'_>, step: usize) -> Response {
    let message = "画面の有効期限が切れました。お手数ですが、最初からやり直してください。";
    Response::html(page::stopped(&ctx.frame(None), step, message))
}

/// ③ リセット submitted: the link is used up here, and only here.
fn reset_password(ctx: &Ctx<'_>) -> Outcome {
    let app = ctx.app;
    let token = ctx.req.field("token");
    let Some((key, _, mut account)) = live_link(ctx, token)? else {
        return Ok(invalid_link(ctx));
    };
    let password = ctx.req.field("password");
    let broken = policy::check_portal(
        app.config.portal.password_policy,
        password,
        ctx.req.field("password_confirm"),
    );
    if !broken.is_empty() {
        let problems: Vec<String> = broken.iter().map(|v| v.message()).collect();
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
    change_password(app, &mut account, password)?;
    ctx.put_flow(PortalFlow::Reset)?;
    ctx.audit("link_used", Some(&account.id), "ok")?;
    ctx.audit("password_changed", Some(&account.id), "ok")?;
    if let Some(to) = account
        .email
        .as_deref()
        .filter(|_| !account.is_provisional())
    {
        let url = not_me_link(app, &account, ctx.now)?;
        let when = clock::date_time(ctx.now, app.utc_offset);
        let notice = templates::Notice {
            account: &account.id,
            when: &when,
            client: &ctx.req.client.to_string(),
            not_me_url: &url,
        };
        let letter = templates::portal_password_changed(
            &notice,
            &portal_url(app),
            &app.config.portal.contact,
        );
        // The notice is useful for a day; after that it is stale news.
        send_mail(ctx, to, &letter, DAY)?;
    }
    app.store.flush()?;
    Ok(Response::see_other("/portal/passwordreset/done"))
}
