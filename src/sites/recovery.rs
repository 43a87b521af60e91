//! The rules every recovery follows, whichever site and whichever step, in
//! one place so that a new flow (a postal letter, a registration) takes them
//! instead of copying them:
//!
//! - **Constant work.** A step that may mail the user does the same work
//!   whether or not the account matched: it updates the guard record of
//!   what was claimed, makes the letter, sends it or queues it as a decoy
//!   that is never sent, writes the flow and flushes, on both branches
//!   (`deliver`). How often a claim may be mailed is `admit_send`.
//! - **One-time passwords** live in their claim's guard record: issued by
//!   `issue_otp`, entered by `enter_otp`. Both are pure transitions of the
//!   record, tested here without HTTP; the store applies them atomically.
//! - **A changed password** raises the account's generation (every session,
//!   code and link of it dies), clears the security code and lifts a lock
//!   (`change_password`), and is told to the account's address with a link
//!   that says "this was not me" (`notify_password_changed`).

use super::Ctx;
use crate::app::App;
use crate::clock::{self, DAY};
use crate::config::GuardConfig;
use crate::mail::templates::{Letter, Notice};
use crate::metrics::Issued;
use crate::secret::{constant_time_eq, Purpose, Token};
use crate::site::Area;
use crate::store::{Account, ClaimGuard, Link, LinkKind, LinkState, LiveOtp, Secret, StoreError};

/// Whether a claim may be mailed now, counting this send if so: none within
/// `send_cooldown_secs` of the last, at most `per_day` in a window. The
/// claim's record is the same whether or not it matched an account, so the
/// limits hold for both alike.
pub fn admit_send(g: &mut ClaimGuard, now: u64, limits: &GuardConfig, per_day: usize) -> bool {
    g.issued.retain(|t| t + limits.window_secs > now);
    let cooling = g
        .issued
        .last()
        .is_some_and(|t| now < t + limits.send_cooldown_secs);
    if cooling || g.issued.len() >= per_day {
        return false;
    }
    g.issued.push(now);
    true
}

/// Whether the claim of `parts` may be mailed a link now (`admit_send`
/// under `guard.links_per_day`), counting this send if so.
pub fn admit_link(ctx: &Ctx<'_>, parts: &[&str]) -> Result<bool, StoreError> {
    let claim = ctx.claim_key(parts)?;
    let limits = &ctx.app.config.guard;
    ctx.update_claim(&claim, |g| {
        admit_send(g, ctx.now, limits, limits.links_per_day)
    })
}

/// Issues `fresh` if the claim may be mailed: at most `max_live_otps` live
/// codes (a new one revokes the oldest), `otps_per_day` a day. Returns the
/// code the flow is to wait for (the fresh one, or when none is sent the
/// newest still live) and whether `fresh` was issued.
pub fn issue_otp(
    g: &mut ClaimGuard,
    fresh: &LiveOtp,
    now: u64,
    limits: &GuardConfig,
) -> (String, bool) {
    g.otps.retain(|o| o.expires > now && o.attempts_left > 0);
    if !admit_send(g, now, limits, limits.otps_per_day) {
        let newest = g.otps.last().map(|o| o.id.clone());
        return (newest.unwrap_or_else(|| fresh.id.clone()), false);
    }
    g.otps.push(fresh.clone());
    while g.otps.len() > limits.max_live_otps {
        g.otps.remove(0);
    }
    (fresh.id.clone(), true)
}

/// What entering a code did to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entered {
    /// Right: the code is used up.
    Right,
    /// Wrong, with the entries left (0: the code died).
    Wrong(u32),
    Expired,
    /// Revoked, used, or killed by wrong entries in another flow.
    Gone,
}

