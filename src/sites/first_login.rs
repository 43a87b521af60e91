//! kaigo's first login with the temporary password of a postal letter:
//! a new password first, then, for an account without one, a security
//! address confirmed by a code mailed to it; nothing else is reachable
//! until both are done. Each step is a session state (`SessionState`).

use super::kaigo::{fresh_otp, otp_minutes, Kaigo, SITE};
use super::password_problems;
use super::recovery::{self, Entered};
use super::{current_session, normalize_width, open_session, save_session, Ctx, Outcome};
use crate::address;
use crate::http::Response;
use crate::mail::templates;
use crate::metrics::Issued;
use crate::pages::kaigo as page;
use crate::pages::Problem;
use crate::policy;
use crate::secret::Purpose;
use crate::store::{Account, Session, SessionState, StoreError};
use crate::text::fill;

/// The page of the first-login step a session is at, if it is at one.
pub fn page_of(state: &SessionState) -> Option<&'static str> {
    match state {
        SessionState::ChangingPassword => Some("/kaigo/first/password"),
        SessionState::RegisteringEmail => Some("/kaigo/first/email"),
        SessionState::ConfirmingEmail { .. } => Some("/kaigo/first/code"),
        _ => None,
    }
}

/// A right password of a first login not finished. A temporary one: its
/// page when it has expired (only the right password shows it, so it
/// tells nothing a wrong one does not), otherwise a session that can only
/// set a new password. A new one whose account still has no security
/// address (the first login was left there): a session that can only
/// register one.
pub fn begin(ctx: &Ctx<'_>, account: &Account) -> Outcome {
    let (state, next, note) = match account.temporary_until {
        Some(until) if ctx.now >= until => {
            ctx.audit("login", Some(&account.id), "temporary password expired")?;
            return Ok(Response::html(page::temporary_expired(&ctx.frame())));
        }
        Some(_) => (
            SessionState::ChangingPassword,
            "/kaigo/first/password",
            "temporary password; a new one asked",
        ),
        None => (
            SessionState::RegisteringEmail,
            "/kaigo/first/email",
            "password ok; a security address asked",
        ),
    };
    ctx.audit("login", Some(&account.id), note)?;
    let fresh = open_session(ctx.app, ctx.visit, account, state, ctx.now)?;
    Ok(fresh.set_on(ctx.app, Response::see_other(next)))
}

/// The session and its account when the session is at the step `at` (a
/// pattern on its state); otherwise where the browser should go.
fn at_step(
    ctx: &Ctx<'_>,
    at: fn(&SessionState) -> bool,
) -> Result<Result<(Session, Account), Response>, StoreError> {
    let Some((session, account)) = current_session(ctx.app, ctx.visit, ctx.now)? else {
        return Ok(Err(Response::see_other("/kaigo/login")));
    };
    if at(&session.state) {
        return Ok(Ok((session, account)));
    }
    let elsewhere = page_of(&session.state).unwrap_or("/kaigo/menu");
    Ok(Err(Response::see_other(elsewhere)))
}

fn changing(s: &SessionState) -> bool {
    *s == SessionState::ChangingPassword
}

fn registering(s: &SessionState) -> bool {
    matches!(
        s,
        SessionState::RegisteringEmail | SessionState::ConfirmingEmail { .. }
    )
}

fn confirming(s: &SessionState) -> bool {
    matches!(s, SessionState::ConfirmingEmail { .. })
}

pub fn password_page(ctx: &Ctx<'_>) -> Outcome {
    Ok(match at_step(ctx, changing)? {
        Ok((_, account)) => Response::html(page::first_password(&ctx.frame(), &account.id, &[])),
        Err(elsewhere) => elsewhere,
    })
}

