//! The client's own reset (`client-reset`): after the last message the client resets its
//! connection (no Close, and for wss no close_notify), then opens a second session to ask
//! the server whether its side of the first ended ([`crate::endpoints::census`]): `stalled`
//! when the server still holds it, a connection to nobody that the reset never reached.

use std::sync::{Arc, Mutex};

use futures_util::StreamExt;
use gauntlet_proxies::http::base64;
use gauntlet_proxies::rng::Rng;
use tokio_tungstenite::tungstenite::Message;

use super::WHO;
use super::handshake::{Ws, open};
use super::session::Session;
use crate::endpoints::census;
use crate::endpoints::connect::{Fail, Phase, fail, ms};
use crate::scenario::{RequestShape, Scheme};
use crate::verdict::outcome::Outcome;

/// The ID the server counts a resetting client's connection under: 16 hex digits from the
/// seed and the scheme. Two runs with one seed and scheme through one server at once
/// (`gauntlet serve`) would share it.
pub(super) fn watch_id(seed: u64, scheme: Scheme) -> String {
    let salt = match scheme {
        Scheme::Ws => 0x0077_6174_6368,
        Scheme::Wss => 0x0077_6174_6373,
    };
    let mut bytes = [0u8; 8];
    Rng::derive(seed, salt).fill(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Session<'_> {
    /// Resets the connection, then asks the server, within the reply timeout, whether its
    /// side ended: `Ok` with the census's answer when it did.
    pub(super) async fn reset_and_ask(&mut self, ws: &mut Ws) -> Result<String, Fail> {
        let reset = ws.get_ref().reset.as_ref().is_some_and(|r| r.reset());
        let what = if reset {
            "reset the connection"
        } else {
            "found the connection gone at its reset"
        };
        self.t.log(self.net.now(), WHO, what);
        let wait = self.plan.workload.reply_timeout.min(census::MAX_WAIT);
        let id = watch_id(self.plan.seed, self.plan.scheme);
        // A plain request: the census answers no subprotocol and nothing the shape asks.
        let mut plan = self.plan.clone();
        plan.request = RequestShape::default();
        plan.subprotocols.clear();
        plan.workload.client_reset = false;
        let path = format!(
            "{}{}?{}={id}&{}={}",
            plan.path_prefix,
            census::PATH,
            census::WATCH_PARAM,
            census::WAIT_PARAM,
            wait.as_millis()
        );
        let mut key = [0u8; 16];
        Rng::derive(plan.seed, 0x6365_6e73).fill(&mut key);
        let phase = Phase::new(self.net.now());
        let last = Arc::new(Mutex::new(Vec::new()));
        let asked = self.net.now();
        // The census answers within `wait`; the handshake and the answer's way back get as
        // long again.
        let deadline = asked.saturating_add(wait.saturating_mul(2));
        let answer = tokio::select! {
            biased;
            a = async {
                let mut asking = open(self.net, &plan, &path, &base64(&key), self.t, &phase, last).await?;
                let answer = read_answer(&mut asking).await;
                // The server closes after its answer; the close handshake's end is not waited for.
                let _ = asking.close(None).await;
                answer
            } => a,
            () = self.net.sleep_until(deadline) => Err(fail(
                Outcome::Stalled,
                format!("no census answer within {}", ms(deadline - asked)),
            )),
        };
        let answer = answer.map_err(|f| Fail {
            detail: format!(
                "after the client's reset, asking the server whether its side ended: {}",
                f.detail
            ),
            ..f
        })?;
        let Some((open, waited)) = census::read_answer(&answer) else {
            return Err(fail(
                Outcome::Corrupted,
                format!("the census answered `{answer}`, not `open N after T ms`"),
            ));
        };
        self.t.log(self.net.now(), WHO, format!("census: {answer}"));
        if open > 0 {
            return Err(fail(
                Outcome::Stalled,
                format!(
                    "the server still held its side {waited} ms after the client reset its connection: the reset never reached it, at {}",
                    ms(self.net.now())
                ),
            ));
        }
        Ok(format!(
            "reset by the client, the server's side ended within {waited} ms"
        ))
    }
}

/// The census's one text message, skipping pings and pongs.
async fn read_answer(ws: &mut Ws) -> Result<String, Fail> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => return Ok(text.to_string()),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(other)) => {
                return Err(fail(
                    Outcome::Corrupted,
                    format!("the census answered with {other:?}, not a text message"),
                ));
            }
            Some(Err(e)) => {
                return Err(fail(
                    Outcome::Dropped,
                    format!("the census session broke: {e}"),
                ));
            }
            None => {
                return Err(fail(
                    Outcome::Dropped,
                    "the census session ended before its answer".to_string(),
                ));
            }
        }
    }
}
