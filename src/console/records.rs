//! The console's audit trail (filtered, paged, as CSV, with the chain's
//! check on top) and mail queue (with retry).

use super::accounts::{audit_rows, mask};
use super::Console;
use crate::clock;
use crate::http::Response;
use crate::pages::console::{self as page, AuditQuery, MailRow};
use crate::site::Site;
use crate::sites::Outcome;
use crate::store::{audit_csv as to_csv, AuditFilter};

/// Entries on one page of the audit view.
const AUDIT_PAGE: usize = 100;
/// The most entries one CSV download holds.
const CSV_MAX: usize = 100_000;

/// The filter in the query string, as typed, and as the store reads it
/// (or what is wrong with it).
fn filter<'c>(c: &'c Console<'_>) -> (AuditQuery<'c>, Result<AuditFilter, Vec<String>>) {
    let typed = AuditQuery {
        site: c.query("site"),
        account: c.query("account"),
        event: c.query("event"),
        operator: c.query("operator"),
        from: c.query("from"),
        until: c.query("until"),
    };
    let mut problems = Vec::new();
    let site = Site::ALL.into_iter().find(|s| s.name() == typed.site);
    let account = typed.account.trim();
    let offset = c.app.utc_offset;
    let mut time = |text: &str, end: bool| {
        if text.trim().is_empty() {
            return None;
        }
        let t = clock::parse_date_time(text, offset, end);
        if t.is_none() {
            problems.push(format!(
                "「{text}」を日時として読めません。2026-12-01 や 2026-12-01 09:00 の形で入力してください。"
            ));
        }
        t
    };
    let (from, until) = (time(typed.from, false), time(typed.until, true));
    let text = |t: &str| Some(t.trim().to_string()).filter(|t| !t.is_empty());
    let parsed = AuditFilter {
        // Without a site, any entry naming it: an operator's own logins.
        account: (!account.is_empty()).then(|| (site, account.to_string())),
        site,
        event: text(typed.event),
        operator: text(typed.operator),
        from,
        until,
    };
    let result = if problems.is_empty() {
        Ok(parsed)
    } else {
        Err(problems)
    };
    (typed, result)
}

/// `/admin/audit`: newest first, filtered, paged; the chain's check on top.
pub fn audit(c: &Console<'_>) -> Outcome {
    let (typed, parsed) = filter(c);
    let (chain, chain_ok) = match c.app.store.verify_audit()? {
        Ok(n) => (
            format!("改ざん検査: 正常(全 {n} 件が前の記録につながっています)"),
            true,
        ),
        Err(problem) => (format!("改ざん検査: 異常があります — {problem}"), false),
    };
    let (events, next, cut_short, problems) = match parsed {
        Ok(f) => {
            let before = c.query("before").parse::<u64>().ok();
            let page = c.app.store.audit_page(&f, before, AUDIT_PAGE)?;
            let events: Vec<_> = page.entries.into_iter().map(|(_, e)| e).collect();
            (events, page.next, page.cut_short, Vec::new())
        }
        Err(problems) => (Vec::new(), None, false, problems),
    };
    let rows = audit_rows(c, &events);
    let view = page::AuditView {
        query: &typed,
        chain: &chain,
        chain_ok,
        rows: &rows,
        next,
        cut_short,
        problems: &problems,
    };
    Ok(Response::html(page::audit(&c.frame(), &view)))
}

/// `/admin/audit.csv`: the filtered view as CSV (newest first, at most
/// `CSV_MAX` entries). The download itself is audited.
pub fn audit_csv(c: &Console<'_>) -> Outcome {
    let (typed, parsed) = filter(c);
    let Ok(f) = parsed else {
        return audit(c);
    };
    let mut events = Vec::new();
    let mut before = None;
    loop {
        let page = c.app.store.audit_page(&f, before, 1_000)?;
        events.extend(page.entries.into_iter().map(|(_, e)| e));
        match page.next {
            Some(next) if events.len() < CSV_MAX => before = Some(next),
            _ => break,
        }
    }
    events.truncate(CSV_MAX);
    let note = format!("{} entries: {}", events.len(), typed.to_query());
    c.audit("operator_audit_export", None, &note, None)?;
    // With a byte-order mark: a spreadsheet on a Japanese desktop reads
    // the file as UTF-8 only then.
    let csv = format!("\u{FEFF}{}", to_csv(&events, c.app.utc_offset));
    let mut response = Response::json(csv);
    response.content_type = "text/csv; charset=utf-8";
    Ok(response.with_header(
        "Content-Disposition",
        "attachment; filename=\"kagi-audit.csv\"".into(),
    ))
}

/// Mails on one page of `/admin/mail`.
const MAIL_PAGE: usize = 100;

/// `/admin/mail`: the mail not yet delivered, queued or given up, oldest
/// first, a page at a time after `?after=ID`; recipients masked.
pub fn mail(c: &Console<'_>) -> Outcome {
    let after = c.query("after").parse::<u64>().unwrap_or(0);
    let mut mails = c.app.store.undelivered_after(after, MAIL_PAGE + 1)?;
    let more = mails.len() > MAIL_PAGE;
    mails.truncate(MAIL_PAGE);
    let masked: Vec<String> = mails.iter().map(|m| mask(&m.to)).collect();
    // A relay's refusal often quotes the recipient: masked there too.
    let errors: Vec<String> = mails
        .iter()
        .zip(&masked)
        .map(|(m, to)| {
            m.last_error
                .as_deref()
                .unwrap_or_default()
                .replace(&m.to, to)
        })
        .collect();
    let rows: Vec<MailRow<'_>> = mails
        .iter()
        .zip(masked.iter().zip(&errors))
        .map(|(m, (to, last_error))| MailRow {
            id: m.id,
            to,
            subject: &m.subject,
            created: clock::date_time(m.created, c.app.utc_offset),
            state: if m.failed.is_some() {
                "送信失敗"
            } else {
                "送信待ち"
            },
            attempts: m.attempts,
            last_error,
        })
        .collect();
    let note = match c.query("retried") {
        "" => None,
        "0" => Some("そのメールは見つかりません(すでに送信されたかもしれません)。"),
        _ => Some("再送を開始しました。"),
    };
    let next = more.then(|| mails.last().map_or(0, |m| m.id));
    Ok(Response::html(page::mail(&c.frame(), &rows, note, next)))
}

/// Tries an undelivered mail again now (as `kagi mail retry` does), and
/// goes back to the list (a reload does not send it again).
pub fn retry(c: &Console<'_>) -> Outcome {
    let id = c.req.field("id").parse::<u64>().ok();
    let retried = match id {
        Some(id) => c.app.retry_mail(id, c.now)?,
        None => false,
    };
    if !retried {
        return Ok(Response::see_other("/admin/mail?retried=0"));
    }
    let id = id.unwrap_or_default();
    c.audit("operator_mail_retry", None, &format!("mail {id}"), None)?;
    c.app.store.flush()?;
    Ok(Response::see_other(&format!("/admin/mail?retried={id}")))
}
