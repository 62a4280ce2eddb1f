//! The proxy told to stop mid-session (`stop-proxy-after`): once that many messages are
//! echoed the client has the first hop stopped ([`Plan::stop_proxy`]) and goes on. A proxy
//! may drain (the session runs to its end: nginx's and HAProxy's graceful stops, Caddy's
//! grace period) or cut (the connection ends: SIGTERM is nginx's and HAProxy's fast stop);
//! both are how proxies stop, so both end the run `delivered`, the detail saying which. A
//! session that neither goes on nor ends (`stalled`), or whose bytes arrive changed
//! (`corrupted`), still fails.

use std::time::Duration;

use super::WHO;
use super::session::Session;
use crate::endpoints::connect::{Fail, ms};
use crate::verdict::outcome::Outcome;

impl Session<'_> {
    /// Stops the proxy if `i`, just echoed, is the message after which the scenario asks.
    pub(super) fn stop_proxy_after(&mut self, i: u32) {
        let w = &self.plan.workload;
        let (Some(after), Some(stop)) = (w.stop_proxy_after, &self.plan.stop_proxy) else {
            return;
        };
        if i + 1 != after || self.stopped_at.is_some() {
            return;
        }
        stop.notify_one();
        self.stopped_at = Some(self.net.now());
        self.t.log(
            self.net.now(),
            WHO,
            format!("{after} messages echoed: the proxy is told to stop"),
        );
    }

    /// The workload's `result` as the stop makes it: a session that ended after the stop was
    /// cut (`delivered`, saying how it ended), one that ran to its end was drained.
    pub(super) fn drained_or_cut(&self, result: Result<String, Fail>) -> Result<String, Fail> {
        let Some(at) = self.stopped_at else {
            return result;
        };
        let after = |now: Duration| ms(now.saturating_sub(at));
        match result {
            Ok(detail) => Ok(format!(
                "drained: {detail}, the last {} after the proxy was told to stop",
                after(self.net.now())
            )),
            Err(f) if matches!(f.outcome, Outcome::Dropped | Outcome::IdleClosed) => {
                let n = self.report.received;
                let m = self.plan.workload.messages;
                Ok(format!(
                    "cut: {n}/{m} echoed, then the connection ended {} after the proxy was told to stop ({})",
                    after(self.net.now()),
                    f.detail
                ))
            }
            Err(f) => Err(f),
        }
    }
}
