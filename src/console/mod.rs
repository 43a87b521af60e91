//! The operators' console under `/admin`: the people who run kagi log in
//! with a name, a password and a TOTP code, and act on accounts, the audit
//! trail and the mail queue. This file holds the route table, the login,
//! the enrolment and the console's sessions; `accounts` and `records` the
//! pages' work.
//!
//! Every page: the console's own cookie (`SameSite=Strict`, path `/admin`),
//! CSRF on every POST, `Cache-Control: no-store` and the sites' CSP (from
//! `http/`). A session ends 15 minutes idle or 8 hours after login; an
//! action that cannot be undone asks for a TOTP code again when the last
//! one is more than 5 minutes old.

pub mod accounts;
pub mod postal;
pub mod records;

use crate::app::App;
use crate::http::{Request, Response};
use crate::limit::Action;
use crate::pages::console as page;
use crate::secret::Purpose;
use crate::site::{Area, Site};
use crate::sites::{check_guarded, serve_area, Checked, Outcome, Route, Visit};
use crate::store::{first_generation, AuditEvent, Operator, OperatorSession, Secret, StoreError};
use crate::totp::{self, TotpSecret};
use crate::{policy, secret::Token};

/// A console session unused this long ends.
pub const IDLE_SECS: u64 = 15 * 60;
/// A console session ends this long after login, however busy.
pub const ABSOLUTE_SECS: u64 = 8 * 3600;
/// An action that cannot be undone asks for a TOTP code again after this.
pub const TOTP_FRESH_SECS: u64 = 5 * 60;
/// An enrolment link works this long.
pub const ENROLMENT_SECS: u64 = 3600;
/// The issuer an authenticator app shows beside the operator's name.
pub const ISSUER: &str = "kagi";

/// One request to the console: what every page gets.
pub struct Console<'a> {
    pub app: &'a App,
    pub req: &'a Request,
    pub now: u64,
    pub visit: &'a Visit,
    /// The logged-in operator (None only on the login and enrolment pages).
    pub session: Option<OperatorSession>,
}

/// What answers one method of one console path.
pub type Page = for<'a> fn(&Console<'a>) -> Outcome;

/// Every console path, and what answers it.
pub static ROUTES: &[Route<Page>] = &[
    Route {
        path: "/admin",
        get: Some(accounts::search),
        ..Route::NONE
    },
    Route {
        path: "/admin/login",
        get: Some(login_page),
        post: Some(login),
        post_limit: Some(Action::Login),
        hashes: true,
        ..Route::NONE
    },
    Route {
        path: "/admin/enrol",
        get: Some(enrol_page),
        post: Some(enrol),
        post_limit: Some(Action::Login),
        hashes: true,
        ..Route::NONE
    },
    Route {
        path: "/admin/logout",
        post: Some(logout),
        ..Route::NONE
    },
    Route {
        path: "/admin/account",
        get: Some(accounts::show),
        ..Route::NONE
    },
    Route {
        path: "/admin/account/reveal",
        post: Some(accounts::reveal),
        ..Route::NONE
    },
    Route {
        path: "/admin/account/action",
        get: Some(accounts::confirm),
        post: Some(accounts::act),
        // An action may ask for the password or a code again.
        post_limit: Some(Action::Login),
        // Deleting asks for the operator's password.
        hashes: true,
        ..Route::NONE
    },
    Route {
        path: "/admin/accounts/new",
        get: Some(accounts::new_page),
        post: Some(accounts::create),
        ..Route::NONE
    },
    Route {
        path: "/admin/postal",
        get: Some(postal::queue),
        ..Route::NONE
    },
    Route {
        path: "/admin/postal/request",
        get: Some(postal::request_page),
        ..Route::NONE
    },
    Route {
        path: "/admin/postal/issue",
        post: Some(postal::issue),
        // The temporary password is hashed; a code may be asked again.
        post_limit: Some(Action::Login),
        hashes: true,
        ..Route::NONE
    },
    Route {
        path: "/admin/postal/reject",
        post: Some(postal::reject),
        ..Route::NONE
    },
    Route {
        path: "/admin/audit",
        get: Some(records::audit),
        reads_much: true,
        ..Route::NONE
    },
    Route {
        path: "/admin/audit.csv",
        get: Some(records::audit_csv),
        reads_much: true,
        ..Route::NONE
    },
    Route {
        path: "/admin/mail",
        get: Some(records::mail),
        ..Route::NONE
    },
    Route {
        path: "/admin/mail/retry",
        post: Some(records::retry),
        ..Route::NONE
    },
];

