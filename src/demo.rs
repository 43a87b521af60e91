//! The demo accounts of `data/demo.toml`, compiled into the binary so that
//! `kagi demo` needs no file beside it.

use crate::secret::Hasher;
use crate::site::Site;
use crate::store::{NewAccount, Operator, Store, StoreError};
use crate::totp::TotpSecret;
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
    /// The 医療機関等コード.
    pub institution: Option<String>,
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
    /// The office's name and postal address, as the letter needs them.
    pub office_name: Option<String>,
    pub postal_address: Option<String>,
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
    let kaigo = data.kaigo.iter().map(|d| {
        let new = NewAccount {
            office: d.office.clone(),
            prefecture: d.prefecture.clone(),
            office_name: d.office_name.clone(),
            postal_address: d.postal_address.clone(),
            email: d.security_email.clone(),
            ..NewAccount::default()
        };
        let mut account = new.build(Site::Kaigo, hasher.hash(&d.password));
        if let Ok(a) = &mut account {
            a.security_code_phc = d.security_code.as_deref().map(|c| hasher.hash(c));
        }
        account
    });
    let portal = data.portal.iter().map(|d| {
        let new = NewAccount {
            user: d.user.clone(),
            email: Some(d.email.clone()),
            coordinator: d.coordinator,
            institution: d.institution.clone(),
            ..NewAccount::default()
        };
        new.build(Site::Portal, hasher.hash(&d.password))
    });
    load_operator(store, hasher)?;
    for account in kaigo.chain(portal) {
        let account = account.expect("data/demo.toml is checked by the tests");
        if store.account(account.site, &account.id)?.is_none() {
            store.put_account(&account)?;
        }
    }
    store.flush()?;
    Ok(())
}

/// The demo's operator, as the welcome prints it.
pub const OPERATOR: &str = "demo-operator";
pub const OPERATOR_PASSWORD: &str = "OperatorDemo2026";

/// Creates the demo operator, enrolled, with a new random TOTP secret
/// (a reused data directory keeps the one it has).
fn load_operator(store: &Store, hasher: &Hasher) -> Result<(), StoreError> {
    if store.operator(OPERATOR)?.is_some() {
        return Ok(());
    }
    let secret = crate::secret::random_bytes::<20>();
    store.add_operator(&Operator {
        name: OPERATOR.into(),
        password_phc: Some(hasher.hash(OPERATOR_PASSWORD)),
        totp_sealed: Some(store.seal_totp(OPERATOR, &secret)?),
        last_totp_step: None,
        generation: crate::store::first_generation(),
        enrolment: None,
        created: 0,
        demo: true,
    })?;
    Ok(())
}

/// The demo operator's TOTP secret, for the welcome and `/dev/totp`.
pub fn operator_secret(store: &Store) -> Result<Option<TotpSecret>, StoreError> {
    let Some(operator) = store.operator(OPERATOR)? else {
        return Ok(None);
    };
    let secret = store.operator_totp(&operator)?;
    Ok(secret
        .and_then(|s| <[u8; 20]>::try_from(s.as_slice()).ok())
        .map(TotpSecret::from_bytes))
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
