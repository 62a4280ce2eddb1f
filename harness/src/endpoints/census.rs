//! What the server still holds of a connection the client has left: the way a client learns
//! whether the end of its connection (a reset, `[client.workload] client-reset`) reached the
//! server through the intermediaries. Only the server sees its side of a tunnel; a proxy that
//! keeps that side open after the client has gone holds a connection to nobody, and a
//! backend's connections pile up.
//!
//! - A session asks to be watched with `watch=ID` in its query (ID: 1 to [`MAX_ID`] letters,
//!   digits or `-`): the server counts it among ID's open connections from the answer to its
//!   upgrade until its connection ends on the server's side ([`Census::enter`]).
//! - A later session to [`PATH`] (`/census?watch=ID&wait=MS`) is answered, once no connection
//!   of ID is open or after MS (at most [`MAX_WAIT`]), with one text message, `open N after T
//!   ms` ([`answer`], read back by [`read_answer`]), then a Close with 1000.
//!
//! The count is the server's own, shared by its workers, so the second session may take any
//! path to it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The census's path, after any prefix a proxy maps.
pub const PATH: &str = "/census";

/// The query parameter naming the watched sessions.
pub const WATCH_PARAM: &str = "watch";

/// The query parameter bounding the census's wait, in milliseconds.
pub const WAIT_PARAM: &str = "wait";

/// The longest an ID may be.
pub const MAX_ID: usize = 64;

/// The longest a census waits for the watched connections to end.
pub const MAX_WAIT: Duration = Duration::from_secs(60);

/// How often a waiting census counts again.
pub const RECOUNT: Duration = Duration::from_millis(10);

/// The ID a query watches (`watch=ID`), if it names a valid one.
pub fn watched(query: &str) -> Option<&str> {
    let id = query
        .split('&')
        .find_map(|pair| pair.strip_prefix(WATCH_PARAM)?.strip_prefix('='))?;
    let valid = !id.is_empty()
        && id.len() <= MAX_ID
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    valid.then_some(id)
}

/// What is wrong with a census request's query: the line its 400 carries.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CensusError {
    /// No valid `watch=ID`.
    #[error("A census names `{WATCH_PARAM}=ID`: 1 to {MAX_ID} letters, digits or `-`.")]
    Id,
    /// No valid `wait=MS`.
    #[error("A census names `{WAIT_PARAM}=MS`: up to {} ms.", MAX_WAIT.as_millis())]
    Wait,
}

/// A census request's ID and wait, from its query.
pub fn request(query: &str) -> Result<(String, Duration), CensusError> {
    let id = watched(query).ok_or(CensusError::Id)?;
    let wait = query
        .split('&')
        .find_map(|pair| pair.strip_prefix(WAIT_PARAM)?.strip_prefix('='))
        .and_then(|v| v.parse::<u64>().ok())
        .map(Duration::from_millis)
        .filter(|w| *w <= MAX_WAIT)
        .ok_or(CensusError::Wait)?;
    Ok((id.to_string(), wait))
}

/// The census's answer: `open N after T ms`.
pub fn answer(open: usize, waited: Duration) -> String {
    format!("open {open} after {} ms", waited.as_millis())
}

/// How many connections an answer says are open, and after how long, or `None` for text
/// that is not an answer.
pub fn read_answer(text: &str) -> Option<(usize, u64)> {
    let rest = text.strip_prefix("open ")?;
    let (open, rest) = rest.split_once(" after ")?;
    let waited = rest.strip_suffix(" ms")?;
    Some((open.parse().ok()?, waited.parse().ok()?))
}

/// The server's watched connections: how many are open, by ID. Clones share them.
#[derive(Debug, Clone, Default)]
pub struct Census(Arc<Mutex<BTreeMap<String, usize>>>);

impl Census {
    /// Counts one connection of `id` open until the returned guard is dropped.
    pub fn enter(&self, id: &str) -> Watched {
        if let Ok(mut open) = self.0.lock() {
            *open.entry(id.to_string()).or_default() += 1;
        }
        Watched {
            census: self.clone(),
            id: id.to_string(),
        }
    }

    /// How many connections of `id` are open.
    pub fn open(&self, id: &str) -> usize {
        self.0
            .lock()
            .map(|open| open.get(id).copied().unwrap_or_default())
            .unwrap_or_default()
    }
}

/// One watched connection, counted open while this lives.
#[derive(Debug)]
pub struct Watched {
    census: Census,
    id: String,
}

impl Drop for Watched {
    fn drop(&mut self) {
        if let Ok(mut open) = self.census.0.lock() {
            if let Some(n) = open.get_mut(&self.id) {
                *n -= 1;
                if *n == 0 {
                    open.remove(&self.id);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_watched_connection_is_counted_until_its_guard_goes() {
        let census = Census::default();
        let a = census.enter("run-1");
        let b = census.enter("run-1");
        assert_eq!(census.open("run-1"), 2);
        assert_eq!(census.open("run-2"), 0);
        drop(a);
        assert_eq!(census.open("run-1"), 1);
        drop(b);
        assert_eq!(census.open("run-1"), 0);
        assert!(census.0.lock().unwrap().is_empty(), "nothing kept of an ID");
    }

    #[test]
    fn a_census_request_names_a_valid_id_and_a_bounded_wait() {
        assert_eq!(watched("count=3&watch=ab-12"), Some("ab-12"));
        assert_eq!(watched("watch=a%2Fb"), None);
        assert_eq!(watched("watch="), None);
        assert_eq!(
            request("watch=ab&wait=2000"),
            Ok(("ab".to_string(), Duration::from_secs(2)))
        );
        assert_eq!(request("wait=2000"), Err(CensusError::Id));
        let wait = request("watch=ab&wait=600000").unwrap_err();
        assert!(wait.to_string().contains("up to 60000 ms"), "{wait}");
        assert_eq!(
            read_answer(&answer(1, Duration::from_millis(2000))),
            Some((1, 2000))
        );
        assert_eq!(read_answer("open many"), None);
    }
}
