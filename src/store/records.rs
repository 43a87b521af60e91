//! The records kagi keeps. Secrets appear only as argon2id PHC strings or
//! keyed digests; each type that holds one prints none in `Debug`.

use crate::site::{Area, Site};
use crate::text::Lang;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A login. For kaigo, `id` is the user ID `KJ` + billing prefecture +
/// office number, and one office may own several accounts. For the portal,
/// `id` is the user name, or a coordinator's user ID.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Account {
    pub site: Site,
    pub id: String,
    /// The registered address (kaigo: the security e-mail), if any.
    pub email: Option<String>,
    pub password_phc: String,
    /// The optional second login factor (kaigo セキュリティコード).
    pub security_code_phc: Option<String>,
    /// Raised by every password change; a session, flow, code or link made
    /// under an older generation is dead.
    pub generation: u64,
    /// kaigo: the office and the prefecture this account bills.
    pub office: Option<Office>,
    /// portal: a coordinator (取りまとめ者) account.
    pub coordinator: bool,
    /// portal: the 医療機関等コード of the institution the user works for.
    #[serde(default)]
    pub institution: Option<String>,
    /// Locked by its owner from a "password changed" notice ("this was not
    /// me"): no login until a new recovery sets a password.
    #[serde(default)]
    pub locked: bool,
    /// Disabled by an operator: its login fails like a wrong password and
    /// its recoveries send nothing, as for an account that does not match,
    /// until an operator enables it again.
    #[serde(default)]
    pub disabled: bool,
    /// The password is a temporary one from a postal letter, good until
    /// then (Unix seconds): the login that uses it must set a new one.
    #[serde(default)]
    pub temporary_until: Option<u64>,
    /// The first login with a temporary password set a new password but
    /// no security address yet: the next login asks for one first.
    #[serde(default)]
    pub must_register_email: bool,
}

/// A kaigo office number and billing prefecture.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Office {
    /// 10 digits; the first two are the office's own prefecture.
    pub number: String,
    /// JIS code of the billing prefecture (2 digits).
    pub prefecture: String,
    /// The office's name (事業所名), as a letter is addressed.
    #[serde(default)]
    pub name: Option<String>,
    /// The office's postal address, where the letter with a temporary
    /// password goes.
    #[serde(default)]
    pub postal_address: Option<String>,
}

impl Account {
    /// Whether the account may log in or be recovered: not disabled by an
    /// operator. A disabled account is treated as one that does not match.
    pub fn is_enabled(&self) -> bool {
        !self.disabled
    }

    /// Whether a password was ever set (an account an operator created has
    /// none until a letter or a link sets one).
    pub fn has_password(&self) -> bool {
        !self.password_phc.is_empty()
    }

    /// A portal account still on its provisional address (`…@01` to
    /// `…@48`), which no mail can reach.
    pub fn is_provisional(&self) -> bool {
        self.email.as_deref().is_some_and(is_provisional_address)
    }
}

/// A kaigo office number: ten digits whose first two are a prefecture code
/// (01–47). One rule for the site's forms, imports and the console.
pub fn is_office_number(s: &str) -> bool {
    s.len() == 10
        && s.bytes().all(|b| b.is_ascii_digit())
        && matches!(s[..2].parse::<u8>(), Ok(1..=47))
}

/// What is wrong with the fields of a new account: one rule for
/// `kagi import` (which says it in English) and the console (in Japanese).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccountProblem {
    OfficeNumber,
    Prefecture,
    /// A 医療機関等コード: a prefecture code (01–47), then 8 digits.
    Institution,
    UserName,
    Email,
    /// An office name or postal address too long or with control characters.
    Text,
}

impl AccountProblem {
    /// The console's message.
    pub fn ja(self) -> &'static str {
        match self {
            AccountProblem::OfficeNumber => "事業所番号は半角数字10桁で入力してください。",
            AccountProblem::Prefecture => "請求先都道府県は2桁の都道府県コードで入力してください。",
            AccountProblem::Institution => {
                "医療機関等コードは半角数字10桁(都道府県番号2桁と8桁)で入力してください。"
            }
            AccountProblem::UserName => {
                "ユーザー名は100文字以内で、制御文字を含まないものにしてください。"
            }
            AccountProblem::Email => "メールアドレスを正しく入力してください。",
            AccountProblem::Text => "事業所名と所在地は200文字以内で入力してください。",
        }
    }
}

impl fmt::Display for AccountProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AccountProblem::OfficeNumber => "office is 10 digits, the first two a prefecture code (01 to 47)",
            AccountProblem::Prefecture => "prefecture is 2 digits (01 to 47)",
            AccountProblem::Institution => "institution is 10 digits, the first two a prefecture code (01 to 47)",
            AccountProblem::UserName => "a user name is 1 to 100 characters, none of them control characters",
            AccountProblem::Email => "not a mail address",
            AccountProblem::Text => "office_name and postal_address are at most 200 characters, no control characters but line breaks in the address",
        })
    }
}

