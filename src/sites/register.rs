//! The portal's new-user registration (新規ユーザー登録), the way out the
//! manual gives provisional accounts and wrong addresses: ① 入力 (the
//! institution, the person, the address twice, a user name, the CAPTCHA)
//! → ② a mailed link, valid an hour and used once → ③ a password, and the
//! account. Step ① reads the same and does the same work whether or not
//! the address or the user name is in use; a taken name is said only at
//! step ③, to whoever holds the confirmed address.

use super::password_problems;
use super::portal::{
    captcha_changed, captcha_solved, captcha_wrong, new_captcha, portal_url, Portal, SITE,
};
use super::recovery;
use super::{normalize_width, text_problem, Ctx, Outcome};
use crate::address;
use crate::http::Response;
use crate::mail::templates;
use crate::metrics::Issued;
use crate::pages::portal::{self as page, RegistrationForm};
use crate::pages::Problem;
use crate::policy;
use crate::secret::{Purpose, Token};
use crate::store::{is_office_number, NewAccount, PortalFlow, Registration, StoreError};
use crate::text::fill;

/// How long a registration's link works: an hour.
pub const LINK_LIFETIME: u64 = 3600;

pub fn form_page(ctx: &Ctx<'_>) -> Outcome {
    form(ctx, &RegistrationForm::default(), &[])
}

fn form(ctx: &Ctx<'_>, typed: &RegistrationForm<'_>, problems: &[Problem]) -> Outcome {
    let (id, shown) = new_captcha(ctx)?;
    let page = page::register(&ctx.frame(None), typed, &id, &shown, problems);
    Ok(Response::html(page))
}

/// ① submitted. Past the checks of each field, the same work on every
/// branch: a registration record, one mail queued to the typed address
/// (the link, or, when the address has an account, that account's user
/// name and the way to reset, with no link), the audit, the flush.
pub fn submit(ctx: &Ctx<'_>) -> Outcome {
    let app = ctx.app;
    let r = ctx.req;
    let institution = normalize_width(r.field("institution"));
    let email = normalize_width(r.field("email"));
    let email_confirm = normalize_width(r.field("email_confirm"));
    let typed = RegistrationForm {
        institution: &institution,
        institution_name: r.field("institution_name").trim(),
        contact: r.field("contact").trim(),
        email: &email,
        email_confirm: &email_confirm,
        user: r.field("user").trim(),
    };
    let solved = captcha_solved(ctx)?;
    if captcha_changed(ctx) {
        return form(ctx, &typed, &[]);
    }
    let t = ctx.t();
    let mut problems: Vec<Problem> = Vec::new();
    if institution.is_empty() {
        problems.push(Problem::of("institution", t.p_institution_empty));
    } else if !is_office_number(&institution) {
        problems.push(Problem::of("institution", t.p_institution_wrong));
    }
    let texts = [
        (
            "institution_name",
            t.p_institution_name,
            typed.institution_name,
        ),
        ("contact", t.p_contact, typed.contact),
    ];
    for (field, label, text) in texts {
        problems.extend(text_problem(t, label, text, 100).map(|p| Problem::of(field, p)));
    }
    if !address::is_plausible(&email) || crate::store::is_provisional_address(&email) {
        problems.push(Problem::of("email", t.p_email_wrong));
    } else if !address::same(&email, &email_confirm) {
        problems.push(Problem::of("email_confirm", t.p_email_mismatch));
    }
    problems.extend(text_problem(t, t.p_user, typed.user, 100).map(|p| Problem::of("user", p)));
    if !solved {
        problems.push(Problem::of("captcha", captcha_wrong(ctx)));
    }
    if !problems.is_empty() {
        if !solved {
            ctx.audit("captcha", None, "failed")?;
        }
        return form(ctx, &typed, &problems);
    }
    let in_use = app.store.account_with_email(SITE, &email)?;
    let admitted = recovery::admit_link(ctx, &["register", &address::normalize(&email)])?;
    let token = Token::generate();
    let key = app.digest(Purpose::Link, token.expose())?;
    let registration = Registration {
        institution: institution.clone(),
        institution_name: typed.institution_name.to_string(),
        contact: typed.contact.to_string(),
        email: email.clone(),
        user: typed.user.to_string(),
        dead: in_use.is_some(),
        lang: ctx.req.lang,
    };
    app.store
        .put_registration(&key, &registration, ctx.now + LINK_LIFETIME)?;
    let (portal, contact) = (portal_url(app), &app.config.portal.contact);
    let letter = match &in_use {
        Some(account) => {
            let reset = format!("{portal}/reset");
            templates::portal_registration_exists(t, &account.id, &reset, &portal, contact)
        }
        None => {
            let url = format!("{portal}/register/confirm?token={}", token.expose());
            let lifetime = templates::lifetime(t, LINK_LIFETIME);
            templates::portal_registration_link(t, &url, &lifetime, &portal, contact)
        }
    };
    let useful = ctx.now..ctx.now + LINK_LIFETIME;
    let from = app.config.portal.mail_from.as_deref();
    let outcome = match (admitted, in_use.is_some()) {
        (true, false) => "link mailed",
        (true, true) => "address in use: mailed its user name, no link",
        (false, _) => "send suppressed: cooldown or daily limit",
    };
    if admitted {
        app.outbox
            .send(&app.store, SITE, from, &email, &letter, useful)?;
        // A mail to an address in use carries its user name, not a link.
        if in_use.is_none() {
            app.metrics.issued(Issued::RegistrationLink);
        }
    } else {
        app.outbox
            .send_decoy(&app.store, SITE, &email, &letter, useful)?;
    }
    ctx.audit("registration_started", None, outcome)?;
    app.store.flush()?;
    Ok(Response::see_other("/portal/register/sent"))
}

