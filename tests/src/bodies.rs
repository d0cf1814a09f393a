//! Request bodies that misbehave on purpose: one that stalls after its data (so a test can kill
//! the server mid-request), one that breaks off (a client that gives up mid-upload).

use tokio::sync::oneshot;

/// The pieces (1 MiB each) a body is sent in.
fn pieces(data: Vec<u8>) -> std::vec::IntoIter<Vec<u8>> {
    data.chunks(1024 * 1024)
        .map(<[u8]>::to_vec)
        .collect::<Vec<_>>()
        .into_iter()
}

/// Yields `data`, tells `sent` when all of it was handed to the connection, then never ends.
pub fn stalling_body(data: Vec<u8>, sent: oneshot::Sender<()>) -> reqwest::Body {
    let stream = futures_util::stream::unfold(
        (pieces(data), Some(sent)),
        |(mut rest, mut sent)| async move {
            match rest.next() {
                Some(piece) => Some((Ok::<_, std::io::Error>(piece), (rest, sent))),
                None => {
                    if let Some(sent) = sent.take() {
                        let _ = sent.send(());
                    }
                    futures_util::future::pending::<()>().await;
                    None
                }
            }
        },
    );
    reqwest::Body::wrap_stream(stream)
}

/// Yields `data`, then fails: the client aborts the request mid-body.
pub fn broken_body(data: Vec<u8>) -> reqwest::Body {
    let stream = futures_util::stream::unfold(Some(pieces(data)), |state| async move {
        let mut rest = state?;
        match rest.next() {
            Some(piece) => Some((Ok(piece), Some(rest))),
            None => Some((Err(std::io::Error::other("the client gives up")), None)),
        }
    });
    reqwest::Body::wrap_stream(stream)
}
