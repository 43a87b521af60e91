//! HTML, rendered with maud. Pure: data in, `Markup` out; no store, no clock
//! (the time shown on screens arrives as a string). Nothing a user typed is
//! ever wrapped in `PreEscaped`.

pub mod console;
pub mod dev;
pub mod kaigo;
pub mod portal;

use crate::site::Site;
use crate::text::{fill, span, Lang, Texts, Unit};
use maud::{html, Markup, DOCTYPE};

/// The stylesheet, served at `/static/kagi.css`; the CSP allows no inline style.
pub const STYLESHEET: &str = include_str!("kagi.css");

/// The warning on top of every page of a server that is not for real use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Banner {
    /// `kagi demo`.
    Demo,
    /// `kagi serve` with the capture transport: a lab.
    Lab,
}

impl Banner {
    pub fn text(self, t: &Texts) -> &'static str {
        match self {
            Banner::Demo => t.c_banner_demo,
            Banner::Lab => t.c_banner_lab,
        }
    }
}

/// What the document around a page needs besides its content.
#[derive(Clone, Copy)]
pub struct Doc<'a> {
    pub lang: Lang,
    /// A warning shown on top of every page (the demo says it is a demo).
    pub banner: Option<Banner>,
    /// The path the language link comes back to; `None`: no link (the
    /// console and the demo's pages speak Japanese only).
    pub here: Option<&'a str>,
}

impl<'a> Doc<'a> {
    /// A page that speaks Japanese only, with no language link (the
    /// operators' console, the demo's own pages).
    pub fn japanese(banner: Option<Banner>) -> Doc<'a> {
        Doc {
            lang: Lang::Ja,
            banner,
            here: None,
        }
    }

    pub fn t(&self) -> &'static Texts {
        self.lang.texts()
    }
}

/// The language a page under `area` speaks to a browser that asked for
/// `asked`: the sites speak either; the console Japanese only.
pub fn lang_in(area: Option<crate::site::Area>, asked: Lang) -> Lang {
    match area {
        Some(crate::site::Area::Console) => Lang::Ja,
        _ => asked,
    }
}

/// The HTML document around every page.
pub fn layout(doc: &Doc<'_>, title: &str, body: Markup) -> Markup {
    let t = doc.t();
    html! {
        (DOCTYPE)
        html lang=(doc.lang.tag()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                link rel="stylesheet" href="/static/kagi.css";
            }
            body {
                @if let Some(banner) = doc.banner {
                    div.banner role="status" { (banner.text(t)) }
                }
                @if let Some(here) = doc.here {
                    @let other = doc.lang.other();
                    nav.lang aria-label=(t.c_language_nav) {
                        a href=(language_link(other, here)) lang=(other.tag()) hreflang=(other.tag()) {
                            (other.texts().c_language_name)
                        }
                    }
                }
                (body)
            }
        }
    }
}

/// The language link: `/lang` sets the cookie and comes back to `here`.
fn language_link(to: Lang, here: &str) -> String {
    let back: String = url::form_urlencoded::byte_serialize(here.as_bytes()).collect();
    format!("/lang?to={}&back={back}", to.tag())
}

/// What is wrong with one field of a form (`field`: the input's id), or
/// with the form as a whole (`field` empty).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub field: &'static str,
    pub text: String,
}

impl Problem {
    pub fn of(field: &'static str, text: impl Into<String>) -> Problem {
        Problem {
            field,
            text: text.into(),
        }
    }

    /// A problem of the whole form, tied to no field.
    pub fn form(text: impl Into<String>) -> Problem {
        Problem::of("", text)
    }
}

/// The problems with what was sent, as one alert a screen reader reads
/// out (the alert around the list, which stays a list); each tied to its
/// field links to it. Nothing when there are none.
pub fn errors(list: &[Problem]) -> Markup {
    html! {
        @if !list.is_empty() {
            div role="alert" {
                ul.errors {
                    @for (i, p) in list.iter().enumerate() {
                        @if p.field.is_empty() {
                            li { (p.text) }
                        } @else {
                            li id=(error_id(list, i)) { a href={ "#" (p.field) } { (p.text) } }
                        }
                    }
                }
            }
        }
    }
}

/// Problems of a form as a whole, tied to no field (the console's).
pub fn form_errors(list: &[String]) -> Markup {
    let list: Vec<Problem> = list.iter().map(Problem::form).collect();
    errors(&list)
}

/// The id of the `i`th problem: `office-error` for a field's first,
/// `pw-error-2` for its second, so that every one can be named.
fn error_id(list: &[Problem], i: usize) -> String {
    let field = list[i].field;
    match list[..i].iter().filter(|p| p.field == field).count() {
        0 => format!("{field}-error"),
        before => format!("{field}-error-{}", before + 1),
    }
}

/// `aria-invalid` for the field `id`: "true" when a problem names it.
pub fn invalid(list: &[Problem], id: &str) -> Option<&'static str> {
    list.iter().any(|p| p.field == id).then_some("true")
}

/// `aria-describedby` for the field `id`: the problems that name it, and
/// `also` (a note under the field), if any.
pub fn described(list: &[Problem], id: &str, also: Option<&str>) -> Option<String> {
    let mut ids: Vec<String> = (0..list.len())
        .filter(|&i| list[i].field == id)
        .map(|i| error_id(list, i))
        .collect();
    ids.extend(also.map(str::to_string));
    (!ids.is_empty()).then(|| ids.join(" "))
}

/// The hidden CSRF field every form carries.
pub fn csrf_field(token: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(token); }
}

