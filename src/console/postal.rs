//! The postal letters (書類郵送): the queue of requests, a request beside
//! the account it names, the letter with a temporary password, and the
//! rejection. Issuing is shared with `kagi postal issue`.

use super::Console;
use crate::app::App;
use crate::clock::{self, DAY};
use crate::http::Response;
use crate::pages::console::{self as page, LetterView, PostalRow};
use crate::pages::error_page;
use crate::pages::kaigo::prefecture_name;
use crate::policy;
use crate::site::{Area, Site};
use crate::sites::Outcome;
use crate::store::{Account, AccountProblem, NewAccount, PostalRequest, Secret, StoreError};

/// What an operator may correct when issuing: the office's name and the
/// postal address the letter goes to (a new office has none registered).
#[derive(Debug, Default)]
pub struct Corrections {
    pub office_name: Option<String>,
    pub postal_address: Option<String>,
}

/// A letter issued: shown once, never stored (only the hash of its
/// temporary password is).
pub struct Issued {
    pub account: Account,
    /// The office's name as the letter is addressed.
    pub addressee: String,
    pub password: String,
    pub until: u64,
    /// The account was made from the request.
    pub new_office: bool,
}

/// Why a letter was not issued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotIssued {
    /// Issued or rejected meanwhile.
    Closed,
    /// No postal address: a new office needs the operator's.
    NoAddress,
    /// The account is disabled: its login would refuse the letter's password.
    Disabled,
    /// A corrected name or address too long or with control characters.
    Text,
}

impl NotIssued {
    pub fn ja(self) -> &'static str {
        match self {
            NotIssued::Closed => "この申請はすでに処理されています。",
            NotIssued::NoAddress => {
                "郵送先の所在地を入力してください(所在地が登録されていません)。"
            }
            NotIssued::Disabled => {
                "このアカウントは無効化されています。有効化してから書類を発行してください。"
            }
            NotIssued::Text => AccountProblem::Text.ja(),
        }
    }
}

impl std::fmt::Display for NotIssued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NotIssued::Closed => "the request was issued or rejected already",
            NotIssued::NoAddress => "no postal address is registered: give one (--address)",
            NotIssued::Disabled => "the account is disabled: enable it at the console first",
            NotIssued::Text => {
                "office name or postal address: at most 200 characters, no control characters"
            }
        })
    }
}

/// The user ID a request names.
pub fn user_id(request: &PostalRequest) -> String {
    format!("KJ{}{}", request.prefecture, request.office)
}

/// A temporary password that meets the kaigo policy configured (12
/// characters under the seed's rules, 16 under NIST's).
fn temporary_password(app: &App, user_id: &str) -> String {
    let style = app.config.kaigo.password_policy;
    let len = match style {
        crate::config::PolicyStyle::Seed => 12,
        crate::config::PolicyStyle::Nist => 16,
    };
    loop {
        let password = crate::secret::temporary_password(len);
        if policy::check_kaigo(style, user_id, &password, &password).is_empty() {
            return password;
        }
    }
}

