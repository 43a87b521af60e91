//! Mail: request handlers put messages in the durable outbox and return; the
//! mail thread delivers them (SMTP through mail-send, or the capture
//! mailbox), retrying with backoff. Only this module knows SMTP.

mod smtp;
pub mod templates;

use crate::clock::Clock;
use crate::config::{MailConfig, Transport};
use crate::store::{CapturedMail, OutboxMail, Store, StoreError};
use std::sync::atomic::{AtomicBool, Ordering};
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
}

impl Outbox {
    /// Queues `letter` for `to`, from `from` or else the configured sender;
    /// useless (and dropped) after `not_after`.
    pub fn send(
        &self,
        store: &Store,
        from: Option<&str>,
        to: &str,
        letter: &Letter,
        now: u64,
        not_after: u64,
    ) -> Result<u64, StoreError> {
        self.queue(store, from, to, letter, now, not_after, false)
    }

    /// Queues a decoy: the same letter, written and woken for exactly as a
    /// real one, and dropped unsent by the mail thread. A recovery step
    /// that matched nothing queues one, so that both branches do the same
    /// work in the same time.
    pub fn send_decoy(
        &self,
        store: &Store,
        to: &str,
        letter: &Letter,
        now: u64,
        not_after: u64,
    ) -> Result<u64, StoreError> {
        self.queue(store, None, to, letter, now, not_after, true)
    }

    #[allow(clippy::too_many_arguments)]
    fn queue(
        &self,
        store: &Store,
        from: Option<&str>,
        to: &str,
        letter: &Letter,
        now: u64,
        not_after: u64,
        decoy: bool,
    ) -> Result<u64, StoreError> {
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
        .unwrap_or_else(|| "kagi <no-reply@kagi.invalid>".into());
    let domain = templates::envelope_address(&from)
        .rsplit_once('@')
        .map(|(_, d)| d.to_string())
        .unwrap_or_else(|| "kagi.invalid".into());
    let config = config.clone();
    let handle = std::thread::Builder::new()
        .name("kagi-mail".into())
        .spawn(move || deliver_forever(&config, &store, &clock, &rx, &stop))
        .expect("spawning the mail thread");
    (Outbox { from, domain, wake }, handle)
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
) {
    let transport = config.transport.unwrap_or(Transport::Capture);
    let mut smtp = (transport == Transport::Smtp).then(|| smtp::Smtp::new(config));
    while !stop.load(Ordering::Relaxed) {
        let now = clock.now();
        let pending = match store.outbox() {
            Ok(p) => p,
            Err(e) => {
                eprintln!("kagi: mail: cannot read the outbox: {e}");
                Vec::new()
            }
        };
        for mut mail in pending.into_iter().filter(|m| m.next_attempt <= now) {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            if mail.decoy {
                let _ = store.remove_mail(mail.id);
                continue;
            }
            if mail.not_after <= now {
                eprintln!(
                    "kagi: mail {}: dropped, its code or link expired before delivery",
                    mail.message_id
                );
                let _ = store.remove_mail(mail.id);
                continue;
            }
            let outcome = match &mut smtp {
                None => capture(store, &mail, now),
                Some(smtp) => smtp.deliver(&mail),
            };
            match outcome {
                Delivery::Sent => {
                    if smtp.is_some() {
                        let _ = store.remove_mail(mail.id);
                    }
                }
                Delivery::Temporary(why) => {
                    mail.attempts += 1;
                    let delay = config
                        .retry_initial_secs
                        .saturating_mul(1 << mail.attempts.min(20).saturating_sub(1))
                        .min(config.retry_max_secs);
                    mail.next_attempt = now + delay;
                    eprintln!(
                        "kagi: mail {}: try {} failed ({why}); next in {delay} s",
                        mail.message_id, mail.attempts
                    );
                    mail.last_error = Some(why);
                    let _ = store.update_mail(&mail);
                }
                Delivery::Permanent(why) => {
                    eprintln!(
                        "kagi: mail {}: refused for good ({why}); removed",
                        mail.message_id
                    );
                    let _ = store.remove_mail(mail.id);
                }
            }
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
