//! The kaigo site (`/kaigo`): login with the optional security code, the
//! logged-in menu, and the self-service recovery of the seed as a state
//! machine over `KaigoFlow`: office number + security address → one-time
//! password by mail → new password, security code cleared.

use super::{
    audit, change_password, check_guarded, check_login, claim_key, current_session,
    normalize_width, not_me, not_me_link, open_session, save_session, serve_site, Checked, Outcome,
    Visit,
};
use crate::app::App;
use crate::clock;
use crate::http::{Method, Request, Response};
use crate::mail::templates;
use crate::pages::kaigo::{self as page, Frame, PostalForm};
use crate::policy;
use crate::secret::{constant_time_eq, Otp, Purpose, Token};
use crate::store::{
    Account, Flow, KaigoFlow, LiveOtp, PostalRequest, Secret, Session, SessionState, Site,
    StoreError, DAY,
};

const SITE: Site = Site::Kaigo;

/// Every path of the site with the methods it answers: the router's 404/405.
const ROUTES: &[(&str, &str)] = &[
    ("/kaigo", "GET, HEAD"),
    ("/kaigo/login", "GET, HEAD, POST"),
    ("/kaigo/login/code", "GET, HEAD, POST"),
    ("/kaigo/menu", "GET, HEAD"),
    ("/kaigo/security-code", "GET, HEAD, POST"),
    ("/kaigo/logout", "POST"),
    ("/kaigo/recovery", "GET, HEAD, POST"),
    ("/kaigo/recovery/auth", "GET, HEAD, POST"),
    ("/kaigo/recovery/prefecture", "GET, HEAD, POST"),
    ("/kaigo/recovery/otp", "GET, HEAD, POST"),
    ("/kaigo/recovery/reset", "GET, HEAD, POST"),
    ("/kaigo/recovery/done", "GET, HEAD"),
    ("/kaigo/recovery/postal", "GET, HEAD, POST"),
    ("/kaigo/recovery/postal/done", "GET, HEAD"),
    ("/kaigo/not-me", "GET, HEAD, POST"),
];

/// One request's view of the site.
struct Ctx<'a> {
    app: &'a App,
    req: &'a Request,
    now: u64,
    visit: &'a Visit,
    clock: String,
}

