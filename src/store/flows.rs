//! Records with a lifetime: flows, sessions, links, and the guards of
//! claims and logins. Each is written with an entry in the expiry index, a
//! read treats an expired record as absent, and `sweep` deletes what has
//! expired by reading only the index.

use super::*;

impl Store {
    pub(super) fn get_live<T: DeserializeOwned>(
        &self,
        which: Expiring,
        key: &str,
        now: u64,
    ) -> Result<Option<T>> {
        let t = self.trees()?;
        let Some(bytes) = t.tree(which).get(key)? else {
            return Ok(None);
        };
        let timed: Timed<T> = decode(&bytes)?;
        Ok((timed.expires > now).then_some(timed.value))
    }

    pub(super) fn index_key(which: Expiring, key: &str, expires: u64) -> Vec<u8> {
        let mut index_key = expires.to_be_bytes().to_vec();
        index_key.push(which as u8);
        index_key.extend_from_slice(key.as_bytes());
        index_key
    }

    pub(super) fn put_live<T: Serialize>(
        &self,
        which: Expiring,
        key: &str,
        value: &T,
        expires: u64,
    ) -> Result<()> {
        let t = self.trees()?;
        let index_key = Store::index_key(which, key, expires);
        // Index first: a crash between the two writes leaves an index entry
        // that the sweep discards, never a record that is never swept.
        t.expiry.insert(index_key, &[])?;
        let old = t
            .tree(which)
            .insert(key, encode(&Timed { expires, value })?)?;
        t.forget_index_entry(which, key, old.as_deref(), expires)
    }

    /// The recovery flow of a visit, unless absent or expired.
    pub fn flow(&self, key: &str, now: u64) -> Result<Option<Flow>> {
        self.get_live(Expiring::Flows, key, now)
    }

    pub fn put_flow(&self, key: &str, flow: &Flow, expires: u64) -> Result<()> {
        self.put_live(Expiring::Flows, key, flow, expires)
    }

    pub fn remove_flow(&self, key: &str) -> Result<()> {
        let t = self.trees()?;
        t.flows.remove(key)?;
        Ok(())
    }

    /// The session of a visit, unless absent or expired.
    pub fn session(&self, key: &str, now: u64) -> Result<Option<Session>> {
        self.get_live(Expiring::Sessions, key, now)
    }

    pub fn put_session(&self, key: &str, session: &Session, expires: u64) -> Result<()> {
        self.put_live(Expiring::Sessions, key, session, expires)
    }

    /// The keys of an account's live sessions (a scan of the sessions,
    /// which expire within `session.absolute_secs`).
    pub fn account_sessions(&self, site: Site, id: &str, now: u64) -> Result<Vec<String>> {
        let t = self.trees()?;
        let mut keys = Vec::new();
        for entry in t.sessions.iter() {
            let (key, bytes) = entry?;
            let timed: Timed<Session> = decode(&bytes)?;
            if timed.expires > now && timed.value.site == site && timed.value.account == id {
                keys.push(String::from_utf8_lossy(&key).into_owned());
            }
        }
        Ok(keys)
    }

    pub fn remove_session(&self, key: &str) -> Result<()> {
        let t = self.trees()?;
        t.sessions.remove(key)?;
        Ok(())
    }

    /// A reset link by the digest of its token, unless absent or expired.
    pub fn link(&self, key: &str, now: u64) -> Result<Option<Link>> {
        self.get_live(Expiring::Links, key, now)
    }

    /// Stores a link; its expiry time is kept when it is marked used, so the
    /// record (a spent link) lives exactly as long as the link would have.
    pub fn put_link(&self, key: &str, link: &Link, expires: u64) -> Result<()> {
        self.put_live(Expiring::Links, key, link, expires)
    }

    /// The expiry time of a link record, if present.
    pub fn link_expiry(&self, key: &str) -> Result<Option<u64>> {
        let t = self.trees()?;
        let Some(bytes) = t.links.get(key)? else {
            return Ok(None);
        };
        Ok(Some(
            decode::<Timed<serde::de::IgnoredAny>>(&bytes)?.expires,
        ))
    }

