//! The audit trail: append-only, each entry naming the one before it by an
//! HMAC under the key file's audit key. The chain starts at an anchor (a
//! random one when the database is made; after retention, the newest entry
//! deleted for its age), and the anchor and the head (the last entry) carry
//! HMACs of their own. So an entry changed, added or removed anywhere, a
//! trail emptied, and a trail chained anew by someone who can write the
//! database but has not the key file, fail `verify_audit`. What no chain
//! inside the database can show: the whole of it put back as it was at an
//! earlier moment (a backup restored over it); that needs a record kept
//! elsewhere.

use super::accounts::account_key;
use super::kv::{together, Batch};
use super::postgres::Lock;
use super::{decode, encode, Result, Store, Trees};
use crate::secret::Keys;
use crate::site::Site;
use crate::store::AuditEvent;

/// The labels of the three HMACs, so that none can stand for another.
const LINK: &str = "audit-link";
const HEAD: &str = "audit-head";
const ANCHOR: &str = "audit-anchor";

fn text(bytes: Option<sled::IVec>) -> Option<String> {
    bytes.map(|b| String::from_utf8_lossy(&b).into_owned())
}

impl Store {
    /// Appends an entry, linked to the one before (or, once every entry has
    /// aged out, to the retention anchor). Entry and head are written in one
    /// transaction: a crash keeps both or neither.
    pub fn audit(&self, event: &AuditEvent) -> Result<()> {
        let t = self.trees()?;
        let keys = self.keys()?;
        let _one_writer = self.audit_lock.lock().unwrap_or_else(|e| e.into_inner());
        t.exclusively(Lock::Audit, true, || self.append_audit(&t, &keys, event))
            .map(drop)
    }

    /// `audit`'s work, as the one writer.
    fn append_audit(&self, t: &Trees, keys: &Keys, event: &AuditEvent) -> Result<()> {
        let prev = match t.audit.last()? {
            Some((_, bytes)) => keys.audit_mac(LINK, &bytes),
            None => text(t.meta.get("audit_anchor")?).unwrap_or_default(),
        };
        let entry = encode(&AuditEvent {
            prev,
            ..event.clone()
        })?;
        let head = keys.audit_mac(HEAD, keys.audit_mac(LINK, &entry).as_bytes());
        let id = self.next_id()?.to_be_bytes();
        let (mut audit, mut meta, mut accounts) =
            (Batch::default(), Batch::default(), Batch::default());
        audit.insert(&id[..], entry);
        meta.insert("audit_head", head.as_bytes());
        if let Some(index) = account_index_key(event, &id) {
            accounts.insert(index, &[][..]);
        }
        together(&[
            (&t.audit, &audit),
            (&t.meta, &meta),
            (&t.audit_accounts, &accounts),
        ])
    }

    /// Deletes up to `batch` entries older than `before`, oldest first. The
    /// newest one deleted becomes the chain's anchor: the entry after it
    /// must name it, and the anchor's own HMAC shows whether anyone moved
    /// it. Returns how many were deleted.
    pub fn trim_audit(&self, before: u64, batch: usize) -> Result<usize> {
        let t = self.trees()?;
        let keys = self.keys()?;
        let _one_writer = self.audit_lock.lock().unwrap_or_else(|e| e.into_inner());
        t.exclusively(Lock::Audit, true, || trim(&t, &keys, before, batch))
            .map(Option::unwrap_or_default)
    }
}

impl Store {
    /// Checks the chain: Ok(number of entries), or the first place where an
    /// entry was changed, removed or added.
    pub fn verify_audit(&self) -> Result<std::result::Result<usize, String>> {
        let t = self.trees()?;
        let keys = self.keys()?;
        Ok(verify(&t, &keys))
    }

    /// The audit trail, oldest first.
    pub fn audit_events(&self) -> Result<Vec<AuditEvent>> {
        let t = self.trees()?;
        t.audit.iter().values().map(|v| decode(&v?)).collect()
    }