/// The page for an error status, in plain words, under the header of
/// the site it happened on.
pub fn error_page(status: u16, site: Option<Site>, lang: Lang) -> Markup {
    let t = lang.texts();
    let (title, text) = match status {
        400 => (t.c_400_title, t.c_400_text),
        403 => (t.c_403_title, t.c_403_text),
        404 => (t.c_404_title, t.c_404_text),
        405 => (t.c_405_title, t.c_405_text),
        413 => (t.c_413_title, t.c_413_text),
        408 => (t.c_408_title, t.c_408_text),
        429 => (t.c_429_title, t.c_429_text),
        431 => (t.c_413_title, t.c_431_text),
        503 => (t.c_503_title, t.c_503_text),
        _ => (t.c_500_title, t.c_500_text),
    };
    let home = site.map_or("/".to_string(), |s| format!("/{}", s.name()));
    let doc = Doc {
        lang,
        banner: None,
        here: None,
    };
    layout(
        &doc,
        title,
        html! {
            (site_header(site, t))
            main.error {
                h1 { (title) }
                p { (text) }
                p.status { "(HTTP " (status) ")" }
                p { a href=(home) { (t.c_back_to_top) } }
            }
        },
    )
}

/// 503 while the server's disk runs low: new requests wait, what is
/// under way goes on.
pub fn not_taking_new_work(site: Site, lang: Lang) -> Markup {
    let t = lang.texts();
    let home = format!("/{}", site.name());
    let doc = Doc {
        lang,
        banner: None,
        here: None,
    };
    layout(
        &doc,
        t.c_paused_title,
        html! {
            (site_header(Some(site), t))
            main.error {
                h1 { (t.c_paused_title) }
                p { (t.c_paused_1) }
                p { (t.c_paused_2) }
                p { (t.c_try_later) }
                p.status { "(HTTP 503)" }
                p { a href=(home) { (t.c_back_to_top) } }
            }
        },
    )
}

/// The bar a site's pages carry on top, for the pages every site shares.
fn site_header(site: Option<Site>, t: &Texts) -> Markup {
    html! {
        @match site {
            Some(Site::Kaigo) => header.system { (t.k_system) },
            Some(Site::Portal) => header.portal {
                a.site-name href="/portal" { (t.p_site) }
            },
            None => {},
        }
    }
}

/// 429 under the header of the area it happened in, leading back there:
/// how long to wait, in words a user reads.
pub fn rate_limited(retry_after_secs: u64, area: crate::site::Area, lang: Lang) -> Markup {
    let t = lang.texts();
    let wait = if retry_after_secs < 60 {
        span(t, retry_after_secs, Unit::Seconds)
    } else {
        span(t, retry_after_secs.div_ceil(60), Unit::Minutes)
    };
    let home = format!("/{}", area.name());
    let doc = Doc {
        lang,
        banner: None,
        here: None,
    };
    layout(
        &doc,
        t.c_429_title,
        html! {
            (site_header(area.site(), t))
            main.error {
                h1 { (t.c_429_title) }
                p { (t.c_429_network) }
                p { (fill(t.c_429_wait, &[("wait", &wait)])) }
                p.status { "(HTTP 429)" }
                p { a href=(home) { (t.c_back_to_top) } }
            }
        },
    )
}

fn site_title(site: Site, t: &Texts) -> &'static str {
    match site {
        Site::Kaigo => t.k_system,
        Site::Portal => t.p_site,
    }
}

/// "This was not me": what the button will do.
pub fn not_me_confirm(site: Site, token: &str, csrf: &str, doc: &Doc<'_>) -> Markup {
    let t = doc.t();
    layout(
        doc,
        t.c_lock_title,
        html! {
            main.error {
                p { (site_title(site, t)) }
                h1 { (t.c_lock_title) }
                p { (t.c_lock_1) }
                p { (t.c_lock_2) }
                form method="post" action={ "/" (site.name()) "/not-me" } {
                    input type="hidden" name="csrf" value=(csrf);
                    input type="hidden" name="token" value=(token);
                    div.buttons { button type="submit" { (t.c_lock_button) } }
                }
            }
        },
    )
}

pub fn not_me_done(site: Site, doc: &Doc<'_>) -> Markup {
    let t = doc.t();
    layout(
        doc,
        t.c_locked_title,
        html! {
            main.error {
                p { (site_title(site, t)) }
                h1 { (t.c_locked_title) }
                p { (t.c_locked_text) }
                p { a href={ "/" (site.name()) } { (t.c_to_top) } }
            }
        },
    )
}

pub fn not_me_invalid(site: Site, doc: &Doc<'_>) -> Markup {
    let t = doc.t();
    layout(
        doc,
        t.c_lock_invalid_title,
        html! {
            main.error {
                p { (site_title(site, t)) }
                h1 { (t.c_lock_invalid_title) }
                p { (t.c_lock_invalid_text) }
                p { a href={ "/" (site.name()) } { (t.c_to_top) } }
            }
        },
    )
}

/// kagi's own front page: where the sites are.
pub fn index(demo: bool, lang: Lang) -> Markup {
    let t = lang.texts();
    let doc = Doc {
        lang,
        banner: None,
        here: Some("/"),
    };
    layout(
        &doc,
        "kagi",
        html! {
            main.index {
                h1 { (t.c_index_title) }
                ul {
                    li { a href="/kaigo" { (t.k_system) } }
                    li { a href="/portal" { (t.p_site) } }
                }
                @if demo {
                    p { (t.c_index_demo_mail) " " a href="/dev/mail" { "/dev/mail" } " " (t.c_index_demo_captcha) " " a href="/dev/captcha" { "/dev/captcha" } (t.c_index_demo_end) }
                }
            }
        },
    )
}