/// The pages a browser without a console session may see.
const OPEN: [&str; 2] = ["/admin/login", "/admin/enrol"];

/// Answers a console request (one without the admin token): routed by
/// `ROUTES`; every page but login and enrolment needs a live session, and
/// sends a browser without one to the login.
pub fn handle(app: &App, req: &Request, now: u64) -> Outcome {
    serve_area(app, req, now, Area::Console, ROUTES, |page, visit| {
        let session = current_session(app, visit, now)?;
        let open = OPEN.contains(&req.path.trim_end_matches('/'));
        if session.is_none() && !open {
            return Ok(Response::see_other("/admin/login"));
        }
        page(&Console {
            app,
            req,
            now,
            visit,
            session,
        })
    })
}

impl Console<'_> {
    /// What every console page shows around its content.
    pub fn frame(&self) -> page::Frame<'_> {
        page::Frame {
            csrf: &self.visit.csrf,
            banner: self.app.banner,
            operator: self.session.as_ref().map(|s| s.operator.as_str()),
        }
    }

    /// A form field, with full-width ASCII made ASCII and spaces trimmed.
    pub fn field(&self, name: &str) -> String {
        crate::sites::normalize_width(self.req.field(name))
    }

    /// The value of `name` in the query string, or "".
    pub fn query(&self, name: &str) -> &str {
        self.req.query_value(name)
    }

    /// Appends to the audit trail what this operator did, and why.
    pub fn audit(
        &self,
        event: &str,
        account: Option<(Site, &str)>,
        outcome: &str,
        reason: Option<&str>,
    ) -> Result<(), StoreError> {
        self.app.store.audit(&AuditEvent {
            request: Some(self.req.id.clone()),
            prev: String::new(),
            time: self.now,
            site: account.map(|(site, _)| site),
            event: event.into(),
            account: account.map(|(_, id)| id.to_string()),
            client: self.req.client.to_string(),
            outcome: outcome.into(),
            operator: self.session.as_ref().map(|s| s.operator.clone()),
            reason: reason.map(str::to_string),
        })
    }

    /// Whether the operator gave a TOTP code in the last five minutes.
    pub fn totp_is_fresh(&self) -> bool {
        self.session
            .as_ref()
            .is_some_and(|s| self.now < s.totp_at + TOTP_FRESH_SECS)
    }

    /// Confirms an action by what it asks for again: the operator's
    /// password (`password`), a TOTP code (`code`), or both. Both are
    /// checked in every case and counted as one attempt on the operator's
    /// confirmation guard, which is not the login's: a stranger's failed
    /// logins do not block an operator at work, and a right password does
    /// not forgive wrong codes. A right code is used up and the session's
    /// TOTP clock restarts.
    pub fn confirm(
        &self,
        password: Option<&str>,
        code: Option<&str>,
    ) -> Result<Checked, StoreError> {
        let Some(session) = &self.session else {
            return Ok(Checked::Wrong);
        };
        let app = self.app;
        let operator = app.store.operator(&session.operator)?;
        let password_ok = match password {
            Some(typed) => {
                let phc = operator.as_ref().and_then(|o| o.password_phc.as_deref());
                app.hasher.verify_login(phc, typed)
            }
            None => true,
        };
        let step = match (&operator, code) {
            (Some(o), Some(typed)) => valid_step(app, o, typed, self.now)?,
            _ => None,
        };
        let right = password_ok && (code.is_none() || step.is_some());
        let who = (
            Secret::SecurityCode,
            Area::Console,
            session.operator.as_str(),
        );
        let checked = check_guarded(app, self.req, self.now, who, right, "operator_confirm")?;
        if checked != Checked::Right || code.is_none() {
            return Ok(checked);
        }
        if !use_step(app, &session.operator, step)? {
            return Ok(Checked::Wrong);
        }
        let mut fresh = session.clone();
        fresh.totp_at = self.now;
        save_session(app, self.visit, &fresh, self.now)?;
        Ok(Checked::Right)
    }
}