/// Step 1: the new password, by the kaigo policy and not the temporary
/// one. Setting it raises the generation: the session moves to a new
/// cookie under the new generation.
pub fn set_password(ctx: &Ctx<'_>) -> Outcome {
    let app = ctx.app;
    let (_, mut account) = match at_step(ctx, changing)? {
        Ok(found) => found,
        Err(elsewhere) => return Ok(elsewhere),
    };
    let password = ctx.req.field("password");
    let t = ctx.t();
    let mut problems = password_problems(
        t,
        &policy::check_kaigo(
            app.config.kaigo.password_policy,
            &account.id,
            password,
            ctx.req.field("password_confirm"),
        ),
    );
    if app.hasher.verify(Some(&account.password_phc), password) {
        problems.push(Problem::of("pw", t.k_first_same_as_temporary));
    }
    if !problems.is_empty() {
        let page = page::first_password(&ctx.frame(), &account.id, &problems);
        return Ok(Response::html(page));
    }
    if !recovery::change_password(app, &mut account, password)? {
        return Ok(Response::see_other("/kaigo/login"));
    }
    ctx.audit(
        "password_changed",
        Some(&account.id),
        "first login with a temporary password",
    )?;
    let (state, next) = match account.email {
        Some(_) => (SessionState::Active, "/kaigo/menu"),
        None => {
            // Asked for at every login until registered.
            let generation = account.generation;
            app.store.update_account(SITE, &account.id, |a| {
                let same = a.generation == generation;
                a.must_register_email |= same;
                same
            })?;
            (SessionState::RegisteringEmail, "/kaigo/first/email")
        }
    };
    if state == SessionState::Active {
        notify(ctx, &account)?;
    }
    let fresh = open_session(app, ctx.visit, &account, state, ctx.now)?;
    app.store.flush()?;
    Ok(fresh.set_on(app, Response::see_other(next)))
}

pub fn email_page(ctx: &Ctx<'_>) -> Outcome {
    Ok(match at_step(ctx, registering)? {
        Ok(_) => Response::html(page::first_email(&ctx.frame(), "", &[])),
        Err(elsewhere) => elsewhere,
    })
}

/// Step 2: the security address, typed twice; a code goes to it, under the
/// send limits of a recovery's codes (its own claim: this account and
/// this address).
pub fn send_code(ctx: &Ctx<'_>) -> Outcome {
    let app = ctx.app;
    let (mut session, account) = match at_step(ctx, registering)? {
        Ok(found) => found,
        Err(elsewhere) => return Ok(elsewhere),
    };
    let email = normalize_width(ctx.req.field("email"));
    let again = normalize_width(ctx.req.field("email_confirm"));
    let t = ctx.t();
    let mut problems = Vec::new();
    if !address::is_plausible(&email) {
        problems.push(Problem::of("email", t.k_email_wrong));
    } else if !address::same(&email, &again) {
        problems.push(Problem::of("email2", t.k_email_mismatch));
    }
    if !problems.is_empty() {
        return Ok(Response::html(page::first_email(
            &ctx.frame(),
            &email,
            &problems,
        )));
    }
    let limits = &app.config.guard;
    // However many addresses are tried, one account's codes are counted
    // together too: the step mails no one without end.
    let per_account = ctx.claim_key(&["register-any", &account.id])?;
    let account_may = ctx.update_claim(&per_account, |g| {
        g.issued.retain(|t| t + limits.window_secs > ctx.now);
        let may = g.issued.len() < limits.otps_per_day;
        if may {
            g.issued.push(ctx.now);
        }
        may
    })?;
    let claim = ctx.claim_key(&["register", &account.id, &address::normalize(&email)])?;
    let (otp, fresh) = fresh_otp(ctx)?;
    let (waiting_for, sent) = if account_may {
        ctx.update_claim(&claim, |g| recovery::issue_otp(g, &fresh, ctx.now, limits))?
    } else {
        (fresh.id.clone(), false)
    };
    if sent {
        let lifetime = app.config.kaigo.otp_lifetime_secs;
        let letter = templates::kaigo_otp(
            ctx.t(),
            otp.expose(),
            lifetime.div_ceil(60),
            &app.config.kaigo.helpdesk,
        );
        let useful = ctx.now..ctx.now + lifetime;
        app.outbox
            .send(&app.store, SITE, None, &email, &letter, useful)?;
        app.metrics.issued(Issued::FirstLoginCode);
    }
    let outcome = if sent {
        "sent"
    } else {
        "send suppressed: cooldown or daily limit"
    };
    ctx.audit("email_code_issued", Some(&account.id), outcome)?;
    // The owner is logged in: nothing to hide, the page says so.
    if !sent && waiting_for == fresh.id {
        let problem = Problem::form(ctx.t().k_first_not_sent);
        return Ok(Response::html(page::first_email(
            &ctx.frame(),
            &email,
            &[problem],
        )));
    }
    session.state = SessionState::ConfirmingEmail {
        email,
        claim,
        otp_id: waiting_for,
    };
    save_session(app, ctx.visit, &session, ctx.now)?;
    app.store.flush()?;
    Ok(Response::see_other("/kaigo/first/code"))
}

