//! The kaigo site (`/kaigo`): login with the optional security code, the
//! logged-in menu, and the self-service recovery of the seed as a state
//! machine over `KaigoFlow`: office number + security address → one-time
//! password by mail → new password, security code cleared.

use super::password_problems;
use super::recovery::{self, Entered, Mailing};
use super::{
    attempt_login, check_guarded, check_login, current_session, first_login, normalize_width,
    open_session, save_session, serve_site, text_problem, Checked, Ctx, Outcome, Route, Visit,
};
use crate::address;
use crate::app::App;
use crate::clock;
use crate::http::{Request, Response};
use crate::limit::Action;
use crate::mail::templates;
use crate::metrics::Issued;
use crate::pages::kaigo::{self as page, Frame, PostalForm};
use crate::pages::Problem;
use crate::policy;
use crate::secret::{Otp, Purpose, Token};
use crate::site::{Area, Site};
use crate::store::{
    is_office_number, Account, Flow, KaigoFlow, LiveOtp, PostalRequest, Secret, Session,
    SessionState, StoreError,
};
use crate::text::{fill, Texts};

pub(super) const SITE: Site = Site::Kaigo;

/// What the kaigo pages and flow read of a request.
pub(super) trait Kaigo {
    fn frame(&self) -> Frame<'_>;
    fn flow(&self) -> Result<Option<KaigoFlow>, StoreError>;
    fn put_flow(&self, flow: KaigoFlow, lifetime: u64) -> Result<(), StoreError>;
    fn flow_lifetime(&self) -> u64;
}

impl Kaigo for Ctx<'_> {
    fn frame(&self) -> Frame<'_> {
        Frame {
            clock: clock::time_of_day(self.now, self.app.utc_offset),
            csrf: &self.visit.csrf,
            banner: self.app.banner,
            lang: self.req.lang,
            here: &self.req.path,
        }
    }

    fn flow(&self) -> Result<Option<KaigoFlow>, StoreError> {
        Ok(match self.app.store.flow(&self.visit.key, self.now)? {
            Some(Flow::Kaigo(f)) => Some(f),
            _ => None,
        })
    }

    fn put_flow(&self, flow: KaigoFlow, lifetime: u64) -> Result<(), StoreError> {
        self.app
            .store
            .put_flow(&self.visit.key, &Flow::Kaigo(flow), self.now + lifetime)
    }

    fn flow_lifetime(&self) -> u64 {
        self.app.config.kaigo.flow_lifetime_secs
    }
}

/// Every path of the site: what answers it and the limit it takes.
pub const ROUTES: &[Route] = &[
    Route {
        path: "/kaigo",
        get: Some(|c| html(page::top_menu(&c.frame()))),
        ..Route::NONE
    },
    Route {
        path: "/kaigo/login",
        get: Some(|c| html(page::login(&c.frame(), "", None))),
        post: Some(login),
        post_limit: Some(Action::Login),
        hashes: true,
        ..Route::NONE
    },
    Route {
        path: "/kaigo/login/code",
        get: Some(security_code_login_page),
        post: Some(login_security_code),
        post_limit: Some(Action::Login),
        hashes: true,
        ..Route::NONE
    },
    Route {
        path: "/kaigo/menu",
        get: Some(menu),
        ..Route::NONE
    },
    Route {
        path: "/kaigo/security-code",
        get: Some(security_code_page),
        // It asks for the current password: a password guess like a
        // login, and it costs a hash like one.
        post: Some(set_security_code),
        post_limit: Some(Action::Login),
        hashes: true,
        ..Route::NONE
    },
    Route {
        path: "/kaigo/first/password",
        get: Some(first_login::password_page),
        post: Some(first_login::set_password),
        hashes: true,
        ..Route::NONE
    },
    Route {
        path: "/kaigo/first/email",
        get: Some(first_login::email_page),
        post: Some(first_login::send_code),
        post_limit: Some(Action::Recovery),
        ..Route::NONE
    },
    Route {
        path: "/kaigo/first/code",
        get: Some(first_login::code_page),
        post: Some(first_login::confirm_code),
        post_limit: Some(Action::Otp),
        ..Route::NONE
    },
    Route {
        path: "/kaigo/logout",
        post: Some(logout),
        ..Route::NONE
    },
    Route {
        path: "/kaigo/recovery",
        get: Some(|c| html(page::recovery_choice(&c.frame(), None))),
        post: Some(choose_recovery),
        ..Route::NONE
    },
    Route {
        path: "/kaigo/recovery/auth",
        get: Some(|c| html(page::recovery_auth(&c.frame(), "", "", &[]))),
        post: Some(start_recovery),
        post_limit: Some(Action::Recovery),
        ..Route::NONE
    },
    Route {
        path: "/kaigo/recovery/prefecture",
        get: Some(prefecture_page),
        post: Some(choose_prefecture),
        post_limit: Some(Action::Recovery),
        ..Route::NONE
    },
    Route {
        path: "/kaigo/recovery/otp",
        get: Some(otp_page),
        post: Some(check_otp),
        post_limit: Some(Action::Otp),
        ..Route::NONE
    },
    Route {
        path: "/kaigo/recovery/reset",
        get: Some(reset_page),
        post: Some(reset_password),
        hashes: true,
        ..Route::NONE
    },
    Route {
        path: "/kaigo/recovery/done",
        get: Some(done_page),
        ..Route::NONE
    },
    Route {
        path: "/kaigo/recovery/postal",
        get: Some(|c| html(page::postal_form(&c.frame(), &PostalForm::default(), &[]))),
        post: Some(request_postal),
        post_limit: Some(Action::Postal),
        ..Route::NONE
    },
    Route {
        path: "/kaigo/recovery/postal/done",
        get: Some(|c| html(page::postal_done(&c.frame()))),
        ..Route::NONE
    },
    Route::not_me("/kaigo/not-me"),
];