/// What a failed confirmation says.
pub fn not_confirmed(checked: Checked) -> String {
    match checked {
        Checked::Waiting(secs) => format!(
            "確認の失敗が続いたため、{}分間お待ちください。",
            secs.div_ceil(60)
        ),
        _ => "パスワードまたは確認コードが正しくありません。認証アプリの新しいコードを入力してください。".into(),
    }
}

/// The visit's console session, if still good: not idle too long, not
/// past its absolute lifetime, its operator still there and not reset since.
/// A good session's idle clock restarts.
fn current_session(
    app: &App,
    visit: &Visit,
    now: u64,
) -> Result<Option<OperatorSession>, StoreError> {
    let Some(mut session) = app.store.operator_session(&visit.key, now)? else {
        return Ok(None);
    };
    let operator = app.store.operator(&session.operator)?;
    let good = operator.is_some_and(|o| {
        can_log_in(app, &o)
            && o.generation == session.generation
            && now < session.created + ABSOLUTE_SECS
    });
    if !good {
        app.store.remove_operator_session(&visit.key)?;
        return Ok(None);
    }
    session.last_seen = now;
    save_session(app, visit, &session, now)?;
    Ok(Some(session))
}

/// Whether an operator may log in: enrolled, and not the demo's operator
/// outside the demo (a database a demo made, served for real, keeps an
/// operator whose password anyone can read).
fn can_log_in(app: &App, operator: &Operator) -> bool {
    operator.is_enrolled() && (app.demo || !operator.demo)
}

/// Writes a session back, expiring at whichever of its limits comes first.
fn save_session(
    app: &App,
    visit: &Visit,
    session: &OperatorSession,
    now: u64,
) -> Result<(), StoreError> {
    let expires = (now + IDLE_SECS).min(session.created + ABSOLUTE_SECS);
    app.store.put_operator_session(&visit.key, session, expires)
}

/// The TOTP step `typed` is the code of, if it is one of the operator's
/// codes of now (±1 step) and later than the last one used.
fn valid_step(
    app: &App,
    operator: &Operator,
    typed: &str,
    now: u64,
) -> Result<Option<u64>, StoreError> {
    let secret = app.store.operator_totp(operator)?;
    let secret = secret.and_then(|s| <[u8; 20]>::try_from(s.as_slice()).ok());
    Ok(secret.and_then(|s| {
        totp::verify(
            &TotpSecret::from_bytes(s),
            typed,
            now,
            operator.last_totp_step,
        )
    }))
}

/// Uses up a TOTP step, atomically: of two requests with the same code,
/// one wins.
fn use_step(app: &App, name: &str, step: Option<u64>) -> Result<bool, StoreError> {
    let Some(step) = step else {
        return Ok(false);
    };
    let used = app.store.update_operator(name, |o| {
        let fresh = o.last_totp_step.is_none_or(|last| step > last);
        if fresh {
            o.last_totp_step = Some(step);
        }
        fresh
    })?;
    Ok(used == Some(true))
}

fn login_page(c: &Console<'_>) -> Outcome {
    Ok(Response::html(page::login(&c.frame(), "", None)))
}

