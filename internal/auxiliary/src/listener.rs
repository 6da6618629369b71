//! The data port: length-delimited frames over TCP, the first of which must carry the shared
//! token. It runs on a data thread of its own (a single-threaded runtime,
//! [`spawn_data_thread`]): cheap requests are answered inline in arrival order, and the
//! answers to everything one read brought in leave in one write; slow ones are answered when
//! their task ends (see [`crate::server`]).

use crate::server::{DataServer, Handled};
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use std::sync::Arc;
use std::time::Duration;
use tiercache_protocol::{
    decode, encode, encode_frame_into, inplace, RemoteError, Request, Response, PROTOCOL_VERSION,
};
use tiercache_wire::codec;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_util::codec::Framed;

/// Starts the data thread: [`serve_data`] on a single-threaded runtime of its own, until
/// `shutdown` turns true; the connections open then are served until `gone` closes (the
/// auxiliary is dropped) or the process ends.
pub fn spawn_data_thread(
    listener: TcpListener,
    server: Arc<DataServer>,
    shutdown: watch::Receiver<bool>,
    mut gone: watch::Receiver<()>,
) -> std::io::Result<()> {
    let listener = listener.into_std()?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    std::thread::Builder::new().name("tiercache-data".into()).spawn(move || {
        rt.block_on(async move {
            match TcpListener::from_std(listener) {
                Ok(listener) => serve_data(listener, server, shutdown).await,
                Err(e) => tracing::error!(error = %e, "data listener unusable"),
            }
            let _ = gone.changed().await;
        });
    })?;
    Ok(())
}

/// Accepts data connections until `shutdown` turns true.
pub async fn serve_data(listener: TcpListener, server: Arc<DataServer>, mut shutdown: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, peer)) => {
                    let s = server.clone();
                    tokio::spawn(async move {
                        if let Err(e) = connection(stream, s).await {
                            tracing::debug!(%peer, error = %e, "data connection closed");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = tiercache_wire::stopped(&mut shutdown) => break,
        }
    }
}

/// Answers are written once everything received has been answered, or once this many bytes
/// of them wait.
const FLUSH_AT: usize = 64 * 1024;

async fn connection(stream: TcpStream, server: Arc<DataServer>) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut framed = Framed::new(stream, codec());
    // Authenticate first: an unauthenticated peer gets nothing and changes nothing.
    let first = match tokio::time::timeout(Duration::from_secs(5), framed.next()).await {
        Ok(Some(f)) => f?,
        _ => return Ok(()),
    };
    let token_ok = |t: &str| tiercache_protocol::same_secret(t, &server.token);
    // (id, the peer's protocol version when its token is right).
    let (id, protocol) = match decode::<Request>(&first) {
        Ok((id, Request::Hello { token, protocol })) => (id, token_ok(&token).then_some(protocol)),
        Ok((id, Request::HelloV1 { token })) => (id, token_ok(&token).then_some(1)),
        Ok((id, _)) => (id, None),
        Err(_) => return Ok(()),
    };
    let answer = match protocol {
        Some(PROTOCOL_VERSION) => Response::Welcome,
        Some(theirs) => {
            let e = RemoteError::ProtocolMismatch { theirs, ours: PROTOCOL_VERSION };
            tracing::error!(peer = ?framed.get_ref().peer_addr().ok(), "data connection refused: {e}");
            Response::Error(e)
        }
        None => {
            tracing::warn!("data connection refused: bad or missing internal token");
            Response::Error(RemoteError::Unauthorized)
        }
    };
    let welcome = answer == Response::Welcome;
    let sent = framed.send(Bytes::from(encode(id, &answer).map_err(std::io::Error::other)?)).await;
    if !welcome {
        return Ok(());
    }
    sent?;
    let (slow_tx, mut slow_rx) = mpsc::channel::<Bytes>(64);
    loop {
        tokio::select! {
            frame = framed.next() => {
                let Some(frame) = frame else { return Ok(()) };
                let frame = frame?;
                // GET and SET, the common requests, are read in place (no copy of the key or
                // the value), and a GET's answer is encoded from the store's bytes.
                let handled = if let Some((id, key)) = inplace::peek_get(&frame) {
                    let out = framed.write_buffer_mut();
                    if let Err(e) = server.answer_get_into(id, key, out) {
                        encode_frame_into(id, &Response::Error(RemoteError::BadFrame(e.to_string())), out)
                            .map_err(std::io::Error::other)?;
                    }
                    None
                } else if let Some((id, put)) = inplace::peek_put(&frame) {
                    Some((id, server.handle_put(&put)))
                } else {
                    match decode::<Request>(&frame) {
                        Ok((id, req)) => match server.handle(&req) {
                            Handled::Slow => {
                                let (tx, slow) = (slow_tx.clone(), server.clone().handle_slow(req));
                                server.ops.rt.spawn(async move {
                                    if let Ok(out) = encode(id, &slow.await) {
                                        let _ = tx.send(Bytes::from(out)).await;
                                    }
                                });
                                None
                            }
                            handled => Some((id, handled)),
                        },
                        Err(e) => Some((0, Handled::Answer(Response::Error(RemoteError::BadFrame(e.to_string()))))),
                    }
                };
                match handled {
                    Some((_, Handled::Refused)) => {
                        return Err(std::io::Error::other("writes closed: this auxiliary is leaving"))
                    }
                    Some((id, Handled::Answer(resp))) => {
                        encode_frame_into(id, &resp, framed.write_buffer_mut()).map_err(std::io::Error::other)?
                    }
                    Some((_, Handled::Slow)) | None => {}
                }
                // Pipelining: everything already received is answered before one write.
                if framed.read_buffer().is_empty() || framed.write_buffer().len() >= FLUSH_AT {
                    SinkExt::<Bytes>::flush(&mut framed).await?;
                }
            }
            Some(out) = slow_rx.recv() => framed.send(out).await?,
        }
    }
}