impl Ctx<'_> {
    fn frame(&self) -> Frame<'_> {
        Frame {
            clock: &self.clock,
            csrf: &self.visit.csrf,
            banner: self.app.banner.as_deref(),
        }
    }

    fn audit(&self, event: &str, account: Option<&str>, outcome: &str) -> Result<(), StoreError> {
        audit(self.app, self.req, self.now, SITE, event, account, outcome)
    }

    fn flow(&self) -> Result<Option<KaigoFlow>, StoreError> {
        Ok(self
            .app
            .store
            .flow(&self.visit.key, self.now)?
            .and_then(|f| match f {
                Flow::Kaigo(f) => Some(f),
                _ => None,
            }))
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

/// Answers a request under `/kaigo`.
pub fn handle(app: &App, req: &Request, now: u64) -> Outcome {
    serve_site(app, req, now, SITE, ROUTES, |visit, path, method| {
        let ctx = Ctx {
            app,
            req,
            now,
            visit,
            clock: clock::time_of_day(now, app.utc_offset),
        };
        match (method, path) {
            (_, "/kaigo/not-me") => not_me(app, req, now, SITE, visit, method),
            (Method::Post, _) => post(&ctx, path),
            _ => get(&ctx, path),
        }
    })
}

fn get(ctx: &Ctx<'_>, path: &str) -> Outcome {
    let f = ctx.frame();
    Ok(match path {
        "/kaigo" => Response::html(page::top_menu(&f)),
        "/kaigo/login" => Response::html(page::login(&f, "", None)),
        "/kaigo/login/code" => match session(ctx)? {
            Some((s, _)) if matches!(s.state, SessionState::AwaitingSecurityCode { .. }) => {
                Response::html(page::security_code_login(&f, None))
            }
            _ => Response::see_other("/kaigo/login"),
        },
        "/kaigo/menu" => match active_session(ctx)? {
            Some(account) => {
                let notice = ctx
                    .req
                    .query
                    .iter()
                    .find(|(k, _)| k == "done")
                    .map(|(_, v)| match v.as_str() {
                        "set" => "セキュリティコードを設定しました。",
                        "clear" => "セキュリティコードを解除しました。",
                        _ => "",
                    });
                let notice = notice.filter(|n| !n.is_empty());
                Response::html(page::menu(
                    &f,
                    &account.id,
                    account.security_code_phc.is_some(),
                    notice,
                ))
            }
            None => Response::see_other("/kaigo/login"),
        },
        "/kaigo/security-code" => match active_session(ctx)? {
            Some(account) => Response::html(page::security_code_settings(
                &f,
                account.security_code_phc.is_some(),
                &[],
            )),
            None => Response::see_other("/kaigo/login"),
        },
        "/kaigo/recovery" => Response::html(page::recovery_choice(&f, None)),
        "/kaigo/recovery/auth" => Response::html(page::recovery_auth(&f, "", "", &[])),
        "/kaigo/recovery/prefecture" => match ctx.flow()? {
            Some(KaigoFlow::ChoosingPrefecture { prefectures, .. }) => {
                Response::html(page::recovery_prefecture(&f, &prefectures, None))
            }
            other => stopped(ctx, other, 2),
        },
        "/kaigo/recovery/otp" => match ctx.flow()? {
            Some(KaigoFlow::AwaitingOtp { email, .. }) => {
                Response::html(page::recovery_otp(&f, &email, otp_minutes(ctx), None))
            }
            Some(KaigoFlow::Verified { .. }) => Response::see_other("/kaigo/recovery/reset"),
            other => stopped(ctx, other, 3),
        },
        "/kaigo/recovery/reset" => match ctx.flow()? {
            Some(KaigoFlow::Verified { account, .. }) => {
                Response::html(page::recovery_reset(&f, &account, &[]))
            }
            other => stopped(ctx, other, 4),
        },
        "/kaigo/recovery/done" => match ctx.flow()? {
            Some(KaigoFlow::Completed { .. }) => Response::html(page::recovery_done(&f)),
            _ => Response::see_other("/kaigo/recovery"),
        },
        "/kaigo/recovery/postal" => {
            Response::html(page::postal_form(&f, &PostalForm::default(), &[]))
        }
        "/kaigo/recovery/postal/done" => Response::html(page::postal_done(&f)),
        _ => Response::error(404),
    })
}

fn post(ctx: &Ctx<'_>, path: &str) -> Outcome {
    match path {
        "/kaigo/login" => login(ctx),
        "/kaigo/login/code" => login_security_code(ctx),
        "/kaigo/security-code" => set_security_code(ctx),
        "/kaigo/logout" => {
            ctx.app.store.remove_session(&ctx.visit.key)?;
            Ok(Response::see_other("/kaigo/login"))
        }
        "/kaigo/recovery" => Ok(match ctx.req.field("method") {
            "mail" => {
                // A new recovery starts from nothing.
                ctx.app.store.remove_flow(&ctx.visit.key)?;
                Response::see_other("/kaigo/recovery/auth")
            }
            "postal" => Response::see_other("/kaigo/recovery/postal"),
            _ => Response::html(page::recovery_choice(
                &ctx.frame(),
                Some("メニューを選択してください。"),
            )),
        }),
        "/kaigo/recovery/auth" => start_recovery(ctx),
        "/kaigo/recovery/prefecture" => choose_prefecture(ctx),
        "/kaigo/recovery/otp" => check_otp(ctx),
        "/kaigo/recovery/reset" => reset_password(ctx),
        "/kaigo/recovery/postal" => request_postal(ctx),
        _ => Ok(Response::error(404)),
    }
}

// ----- login ---------------------------------------------------------------

const LOGIN_FAILED: &str = "ユーザIDまたはパスワードが正しくありません。";

fn login(ctx: &Ctx<'_>) -> Outcome {
    let app = ctx.app;
    let user_id = normalize_width(ctx.req.field("user_id")).to_ascii_uppercase();
    let password = ctx.req.field("password");
    let known = is_user_id(&user_id);
    let account = if known {
        app.store.account(SITE, &user_id)?
    } else {
        None
    };
    // Failures count only for names of the right form: nothing else can
    // ever be an account.
    let checked = if known {
        check_login(
            app,
            ctx.req,
            ctx.now,
            (SITE, &user_id),
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
        return Ok(Response::html(page::login(
            &ctx.frame(),
            &user_id,
            Some(LOGIN_FAILED),
        )));
    };
    let state = match account.security_code_phc {
        Some(_) => SessionState::AwaitingSecurityCode {
            attempts_left: app.config.session.security_code_attempts,
        },
        None => SessionState::Active,
    };
    let next = match state {
        SessionState::Active => "/kaigo/menu",
        SessionState::AwaitingSecurityCode { .. } => "/kaigo/login/code",
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
    let who = (Secret::SecurityCode, SITE, account.id.as_str());
    match check_guarded(app, ctx.req, ctx.now, who, right, "security_code")? {
        Checked::Right => {
            s.state = SessionState::Active;
            save_session(app, ctx.visit, &s, ctx.now)?;
            ctx.audit("login", Some(&account.id), "ok")?;
            Ok(Response::see_other("/kaigo/menu"))
        }
        Checked::Waiting(secs) => {
            app.store.remove_session(&ctx.visit.key)?;
            let message = format!(
                "セキュリティコードの入力誤りが続いたため、しばらくの間ログインできません。約{}分後にもう一度ログインしてください。",
                secs.div_ceil(60)
            );
            Ok(Response::html(page::login(
                &ctx.frame(),
                "",
                Some(&message),
            )))
        }
        Checked::Wrong if attempts_left <= 1 => {
            app.store.remove_session(&ctx.visit.key)?;
            let message =
                "セキュリティコードの入力誤りが上限に達しました。もう一度ログインしてください。";
            Ok(Response::html(page::login(&ctx.frame(), "", Some(message))))
        }
        Checked::Wrong => {
            s.state = SessionState::AwaitingSecurityCode {
                attempts_left: attempts_left - 1,
            };
            save_session(app, ctx.visit, &s, ctx.now)?;
            Ok(Response::html(page::security_code_login(
                &ctx.frame(),
                Some("セキュリティコードが正しくありません。"),
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
        problems.push("現在のパスワードが正しくありません。".to_string());
    }
    if action == "set" {
        if !(4..=16).contains(&code.len()) || !code.bytes().all(|b| b.is_ascii_alphanumeric()) {
            problems.push("セキュリティコードは半角英数字4文字～16文字で入力してください。".into());
        }
        if code != ctx.req.field("code_confirm") {
            problems.push(
                "新しいセキュリティコードと新しいセキュリティコード(確認用)が一致しません。".into(),
            );
        }
    } else if action != "clear" || account.security_code_phc.is_none() {
        problems.push("操作を選択してください。".into());
    }
    let Some(mut account) = checked.filter(|_| problems.is_empty()) else {
        let has = account.security_code_phc.is_some();
        return Ok(Response::html(page::security_code_settings(
            &ctx.frame(),
            has,
            &problems,
        )));
    };
    account.security_code_phc = (action == "set").then(|| app.hasher.hash(code));
    app.store.put_account(&account)?;
    ctx.audit("security_code_changed", Some(&account.id), action)?;
    Ok(Response::see_other(&format!("/kaigo/menu?done={action}")))
}

/// `KJ` + 2-digit prefecture + 10-digit office number.
fn is_user_id(s: &str) -> bool {
    s.len() == 14 && s.starts_with("KJ") && s[2..].bytes().all(|b| b.is_ascii_digit())
}

// ----- recovery --------------------------------------------------------------

fn otp_minutes(ctx: &Ctx<'_>) -> u64 {
    ctx.app.config.kaigo.otp_lifetime_secs.div_ceil(60)
}

/// The page for a flow that is missing or cannot take this step.
fn stopped(ctx: &Ctx<'_>, flow: Option<KaigoFlow>, step: usize) -> Response {
    let (title, message) = match flow {
        None => (
            "有効期限切れ",
            "画面の有効期限が切れました。お手数ですが、最初からやり直してください。",
        ),
        Some(KaigoFlow::Failed) => (
            "ワンタイムパスワード入力",
            "ワンタイムパスワードが無効になりました。お手数ですが、最初からやり直してください。",
        ),
        Some(KaigoFlow::Completed { .. }) => (
            "処理終了",
            "ログイン情報の再設定は完了しています。新しいパスワードでログインしてください。",
        ),
        Some(KaigoFlow::Verified { .. }) => (
            "ワンタイムパスワード入力",
            "このワンタイムパスワードは既に使用されています。",
        ),
        Some(_) => (
            "操作を続行できません",
            "この画面には進めません。お手数ですが、最初からやり直してください。",
        ),
    };
    Response::html(page::recovery_stopped(&ctx.frame(), step, title, message))
}

fn normalize_email(s: &str) -> String {
    s.trim().to_ascii_lowercase()
}

/// Step 2: office number and security address.
fn start_recovery(ctx: &Ctx<'_>) -> Outcome {
    let office = normalize_width(ctx.req.field("office"));
    let email = normalize_width(ctx.req.field("email"));
    let mut problems = Vec::new();
    if !is_office_number(&office) {
        problems.push("事業所番号は半角数字10桁で入力してください。".to_string());
    }
    if !is_plausible_email(&email) {
        problems.push("セキュリティ用メールアドレスを正しく入力してください。".to_string());
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
        return Ok(stopped(ctx, ctx.flow()?, 2));
    };
    let chosen = ctx.req.field("prefecture");
    if !prefectures.iter().any(|p| p == chosen) {
        let page = page::recovery_prefecture(
            &ctx.frame(),
            &prefectures,
            Some("請求先都道府県を選択してください。"),
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
/// address), so the limits below apply to them alike: at most
/// `max_live_otps` live codes (a new one revokes the oldest), `otps_per_day`
/// a day, none within `send_cooldown_secs` of the last; a code not sent
/// leaves the flow waiting for the one already mailed.
fn issue_otp(
    ctx: &Ctx<'_>,
    office: &str,
    prefecture: &str,
    email: &str,
    candidate: Option<Account>,
) -> Outcome {
    let app = ctx.app;
    let now = ctx.now;
    let limits = &app.config.guard;
    let lifetime = app.config.kaigo.otp_lifetime_secs;
    let matched = candidate
        .filter(|a| a.email.as_deref().map(normalize_email) == Some(normalize_email(email)));
    let claim = claim_key(app, SITE, &[office, prefecture, &normalize_email(email)])?;
    let otp = Otp::generate();
    let fresh = LiveOtp {
        id: Token::generate().expose()[..16].to_string(),
        digest: app.digest(Purpose::Otp, otp.expose())?,
        expires: now + lifetime,
        attempts_left: app.config.kaigo.otp_attempts,
    };
    let (waiting_for, sent) =
        app.store
            .update_claim_guard(&claim, now, limits.window_secs, |g| {
                g.issued.retain(|t| t + limits.window_secs > now);
                g.otps.retain(|o| o.expires > now && o.attempts_left > 0);
                let cooling = g
                    .issued
                    .last()
                    .is_some_and(|t| now < t + limits.send_cooldown_secs);
                if cooling || g.issued.len() >= limits.otps_per_day {
                    let newest = g.otps.last().map(|o| o.id.clone());
                    return (newest.unwrap_or_else(|| fresh.id.clone()), false);
                }
                g.issued.push(now);
                g.otps.push(fresh.clone());
                while g.otps.len() > limits.max_live_otps {
                    g.otps.remove(0);
                }
                (fresh.id.clone(), true)
            })?;
    // The letter is made on both branches; without a match it goes to the
    // outbox as a decoy that is never sent (same work, same time).
    let letter = templates::kaigo_otp(
        otp.expose(),
        lifetime.div_ceil(60),
        &app.config.kaigo.helpdesk,
    );
    match (&matched, sent) {
        (Some(account), true) => {
            let to = account.email.as_deref().unwrap_or_default();
            app.outbox
                .send(&app.store, SITE, None, to, &letter, now..now + lifetime)?;
            ctx.audit("otp_issued", Some(&account.id), "sent")?;
        }
        (Some(account), false) => {
            app.outbox
                .send_decoy(&app.store, SITE, email, &letter, now..now + lifetime)?;
            ctx.audit(
                "otp_issued",
                Some(&account.id),
                "send suppressed: cooldown or daily limit",
            )?;
        }
        (None, _) => {
            app.outbox
                .send_decoy(&app.store, SITE, email, &letter, now..now + lifetime)?;
            ctx.audit("otp_issued", None, "no matching account; not sent")?;
        }
    }
    let flow = KaigoFlow::AwaitingOtp {
        email: email.to_string(),
        generation: matched.as_ref().map_or(0, |a| a.generation),
        account: matched.map(|a| a.id),
        claim,
        otp_id: waiting_for,
    };
    ctx.put_flow(flow, lifetime.max(ctx.flow_lifetime()))?;
    // On disk before the page says the code was sent, so a crash cannot
    // lose the queued mail. Flushed on both branches: an fsync on the
    // matching one only would tell by its time that the address matched.
    app.store.flush()?;
    Ok(Response::see_other("/kaigo/recovery/otp"))
}

/// What entering a code did to it.
enum Entered {
    /// Right: the code is used up.
    Right,
    /// Wrong, with the entries left (0: the code died).
    Wrong(u32),
    Expired,
    /// Revoked, used, or killed by wrong entries in another flow.
    Gone,
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
    }) = flow
    else {
        return Ok(stopped(ctx, flow, 3));
    };
    let f = ctx.frame();
    let minutes = otp_minutes(ctx);
    let entered = normalize_width(ctx.req.field("otp"));
    if entered.len() != 6 || !entered.bytes().all(|b| b.is_ascii_digit()) {
        // Not a guess at the code: no attempt is spent.
        let message = "ワンタイムパスワードは6桁の数字を半角で入力してください。";
        return Ok(Response::html(page::recovery_otp(
            &f,
            &email,
            minutes,
            Some(message),
        )));
    }
    let digest = app.digest(Purpose::Otp, &entered)?;
    let now = ctx.now;
    let window = app.config.guard.window_secs;
    let result = app.store.update_claim_guard(&claim, now, window, |g| {
        let Some(i) = g.otps.iter().position(|o| o.id == otp_id) else {
            return Entered::Gone;
        };
        if now >= g.otps[i].expires {
            g.otps.remove(i);
            return Entered::Expired;
        }
        if constant_time_eq(&digest, &g.otps[i].digest) {
            g.otps.remove(i);
            return Entered::Right;
        }
        let otp = &mut g.otps[i];
        otp.attempts_left = otp.attempts_left.saturating_sub(1);
        let left = otp.attempts_left;
        if left == 0 {
            g.otps.remove(i);
        }
        Entered::Wrong(left)
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
    let stop = |message: &str| -> Outcome {
        ctx.put_flow(KaigoFlow::Failed, ctx.flow_lifetime())?;
        Ok(Response::html(page::recovery_stopped(
            &f,
            3,
            "ワンタイムパスワード入力",
            message,
        )))
    };
    match (result, current) {
        (Entered::Right, Some(account)) => {
            // The right to set a password moves to a new cookie, as a login
            // does: a cookie planted in the browser before the code was
            // entered is worth nothing afterwards.
            let fresh = Visit::new(app, SITE)?;
            let verified = KaigoFlow::Verified {
                account: account.id.clone(),
                generation,
            };
            let expires = now + ctx.flow_lifetime();
            app.store
                .put_flow(&fresh.key, &Flow::Kaigo(verified), expires)?;
            app.store.remove_flow(&ctx.visit.key)?;
            ctx.audit("otp_accepted", Some(&account.id), "ok")?;
            Ok(fresh.set_on(app, Response::see_other("/kaigo/recovery/reset")))
        }
        (Entered::Expired, _) => {
            ctx.audit("otp_failed", account.as_deref(), "expired")?;
            stop("ワンタイムパスワードの有効期間が過ぎています。お手数ですが、最初からやり直してください。")
        }
        (Entered::Wrong(0), _) => {
            ctx.audit("otp_failed", account.as_deref(), "wrong code; code dead")?;
            stop("ワンタイムパスワードの入力誤りが上限に達したため、ワンタイムパスワードは無効になりました。お手数ですが、最初からやり直してください。")
        }
        (Entered::Wrong(left), _) => {
            ctx.audit(
                "otp_failed",
                account.as_deref(),
                &format!("wrong code; {left} left"),
            )?;
            let message =
                format!("ワンタイムパスワードが正しくありません。(あと{left}回入力できます)");
            Ok(Response::html(page::recovery_otp(
                &f,
                &email,
                minutes,
                Some(&message),
            )))
        }
        // Gone, or right for an account that changed since.
        _ => {
            ctx.audit("otp_failed", account.as_deref(), "code revoked or used")?;
            stop("ワンタイムパスワードが無効になりました。お手数ですが、最初からやり直してください。")
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
    }) = flow
    else {
        return Ok(stopped(ctx, flow, 4));
    };
    let Some(mut account) = app
        .store
        .account(SITE, &id)?
        .filter(|a| a.generation == generation)
    else {
        return Ok(stopped(ctx, None, 4));
    };
    let password = ctx.req.field("password");
    let broken = policy::check_kaigo(
        app.config.kaigo.password_policy,
        &account.id,
        password,
        ctx.req.field("password_confirm"),
    );
    if !broken.is_empty() {
        let problems: Vec<String> = broken.iter().map(|v| v.message()).collect();
        return Ok(Response::html(page::recovery_reset(
            &ctx.frame(),
            &account.id,
            &problems,
        )));
    }
    change_password(app, &mut account, password)?;
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
    if let Some(to) = &account.email {
        let url = not_me_link(app, &account, ctx.now)?;
        let when = clock::date_time(ctx.now, app.utc_offset);
        let notice = templates::Notice {
            account: &account.id,
            when: &when,
            client: &ctx.req.client.to_string(),
            not_me_url: &url,
        };
        let letter = templates::kaigo_password_changed(&notice, &app.config.kaigo.helpdesk);
        // The notice is useful for a day; after that it is stale news.
        app.outbox
            .send(&app.store, SITE, None, to, &letter, ctx.now..ctx.now + DAY)?;
    }
    app.store.flush()?;
    Ok(Response::see_other("/kaigo/recovery/done"))
}

/// The postal request (書類郵送): stored for an operator, one per office
/// (a second replaces the first), and rate limited per client.
fn request_postal(ctx: &Ctx<'_>) -> Outcome {
    let req = ctx.req;
    let office = normalize_width(req.field("office"));
    let office_name = req.field("office_name").trim();
    let contact = req.field("contact").trim();
    let phone = normalize_width(req.field("phone"));
    let mut problems = Vec::new();
    if !is_office_number(&office) {
        problems.push("事業所番号は半角数字10桁で入力してください。".to_string());
    }
    if office_name.is_empty()
        || office_name.chars().count() > 100
        || office_name.chars().any(char::is_control)
    {
        problems.push("事業所名を100文字以内で入力してください。".to_string());
    }
    if contact.is_empty() || contact.chars().count() > 50 || contact.chars().any(char::is_control) {
        problems.push("担当者名を50文字以内で入力してください。".to_string());
    }
    let digits = phone.bytes().filter(u8::is_ascii_digit).count();
    if !(10..=11).contains(&digits) || !phone.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
        problems
            .push("電話番号は半角数字(10桁または11桁)とハイフンで入力してください。".to_string());
    }
    if !problems.is_empty() {
        let form = PostalForm {
            office: &office,
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
    let replaced = ctx.app.store.put_postal_request(PostalRequest {
        id: 0,
        office: office.clone(),
        office_name: office_name.to_string(),
        contact: contact.to_string(),
        phone: phone.clone(),
        client: req.client.to_string(),
        created: ctx.now,
    })?;
    let note = if replaced {
        format!("office {office}; replaced the request waiting for it")
    } else {
        format!("office {office}")
    };
    ctx.audit("postal_requested", None, &note)?;
    ctx.app.store.flush()?;
    Ok(Response::see_other("/kaigo/recovery/postal/done"))
}

/// Ten digits whose first two are a prefecture code (01–47).
fn is_office_number(s: &str) -> bool {
    s.len() == 10
        && s.bytes().all(|b| b.is_ascii_digit())
        && matches!(s[..2].parse::<u8>(), Ok(1..=47))
}

/// `local@domain`, one line, no spaces, at most 254 characters.
fn is_plausible_email(s: &str) -> bool {
    s.len() <= 254
        && !s.contains(|c: char| c.is_whitespace() || c.is_control())
        && s.split_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && !d.is_empty() && !d.contains('@'))
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn emails() {
        assert!(is_plausible_email("mailforsecurity-001@example.jp"));
        assert!(!is_plausible_email("a@b\r\nBcc: c@d"));
        assert!(!is_plausible_email("no-at-sign"));
        assert!(!is_plausible_email("a b@c"));
    }
}