    /// Changes a live record atomically: `change` sees the current value
    /// (the default when absent or expired) and may run more than once if
    /// another writer got in between; the first writer wins, the second
    /// sees its result (compare-and-swap).
    pub(super) fn update_live<T, R>(
        &self,
        which: Expiring,
        key: &str,
        now: u64,
        expires: u64,
        mut change: impl FnMut(&mut T) -> R,
    ) -> Result<R>
    where
        T: Serialize + DeserializeOwned + Default,
    {
        let t = self.trees()?;
        let tree = t.tree(which);
        t.expiry
            .insert(Store::index_key(which, key, expires), &[])?;
        loop {
            let old = tree.get(key)?;
            let mut value = match &old {
                Some(bytes) => {
                    let timed: Timed<T> = decode(bytes)?;
                    if timed.expires > now {
                        timed.value
                    } else {
                        T::default()
                    }
                }
                None => T::default(),
            };
            let result = change(&mut value);
            let new = encode(&Timed { expires, value })?;
            if tree.compare_and_swap(key, old.clone(), Some(new))?.is_ok() {
                t.forget_index_entry(which, key, old.as_deref(), expires)?;
                return Ok(result);
            }
        }
    }

    /// Changes the guard of a claim (kept for `window` seconds, a day
    /// unless configured, after its last change).
    pub fn update_claim_guard<R>(
        &self,
        claim: &str,
        now: u64,
        window: u64,
        change: impl FnMut(&mut ClaimGuard) -> R,
    ) -> Result<R> {
        let key = claim_record(claim);
        self.update_live(Expiring::Guards, &key, now, now + window, change)
    }

    /// A registration waiting for its address, unless absent or expired.
    pub fn registration(&self, key: &str, now: u64) -> Result<Option<Registration>> {
        self.get_live(Expiring::Registrations, key, now)
    }

    pub fn put_registration(&self, key: &str, r: &Registration, expires: u64) -> Result<()> {
        self.put_live(Expiring::Registrations, key, r, expires)
    }

    /// Takes a registration out, atomically: the one caller that finds it
    /// gets it, any other None (it is used once).
    pub fn take_registration(&self, key: &str, now: u64) -> Result<Option<Registration>> {
        let t = self.trees()?;
        let Some(bytes) = t.registrations.get(key)? else {
            return Ok(None);
        };
        let timed: Timed<Registration> = decode(&bytes)?;
        if timed.expires <= now {
            return Ok(None);
        }
        let taken = t
            .registrations
            .compare_and_swap(key, Some(bytes), None as Option<&[u8]>)?
            .is_ok();
        Ok(taken.then_some(timed.value))
    }

    /// A claim's guard record (empty when there is none).
    pub fn claim_guard(&self, claim: &str, now: u64) -> Result<ClaimGuard> {
        let key = claim_record(claim);
        Ok(self
            .get_live(Expiring::Guards, &key, now)?
            .unwrap_or_default())
    }

    /// The failed attempts at one secret of a user name (known or not).
    pub fn login_guard(
        &self,
        secret: Secret,
        area: Area,
        user: &str,
        now: u64,
    ) -> Result<LoginGuard> {
        Ok(self
            .get_live(Expiring::Guards, &secret.guard_key(area, user), now)?
            .unwrap_or_default())
    }

    /// Changes the failed attempts at one secret of a user name
    /// atomically (`change` may run more than once, on a fresh copy each
    /// time: keep it pure). The record is kept a day after its last change,
    /// and at least as long as any wait it can hold.
    pub fn update_login_guard<R>(
        &self,
        (secret, area, user): (Secret, Area, &str),
        now: u64,
        longest_wait: u64,
        change: impl FnMut(&mut LoginGuard) -> R,
    ) -> Result<R> {
        let expires = now + DAY.max(longest_wait);
        let key = secret.guard_key(area, user);
        self.update_live(Expiring::Guards, &key, now, expires, change)
    }

    /// Forgets failed attempts: after the secret was given right, or a
    /// password reset.
    pub fn remove_login_guard(&self, secret: Secret, area: Area, user: &str) -> Result<()> {
        let t = self.trees()?;
        let key = secret.guard_key(area, user);
        if t.guards.contains_key(&key)? {
            t.guards.remove(key)?;
        }
        Ok(())
    }