/// Issues the letter of `request`: a new temporary password, good for
/// `kaigo.temporary_password_days`, for the account it names, or for a new
/// account made from it. The earlier password (temporary or not), the
/// security code, and every code, link and session of the account die
/// (its generation moves on); its lockout is lifted. The request closes.
/// The caller audits and flushes.
pub fn issue_letter(
    app: &App,
    request: &PostalRequest,
    fix: &Corrections,
    now: u64,
) -> Result<Result<Issued, NotIssued>, StoreError> {
    let id = user_id(request);
    let existing = app.store.account(Site::Kaigo, &id)?;
    if existing.as_ref().is_some_and(|a| !a.is_enabled()) {
        return Ok(Err(NotIssued::Disabled));
    }
    let registered = existing.as_ref().and_then(|a| a.office.as_ref());
    // What the letter is addressed to; an account keeps what it had
    // registered unless the operator corrects it.
    let name = fix
        .office_name
        .clone()
        .or_else(|| registered.and_then(|o| o.name.clone()))
        .unwrap_or_else(|| request.office_name.clone());
    let address = fix
        .postal_address
        .clone()
        .or_else(|| registered.and_then(|o| o.postal_address.clone()));
    let Some(address) = address else {
        return Ok(Err(NotIssued::NoAddress));
    };
    // The new account's fields pass the one rule of new accounts.
    let new = NewAccount {
        site: Some(Site::Kaigo),
        office: request.office.clone(),
        prefecture: request.prefecture.clone(),
        office_name: Some(name.clone()),
        postal_address: Some(address.clone()),
        ..NewAccount::default()
    };
    let password = temporary_password(app, &id);
    let phc = app.hasher.hash(&password);
    // Good through the whole last day the letter names, in the zone of
    // the office.
    let offset = app.utc_offset;
    let last = now + app.config.kaigo.temporary_password_days * DAY;
    let until = clock::parse_date_time(&clock::date_time(last, offset)[..10], offset, true)
        .map_or(last, |t| t + 1);
    let mut account = match new.build(Site::Kaigo, phc.clone()) {
        Ok(a) => a,
        Err(_) => return Ok(Err(NotIssued::Text)),
    };
    account.temporary_until = Some(until);
    if !app.store.close_postal_request(request)? {
        return Ok(Err(NotIssued::Closed));
    }
    let new_office = existing.is_none() && app.store.create_account(&account)?;
    if !new_office {
        let updated = app.store.update_account(Site::Kaigo, &id, |a| {
            // Disabled meanwhile: its login would refuse the letter.
            if !a.is_enabled() {
                return false;
            }
            a.password_phc = phc.clone();
            a.temporary_until = Some(until);
            a.security_code_phc = None;
            a.generation += 1;
            a.locked = false;
            if let Some(office) = &mut a.office {
                office.name = fix.office_name.clone().or(office.name.take());
                office.postal_address = Some(address.clone());
            }
            true
        })?;
        match updated {
            Some(true) => {}
            Some(false) => return Ok(Err(NotIssued::Disabled)),
            // Deleted meanwhile: the letter makes it anew, as a new office's.
            None => {
                if !app.store.create_account(&account)? {
                    return Ok(Err(NotIssued::Closed));
                }
            }
        }
        let area = Area::Site(Site::Kaigo);
        app.store.remove_login_guard(Secret::Password, area, &id)?;
        app.store
            .remove_login_guard(Secret::SecurityCode, area, &id)?;
        for key in app.store.account_sessions(Site::Kaigo, &id, now)? {
            app.store.remove_session(&key)?;
        }
        account = app.store.account(Site::Kaigo, &id)?.unwrap_or(account);
    }
    Ok(Ok(Issued {
        account,
        addressee: name,
        password,
        until,
        new_office,
    }))
}

/// The letter's page, printed on A4 and sent by post.
pub fn letter_page(app: &App, issued: &Issued, now: u64) -> maud::Markup {
    let office = issued.account.office.as_ref();
    let view = LetterView {
        office_name: &issued.addressee,
        postal_address: office
            .and_then(|o| o.postal_address.as_deref())
            .unwrap_or_default(),
        user_id: &issued.account.id,
        password: &issued.password,
        // `until` is the first second after the last day.
        until: &clock::date_time(issued.until - 1, app.utc_offset)[..10],
        issued: &clock::date_time(now, app.utc_offset)[..10],
        login_url: &format!("{}/kaigo/login", app.config.public_base()),
        helpdesk: &app.config.kaigo.helpdesk,
    };
    page::letter(&view)
}

/// `/admin/postal`: the waiting requests, oldest first; `?prefecture=`.
pub fn queue(c: &Console<'_>) -> Outcome {
    let only = c.query("prefecture");
    let requests: Vec<PostalRequest> = c
        .app
        .store
        .postal_requests()?
        .into_iter()
        .filter(|r| only.is_empty() || r.prefecture == only)
        .collect();
    let ids: Vec<String> = requests.iter().map(user_id).collect();
    let times: Vec<String> = requests
        .iter()
        .map(|r| clock::date_time(r.created, c.app.utc_offset))
        .collect();
    let rows: Vec<PostalRow<'_>> = requests
        .iter()
        .zip(ids.iter().zip(&times))
        .map(|(r, (id, created))| PostalRow {
            id: r.id,
            created,
            user_id: id,
            prefecture: prefecture_label(&r.prefecture),
            office_name: &r.office_name,
            contact: &r.contact,
        })
        .collect();
    let note = match c.query("done") {
        "rejected" => Some("申請を却下しました。"),
        _ => None,
    };
    Ok(Response::html(page::postal_queue(
        &c.frame(),
        &rows,
        only,
        note,
    )))
}

fn prefecture_label(code: &str) -> &'static str {
    if code.is_empty() {
        "(未入力)"
    } else {
        prefecture_name(&crate::text::JA, code)
    }
}

/// What a request said when its page was drawn: a later request of the
/// same office replaces it under the same id, so a form checks that it
/// acts on what the operator read.
fn version(request: &PostalRequest) -> String {
    let bytes = serde_json::to_vec(request).unwrap_or_default();
    crate::secret::hex(ring::digest::digest(&ring::digest::SHA256, &bytes).as_ref())
}