/// Answers a request under `/kaigo`.
pub fn handle(app: &App, req: &Request, now: u64) -> Outcome {
    serve_site(app, req, now, SITE, ROUTES)
}

fn html(page: maud::Markup) -> Outcome {
    Ok(Response::html(page))
}

fn security_code_login_page(ctx: &Ctx<'_>) -> Outcome {
    Ok(match session(ctx)? {
        Some((s, _)) if matches!(s.state, SessionState::AwaitingSecurityCode { .. }) => {
            Response::html(page::security_code_login(&ctx.frame(), None))
        }
        _ => Response::see_other("/kaigo/login"),
    })
}

fn menu(ctx: &Ctx<'_>) -> Outcome {
    let Some(account) = active_session(ctx)? else {
        return not_logged_in(ctx);
    };
    let t = ctx.t();
    let notice = ctx
        .req
        .query
        .iter()
        .find(|(k, _)| k == "done")
        .and_then(|(_, v)| match v.as_str() {
            "set" => Some(t.k_code_was_set),
            "first" => Some(t.k_first_done),
            "clear" => Some(t.k_code_was_cleared),
            _ => None,
        });
    html(page::menu(
        &ctx.frame(),
        &account.id,
        account.security_code_phc.is_some(),
        notice,
    ))
}

fn security_code_page(ctx: &Ctx<'_>) -> Outcome {
    match active_session(ctx)? {
        Some(account) => Ok(Response::html(page::security_code_settings(
            &ctx.frame(),
            account.security_code_phc.is_some(),
            &[],
        ))),
        None => not_logged_in(ctx),
    }
}

fn logout(ctx: &Ctx<'_>) -> Outcome {
    ctx.app.store.remove_session(&ctx.visit.key)?;
    Ok(Response::see_other("/kaigo/login"))
}

fn choose_recovery(ctx: &Ctx<'_>) -> Outcome {
    Ok(match ctx.req.field("method") {
        "mail" => {
            // A new recovery starts from nothing.
            ctx.app.store.remove_flow(&ctx.visit.key)?;
            Response::see_other("/kaigo/recovery/auth")
        }
        "postal" => Response::see_other("/kaigo/recovery/postal"),
        _ => Response::html(page::recovery_choice(
            &ctx.frame(),
            Some(ctx.t().k_choose_menu),
        )),
    })
}

fn prefecture_page(ctx: &Ctx<'_>) -> Outcome {
    Ok(match ctx.flow()? {
        Some(KaigoFlow::ChoosingPrefecture { prefectures, .. }) => {
            Response::html(page::recovery_prefecture(&ctx.frame(), &prefectures, None))
        }
        other => stopped(ctx, &other, Screen::Prefecture),
    })
}

fn otp_page(ctx: &Ctx<'_>) -> Outcome {
    Ok(match ctx.flow()? {
        Some(KaigoFlow::AwaitingOtp { email, .. }) => Response::html(page::recovery_otp(
            &ctx.frame(),
            &email,
            otp_minutes(ctx),
            None,
        )),
        Some(KaigoFlow::Verified { .. }) => Response::see_other("/kaigo/recovery/reset"),
        other => stopped(ctx, &other, Screen::Otp),
    })
}

