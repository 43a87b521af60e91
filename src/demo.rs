//! The demo accounts of `data/demo.toml`, compiled into the binary so that
//! `kagi demo` needs no file beside it.

use crate::secret::Hasher;
use crate::store::{Account, Site, Store, StoreError};
use serde::Deserialize;

/// The demo data file, as shipped in `data/`.
pub const DEMO_DATA: &str = include_str!("../data/demo.toml");

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DemoData {
    kaigo: Vec<DemoKaigo>,
}

/// One kaigo demo account; passwords are in clear because they are printed
/// for the user anyway, and hashed on load.
#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct DemoKaigo {
    pub office: String,
    pub prefecture: String,
    pub security_email: Option<String>,
    pub password: String,
    pub security_code: Option<String>,
}

impl DemoKaigo {
    pub fn user_id(&self) -> String {
        format!("KJ{}{}", self.prefecture, self.office)
    }
}

/// The demo accounts as the file lists them.
pub fn kaigo_accounts() -> Vec<DemoKaigo> {
    toml::from_str::<DemoData>(DEMO_DATA)
        .expect("data/demo.toml is checked by the tests")
        .kaigo
}

/// Creates the demo accounts that do not exist yet (a reused data directory
/// keeps passwords changed in an earlier run).
pub fn load(store: &Store, hasher: &Hasher) -> Result<Vec<DemoKaigo>, StoreError> {
    let accounts = kaigo_accounts();
    for demo in &accounts {
        if store.account(Site::Kaigo, &demo.user_id())?.is_some() {
            continue;
        }
        store.put_account(&Account {
            site: Site::Kaigo,
            id: demo.user_id(),
            office: demo.office.clone(),
            prefecture: demo.prefecture.clone(),
            email: demo.security_email.clone(),
            password_phc: hasher.hash(&demo.password),
            security_code_phc: demo.security_code.as_deref().map(|c| hasher.hash(c)),
            generation: 0,
        })?;
    }
    store.flush()?;
    Ok(accounts)
}

#[cfg(test)]
mod tests {
    #[test]
    fn demo_file_parses_into_the_documented_accounts() {
        let ids: Vec<String> = super::kaigo_accounts()
            .iter()
            .map(|a| a.user_id())
            .collect();
        assert_eq!(
            ids,
            [
                "KJ131311111111",
                "KJ141311111111",
                "KJ272711111111",
                "KJ010111111111"
            ]
        );
    }
}
