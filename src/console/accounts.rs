//! The console's accounts: search, an account's page, the actions on it
//! (each on a confirm page with a reason, each audited), and new accounts.

use super::Console;
use crate::address;
use crate::clock;
use crate::http::Response;
use crate::mail::templates;
use crate::pages::console::{self as page, AccountRow, AuditRow};
use crate::pages::error_page;
use crate::secret::{Purpose, Token};
use crate::site::{Area, Site};
use crate::sites::{claim_key, Checked, Outcome};
use crate::store::{
    Account, AuditEvent, Link, LinkKind, LinkState, NewAccount, Secret, StoreError,
};

/// The actions on an account: (name in the form, label, what it does, it
/// cannot be undone, or lifts a protection, and asks for a fresh TOTP
/// code).
const ACTIONS: &[(&str, &str, &str, bool)] = &[
    ("unlock", "ロック解除", "ログインの失敗による待ち時間と、本人による「心当たりがない」ロックを解除します。", true),
    ("disable", "無効化", "ログインできなくし、パスワード再設定でも何も送らないようにします。ログイン中のセッションは終了します。", true),
    ("enable", "有効化", "無効化を解除し、ログインとパスワード再設定をできるようにします。", true),
    ("end-sessions", "セッション終了", "このアカウントのログイン中のセッションをすべて終了します。", true),
    ("clear-code", "セキュリティコード解除", "セキュリティコードを解除します。次のログインではセキュリティコードを求めません。", true),
    ("change-email", "メールアドレス変更", "メールアドレス(介護: セキュリティ用メールアドレス)を変更し、古いアドレスと新しいアドレスの両方に通知します。古いアドレスに送ったワンタイムパスワードや再設定リンクと、ログイン中のセッションは無効になります。", true),
    ("send-reset", "パスワード再設定リンク送信", "登録されたメールアドレスに、パスワード再設定用のリンクを送信します。", false),
    ("delete", "削除", "アカウントを削除します。元に戻せません。あなたのパスワードの入力が必要です。", true),
];

/// The last page of a search (from 0): 5,000 accounts in all.
const MAX_PAGE: usize = 99;

/// The longest reason kept.
const MAX_REASON: usize = 500;

fn site_label(site: Site) -> &'static str {
    match site {
        Site::Kaigo => "介護電子請求受付システム",
        Site::Portal => "医療機関等向け総合ポータルサイト",
    }
}

/// A typed prefix of an address, all but its first character hidden.
fn mask_prefix(typed: &str) -> String {
    match typed.split_once('@') {
        Some(_) => mask(typed),
        None => format!("{}***", typed.chars().next().unwrap_or('*')),
    }
}

/// An address with all but its first character and its domain hidden.
pub fn mask(email: &str) -> String {
    match email.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".into(),
    }
}