    /// The newest `limit` entries of one account, newest first (by the
    /// account index: as fast for a quiet account as for a busy one).
    pub fn account_audit(&self, site: Site, id: &str, limit: usize) -> Result<Vec<AuditEvent>> {
        Ok(self
            .audit_page(&AuditFilter::of_account(site, id), None, limit)?
            .entries
            .into_iter()
            .map(|(_, e)| e)
            .collect())
    }

    /// Entries that pass `filter`, newest first, from before the entry
    /// `before` (None: the newest), at most `limit`. An account filter reads
    /// the account index; the others read the trail backwards, at most
    /// `AUDIT_SCAN` entries a page, and say where they stopped.
    pub fn audit_page(
        &self,
        filter: &AuditFilter,
        before: Option<u64>,
        limit: usize,
    ) -> Result<AuditPage> {
        let t = self.trees()?;
        let upper = before.unwrap_or(u64::MAX).to_be_bytes();
        let mut page = AuditPage::default();
        let take = |id: u64, event: AuditEvent, page: &mut AuditPage| {
            if filter.passes(&event) {
                page.entries.push((id, event));
            }
            page.entries.len() >= limit
        };
        if let Some((Some(site), account)) = &filter.account {
            let mut prefix = account_key(*site, account);
            prefix.push(0);
            let mut end = prefix.clone();
            end.extend_from_slice(&upper);
            for key in t.audit_accounts.range(prefix.clone()..end).keys().rev() {
                let key = key?;
                let Ok(id) = <[u8; 8]>::try_from(&key[prefix.len()..]) else {
                    continue;
                };
                let Some(bytes) = t.audit.get(id)? else {
                    continue;
                };
                let id = u64::from_be_bytes(id);
                page.next = Some(id);
                if take(id, decode(&bytes)?, &mut page) {
                    return Ok(page);
                }
            }
            page.next = None;
            return Ok(page);
        }
        for (scanned, entry) in t.audit.range(..upper).rev().enumerate() {
            let (key, bytes) = entry?;
            let Ok(id) = <[u8; 8]>::try_from(key.as_ref()) else {
                continue;
            };
            let id = u64::from_be_bytes(id);
            let event: AuditEvent = decode(&bytes)?;
            page.next = Some(id);
            if filter.from.is_some_and(|from| event.time < from) {
                page.next = None;
                return Ok(page);
            }
            if take(id, event, &mut page) {
                return Ok(page);
            }
            if scanned + 1 >= AUDIT_SCAN {
                page.cut_short = true;
                return Ok(page);
            }
        }
        page.next = None;
        Ok(page)
    }

    /// Makes the account index of a trail written before it existed (once:
    /// the meta tree remembers it). Returns how many entries it indexed.
    pub fn index_audit_once(&self) -> Result<usize> {
        let t = self.trees()?;
        if t.meta.get("audit_indexed")?.is_some() {
            return Ok(0);
        }
        let mut batch = Batch::default();
        let mut n = 0;
        for entry in t.audit.iter() {
            let (key, bytes) = entry?;
            let event: AuditEvent = decode(&bytes)?;
            if let Some(index) = account_index_key(&event, &key) {
                batch.insert(index, &[]);
                n += 1;
            }
        }
        t.audit_accounts.apply_batch(batch)?;
        t.meta.insert("audit_indexed", &[])?;
        Ok(n)
    }
}

/// The most entries one page of a filtered audit view reads when the
/// filter names no account: a page that found fewer says it stopped.
pub const AUDIT_SCAN: usize = 200_000;

/// Which entries an audit view shows; every field that is set must match.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// An account of a site (read by the index), or with no site any
    /// entry naming it: an operator's name in the console's own entries.
    pub account: Option<(Option<Site>, String)>,
    /// Entries of this site only (with an account, the account's site).
    pub site: Option<Site>,
    /// The event's name, exactly (`login`, `operator_unlock`, …).
    pub event: Option<String>,
    pub operator: Option<String>,
    /// From and until (Unix seconds, both included).
    pub from: Option<u64>,
    pub until: Option<u64>,
}

