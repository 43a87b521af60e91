//! Rate limits per client address: a token bucket per (action, address),
//! in memory, or in the database that several instances share (`Shared`),
//! so that N instances enforce one limit, not N. IPv6 clients share a
//! bucket per /64, which is what one client usually gets. Refused requests are tallied per client, action and
//! minute, so that the audit trail records a flood in a few entries
//! instead of one per request.

use crate::config::{Bucket, RateLimitConfig};
use crate::site::Site;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// The actions that are limited.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    Recovery,
    Otp,
    Captcha,
    Login,
    Postal,
}

impl Action {
    pub const ALL: [Action; 5] = [
        Action::Recovery,
        Action::Otp,
        Action::Captcha,
        Action::Login,
        Action::Postal,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Action::Recovery => "recovery",
            Action::Otp => "otp",
            Action::Captcha => "captcha",
            Action::Login => "login",
            Action::Postal => "postal",
        }
    }

    /// Whether the action starts something new that an anonymous client
    /// makes kagi write (a recovery, a postal request), rather than going
    /// on with what is under way: refused while the disk runs low.
    pub fn starts_new_work(self) -> bool {
        matches!(self, Action::Recovery | Action::Captcha | Action::Postal)
    }
}

/// Refused requests of one client and action in one minute.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusals {
    /// None: the operators' console.
    pub site: Option<Site>,
    pub action: Action,
    /// The client (IPv6 by its /64); None for all clients beyond the
    /// tally's bound, counted together.
    pub client: Option<IpAddr>,
    /// The minute's start (Unix seconds).
    pub minute: u64,
    pub count: u64,
}

/// Clients tallied one by one per minute at most; the rest are counted
/// together, so that a flood from many addresses stays a few entries.
const MAX_TALLIED: usize = 1024;

/// Buckets beyond this many are pruned of the full ones.
const PRUNE_ABOVE: usize = 50_000;

/// Where the buckets are kept when instances share them.
pub trait Shared: Send + Sync {
    /// Applies `change` to the bucket stored under `key` (None when there
    /// is none) in one step no other instance comes between (`change` may
    /// run again if one did), keeping the result until `expires`.
    fn change_bucket(
        &self,
        key: &str,
        now: u64,
        expires: u64,
        change: &mut dyn FnMut(Option<State>) -> State,
    ) -> Result<(), String>;
}

pub struct RateLimiter {
    config: RateLimitConfig,
    buckets: Mutex<HashMap<(Action, IpAddr), State>>,
    /// The buckets in the shared database, when several instances run.
    shared: std::sync::OnceLock<std::sync::Arc<dyn Shared>>,
    /// Refusals not yet written to the audit trail.
    refused: Mutex<Vec<Refusals>>,
    /// Refusals since the start, per action (`Action::ALL`'s order), for
    /// `/metrics`; the tallies above are emptied as they are written.
    refused_total: [AtomicU64; 5],
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RateLimiter(…)")
    }
}

/// A bucket: its tokens when last brought up to date.
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
pub struct State {
    tokens: f64,
    /// When `tokens` was last brought up to date (Unix seconds).
    at: u64,
}

/// `state` (a full bucket when None) refilled at `now`, with a token taken
/// if there is one: the bucket after, and Ok or the seconds until a token.
fn take_from(state: Option<State>, bucket: Bucket, now: u64) -> (State, Result<(), u64>) {
    let burst = f64::from(bucket.burst);
    let rate = 1.0 / bucket.refill_secs as f64;
    let mut state = state.unwrap_or(State {
        tokens: burst,
        at: now,
    });
    state.tokens = (state.tokens + now.saturating_sub(state.at) as f64 * rate).min(burst);
    state.at = now;
    if state.tokens >= 1.0 {
        state.tokens -= 1.0;
        (state, Ok(()))
    } else {
        (
            state,
            Err((((1.0 - state.tokens) / rate).ceil() as u64).max(1)),
        )
    }
}

impl RateLimiter {
    pub fn new(config: RateLimitConfig) -> RateLimiter {
        RateLimiter {
            config,
            buckets: Mutex::new(HashMap::new()),
            shared: std::sync::OnceLock::new(),
            refused: Mutex::new(Vec::new()),
            refused_total: Default::default(),
        }
    }

    fn bucket(&self, action: Action) -> Bucket {
        match action {
            Action::Recovery => self.config.recovery,
            Action::Otp => self.config.otp,
            Action::Captcha => self.config.captcha,
            Action::Login => self.config.login,
            Action::Postal => self.config.postal,
        }
    }

    /// Keeps the buckets in `shared` from now on, instead of in memory.
    pub fn share_through(&self, shared: std::sync::Arc<dyn Shared>) {
        let _ = self.shared.set(shared);
    }

    /// Requests refused per action since the start.
    pub fn refused_since_start(&self) -> Vec<(&'static str, u64)> {
        Action::ALL
            .iter()
            .map(|&a| {
                (
                    a.name(),
                    self.refused_total[a as usize].load(Ordering::Relaxed),
                )
            })
            .collect()
    }

