//! Postal requests (書類郵送): one per office and billing prefecture,
//! waiting for an operator to issue a letter or reject the request.

use super::*;

/// The key of an office's request. One stored before the form asked for
/// the prefecture has none, and kept its key of then.
fn postal_key(office: &str, prefecture: &str) -> String {
    if prefecture.is_empty() {
        format!("office:{office}")
    } else {
        format!("office:{office}:{prefecture}")
    }
}

impl Store {
    /// Keeps a postal request for an operator. A second request for the
    /// same office and prefecture while the first waits replaces it,
    /// keeping the first one's id and place in the queue: one claim holds
    /// one record, however often it is asked for. True when it replaced one.
    pub fn put_postal_request(&self, request: PostalRequest) -> Result<bool> {
        let t = self.trees()?;
        let key = postal_key(&request.office, &request.prefecture);
        let waiting: Option<PostalRequest> = t.postal.get(&key)?.map(|v| decode(&v)).transpose()?;
        let (id, created) = match &waiting {
            Some(w) => (w.id, w.created),
            None => (self.next_id()?, request.created),
        };
        t.postal.insert(
            key,
            encode(&PostalRequest {
                id,
                created,
                ..request
            })?,
        )?;
        Ok(waiting.is_some())
    }

    /// Postal requests, oldest first.
    pub fn postal_requests(&self) -> Result<Vec<PostalRequest>> {
        let t = self.trees()?;
        let mut requests: Vec<PostalRequest> = t
            .postal
            .iter()
            .values()
            .map(|v| decode(&v?))
            .collect::<Result<_>>()?;
        requests.sort_by_key(|r| (r.created, r.id));
        Ok(requests)
    }

    /// The waiting request with this id.
    pub fn postal_request(&self, id: u64) -> Result<Option<PostalRequest>> {
        Ok(self.postal_requests()?.into_iter().find(|r| r.id == id))
    }

    /// Closes a request (a letter was issued, or it was rejected): true
    /// for the one caller that found it waiting.
    pub fn close_postal_request(&self, request: &PostalRequest) -> Result<bool> {
        let t = self.trees()?;
        let key = postal_key(&request.office, &request.prefecture);
        let Some(stored) = t.postal.get(&key)? else {
            return Ok(false);
        };
        let same = decode::<PostalRequest>(&stored)?.id == request.id;
        Ok(same
            && t.postal
                .compare_and_swap(&key, Some(stored), None as Option<&[u8]>)?
                .is_ok())
    }
}