impl AuditFilter {
    pub fn of_account(site: Site, id: &str) -> AuditFilter {
        AuditFilter {
            account: Some((Some(site), id.to_string())),
            ..AuditFilter::default()
        }
    }

    pub fn passes(&self, e: &AuditEvent) -> bool {
        let account_ok = self.account.as_ref().is_none_or(|(site, id)| {
            site.is_none_or(|s| e.site == Some(s)) && e.account.as_deref() == Some(id.as_str())
        });
        account_ok
            && self.site.is_none_or(|s| e.site == Some(s))
            && self.event.as_ref().is_none_or(|v| &e.event == v)
            && self
                .operator
                .as_ref()
                .is_none_or(|o| e.operator.as_ref() == Some(o))
            && self.from.is_none_or(|f| e.time >= f)
            && self.until.is_none_or(|u| e.time <= u)
    }
}

/// One page of a filtered audit view, newest first.
#[derive(Debug, Default)]
pub struct AuditPage {
    /// (entry id, entry).
    pub entries: Vec<(u64, AuditEvent)>,
    /// The next page starts before this entry id; None: no more.
    pub next: Option<u64>,
    /// The page read `AUDIT_SCAN` entries and stopped: older ones may match.
    pub cut_short: bool,
}

/// The key of an entry in the account index, if the entry names an account.
fn account_index_key(event: &AuditEvent, id: &[u8]) -> Option<Vec<u8>> {
    let (site, account) = (event.site?, event.account.as_deref()?);
    let mut key = account_key(site, account);
    key.push(0);
    key.extend_from_slice(id);
    Some(key)
}

/// Audit entries as CSV (RFC 4180), one row each, with the time in the
/// configured zone: what `kagi audit export --csv` prints and the console's
/// download gives.
pub fn audit_csv(events: &[AuditEvent], utc_offset: i32) -> String {
    let mut out =
        String::from("time,site,event,account,client,outcome,operator,reason,prev_mac,request\n");
    for e in events {
        let fields: [&str; 10] = [
            &crate::clock::date_time(e.time, utc_offset),
            e.site.map_or("", |s| s.name()),
            &e.event,
            e.account.as_deref().unwrap_or_default(),
            &e.client,
            &e.outcome,
            e.operator.as_deref().unwrap_or_default(),
            e.reason.as_deref().unwrap_or_default(),
            &e.prev,
            e.request.as_deref().unwrap_or_default(),
        ];
        let row: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        out.push_str(&row.join(","));
        out.push('\n');
    }
    out
}

