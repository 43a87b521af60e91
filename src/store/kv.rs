//! The ordered key-value trees kagi's records live in, on either engine:
//! sled's trees, or one table in PostgreSQL (`store/postgres.rs`). The
//! store's record families (accounts, flows, mail, the audit trail) are
//! written once against this face, so that both engines keep the same
//! rules: the same reads and writes on every branch, the same
//! compare-and-swap where a record is used once.

use super::postgres::{PgIter, PgTree};
use super::{Result, StoreError};
use sled::IVec;
use std::ops::{Bound, RangeBounds};

pub use sled::CompareAndSwapError;

/// A tree of one engine or the other.
#[derive(Clone)]
pub enum Tree {
    Sled(sled::Tree),
    Pg(PgTree),
}

/// Writes to apply to a tree together: inserts (`Some`) and removals.
#[derive(Default)]
pub struct Batch {
    pub(super) writes: Vec<(IVec, Option<IVec>)>,
}

impl Batch {
    pub fn insert(&mut self, key: impl Into<IVec>, value: impl Into<IVec>) {
        self.writes.push((key.into(), Some(value.into())));
    }

    pub fn remove(&mut self, key: impl Into<IVec>) {
        self.writes.push((key.into(), None));
    }

    fn to_sled(&self) -> sled::Batch {
        let mut batch = sled::Batch::default();
        for (key, value) in &self.writes {
            match value {
                Some(v) => batch.insert(key.clone(), v.clone()),
                None => batch.remove(key.clone()),
            }
        }
        batch
    }
}

/// Owned bounds of a range of keys.
pub(super) type KeyRange = (Bound<Vec<u8>>, Bound<Vec<u8>>);

fn owned<K: AsRef<[u8]>, R: RangeBounds<K>>(range: &R) -> KeyRange {
    let own = |b: Bound<&K>| match b {
        Bound::Included(k) => Bound::Included(k.as_ref().to_vec()),
        Bound::Excluded(k) => Bound::Excluded(k.as_ref().to_vec()),
        Bound::Unbounded => Bound::Unbounded,
    };
    (own(range.start_bound()), own(range.end_bound()))
}

/// The keys that start with `prefix`, as a range.
fn prefix_range(prefix: &[u8]) -> KeyRange {
    // The first key after every key with the prefix: the prefix with its
    // last byte below 0xff raised by one, and the 0xff bytes after it cut.
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return (Bound::Included(prefix.to_vec()), Bound::Excluded(end));
        }
    }
    (Bound::Included(prefix.to_vec()), Bound::Unbounded)
}

impl Tree {
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<IVec>> {
        match self {
            Tree::Sled(t) => Ok(t.get(key)?),
            Tree::Pg(t) => t.get(key.as_ref()),
        }
    }

    /// Writes `value` at `key`; the value it replaced.
    pub fn insert(&self, key: impl AsRef<[u8]>, value: impl Into<IVec>) -> Result<Option<IVec>> {
        match self {
            Tree::Sled(t) => Ok(t.insert(key, value)?),
            Tree::Pg(t) => t.insert(key.as_ref(), &value.into()),
        }
    }

    /// Removes `key`; the value it had.
    pub fn remove(&self, key: impl AsRef<[u8]>) -> Result<Option<IVec>> {
        match self {
            Tree::Sled(t) => Ok(t.remove(key)?),
            Tree::Pg(t) => t.remove(key.as_ref()),
        }
    }

    pub fn contains_key(&self, key: impl AsRef<[u8]>) -> Result<bool> {
        Ok(self.get(key)?.is_some())
    }

    /// Writes `new` at `key` only if it holds `old` (None: absent), in
    /// one step no other writer can come between, on either engine.
    pub fn compare_and_swap(
        &self,
        key: impl AsRef<[u8]>,
        old: Option<impl AsRef<[u8]>>,
        new: Option<impl Into<IVec>>,
    ) -> Result<std::result::Result<(), CompareAndSwapError>> {
        match self {
            Tree::Sled(t) => Ok(t.compare_and_swap(key, old, new)?),
            Tree::Pg(t) => t.compare_and_swap(
                key.as_ref(),
                old.as_ref().map(|o| o.as_ref()),
                new.map(Into::into),
            ),
        }
    }

    pub fn apply_batch(&self, batch: Batch) -> Result<()> {
        match self {
            Tree::Sled(t) => Ok(t.apply_batch(batch.to_sled())?),
            Tree::Pg(t) => t.apply_batch(&batch),
        }
    }

    pub fn iter(&self) -> Iter {
        self.range::<&[u8], _>(..)
    }

    pub fn scan_prefix(&self, prefix: impl AsRef<[u8]>) -> Iter {
        match self {
            Tree::Sled(t) => Iter::Sled(t.scan_prefix(prefix)),
            Tree::Pg(t) => Iter::Pg(t.range(prefix_range(prefix.as_ref()))),
        }
    }

    pub fn range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Iter {
        match self {
            Tree::Sled(t) => Iter::Sled(t.range(range)),
            Tree::Pg(t) => Iter::Pg(t.range(owned(&range))),
        }
    }

