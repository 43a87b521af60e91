//! Mail: the outbox (waiting for a server), the capture mailbox (the demo's
//! and a lab's), and the sealing of their text under the key file's key.

use super::*;

/// Seals the text of outbox and mailbox records written before mail text
/// was sealed; how many.
pub(super) fn seal_old_mail(trees: &Trees, keys: &Keys) -> Result<usize> {
    let mut sealed = 0;
    for tree in [&trees.outbox, &trees.mailbox] {
        for entry in tree.iter() {
            let (key, bytes) = entry?;
            let value: serde_json::Value = decode(&bytes)?;
            if value.get("sealed").is_some() {
                continue;
            }
            let id = value.get("id").and_then(|v| v.as_u64()).unwrap_or(0);
            tree.insert(key, seal_record(keys, id, value)?)?;
            sealed += 1;
        }
    }
    Ok(sealed)
}

/// The fields of a mail record that hold its text, and so a code or a link.
pub(super) const MAIL_TEXT: [&str; 2] = ["body", "mime"];

/// The associated data a mail's sealed text is bound to.
pub(super) fn mail_record(id: u64) -> Vec<u8> {
    [&b"mail\0"[..], &id.to_be_bytes()].concat()
}

/// A mail record as stored: its text (`body`, `mime`: a code or a link)
/// sealed under the key file's key, with the mail's id as associated data;
/// the rest, which the mail thread and the listings read, plain.
pub(super) fn seal_record(keys: &Keys, id: u64, mut value: serde_json::Value) -> Result<Vec<u8>> {
    use base64ct::{Base64, Encoding};
    let fields = value
        .as_object_mut()
        .ok_or_else(|| StoreError::corrupt("a mail record is not an object"))?;
    let text: serde_json::Map<String, serde_json::Value> = MAIL_TEXT
        .iter()
        .filter_map(|f| Some((f.to_string(), fields.remove(*f)?)))
        .collect();
    let sealed = keys
        .sealer
        .seal(&mail_record(id), &serde_json::to_vec(&text)?);
    fields.insert("sealed".into(), Base64::encode_string(&sealed).into());
    encode(&value)
}

/// A stored mail record with its text opened (or as it was, from before
/// text was sealed).
pub(super) fn open_record<T: DeserializeOwned>(keys: &Keys, bytes: &[u8]) -> Result<T> {
    use base64ct::{Base64, Encoding};
    let mut value: serde_json::Value = decode(bytes)?;
    let fields = value
        .as_object_mut()
        .ok_or_else(|| StoreError::corrupt("a mail record is not an object"))?;
    if let Some(sealed) = fields.remove("sealed") {
        let id = fields.get("id").and_then(|v| v.as_u64()).unwrap_or(0);
        let sealed = Base64::decode_vec(sealed.as_str().unwrap_or("")).map_err(|_| {
            StoreError::corrupt(format!("mail {id}: its sealed text is not base64"))
        })?;
        let plain = keys.sealer.open(&mail_record(id), &sealed).ok_or_else(|| {
            StoreError::corrupt(format!(
                "mail {id} does not open with the key file's key (another key file?)"
            ))
        })?;
        let text: serde_json::Map<String, serde_json::Value> = decode(&plain)?;
        fields.extend(text);
    }
    Ok(serde_json::from_value(value)?)
}

impl Store {
    pub(super) fn seal_mail<T: Serialize>(&self, id: u64, mail: &T) -> Result<Vec<u8>> {
        seal_record(&*self.keys()?, id, serde_json::to_value(mail)?)
    }

    /// A stored mail, or None (said once in the log) for one that does
    /// not open: sealed under another key file, or damaged. One such
    /// record must not stop the delivery or the listing of the others.
    pub(super) fn open_mail<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<Option<T>> {
        let keys = self.keys()?;
        match open_record(&keys, bytes) {
            Ok(mail) => Ok(Some(mail)),
            Err(e) => {
                #[derive(Deserialize)]
                struct Id {
                    id: u64,
                }
                let id = decode::<Id>(bytes).map_or(0, |r| r.id);
                let mut told = self.unreadable.lock().unwrap_or_else(|e| e.into_inner());
                if told.len() > 10_000 {
                    told.clear();
                }
                if told.insert(id) {
                    say!("kagi: mail {id} is left aside: {e}");
                }
                Ok(None)
            }
        }
    }

    /// Puts a mail in the outbox and returns its id. `prepare` receives the
    /// id so that the Message-ID can be derived from it.
    pub fn enqueue_mail(&self, prepare: impl FnOnce(u64) -> OutboxMail) -> Result<u64> {
        let t = self.trees()?;
        let id = self.next_id()?;
        let mail = prepare(id);
        t.outbox
            .insert(id.to_be_bytes(), self.seal_mail(id, &mail)?)?;
        Ok(id)
    }

