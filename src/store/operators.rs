//! Operators (the people who run kagi, apart from the sites' accounts)
//! and their console sessions. An operator's TOTP secret is sealed under
//! the key file's key, with the operator's name as associated data.

use super::*;

impl Store {
    pub fn operator(&self, name: &str) -> Result<Option<Operator>> {
        let t = self.trees()?;
        t.operators.get(name)?.map(|v| decode(&v)).transpose()
    }

    /// Every operator, by name.
    pub fn operators(&self) -> Result<Vec<Operator>> {
        let t = self.trees()?;
        t.operators.iter().values().map(|v| decode(&v?)).collect()
    }

    /// Adds an operator; false (and nothing written) when the name is taken.
    pub fn add_operator(&self, operator: &Operator) -> Result<bool> {
        let t = self.trees()?;
        let swapped = t.operators.compare_and_swap(
            operator.name.as_bytes(),
            None as Option<&[u8]>,
            Some(encode(operator)?),
        )?;
        Ok(swapped.is_ok())
    }

    /// Changes an operator atomically, as `update_account` does an account.
    pub fn update_operator(
        &self,
        name: &str,
        mut change: impl FnMut(&mut Operator) -> bool,
    ) -> Result<Option<bool>> {
        let t = self.trees()?;
        loop {
            let Some(old) = t.operators.get(name)? else {
                return Ok(None);
            };
            let mut operator: Operator = decode(&old)?;
            if !change(&mut operator) {
                return Ok(Some(false));
            }
            let new = encode(&operator)?;
            if t.operators
                .compare_and_swap(name, Some(old), Some(new))?
                .is_ok()
            {
                return Ok(Some(true));
            }
        }
    }

    /// Removes an operator and its sessions. False when there was none.
    pub fn remove_operator(&self, name: &str) -> Result<bool> {
        let t = self.trees()?;
        if t.operators.remove(name)?.is_none() {
            return Ok(false);
        }
        for entry in t.operator_sessions.iter() {
            let (key, bytes) = entry?;
            let timed: Timed<OperatorSession> = decode(&bytes)?;
            if timed.value.operator == name {
                t.operator_sessions.remove(key)?;
            }
        }
        Ok(true)
    }

    /// The operator whose enrolment link has the token digest `digest`,
    /// while the link lives. (Operators are few: a scan.)
    pub fn operator_by_enrolment(&self, digest: &str, now: u64) -> Result<Option<Operator>> {
        for operator in self.operators()? {
            if let Some((d, expires)) = &operator.enrolment {
                if crate::secret::constant_time_eq(d, digest) && now < *expires {
                    return Ok(Some(operator));
                }
            }
        }
        Ok(None)
    }

    /// A TOTP secret sealed for the operator `name`'s record.
    pub fn seal_totp(&self, name: &str, secret: &[u8]) -> Result<Vec<u8>> {
        Ok(self
            .keys()?
            .sealer
            .seal(totp_record(name).as_bytes(), secret))
    }

    /// The operator's TOTP secret, if enrolled and the seal opens.
    pub fn operator_totp(&self, operator: &Operator) -> Result<Option<Vec<u8>>> {
        let Some(sealed) = &operator.totp_sealed else {
            return Ok(None);
        };
        let record = totp_record(&operator.name);
        Ok(self.keys()?.sealer.open(record.as_bytes(), sealed))
    }

    pub fn operator_session(&self, key: &str, now: u64) -> Result<Option<OperatorSession>> {
        self.get_live(Expiring::OperatorSessions, key, now)
    }

    pub fn put_operator_session(
        &self,
        key: &str,
        session: &OperatorSession,
        expires: u64,
    ) -> Result<()> {
        self.put_live(Expiring::OperatorSessions, key, session, expires)
    }

    pub fn remove_operator_session(&self, key: &str) -> Result<()> {
        let t = self.trees()?;
        t.operator_sessions.remove(key)?;
        Ok(())
    }
}

/// The associated data an operator's sealed TOTP secret is bound to: a
/// sealed secret copied into another operator's record does not open.
fn totp_record(name: &str) -> String {
    format!("operator-totp:{name}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::*;

    fn operator(name: &str) -> Operator {
        Operator {
            name: name.into(),
            password_phc: None,
            totp_sealed: None,
            last_totp_step: None,
            generation: 0,
            enrolment: Some(("d1".into(), 100)),
            created: 1,
            demo: false,
        }
    }

    #[test]
    fn a_name_is_taken_once_and_a_sealed_secret_opens_only_for_its_operator() {
        let (store, dir) = temp_store();
        assert!(store.add_operator(&operator("alice")).unwrap());
        assert!(!store.add_operator(&operator("alice")).unwrap());
        let sealed = store.seal_totp("alice", b"0123456789abcdefghij").unwrap();
        store
            .update_operator("alice", |o| {
                o.totp_sealed = Some(sealed.clone());
                true
            })
            .unwrap();
        let alice = store.operator("alice").unwrap().unwrap();
        assert_eq!(
            store.operator_totp(&alice).unwrap().as_deref(),
            Some(&b"0123456789abcdefghij"[..])
        );
        let mut bob = operator("bob");
        bob.totp_sealed = alice.totp_sealed.clone();
        assert_eq!(store.operator_totp(&bob).unwrap(), None);
        assert_eq!(
            store
                .operator_by_enrolment("d1", 99)
                .unwrap()
                .map(|o| o.name),
            Some("alice".into())
        );
        assert!(store.operator_by_enrolment("d1", 100).unwrap().is_none());
        assert!(store.remove_operator("alice").unwrap());
        assert!(store.operator("alice").unwrap().is_none());
        drop(store);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