pub fn code_page(ctx: &Ctx<'_>) -> Outcome {
    Ok(match at_step(ctx, confirming)? {
        Ok((session, _)) => {
            let SessionState::ConfirmingEmail { email, .. } = &session.state else {
                return Ok(Response::see_other("/kaigo/first/email"));
            };
            let page = page::first_code(&ctx.frame(), email, otp_minutes(ctx), None);
            Response::html(page)
        }
        Err(elsewhere) => elsewhere,
    })
}

/// Step 3: the code. Right, the address is registered (only over the
/// generation the session was made under), the session is a full login,
/// and the address is told; wrong, the entries left; dead, back to step 2.
pub fn confirm_code(ctx: &Ctx<'_>) -> Outcome {
    let app = ctx.app;
    let (mut session, mut account) = match at_step(ctx, confirming)? {
        Ok(found) => found,
        Err(elsewhere) => return Ok(elsewhere),
    };
    let SessionState::ConfirmingEmail {
        email,
        claim,
        otp_id,
    } = session.state.clone()
    else {
        return Ok(Response::see_other("/kaigo/first/email"));
    };
    let frame = ctx.frame();
    let minutes = otp_minutes(ctx);
    let entered = normalize_width(ctx.req.field("otp"));
    if entered.len() != 6 || !entered.bytes().all(|b| b.is_ascii_digit()) {
        let message = ctx.t().k_otp_format;
        let page = page::first_code(&frame, &email, minutes, Some(message));
        return Ok(Response::html(page));
    }
    let digest = app.digest(Purpose::Otp, &entered)?;
    let result = ctx.update_claim(&claim, |g| {
        recovery::enter_otp(g, &otp_id, &digest, ctx.now)
    })?;
    match result {
        Entered::Right => {
            let generation = account.generation;
            let registered = app.store.update_account(SITE, &account.id, |a| {
                let same = a.generation == generation;
                if same {
                    a.email = Some(email.clone());
                    a.must_register_email = false;
                }
                same
            })?;
            if registered != Some(true) {
                return Ok(Response::see_other("/kaigo/login"));
            }
            account.email = Some(email);
            ctx.audit("security_email_registered", Some(&account.id), "ok")?;
            session.state = SessionState::Active;
            save_session(app, ctx.visit, &session, ctx.now)?;
            notify(ctx, &account)?;
            app.store.flush()?;
            Ok(Response::see_other("/kaigo/menu?done=first"))
        }
        Entered::Wrong(left) if left > 0 => {
            ctx.audit(
                "otp_failed",
                Some(&account.id),
                &format!("wrong code; {left} left"),
            )?;
            let message = fill(ctx.t().k_otp_wrong, &[("left", &left.to_string())]);
            let page = page::first_code(&frame, &email, minutes, Some(&message));
            Ok(Response::html(page))
        }
        _ => {
            ctx.audit("otp_failed", Some(&account.id), "code dead")?;
            session.state = SessionState::RegisteringEmail;
            save_session(app, ctx.visit, &session, ctx.now)?;
            let problem = Problem::of("email", ctx.t().k_first_code_dead);
            let page = page::first_email(&frame, &email, &[problem]);
            Ok(Response::html(page))
        }
    }
}

/// Tells the registered address that the password changed (and so, when
/// it was just registered, that it now receives the account's mail).
fn notify(ctx: &Ctx<'_>, account: &Account) -> Result<(), StoreError> {
    let helpdesk = &ctx.app.config.kaigo.helpdesk;
    recovery::notify_password_changed(ctx, account, None, |notice| {
        // Issuing the letter cleared any code: this change cleared none.
        templates::kaigo_password_changed(ctx.t(), notice, false, helpdesk)
    })
}
