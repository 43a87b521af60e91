//! Mail: request handlers put messages in the durable outbox and return; the
//! mail thread delivers them (SMTP through mail-send, or the capture
//! mailbox), retrying with backoff. Only this module knows SMTP.

mod smtp;
pub mod templates;

use crate::clock::Clock;
use crate::config::{MailConfig, Transport};
use crate::site::Site;
use crate::store::{AuditEvent, CapturedMail, OutboxMail, Store, StoreError};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::Duration;
pub use templates::Letter;

/// How long the mail thread waits after being woken.
const SETTLE: Duration = Duration::from_millis(25);

/// The request side of mail: writes to the outbox and wakes the mail thread.
#[derive(Debug)]
pub struct Outbox {
    from: String,
    domain: String,
    wake: Sender<()>,
    /// Mails the mail thread delivered since the start (for `/metrics`).
    sent: Arc<AtomicU64>,
}

impl Outbox {
    /// How many mails were delivered (sent, or captured) since the start.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Wakes the mail thread (after an operator's retry, say).
    pub fn wake(&self) {
        let _ = self.wake.send(());
    }

    /// Queues `letter` for `to`, from `from` or else the configured sender,
    /// at `useful.start`; useless (and dropped) from `useful.end` on.
    pub fn send(
        &self,
        store: &Store,
        site: Site,
        from: Option<&str>,
        to: &str,
        letter: &Letter,
        useful: std::ops::Range<u64>,
    ) -> Result<u64, StoreError> {
        self.queue(store, site, from, to, letter, useful, false)
    }

    /// Queues a decoy: the same letter, written and woken for exactly as a
    /// real one, and dropped unsent by the mail thread. A recovery step
    /// that matched nothing queues one, so that both branches do the same
    /// work in the same time.
    pub fn send_decoy(
        &self,
        store: &Store,
        site: Site,
        to: &str,
        letter: &Letter,
        useful: std::ops::Range<u64>,
    ) -> Result<u64, StoreError> {
        self.queue(store, site, None, to, letter, useful, true)
    }

    #[allow(clippy::too_many_arguments)] // each is one fact of the mail
    fn queue(
        &self,
        store: &Store,
        site: Site,
        from: Option<&str>,
        to: &str,
        letter: &Letter,
        useful: std::ops::Range<u64>,
        decoy: bool,
    ) -> Result<u64, StoreError> {
        let (now, not_after) = (useful.start, useful.end);
        let from = from.unwrap_or(&self.from);
        let id = store.enqueue_mail(|id| {
            let message_id = format!(
                "{id}.{}@{}",
                crate::secret::hex(&crate::secret::random_bytes::<6>()),
                self.domain
            );
            OutboxMail {
                id,
                mime: templates::mime(from, to, letter, &message_id, now),
                message_id,
                to: to.to_string(),
                subject: letter.subject.clone(),
                body: letter.body.clone(),
                created: now,
                not_after,
                attempts: 0,
                next_attempt: now,
                last_error: None,
                decoy,
                site,
                failed: None,
                claimed_until: 0,
            }
        })?;
        // The thread may be busy or gone; the mail is on disk either way.
        let _ = self.wake.send(());
        Ok(id)
    }
}

/// Starts the mail thread; returns the outbox handle and the thread.
pub fn start(
    config: &MailConfig,
    store: Arc<Store>,
    clock: Clock,
    stop: Arc<AtomicBool>,
) -> (Outbox, std::thread::JoinHandle<()>) {
    let (wake, rx) = std::sync::mpsc::channel();
    let from = config
        .from
        .clone()
        .unwrap_or_else(|| crate::config::DEFAULT_FROM.into());
    let domain = crate::address::envelope(&from)
        .rsplit_once('@')
        .map(|(_, d)| d.to_string())
        .unwrap_or_else(|| "kagi.invalid".into());
    let config = config.clone();
    let sent = Arc::new(AtomicU64::new(0));
    let counted = sent.clone();
    let handle = std::thread::Builder::new()
        .name("kagi-mail".into())
        .spawn(move || deliver_forever(&config, &store, &clock, &rx, &stop, &counted))
        .expect("spawning the mail thread");
    let outbox = Outbox {
        from,
        domain,
        wake,
        sent,
    };
    (outbox, handle)
}

