//! The operators' console (`/admin`): login, enrolment, account search,
//! an account's page, the confirm pages of actions, the audit trail and
//! the mail queue. Plain data in, as every page.

use super::{form_errors, layout, Doc};
use maud::{html, Markup, PreEscaped};

/// What every console page shows around its content.
pub struct Frame<'a> {
    /// The CSRF token every form carries.
    pub csrf: &'a str,
    pub banner: Option<super::Banner>,
    /// The logged-in operator; None on the login and enrolment pages.
    pub operator: Option<&'a str>,
}

const TITLE: &str = "kagi 管理コンソール";

fn screen(f: &Frame<'_>, title: &str, content: Markup) -> Markup {
    layout(
        &Doc::japanese(f.banner),
        &format!("{title} | {TITLE}"),
        html! {
            header.console {
                a.site-name href="/admin" { (TITLE) }
                @if let Some(name) = f.operator {
                    nav aria-label="管理メニュー" {
                        a href="/admin" { "アカウント検索" }
                        a href="/admin/accounts/new" { "アカウント作成" }
                        a href="/admin/postal" { "書類郵送" }
                        a href="/admin/audit" { "監査ログ" }
                        a href="/admin/mail" { "メール送信状況" }
                        span.operator { "オペレーター: " (name) }
                        form.inline method="post" action="/admin/logout" {
                            (csrf(f))
                            button.link type="submit" { "ログアウト" }
                        }
                    }
                }
            }
            main.console {
                h1 { (title) }
                (content)
            }
        },
    )
}

fn csrf(f: &Frame<'_>) -> Markup {
    super::csrf_field(f.csrf)
}

fn note(text: Option<&str>) -> Markup {
    html! {
        @if let Some(text) = text {
            p.notice role="status" { (text) }
        }
    }
}