fn reset_page(ctx: &Ctx<'_>) -> Outcome {
    Ok(match ctx.flow()? {
        Some(KaigoFlow::Verified { account, .. }) => {
            Response::html(page::recovery_reset(&ctx.frame(), &account, &[]))
        }
        other => stopped(ctx, &other, Screen::Reset),
    })
}

fn done_page(ctx: &Ctx<'_>) -> Outcome {
    Ok(match ctx.flow()? {
        Some(KaigoFlow::Completed { .. }) => Response::html(page::recovery_done(&ctx.frame())),
        _ => Response::see_other("/kaigo/recovery"),
    })
}

// ----- login ---------------------------------------------------------------

fn login(ctx: &Ctx<'_>) -> Outcome {
    let app = ctx.app;
    let user_id = normalize_width(ctx.req.field("user_id")).to_ascii_uppercase();
    let password = ctx.req.field("password");
    let known = is_user_id(&user_id).then_some(user_id.as_str());
    let checked = attempt_login(app, ctx.req, ctx.now, (SITE, known), password)?;
    let Some(account) = checked else {
        return Ok(Response::html(page::login(
            &ctx.frame(),
            &user_id,
            Some(ctx.t().k_login_failed),
        )));
    };
    if account.temporary_until.is_some() || account.must_register_email {
        return first_login::begin(ctx, &account);
    }
    let state = match account.security_code_phc {
        Some(_) => SessionState::AwaitingSecurityCode {
            attempts_left: app.config.session.security_code_attempts,
        },
        None => SessionState::Active,
    };
    let next = match state {
        SessionState::AwaitingSecurityCode { .. } => "/kaigo/login/code",
        _ => "/kaigo/menu",
    };
    ctx.audit(
        "login",
        Some(&account.id),
        if next == "/kaigo/menu" {
            "ok"
        } else {
            "password ok, security code asked"
        },
    )?;
    let fresh = open_session(app, ctx.visit, &account, state, ctx.now)?;
    Ok(fresh.set_on(app, Response::see_other(next)))
}

fn session(ctx: &Ctx<'_>) -> Result<Option<(Session, Account)>, StoreError> {
    current_session(ctx.app, ctx.visit, ctx.now)
}

fn active_session(ctx: &Ctx<'_>) -> Result<Option<Account>, StoreError> {
    Ok(session(ctx)?.and_then(|(s, a)| (s.state == SessionState::Active).then_some(a)))
}

/// Where a browser that is not fully logged in goes instead of a page
/// that needs a login: the step of a first login it is at, or the login.
fn not_logged_in(ctx: &Ctx<'_>) -> Outcome {
    let at = session(ctx)?.and_then(|(s, _)| first_login::page_of(&s.state));
    Ok(Response::see_other(at.unwrap_or("/kaigo/login")))
}

/// The security code after a right password. Wrong codes count per
/// account, across logins and sessions, and lock like wrong passwords; a
/// right password forgives none of them.
fn login_security_code(ctx: &Ctx<'_>) -> Outcome {
    let app = ctx.app;
    let Some((mut s, account)) = session(ctx)? else {
        return Ok(Response::see_other("/kaigo/login"));
    };
    let SessionState::AwaitingSecurityCode { attempts_left } = s.state else {
        return Ok(Response::see_other("/kaigo/menu"));
    };
    let code = ctx.req.field("security_code").trim();
    let right = app
        .hasher
        .verify(account.security_code_phc.as_deref(), code);
    let who = (Secret::SecurityCode, Area::Site(SITE), account.id.as_str());
    match check_guarded(app, ctx.req, ctx.now, who, right, "security_code")? {
        Checked::Right => {
            s.state = SessionState::Active;
            save_session(app, ctx.visit, &s, ctx.now)?;
            ctx.audit("login", Some(&account.id), "ok")?;
            Ok(Response::see_other("/kaigo/menu"))
        }
        Checked::Waiting(secs) => {
            app.store.remove_session(&ctx.visit.key)?;
            let minutes = secs.div_ceil(60).to_string();
            let message = fill(ctx.t().k_code_locked, &[("minutes", &minutes)]);
            Ok(Response::html(page::login(
                &ctx.frame(),
                "",
                Some(&message),
            )))
        }
        Checked::Wrong if attempts_left <= 1 => {
            app.store.remove_session(&ctx.visit.key)?;
            let message = ctx.t().k_code_spent;
            Ok(Response::html(page::login(&ctx.frame(), "", Some(message))))
        }
        Checked::Wrong => {
            s.state = SessionState::AwaitingSecurityCode {
                attempts_left: attempts_left - 1,
            };
            save_session(app, ctx.visit, &s, ctx.now)?;
            Ok(Response::html(page::security_code_login(
                &ctx.frame(),
                Some(ctx.t().k_code_wrong),
            )))
        }
    }
}

