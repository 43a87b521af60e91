//! The demo accounts of `data/demo.toml`, compiled into the binary so that
//! `kagi demo` needs no file beside it.

use crate::secret::Hasher;
use crate::site::Site;
use crate::store::{Account, Office, Store, StoreError};
use serde::Deserialize;

/// The demo data file, as shipped in `data/`.
pub const DEMO_DATA: &str = include_str!("../data/demo.toml");

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DemoData {
    kaigo: Vec<DemoKaigo>,
    portal: Vec<DemoPortal>,
}

/// One portal demo account.
#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct DemoPortal {
    /// The user name, or a coordinator's user ID.
    pub user: String,
    pub email: String,
    pub password: String,
    #[serde(default)]
    pub coordinator: bool,
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

fn demo_data() -> DemoData {
    toml::from_str::<DemoData>(DEMO_DATA).expect("data/demo.toml is checked by the tests")
}

/// The kaigo demo accounts as the file lists them.
pub fn kaigo_accounts() -> Vec<DemoKaigo> {
    demo_data().kaigo
}

/// The portal demo accounts as the file lists them.
pub fn portal_accounts() -> Vec<DemoPortal> {
    demo_data().portal
}

/// Creates the demo accounts that do not exist yet (a reused data directory
/// keeps passwords changed in an earlier run).
pub fn load(store: &Store, hasher: &Hasher) -> Result<(), StoreError> {
    let data = demo_data();
    let kaigo = data.kaigo.iter().map(|d| Account {
        site: Site::Kaigo,
        id: d.user_id(),
        email: d.security_email.clone(),
        password_phc: hasher.hash(&d.password),
        security_code_phc: d.security_code.as_deref().map(|c| hasher.hash(c)),
        generation: 0,
        office: Some(Office {
            number: d.office.clone(),
            prefecture: d.prefecture.clone(),
        }),
        coordinator: false,
        locked: false,
    });
    let portal = data.portal.iter().map(|d| Account {
        site: Site::Portal,
        id: d.user.clone(),
        email: Some(d.email.clone()),
        password_phc: hasher.hash(&d.password),
        security_code_phc: None,
        generation: 0,
        office: None,
        coordinator: d.coordinator,
        locked: false,
    });
    for account in kaigo.chain(portal) {
        if store.account(account.site, &account.id)?.is_none() {
            store.put_account(&account)?;
        }
    }
    store.flush()?;
    Ok(())
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
