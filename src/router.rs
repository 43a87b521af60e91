//! The top router: sends each path to its site, and answers `/`,
//! `/healthz`, `/admin/…` and, in demo mode, `/dev/…` itself.

use crate::app::{App, DevCaptcha, MAX_MAIL_PAGE};
use crate::console;
use crate::http::{Method, Reply, Request, Response};
use crate::pages;
use crate::pool::Pool;
use crate::site::{Area, Site};
use crate::sites;
use crate::text::{self, Lang};

/// A request that computes a hash, on its way to a hashing worker.
pub struct Task {
    pub req: Request,
    pub reply: Reply,
}

/// The most of a backup one answer carries (`GET /admin/backup`).
const BACKUP_CHUNK: usize = 1 << 20;

/// How long a login refused by a full hashing pool is asked to wait.
const BUSY_RETRY_SECS: &str = "5";

/// The real mails of the outbox (decoys are never counted).
#[derive(Clone, Copy, Debug, Default)]
struct OutboxCounts {
    /// Not yet accepted by the relay, and not given up.
    queued: u64,
    /// Of those queued, the ones that failed at least once and wait to be
    /// tried again.
    retrying: u64,
    /// Given up, until an operator retries or removes them.
    failed: u64,
}

impl App {
    /// Answers `req` on the request thread, or hands it to the hashing
    /// pool when its route computes a hash (a login, a security code, a
    /// new password) or reads much (the console's audit trail): pages
    /// never wait behind them. When the pool's queue
    /// is full the answer is 503 with `Retry-After` at once, and nothing is
    /// read or written: a flood of logins costs logins, not pages.
    pub fn dispatch(&self, pool: &Pool<Task>, req: Request, reply: Reply, now: u64) {
        if !on_pool(&req) {
            return reply.send(self.handle(&req, now));
        }
        let shard = sites::visit_shard(self, &req);
        if let Err(task) = pool.submit(shard, Task { req, reply }) {
            let busy = Response::error(503).with_header("Retry-After", BUSY_RETRY_SECS.into());
            task.reply.send(busy);
        }
    }

    /// Answers one request at time `now`.
    pub fn handle(&self, req: &Request, now: u64) -> Response {
        let first = req.path.split('/').nth(1).unwrap_or("");
        // While the database cannot be opened (a full disk, say), every
        // page is the readable 503; /healthz says why.
        if self.store.unavailable().is_some() && !matches!(first, "healthz" | "metrics" | "static")
        {
            return Response::error(503).with_header("Retry-After", "30".into());
        }
        let outcome = match first {
            "" if req.path == "/" => Ok(get_only(req, || {
                Response::html(pages::index(self.dev_pages, req.lang))
            })),
            "kaigo" => sites::kaigo::handle(self, req, now),
            "portal" => sites::portal::handle(self, req, now),
            "static" if req.path == "/static/kagi.css" => {
                Ok(get_only(req, || Response::css(pages::STYLESHEET)))
            }
            "healthz" if req.path == "/healthz" => Ok(get_only(req, || self.health(req))),
            "metrics" if req.path == "/metrics" => Ok(get_only(req, || self.metrics(req))),
            "lang" if req.path == "/lang" => Ok(get_only(req, || self.choose_language(req))),
            // The admin token is the command line's; a browser is an
            // operator at the console.
            "admin" if req.bearer.is_some() => self.admin(req, now),
            "admin" => console::handle(self, req, now),
            "dev" if self.dev_pages => Ok(self.dev(req, now)),
            _ => Ok(Response::error(404)),
        };
        // A storage failure (a full or read-only disk, say) is a readable
        // 503: nothing that failed to be written was reported done, and the
        // same request may well work again once the disk does.
        outcome.unwrap_or_else(|e| {
            say!("kagi: {} {}: {e}", method_name(req.method), req.path);
            Response::error(503).with_header("Retry-After", "30".into())
        })
    }