/// Sets or clears the security code. It asks for the current password:
/// a wrong one counts as a failed login of the account (a stolen session
/// is no password oracle), and the form is rate limited as logins are.
fn set_security_code(ctx: &Ctx<'_>) -> Outcome {
    let app = ctx.app;
    let Some(account) = active_session(ctx)? else {
        return Ok(Response::see_other("/kaigo/login"));
    };
    let action = ctx.req.field("action");
    let code = ctx.req.field("code");
    let t = ctx.t();
    let mut problems = Vec::new();
    let id = account.id.clone();
    let checked = check_login(
        app,
        ctx.req,
        ctx.now,
        (SITE, &id),
        Some(account.clone()),
        ctx.req.field("password"),
        "password_check",
    )?;
    if checked.is_none() {
        problems.push(Problem::of("password", t.k_current_password_wrong));
    }
    if action == "set" {
        if !(4..=16).contains(&code.len()) || !code.bytes().all(|b| b.is_ascii_alphanumeric()) {
            problems.push(Problem::of("code", t.k_code_rule));
        }
        if code != ctx.req.field("code_confirm") {
            problems.push(Problem::of("code2", t.k_code_mismatch));
        }
    } else if action != "clear" || account.security_code_phc.is_none() {
        problems.push(Problem::form(t.k_choose_action));
    }
    let Some(account) = checked.filter(|_| problems.is_empty()) else {
        let has = account.security_code_phc.is_some();
        return Ok(Response::html(page::security_code_settings(
            &ctx.frame(),
            has,
            &problems,
        )));
    };
    let code_phc = (action == "set").then(|| app.hasher.hash(code));
    let generation = account.generation;
    let changed = app.store.update_account(SITE, &account.id, |a| {
        let same = a.generation == generation;
        if same {
            a.security_code_phc = code_phc.clone();
        }
        same
    })?;
    // The password changed meanwhile, and with it every session.
    if changed != Some(true) {
        return Ok(Response::see_other("/kaigo/login"));
    }
    ctx.audit("security_code_changed", Some(&account.id), action)?;
    Ok(Response::see_other(&format!("/kaigo/menu?done={action}")))
}

/// `KJ` + 2-digit prefecture + 10-digit office number.
fn is_user_id(s: &str) -> bool {
    s.len() == 14 && s.starts_with("KJ") && s[2..].bytes().all(|b| b.is_ascii_digit())
}

// ----- recovery --------------------------------------------------------------

/// A new one-time password, and the record its claim keeps of it (its
/// digest, expiry and the entries it allows).
pub(super) fn fresh_otp(ctx: &Ctx<'_>) -> Result<(Otp, LiveOtp), StoreError> {
    let app = ctx.app;
    let otp = Otp::generate();
    let live = LiveOtp {
        id: Token::generate().expose()[..16].to_string(),
        digest: app.digest(Purpose::Otp, otp.expose())?,
        expires: ctx.now + app.config.kaigo.otp_lifetime_secs,
        attempts_left: app.config.kaigo.otp_attempts,
    };
    Ok((otp, live))
}

pub(super) fn otp_minutes(ctx: &Ctx<'_>) -> u64 {
    ctx.app.config.kaigo.otp_lifetime_secs.div_ceil(60)
}

// ----- the flow's transitions, pure -------------------------------------------

/// The recovery's screens, as the step bar numbers them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Screen {
    Prefecture = 2,
    Otp = 3,
    Reset = 4,
}

/// Why a flow cannot take the step asked of it; each has its page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    /// No flow: it expired, or never began.
    Expired,
    /// Wrong codes killed it.
    CodeDead,
    /// The password was set already.
    Completed,
    /// The code was used already (the flow is past it).
    CodeUsed,
    /// A flow at another step.
    OutOfOrder,
}

impl Stop {
    /// What stops `flow`, which does not fit the step asked.
    fn of(flow: &Option<KaigoFlow>) -> Stop {
        match flow {
            None => Stop::Expired,
            Some(KaigoFlow::Failed) => Stop::CodeDead,
            Some(KaigoFlow::Completed { .. }) => Stop::Completed,
            Some(KaigoFlow::Verified { .. }) => Stop::CodeUsed,
            Some(_) => Stop::OutOfOrder,
        }
    }

