//! Postal requests (書類郵送): one per office, waiting for an operator.

use super::*;

impl Store {
    /// Keeps a postal request for an operator. A second request for the
    /// same office while the first waits replaces it, keeping the first
    /// one's id and place in the queue: one office holds one record, however
    /// often it is asked for. True when it replaced one.
    pub fn put_postal_request(&self, request: PostalRequest) -> Result<bool> {
        let t = self.trees()?;
        let key = format!("office:{}", request.office);
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
}
