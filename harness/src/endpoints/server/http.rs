//! One connection's HTTP/1.1, served by hyper with upgrades, and the answer to each request:
//! the victim's script, a refusal, or a 101 whose upgraded connection runs an [`App`].

use std::cell::Cell;
use std::convert::Infallible;
use std::rc::Rc;
use std::time::Duration;

use futures_util::FutureExt;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::HeaderValue;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

use super::app::App;
use super::handshake::{Refusal, header_text, refusal, subprotocol};
use crate::endpoints::smuggle;
use crate::engine::{Held, NetRef};
use crate::verdict::transcript::Transcript;
use crate::ws_config;

pub(super) async fn serve_http<S>(
    net: NetRef,
    io: S,
    transcript: Transcript,
    held: Rc<Held>,
    last_head: Option<Rc<Cell<Duration>>>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (n, t) = (net.clone(), transcript.clone());
    let service = service_fn(move |req| {
        if let Some(last_head) = &last_head {
            last_head.set(n.now());
        }
        let (n, t, held) = (n.clone(), t.clone(), held.clone());
        async move { Ok::<_, Infallible>(respond(n, t, req, held)) }
    });
    let result = http1::Builder::new()
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades()
        .await;
    if let Err(e) = result {
        transcript.log(net.now(), net.host(), format!("http connection error: {e}"));
    }
}

fn text_response(
    status: StatusCode,
    body: &str,
    extra: &[(&'static str, &str)],
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert("content-type", HeaderValue::from_static("text/plain"));
    for (name, value) in extra {
        if let Ok(v) = HeaderValue::from_str(value) {
            headers.insert(*name, v);
        }
    }
    response
}

/// The answer to `req`; an upgraded connection's session holds `held` until it ends.
fn respond(
    net: NetRef,
    transcript: Transcript,
    mut req: Request<Incoming>,
    held: Rc<Held>,
) -> Response<Full<Bytes>> {
    let headers = req.headers();
    let line = format!(
        "request {} {} {:?}, Upgrade: {}, Connection: {}",
        req.method(),
        req.uri(),
        req.version(),
        header_text(headers, "upgrade"),
        header_text(headers, "connection"),
    );
    let response = if !headers.contains_key("upgrade")
        && req.method() == hyper::Method::GET
        && req.uri().path() == smuggle::VICTIM_PATH
    {
        text_response(
            StatusCode::OK,
            smuggle::ORIGIN_BODY,
            &[
                ("content-type", "application/javascript"),
                ("cache-control", smuggle::ORIGIN_CACHE_CONTROL),
            ],
        )
    } else if let Some(Refusal(status, body, extra)) = refusal(&req) {
        text_response(status, body, extra)
    } else {
        let key = headers
            .get("sec-websocket-key")
            .map(HeaderValue::as_bytes)
            .unwrap_or_default();
        let accept = derive_accept_key(key);
        let app = App::from_uri(req.uri());
        let protocol = subprotocol(headers);
        let upgrade = hyper::upgrade::on(&mut req);
        let (n, t) = (net.clone(), transcript.clone());
        net.spawn(
            async move {
                let _held = held;
                match upgrade.await {
                    Ok(upgraded) if app == App::Attacker => {
                        smuggle::attacker_endpoint(n, TokioIo::new(upgraded), t).await;
                    }
                    Ok(upgraded) => {
                        let ws = WebSocketStream::from_raw_socket(
                            TokioIo::new(upgraded),
                            Role::Server,
                            Some(ws_config()),
                        )
                        .await;
                        app.run(n, ws, t).await;
                    }
                    Err(e) => t.log(n.now(), n.host(), format!("upgrade failed: {e}")),
                }
            }
            .boxed_local(),
        );
        let mut response = Response::new(Full::new(Bytes::new()));
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let h = response.headers_mut();
        h.insert("upgrade", HeaderValue::from_static("websocket"));
        h.insert("connection", HeaderValue::from_static("Upgrade"));
        if let Ok(v) = HeaderValue::from_str(&accept) {
            h.insert("sec-websocket-accept", v);
        }
        if let Some((value, offered)) = protocol {
            h.insert("sec-websocket-protocol", value);
            transcript.log(net.now(), net.host(), offered);
        }
        response
    };
    transcript.log(
        net.now(),
        net.host(),
        format!("{line} -> {}", response.status()),
    );
    response
}