/// The login: operator name, password, and the authenticator's code.
pub fn login(f: &Frame<'_>, name: &str, error: Option<&str>) -> Markup {
    let problems: Vec<String> = error.map(str::to_string).into_iter().collect();
    screen(
        f,
        "オペレーターログイン",
        html! {
            (form_errors(&problems))
            form method="post" action="/admin/login" {
                (csrf(f))
                table.fields {
                    tr {
                        th { label for="name" { "オペレーター名" } }
                        td { input #name type="text" name="name" value=(name) autocomplete="username" required; }
                    }
                    tr {
                        th { label for="password" { "パスワード" } }
                        td { input #password type="password" name="password" autocomplete="current-password" required; }
                    }
                    tr {
                        th { label for="code" { "確認コード(認証アプリの6桁)" } }
                        td { input #code type="text" name="code" inputmode="numeric" autocomplete="one-time-code" maxlength="7" required; }
                    }
                }
                div.buttons { button type="submit" { "ログイン" } }
            }
        },
    )
}

/// What the enrolment page shows.
pub struct Enrolment<'a> {
    pub name: &'a str,
    pub token: &'a str,
    /// The TOTP secret in base32, for typing into an app.
    pub secret: &'a str,
    /// The QR code of the `otpauth://` URI, drawn by kagi as an `<svg>`.
    pub qr_svg: &'a str,
    pub problems: &'a [String],
}

pub fn enrol(f: &Frame<'_>, e: &Enrolment<'_>) -> Markup {
    screen(
        f,
        "オペレーター登録",
        html! {
            p.lead { "オペレーター " strong { (e.name) } " のパスワードと、ログインの確認コードを出す認証アプリを登録します。" }
            (form_errors(e.problems))
            h2 { "1. 認証アプリに登録する" }
            p { "認証アプリ(TOTP 対応のもの)で次のQRコードを読み取ってください。読み取れない場合は、下の秘密鍵を入力してください(時間ベース、6桁、30秒)。" }
            // Drawn by kagi from the URI: no user input reaches the markup.
            div.qr { (PreEscaped(e.qr_svg)) }
            p { "秘密鍵: " code.secret { (e.secret) } }
            h2 { "2. パスワードと確認コードを入力する" }
            form method="post" action="/admin/enrol" {
                (csrf(f))
                input type="hidden" name="token" value=(e.token);
                table.fields {
                    tr {
                        th { label for="password" { "パスワード" } }
                        td {
                            input #password type="password" name="password" autocomplete="new-password" required;
                            p.policy { "12文字以上100文字以内で、英大文字・英小文字・数字をそれぞれ1文字以上含めてください。" }
                        }
                    }
                    tr {
                        th { label for="password2" { "パスワード(再入力)" } }
                        td { input #password2 type="password" name="password2" autocomplete="new-password" required; }
                    }
                    tr {
                        th { label for="code" { "確認コード(認証アプリの6桁)" } }
                        td { input #code type="text" name="code" inputmode="numeric" autocomplete="one-time-code" maxlength="7" required; }
                    }
                }
                div.buttons { button type="submit" { "登録する" } }
            }
        },
    )
}

pub fn enrol_invalid(f: &Frame<'_>) -> Markup {
    screen(
        f,
        "登録用リンクが無効です",
        html! {
            p { "このリンクは使用済みか、有効期限(発行から1時間)が切れています。" }
            p { "サーバの管理者に、新しい登録用リンクの発行(" code { "kagi operator reset 名前" } ")を依頼してください。" }
        },
    )
}

/// One account in a list.
pub struct AccountRow<'a> {
    pub site: &'a str,
    pub site_label: &'a str,
    pub id: &'a str,
    /// The e-mail, masked.
    pub email: &'a str,
    pub state: &'a str,
}

/// The account search.
pub struct Search<'a> {
    pub query: &'a str,
    pub page: usize,
    pub rows: &'a [AccountRow<'a>],
    pub more: bool,
    pub note: Option<&'a str>,
}

pub fn search(f: &Frame<'_>, s: &Search<'_>) -> Markup {
    let link = |page: usize| format!("/admin?q={}&page={page}", encode(s.query));
    screen(
        f,
        "アカウント検索",
        html! {
            (note(s.note))
            form.search method="get" action="/admin" role="search" {
                label for="q" { "ユーザーID・事業所番号・ユーザー名・メールアドレス(前方一致)" }
                input #q type="search" name="q" value=(s.query);
                button type="submit" { "検索" }
            }
            @if !s.query.is_empty() {
                @if s.rows.is_empty() {
                    p { "該当するアカウントはありません。" }
                } @else {
                    table.list {
                        caption { (s.page * 50 + 1) "件目から" (s.page * 50 + s.rows.len()) "件目" }
                        thead { tr { th scope="col" { "サイト" } th scope="col" { "ID" } th scope="col" { "メールアドレス" } th scope="col" { "状態" } } }
                        tbody {
                            @for r in s.rows {
                                tr {
                                    td { (r.site_label) }
                                    td { a href={ "/admin/account?site=" (r.site) "&id=" (encode(r.id)) } { (r.id) } }
                                    td { (r.email) }
                                    td { (r.state) }
                                }
                            }
                        }
                    }
                    nav.pages aria-label="ページ" {
                        @if s.page > 0 { a href=(link(s.page - 1)) { "前の50件" } }
                        @if s.more { a href=(link(s.page + 1)) { "次の50件" } }
                    }
                }
            }
        },
    )
}

/// One audit entry as shown.
pub struct AuditRow<'a> {
    pub time: String,
    pub site: &'a str,
    pub event: &'a str,
    pub account: &'a str,
    pub client: &'a str,
    pub outcome: &'a str,
    pub operator: &'a str,
    pub reason: &'a str,
}