pub fn sent_page(ctx: &Ctx<'_>) -> Outcome {
    let lifetime = templates::lifetime(ctx.t(), LINK_LIFETIME);
    Ok(Response::html(page::register_sent(
        &ctx.frame(None),
        &lifetime,
    )))
}

/// The live registration a link's token names, and its key.
fn live(ctx: &Ctx<'_>, token: &str) -> Result<Option<(String, Registration)>, StoreError> {
    let Some(token) = Token::parse(token) else {
        return Ok(None);
    };
    let key = ctx.app.digest(Purpose::Link, token.expose())?;
    let found = ctx.app.store.registration(&key, ctx.now)?;
    Ok(found.filter(|r| !r.dead).map(|r| (key, r)))
}

fn invalid(ctx: &Ctx<'_>) -> Response {
    let lifetime = templates::lifetime(ctx.t(), LINK_LIFETIME);
    Response::html_status(404, page::register_invalid(&ctx.frame(None), &lifetime))
}

/// Opening the link: the password form, nothing used (mail scanners
/// fetch links).
pub fn confirm_page(ctx: &Ctx<'_>) -> Outcome {
    let token = ctx.query("token");
    Ok(match live(ctx, token)? {
        Some((_, r)) => Response::html(page::register_password(
            &ctx.frame(None),
            token,
            &r.user,
            &[],
        )),
        None => invalid(ctx),
    })
}