/// The fields of a new account, as an import line, the console's form or a
/// registration gives them.
#[derive(Clone, Debug, Default)]
pub struct NewAccount {
    pub site: Option<Site>,
    /// kaigo: the office number, billing prefecture, name and address.
    pub office: String,
    pub prefecture: String,
    pub office_name: Option<String>,
    pub postal_address: Option<String>,
    /// portal: the user name and the 医療機関等コード.
    pub user: String,
    pub institution: Option<String>,
    pub email: Option<String>,
    pub coordinator: bool,
}

impl NewAccount {
    /// The account, with `password_phc` ("" for none yet), or what is wrong.
    pub fn build(self, site: Site, password_phc: String) -> Result<Account, AccountProblem> {
        let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
        let text_ok = |t: &Option<String>, breaks: bool| {
            t.as_deref().is_none_or(|t| {
                t.chars().count() <= 200
                    && t.chars().all(|c| !c.is_control() || (breaks && c == '\n'))
            })
        };
        if let Some(email) = &self.email {
            if !crate::address::is_plausible(email) {
                return Err(AccountProblem::Email);
            }
        }
        let (id, office) = match site {
            Site::Kaigo => {
                if !is_office_number(&self.office) {
                    return Err(AccountProblem::OfficeNumber);
                }
                if !digits(&self.prefecture, 2)
                    || !matches!(self.prefecture.parse::<u8>(), Ok(1..=47))
                {
                    return Err(AccountProblem::Prefecture);
                }
                if !text_ok(&self.office_name, false) || !text_ok(&self.postal_address, true) {
                    return Err(AccountProblem::Text);
                }
                let id = format!("KJ{}{}", self.prefecture, self.office);
                let office = Office {
                    number: self.office,
                    prefecture: self.prefecture,
                    name: self.office_name.filter(|n| !n.is_empty()),
                    postal_address: self.postal_address.filter(|a| !a.is_empty()),
                };
                (id, Some(office))
            }
            Site::Portal => {
                if self
                    .institution
                    .as_deref()
                    .is_some_and(|c| !is_office_number(c))
                {
                    return Err(AccountProblem::Institution);
                }
                let user = self.user;
                let bad = user.is_empty()
                    || user.chars().count() > 100
                    || user.chars().any(char::is_control);
                if bad {
                    return Err(AccountProblem::UserName);
                }
                (user, None)
            }
        };
        Ok(Account {
            site,
            id,
            email: self.email,
            password_phc,
            security_code_phc: None,
            generation: first_generation(),
            office,
            coordinator: site == Site::Portal && self.coordinator,
            institution: self.institution.filter(|_| site == Site::Portal),
            locked: false,
            disabled: false,
            temporary_until: None,
            must_register_email: false,
        })
    }
}

/// The first generation of a new account or operator: random, so that
/// nothing made for an earlier holder of the same ID or name (a deleted
/// account's reset link, a removed operator's session) matches the new
/// one. Below 2^62: it is only ever raised by one.
pub fn first_generation() -> u64 {
    u64::from_le_bytes(crate::secret::random_bytes::<8>()) >> 2
}

/// Whether an address is a provisional placeholder ending in `@01`–`@48`.
pub fn is_provisional_address(email: &str) -> bool {
    email.rsplit_once('@').is_some_and(|(_, domain)| {
        domain.len() == 2
            && domain.bytes().all(|b| b.is_ascii_digit())
            && matches!(domain.parse::<u8>(), Ok(1..=48))
    })
}

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Account")
            .field("site", &self.site)
            .field("id", &self.id)
            .field("email", &self.email)
            .field("has_security_code", &self.security_code_phc.is_some())
            .field("generation", &self.generation)
            .field("office", &self.office)
            .field("coordinator", &self.coordinator)
            .field("locked", &self.locked)
            .field("disabled", &self.disabled)
            .finish()
    }
}

/// A recovery in progress, keyed by the digest of the browser's visit cookie.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum Flow {
    Kaigo(KaigoFlow),
    Portal(PortalFlow),
}