fn audit_table(rows: &[AuditRow<'_>]) -> Markup {
    html! {
        table.list.audit {
            thead { tr {
                th scope="col" { "日時" } th scope="col" { "サイト" } th scope="col" { "イベント" }
                th scope="col" { "アカウント" } th scope="col" { "接続元" } th scope="col" { "結果" }
                th scope="col" { "オペレーター" } th scope="col" { "理由" }
            } }
            tbody {
                @for r in rows {
                    tr {
                        td { (r.time) } td { (r.site) } td { (r.event) } td { (r.account) }
                        td { (r.client) } td { (r.outcome) } td { (r.operator) } td { (r.reason) }
                    }
                }
            }
        }
    }
}

/// An account's page.
pub struct AccountPage<'a> {
    pub site: &'a str,
    pub site_label: &'a str,
    pub id: &'a str,
    /// (label, value) lines of what the account is and its state.
    pub facts: &'a [(&'a str, String)],
    /// The e-mail is masked: a button reveals it.
    pub masked: bool,
    /// The actions that apply, as (action, label).
    pub actions: &'a [(&'a str, &'a str)],
    pub recent: &'a [AuditRow<'a>],
    pub note: Option<&'a str>,
}

pub fn account(f: &Frame<'_>, a: &AccountPage<'_>) -> Markup {
    screen(
        f,
        &format!("アカウント {}", a.id),
        html! {
            (note(a.note))
            table.fields {
                tr { th { "サイト" } td { (a.site_label) } }
                tr { th { "ID" } td { (a.id) } }
                @for (label, value) in a.facts {
                    tr { th { (label) } td.pre { (value) } }
                }
            }
            @if a.masked {
                form.inline method="post" action="/admin/account/reveal" {
                    (csrf(f))
                    input type="hidden" name="site" value=(a.site);
                    input type="hidden" name="id" value=(a.id);
                    button.secondary type="submit" { "メールアドレスを表示する(記録されます)" }
                }
            }
            h2 { "操作" }
            ul.actions {
                @for (action, label) in a.actions {
                    li { a.button href={ "/admin/account/action?site=" (a.site) "&id=" (encode(a.id)) "&do=" (action) } { (label) } }
                }
            }
            h2 { "最近の記録" }
            @if a.recent.is_empty() { p { "記録はありません。" } } @else { (audit_table(a.recent)) }
            p { a href={ "/admin/audit?site=" (a.site) "&account=" (encode(a.id)) } { "このアカウントの記録をすべて見る" } }
        },
    )
}

/// The confirm page of an action.
pub struct Confirm<'a> {
    pub site: &'a str,
    pub id: &'a str,
    pub action: &'a str,
    pub label: &'a str,
    /// What the action will do, in a sentence.
    pub explain: &'a str,
    /// Asks for a TOTP code (the last one is more than 5 minutes old).
    pub ask_totp: bool,
    /// Asks for the operator's password (deleting).
    pub ask_password: bool,
    /// Asks for a new e-mail address (changing the security e-mail).
    pub ask_email: bool,
    pub reason: &'a str,
    pub email: &'a str,
    pub problems: &'a [String],
}