    /// Marks a live link used, atomically: true for the one caller that
    /// found it live, false for any other (compare-and-swap).
    pub fn use_link(&self, key: &str, now: u64) -> Result<bool> {
        let t = self.trees()?;
        let Some(old) = t.links.get(key)? else {
            return Ok(false);
        };
        let mut timed: Timed<Link> = decode(&old)?;
        if timed.expires <= now || timed.value.state != LinkState::Live {
            return Ok(false);
        }
        timed.value.state = LinkState::Used;
        let new = encode(&timed)?;
        Ok(t.links.compare_and_swap(key, Some(old), Some(new))?.is_ok())
    }

    /// Deletes up to `batch` records whose time has come, with their index
    /// entries, and returns how many index entries it processed. A record
    /// rewritten with a later expiry keeps living; only its stale index
    /// entry goes.
    pub fn sweep(&self, now: u64, batch: usize) -> Result<usize> {
        let t = self.trees()?;
        let mut done = 0;
        for entry in t.expiry.range(..(now + 1).to_be_bytes().to_vec()) {
            if done == batch {
                break;
            }
            let (index_key, _) = entry?;
            if index_key.len() < 9 {
                t.expiry.remove(&index_key)?;
                continue;
            }
            let Some(which) = Expiring::from_tag(index_key[8]) else {
                t.expiry.remove(&index_key)?;
                continue;
            };
            let key = &index_key[9..];
            let tree = t.tree(which);
            if let Some(bytes) = tree.get(key)? {
                let expires = decode::<Timed<serde::de::IgnoredAny>>(&bytes)
                    .map(|t| t.expires)
                    .unwrap_or(0);
                if expires <= now {
                    // Only if unchanged since read: a concurrent rewrite wins.
                    let _ = tree.compare_and_swap(key, Some(bytes), None as Option<&[u8]>)?;
                }
            }
            t.expiry.remove(&index_key)?;
            done += 1;
        }
        Ok(done)
    }

    /// Records (of any expiring kind) physically present, expired or not.
    pub fn expiring_record_count(&self) -> Result<usize> {
        let t = self.trees()?;
        Ok(t.flows.len()?
            + t.sessions.len()?
            + t.links.len()?
            + t.captchas.len()?
            + t.guards.len()?
            + t.operator_sessions.len()?
            + t.registrations.len()?)
    }
}

/// The guards tree's key of a claim's record.
fn claim_record(claim: &str) -> String {
    format!("claim:{claim}")
}

/// Rate-limit buckets, with the claims' guards, when instances share them
/// (`store.engine = "postgres"`): one limit for all of them.
impl crate::limit::Shared for Store {
    fn change_bucket(
        &self,
        key: &str,
        now: u64,
        expires: u64,
        change: &mut dyn FnMut(Option<crate::limit::State>) -> crate::limit::State,
    ) -> std::result::Result<(), String> {
        self.update_live(Expiring::Guards, key, now, expires, |state| {
            *state = Some(change(*state));
        })
        .map_err(|e| e.to_string())
    }
}

/// CAPTCHA challenges when instances share them: drawn by one, answered
/// at another, each answered once.
impl crate::captcha::Shared for Store {
    fn put_challenge(
        &self,
        id_digest: &str,
        answer_digest: &str,
        expires: u64,
    ) -> std::result::Result<(), String> {
        self.put_live(Expiring::Captchas, id_digest, &answer_digest, expires)
            .map_err(|e| e.to_string())
    }

