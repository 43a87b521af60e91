//! Which of the two reproduced sites something belongs to. A leaf: every
//! layer names it, and it names nothing of kagi's.

use serde::{Deserialize, Serialize};

/// Which site a record, a page or a request belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Site {
    Kaigo,
    Portal,
}

impl Site {
    pub const ALL: [Site; 2] = [Site::Kaigo, Site::Portal];

    pub fn name(self) -> &'static str {
        match self {
            Site::Kaigo => "kaigo",
            Site::Portal => "portal",
        }
    }

    /// The site a request path is under (`/kaigo/…`, `/portal/…`).
    pub fn of_path(path: &str) -> Option<Site> {
        let first = path.split('/').nth(1)?;
        Site::ALL.into_iter().find(|s| s.name() == first)
    }

    /// The site's home page.
    pub fn home(self) -> &'static str {
        match self {
            Site::Kaigo => "/kaigo",
            Site::Portal => "/portal",
        }
    }
}