/// What one delivery attempt came to.
pub(crate) enum Delivery {
    Sent,
    /// Try again later (connection trouble, 4xx).
    Temporary(String),
    /// Will never work (5xx on the recipient or data).
    Permanent(String),
}

fn deliver_forever(
    config: &MailConfig,
    store: &Store,
    clock: &Clock,
    wake: &Receiver<()>,
    stop: &AtomicBool,
    sent: &AtomicU64,
) {
    let transport = config.transport.unwrap_or(Transport::Capture);
    let mut smtp = (transport == Transport::Smtp).then(|| smtp::Smtp::new(config));
    while !stop.load(Ordering::Relaxed) {
        let now = clock.now();
        // Only mail that is on disk goes out: after a disk error the outbox
        // may still show, from memory, a mail whose step answered 503. (A
        // database that is not open is the sweeper's to report.)
        let pending = match store.flush().and_then(|()| store.outbox()) {
            Ok(p) => p,
            Err(_) if store.unavailable().is_some() => Vec::new(),
            Err(e) => {
                say!("kagi: mail: cannot read the outbox: {e}");
                Vec::new()
            }
        };
        let due = pending
            .into_iter()
            .filter(|m| m.failed.is_none() && m.next_attempt <= now);
        for mail in due {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            if deliver_one(config, store, smtp.as_mut(), mail, now) {
                sent.fetch_add(1, Ordering::Relaxed);
            }
        }
        // The burst is over: the connection is not kept while idle.
        if let Some(smtp) = smtp.as_mut() {
            smtp.close();
        }
        match wake.recv_timeout(Duration::from_secs(1)) {
            // Lets the request that queued the mail finish (its flush, its
            // answer) before this thread competes for the disk and a core.
            Ok(()) => std::thread::sleep(SETTLE),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// One due mail: dropped (a decoy, or its code or link has expired), given
/// up (too old), or tried once. True when it was delivered.
/// How long a mail thread (on PostgreSQL) holds a mail it took, in relay
/// timeouts: longer than any try (connect, greeting, data, each under the
/// timeout), so that no other instance sends it meanwhile; and short, so
/// that the mail of an instance that died while sending goes out soon.
const CLAIM_TIMEOUTS: u64 = 4;
const MIN_CLAIM_SECS: u64 = 60;

fn deliver_one(
    config: &MailConfig,
    store: &Store,
    smtp: Option<&mut smtp::Smtp>,
    mut mail: OutboxMail,
    now: u64,
) -> bool {
    if mail.decoy {
        let _ = store.remove_mail(mail.id);
        return false;
    }
    // Taken first: another mail thread on the same database (another
    // instance) may be at this mail too.
    let lease = (config.smtp.timeout_secs * CLAIM_TIMEOUTS).max(MIN_CLAIM_SECS);
    if !store.claim_mail(mail.id, now, now + lease).unwrap_or(false) {
        return false;
    }
    mail.claimed_until = 0;
    if mail.not_after <= now {
        say!(
            "kagi: mail {}: dropped, its code or link expired before delivery",
            mail.message_id
        );
        let _ = store.remove_mail(mail.id);
        return false;
    }
    if now >= mail.created + config.give_up_after_secs {
        let why = mail.last_error.clone().unwrap_or_default();
        give_up(
            store,
            &mut mail,
            now,
            &format!("not accepted within {} s: {why}", config.give_up_after_secs),
        );
        return false;
    }
    let via_smtp = smtp.is_some();
    let outcome = match smtp {
        None => capture(store, &mail, now),
        Some(smtp) => smtp.deliver(&mail),
    };
    let sent = matches!(outcome, Delivery::Sent);
    match outcome {
        // Captured mail moved to the mailbox in one transaction: if that is
        // lost in a crash, the mail is still in the outbox and is captured
        // again. Sent mail leaves the outbox, on disk before anything else,
        // so that a restart does not send it twice.
        Delivery::Sent if via_smtp => {
            if smtp_removes(&mail, store) {
                let _ = store.flush();
            }
        }
        Delivery::Sent => {}
        Delivery::Temporary(why) => {
            mail.attempts += 1;
            let delay = retry_delay(config, mail.attempts);
            mail.next_attempt = now + delay;
            say!(
                "kagi: mail {}: try {} failed ({why}); next in {delay} s",
                mail.message_id,
                mail.attempts
            );
            mail.last_error = Some(why);
            let _ = store.update_mail(&mail);
        }
        Delivery::Permanent(why) => give_up(store, &mut mail, now, &why),
    }
    sent
}

/// Removes a delivered mail from the outbox (capture has moved it already).
fn smtp_removes(mail: &OutboxMail, store: &Store) -> bool {
    match store.remove_mail(mail.id) {
        Ok(()) => true,
        Err(e) => {
            say!("kagi: mail {}: delivered, but {e}", mail.message_id);
            false
        }
    }
}

/// Marks a mail failed: kept for `kagi mail list`, never tried again
/// unless retried by hand, and noted in the audit trail.
fn give_up(store: &Store, mail: &mut OutboxMail, now: u64, why: &str) {
    say!("kagi: mail {}: failed for good ({why})", mail.message_id);
    mail.failed = Some(now);
    mail.last_error = Some(why.to_string());
    let _ = store.update_mail(mail);
    let _ = store.audit(&AuditEvent {
        prev: String::new(),
        time: now,
        site: Some(mail.site),
        event: "mail_failed".into(),
        account: None,
        client: String::new(),
        outcome: format!("message {}: {why}", mail.message_id),
        ..Default::default()
    });
    let _ = store.flush();
}

/// The wait before try `attempts + 1`: `retry_initial_secs`, doubling per
/// try up to `retry_max_secs`, then jittered down by up to a half so that
/// mails queued together do not come back together.
fn retry_delay(config: &MailConfig, attempts: u32) -> u64 {
    let full = config
        .retry_initial_secs
        .saturating_mul(1 << attempts.clamp(1, 21).saturating_sub(1))
        .min(config.retry_max_secs)
        .max(1);
    let jitter = u64::from_le_bytes(crate::secret::random_bytes::<8>()) % (full / 2 + 1);
    full - jitter
}

fn capture(store: &Store, mail: &OutboxMail, now: u64) -> Delivery {
    let captured = CapturedMail {
        id: mail.id,
        message_id: mail.message_id.clone(),
        to: mail.to.clone(),
        subject: mail.subject.clone(),
        body: mail.body.clone(),
        mime: mail.mime.clone(),
        date: now,
    };
    match store.capture_mail(&captured) {
        Ok(()) => Delivery::Sent,
        Err(e) => Delivery::Temporary(e.to_string()),
    }
}

#[cfg(test)]
mod delay_tests {
    use super::*;

    #[test]
    fn retries_back_off_from_10_s_to_10_min_with_jitter() {
        let config = MailConfig::default();
        for _ in 0..200 {
            let first = retry_delay(&config, 1);
            assert!((5..=10).contains(&first), "{first}");
            let third = retry_delay(&config, 3);
            assert!((20..=40).contains(&third), "{third}");
            let late = retry_delay(&config, 30);
            assert!((300..=600).contains(&late), "{late}");
        }
        let spread: std::collections::HashSet<u64> =
            (0..50).map(|_| retry_delay(&config, 8)).collect();
        assert!(spread.len() > 10, "jitter spreads the retries");
    }
}