/// The request a form names, unless it changed since its page was drawn
/// (then its page again, saying so).
fn unchanged(c: &Console<'_>, request: &PostalRequest) -> Result<Option<Response>, StoreError> {
    if crate::secret::constant_time_eq(c.req.field("version"), &version(request)) {
        return Ok(None);
    }
    let message = "申請の内容が更新されました。内容を確認してから、もう一度操作してください。";
    show(c, request, &[message.to_string()]).map(Some)
}

/// The waiting request whose id is `id` as a form or a query gives it.
pub fn waiting(app: &App, id: &str) -> Result<Option<PostalRequest>, StoreError> {
    match id.parse::<u64>() {
        Ok(id) => app.store.postal_request(id),
        Err(_) => Ok(None),
    }
}

fn requested(c: &Console<'_>, id: &str) -> Result<Option<PostalRequest>, StoreError> {
    waiting(c.app, id)
}

fn not_found() -> Response {
    Response::html_status(404, error_page(404, None, crate::text::Lang::Ja))
}

/// A request beside the account it names, with the forms to issue the
/// letter or reject the request.
pub fn request_page(c: &Console<'_>) -> Outcome {
    let Some(request) = requested(c, c.query("id"))? else {
        return Ok(not_found());
    };
    show(c, &request, &[])
}

fn show(c: &Console<'_>, request: &PostalRequest, problems: &[String]) -> Outcome {
    let id = user_id(request);
    let account = c.app.store.account(Site::Kaigo, &id)?;
    let office = account.as_ref().and_then(|a| a.office.as_ref());
    let view = page::PostalRequestView {
        id: request.id,
        version: &version(request),
        user_id: &id,
        office: &request.office,
        prefecture: prefecture_label(&request.prefecture),
        office_name: &request.office_name,
        contact: &request.contact,
        phone: &request.phone,
        created: &clock::date_time(request.created, c.app.utc_offset),
        account: account.as_ref().map(|_| page::Registered {
            office_name: office.and_then(|o| o.name.as_deref()).unwrap_or("(未登録)"),
            postal_address: office
                .and_then(|o| o.postal_address.as_deref())
                .unwrap_or("(未登録)"),
        }),
        ask_totp: account.is_some() && !c.totp_is_fresh(),
        fix_name: c.req.field("office_name"),
        fix_address: c.req.field("postal_address"),
        problems,
    };
    Ok(Response::html(page::postal_request(&c.frame(), &view)))
}

/// Issues the letter and shows it, once. Replacing an account's password
/// cannot be undone: it asks for a fresh TOTP code as other such actions do.
pub fn issue(c: &Console<'_>) -> Outcome {
    let Some(request) = requested(c, c.req.field("id"))? else {
        return Ok(not_found());
    };
    if let Some(page) = unchanged(c, &request)? {
        return Ok(page);
    }
    let existing = c.app.store.account(Site::Kaigo, &user_id(&request))?;
    if existing.is_some() && !c.totp_is_fresh() {
        let checked = c.confirm(None, Some(c.req.field("code")))?;
        if checked != crate::sites::Checked::Right {
            return show(c, &request, &[super::not_confirmed(checked)]);
        }
    }
    let text =
        |name: &str| Some(c.req.field(name).trim().replace("\r\n", "\n")).filter(|t| !t.is_empty());
    let fix = Corrections {
        office_name: text("office_name"),
        postal_address: text("postal_address"),
    };
    let issued = match issue_letter(c.app, &request, &fix, c.now)? {
        Ok(issued) => issued,
        Err(why) => return show(c, &request, &[why.ja().to_string()]),
    };
    let outcome = if issued.new_office {
        "letter issued; account made for a new office"
    } else {
        "letter issued; temporary password set"
    };
    let who = Some((Site::Kaigo, issued.account.id.as_str()));
    let note = c.req.field("reason").trim();
    c.audit(
        "postal_letter_issued",
        who,
        outcome,
        Some(note).filter(|n| !n.is_empty()),
    )?;
    c.app.store.flush()?;
    Ok(Response::html(letter_page(c.app, &issued, c.now)))
}

/// Rejects a request with a reason: it closes, and nothing is sent.
pub fn reject(c: &Console<'_>) -> Outcome {
    let Some(request) = requested(c, c.req.field("id"))? else {
        return Ok(not_found());
    };
    if let Some(page) = unchanged(c, &request)? {
        return Ok(page);
    }
    let reason = c.req.field("reason").trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        return show(
            c,
            &request,
            &["却下の理由を500文字以内で入力してください。".into()],
        );
    }
    if !c.app.store.close_postal_request(&request)? {
        return show(c, &request, &[NotIssued::Closed.ja().into()]);
    }
    let id = user_id(&request);
    c.audit(
        "postal_rejected",
        Some((Site::Kaigo, &id)),
        "rejected",
        Some(reason),
    )?;
    c.app.store.flush()?;
    Ok(Response::see_other("/admin/postal?done=rejected"))
}