pub fn confirm(f: &Frame<'_>, c: &Confirm<'_>) -> Markup {
    screen(
        f,
        &format!("{}の確認", c.label),
        html! {
            p.lead { "アカウント " strong { (c.id) } ": " (c.explain) }
            (form_errors(c.problems))
            form method="post" action="/admin/account/action" {
                (csrf(f))
                input type="hidden" name="site" value=(c.site);
                input type="hidden" name="id" value=(c.id);
                input type="hidden" name="do" value=(c.action);
                table.fields {
                    @if c.ask_email {
                        tr {
                            th { label for="email" { "新しいセキュリティ用メールアドレス" } }
                            td { input #email type="email" name="email" value=(c.email) required; }
                        }
                    }
                    tr {
                        th { label for="reason" { "理由(記録されます)" } }
                        td { textarea #reason name="reason" rows="3" maxlength="500" required { (c.reason) } }
                    }
                    @if c.ask_password {
                        tr {
                            th { label for="password" { "あなたのパスワード" } }
                            td { input #password type="password" name="password" autocomplete="current-password" required; }
                        }
                    }
                    @if c.ask_totp {
                        tr {
                            th { label for="code" { "確認コード(認証アプリの6桁)" } }
                            td { input #code type="text" name="code" inputmode="numeric" autocomplete="one-time-code" maxlength="7" required; }
                        }
                    }
                }
                div.buttons {
                    a.button.secondary href={ "/admin/account?site=" (c.site) "&id=" (encode(c.id)) } { "戻る" }
                    button type="submit" { (c.label) "する" }
                }
            }
        },
    )
}

/// The form of a new account.
pub struct NewAccountForm<'a> {
    pub site: &'a str,
    pub office: &'a str,
    pub prefecture: &'a str,
    pub office_name: &'a str,
    pub postal_address: &'a str,
    pub user: &'a str,
    pub institution: &'a str,
    pub email: &'a str,
    pub coordinator: bool,
    pub reason: &'a str,
    pub problems: &'a [String],
}

pub fn new_account(f: &Frame<'_>, n: &NewAccountForm<'_>) -> Markup {
    screen(
        f,
        "アカウント作成",
        html! {
            p.lead { "パスワードは設定されません。書類郵送の仮パスワード、またはパスワード再設定のリンクで利用者が設定します。" }
            (form_errors(n.problems))
            form method="post" action="/admin/accounts/new" {
                (csrf(f))
                fieldset {
                    legend { "サイト" }
                    div.choice {
                        label { input type="radio" name="site" value="kaigo" checked[n.site != "portal"]; " 介護電子請求受付システム" }
                        label { input type="radio" name="site" value="portal" checked[n.site == "portal"]; " 医療機関等向け総合ポータルサイト" }
                    }
                }
                h2 { "介護電子請求受付システムの場合" }
                table.fields {
                    tr { th { label for="office" { "事業所番号(10桁)" } } td { input #office type="text" name="office" inputmode="numeric" value=(n.office); } }
                    tr { th { label for="prefecture" { "請求先都道府県コード(2桁)" } } td { input #prefecture type="text" name="prefecture" inputmode="numeric" value=(n.prefecture); } }
                    tr { th { label for="office_name" { "事業所名" } } td { input #office_name type="text" name="office_name" value=(n.office_name); } }
                    tr { th { label for="postal_address" { "所在地(郵送先)" } } td { textarea #postal_address name="postal_address" rows="2" { (n.postal_address) } } }
                }
                h2 { "医療機関等向け総合ポータルサイトの場合" }
                table.fields {
                    tr { th { label for="user" { "ユーザー名" } } td { input #user type="text" name="user" value=(n.user); } }
                    tr { th { label for="institution" { "医療機関等コード(10桁)" } } td { input #institution type="text" name="institution" inputmode="numeric" value=(n.institution); } }
                    tr { th { "取りまとめ者" } td { label { input type="checkbox" name="coordinator" value="1" checked[n.coordinator]; " 取りまとめ者のアカウント" } } }
                }
                h2 { "共通" }
                table.fields {
                    tr { th { label for="email" { "メールアドレス(介護: セキュリティ用)" } } td { input #email type="email" name="email" value=(n.email); } }
                    tr { th { label for="reason" { "理由(記録されます)" } } td { textarea #reason name="reason" rows="3" maxlength="500" required { (n.reason) } } }
                }
                div.buttons { button type="submit" { "作成する" } }
            }
        },
    )
}

/// The audit view's filter, as typed.
pub struct AuditQuery<'a> {
    pub site: &'a str,
    pub account: &'a str,
    pub event: &'a str,
    pub operator: &'a str,
    pub from: &'a str,
    pub until: &'a str,
}

impl AuditQuery<'_> {
    /// The query string of this filter.
    pub fn to_query(&self) -> String {
        [
            ("site", self.site),
            ("account", self.account),
            ("event", self.event),
            ("operator", self.operator),
            ("from", self.from),
            ("until", self.until),
        ]
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect::<Vec<_>>()
        .join("&")
    }
}

/// The audit trail, filtered.
pub struct AuditView<'a> {
    pub query: &'a AuditQuery<'a>,
    /// The chain check's result, in a sentence.
    pub chain: &'a str,
    pub chain_ok: bool,
    pub rows: &'a [AuditRow<'a>],
    /// The next page starts before this entry.
    pub next: Option<u64>,
    pub cut_short: bool,
    pub problems: &'a [String],
}

pub fn audit(f: &Frame<'_>, a: &AuditView<'_>) -> Markup {
    let q = a.query;
    let filter = q.to_query();
    screen(
        f,
        "監査ログ",
        html! {
            p.chain.ok[a.chain_ok].broken[!a.chain_ok] role="status" { (a.chain) }
            (form_errors(a.problems))
            form.filter method="get" action="/admin/audit" {
                table.fields {
                    tr {
                        th { label for="site" { "サイト" } }
                        td { select #site name="site" {
                            option value="" selected[q.site.is_empty()] { "すべて" }
                            option value="kaigo" selected[q.site == "kaigo"] { "介護" }
                            option value="portal" selected[q.site == "portal"] { "ポータル" }
                        } }
                    }
                    tr { th { label for="account" { "アカウント(ID・ユーザー名、ログインを試みたオペレーター名)" } } td { input #account type="text" name="account" value=(q.account); } }
                    tr { th { label for="event" { "イベント" } } td { input #event type="text" name="event" value=(q.event) placeholder="login, operator_unlock など"; } }
                    tr { th { label for="operator" { "オペレーター" } } td { input #operator type="text" name="operator" value=(q.operator); } }
                    tr { th { label for="from" { "期間(開始)" } } td { input #from type="text" name="from" value=(q.from) placeholder="2026-12-01 または 2026-12-01 09:00"; } }
                    tr { th { label for="until" { "期間(終了)" } } td { input #until type="text" name="until" value=(q.until) placeholder="2026-12-31"; } }
                }
                div.buttons {
                    button type="submit" { "絞り込む" }
                    a.button.secondary href={ "/admin/audit.csv?" (filter) } { "この条件でCSVをダウンロード" }
                }
            }
            @if a.rows.is_empty() { p { "該当する記録はありません。" } } @else { (audit_table(a.rows)) }
            @if a.cut_short {
                p.note { "検索範囲が広いため、途中で打ち切りました。期間やアカウントで絞り込んでください。" }
            }
            @if let Some(next) = a.next {
                nav.pages aria-label="ページ" {
                    a href={ "/admin/audit?" (filter) "&before=" (next) } { "さらに古い記録" }
                }
            }
        },
    )
}

/// One undelivered mail.
pub struct MailRow<'a> {
    pub id: u64,
    pub to: &'a str,
    pub subject: &'a str,
    pub created: String,
    pub state: &'a str,
    pub attempts: u32,
    pub last_error: &'a str,
}

pub fn mail(
    f: &Frame<'_>,
    rows: &[MailRow<'_>],
    note_text: Option<&str>,
    next: Option<u64>,
) -> Markup {
    screen(
        f,
        "メール送信状況",
        html! {
            (note(note_text))
            p { "送信待ちと、送信をあきらめたメールです。送信済みのメールは表示されません。" }
            @if rows.is_empty() { p { "送信待ちのメールはありません。" } } @else {
                table.list {
                    thead { tr {
                        th scope="col" { "ID" } th scope="col" { "宛先" } th scope="col" { "件名" }
                        th scope="col" { "送信開始" } th scope="col" { "状態" } th scope="col" { "試行" }
                        th scope="col" { "最後のエラー" } th scope="col" { "操作" }
                    } }
                    tbody {
                        @for m in rows {
                            tr {
                                td { (m.id) } td { (m.to) } td { (m.subject) } td { (m.created) }
                                td { (m.state) } td { (m.attempts) } td { (m.last_error) }
                                td {
                                    form.inline method="post" action="/admin/mail/retry" {
                                        (csrf(f))
                                        input type="hidden" name="id" value=(m.id);
                                        button.secondary type="submit" { "今すぐ再送" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if let Some(after) = next {
                nav.pages aria-label="ページ" { a href={ "/admin/mail?after=" (after) } { "次のメール" } }
            }
        },
    )
}

/// A waiting postal request in the queue.
pub struct PostalRow<'a> {
    pub id: u64,
    pub created: &'a str,
    pub user_id: &'a str,
    pub prefecture: &'a str,
    pub office_name: &'a str,
    pub contact: &'a str,
}

/// `/admin/postal`: the waiting requests, oldest first.
pub fn postal_queue(
    f: &Frame<'_>,
    rows: &[PostalRow<'_>],
    prefecture: &str,
    note_text: Option<&str>,
) -> Markup {
    screen(
        f,
        "書類郵送の申請",
        html! {
            (note(note_text))
            form.filter method="get" action="/admin/postal" {
                label for="prefecture" { "請求先都道府県" } " "
                select #prefecture name="prefecture" {
                    option value="" selected[prefecture.is_empty()] { "すべて" }
                    @for n in 1..=47u8 {
                        @let code = format!("{n:02}");
                        option value=(code) selected[prefecture == code] { (super::kaigo::prefecture_name(&crate::text::JA, &code)) }
                    }
                }
                " "
                button type="submit" { "絞り込む" }
            }
            @if rows.is_empty() { p { "処理を待つ申請はありません。" } } @else {
                table.list {
                    thead { tr {
                        th scope="col" { "受付" } th scope="col" { "ユーザID" } th scope="col" { "請求先都道府県" }
                        th scope="col" { "事業所名" } th scope="col" { "担当者名" }
                    } }
                    tbody {
                        @for r in rows {
                            tr {
                                td { (r.created) }
                                td { a href={ "/admin/postal/request?id=" (r.id) } { (r.user_id) } }
                                td { (r.prefecture) } td { (r.office_name) } td { (r.contact) }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// What the account a request names has registered.
pub struct Registered<'a> {
    pub office_name: &'a str,
    pub postal_address: &'a str,
}

/// A postal request beside the account it names.
pub struct PostalRequestView<'a> {
    pub id: u64,
    /// What the request said when drawn; the forms send it back.
    pub version: &'a str,
    pub user_id: &'a str,
    pub office: &'a str,
    pub prefecture: &'a str,
    pub office_name: &'a str,
    pub contact: &'a str,
    pub phone: &'a str,
    pub created: &'a str,
    /// None: no account yet (a new office).
    pub account: Option<Registered<'a>>,
    pub ask_totp: bool,
    /// Corrections as typed.
    pub fix_name: &'a str,
    pub fix_address: &'a str,
    pub problems: &'a [String],
}

pub fn postal_request(f: &Frame<'_>, v: &PostalRequestView<'_>) -> Markup {
    screen(
        f,
        &format!("書類郵送の申請 {}", v.user_id),
        html! {
            (form_errors(v.problems))
            table.list {
                thead { tr { th scope="col" { "" } th scope="col" { "申請の内容" } th scope="col" { "登録されている内容" } } }
                tbody {
                    tr { th scope="row" { "ユーザID" } td { (v.user_id) } td { @if v.account.is_some() { (v.user_id) } @else { "(アカウントなし: 新しい事業所)" } } }
                    tr { th scope="row" { "事業所番号" } td { (v.office) } td { "" } }
                    tr { th scope="row" { "請求先都道府県" } td { (v.prefecture) } td { "" } }
                    tr { th scope="row" { "事業所名" } td { (v.office_name) } td { @if let Some(a) = &v.account { (a.office_name) } } }
                    tr { th scope="row" { "所在地(郵送先)" } td { "" } td.pre { @if let Some(a) = &v.account { (a.postal_address) } } }
                    tr { th scope="row" { "担当者名" } td { (v.contact) } td { "" } }
                    tr { th scope="row" { "電話番号" } td { (v.phone) } td { "" } }
                    tr { th scope="row" { "受付" } td { (v.created) } td { "" } }
                }
            }
            h2 { "書類を発行する" }
            p { @if v.account.is_some() {
                "このアカウントに新しい仮パスワードを設定し、書類を表示します。現在のパスワード、セキュリティコード、ログイン中のセッション、送信済みのワンタイムパスワードとリンクは無効になります。"
            } @else {
                "申請の内容と次の訂正からアカウントを作成し、仮パスワードを設定して書類を表示します。"
            } " 仮パスワードは書類にだけ表示され、もう一度表示することはできません。" }
            form method="post" action="/admin/postal/issue" {
                (csrf(f))
                input type="hidden" name="id" value=(v.id);
                input type="hidden" name="version" value=(v.version);
                table.fields {
                    tr { th { label for="office_name" { "事業所名(訂正する場合)" } } td { input #office_name type="text" name="office_name" value=(v.fix_name) maxlength="200"; } }
                    tr { th { label for="postal_address" { "所在地(郵送先)" @if v.account.is_some() { "(訂正する場合)" } } } td { textarea #postal_address name="postal_address" rows="2" maxlength="200" { (v.fix_address) } } }
                    tr { th { label for="issue-reason" { "メモ(記録されます)" } } td { input #issue-reason type="text" name="reason" maxlength="500"; } }
                    @if v.ask_totp {
                        tr { th { label for="code" { "確認コード(認証アプリの6桁)" } } td { input #code type="text" name="code" inputmode="numeric" autocomplete="one-time-code" maxlength="7" required; } }
                    }
                }
                div.buttons { button type="submit" { "書類を発行する" } }
            }
            h2 { "却下する" }
            form method="post" action="/admin/postal/reject" {
                (csrf(f))
                input type="hidden" name="id" value=(v.id);
                input type="hidden" name="version" value=(v.version);
                table.fields {
                    tr { th { label for="reject-reason" { "却下の理由(記録されます)" } } td { textarea #reject-reason name="reason" rows="2" maxlength="500" required {} } }
                }
                div.buttons { button.secondary type="submit" { "却下する" } }
            }
        },
    )
}

/// The letter with a temporary password, to print and post.
pub struct LetterView<'a> {
    pub office_name: &'a str,
    pub postal_address: &'a str,
    pub user_id: &'a str,
    pub password: &'a str,
    /// The temporary password's last day, `YYYY-MM-DD`.
    pub until: &'a str,
    pub issued: &'a str,
    pub login_url: &'a str,
    pub helpdesk: &'a str,
}

/// The letter: one A4 page (`@page` in the stylesheet), nothing else
/// printed. Its temporary password is shown here only.
pub fn letter(l: &LetterView<'_>) -> Markup {
    super::layout(
        &Doc::japanese(None),
        "ログイン情報のお知らせ(印刷用)",
        html! {
            p.no-print role="status" { "この書類を印刷してください(ブラウザの印刷機能、Ctrl+P)。仮パスワードはこの画面にしか表示されません。" a href="/admin/postal" { "申請の一覧へ戻る" } }
            main.letter { article.letter {
                p.address { (l.postal_address) }
                p.addressee { (l.office_name) " 御中" }
                p.date { (l.issued) }
                h1 { "介護電子請求受付システム ログイン情報のお知らせ" }
                p { "書類郵送のお申し込みにより、介護電子請求受付システムのユーザIDと仮パスワードをお知らせします。" }
                table.credentials {
                    tr { th { "ユーザID" } td.user-id { (l.user_id) } }
                    tr { th { "仮パスワード" } td.password { (l.password) } }
                    tr { th { "仮パスワードの有効期限" } td { (l.until) " まで" } }
                }
                h2 { "ログインの手順" }
                ol {
                    li { (l.login_url) " にアクセスし、ユーザIDと仮パスワードを入力して【ログイン】ボタンを押してください。" }
                    li { "新しいパスワードを設定してください。仮パスワードは使えなくなります。" }
                    li { "セキュリティ用メールアドレスを登録してください。入力したアドレスに届くワンタイムパスワードを入力すると登録が完了します。" }
                }
                p { "仮パスワードは有効期限を過ぎると使用できません。その場合は、もう一度書類郵送を申請してください。" }
                p { "この書類は、ユーザIDとパスワードを第三者に知られないよう大切に保管してください。" }
                p.helpdesk { "[問い合わせ先] " (l.helpdesk) }
            } }
        },
    )
}

/// Percent-encodes a query value.
fn encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}