/// ③: the password (and the user name, which may be changed here if it
/// was taken). The link is used up here, and only here; the account is
/// made; a provisional account of the same institution retires; the
/// ユーザー登録完了メール goes to the confirmed address.
pub fn confirm(ctx: &Ctx<'_>) -> Outcome {
    let app = ctx.app;
    let token = ctx.req.field("token");
    let Some((key, r)) = live(ctx, token)? else {
        return Ok(invalid(ctx));
    };
    let user = ctx.req.field("user").trim().to_string();
    let password = ctx.req.field("password");
    let t = ctx.t();
    let mut problems = password_problems(
        t,
        &policy::check_portal(
            app.config.portal.password_policy,
            password,
            ctx.req.field("password_confirm"),
        ),
    );
    let new = NewAccount {
        user: user.clone(),
        institution: Some(r.institution.clone()),
        email: Some(r.email.clone()),
        ..NewAccount::default()
    };
    let taken = Problem::of("user", t.p_user_taken);
    if new.clone().build(SITE, String::new()).is_err() {
        let text = text_problem(t, t.p_user, &user, 100);
        problems.push(Problem::of(
            "user",
            text.unwrap_or_else(|| t.p_user_chars.into()),
        ));
    } else if !user_name_is_plain(&user) {
        problems.push(Problem::of("user", t.p_user_chars));
    } else if problems.is_empty() && app.store.account(SITE, &user)?.is_some() {
        // Said only with a password that passes: no probe of names for free.
        problems.push(taken.clone());
    }
    // Registered meanwhile by another of its links: one account an address.
    if let Some(holder) = app.store.account_with_email(SITE, &r.email)? {
        return Ok(address_taken(ctx, token, &user, &holder.id));
    }
    let again = |problems: &[Problem]| {
        let page = page::register_password(&ctx.frame(None), token, &user, problems);
        Ok(Response::html(page))
    };
    if !problems.is_empty() {
        return again(&problems);
    }
    let Ok(account) = new.build(SITE, app.hasher.hash(password)) else {
        return Ok(invalid(ctx));
    };
    // One at a time from here to the account: the address is checked and
    // taken together.
    let _one = app.registering.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(holder) = app.store.account_with_email(SITE, &r.email)? {
        return Ok(address_taken(ctx, token, &user, &holder.id));
    }
    let Some(r) = app.store.take_registration(&key, ctx.now)? else {
        return Ok(invalid(ctx));
    };
    if !app.store.create_account(&account)? {
        // Taken meanwhile: the link works again for another name.
        app.store
            .put_registration(&key, &r, ctx.now + LINK_LIFETIME)?;
        return again(&[taken]);
    }
    let note = format!(
        "institution {} ({}), contact {}",
        r.institution, r.institution_name, r.contact
    );
    ctx.audit("registration_completed", Some(&account.id), &note)?;
    for old in app.store.accounts_of_institution(&r.institution)? {
        if old.is_provisional() && old.id != account.id && old.is_enabled() {
            app.store.update_account(SITE, &old.id, |a| {
                let fresh = !a.disabled;
                a.disabled = true;
                fresh
            })?;
            for key in app.store.account_sessions(SITE, &old.id, ctx.now)? {
                app.store.remove_session(&key)?;
            }
            let note = format!("provisional; retired by the registration of {}", account.id);
            ctx.audit("account_retired", Some(&old.id), &note)?;
        }
    }
    let letter = templates::portal_registration_done(
        r.lang.texts(),
        &account.id,
        &portal_url(app),
        &app.config.portal.contact,
    );
    let from = app.config.portal.mail_from.as_deref();
    app.outbox.send(
        &app.store,
        SITE,
        from,
        &r.email,
        &letter,
        ctx.now..ctx.now + crate::clock::DAY,
    )?;
    ctx.put_flow(PortalFlow::Registered {
        user: account.id.clone(),
    })?;
    app.store.flush()?;
    Ok(Response::see_other("/portal/register/done"))
}

/// The address has an account already: named to whoever confirmed it.
fn address_taken(ctx: &Ctx<'_>, token: &str, user: &str, holder: &str) -> Response {
    let message = fill(ctx.t().p_email_registered, &[("holder", holder)]);
    Response::html(page::register_password(
        &ctx.frame(None),
        token,
        user,
        &[Problem::form(message)],
    ))
}

/// A user name a registration may take: ASCII letters, digits and
/// `-_.@`, so that no name passes for another (look-alike letters,
/// invisible or right-to-left characters).
fn user_name_is_plain(user: &str) -> bool {
    user.chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'))
}

pub fn done_page(ctx: &Ctx<'_>) -> Outcome {
    Ok(match ctx.flow()? {
        Some(PortalFlow::Registered { user }) => {
            Response::html(page::register_done(&ctx.frame(None), &user))
        }
        _ => Response::see_other("/portal/register"),
    })
}
