//! The application: everything a request handler needs. The router that
//! sends each path to its site is `router`, above the sites.

use crate::config::Config;
use crate::limit::RateLimiter;
use crate::mail::Outbox;
use crate::secret::{Hasher, Purpose};
use crate::store::Store;
use crate::store::StoreError;
use std::sync::{Arc, Mutex};

/// Shared by every request; read-only apart from the store.
#[derive(Debug)]
pub struct App {
    pub config: Config,
    pub store: Arc<Store>,
    /// Shared with the sweeper, which counts the costs of the stored hashes.
    pub hasher: Arc<Hasher>,
    pub outbox: Outbox,
    /// Shared with the sweeper, which writes the refusals it tallies.
    pub limiter: Arc<RateLimiter>,
    /// The portal's live CAPTCHA challenges (digests only), in memory.
    pub challenges: crate::captcha::Challenges,
    /// The clock's zone, seconds east of UTC.
    pub utc_offset: i32,
    /// `/dev/` pages (captured mail) are served: demo mode only.
    pub dev_pages: bool,
    /// Running as `kagi demo`: the demo operator may log in, and
    /// `/dev/totp` shows its code.
    pub demo: bool,
    /// The bearer token of `/admin/…`.
    pub admin_token: String,
    /// A warning on top of every page, e.g. that this is a demo.
    pub banner: Option<crate::pages::Banner>,
    /// Demo only: the answers of live CAPTCHAs, for `/dev/captcha`. Kept in
    /// memory, never in the store, which holds only digests.
    pub dev_captchas: Option<Mutex<std::collections::VecDeque<DevCaptcha>>>,
    /// Held while a portal registration checks its address and makes its
    /// account: two links of one address cannot both make one.
    pub registering: Mutex<()>,
    /// The counters `/metrics` reports; shared with the request thread and
    /// the hashing pool, which count.
    pub metrics: Arc<crate::metrics::Metrics>,
}

/// The most mails one answer of `/dev/mail.json` or `/admin/mail` holds
/// (a few KiB each): automation pages through the rest with `after`.
pub const MAX_MAIL_PAGE: usize = 500;

/// A live CAPTCHA as `/dev/captcha` lists it.
#[derive(Debug, Clone)]
pub struct DevCaptcha {
    pub id: String,
    pub answer: String,
    pub expires: u64,
}

impl App {
    /// The keyed digest of `value` for `purpose` (the key is the key file's,
    /// read when the database opened).
    pub fn digest(&self, purpose: Purpose, value: &str) -> Result<String, StoreError> {
        Ok(self.store.keys()?.digester.digest(purpose, value))
    }

    /// Notes a CAPTCHA's answer for `/dev/captcha` (demo only).
    pub fn remember_dev_captcha(&self, id: &str, answer: &str, expires: u64, now: u64) {
        if let Some(list) = &self.dev_captchas {
            let mut list = list.lock().unwrap_or_else(|e| e.into_inner());
            // Oldest first, all with the same lifetime: the expired and the
            // ones beyond the challenge table's bound are at the front.
            while list
                .front()
                .is_some_and(|c| c.expires <= now || list.len() >= crate::captcha::MAX_LIVE)
            {
                list.pop_front();
            }
            list.push_back(DevCaptcha {
                id: id.into(),
                answer: answer.into(),
                expires,
            });
        }
    }

    /// Tries an undelivered mail again now: a fresh start, given a new day
    /// before it is given up again (a mail whose code or link has expired
    /// is still dropped, not sent). False when there is no such mail. The
    /// caller flushes.
    pub fn retry_mail(&self, id: u64, now: u64) -> Result<bool, StoreError> {
        let mail = self
            .store
            .outbox()?
            .into_iter()
            .find(|m| m.id == id && !m.decoy);
        let Some(mut mail) = mail else {
            return Ok(false);
        };
        mail.failed = None;
        mail.next_attempt = now;
        mail.created = now;
        self.store.update_mail(&mail)?;
        self.outbox.wake();
        Ok(true)
    }

    /// Drops a CAPTCHA from `/dev/captcha` once it has been tried.
    pub fn forget_dev_captcha(&self, id: &str) {
        if let Some(list) = &self.dev_captchas {
            list.lock()
                .unwrap_or_else(|e| e.into_inner())
                .retain(|c| c.id != id);
        }
    }
}
