//! A scheduled crash: every accepted stream sits in a slot the crash can empty, resetting the
//! connection ([`Killable`]); a stream whose slot is empty fails every operation.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use crate::endpoints::killable::{Killable, Reset};
use crate::engine::{NetRef, Stream};

/// When the server crashes, and the connections a crash resets.
#[derive(Clone)]
pub(super) struct Crash {
    pub(super) at: Option<Duration>,
    pub(super) conns: Rc<RefCell<Vec<Reset>>>,
}

impl Crash {
    pub(super) fn new(at: Option<Duration>) -> Self {
        Self {
            at,
            conns: Rc::default(),
        }
    }

    /// Keeps `stream` where a crash can reach it.
    pub(super) fn register(&self, stream: Stream) -> Killable {
        let killable = Killable::new(stream, "the server crashed");
        if self.at.is_some() {
            self.conns.borrow_mut().push(killable.resetter());
        }
        killable
    }

    /// Resets every registered connection still open; returns how many.
    pub(super) fn reset_all(&self) -> usize {
        (self.conns.borrow_mut().drain(..))
            .filter(Reset::reset)
            .count()
    }

    pub(super) async fn wait(&self, net: &NetRef) {
        match self.at {
            Some(at) => net.sleep_until(at).await,
            None => std::future::pending().await,
        }
    }
}