    fn take_challenge(
        &self,
        id_digest: &str,
        now: u64,
    ) -> std::result::Result<Option<String>, String> {
        let taken = (|| {
            let t = self.trees()?;
            // One removal: of two instances asked at once, one gets it.
            let Some(bytes) = t.captchas.remove(id_digest)? else {
                return Ok(None);
            };
            let timed: Timed<String> = decode(&bytes)?;
            Ok((timed.expires > now).then_some(timed.value))
        })();
        taken.map_err(|e: StoreError| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::*;

    #[test]
    fn a_registration_is_taken_once_and_swept_when_it_expires() {
        let (store, dir) = temp_store();
        let r = Registration {
            institution: "1311112222".into(),
            institution_name: "x".into(),
            contact: "y".into(),
            email: "a@example.jp".into(),
            user: "u".into(),
            dead: false,
            lang: crate::text::Lang::En,
        };
        store.put_registration("k1", &r, 100).unwrap();
        store.put_registration("k2", &r, 100).unwrap();
        assert_eq!(store.take_registration("k1", 50).unwrap(), Some(r.clone()));
        assert_eq!(store.take_registration("k1", 50).unwrap(), None, "once");
        assert_eq!(store.take_registration("k2", 100).unwrap(), None, "expired");
        assert_eq!(store.sweep(100, 100).unwrap(), 2);
        assert_eq!(store.trees().unwrap().registrations.len().unwrap(), 0);
        drop(store);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn expired_records_are_absent_before_any_sweep() {
        let (store, dir) = temp_store();
        store.put_flow("a", &flow(), 100).unwrap();
        assert_eq!(store.flow("a", 99).unwrap(), Some(flow()));
        assert_eq!(store.flow("a", 100).unwrap(), None);
        drop(store);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn sweep_removes_exactly_what_expired() {
        let (store, dir) = temp_store();
        for (key, expires) in [("f1", 100), ("f2", 200), ("f3", 300)] {
            store.put_flow(key, &flow(), expires).unwrap();
        }
        let session = Session {
            site: Site::Kaigo,
            account: "KJ131311111111".into(),
            generation: 0,
            state: SessionState::Active,
            created: 0,
            last_seen: 0,
        };
        store.put_session("s1", &session, 150).unwrap();
        store.put_session("s2", &session, 250).unwrap();
        // f2 is rewritten to live longer: its old index entry goes at once,
        // and could not kill it anyway.
        store.put_flow("f2", &flow(), 400).unwrap();
        assert_eq!(store.trees().unwrap().expiry.len().unwrap(), 5);

        assert_eq!(store.sweep(200, 1000).unwrap(), 2); // f1@100, s1@150
        assert!(store.trees().unwrap().flows.get("f1").unwrap().is_none());
        assert!(store.trees().unwrap().sessions.get("s1").unwrap().is_none());
        assert!(store.trees().unwrap().flows.get("f2").unwrap().is_some());
        assert!(store.trees().unwrap().flows.get("f3").unwrap().is_some());
        assert!(store.trees().unwrap().sessions.get("s2").unwrap().is_some());
        assert_eq!(store.expiring_record_count().unwrap(), 3);

        // Bounded batches: one at a time.
        assert_eq!(store.sweep(1000, 1).unwrap(), 1);
        assert_eq!(store.sweep(1000, 10).unwrap(), 2);
        assert_eq!(store.expiring_record_count().unwrap(), 0);
        assert_eq!(store.trees().unwrap().expiry.len().unwrap(), 0);

        // Links ride the same index.
        let link = Link {
            kind: LinkKind::Reset,
            site: Site::Portal,
            account: "demo-user".into(),
            generation: 0,
            state: LinkState::Live,
            lang: crate::text::Lang::Ja,
        };
        store.put_link("l1", &link, 2000).unwrap();
        assert_eq!(store.sweep(1999, 10).unwrap(), 0);
        assert_eq!(store.link("l1", 1999).unwrap(), Some(link));
        assert_eq!(store.sweep(2000, 10).unwrap(), 1);
        assert_eq!(store.expiring_record_count().unwrap(), 0);
        drop(store);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_guard_rewritten_at_every_attempt_keeps_one_index_entry() {
        let (store, dir) = temp_store();
        for now in 0..50 {
            store
                .update_claim_guard("c", now, 100, |g| g.issued.push(now))
                .unwrap();
            let who = (Secret::Password, Area::Site(Site::Portal), "u");
            store
                .update_login_guard(who, now, 0, |g| g.failures += 1)
                .unwrap();
        }
        assert_eq!(store.trees().unwrap().expiry.len().unwrap(), 2);
        // Kept `window` after the last change.
        assert_eq!(store.sweep(148, 10).unwrap(), 0);
        assert_eq!(store.sweep(149, 10).unwrap(), 1);
        drop(store);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