    /// The page's title and message.
    fn text(self, t: &Texts) -> (&'static str, &'static str) {
        match self {
            Stop::Expired => (t.k_stop_expired_title, t.k_stop_expired),
            Stop::CodeDead => (t.k_step_otp, t.k_stop_code_dead),
            Stop::Completed => (t.k_done_title, t.k_stop_completed),
            Stop::CodeUsed => (t.k_step_otp, t.k_stop_code_used),
            Stop::OutOfOrder => (t.c_403_title, t.k_stop_out_of_order),
        }
    }
}

/// What entering a code leads the flow to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AfterCode<A> {
    /// On to the new password, for this account.
    Verified(A),
    /// Wrong; this many entries are left.
    Retry(u32),
    /// The flow fails, and says why.
    Dead(CodeDeath),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CodeDeath {
    Expired,
    TooManyWrong,
    /// Revoked, used, killed in another flow, or right for an account whose
    /// password changed since it was sent.
    Gone,
}

impl CodeDeath {
    /// The audit trail's note.
    fn note(self) -> &'static str {
        match self {
            CodeDeath::Expired => "expired",
            CodeDeath::TooManyWrong => "wrong code; code dead",
            CodeDeath::Gone => "code revoked or used",
        }
    }

    fn message(self, t: &Texts) -> &'static str {
        match self {
            CodeDeath::Expired => t.k_code_expired,
            CodeDeath::TooManyWrong => t.k_code_too_many,
            CodeDeath::Gone => t.k_stop_code_dead,
        }
    }
}

/// The transition of a code entry: what the claim's record said of the
/// code (`recovery::enter_otp`), and the account it was sent for if it is
/// still as it was then.
fn after_code<A>(entered: Entered, unchanged: Option<A>) -> AfterCode<A> {
    match (entered, unchanged) {
        (Entered::Right, Some(account)) => AfterCode::Verified(account),
        (Entered::Right | Entered::Gone, _) => AfterCode::Dead(CodeDeath::Gone),
        (Entered::Expired, _) => AfterCode::Dead(CodeDeath::Expired),
        (Entered::Wrong(0), _) => AfterCode::Dead(CodeDeath::TooManyWrong),
        (Entered::Wrong(left), _) => AfterCode::Retry(left),
    }
}

/// The page for a flow that cannot take the step of `screen`.
fn stopped(ctx: &Ctx<'_>, flow: &Option<KaigoFlow>, screen: Screen) -> Response {
    let stop = Stop::of(flow);
    let (title, message) = stop.text(ctx.t());
    // A recovery already done is no error: a plain page on to the login.
    if stop == Stop::Completed {
        return Response::html(page::recovery_already_done(&ctx.frame(), title, message));
    }
    let page = page::recovery_stopped(&ctx.frame(), screen as usize, title, message);
    Response::html(page)
}

/// Step 2: office number and security address.
fn start_recovery(ctx: &Ctx<'_>) -> Outcome {
    let office = normalize_width(ctx.req.field("office"));
    let email = normalize_width(ctx.req.field("email"));
    let t = ctx.t();
    let mut problems: Vec<Problem> = office_problem(t, &office)
        .map(|text| Problem::of("office", text))
        .into_iter()
        .collect();
    if !address::is_plausible(&email) {
        problems.push(Problem::of("email", t.k_email_wrong));
    }
    if !problems.is_empty() {
        return Ok(Response::html(page::recovery_auth(
            &ctx.frame(),
            &office,
            &email,
            &problems,
        )));
    }
    ctx.audit("recovery_started", None, &format!("office {office}"))?;
    let accounts = ctx.app.store.kaigo_accounts_of_office(&office)?;
    let mut prefectures: Vec<String> = accounts
        .iter()
        .filter_map(|a| a.office.as_ref().map(|o| o.prefecture.clone()))
        .collect();
    prefectures.dedup();
    if prefectures.len() > 1 {
        // As in the seed, the office number alone decides whether this step
        // is shown; whether the address matched is never revealed.
        ctx.put_flow(
            KaigoFlow::ChoosingPrefecture {
                office,
                email,
                prefectures,
            },
            ctx.flow_lifetime(),
        )?;
        return Ok(Response::see_other("/kaigo/recovery/prefecture"));
    }
    let account = accounts.into_iter().next();
    let prefecture = account
        .as_ref()
        .and_then(|a| a.office.as_ref())
        .map_or(String::new(), |o| o.prefecture.clone());
    issue_otp(ctx, &office, &prefecture, &email, account)
}