/// A CSV field (RFC 4180): quoted when it holds a comma, quote or line
/// break, and with a leading `'` when a spreadsheet would read it as a formula.
fn csv_field(value: &str) -> String {
    let value = if value.starts_with(['=', '+', '-', '@']) {
        format!("'{value}")
    } else {
        value.to_string()
    };
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

fn verify(t: &Trees, keys: &Keys) -> std::result::Result<usize, String> {
    let read = |key: &str| t.meta.get(key).map(text).map_err(|e| e.to_string());
    // The chain starts at its anchor (the first one, or the one the entries
    // past their retention left), if its HMAC is right.
    let Some(anchor) = read("audit_anchor")? else {
        return Err(
            "the trail's anchor is missing: it was removed, or the database was not made with this key file"
                .into(),
        );
    };
    let tag = read("audit_anchor_tag")?.unwrap_or_default();
    if !crate::secret::constant_time_eq(&tag, &keys.audit_mac(ANCHOR, anchor.as_bytes())) {
        return Err(
            "the trail's anchor is not one kagi wrote: entries were removed at the start".into(),
        );
    }
    let mut prev = anchor;
    let mut count = 0;
    for entry in t.audit.iter() {
        let (key, bytes) = entry.map_err(|e| e.to_string())?;
        let id = key
            .as_ref()
            .try_into()
            .map(u64::from_be_bytes)
            .unwrap_or_default();
        let event: AuditEvent = match decode(&bytes) {
            Ok(e) => e,
            Err(e) => return Err(format!("entry {id} does not decode: {e}")),
        };
        if !crate::secret::constant_time_eq(&event.prev, &prev) {
            return Err(format!(
                "entry {id} does not follow the one before it: an entry was changed or removed there"
            ));
        }
        prev = keys.audit_mac(LINK, &bytes);
        count += 1;
    }
    let head = read("audit_head")?.unwrap_or_default();
    let expected = keys.audit_mac(HEAD, prev.as_bytes());
    if !crate::secret::constant_time_eq(&head, &expected) {
        return Err(
            "the last entry is not the one last written: entries were removed or changed at the end"
                .into(),
        );
    }
    Ok(count)
}

/// How an old chain named the entry before: what `rechain_audit` checks.
pub(super) type OldLink = dyn Fn(&[u8]) -> String;

impl Trees {
    /// Starts the chain of a new database: a random anchor, its HMAC, and
    /// the head of a trail with no entry yet.
    pub(super) fn start_audit_chain(&self, keys: &Keys) -> Result<()> {
        let anchor = crate::secret::hex(&crate::secret::random_bytes::<32>());
        self.meta.insert("audit_anchor", anchor.as_bytes())?;
        self.meta.insert(
            "audit_anchor_tag",
            keys.audit_mac(ANCHOR, anchor.as_bytes()).as_bytes(),
        )?;
        self.meta.insert(
            "audit_head",
            keys.audit_mac(HEAD, anchor.as_bytes()).as_bytes(),
        )?;
        Ok(())
    }

    /// Chains a trail anew under `keys`' audit key, after checking the old
    /// chain with `old_link` (what an entry's successor names it by), and
    /// says what it found. Run when the digest key moves out of a database
    /// written before the key file (each entry naming the SHA-256 of the
    /// one before), and when a backup is restored without its key file
    /// (no `old_link`: the old chain cannot be checked).
    pub(super) fn rechain_audit(&self, keys: &Keys, old_link: Option<&OldLink>) -> Result<String> {
        let old_anchor = text(self.meta.get("audit_anchor")?);
        let mut old_prev = old_anchor.clone().unwrap_or_default();
        let mut broken: Option<String> = None;
        // The old anchor (the hash of the newest entry deleted for its
        // age), or a new random one where there was none.
        let anchor =
            old_anchor.unwrap_or_else(|| crate::secret::hex(&crate::secret::random_bytes::<32>()));
        let mut prev = anchor.clone();
        let mut count = 0;
        for entry in self.audit.iter() {
            let (key, bytes) = entry?;
            let mut event: AuditEvent = decode(&bytes)?;
            if let Some(link) = old_link {
                if broken.is_none() && event.prev != old_prev {
                    broken = Some(format!("entry {count} did not follow the one before it"));
                }
                old_prev = link(&bytes);
            }
            event.prev = prev;
            let rewritten = encode(&event)?;
            prev = keys.audit_mac(LINK, &rewritten);
            self.audit.insert(key, rewritten)?;
            count += 1;
        }
        let old_head = text(self.meta.get("audit_head")?).unwrap_or_default();
        if old_link.is_some() && broken.is_none() && count > 0 && old_head != old_prev {
            broken = Some("its last entry was not the one last written".into());
        }
        self.meta.insert(
            "audit_head",
            keys.audit_mac(HEAD, prev.as_bytes()).as_bytes(),
        )?;
        self.meta.insert("audit_anchor", anchor.as_bytes())?;
        self.meta.insert(
            "audit_anchor_tag",
            keys.audit_mac(ANCHOR, anchor.as_bytes()).as_bytes(),
        )?;
        Ok(match broken {
            None if old_link.is_none() => format!("the audit trail ({count} entries) is chained anew under the new key file's key; whether it was intact before could not be checked"),
            None => format!("the audit trail ({count} entries) was intact and is now chained under the key file's key"),
            Some(problem) => format!("the audit trail ({count} entries) is now chained under the key file's key, but the old chain was BROKEN: {problem}"),
        })
    }
}

/// `trim_audit`'s work, as the one writer.
fn trim(t: &Trees, keys: &Keys, before: u64, batch: usize) -> Result<usize> {
    let mut done = 0;
    for entry in t.audit.iter() {
        if done == batch {
            break;
        }
        let (key, bytes) = entry?;
        let event: AuditEvent = decode(&bytes)?;
        if event.time >= before {
            break;
        }
        let anchor = keys.audit_mac(LINK, &bytes);
        let tag = keys.audit_mac(ANCHOR, anchor.as_bytes());
        // The entry goes and the anchor moves in one transaction: a
        // crash cannot leave the one without the other.
        let (mut audit, mut meta, mut accounts) =
            (Batch::default(), Batch::default(), Batch::default());
        audit.remove(key.clone());
        meta.insert("audit_anchor", anchor.as_bytes());
        meta.insert("audit_anchor_tag", tag.as_bytes());
        if let Some(index) = account_index_key(&event, &key) {
            accounts.remove(index);
        }
        together(&[
            (&t.audit, &audit),
            (&t.meta, &meta),
            (&t.audit_accounts, &accounts),
        ])?;
        done += 1;
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filtered_page_reads_an_account_by_its_index_and_the_rest_backwards() {
        let (store, dir) = crate::store::testing::temp_store();
        for n in 0..30u64 {
            let account = ["a", "b", "c"][n as usize % 3];
            store
                .audit(&AuditEvent {
                    time: 1_000 + n,
                    site: Some(Site::Kaigo),
                    event: if n % 2 == 0 {
                        "login"
                    } else {
                        "operator_unlock"
                    }
                    .into(),
                    account: Some(account.into()),
                    operator: (n % 2 == 1).then(|| "op".to_string()),
                    ..Default::default()
                })
                .unwrap();
        }
        let of_b = AuditFilter::of_account(Site::Kaigo, "b");
        let page = store.audit_page(&of_b, None, 4).unwrap();
        let times: Vec<u64> = page.entries.iter().map(|(_, e)| e.time).collect();
        assert_eq!(times, [1_028, 1_025, 1_022, 1_019], "newest first");
        let rest = store.audit_page(&of_b, page.next, 100).unwrap();
        assert_eq!(rest.entries.len(), 6);
        assert_eq!(rest.next, None);
        let filter = AuditFilter {
            event: Some("operator_unlock".into()),
            operator: Some("op".into()),
            from: Some(1_020),
            until: Some(1_025),
            ..AuditFilter::default()
        };
        let page = store.audit_page(&filter, None, 100).unwrap();
        let times: Vec<u64> = page.entries.iter().map(|(_, e)| e.time).collect();
        assert_eq!(times, [1_025, 1_023, 1_021]);
        assert!(!page.cut_short);
        // Trimmed entries leave the index too; a trail from before the
        // index is indexed once.
        store.trim_audit(1_010, 100).unwrap();
        assert_eq!(store.account_audit(Site::Kaigo, "b", 100).unwrap().len(), 7);
        let t = store.trees().unwrap();
        assert_eq!(t.audit_accounts.len().unwrap(), 20);
        t.audit_accounts.clear().unwrap();
        t.meta.remove("audit_indexed").unwrap();
        assert_eq!(store.index_audit_once().unwrap(), 20);
        assert_eq!(store.account_audit(Site::Kaigo, "b", 100).unwrap().len(), 7);
        drop(t);
        drop(store);
        std::fs::remove_dir_all(dir).unwrap();
    }

    use crate::store::testing::*;

    #[test]
    fn the_audit_chain_shows_any_edit_or_removal() {
        let (store, dir) = temp_store();
        let event = |n: u64| AuditEvent {
            prev: String::new(),
            time: n,
            site: Some(Site::Kaigo),
            event: "login".into(),
            account: None,
            client: "127.0.0.1".into(),
            outcome: "failed".into(),
            ..Default::default()
        };
        for n in 0..5 {
            store.audit(&event(n)).unwrap();
        }
        assert_eq!(store.verify_audit().unwrap(), Ok(5));
        let keys: Vec<_> = store
            .trees()
            .unwrap()
            .audit
            .iter()
            .keys()
            .map(|k| k.unwrap())
            .collect();
        // An edit in the middle.
        let original = store.trees().unwrap().audit.get(&keys[2]).unwrap().unwrap();
        let edited = String::from_utf8(original.to_vec())
            .unwrap()
            .replace("failed", "ok");
        store
            .trees()
            .unwrap()
            .audit
            .insert(&keys[2], edited.as_bytes())
            .unwrap();
        assert!(store.verify_audit().unwrap().is_err());
        store
            .trees()
            .unwrap()
            .audit
            .insert(&keys[2], original)
            .unwrap();
        assert_eq!(store.verify_audit().unwrap(), Ok(5));
        // A removal in the middle, and at the end.
        let middle = store
            .trees()
            .unwrap()
            .audit
            .remove(&keys[1])
            .unwrap()
            .unwrap();
        assert!(store.verify_audit().unwrap().is_err());
        store
            .trees()
            .unwrap()
            .audit
            .insert(&keys[1], middle)
            .unwrap();
        let last = store
            .trees()
            .unwrap()
            .audit
            .remove(&keys[4])
            .unwrap()
            .unwrap();
        assert!(store
            .verify_audit()
            .unwrap()
            .unwrap_err()
            .contains("at the end"));
        // Nor by making the head what the removed entry named: the head's
        // own HMAC needs the key file.
        let removed: AuditEvent = decode(&last).unwrap();
        store
            .trees()
            .unwrap()
            .meta
            .insert("audit_head", removed.prev.as_bytes())
            .unwrap();
        assert!(store.verify_audit().unwrap().is_err());
        drop(store);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn an_audit_trail_past_its_retention_is_trimmed_and_still_verifies() {
        let (store, dir) = temp_store();
        for n in 0..10 {
            store
                .audit(&AuditEvent {
                    prev: String::new(),
                    time: n * 100,
                    site: Some(Site::Portal),
                    event: "login".into(),
                    account: None,
                    client: "127.0.0.1".into(),
                    outcome: "failed".into(),
                    ..Default::default()
                })
                .unwrap();
        }
        assert_eq!(store.trim_audit(450, 3).unwrap(), 3);
        assert_eq!(store.trim_audit(450, 100).unwrap(), 2);
        assert_eq!(store.audit_events().unwrap().len(), 5);
        assert_eq!(store.verify_audit().unwrap(), Ok(5));
        // Deleting one more by hand, without moving the anchor, shows.
        let first = store
            .trees()
            .unwrap()
            .audit
            .iter()
            .keys()
            .next()
            .unwrap()
            .unwrap();
        store.trees().unwrap().audit.remove(first).unwrap();
        assert!(store.verify_audit().unwrap().is_err());
        // Nor by moving the anchor to what the new first entry names:
        // the anchor's own HMAC needs the key file.
        let t = store.trees().unwrap();
        let next: AuditEvent = decode(&t.audit.iter().values().next().unwrap().unwrap()).unwrap();
        t.meta.insert("audit_anchor", next.prev.as_bytes()).unwrap();
        assert!(store
            .verify_audit()
            .unwrap()
            .unwrap_err()
            .contains("anchor"));
        drop(t);
        drop(store);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