    /// Liveness for everyone; the outbox depth and the failed mails only
    /// with the admin token. (A stranger must not get counts: while the
    /// relay is down, a real mail waits in the outbox where a decoy would
    /// not, so the depth right after a recovery step could tell that it
    /// matched. Being on this machine proves nothing: a proxy on the same
    /// host that adds no header makes every client look local.)
    fn health(&self, req: &Request) -> Response {
        if let Some(why) = self.store.unavailable() {
            // The detail (paths, the system's error) only for an operator.
            let reason = if self.is_admin(req) {
                why
            } else {
                self.store.unavailable_in_short()
            };
            let body = serde_json::json!({ "status": "unavailable", "reason": reason });
            let mut page = Response::json(body.to_string());
            page.status = 503;
            return page.with_header("Retry-After", "30".into());
        }
        if !self.is_admin(req) {
            return Response::json(r#"{"status":"ok"}"#.to_string());
        }
        match self.outbox_counts() {
            Ok(OutboxCounts { queued, failed, .. }) => Response::json(
                serde_json::json!({ "status": "ok", "outbox": queued, "failed": failed })
                    .to_string(),
            ),
            Err(e) => {
                say!("kagi: /healthz: {e}");
                Response::error(503)
            }
        }
    }

    /// The real (not decoy) mails of the outbox by what became of them:
    /// what /healthz and /metrics report. The one place that sorts them.
    fn outbox_counts(&self) -> Result<OutboxCounts, crate::store::StoreError> {
        let mut counts = OutboxCounts::default();
        for mail in self.store.outbox()?.iter().filter(|m| !m.decoy) {
            if mail.failed.is_some() {
                counts.failed += 1;
            } else {
                counts.queued += 1;
                if mail.attempts > 0 {
                    counts.retrying += 1;
                }
            }
        }
        Ok(counts)
    }

    /// `/metrics`: the counters in Prometheus' text format, only with the
    /// admin token; without it 404, as `/admin/…`'s API answers a wrong
    /// token (the counts would tell a stranger what /healthz hides: the
    /// outbox's depth after a recovery step).
    fn metrics(&self, req: &Request) -> Response {
        if !self.is_admin(req) {
            return Response::error(404);
        }
        let store_up = self.store.unavailable().is_none();
        let counts = store_up.then(|| self.outbox_counts().ok()).flatten();
        let gauges = crate::metrics::Gauges {
            mail_queued: counts.map(|c| c.queued),
            mail_retrying: counts.map(|c| c.retrying),
            mail_failed: counts.map(|c| c.failed),
            mail_sent: self.outbox.sent(),
            rate_limited: self.limiter.refused_since_start(),
            store_free_bytes: self.store.free_bytes(),
            store_up,
        };
        Response {
            content_type: "text/plain; version=0.0.4; charset=utf-8",
            ..Response::json(self.metrics.render(&gauges))
        }
    }

    /// `/lang?to=en&back=/kaigo/login`: the language link. Remembers the
    /// choice in a cookie for a year and goes back to the page, which is
    /// always a path on this server (never another host).
    fn choose_language(&self, req: &Request) -> Response {
        let Some(lang) = Lang::from_tag(req.query_value("to")) else {
            return Response::error(404);
        };
        let back = req.query_value("back");
        let local = back.starts_with('/') && !back.starts_with("//") && !back.contains('\\');
        let back = if local { back } else { "/" };
        let secure = if self.config.is_https() {
            "; Secure"
        } else {
            ""
        };
        Response::see_other(back).with_header(
            "Set-Cookie",
            format!(
                "{}={}; Path=/; Max-Age=31536000; SameSite=Lax; HttpOnly{secure}",
                text::COOKIE,
                lang.tag()
            ),
        )
    }

    fn is_admin(&self, req: &Request) -> bool {
        req.bearer
            .as_deref()
            .is_some_and(|t| crate::secret::constant_time_eq(t, &self.admin_token))
    }

    /// `/admin/mail` (GET: the outbox as JSON) and `/admin/mail/retry?id=N`
    /// (POST: try a failed or waiting mail again now). Only with the admin
    /// token: a browser cannot send it, so no page elsewhere can use them.
    fn admin(&self, req: &Request, now: u64) -> crate::sites::Outcome {
        if !self.is_admin(req) {
            return Ok(Response::error(404));
        }
        match (req.path.as_str(), req.method) {
            ("/admin/mail", Method::Get | Method::Head) => {
                // A page of undelivered mail, oldest first, after `?after=ID`.
                let after = req.query_value("after").parse::<u64>().unwrap_or(0);
                let list: Vec<_> = self
                    .store
                    .undelivered_after(after, MAX_MAIL_PAGE)?
                    .into_iter()
                    .map(|m| {
                        serde_json::json!({
                            "id": m.id, "message_id": m.message_id, "to": m.to,
                            "subject": m.subject, "created": m.created, "attempts": m.attempts,
                            "next_attempt": m.next_attempt, "last_error": m.last_error,
                            "failed": m.failed,
                        })
                    })
                    .collect();
                Ok(Response::json(serde_json::Value::Array(list).to_string()))
            }
            ("/admin/mail/retry", Method::Post) => {
                let id = req.query_value("id").parse::<u64>().ok();
                let Some(id) = id.filter(|&id| self.retry_mail(id, now).unwrap_or(false)) else {
                    return Ok(Response::error(404));
                };
                self.store.flush()?;
                Ok(Response::json(
                    serde_json::json!({ "retrying": id }).to_string(),
                ))
            }
            ("/admin/operators", Method::Get | Method::Head) => {
                let list: Vec<_> = self
                    .store
                    .operators()?
                    .into_iter()
                    .map(|o| {
                        serde_json::json!({
                            "name": o.name, "enrolled": o.is_enrolled(), "created": o.created,
                            "enrolment_live": o.enrolment.is_some_and(|(_, expires)| now < expires),
                        })
                    })
                    .collect();
                Ok(Response::json(serde_json::Value::Array(list).to_string()))
            }
            (
                path @ ("/admin/operators/add"
                | "/admin/operators/reset"
                | "/admin/operators/remove"),
                Method::Post,
            ) => self.manage_operator(req, path, now),
            ("/admin/postal", Method::Get | Method::Head) => {
                let list: Vec<_> = self
                    .store
                    .postal_requests()?
                    .into_iter()
                    .map(|r| {
                        serde_json::json!({
                            "id": r.id, "user_id": console::postal::user_id(&r), "office": r.office,
                            "prefecture": r.prefecture, "office_name": r.office_name,
                            "contact": r.contact, "phone": r.phone, "created": r.created,
                        })
                    })
                    .collect();
                Ok(Response::json(serde_json::Value::Array(list).to_string()))
            }
            ("/admin/backup", Method::Post) => self.make_backup(req, now),
            ("/admin/backup", Method::Get) => {
                // `kagi backup` fetches it a piece at a time: each answer
                // stays small for the front door.
                let offset = req.query_value("offset").parse::<u64>().unwrap_or(0);
                Ok(match self.store.backup_chunk(offset, BACKUP_CHUNK)? {
                    Some(chunk) => Response {
                        content_type: "application/octet-stream",
                        body: chunk,
                        ..Response::json(String::new())
                    },
                    None => Response::error(404),
                })
            }
            ("/admin/backup/remove", Method::Post) => Ok(if self.store.remove_backup_file()? {
                Response::json("{}".into())
            } else {
                Response::error(404)
            }),
            ("/admin/postal/issue", Method::Post) => self.issue_by_token(req, now),
            ("/admin/postal/reject", Method::Post) => self.reject_by_token(req, now),
            ("/admin/mail", _) | ("/admin/operators", _) | ("/admin/postal", _) => {
                Ok(Response::method_not_allowed("GET, HEAD"))
            }
            ("/admin/mail/retry", _) | ("/admin/backup/remove", _) => {
                Ok(Response::method_not_allowed("POST"))
            }
            ("/admin/backup", _) => Ok(Response::method_not_allowed("GET, POST")),
            _ => Ok(Response::error(404)),
        }
    }

    /// `kagi operator add|reset|remove NAME`: 200 with the enrolment link
    /// (add, reset), 404 for no such operator, 409 for a name taken, 400
    /// for a name that cannot be one. Audited, as done with the admin token.
    fn manage_operator(&self, req: &Request, path: &str, now: u64) -> crate::sites::Outcome {
        let name = req.query_value("name");
        if !console::is_operator_name(name) {
            return Ok(Response::error(400));
        }
        let (event, answer) = match path {
            "/admin/operators/remove" => {
                if !self.store.remove_operator(name)? {
                    return Ok(Response::error(404));
                }
                ("operator_removed", serde_json::json!({ "removed": name }))
            }
            _ => {
                let reset = path == "/admin/operators/reset";
                let Some(link) = console::issue_enrolment(self, name, reset, now)? else {
                    return Ok(Response::error(if reset { 404 } else { 409 }));
                };
                let event = if reset {
                    "operator_reset"
                } else {
                    "operator_added"
                };
                (event, serde_json::json!({ "name": name, "link": link }))
            }
        };
        self.store.audit(&crate::store::AuditEvent {
            time: now,
            request: Some(req.id.clone()),
            event: event.into(),
            client: req.client.to_string(),
            outcome: format!("operator {name}, with the admin token"),
            ..Default::default()
        })?;
        self.store.flush()?;
        Ok(Response::json(answer.to_string()))
    }

    /// `kagi postal issue ID`: the letter's page (200, HTML) for the
    /// printer; 404 for no such waiting request, 409 with the reason in
    /// plain text when it cannot be issued.
    fn issue_by_token(&self, req: &Request, now: u64) -> crate::sites::Outcome {
        use console::postal;
        let Some(request) = console::postal::waiting(self, req.query_value("id"))? else {
            return Ok(Response::error(404));
        };
        let text =
            |name: &str| Some(req.query_value(name).to_string()).filter(|t| !t.trim().is_empty());
        let fix = postal::Corrections {
            office_name: text("name"),
            postal_address: text("address").map(|a| a.replace("\\n", "\n")),
        };
        let issued = match postal::issue_letter(self, &request, &fix, now)? {
            Ok(issued) => issued,
            Err(why) => {
                let mut answer = Response::json(why.to_string());
                answer.status = 409;
                answer.content_type = "text/plain; charset=utf-8";
                return Ok(answer);
            }
        };
        let outcome = if issued.new_office {
            "letter issued with the admin token; account made for a new office"
        } else {
            "letter issued with the admin token; temporary password set"
        };
        self.audit_by_token(
            req,
            now,
            "postal_letter_issued",
            &issued.account.id,
            outcome,
            None,
        )?;
        self.store.flush()?;
        Ok(Response::html(postal::letter_page(self, &issued, now)))
    }

    /// `kagi postal reject ID --reason TEXT`.
    fn reject_by_token(&self, req: &Request, now: u64) -> crate::sites::Outcome {
        let reason = req.query_value("reason").trim();
        let Some(request) = console::postal::waiting(self, req.query_value("id"))? else {
            return Ok(Response::error(404));
        };
        if reason.is_empty() || !self.store.close_postal_request(&request)? {
            return Ok(Response::error(if reason.is_empty() { 400 } else { 404 }));
        }
        let id = console::postal::user_id(&request);
        self.audit_by_token(
            req,
            now,
            "postal_rejected",
            &id,
            "rejected with the admin token",
            Some(reason),
        )?;
        self.store.flush()?;
        Ok(Response::json(
            serde_json::json!({ "rejected": request.id }).to_string(),
        ))
    }

    /// `kagi backup`'s first step: a backup of the database, made in the
    /// data directory while the server goes on (its store calls held back
    /// for the copy), logged and audited; its size and counts as JSON.
    fn make_backup(&self, req: &Request, now: u64) -> crate::sites::Outcome {
        let (counts, held) = match self.store.backup_to_file(now) {
            Err(e) if e.kind() == crate::store::ErrorKind::Refused => {
                return Ok(Response {
                    status: 409,
                    content_type: "text/plain; charset=utf-8",
                    ..Response::json(e.to_string())
                });
            }
            made => made?,
        };
        let held_ms = held.as_millis();
        say!(
            "kagi: backup made for `kagi backup`: {} bytes, {} accounts, {} audit entries; store calls held back {held_ms} ms",
            counts.bytes,
            counts.of("accounts"),
            counts.of("audit")
        );
        self.store.audit(&crate::store::AuditEvent {
            time: now,
            event: "backup".into(),
            client: req.client.to_string(),
            outcome: format!("made with the admin token: {} bytes", counts.bytes),
            ..Default::default()
        })?;
        self.store.flush()?;
        Ok(Response::json(
            serde_json::json!({
                "bytes": counts.bytes, "records": counts.records, "held_ms": held_ms as u64,
            })
            .to_string(),
        ))
    }

    /// An audit entry of what the admin token did to a kaigo account.
    fn audit_by_token(
        &self,
        req: &Request,
        now: u64,
        event: &str,
        account: &str,
        outcome: &str,
        reason: Option<&str>,
    ) -> Result<(), crate::store::StoreError> {
        self.store.audit(&crate::store::AuditEvent {
            time: now,
            site: Some(crate::site::Site::Kaigo),
            event: event.into(),
            account: Some(account.into()),
            client: req.client.to_string(),
            outcome: outcome.into(),
            reason: reason.map(str::to_string),
            ..Default::default()
        })
    }

    /// The demo's `/dev/…` pages: captured mail and live CAPTCHA answers.
    fn dev(&self, req: &Request, now: u64) -> Response {
        if let Some(rest) = req.path.strip_prefix("/dev/totp").filter(|_| self.demo) {
            return self.dev_totp(req, rest, now);
        }
        if let Some(rest) = req.path.strip_prefix("/dev/captcha") {
            let live: Vec<DevCaptcha> = self
                .dev_captchas
                .as_ref()
                .map(|l| l.lock().unwrap_or_else(|e| e.into_inner()).clone())
                .unwrap_or_default()
                .into_iter()
                .filter(|c| c.expires > now)
                .rev()
                .collect();
            return match rest {
                "" => get_only(req, || {
                    let banner = self.banner.unwrap_or(pages::Banner::Demo);
                    let views: Vec<_> = live
                        .iter()
                        .map(|c| pages::dev::CaptchaView {
                            id: &c.id,
                            answer: &c.answer,
                            seconds_left: c.expires.saturating_sub(now),
                        })
                        .collect();
                    Response::html(pages::dev::captchas(&views, banner))
                }),
                ".json" => get_only(req, || {
                    let list: Vec<_> = live
                        .iter()
                        .map(|c| serde_json::json!({ "id": c.id, "answer": c.answer, "expires": c.expires }))
                        .collect();
                    Response::json(serde_json::Value::Array(list).to_string())
                }),
                _ => Response::error(404),
            };
        }
        // The newest 200, or `?limit=N` of them; `?after=ID`: those after
        // the mail with that id, oldest first (automation that reads every
        // mail keeps the last id it saw). Never more than `MAX_MAIL_PAGE`
        // at once, so that no answer outgrows what a slow client is given.
        let number = |name: &str| req.query_value(name).parse::<u64>().ok();
        let limit = number("limit").map_or(200, |n| n.min(MAX_MAIL_PAGE as u64) as usize);
        let captured = match number("after") {
            Some(after) => self.store.captured_mail_after(after, limit),
            None => self.store.captured_mail(limit),
        };
        let captured = match captured {
            Ok(c) => c,
            Err(e) => {
                say!("kagi: /dev/mail: {e}");
                return Response::error(503);
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
                let banner = self.banner.unwrap_or(pages::Banner::Demo);
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

/// Whether `req` goes to the hashing pool: a POST whose route computes a
/// hash, or a GET whose route reads much of the store.
pub fn on_pool(req: &Request) -> bool {
    match Area::of_path(&req.path) {
        Some(area @ Area::Site(Site::Kaigo)) => {
            sites::runs_on_pool(sites::kaigo::ROUTES, area, req)
        }
        Some(area @ Area::Site(Site::Portal)) => {
            sites::runs_on_pool(sites::portal::ROUTES, area, req)
        }
        // The command line's requests too: `kagi postal issue` hashes a
        // temporary password on the same path as the console's form.
        Some(area @ Area::Console) => sites::runs_on_pool(console::ROUTES, area, req),
        None => false,
    }
}

/// Every path of the areas' route tables: the values the `step` label of
/// `/metrics` takes besides `other`.
pub fn steps() -> Vec<&'static str> {
    let kaigo = sites::kaigo::ROUTES.iter().map(|r| r.path);
    let portal = sites::portal::ROUTES.iter().map(|r| r.path);
    let console = console::ROUTES.iter().map(|r| r.path);
    kaigo.chain(portal).chain(console).collect()
}

/// The path of the route that answers `path` in its area's table (the
/// `step` label of `/metrics`); None for a path in no table, whatever a
/// stranger makes up.
pub fn step(path: &str) -> Option<&'static str> {
    let area = Area::of_path(path)?;
    match area {
        Area::Site(Site::Kaigo) => sites::route_path(sites::kaigo::ROUTES, area, path),
        Area::Site(Site::Portal) => sites::route_path(sites::portal::ROUTES, area, path),
        Area::Console => sites::route_path(console::ROUTES, area, path),
    }
}

impl App {
    /// `/dev/totp` (and `.json`): the demo operator's current TOTP code,
    /// as an authenticator app would show it.
    fn dev_totp(&self, req: &Request, rest: &str, now: u64) -> Response {
        let secret = match crate::demo::operator_secret(&self.store) {
            Ok(Some(secret)) => secret,
            Ok(None) => return Response::error(404),
            Err(e) => {
                say!("kagi: /dev/totp: {e}");
                return Response::error(503);
            }
        };
        let code = secret.code_at(now);
        let left = crate::totp::STEP_SECS - now % crate::totp::STEP_SECS;
        match rest {
            "" => get_only(req, || {
                let banner = self.banner.unwrap_or(pages::Banner::Demo);
                Response::html(pages::dev::totp(crate::demo::OPERATOR, &code, left, banner))
            }),
            ".json" => get_only(req, || {
                Response::json(
                    serde_json::json!({ "operator": crate::demo::OPERATOR, "code": code, "seconds_left": left })
                        .to_string(),
                )
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_a_metrics_step_and_no_made_up_path_is() {
        let steps = steps();
        for &path in &steps {
            assert_eq!(step(path), Some(path));
            // A trailing `/` reaches the same route, and the same step.
            assert_eq!(step(&format!("{path}/")), Some(path));
        }
        assert!(steps.contains(&"/kaigo/recovery/auth"));
        assert!(steps.contains(&"/portal/reset"));
        assert!(steps.contains(&"/admin/login"));
        for made_up in [
            "/",
            "/healthz",
            "/kaigo/x",
            "/portal/reset/x",
            "/admin/../x",
            "/kaigox",
        ] {
            assert_eq!(step(made_up), None, "{made_up}");
        }
    }
}