/// Step 3: the billing prefecture, for offices that bill several.
fn choose_prefecture(ctx: &Ctx<'_>) -> Outcome {
    let Some(KaigoFlow::ChoosingPrefecture {
        office,
        email,
        prefectures,
    }) = ctx.flow()?
    else {
        return Ok(stopped(ctx, &ctx.flow()?, Screen::Prefecture));
    };
    let chosen = ctx.req.field("prefecture");
    if !prefectures.iter().any(|p| p == chosen) {
        let page = page::recovery_prefecture(
            &ctx.frame(),
            &prefectures,
            Some(ctx.t().k_choose_prefecture),
        );
        return Ok(Response::html(page));
    }
    let account = ctx
        .app
        .store
        .kaigo_accounts_of_office(&office)?
        .into_iter()
        .find(|a| a.office.as_ref().is_some_and(|o| o.prefecture == chosen));
    issue_otp(ctx, &office, chosen, &email, account)
}

/// Step 4: a code for the account if the address is its security address;
/// otherwise the same page and no mail, and no code can ever succeed. Both
/// branches keep the same guard record under the claim (office, prefecture,
/// address) and do the same work (`recovery::deliver`); a code not sent
/// leaves the flow waiting for the one already mailed.
fn issue_otp(
    ctx: &Ctx<'_>,
    office: &str,
    prefecture: &str,
    email: &str,
    candidate: Option<Account>,
) -> Outcome {
    let app = ctx.app;
    let lifetime = app.config.kaigo.otp_lifetime_secs;
    // A disabled account is one that does not match: same page, no mail.
    let matched = candidate
        .filter(|a| a.is_enabled() && a.email.as_deref().is_some_and(|e| address::same(e, email)));
    let claim = ctx.claim_key(&[office, prefecture, &address::normalize(email)])?;
    let (otp, fresh) = fresh_otp(ctx)?;
    let limits = &app.config.guard;
    let (waiting_for, sent) =
        ctx.update_claim(&claim, |g| recovery::issue_otp(g, &fresh, ctx.now, limits))?;
    let letter = templates::kaigo_otp(
        ctx.t(),
        otp.expose(),
        lifetime.div_ceil(60),
        &app.config.kaigo.helpdesk,
    );
    let mailing = Mailing {
        event: "otp_issued",
        issues: Issued::RecoveryCode,
        matched: matched.as_ref(),
        admitted: sent,
        typed: email,
        from: None,
        letter: &letter,
        lifetime,
        unmatched: "no matching account; not sent",
    };
    let flow = KaigoFlow::AwaitingOtp {
        email: email.to_string(),
        generation: matched.as_ref().map_or(0, |a| a.generation),
        account: matched.as_ref().map(|a| a.id.clone()),
        claim,
        otp_id: waiting_for,
        lang: ctx.req.lang,
    };
    recovery::deliver(ctx, &mailing, || {
        ctx.put_flow(flow, lifetime.max(ctx.flow_lifetime()))
    })?;
    Ok(Response::see_other("/kaigo/recovery/otp"))
}

/// Step 6: the one-time password. Wrong entries count against the code,
/// in whichever flow they are made; the code is taken out of its claim's
/// record atomically, so two requests with it cannot both succeed.
fn check_otp(ctx: &Ctx<'_>) -> Outcome {
    let app = ctx.app;
    let flow = ctx.flow()?;
    let Some(KaigoFlow::AwaitingOtp {
        email,
        account,
        generation,
        claim,
        otp_id,
        lang,
    }) = flow
    else {
        return Ok(stopped(ctx, &flow, Screen::Otp));
    };
    let f = ctx.frame();
    let minutes = otp_minutes(ctx);
    let entered = normalize_width(ctx.req.field("otp"));
    if entered.len() != 6 || !entered.bytes().all(|b| b.is_ascii_digit()) {
        // Not a guess at the code: no attempt is spent.
        let message = ctx.t().k_otp_format;
        return Ok(Response::html(page::recovery_otp(
            &f,
            &email,
            minutes,
            Some(message),
        )));
    }
    let digest = app.digest(Purpose::Otp, &entered)?;
    let result = ctx.update_claim(&claim, |g| {
        recovery::enter_otp(g, &otp_id, &digest, ctx.now)
    })?;
    // The account must still be the one the code was sent for: a password
    // change since then revokes the code.
    let current = match (&result, &account) {
        (Entered::Right, Some(id)) => app
            .store
            .account(SITE, id)?
            .filter(|a| a.generation == generation),
        _ => None,
    };
    match after_code(result, current) {
        AfterCode::Verified(account) => {
            // The right to set a password moves to a new cookie, as a login
            // does: a cookie planted in the browser before the code was
            // entered is worth nothing afterwards.
            let fresh = Visit::new(app, Area::Site(SITE))?;
            let verified = KaigoFlow::Verified {
                account: account.id.clone(),
                generation,
                lang,
            };
            let expires = ctx.now + ctx.flow_lifetime();
            app.store
                .put_flow(&fresh.key, &Flow::Kaigo(verified), expires)?;
            app.store.remove_flow(&ctx.visit.key)?;
            ctx.audit("otp_accepted", Some(&account.id), "ok")?;
            Ok(fresh.set_on(app, Response::see_other("/kaigo/recovery/reset")))
        }
        AfterCode::Retry(left) => {
            let note = format!("wrong code; {left} left");
            ctx.audit("otp_failed", account.as_deref(), &note)?;
            let message = fill(ctx.t().k_otp_wrong, &[("left", &left.to_string())]);
            Ok(Response::html(page::recovery_otp(
                &f,
                &email,
                minutes,
                Some(&message),
            )))
        }
        AfterCode::Dead(death) => {
            ctx.audit("otp_failed", account.as_deref(), death.note())?;
            ctx.put_flow(KaigoFlow::Failed, ctx.flow_lifetime())?;
            let t = ctx.t();
            let message = death.message(t);
            let page = page::recovery_stopped(&f, Screen::Otp as usize, t.k_step_otp, message);
            Ok(Response::html(page))
        }
    }
}