/// Enters the code whose keyed digest is `digest` against the live code
/// `otp_id` of the claim. Wrong entries count against the code, in
/// whichever flow they are made; a right, expired or dead code leaves the
/// record, so that two requests with it cannot both succeed.
pub fn enter_otp(g: &mut ClaimGuard, otp_id: &str, digest: &str, now: u64) -> Entered {
    let Some(i) = g.otps.iter().position(|o| o.id == otp_id) else {
        return Entered::Gone;
    };
    if now >= g.otps[i].expires {
        g.otps.remove(i);
        return Entered::Expired;
    }
    if constant_time_eq(digest, &g.otps[i].digest) {
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
}

/// A mail a recovery step may send, and what the audit says of it.
pub struct Mailing<'a> {
    /// The audit event (`otp_issued`, `link_issued`).
    pub event: &'a str,
    /// What the letter carries, as `/metrics` counts it when it goes to
    /// the account.
    pub issues: Issued,
    /// The account the claim matched, if any.
    pub matched: Option<&'a Account>,
    /// Whether the claim admitted a send now (`admit_send`).
    pub admitted: bool,
    /// The address as typed: a decoy is queued "to" it, and never sent.
    pub typed: &'a str,
    pub from: Option<&'a str>,
    pub letter: &'a Letter,
    /// How long the mail is worth sending.
    pub lifetime: u64,
    /// The audit's note when nothing matched.
    pub unmatched: &'a str,
}

/// The end of a step that may mail the user, the same on every branch: the
/// letter is sent to the account when the claim matched and admitted a
/// send, and is otherwise queued as a decoy (same work, same time, never
/// sent); the step's flow is written (`write_flow`); and the store is
/// flushed, so that a crash cannot lose the queued mail once the page says
/// it was sent. Flushed on both branches: an fsync on the matching one only
/// would tell by its time that the address matched. Only a letter sent is
/// counted as issued (one atomic add, nothing a client can time); a decoy
/// issues nothing.
pub fn deliver(
    ctx: &Ctx<'_>,
    mailing: &Mailing<'_>,
    write_flow: impl FnOnce() -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let app = ctx.app;
    let (now, site) = (ctx.now, ctx.site);
    let useful = now..now + mailing.lifetime;
    match (mailing.matched, mailing.admitted) {
        (Some(account), true) => {
            let to = account.email.as_deref().unwrap_or_default();
            app.outbox
                .send(&app.store, site, mailing.from, to, mailing.letter, useful)?;
            app.metrics.issued(mailing.issues);
            ctx.audit(mailing.event, Some(&account.id), "sent")?;
        }
        (Some(account), false) => {
            app.outbox
                .send_decoy(&app.store, site, mailing.typed, mailing.letter, useful)?;
            let note = "send suppressed: cooldown or daily limit";
            ctx.audit(mailing.event, Some(&account.id), note)?;
        }
        (None, _) => {
            app.outbox
                .send_decoy(&app.store, site, mailing.typed, mailing.letter, useful)?;
            ctx.audit(mailing.event, None, mailing.unmatched)?;
        }
    }
    write_flow()?;
    app.store.flush()
}

/// Sets a new password: hashed, the security code cleared, the lock
/// lifted (a recovery proves the owner), and the generation raised so that
/// every session, code and link of the account dies. Only over the
/// generation the recovery was for: false (nothing changed) when the
/// password changed meanwhile. The caller flushes before telling the user.
pub fn change_password(
    app: &App,
    account: &mut Account,
    password: &str,
) -> Result<bool, StoreError> {
    let phc = app.hasher.hash(password);
    let generation = account.generation;
    let changed = app.store.update_account(account.site, &account.id, |a| {
        // Disabled meanwhile: the recovery ends as a non-match's would.
        let same = a.generation == generation && a.is_enabled();
        if same {
            a.password_phc = phc.clone();
            a.security_code_phc = None;
            a.generation += 1;
            a.locked = false;
            a.temporary_until = None;
        }
        same
    })?;
    if changed != Some(true) {
        return Ok(false);
    }
    account.password_phc = phc;
    account.security_code_phc = None;
    account.generation += 1;
    account.locked = false;
    account.temporary_until = None;
    app.store
        .remove_login_guard(Secret::Password, Area::Site(account.site), &account.id)?;
    app.store
        .remove_login_guard(Secret::SecurityCode, Area::Site(account.site), &account.id)?;
    Ok(true)
}

