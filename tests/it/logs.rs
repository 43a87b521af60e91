//! kagi's log with `log.format = "json"`: one JSON object a line, a
//! request's line with its method, path, status, time taken, site, client
//! and id, and that id on the audit entries the request wrote. What a
//! person typed and what a query string carries never appear.

use crate::support::kaigo::{self, OSAKA_MAIL, OSAKA_OFFICE};
use crate::support::{kagi_cli_once_closed, lab_config, run_kagi, scratch_dir, Client};
use std::ffi::OsStr;

#[test]
fn a_json_log_has_a_line_an_object_and_a_requests_id_is_on_its_audit_entry() {
    let dir = scratch_dir("json-log");
    let data = dir.join("db");
    let config = lab_config(&dir, &data, "[log]\nformat = \"json\"\n");
    let log = dir.join("kagi.log");
    let (mut kagi, addr) = run_kagi(
        &[
            OsStr::new("serve"),
            OsStr::new("--config"),
            config.as_os_str(),
        ],
        None,
        Some(&log),
    );
    let mut c = Client::new(addr);
    // A reset link's token in the query, a password in a form.
    assert_eq!(
        c.get("/portal/passwordreset?token=QuerySecret123").status,
        404
    );
    kaigo::login(&mut c, "KJ272711111111", "FormSecret456");
    kaigo::start_recovery(&mut c, OSAKA_OFFICE, OSAKA_MAIL);
    kagi.kill();

    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        !text.contains("QuerySecret123"),
        "a query string in the log"
    );
    assert!(!text.contains("FormSecret456"), "a password in the log");
    assert!(!text.contains(OSAKA_MAIL), "an address typed in the log");
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: not JSON: {l}")))
        .collect();
    assert!(lines
        .iter()
        .all(|l| l["time"].as_str().is_some_and(|t| t.ends_with('Z'))));
    let line_of = |method: &str, path: &str| {
        lines
            .iter()
            .find(|l| l["method"] == method && l["path"] == path)
            .unwrap_or_else(|| panic!("no line for {method} {path}:\n{text}"))
            .clone()
    };
    let reset = line_of("GET", "/portal/passwordreset");
    assert_eq!(reset["status"], 404);
    assert_eq!(reset["site"], "portal");
    assert_eq!(reset["client"], "127.0.0.1");
    assert!(reset["ms"].as_f64().is_some());
    let step = line_of("POST", "/kaigo/recovery/auth");
    assert_eq!(step["status"], 303);
    let id = step["request"].as_str().expect("a request id").to_string();
    assert_eq!(id.len(), 16, "{id}");
    assert_ne!(Some(id.as_str()), reset["request"].as_str());

    // The audit entry of that step carries the same id.
    let csv = String::from_utf8(
        kagi_cli_once_closed(&[
            OsStr::new("audit"),
            OsStr::new("export"),
            OsStr::new("--csv"),
            OsStr::new("--data-dir"),
            data.as_os_str(),
        ])
        .stdout,
    )
    .unwrap();
    let started: Vec<&str> = csv
        .lines()
        .filter(|l| l.contains(",recovery_started,"))
        .collect();
    assert_eq!(started.len(), 1, "{csv}");
    assert!(started[0].ends_with(&format!(",{id}")), "{csv}");
}