/// Step 7: the new password. Changing it clears the security code, raises
/// the account's generation (every session and code of it dies) and is on
/// disk before the success page is sent.
fn reset_password(ctx: &Ctx<'_>) -> Outcome {
    let app = ctx.app;
    let flow = ctx.flow()?;
    let Some(KaigoFlow::Verified {
        account: id,
        generation,
        lang,
    }) = flow
    else {
        return Ok(stopped(ctx, &flow, Screen::Reset));
    };
    let Some(mut account) = app
        .store
        .account(SITE, &id)?
        .filter(|a| a.generation == generation)
    else {
        return Ok(stopped(ctx, &None, Screen::Reset));
    };
    let password = ctx.req.field("password");
    let broken = policy::check_kaigo(
        app.config.kaigo.password_policy,
        &account.id,
        password,
        ctx.req.field("password_confirm"),
    );
    if !broken.is_empty() {
        let problems = password_problems(ctx.t(), &broken);
        return Ok(Response::html(page::recovery_reset(
            &ctx.frame(),
            &account.id,
            &problems,
        )));
    }
    let had_code = account.security_code_phc.is_some();
    if !recovery::change_password(app, &mut account, password)? {
        // Changed meanwhile by another recovery: this one is spent.
        return Ok(stopped(ctx, &None, Screen::Reset));
    }
    ctx.put_flow(
        KaigoFlow::Completed {
            account: account.id.clone(),
        },
        ctx.flow_lifetime(),
    )?;
    ctx.audit(
        "password_changed",
        Some(&account.id),
        "ok; security code cleared",
    )?;
    let helpdesk = &app.config.kaigo.helpdesk;
    recovery::notify_password_changed(ctx, &account, None, |notice| {
        templates::kaigo_password_changed(lang.texts(), notice, had_code, helpdesk)
    })?;
    app.store.flush()?;
    Ok(Response::see_other("/kaigo/recovery/done"))
}

/// The postal request (書類郵送): stored for an operator, one per office
/// and billing prefecture (a second replaces the first), and rate limited
/// per client.
fn request_postal(ctx: &Ctx<'_>) -> Outcome {
    let req = ctx.req;
    let office = normalize_width(req.field("office"));
    let prefecture = req.field("prefecture");
    let office_name = req.field("office_name").trim();
    let contact = req.field("contact").trim();
    let phone = normalize_width(req.field("phone"));
    let t = ctx.t();
    let problems: Vec<Problem> = [
        ("office", office_problem(t, &office)),
        ("prefecture", prefecture_problem(t, prefecture)),
        (
            "office_name",
            text_problem(t, t.k_office_name, office_name, 100),
        ),
        ("contact", text_problem(t, t.k_contact, contact, 50)),
        ("phone", phone_problem(t, &phone)),
    ]
    .into_iter()
    .filter_map(|(field, text)| Some(Problem::of(field, text?)))
    .collect();
    if !problems.is_empty() {
        let form = PostalForm {
            office: &office,
            prefecture,
            office_name,
            contact,
            phone: &phone,
        };
        return Ok(Response::html(page::postal_form(
            &ctx.frame(),
            &form,
            &problems,
        )));
    }
    // The same page whether or not the office has an account: the request
    // is kept either way (a new office asks for its first ID this way).
    let replaced = ctx.app.store.put_postal_request(PostalRequest {
        id: 0,
        office: office.clone(),
        prefecture: prefecture.to_string(),
        office_name: office_name.to_string(),
        contact: contact.to_string(),
        phone: phone.clone(),
        client: req.client.to_string(),
        created: ctx.now,
    })?;
    let note = if replaced {
        format!("office {office}, prefecture {prefecture}; replaced the request waiting for it")
    } else {
        format!("office {office}, prefecture {prefecture}")
    };
    ctx.audit("postal_requested", None, &note)?;
    ctx.app.store.flush()?;
    Ok(Response::see_other("/kaigo/recovery/postal/done"))
}