/// The kaigo recovery as explicit states (seed steps 2–8).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum KaigoFlow {
    /// Office number and address given; the office bills several
    /// prefectures, so the user picks one (請求先都道府県選択).
    ChoosingPrefecture {
        office: String,
        email: String,
        prefectures: Vec<String>,
    },
    /// A code went out, or seemingly did: `account` is `None` when the office
    /// and address matched nothing, and then no code can succeed.
    AwaitingOtp {
        email: String,
        account: Option<String>,
        generation: u64,
        /// Key of the claim's guard record, which holds the code's digest
        /// and its attempts left (shared by every flow of the claim).
        claim: String,
        /// Which of the claim's live codes this flow waits for.
        otp_id: String,
        /// The language the recovery was started in: its mails speak it.
        #[serde(default)]
        lang: Lang,
    },
    /// The code was right; the user may set a new password.
    Verified {
        account: String,
        generation: u64,
        #[serde(default)]
        lang: Lang,
    },
    /// The password was changed; the flow is spent.
    Completed { account: String },
    /// Too many wrong codes; the flow must start over.
    Failed,
}

/// What kagi keeps about one claimed identity (a kaigo office and address,
/// a portal user name and address) for a day, whether or not it matched an
/// account: both branches keep the same record and follow the same rules.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ClaimGuard {
    /// When codes or links were issued (or would have been) in the last day.
    pub issued: Vec<u64>,
    /// kaigo: the live one-time passwords, oldest first.
    pub otps: Vec<LiveOtp>,
}

/// A one-time password as its claim keeps it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct LiveOtp {
    pub id: String,
    /// Keyed digest of the code; never the code.
    pub digest: String,
    pub expires: u64,
    /// Wrong entries left, across every flow that waits for this code.
    pub attempts_left: u32,
}

/// Failed attempts at one secret of one user name, known or not.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct LoginGuard {
    pub failures: u32,
    pub locked_until: u64,
}

/// The secrets whose failed attempts are counted per account, each on its
/// own: a right password does not forgive wrong security codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Secret {
    Password,
    /// The kaigo セキュリティコード, asked after the password.
    SecurityCode,
}

impl Secret {
    /// The key of the guard record in the store.
    pub fn guard_key(self, area: Area, user: &str) -> String {
        let kind = match self {
            Secret::Password => "login",
            Secret::SecurityCode => "code",
        };
        format!("{kind}:{}:{user}", area.name())
    }
}

/// The portal recovery as explicit states (seed steps 4–9).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum PortalFlow {
    /// ① 特定 passed: the user name as typed (whether or not it exists).
    Identified { user: String },
    /// ② 検証 answered; the 送信完了 page is shown, whatever was entered.
    Sent,
    /// ③ リセット done with a link: the success page may be shown.
    Reset,
    /// A registration completed: its page names the new user name.
    Registered { user: String },
}

/// What a mailed link is for.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub enum LinkKind {
    /// The portal's password reset link.
    #[default]
    Reset,
    /// "This was not me", from a password-changed notice: locks the account.
    NotMe,
}

/// A mailed link (reset or "not me"), keyed by the digest of its token.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Link {
    /// What the link does: set a password, or lock the account.
    #[serde(default)]
    pub kind: LinkKind,
    pub site: Site,
    pub account: String,
    /// The account's generation when the link was made: a password change
    /// by any means kills the link.
    pub generation: u64,
    pub state: LinkState,
    /// The language of the page that sent the link: the mail after its
    /// use speaks it too, whichever browser opens the link.
    #[serde(default)]
    pub lang: Lang,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum LinkState {
    /// Not used yet. Opening it (GET) does not change this.
    Live,
    /// A password was set with it.
    Used,
}

/// A login, keyed by the digest of the visit cookie it was issued to.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Session {
    pub site: Site,
    pub account: String,
    pub generation: u64,
    pub state: SessionState,
    pub created: u64,
    pub last_seen: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum SessionState {
    /// Password right; the account's security code is still to be given.
    AwaitingSecurityCode { attempts_left: u32 },
    /// Fully logged in.
    Active,
    /// Logged in with a temporary password: a new password comes first,
    /// and nothing else is reachable.
    ChangingPassword,
    /// The new password is set; the account has no security address yet,
    /// and one must be registered (entered twice, then confirmed by a code
    /// mailed to it) before anything else.
    RegisteringEmail,
    /// A code went to `email`; it is registered once the code is entered.
    ConfirmingEmail {
        email: String,
        /// The guard record of the registration claim, holding the code.
        claim: String,
        otp_id: String,
    },
}

