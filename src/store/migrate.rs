//! `kagi migrate`: a stopped server's sled database moved into an empty
//! PostgreSQL database, record by record, through the same filling as a
//! restore with its key file (`backup::Filling`): the same records kept,
//! the same ids gone on from. The key file stays as it is, and every
//! PostgreSQL instance reads it, so that what was sealed, digested or
//! chained under its keys opens and verifies there as it did on sled.

use super::backup::{Counts, Filling};
use super::postgres::Lock;
use super::{AuditEvent, Result, Store, StoreError, Trees};
use std::path::Path;

/// The mark in the target's meta tree while a migration fills it: a
/// database that keeps it was cut short, holds part of the records, and
/// is refused at open (`Trees::read_format`) rather than served.
pub(super) const UNFINISHED: &str = "migration_unfinished";

/// What a migration cannot move, said to whoever runs it: what the stopped
/// server kept only in memory, which is gone at any restart.
pub const LEFT_BEHIND: &str = "CAPTCHA challenges being answered (sled's server keeps them \
     in memory: a visitor draws a new one) and the rate-limit counts (also in memory; they \
     start again, now shared by the instances). Nothing of the database was left out";

/// What a migration did.
#[derive(Debug)]
pub struct Migrated {
    /// The records moved, per tree.
    pub counts: Counts,
    /// The next id the sled server would have given; PostgreSQL's ids go
    /// on above it.
    pub next_id: u64,
    /// The audit trail's check on PostgreSQL: Ok(entries) or where it broke.
    pub audit: std::result::Result<usize, String>,
}

/// Moves the sled database in `from` (whose key file is `key_file`) into
/// the PostgreSQL database `to` names, which must hold no kagi record. Refused
/// while a server has the sled database open, without the key file, when
/// the sled trail does not verify under it (a key file of another server),
/// and into a database that holds kagi's records: a migration never merges.
pub fn migrate(
    from: &Path,
    cache_bytes: u64,
    key_file: &Path,
    to: &crate::config::PostgresConfig,
    now: u64,
) -> std::result::Result<Migrated, String> {
    let url = to.url.as_deref().unwrap_or_default();
    let dir = from.display();
    if !from.join("conf").exists() {
        return Err(format!("no kagi database in {dir}"));
    }
    if !key_file.exists() {
        return Err(format!(
            "no key file at {}: the PostgreSQL instances need the key file the sled database \
             was written under (its sealed mail, its codes' digests and its audit chain are \
             under its keys). Put it back, or name it with store.key_file in --config",
            key_file.display()
        ));
    }
    // sled's lock says it too, in sled's words.
    if super::is_open_somewhere(from) {
        return Err(format!(
            "the database in {dir} is in use (stop kagi first): a migration copies a \
             database no one is writing"
        ));
    }
    let source = Store::open(from, cache_bytes, key_file)
        .map_err(|e| format!("cannot open the database in {dir} (stop kagi first): {e}"))?;
    match source.verify_audit() {
        Ok(Ok(_)) => {}
        Ok(Err(problem)) => {
            return Err(format!(
                "the audit trail in {dir} does not verify under the key file {} ({problem}): \
                 moved, it would not verify on PostgreSQL either. Give the key file this \
                 database was written under (store.key_file in --config), or find out first \
                 why the trail broke (`kagi audit verify --data-dir {dir}`)",
                key_file.display()
            ))
        }
        Err(e) => return Err(e.to_string()),
    }
    let shown = super::postgres::shown(url);
    let target = Trees::open_postgres(to, &shown)
        .map_err(|e| format!("cannot open the database {shown}: {e}"))?;
    let moved = {
        let s = source.trees().map_err(|e| e.to_string())?;
        // Under the keys' lock: an instance starting on the database
        // meanwhile waits, then finds the records and the key file.
        target
            .exclusively(Lock::Keys, true, || fill(&s, &target, &shown))
            .map_err(|e| e.to_string())?
            .ok_or("the keys' lock was not taken")?
    };
    drop(target);
    // The sled database is let go only now: no server wrote it meanwhile.
    drop(source);
    let (counts, next_id) = moved;
    let store = Store::open_postgres_or_wait(to, from, key_file)
        .map_err(|e| format!("cannot open the database {shown}: {e}"))?;
    if let Some(why) = store.unavailable() {
        return Err(format!("cannot open the database {shown}: {why}"));
    }
    let fail = |e: StoreError| e.to_string();
    let outcome = format!(
        "moved from the sled database in {dir}: {} accounts, {} operators, {} audit entries, {} postal requests; ids go on above {next_id}",
        counts.of("accounts"),
        counts.of("operators"),
        counts.of("audit"),
        counts.of("postal")
    );
    store
        .audit(&AuditEvent {
            time: now,
            event: "migrated".into(),
            client: "local".into(),
            outcome,
            ..Default::default()
        })
        .and_then(|()| store.flush())
        .map_err(fail)?;
    // Checked with the entry that says so, written under PostgreSQL's ids:
    // an id given twice would show as a break.
    let audit = store.verify_audit().map_err(fail)?;
    Ok(Migrated {
        counts,
        next_id,
        audit,
    })
}