/// What is wrong with a typed office number, if anything: said as it is
/// (a number of the right form whose first two digits name no prefecture
/// is not told to be ten digits).
pub(super) fn office_problem(t: &Texts, office: &str) -> Option<String> {
    let ten_digits = office.len() == 10 && office.bytes().all(|b| b.is_ascii_digit());
    let message = if office.is_empty() {
        t.k_office_empty
    } else if !ten_digits {
        t.k_office_digits
    } else if !is_office_number(office) {
        t.k_office_prefecture
    } else {
        return None;
    };
    Some(message.into())
}

fn prefecture_problem(t: &Texts, code: &str) -> Option<String> {
    let known = code.len() == 2 && matches!(code.parse::<u8>(), Ok(1..=47));
    (!known).then(|| t.k_choose_prefecture.into())
}

fn phone_problem(t: &Texts, phone: &str) -> Option<String> {
    let digits = phone.bytes().filter(u8::is_ascii_digit).count();
    if phone.is_empty() {
        Some(t.k_phone_empty.into())
    } else if !(10..=11).contains(&digits)
        || !phone.bytes().all(|b| b.is_ascii_digit() || b == b'-')
    {
        Some(t.k_phone_wrong.into())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::Lang;

    fn awaiting() -> KaigoFlow {
        KaigoFlow::AwaitingOtp {
            email: "a@example.jp".into(),
            account: Some("KJ131311111111".into()),
            generation: 0,
            claim: "c".into(),
            otp_id: "o".into(),
            lang: Lang::Ja,
        }
    }

    #[test]
    fn a_code_entry_leads_to_one_next_state() {
        assert_eq!(
            after_code(Entered::Right, Some(())),
            AfterCode::Verified(())
        );
        // Right, but the password changed since the code was sent.
        assert_eq!(
            after_code(Entered::Right, None::<()>),
            AfterCode::Dead(CodeDeath::Gone)
        );
        assert_eq!(
            after_code(Entered::Gone, Some(())),
            AfterCode::Dead(CodeDeath::Gone)
        );
        assert_eq!(
            after_code(Entered::Expired, Some(())),
            AfterCode::Dead(CodeDeath::Expired)
        );
        assert_eq!(after_code(Entered::Wrong(2), Some(())), AfterCode::Retry(2));
        assert_eq!(
            after_code(Entered::Wrong(0), Some(())),
            AfterCode::Dead(CodeDeath::TooManyWrong)
        );
    }

    #[test]
    fn a_flow_at_the_wrong_step_says_why() {
        assert_eq!(Stop::of(&None), Stop::Expired);
        assert_eq!(Stop::of(&Some(KaigoFlow::Failed)), Stop::CodeDead);
        let done = KaigoFlow::Completed {
            account: "KJ131311111111".into(),
        };
        assert_eq!(Stop::of(&Some(done)), Stop::Completed);
        let verified = KaigoFlow::Verified {
            account: "KJ131311111111".into(),
            generation: 0,
            lang: Lang::Ja,
        };
        assert_eq!(Stop::of(&Some(verified)), Stop::CodeUsed);
        assert_eq!(Stop::of(&Some(awaiting())), Stop::OutOfOrder);
        assert_eq!(Screen::Otp as usize, 3);
    }

    #[test]
    fn office_numbers_and_user_ids() {
        assert!(is_office_number("1311111111"));
        assert!(is_office_number("0111111111"));
        assert!(!is_office_number("4811111111"));
        assert!(!is_office_number("131111111"));
        assert!(!is_office_number("13111111１1"));
        assert!(is_user_id("KJ131311111111"));
        assert!(!is_user_id("KJ13131111111"));
        assert!(!is_user_id("XX131311111111"));
    }
}