    /// Every mail still in the outbox, oldest first.
    pub fn outbox(&self) -> Result<Vec<OutboxMail>> {
        let t = self.trees()?;
        let mut mails = Vec::new();
        for value in t.outbox.iter().values() {
            mails.extend(self.open_mail(&value?)?);
        }
        Ok(mails)
    }

    /// Up to `limit` real (not decoy) mails of the outbox with an id above
    /// `after`, oldest first.
    pub fn undelivered_after(&self, after: u64, limit: usize) -> Result<Vec<OutboxMail>> {
        let t = self.trees()?;
        let mut page = Vec::new();
        for value in t
            .outbox
            .range((after.saturating_add(1)).to_be_bytes()..)
            .values()
        {
            let Some(mail) = self.open_mail::<OutboxMail>(&value?)? else {
                continue;
            };
            if !mail.decoy {
                page.push(mail);
                if page.len() == limit {
                    break;
                }
            }
        }
        Ok(page)
    }

    pub fn update_mail(&self, mail: &OutboxMail) -> Result<()> {
        let t = self.trees()?;
        t.outbox
            .insert(mail.id.to_be_bytes(), self.seal_mail(mail.id, mail)?)?;
        Ok(())
    }

    /// Takes mail `id` for the calling mail thread until `until`, unless a
    /// mail thread of another instance on the same PostgreSQL database has
    /// it: true when taken. One compare-and-swap, so that two mail threads
    /// never both take it; one that dies with it lets go at `until`. On
    /// sled one process, with one mail thread, owns the database: nothing
    /// to take, and nothing held over from a process killed mid-send (its
    /// mail goes out at once after the restart).
    pub fn claim_mail(&self, id: u64, now: u64, until: u64) -> Result<bool> {
        if self.postgres.is_none() {
            return Ok(true);
        }
        let t = self.trees()?;
        let key = id.to_be_bytes();
        let Some(old) = t.outbox.get(key)? else {
            return Ok(false);
        };
        let Some(mut mail) = self.open_mail::<OutboxMail>(&old)? else {
            return Ok(false);
        };
        if mail.claimed_until > now {
            return Ok(false);
        }
        mail.claimed_until = until;
        let new = self.seal_mail(id, &mail)?;
        Ok(t.outbox
            .compare_and_swap(key, Some(&old[..]), Some(new))?
            .is_ok())
    }

    pub fn remove_mail(&self, id: u64) -> Result<()> {
        let t = self.trees()?;
        t.outbox.remove(id.to_be_bytes())?;
        Ok(())
    }

    /// Moves a mail from the outbox into the capture mailbox in one step.
    pub fn capture_mail(&self, mail: &CapturedMail) -> Result<()> {
        let t = self.trees()?;
        let key = mail.id.to_be_bytes();
        let value = self.seal_mail(mail.id, mail)?;
        let (mut outbox, mut mailbox) = (Batch::default(), Batch::default());
        outbox.remove(&key[..]);
        mailbox.insert(&key[..], value);
        kv::together(&[(&t.outbox, &outbox), (&t.mailbox, &mailbox)])
    }

    /// Captured mail, newest first.
    pub fn captured_mail(&self, limit: usize) -> Result<Vec<CapturedMail>> {
        let t = self.trees()?;
        let mut mails = Vec::new();
        for value in t.mailbox.iter().values().rev().take(limit) {
            mails.extend(self.open_mail(&value?)?);
        }
        Ok(mails)
    }

    /// Captured mail with an id above `after`, oldest first: a reader that
    /// remembers the last id it saw gets each mail once, a page at a time.
    pub fn captured_mail_after(&self, after: u64, limit: usize) -> Result<Vec<CapturedMail>> {
        let t = self.trees()?;
        let mut mails = Vec::new();
        let after = (after.saturating_add(1)).to_be_bytes();
        for value in t.mailbox.range(after..).values().take(limit) {
            mails.extend(self.open_mail(&value?)?);
        }
        Ok(mails)
    }

    /// Deletes captured mail beyond the newest `keep`.
    pub fn trim_mailbox(&self, keep: usize, batch: usize) -> Result<usize> {
        let t = self.trees()?;
        let excess = t.mailbox.len()?.saturating_sub(keep).min(batch);
        let mut done = 0;
        for key in t.mailbox.iter().keys().take(excess) {
            t.mailbox.remove(key?)?;
            done += 1;
        }
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use crate::store::testing::*;

    #[test]
    fn the_mailbox_keeps_the_newest() {
        let (store, dir) = temp_store();
        for id in 0..5u64 {
            store
                .trees()
                .unwrap()
                .mailbox
                .insert(id.to_be_bytes(), format!("{id}").as_bytes())
                .unwrap();
        }
        assert_eq!(store.trim_mailbox(2, 100).unwrap(), 3);
        let left: Vec<_> = store
            .trees()
            .unwrap()
            .mailbox
            .iter()
            .keys()
            .map(|k| k.unwrap().to_vec())
            .collect();
        assert_eq!(
            left,
            [3u64.to_be_bytes().to_vec(), 4u64.to_be_bytes().to_vec()]
        );
        drop(store);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