/// Tells the account's address that its password changed, with the time,
/// the client and a "this was not me" link (`make` writes the site's
/// letter). A provisional address reaches nobody and gets nothing. The
/// notice is useful for a day; after that it is stale news. The caller
/// flushes.
pub fn notify_password_changed(
    ctx: &Ctx<'_>,
    account: &Account,
    from: Option<&str>,
    make: impl FnOnce(&Notice<'_>) -> Letter,
) -> Result<(), StoreError> {
    let Some(to) = account
        .email
        .as_deref()
        .filter(|_| !account.is_provisional())
    else {
        return Ok(());
    };
    let app = ctx.app;
    let url = not_me_link(app, account, ctx.now)?;
    let when = clock::date_time(ctx.now, app.utc_offset);
    let notice = Notice {
        account: &account.id,
        when: &when,
        client: &ctx.req.client.to_string(),
        not_me_url: &url,
    };
    let letter = make(&notice);
    let useful = ctx.now..ctx.now + DAY;
    app.outbox
        .send(&app.store, ctx.site, from, to, &letter, useful)?;
    Ok(())
}

/// Makes the "this was not me" link of a password-changed notice: it
/// works for a day, and only while the password is the one just set.
fn not_me_link(app: &App, account: &Account, now: u64) -> Result<String, StoreError> {
    let token = Token::generate();
    let link = Link {
        kind: LinkKind::NotMe,
        site: account.site,
        account: account.id.clone(),
        generation: account.generation,
        state: LinkState::Live,
        lang: crate::text::Lang::Ja,
    };
    let key = app.digest(Purpose::Link, token.expose())?;
    app.store.put_link(&key, &link, now + DAY)?;
    Ok(format!(
        "{}/{}/not-me?token={}",
        app.config.public_base(),
        account.site.name(),
        token.expose()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> GuardConfig {
        GuardConfig {
            max_live_otps: 2,
            otps_per_day: 3,
            links_per_day: 3,
            window_secs: 1000,
            send_cooldown_secs: 10,
            ..GuardConfig::default()
        }
    }

    fn otp(id: &str, expires: u64) -> LiveOtp {
        LiveOtp {
            id: id.into(),
            digest: format!("digest-{id}"),
            expires,
            attempts_left: 2,
        }
    }

    #[test]
    fn a_claim_is_mailed_at_most_per_day_and_never_within_the_cooldown() {
        let (mut g, l) = (ClaimGuard::default(), limits());
        assert!(admit_send(&mut g, 100, &l, 3));
        assert!(!admit_send(&mut g, 105, &l, 3), "within the cooldown");
        assert!(admit_send(&mut g, 110, &l, 3));
        assert!(admit_send(&mut g, 120, &l, 3));
        assert!(!admit_send(&mut g, 200, &l, 3), "the day's three are used");
        assert_eq!(g.issued, [100, 110, 120]);
        assert!(admit_send(&mut g, 1100, &l, 3), "the first left the window");
    }

    #[test]
    fn a_new_code_revokes_the_oldest_and_a_refused_one_waits_for_the_newest() {
        let (mut g, l) = (ClaimGuard::default(), limits());
        assert_eq!(
            issue_otp(&mut g, &otp("a", 500), 100, &l),
            ("a".into(), true)
        );
        assert_eq!(
            issue_otp(&mut g, &otp("b", 500), 105, &l),
            ("a".into(), false)
        );
        assert_eq!(
            issue_otp(&mut g, &otp("c", 500), 110, &l),
            ("c".into(), true)
        );
        assert_eq!(
            issue_otp(&mut g, &otp("d", 500), 120, &l),
            ("d".into(), true)
        );
        let ids: Vec<_> = g.otps.iter().map(|o| o.id.as_str()).collect();
        assert_eq!(ids, ["c", "d"], "at most two live; the oldest went");
        assert_eq!(
            issue_otp(&mut g, &otp("e", 500), 130, &l),
            ("d".into(), false)
        );
    }

    #[test]
    fn a_code_answers_once_and_dies_of_wrong_entries_or_age() {
        let mut g = ClaimGuard {
            otps: vec![otp("a", 500), otp("b", 500)],
            ..ClaimGuard::default()
        };
        assert_eq!(enter_otp(&mut g, "a", "wrong", 100), Entered::Wrong(1));
        assert_eq!(enter_otp(&mut g, "a", "digest-a", 100), Entered::Right);
        assert_eq!(enter_otp(&mut g, "a", "digest-a", 100), Entered::Gone);
        assert_eq!(enter_otp(&mut g, "b", "wrong", 100), Entered::Wrong(1));
        assert_eq!(enter_otp(&mut g, "b", "wrong", 100), Entered::Wrong(0));
        assert_eq!(enter_otp(&mut g, "b", "digest-b", 100), Entered::Gone);
        g.otps.push(otp("c", 500));
        assert_eq!(enter_otp(&mut g, "c", "digest-c", 500), Entered::Expired);
        assert!(g.otps.is_empty());
    }
}