/// A mail waiting for the mail thread. It holds the message as sent, code
/// included, until the server accepts it; then it is removed.
#[derive(Clone, Serialize, Deserialize)]
pub struct OutboxMail {
    pub id: u64,
    pub message_id: String,
    pub to: String,
    pub subject: String,
    pub body: String,
    /// The whole MIME message, built once so that a retry sends the same bytes.
    pub mime: String,
    pub created: u64,
    /// After this the mail is useless (its code or link expired): dropped.
    pub not_after: u64,
    pub attempts: u32,
    pub next_attempt: u64,
    pub last_error: Option<String>,
    /// Written by a recovery step that matched nothing, so that it does the
    /// same work as one that matched; the mail thread drops it unsent.
    #[serde(default)]
    pub decoy: bool,
    /// The site that sent it, for the audit trail.
    #[serde(default = "kaigo")]
    pub site: Site,
    /// When it was given up (refused for good, or not accepted within
    /// `mail.give_up_after_secs`): kept for `kagi mail list`, never tried
    /// again unless an operator says `kagi mail retry`.
    #[serde(default)]
    pub failed: Option<u64>,
    /// Until when a mail thread has taken it to deliver (`claim_mail`):
    /// no other takes it meanwhile, on this instance or another.
    #[serde(default)]
    pub claimed_until: u64,
}

fn kaigo() -> Site {
    Site::Kaigo
}

impl fmt::Debug for OutboxMail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutboxMail")
            .field("id", &self.id)
            .field("message_id", &self.message_id)
            .field("to", &self.to)
            .field("subject", &self.subject)
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

/// A mail kept by the capture transport (demo), shown at `/dev/mail`.
#[derive(Clone, Serialize, Deserialize)]
pub struct CapturedMail {
    pub id: u64,
    pub message_id: String,
    pub to: String,
    pub subject: String,
    pub body: String,
    pub mime: String,
    pub date: u64,
}

impl fmt::Debug for CapturedMail {
    // The body may hold a code: it is not printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CapturedMail")
            .field("id", &self.id)
            .field("message_id", &self.message_id)
            .field("to", &self.to)
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

/// A request for the postal letter (書類郵送), waiting for an operator.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct PostalRequest {
    pub id: u64,
    pub office: String,
    /// The billing prefecture (JIS code); empty in requests stored before
    /// the form asked for it.
    #[serde(default)]
    pub prefecture: String,
    pub office_name: String,
    pub contact: String,
    pub phone: String,
    pub client: String,
    pub created: u64,
}

/// A portal registration waiting for its address to be confirmed, keyed
/// by the digest of the token its mail carries; used once.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Registration {
    pub institution: String,
    pub institution_name: String,
    pub contact: String,
    pub email: String,
    /// The user name asked for (it may be taken by the time it is used).
    pub user: String,
    /// The address had an account already: its mail held no link, and this
    /// record opens nothing. Written all the same (the same work).
    pub dead: bool,
    /// The language registration was started in: its mails speak it.
    #[serde(default)]
    pub lang: Lang,
}

/// One line of the audit trail.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct AuditEvent {
    /// SHA-256 (hex) of the previous entry as stored; empty for the first.
    /// `kagi audit verify` recomputes the chain.
    #[serde(default)]
    pub prev: String,
    pub time: u64,
    /// The id of the request that wrote it, as its log line gives it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
    /// The site of the account or page; None for the operators' own events
    /// (their logins, enrolments).
    pub site: Option<Site>,
    /// What happened: `otp_issued`, `otp_failed`, `password_changed`, …
    pub event: String,
    pub account: Option<String>,
    pub client: String,
    pub outcome: String,
    /// The operator who acted, for what the console does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    /// The reason the operator gave.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A person who runs kagi, with a password and a TOTP second factor. Kept
/// apart from the sites' accounts, by name.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Operator {
    pub name: String,
    /// None until the enrolment link sets one.
    pub password_phc: Option<String>,
    /// The TOTP secret, sealed under the key file's key (the record's name
    /// as associated data); None until enrolled.
    pub totp_sealed: Option<Vec<u8>>,
    /// The last TOTP step accepted: no code of it or before is accepted
    /// again.
    pub last_totp_step: Option<u64>,
    /// Raised by `reset` and at enrolment: a session or link of an older
    /// generation is dead.
    pub generation: u64,
    /// The live enrolment link: the digest of its token and its expiry.
    pub enrolment: Option<(String, u64)>,
    pub created: u64,
    /// The demo's operator, whose password is printed for all to read: it
    /// logs in only while the server runs as the demo.
    #[serde(default)]
    pub demo: bool,
}

impl Operator {
    /// Enrolled: a password and a second factor are set.
    pub fn is_enrolled(&self) -> bool {
        self.password_phc.is_some() && self.totp_sealed.is_some()
    }
}

impl fmt::Debug for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Operator")
            .field("name", &self.name)
            .field("enrolled", &self.is_enrolled())
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

/// An operator's login at the console, keyed by the digest of its cookie.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct OperatorSession {
    pub operator: String,
    pub generation: u64,
    pub created: u64,
    pub last_seen: u64,
    /// When the operator last gave a TOTP code: a destructive action asks
    /// again after five minutes.
    pub totp_at: u64,
}
