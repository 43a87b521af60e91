//! The application: everything a request handler needs, and the top router
//! that sends each path to its site.

use crate::config::Config;
use crate::http::{Method, Request, Response};
use crate::mail::Outbox;
use crate::pages;
use crate::secret::{Digester, Hasher};
use crate::sites;
use crate::store::Store;
use std::sync::Arc;

/// Shared by every request; read-only apart from the store.
#[derive(Debug)]
pub struct App {
    pub config: Config,
    pub store: Arc<Store>,
    pub digester: Digester,
    pub hasher: Hasher,
    pub outbox: Outbox,
    /// The clock's zone, seconds east of UTC.
    pub utc_offset: i32,
    /// `/dev/` pages (captured mail) are served: demo mode only.
    pub dev_pages: bool,
    /// A warning on top of every page, e.g. that this is a demo.
    pub banner: Option<String>,
}

impl App {
    /// Answers one request at time `now`.
    pub fn handle(&self, req: &Request, now: u64) -> Response {
        let first = req.path.split('/').nth(1).unwrap_or("");
        let outcome = match first {
            "" if req.path == "/" => Ok(get_only(req, || {
                Response::html(pages::index(self.dev_pages))
            })),
            "kaigo" => sites::kaigo::handle(self, req, now),
            "static" if req.path == "/static/kagi.css" => {
                Ok(get_only(req, || Response::css(pages::STYLESHEET)))
            }
            "healthz" if req.path == "/healthz" => Ok(get_only(req, || self.health())),
            "dev" if self.dev_pages => Ok(self.dev(req)),
            _ => Ok(Response::error(404)),
        };
        outcome.unwrap_or_else(|e| {
            eprintln!("kagi: {} {}: {e}", method_name(req.method), req.path);
            Response::error(500)
        })
    }

    /// Liveness only. Counts (outbox depth, accounts) stay off this public
    /// page: an outbox that grows right after a recovery step would tell a
    /// stranger that the office and address matched.
    fn health(&self) -> Response {
        Response::json(r#"{"status":"ok"}"#.to_string())
    }

    fn dev(&self, req: &Request) -> Response {
        let captured = match self.store.captured_mail(200) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("kagi: /dev/mail: {e}");
                return Response::error(500);
            }
        };
        match req.path.as_str() {
            "/dev/mail" => get_only(req, || {
                let views: Vec<pages::dev::MailView<'_>> = captured
                    .iter()
                    .map(|m| pages::dev::MailView {
                        id: m.id,
                        date: crate::clock::date_time(m.date, self.utc_offset),
                        to: &m.to,
                        subject: &m.subject,
                        body: &m.body,
                    })
                    .collect();
                let banner = self.banner.as_deref().unwrap_or("デモモード");
                Response::html(pages::dev::mailbox(&views, banner))
            }),
            "/dev/mail.json" => get_only(req, || {
                let list: Vec<_> = captured
                    .iter()
                    .map(|m| {
                        serde_json::json!({
                            "id": m.id, "message_id": m.message_id, "to": m.to,
                            "subject": m.subject, "body": m.body, "date": m.date, "mime": m.mime,
                        })
                    })
                    .collect();
                Response::json(serde_json::Value::Array(list).to_string())
            }),
            _ => Response::error(404),
        }
    }
}

fn get_only(req: &Request, page: impl FnOnce() -> Response) -> Response {
    match req.method {
        Method::Get | Method::Head => page(),
        _ => Response::method_not_allowed("GET, HEAD"),
    }
}

fn method_name(m: Method) -> &'static str {
    match m {
        Method::Get => "GET",
        Method::Head => "HEAD",
        Method::Post => "POST",
        Method::Other => "other",
    }
}