/// Fills the empty `target` with every record of `source`, as the one
/// holder of the keys' lock; what was moved, and the id base written.
fn fill(source: &Trees, target: &Trees, shown: &str) -> Result<(Counts, u64)> {
    if let Some(tree) = first_records(target)? {
        return Err(StoreError::refused(format!(
            "the database {shown} holds kagi's records already ({tree}, at least): kagi \
             migrate moves into an empty database only, and never merges two. Migrate into a \
             new database (CREATE DATABASE), or drop this one and create it again if nothing \
             in it is needed"
        )));
    }
    target.meta.insert(UNFINISHED, &b"1"[..])?;
    let filled = (|| {
        let mut filling = Filling::new(target, true);
        for name in Trees::NAMES {
            let Some(tree) = source.tree_named(name) else {
                continue;
            };
            for entry in tree.iter() {
                let (key, value) = entry?;
                filling.put(name, &key, &value)?;
            }
        }
        let next_id = source.id_base + source.db.generate_id()?;
        let counts = filling.finish(next_id)?;
        target.meta.remove(UNFINISHED)?;
        Ok((counts, next_id))
    })();
    if let Err(e) = &filled {
        // What was written is taken away again, mark last; should that
        // fail too, the mark keeps the database from being served.
        if let Err(left) = empty(target) {
            return Err(StoreError::other(format!(
                "{e}; what was written could not be taken away again ({left}): the database \
                 {shown} holds part of the records and is marked unfinished. Drop it, create \
                 it again, and migrate again"
            )));
        }
    }
    filled
}

/// The first tree of `t` that holds a record of kagi's, if one does: every
/// open writes the format mark, and a server's check a `checked` mark,
/// which are no one's records.
fn first_records(t: &Trees) -> Result<Option<&'static str>> {
    for name in Trees::NAMES {
        let Some(tree) = t.tree_named(name) else {
            continue;
        };
        for key in tree.iter().keys() {
            let key = key?;
            if name == "meta" && matches!(&key[..], b"format" | b"checked") {
                continue;
            }
            return Ok(Some(name));
        }
    }
    Ok(None)
}

/// Removes every record of `t`, the unfinished mark last.
fn empty(t: &Trees) -> Result<()> {
    for name in Trees::NAMES {
        let Some(tree) = t.tree_named(name) else {
            continue;
        };
        loop {
            let mut batch = super::kv::Batch::default();
            let mut n = 0;
            for key in tree.iter().keys().take(10_000) {
                let key = key?;
                if name == "meta" && &key[..] == UNFINISHED.as_bytes() {
                    continue;
                }
                batch.remove(key);
                n += 1;
            }
            if n == 0 {
                break;
            }
            tree.apply_batch(batch)?;
        }
    }
    t.meta.remove(UNFINISHED)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Trees of a new sled database in a directory of its own (the
    /// filling speaks to trees, whichever engine is under them).
    fn new_trees(name: &str) -> (Trees, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!(
            "kagi-migrate-{name}-{}",
            crate::secret::hex(&crate::secret::random_bytes::<8>())
        ));
        (Trees::open(&dir, 1 << 20).unwrap(), dir)
    }

    #[test]
    fn a_filling_moves_every_record_above_the_sources_ids_and_never_into_records() {
        let (mut source, from) = new_trees("source");
        let (target, to) = new_trees("target");
        source.accounts.insert("kaigo:a", &b"{}"[..]).unwrap();
        source.flows.insert("visit", &b"{}"[..]).unwrap();
        // As a restored database's: its ids go on from a backup's.
        source.id_base = 1 << 40;
        source
            .meta
            .insert("id_base", &(1u64 << 40).to_be_bytes())
            .unwrap();
        assert_eq!(
            first_records(&target).unwrap(),
            None,
            "a format mark is no record"
        );

        let (counts, next_id) = fill(&source, &target, "the target").unwrap();
        assert_eq!((counts.of("accounts"), counts.of("flows")), (1, 1));
        assert!(next_id >= 1 << 40, "from the source's id base on");
        assert_eq!(
            &target.meta.get("id_base").unwrap().unwrap()[..],
            &next_id.to_be_bytes()
        );
        assert!(target.meta.get(UNFINISHED).unwrap().is_none());
        assert!(target.flows.contains_key("visit").unwrap());

        let refused = fill(&source, &target, "the target").unwrap_err();
        assert!(
            refused
                .to_string()
                .contains("holds kagi's records already (accounts"),
            "{refused}"
        );
        empty(&target).unwrap();
        assert_eq!(first_records(&target).unwrap(), None);
        drop((source, target));
        for d in [from, to] {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}