/// The account's state in a word or two, a wait after failed logins too.
fn state(c: &Console<'_>, a: &Account) -> Result<&'static str, StoreError> {
    let guard = |secret| {
        c.app
            .store
            .login_guard(secret, Area::Site(a.site), &a.id, c.now)
    };
    let waiting = |g: crate::store::LoginGuard| c.now < g.locked_until;
    Ok(if a.disabled {
        "無効"
    } else if a.locked {
        "ロック中(本人による)"
    } else if waiting(guard(Secret::Password)?) || waiting(guard(Secret::SecurityCode)?) {
        "ログイン待ち(失敗が続いたため)"
    } else if !a.has_password() {
        "パスワード未設定"
    } else {
        "有効"
    })
}

/// The account a request names by `site` and `id` (query or form).
fn named(c: &Console<'_>) -> Result<Option<Account>, StoreError> {
    let (site, id) = match c.req.method {
        crate::http::Method::Post => (c.req.field("site"), c.req.field("id")),
        _ => (c.query("site"), c.query("id")),
    };
    let Some(site) = Site::ALL.into_iter().find(|s| s.name() == site) else {
        return Ok(None);
    };
    c.app.store.account(site, id)
}

fn not_found() -> Response {
    Response::html_status(404, error_page(404, None, crate::text::Lang::Ja))
}

/// `/admin`: the search, by prefix of user ID, office number, user name
/// or address.
pub fn search(c: &Console<'_>) -> Outcome {
    let query = crate::sites::normalize_width(c.query("q"));
    // The pages go as far as a person pages; past that, a longer prefix.
    let page_no = c.query("page").parse::<usize>().unwrap_or(0).min(MAX_PAGE);
    let mut found = c.app.store.search_accounts(&query, page_no)?;
    let narrow = page_no == MAX_PAGE && found.more;
    found.more &= !narrow;
    if !query.is_empty() {
        // Who looked up whom: a search by address finds an account as
        // surely as showing the address does. What was typed is kept
        // masked when it is, or begins, an address that was found.
        let typed = address::normalize(&query);
        let by_address = query.contains('@')
            || found.accounts.iter().any(|a| {
                a.email
                    .as_deref()
                    .is_some_and(|e| address::normalize(e).starts_with(&typed))
            });
        let shown = if by_address {
            mask_prefix(&query)
        } else {
            query.clone()
        };
        let ids: Vec<&str> = found
            .accounts
            .iter()
            .take(5)
            .map(|a| a.id.as_str())
            .collect();
        let more = if found.accounts.len() > 5 {
            ", …"
        } else {
            ""
        };
        let outcome = format!("{shown} (page {}): {}{more}", page_no + 1, ids.join(", "));
        c.audit("operator_search", None, &outcome, None)?;
    }
    let masked: Vec<String> = found
        .accounts
        .iter()
        .map(|a| a.email.as_deref().map_or("—".into(), mask))
        .collect();
    let states = found
        .accounts
        .iter()
        .map(|a| state(c, a))
        .collect::<Result<Vec<_>, _>>()?;
    let rows: Vec<AccountRow<'_>> = found
        .accounts
        .iter()
        .zip(masked.iter().zip(states))
        .map(|(a, (email, state))| AccountRow {
            site: a.site.name(),
            site_label: site_label(a.site),
            id: &a.id,
            email,
            state,
        })
        .collect();
    let note = match c.query("done") {
        "delete" => Some("アカウントを削除しました。"),
        "enrolled" => {
            Some("登録が完了しました。次からは、パスワードと認証アプリのコードでログインします。")
        }
        _ if narrow => Some("これより先は表示できません。検索語を長くして絞り込んでください。"),
        _ => None,
    };
    let view = page::Search {
        query: &query,
        page: page_no,
        rows: &rows,
        more: found.more,
        note,
    };
    Ok(Response::html(page::search(&c.frame(), &view)))
}

/// An account's page, its e-mail masked.
pub fn show(c: &Console<'_>) -> Outcome {
    let Some(account) = named(c)? else {
        return Ok(not_found());
    };
    let done = ACTIONS
        .iter()
        .find(|(name, ..)| *name == c.query("done"))
        .map(|(_, label, ..)| format!("{label}を行いました。"));
    account_page(c, &account, false, done.as_deref())
}

/// Shows the account's e-mail in clear, and audits that it was shown.
pub fn reveal(c: &Console<'_>) -> Outcome {
    let Some(account) = named(c)? else {
        return Ok(not_found());
    };
    let who = Some((account.site, account.id.as_str()));
    c.audit("operator_reveal_email", who, "shown", None)?;
    c.app.store.flush()?;
    account_page(c, &account, true, None)
}

fn account_page(c: &Console<'_>, a: &Account, revealed: bool, note: Option<&str>) -> Outcome {
    let (app, now) = (c.app, c.now);
    let area = Area::Site(a.site);
    let mut facts: Vec<(&str, String)> = Vec::new();
    let email = match &a.email {
        Some(e) if revealed => e.clone(),
        Some(e) => mask(e),
        None => "(なし)".into(),
    };
    facts.push(("メールアドレス", email));
    if let Some(office) = &a.office {
        facts.push(("事業所番号", office.number.clone()));
        facts.push(("請求先都道府県", office.prefecture.clone()));
        facts.push(("事業所名", office.name.clone().unwrap_or_default()));
        facts.push(("所在地", office.postal_address.clone().unwrap_or_default()));
    }
    if a.site == Site::Portal {
        let kind = if a.coordinator {
            "取りまとめ者"
        } else {
            "一般"
        };
        facts.push(("種別", kind.into()));
        let code = a.institution.clone().unwrap_or_else(|| "(未登録)".into());
        facts.push(("医療機関等コード", code));
    }
    facts.push(("状態", state(c, a)?.into()));
    let password = match a.temporary_until {
        Some(until) => format!(
            "仮パスワード(書類郵送、{} まで)",
            &clock::date_time(until.saturating_sub(1), app.utc_offset)[..10]
        ),
        None if a.has_password() => "設定済み".into(),
        None => "未設定".into(),
    };
    facts.push(("パスワード", password));
    if a.must_register_email {
        facts.push(("セキュリティ用メールアドレス", "次のログインで登録".into()));
    }
    let guard = |secret| app.store.login_guard(secret, area, &a.id, now);
    let lockout = |g: crate::store::LoginGuard| {
        if now < g.locked_until {
            format!(
                "{} 回失敗、あと {} 分待ち",
                g.failures,
                (g.locked_until - now).div_ceil(60)
            )
        } else {
            format!("{} 回失敗", g.failures)
        }
    };
    facts.push(("ログインの失敗", lockout(guard(Secret::Password)?)));
    if a.site == Site::Kaigo {
        let set = if a.security_code_phc.is_some() {
            "設定あり"
        } else {
            "設定なし"
        };
        facts.push(("セキュリティコード", set.into()));
        facts.push((
            "セキュリティコードの失敗",
            lockout(guard(Secret::SecurityCode)?),
        ));
    }
    facts.push(live_codes(c, a)?);
    let sessions = app.store.account_sessions(a.site, &a.id, now)?.len();
    facts.push(("ログイン中のセッション", format!("{sessions} 件")));
    let recent = app.store.account_audit(a.site, &a.id, 20)?;
    let last_login = app
        .store
        .account_audit(a.site, &a.id, 200)?
        .into_iter()
        .find(|e| e.event == "login" && e.outcome == "ok")
        .map_or("(記録なし)".into(), |e| {
            clock::date_time(e.time, app.utc_offset)
        });
    facts.push(("最終ログイン", last_login));
    let rows = audit_rows(c, &recent);
    let actions: Vec<(&str, &str)> = ACTIONS
        .iter()
        .filter(|(name, ..)| applies(a, name))
        .map(|(name, label, ..)| (*name, *label))
        .collect();
    let view = page::AccountPage {
        site: a.site.name(),
        site_label: site_label(a.site),
        id: &a.id,
        facts: &facts,
        masked: !revealed && a.email.is_some(),
        actions: &actions,
        recent: &rows,
        note,
    };
    Ok(Response::html(page::account(&c.frame(), &view)))
}

/// How many one-time passwords (kaigo) or reset links (portal) the
/// account's own claim holds live: how many, never which.
fn live_codes(c: &Console<'_>, a: &Account) -> Result<(&'static str, String), StoreError> {
    let (app, now) = (c.app, c.now);
    let guard = app.store.claim_guard(&own_claim(c, a)?, now)?;
    Ok(match a.site {
        Site::Kaigo => {
            let live = guard.otps.iter().filter(|o| o.expires > now).count();
            ("有効なワンタイムパスワード", format!("{live} 件"))
        }
        Site::Portal => {
            let lifetime = app.config.portal.link_lifetime_secs;
            let live = guard.issued.iter().filter(|t| **t + lifetime > now).count();
            ("有効期間内の再設定リンク", format!("{live} 件"))
        }
    })
}

/// The key of the claim an account's owner makes with its own address (as
/// the sites key it): its guard holds the account's live codes and sends.
fn own_claim(c: &Console<'_>, a: &Account) -> Result<String, StoreError> {
    let email = address::normalize(a.email.as_deref().unwrap_or_default());
    match &a.office {
        Some(office) => claim_key(c.app, a.site, &[&office.number, &office.prefecture, &email]),
        None => claim_key(c.app, a.site, &[&a.id, &email]),
    }
}

pub fn audit_rows<'e>(c: &Console<'_>, events: &'e [AuditEvent]) -> Vec<AuditRow<'e>> {
    events
        .iter()
        .map(|e| AuditRow {
            time: clock::date_time(e.time, c.app.utc_offset),
            site: e.site.map_or("", |s| s.name()),
            event: &e.event,
            account: e.account.as_deref().unwrap_or_default(),
            client: &e.client,
            outcome: &e.outcome,
            operator: e.operator.as_deref().unwrap_or_default(),
            reason: e.reason.as_deref().unwrap_or_default(),
        })
        .collect()
}

/// Whether an action makes sense for the account as it is.
fn applies(a: &Account, action: &str) -> bool {
    match action {
        "disable" => !a.disabled,
        "enable" => a.disabled,
        "clear-code" => a.security_code_phc.is_some(),
        "send-reset" => {
            a.site == Site::Portal && a.is_enabled() && a.email.is_some() && !a.is_provisional()
        }
        _ => true,
    }
}

/// The confirm page of an action: what it does, a reason, and what else
/// it needs (a fresh TOTP code, the operator's password, a new address).
pub fn confirm(c: &Console<'_>) -> Outcome {
    let Some(account) = named(c)? else {
        return Ok(not_found());
    };
    confirm_page(c, &account, c.query("do"), &[])
}

fn confirm_page(c: &Console<'_>, a: &Account, action: &str, problems: &[String]) -> Outcome {
    let Some(&(name, label, explain, destructive)) = ACTIONS
        .iter()
        .find(|(name, ..)| *name == action)
        .filter(|(name, ..)| applies(a, name))
    else {
        return Ok(not_found());
    };
    let view = page::Confirm {
        site: a.site.name(),
        id: &a.id,
        action: name,
        label,
        explain,
        ask_totp: destructive && !c.totp_is_fresh(),
        ask_password: name == "delete",
        ask_email: name == "change-email",
        reason: c.req.field("reason"),
        email: c.req.field("email"),
        problems,
    };
    Ok(Response::html(page::confirm(&c.frame(), &view)))
}

/// Carries out a confirmed action: the reason given, a fresh TOTP code for
/// what cannot be undone, the operator's password for a deletion. Each is
/// audited with the operator's name and the reason.
pub fn act(c: &Console<'_>) -> Outcome {
    let Some(account) = named(c)? else {
        return Ok(not_found());
    };
    let action = c.req.field("do");
    let Some(&(name, _, _, destructive)) = ACTIONS
        .iter()
        .find(|(name, ..)| *name == action)
        .filter(|(name, ..)| applies(&account, name))
    else {
        return Ok(not_found());
    };
    let reason = c.req.field("reason").trim();
    let mut problems: Vec<String> = reason_problem(reason).into_iter().collect();
    let email = c.field("email");
    if name == "change-email" && !address::is_plausible(&email) {
        problems.push("新しいメールアドレスを正しく入力してください。".into());
    }
    // Deleting asks for the password; what cannot be undone, for a code
    // when the last is over five minutes old: checked as one attempt.
    let password = (name == "delete").then(|| c.req.field("password"));
    let code = (destructive && !c.totp_is_fresh()).then(|| c.req.field("code"));
    if problems.is_empty() && (password.is_some() || code.is_some()) {
        let checked = c.confirm(password, code)?;
        if checked != Checked::Right {
            problems.push(super::not_confirmed(checked));
        }
    }
    if !problems.is_empty() {
        return confirm_page(c, &account, name, &problems);
    }
    let done = run(c, &account, name, &email, reason)?;
    if !done {
        return confirm_page(
            c,
            &account,
            name,
            &["アカウントの状態が変わったため、行えませんでした。".into()],
        );
    }
    c.app.store.flush()?;
    Ok(Response::see_other(&match name {
        "delete" => "/admin?done=delete".to_string(),
        _ => account_url(&account, name),
    }))
}

/// The action itself; false when the account changed under it.
fn run(
    c: &Console<'_>,
    a: &Account,
    action: &str,
    email: &str,
    reason: &str,
) -> Result<bool, StoreError> {
    let (app, now, site, id) = (c.app, c.now, a.site, a.id.as_str());
    let area = Area::Site(site);
    let audit =
        |event: &str, outcome: &str| c.audit(event, Some((site, id)), outcome, Some(reason));
    let change = |f: &dyn Fn(&mut Account) -> bool| -> Result<bool, StoreError> {
        Ok(app.store.update_account(site, id, |a| f(a))? == Some(true))
    };
    match action {
        "unlock" => {
            change(&|a| {
                a.locked = false;
                true
            })?;
            app.store.remove_login_guard(Secret::Password, area, id)?;
            app.store
                .remove_login_guard(Secret::SecurityCode, area, id)?;
            audit("operator_unlock", "unlocked")?;
        }
        "disable" | "enable" => {
            let disable = action == "disable";
            if !change(&|a| {
                let changes = a.disabled != disable;
                a.disabled = disable;
                changes
            })? {
                return Ok(false);
            }
            let ended = if disable { end_sessions(c, a)? } else { 0 };
            let outcome = if disable {
                format!("disabled; {ended} sessions ended")
            } else {
                "enabled".into()
            };
            audit(&format!("operator_{action}"), &outcome)?;
        }
        "end-sessions" => {
            let ended = end_sessions(c, a)?;
            audit("operator_end_sessions", &format!("{ended} sessions ended"))?;
        }
        "clear-code" => {
            change(&|a| {
                a.security_code_phc = None;
                true
            })?;
            app.store
                .remove_login_guard(Secret::SecurityCode, area, id)?;
            audit("operator_clear_security_code", "cleared")?;
        }
        "change-email" => {
            let old = a.email.clone();
            let new = email.to_string();
            // What went to the old address (codes, links) dies, and so do
            // the sessions: the generation moves on.
            if !change(&|a| {
                a.email = Some(new.clone());
                a.must_register_email = false;
                a.generation += 1;
                true
            })? {
                return Ok(false);
            }
            let (name, contact) = match site {
                Site::Kaigo => ("介護電子請求受付システム", &app.config.kaigo.helpdesk),
                Site::Portal => (
                    "医療機関等向け総合ポータルサイト",
                    &app.config.portal.contact,
                ),
            };
            let when = clock::date_time(now, app.utc_offset);
            let mails = match site {
                Site::Kaigo => "ワンタイムパスワードやお知らせのメール",
                Site::Portal => "パスワード変更用URLやお知らせのメール",
            };
            let letter =
                templates::address_changed(&crate::text::JA, name, id, &when, mails, contact);
            let useful = now..now + crate::clock::DAY;
            let from = match site {
                Site::Portal => app.config.portal.mail_from.as_deref(),
                Site::Kaigo => None,
            };
            for to in old.iter().chain(std::iter::once(&new)) {
                if !crate::store::is_provisional_address(to) {
                    app.outbox
                        .send(&app.store, site, from, to, &letter, useful.clone())?;
                }
            }
            let outcome = format!(
                "{} → {}",
                old.as_deref().map_or("(none)".into(), mask),
                mask(&new)
            );
            audit("operator_change_email", &outcome)?;
        }
        "send-reset" => {
            let Some(to) = a.email.as_deref() else {
                return Ok(false);
            };
            let token = Token::generate();
            let lifetime = app.config.portal.link_lifetime_secs;
            let link = Link {
                kind: LinkKind::Reset,
                site,
                account: a.id.clone(),
                generation: a.generation,
                state: LinkState::Live,
                lang: crate::text::Lang::Ja,
            };
            app.store.put_link(
                &app.digest(Purpose::Link, token.expose())?,
                &link,
                now + lifetime,
            )?;
            let letter = crate::sites::portal::reset_letter(app, &crate::text::JA, &token);
            let from = app.config.portal.mail_from.as_deref();
            // Counted with the owner's own sends: the account's page shows
            // it, and the owner's next request waits out the cooldown.
            let window = app.config.guard.window_secs;
            app.store
                .update_claim_guard(&own_claim(c, a)?, now, window, |g| g.issued.push(now))?;
            app.outbox
                .send(&app.store, site, from, to, &letter, now..now + lifetime)?;
            app.metrics.issued(crate::metrics::Issued::ResetLink);
            audit("operator_send_reset_link", "sent")?;
        }
        "delete" => {
            end_sessions(c, a)?;
            if !app.store.delete_account(site, id)? {
                return Ok(false);
            }
            audit("operator_delete", "deleted")?;
        }
        _ => return Ok(false),
    }
    Ok(true)
}

fn end_sessions(c: &Console<'_>, a: &Account) -> Result<usize, StoreError> {
    let keys = c.app.store.account_sessions(a.site, &a.id, c.now)?;
    for key in &keys {
        c.app.store.remove_session(key)?;
    }
    Ok(keys.len())
}

pub fn new_page(c: &Console<'_>) -> Outcome {
    new_form(c, &[])
}

fn new_form(c: &Console<'_>, problems: &[String]) -> Outcome {
    let r = c.req;
    let view = page::NewAccountForm {
        site: r.field("site"),
        office: r.field("office"),
        prefecture: r.field("prefecture"),
        office_name: r.field("office_name"),
        postal_address: r.field("postal_address"),
        user: r.field("user"),
        institution: r.field("institution"),
        email: r.field("email"),
        coordinator: r.field("coordinator") == "1",
        reason: r.field("reason"),
        problems,
    };
    Ok(Response::html(page::new_account(&c.frame(), &view)))
}

/// Creates an account with no password: a letter or a link sets one.
pub fn create(c: &Console<'_>) -> Outcome {
    let site = match c.req.field("site") {
        "portal" => Site::Portal,
        _ => Site::Kaigo,
    };
    let text =
        |name: &str| Some(c.req.field(name).trim().replace("\r\n", "\n")).filter(|t| !t.is_empty());
    let new = NewAccount {
        site: Some(site),
        office: c.field("office"),
        prefecture: c.field("prefecture"),
        office_name: text("office_name"),
        postal_address: text("postal_address"),
        user: c.req.field("user").trim().to_string(),
        institution: Some(c.field("institution")).filter(|i| !i.is_empty()),
        email: Some(c.field("email")).filter(|e| !e.is_empty()),
        coordinator: c.req.field("coordinator") == "1",
    };
    let reason = c.req.field("reason").trim();
    let mut problems: Vec<String> = reason_problem(reason).into_iter().collect();
    let account = match new.build(site, String::new()) {
        Ok(a) => Some(a),
        Err(problem) => {
            problems.push(problem.ja().into());
            None
        }
    };
    let Some(account) = account.filter(|_| problems.is_empty()) else {
        return new_form(c, &problems);
    };
    if !c.app.store.create_account(&account)? {
        return new_form(c, &[format!("{} はすでに存在します。", account.id)]);
    }
    c.audit(
        "operator_create_account",
        Some((site, &account.id)),
        "created without a password",
        Some(reason),
    )?;
    c.app.store.flush()?;
    Ok(Response::see_other(&account_url(&account, "")))
}

/// The account's page, with `done` naming the action just done.
fn account_url(a: &Account, done: &str) -> String {
    let id: String = url::form_urlencoded::byte_serialize(a.id.as_bytes()).collect();
    let done = if done.is_empty() {
        String::new()
    } else {
        format!("&done={done}")
    };
    format!("/admin/account?site={}&id={id}{done}", a.site.name())
}

/// What is wrong with an operator's reason, if anything: one is needed.
fn reason_problem(reason: &str) -> Option<String> {
    (reason.is_empty() || reason.chars().count() > MAX_REASON)
        .then(|| format!("理由を{MAX_REASON}文字以内で入力してください。"))
}
