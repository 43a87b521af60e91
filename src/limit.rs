//! Rate limits per client address: a token bucket per (action, address),
//! in memory. IPv6 clients share a bucket per /64, which is what one
//! client usually gets.

use crate::config::{Bucket, RateLimitConfig};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

/// The actions that are limited.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    Recovery,
    Otp,
    Captcha,
    Login,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::Recovery => "recovery",
            Action::Otp => "otp",
            Action::Captcha => "captcha",
            Action::Login => "login",
        }
    }
}

/// Buckets beyond this many are pruned of the full ones.
const PRUNE_ABOVE: usize = 50_000;

#[derive(Debug)]
pub struct RateLimiter {
    config: RateLimitConfig,
    buckets: Mutex<HashMap<(Action, IpAddr), State>>,
}

#[derive(Clone, Copy, Debug)]
struct State {
    tokens: f64,
    /// When `tokens` was last brought up to date (Unix seconds).
    at: u64,
}

impl RateLimiter {
    pub fn new(config: RateLimitConfig) -> RateLimiter {
        RateLimiter {
            config,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn bucket(&self, action: Action) -> Bucket {
        match action {
            Action::Recovery => self.config.recovery,
            Action::Otp => self.config.otp,
            Action::Captcha => self.config.captcha,
            Action::Login => self.config.login,
        }
    }

    /// Takes a token for `action` from `client`'s bucket at time `now`.
    /// Ok when there was one; otherwise the seconds until there is.
    pub fn take(&self, action: Action, client: IpAddr, now: u64) -> Result<(), u64> {
        let bucket = self.bucket(action);
        let burst = f64::from(bucket.burst);
        let rate = 1.0 / bucket.refill_secs as f64;
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() > PRUNE_ABOVE {
            buckets.retain(|(a, _), s| {
                let b = self.bucket(*a);
                let refilled = now.saturating_sub(s.at) as f64 / b.refill_secs as f64;
                s.tokens + refilled < f64::from(b.burst)
            });
        }
        let state = buckets
            .entry((action, client_group(client)))
            .or_insert(State {
                tokens: burst,
                at: now,
            });
        state.tokens = (state.tokens + now.saturating_sub(state.at) as f64 * rate).min(burst);
        state.at = now;
        if state.tokens >= 1.0 {
            state.tokens -= 1.0;
            Ok(())
        } else {
            Err((((1.0 - state.tokens) / rate).ceil() as u64).max(1))
        }
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