    /// The entry with the greatest key.
    pub fn last(&self) -> Result<Option<(IVec, IVec)>> {
        match self {
            Tree::Sled(t) => Ok(t.last()?),
            Tree::Pg(t) => t.edge(false),
        }
    }

    pub fn len(&self) -> Result<usize> {
        match self {
            Tree::Sled(t) => Ok(t.len()),
            Tree::Pg(t) => t.len(),
        }
    }

    pub fn is_empty(&self) -> Result<bool> {
        match self {
            Tree::Sled(t) => Ok(t.is_empty()),
            Tree::Pg(t) => Ok(t.edge(true)?.is_none()),
        }
    }

    #[cfg(test)]
    pub fn clear(&self) -> Result<()> {
        match self {
            Tree::Sled(t) => Ok(t.clear()?),
            Tree::Pg(t) => t.clear(),
        }
    }
}

/// Writes `writes` (a batch per tree) all or none: a crash, or a
/// failure of the engine, keeps every one or none of them.
pub fn together(writes: &[(&Tree, &Batch)]) -> Result<()> {
    match writes.first() {
        None => Ok(()),
        Some((Tree::Sled(_), _)) => {
            use sled::Transactional;
            let mut trees = Vec::new();
            let mut batches = Vec::new();
            for (tree, batch) in writes {
                let Tree::Sled(t) = tree else {
                    return Err(StoreError::refused("one write across two engines"));
                };
                trees.push(t);
                batches.push(batch.to_sled());
            }
            trees
                .as_slice()
                .transaction(|views| {
                    for (view, batch) in views.iter().zip(&batches) {
                        view.apply_batch(batch)?;
                    }
                    Ok(())
                })
                .map_err(StoreError::from_transaction)
        }
        Some((Tree::Pg(t), _)) => t.together(writes),
    }
}

/// Entries in key order, from either end.
pub enum Iter {
    Sled(sled::Iter),
    Pg(PgIter),
}

impl Iterator for Iter {
    type Item = Result<(IVec, IVec)>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Iter::Sled(i) => i.next().map(|e| e.map_err(StoreError::from)),
            Iter::Pg(i) => i.next(),
        }
    }
}

impl DoubleEndedIterator for Iter {
    fn next_back(&mut self) -> Option<Self::Item> {
        match self {
            Iter::Sled(i) => i.next_back().map(|e| e.map_err(StoreError::from)),
            Iter::Pg(i) => i.next_back(),
        }
    }
}

impl Iter {
    pub fn keys(self) -> impl DoubleEndedIterator<Item = Result<IVec>> {
        self.map(|e| e.map(|(k, _)| k))
    }

    pub fn values(self) -> impl DoubleEndedIterator<Item = Result<IVec>> {
        self.map(|e| e.map(|(_, v)| v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_read_from_both_ends_gives_each_entry_once_in_order() {
        // More entries than PostgreSQL's page, on whichever engine the
        // tests run on.
        let (store, dir) = crate::store::testing::temp_store();
        let t = store.trees().unwrap();
        let mut batch = Batch::default();
        for n in 0..700u32 {
            batch.insert(&n.to_be_bytes()[..], &n.to_le_bytes()[..]);
        }
        t.guards.apply_batch(batch).unwrap();
        let key =
            |e: Result<(IVec, IVec)>| u32::from_be_bytes(e.unwrap().0.as_ref().try_into().unwrap());
        let mut range = t
            .guards
            .range(&10u32.to_be_bytes()[..]..&690u32.to_be_bytes()[..]);
        let (mut front, mut back) = (Vec::new(), Vec::new());
        loop {
            // Three from the front for every one from the back.
            let next = match (front.len() + back.len()) % 4 {
                3 => range.next_back().map(|e| back.push(key(e))),
                _ => range.next().map(|e| front.push(key(e))),
            };
            if next.is_none() {
                break;
            }
        }
        back.reverse();
        front.extend(back);
        assert_eq!(front, (10..690).collect::<Vec<u32>>());
        let all: Vec<u32> = t.guards.scan_prefix([0u8, 0, 1]).map(key).collect();
        assert_eq!(all, (256..512).collect::<Vec<u32>>(), "a prefix");
        assert_eq!(
            t.guards.last().unwrap().map(|(k, _)| k.to_vec()),
            Some(699u32.to_be_bytes().to_vec())
        );
        drop(t);
        drop(store);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_prefix_is_the_range_up_to_its_successor() {
        assert_eq!(
            prefix_range(b"ab"),
            (
                Bound::Included(b"ab".to_vec()),
                Bound::Excluded(b"ac".to_vec())
            )
        );
        assert_eq!(
            prefix_range(&[1, 0xff]),
            (Bound::Included(vec![1, 0xff]), Bound::Excluded(vec![2]))
        );
        assert_eq!(
            prefix_range(&[0xff]),
            (Bound::Included(vec![0xff]), Bound::Unbounded)
        );
    }
}