/// Name, password and TOTP code. The password is verified in every case
/// (against a decoy for an unknown name), failures count per name as on
/// the sites, and a code is used up by the login it opens: the same code
/// cannot open a second one.
fn login(c: &Console<'_>) -> Outcome {
    let app = c.app;
    let name = c.field("name");
    let password = c.req.field("password");
    let operator = app.store.operator(&name)?.filter(|o| can_log_in(app, o));
    let phc = operator.as_ref().and_then(|o| o.password_phc.as_deref());
    let password_ok = app.hasher.verify_login(phc, password);
    let step = match &operator {
        Some(o) if password_ok => valid_step(app, o, c.req.field("code"), c.now)?,
        _ => None,
    };
    // A name no operator can have counts no failure (no record is written
    // for it), but costs the same hash.
    let checked = if is_operator_name(&name) {
        let who = (Secret::Password, Area::Console, name.as_str());
        check_guarded(app, c.req, c.now, who, step.is_some(), "operator_login")?
    } else {
        c.audit("operator_login", None, "failed", None)?;
        Checked::Wrong
    };
    let refused = |message: &str| {
        Ok(Response::html(page::login(
            &c.frame(),
            &name,
            Some(message),
        )))
    };
    let Some(operator) = operator.filter(|_| checked == Checked::Right) else {
        return match checked {
            Checked::Waiting(secs) => refused(&format!(
                "ログインの失敗が続いたため、{}分間ログインできません。",
                secs.div_ceil(60)
            )),
            _ => refused("オペレーター名、パスワード、または確認コードが正しくありません。"),
        };
    };
    if !use_step(app, &operator.name, step)? {
        return refused("オペレーター名、パスワード、または確認コードが正しくありません。");
    }
    sign_in(c, &operator, ("operator_login", "ok"), "/admin")
}

/// Opens a console session for `operator`, who has just given a password
/// and a TOTP code, and audits `event`. A new cookie: whatever cookie the
/// browser had before is worth nothing afterwards.
fn sign_in(
    c: &Console<'_>,
    operator: &Operator,
    (event, outcome): (&str, &str),
    to: &str,
) -> Outcome {
    let app = c.app;
    app.store.remove_operator_session(&c.visit.key)?;
    let fresh = Visit::new(app, Area::Console)?;
    let session = OperatorSession {
        operator: operator.name.clone(),
        generation: operator.generation,
        created: c.now,
        last_seen: c.now,
        totp_at: c.now,
    };
    save_session(app, &fresh, &session, c.now)?;
    let signed = Console {
        session: Some(session),
        visit: &fresh,
        ..*c
    };
    signed.audit(event, None, outcome, None)?;
    app.store.flush()?;
    Ok(fresh.set_on(app, Response::see_other(to)))
}

fn logout(c: &Console<'_>) -> Outcome {
    c.audit("operator_logout", None, "ok", None)?;
    c.app.store.remove_operator_session(&c.visit.key)?;
    Ok(Response::see_other("/admin/login"))
}

/// The TOTP secret an enrolment link sets: derived from the link's token
/// under the server's key, so that the page shows the same secret however
/// often it is opened, and nothing is written until the operator confirms.
fn enrolment_secret(app: &App, token: &str) -> Result<TotpSecret, StoreError> {
    let digest = app.digest(Purpose::OperatorTotp, token)?;
    let mut bytes = [0u8; 20];
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&digest[2 * i..2 * i + 2], 16).unwrap_or(0);
    }
    Ok(TotpSecret::from_bytes(bytes))
}

/// The operator whose live enrolment link carries `token`.
fn enrolling(c: &Console<'_>, token: &str) -> Result<Option<Operator>, StoreError> {
    let Some(token) = Token::parse(token) else {
        return Ok(None);
    };
    let digest = c.app.digest(Purpose::Link, token.expose())?;
    c.app.store.operator_by_enrolment(&digest, c.now)
}

/// The enrolment form: the secret as a QR code and as text, a new
/// password, and a code from the app to show that it reads the secret.
fn enrol_page(c: &Console<'_>) -> Outcome {
    let token = c.query("token");
    let Some(operator) = enrolling(c, token)? else {
        return Ok(Response::html_status(404, page::enrol_invalid(&c.frame())));
    };
    enrol_form(c, &operator, token, &[])
}