    /// Tallies a refused request of `client` for `action` at `now`.
    pub fn tally_refusal(&self, site: Option<Site>, action: Action, client: IpAddr, now: u64) {
        self.refused_total[action as usize].fetch_add(1, Ordering::Relaxed);
        let minute = now - now % 60;
        let mut refused = self.refused.lock().unwrap_or_else(|e| e.into_inner());
        let tallied = refused.len();
        let client = Some(client_group(client));
        let same = |r: &&mut Refusals, who: Option<IpAddr>| {
            r.site == site && r.action == action && r.minute == minute && r.client == who
        };
        let slot = match refused.iter_mut().position(|r| same(&r, client)) {
            Some(i) => Some(i),
            None if tallied >= MAX_TALLIED => refused.iter_mut().position(|r| same(&r, None)),
            None => None,
        };
        match slot {
            Some(i) => refused[i].count += 1,
            None => refused.push(Refusals {
                site,
                action,
                client: client.filter(|_| tallied < MAX_TALLIED),
                minute,
                count: 1,
            }),
        }
    }

    /// The tallies of minutes that have ended by `now` (all of them when
    /// `all`), taken out to be written.
    pub fn take_refusals(&self, now: u64, all: bool) -> Vec<Refusals> {
        let current = now - now % 60;
        let mut refused = self.refused.lock().unwrap_or_else(|e| e.into_inner());
        let (done, open): (Vec<_>, Vec<_>) =
            refused.drain(..).partition(|r| all || r.minute < current);
        *refused = open;
        done
    }

    /// Takes a token for `action` from `client`'s bucket at time `now`.
    /// Ok when there was one; otherwise the seconds until there is.
    pub fn take(&self, action: Action, client: IpAddr, now: u64) -> Result<(), u64> {
        let bucket = self.bucket(action);
        let group = client_group(client);
        if let Some(shared) = self.shared.get() {
            // Full again after this many seconds: the record can go then.
            let full_in = u64::from(bucket.burst) * bucket.refill_secs + 1;
            let key = format!("bucket:{}:{group}", action.name());
            let mut answer = Ok(());
            let changed = shared.change_bucket(&key, now, now + full_in, &mut |state| {
                let (after, taken) = take_from(state, bucket, now);
                answer = taken;
                after
            });
            // A database that cannot be reached fails the request anyway,
            // with its own 503; the limit does not add a second refusal.
            return changed.map_or(Ok(()), |()| answer);
        }
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() > PRUNE_ABOVE {
            buckets.retain(|(a, _), s| {
                let b = self.bucket(*a);
                let refilled = now.saturating_sub(s.at) as f64 / b.refill_secs as f64;
                s.tokens + refilled < f64::from(b.burst)
            });
        }
        let state = buckets.entry((action, group)).or_insert(State {
            tokens: f64::from(bucket.burst),
            at: now,
        });
        let (after, taken) = take_from(Some(*state), bucket, now);
        *state = after;
        taken
    }
}

/// The address a client is known by, for its rate limits and its share of
/// connections: IPv4 as is, IPv6 by its /64 (what one client usually gets).
pub fn client_group(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut octets = v6.octets();
                octets[8..].fill(0);
                IpAddr::V6(octets.into())
            }
        },
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_empties_and_refills_per_client() {
        let config = RateLimitConfig {
            login: Bucket {
                burst: 2,
                refill_secs: 10,
            },
            ..Default::default()
        };
        let limiter = RateLimiter::new(config);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert_eq!(limiter.take(Action::Login, a, 100), Ok(()));
        assert_eq!(limiter.take(Action::Login, a, 100), Ok(()));
        assert_eq!(limiter.take(Action::Login, a, 100), Err(10));
        assert_eq!(limiter.take(Action::Login, a, 104), Err(6));
        // Another client, another action: their own buckets.
        assert_eq!(limiter.take(Action::Login, b, 104), Ok(()));
        assert_eq!(limiter.take(Action::Otp, a, 104), Ok(()));
        assert_eq!(limiter.take(Action::Login, a, 110), Ok(()));
        assert_eq!(limiter.take(Action::Login, a, 110), Err(10));
    }

    #[test]
    fn refusals_are_tallied_per_client_action_and_minute_and_bounded() {
        let limiter = RateLimiter::new(RateLimitConfig::default());
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        for now in 120..170 {
            limiter.tally_refusal(Some(Site::Kaigo), Action::Login, a, now);
        }
        limiter.tally_refusal(Some(Site::Kaigo), Action::Login, a, 185);
        assert!(
            limiter.take_refusals(150, false).is_empty(),
            "the minute goes on"
        );
        let ended = limiter.take_refusals(185, false);
        assert_eq!(ended.len(), 1);
        assert_eq!((ended[0].minute, ended[0].count), (120, 50));
        assert_eq!(ended[0].client, Some(a));
        // A flood from ever new addresses stays within the bound.
        for n in 0..5000u32 {
            let ip = IpAddr::from(n.to_be_bytes());
            limiter.tally_refusal(Some(Site::Portal), Action::Captcha, ip, 200);
        }
        let all = limiter.take_refusals(200, true);
        assert!(all.len() <= MAX_TALLIED + 2, "{}", all.len());
        assert_eq!(all.iter().map(|r| r.count).sum::<u64>(), 5001);
        assert!(all.iter().any(|r| r.client.is_none()));
    }

    #[test]
    fn ipv6_clients_share_a_bucket_per_64() {
        let config = RateLimitConfig {
            otp: Bucket {
                burst: 1,
                refill_secs: 60,
            },
            ..Default::default()
        };
        let limiter = RateLimiter::new(config);
        let one: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let same_64: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other_64: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert!(limiter.take(Action::Otp, one, 0).is_ok());
        assert!(limiter.take(Action::Otp, same_64, 0).is_err());
        assert!(limiter.take(Action::Otp, other_64, 0).is_ok());
    }
}
