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

/// Where a browser's visit cookie belongs: one of the sites, or the
/// operators' console under `/admin`. Each has its own cookie.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Area {
    Site(Site),
    Console,
}

impl Area {
    /// The first segment of the area's paths, and its cookie's name.
    pub fn name(self) -> &'static str {
        match self {
            Area::Site(site) => site.name(),
            Area::Console => "admin",
        }
    }

    /// The area a request path is under.
    pub fn of_path(path: &str) -> Option<Area> {
        match Site::of_path(path) {
            Some(site) => Some(Area::Site(site)),
            None => (path.split('/').nth(1) == Some("admin")).then_some(Area::Console),
        }
    }

    pub fn site(self) -> Option<Site> {
        match self {
            Area::Site(site) => Some(site),
            Area::Console => None,
        }
    }
}
