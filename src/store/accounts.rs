//! Accounts: by site and ID, kaigo accounts by office, and the census of
//! the stored password hashes' costs.

use super::*;

/// The key of an account: `site:id`.
pub(super) fn account_key(site: Site, id: &str) -> Vec<u8> {
    format!("{}:{id}", site.name()).into_bytes()
}

impl Store {
    pub fn account(&self, site: Site, id: &str) -> Result<Option<Account>> {
        let t = self.trees()?;
        t.accounts
            .get(account_key(site, id))?
            .map(|v| decode(&v))
            .transpose()
    }

    /// Changes an account atomically: `change` sees the stored record and
    /// says whether to write it back (it may run more than once, on a fresh
    /// copy each time: keep it pure). Requests run side by side on the
    /// hashing workers, so every change of an existing account goes
    /// through here: a write never puts back what another one changed
    /// (a password set by a recovery, say). None when there is no account.
    pub fn update_account(
        &self,
        site: Site,
        id: &str,
        mut change: impl FnMut(&mut Account) -> bool,
    ) -> Result<Option<bool>> {
        let t = self.trees()?;
        let key = account_key(site, id);
        loop {
            let Some(old) = t.accounts.get(&key)? else {
                return Ok(None);
            };
            let mut account: Account = decode(&old)?;
            if !change(&mut account) {
                return Ok(Some(false));
            }
            let new = encode(&account)?;
            if t.accounts
                .compare_and_swap(&key, Some(old), Some(new))?
                .is_ok()
            {
                return Ok(Some(true));
            }
        }
    }

    /// Creates or replaces an account and its office index entry.
    pub fn put_account(&self, account: &Account) -> Result<()> {
        let t = self.trees()?;
        // Account first: an index entry never points at nothing.
        t.accounts
            .insert(account_key(account.site, &account.id), encode(account)?)?;
        if let Some(office) = &account.office {
            let index_key = format!("{}{}", office.number, office.prefecture);
            t.offices.insert(index_key, account.id.as_bytes())?;
        }
        Ok(())
    }

    /// Creates or replaces many accounts in two batches (accounts, then
    /// the office index): an import of a million stays fast.
    pub fn put_accounts(&self, accounts: &[Account]) -> Result<()> {
        let t = self.trees()?;
        let mut rows = sled::Batch::default();
        let mut index = sled::Batch::default();
        for account in accounts {
            rows.insert(account_key(account.site, &account.id), encode(account)?);
            if let Some(office) = &account.office {
                index.insert(
                    format!("{}{}", office.number, office.prefecture).into_bytes(),
                    account.id.as_bytes(),
                );
            }
        }
        t.accounts.apply_batch(rows)?;
        t.offices.apply_batch(index)?;
        Ok(())
    }

    /// The kaigo accounts of an office, ordered by billing prefecture.
    pub fn kaigo_accounts_of_office(&self, office: &str) -> Result<Vec<Account>> {
        let t = self.trees()?;
        let mut found = Vec::new();
        for entry in t.offices.scan_prefix(office.as_bytes()) {
            let (_, id) = entry?;
            let id = String::from_utf8_lossy(&id).into_owned();
            if let Some(account) = self.account(Site::Kaigo, &id)? {
                found.push(account);
            }
        }
        Ok(found)
    }

    /// Calls `each` with every account's password hash (a scan of the
    /// accounts: the census of their costs, in the background).
    pub fn for_each_password_hash(&self, mut each: impl FnMut(&str)) -> Result<()> {
        #[derive(Deserialize)]
        struct Hash {
            password_phc: String,
        }
        let t = self.trees()?;
        for value in t.accounts.iter().values() {
            let hash: Hash = decode(&value?)?;
            each(&hash.password_phc);
        }
        Ok(())
    }

    /// The costs (`m=…,t=…,p=…`) the stored password hashes have, as far
    /// as kagi knows: what imports brought and what was configured.
    pub fn hash_costs(&self) -> Result<std::collections::BTreeSet<String>> {
        let t = self.trees()?;
        match t.meta.get("hash_costs")? {
            Some(bytes) => decode(&bytes),
            None => Ok(Default::default()),
        }
    }

    pub fn put_hash_costs(&self, costs: &std::collections::BTreeSet<String>) -> Result<()> {
        let t = self.trees()?;
        t.meta.insert("hash_costs", encode(costs)?)?;
        Ok(())
    }

    pub fn account_count(&self) -> usize {
        self.trees().map_or(0, |t| t.accounts.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::*;

    #[test]
    fn office_index_lists_an_offices_accounts() {
        let (store, dir) = temp_store();
        for pref in ["14", "13"] {
            store
                .put_account(&Account {
                    site: Site::Kaigo,
                    id: format!("KJ{pref}1311111111"),
                    email: None,
                    password_phc: "x".into(),
                    security_code_phc: None,
                    generation: 0,
                    office: Some(Office {
                        number: "1311111111".into(),
                        prefecture: pref.into(),
                    }),
                    coordinator: false,
                    locked: false,
                })
                .unwrap();
        }
        let ids: Vec<String> = store
            .kaigo_accounts_of_office("1311111111")
            .unwrap()
            .into_iter()
            .map(|a| a.id)
            .collect();
        assert_eq!(ids, ["KJ131311111111", "KJ141311111111"]);
        assert!(store
            .kaigo_accounts_of_office("2711111111")
            .unwrap()
            .is_empty());
        drop(store);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