fn enrol_form(c: &Console<'_>, operator: &Operator, token: &str, problems: &[String]) -> Outcome {
    let secret = enrolment_secret(c.app, token)?;
    let uri = totp::otpauth_uri(ISSUER, &operator.name, &secret);
    let qr = totp::qr_svg(&uri, "認証アプリに読み取らせるQRコード");
    let view = page::Enrolment {
        name: &operator.name,
        token,
        secret: &secret.base32(),
        qr_svg: &qr,
        problems,
    };
    Ok(Response::html(page::enrol(&c.frame(), &view)))
}

/// Sets the operator's password and second factor from an enrolment link,
/// once: the link dies, and so does every session of before.
fn enrol(c: &Console<'_>) -> Outcome {
    let app = c.app;
    let token = c.req.field("token").to_string();
    let Some(operator) = enrolling(c, &token)? else {
        return Ok(Response::html_status(404, page::enrol_invalid(&c.frame())));
    };
    let password = c.req.field("password");
    let mut problems: Vec<String> = policy::check_operator(password, c.req.field("password2"))
        .into_iter()
        .map(|v| v.message(&crate::text::JA))
        .collect();
    let secret = enrolment_secret(app, &token)?;
    let step = totp::verify(&secret, c.req.field("code"), c.now, None);
    if step.is_none() {
        problems.push(
            "確認コードが正しくありません。認証アプリに表示された6桁の数字を入力してください。"
                .into(),
        );
    }
    if !problems.is_empty() {
        return enrol_form(c, &operator, &token, &problems);
    }
    let phc = app.hasher.hash(password);
    let sealed = app.store.seal_totp(&operator.name, secret.bytes())?;
    let digest = operator.enrolment.clone();
    let done = app.store.update_operator(&operator.name, |o| {
        // Only over the link that was checked: a reset meanwhile wins.
        let same = o.enrolment == digest;
        if same {
            o.password_phc = Some(phc.clone());
            o.totp_sealed = Some(sealed.clone());
            o.last_totp_step = step;
            o.enrolment = None;
            o.generation += 1;
        }
        same
    })?;
    let enrolled = app.store.operator(&operator.name)?;
    let Some(enrolled) = enrolled.filter(|_| done == Some(true)) else {
        return Ok(Response::html_status(404, page::enrol_invalid(&c.frame())));
    };
    // The password and a code were just given: the operator is in.
    let event = ("operator_enrolled", "password and TOTP set");
    sign_in(c, &enrolled, event, "/admin?done=enrolled")
}

/// A new enrolment link for `name` (new operator or reset): the token is
/// returned once and only its digest kept. `reset`: the operator's
/// password and TOTP stop working at once, and its sessions end.
pub fn issue_enrolment(
    app: &App,
    name: &str,
    reset: bool,
    now: u64,
) -> Result<Option<String>, StoreError> {
    let token = Token::generate();
    let digest = app.digest(Purpose::Link, token.expose())?;
    let enrolment = Some((digest, now + ENROLMENT_SECS));
    let issued = if reset {
        // A reset is also how an operator locked out by failures gets in.
        for secret in [Secret::Password, Secret::SecurityCode] {
            app.store.remove_login_guard(secret, Area::Console, name)?;
        }
        let done = app.store.update_operator(name, |o| {
            o.password_phc = None;
            o.totp_sealed = None;
            o.enrolment = enrolment.clone();
            o.generation += 1;
            true
        })?;
        done == Some(true)
    } else {
        app.store.add_operator(&Operator {
            name: name.to_string(),
            password_phc: None,
            totp_sealed: None,
            last_totp_step: None,
            generation: first_generation(),
            enrolment,
            created: now,
            demo: false,
        })?
    };
    Ok(issued.then(|| {
        format!(
            "{}/admin/enrol?token={}",
            app.config.public_base(),
            token.expose()
        )
    }))
}

/// Whether `name` can be an operator's name: 1 to 64 letters, digits,
/// `-`, `_` or `.`.
pub fn is_operator_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}
