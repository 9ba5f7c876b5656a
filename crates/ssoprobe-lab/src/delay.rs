//! A simulated network round-trip time in front of the lab's listener (`--rtt`).
//!
//! The lab runs on loopback, where a round trip costs microseconds and the kernel has
//! no netem to slow it down, so the delay is made in user space: each accepted
//! connection is served through a pair of delay lines, one per direction, between
//! the socket and the TLS server.
//!
//! # The model
//!
//! With `d = RTT/2` and `t0` the moment the connection was accepted:
//!
//! * **client → server**: bytes read from the socket at `t` reach the server at
//!   `max(t, t0 + RTT) + d`;
//! * **server → client**: bytes the server writes at `t` reach the socket at
//!   `max(t, t0 + 1.5 RTT) + d`.
//!
//! `d` per direction is the propagation delay. The `max` terms stand for TCP's
//! three-way handshake, which the kernel completes at once on loopback and user
//! space cannot slow down: on a real path the client learns that it is connected
//! only when the SYN-ACK is back, one RTT after its SYN, so nothing it sends leaves
//! before `t0 + RTT`; and the server accepts only when the final ACK arrives, 1.5 RTT
//! after the SYN, so nothing it sends leaves before that. For a client that speaks
//! first (TLS), the first request on a fresh connection therefore gets its answer
//! after exactly 3 RTT (TCP 1 + TLS 1.3 1 + the request 1), each later request on
//! the same connection after 1 RTT, as on a real path of that RTT with no loss and
//! unlimited bandwidth. (Holding only the server's first write until `t0 + RTT`
//! would make the first answer arrive after 2.5 RTT: half a round trip short.)
//!
//! It is a delay line, not stop-and-wait: every chunk is stamped with its due time as
//! it is read and delivered at that time, whatever is still in flight, so chunks
//! sent back to back arrive back to back, `d` later. Each direction queues at most
//! [`QUEUE_CHUNKS`] chunks of at most [`CHUNK`] bytes; past that, reading stops and
//! the sender feels TCP's (or the duplex's) back-pressure, so a connection holds a
//! bounded amount of memory whatever its peer does.

use std::future::Future;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// The largest chunk read at once (a TLS record is at most 16 KiB plus overhead).
pub(crate) const CHUNK: usize = 16 * 1024;
/// How many chunks may be in flight in one direction: at most 256 KiB queued.
pub(crate) const QUEUE_CHUNKS: usize = 16;
/// The in-process pipe between the delay lines and the server.
pub(crate) const PIPE_BUFFER: usize = 64 * 1024;

/// Serves `stream`, accepted at `accepted`, through delay lines that model a network
/// path of round-trip time `rtt` (see the module documentation): `serve` gets the
/// server's end of an in-process pipe. Returns when the server has finished and its
/// last bytes have been delivered (or the client has gone away); dropping the
/// future tears everything down.
pub(crate) async fn serve<S, F, Fut>(stream: S, rtt: Duration, accepted: Instant, serve: F)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
    F: FnOnce(DuplexStream) -> Fut,
    Fut: Future<Output = ()>,
{
    let half = rtt / 2;
    let (server_end, lines_end) = tokio::io::duplex(PIPE_BUFFER);
    let (from_client, to_client) = tokio::io::split(stream);
    let (from_server, to_server) = tokio::io::split(lines_end);
    // The client can send only once it has the SYN-ACK; the server only once it has
    // the final ACK.
    let upstream = line(from_client, to_server, half, accepted + rtt);
    let downstream = line(from_server, to_client, half, accepted + rtt + half);
    // The connection ends with the server and what it wrote; the client's direction
    // alone never ends it (a client that has sent everything still waits for the
    // answer).
    let upstream = async {
        upstream.await;
        std::future::pending::<()>().await
    };
    tokio::select! {
        _ = async { tokio::join!(serve(server_end), downstream) } => {}
        () = upstream => {}
    }
}

/// One direction: bytes from `src` reach `dst` `delay` after they were read, or
/// after `not_before`, whichever is later, in order; `src`'s end of stream reaches
/// `dst` as a shutdown, delayed the same way. Returns when `dst` has been shut down
/// or can take no more.
async fn line<R, W>(mut src: R, mut dst: W, delay: Duration, not_before: Instant)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    // An empty chunk stands for the end of the stream.
    let (tx, mut rx) = mpsc::channel::<(Instant, Vec<u8>)>(QUEUE_CHUNKS);
    let reader = async move {
        let mut buf = vec![0u8; CHUNK];
        loop {
            // A reset connection ends like a closed one.
            let n = src.read(&mut buf).await.unwrap_or(0);
            let due = Instant::now().max(not_before) + delay;
            let chunk = buf.get(..n).map(<[u8]>::to_vec).unwrap_or_default();
            if tx.send((due, chunk)).await.is_err() || n == 0 {
                return;
            }
        }
    };
    let writer = async move {
        while let Some((due, chunk)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if chunk.is_empty() {
                break;
            }
            if dst.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = dst.shutdown().await;
    };
    // The reader stops on its own at the end of the stream; the writer's end is the
    // line's end (dropping the reader then closes `src`).
    let reader = async {
        reader.await;
        std::future::pending::<()>().await
    };
    tokio::select! {
        () = writer => {}
        () = reader => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::DuplexStream;

    const RTT: Duration = Duration::from_millis(20);

    /// A client connected to `server` through the delay lines, accepted now.
    fn connect<F, Fut>(server: F) -> DuplexStream
    where
        F: FnOnce(DuplexStream) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let (client, socket) = tokio::io::duplex(PIPE_BUFFER);
        let accepted = Instant::now();
        tokio::spawn(serve(socket, RTT, accepted, server));
        client
    }

    /// Answers every chunk it reads with the same bytes, until the end of stream.
    async fn echo(mut io: DuplexStream) {
        let mut buf = vec![0u8; 4096];
        while let Ok(n) = io.read(&mut buf).await {
            if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    }

    /// Reads exactly `n` bytes.
    async fn read_n(io: &mut DuplexStream, n: usize) -> Vec<u8> {
        let mut buf = vec![0u8; n];
        io.read_exact(&mut buf).await.expect("the bytes arrive");
        buf
    }

    #[tokio::test(start_paused = true)]
    async fn a_fresh_connection_costs_the_handshake_then_one_rtt_per_request() {
        let mut client = connect(echo);
        let start = Instant::now();
        client.write_all(b"GET / 1").await.expect("written");
        assert_eq!(read_n(&mut client, 7).await, b"GET / 1");
        // TCP's round trip, then the request's: the TLS handshake is one more of these.
        assert_eq!(start.elapsed(), 2 * RTT);
        let again = Instant::now();
        client.write_all(b"GET / 2").await.expect("written");
        assert_eq!(read_n(&mut client, 7).await, b"GET / 2");
        assert_eq!(again.elapsed(), RTT);
    }

    #[tokio::test(start_paused = true)]
    async fn the_server_hears_the_first_bytes_after_the_handshake_and_half_a_trip() {
        let accepted = Instant::now();
        let mut client = connect(move |mut io: DuplexStream| async move {
            let mut buf = [0u8; 16];
            let _ = io.read(&mut buf).await;
            // When the server got them, in ms after the accept.
            let heard = accepted.elapsed().as_millis().to_string();
            let _ = io.write_all(heard.as_bytes()).await;
        });
        client.write_all(b"hello").await.expect("written");
        let mut heard = String::new();
        client.read_to_string(&mut heard).await.expect("an answer");
        // SYN-ACK back at 1 RTT, the first bytes in half a round trip later.
        assert_eq!(heard, (RTT + RTT / 2).as_millis().to_string());
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_waits_pays_no_handshake_twice() {
        let mut client = connect(echo);
        // Connected long ago: the handshake is over, only the request's round trip
        // is left.
        tokio::time::sleep(10 * RTT).await;
        let start = Instant::now();
        client.write_all(b"ping").await.expect("written");
        assert_eq!(read_n(&mut client, 4).await, b"ping");
        assert_eq!(start.elapsed(), RTT);
    }

    #[tokio::test(start_paused = true)]
    async fn a_server_that_speaks_first_is_heard_after_two_rtt() {
        let mut client = connect(|mut io: DuplexStream| async move {
            let _ = io.write_all(b"220 hello").await;
            let _ = io.shutdown().await;
        });
        let start = Instant::now();
        assert_eq!(read_n(&mut client, 9).await, b"220 hello");
        assert_eq!(start.elapsed(), 2 * RTT);
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).await.expect("the end");
        assert!(rest.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn chunks_keep_their_order_and_spacing() {
        let mut client = connect(echo);
        tokio::time::sleep(RTT).await;
        // 200 writes of different sizes, 1 ms apart: a delay line delivers the last
        // one RTT after it was sent, not after 200 round trips.
        let mut sent = Vec::new();
        let start = Instant::now();
        for i in 0..200usize {
            if i > 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            let chunk: Vec<u8> = (0..(i % 37) + 1).map(|j| (i * 31 + j) as u8).collect();
            sent.extend_from_slice(&chunk);
            client.write_all(&chunk).await.expect("written");
        }
        let received = read_n(&mut client, sent.len()).await;
        assert_eq!(received, sent);
        // The last write left at 199 ms and came back one RTT later.
        assert_eq!(start.elapsed(), Duration::from_millis(199) + RTT);
    }

    #[tokio::test(start_paused = true)]
    async fn the_end_of_stream_travels_after_the_data() {
        let mut client = connect(|mut io: DuplexStream| async move {
            let mut all = Vec::new();
            let _ = io.read_to_end(&mut all).await;
            let _ = io.write_all(&all).await;
        });
        client.write_all(b"abc").await.expect("written");
        client.write_all(b"def").await.expect("written");
        client.shutdown().await.expect("shut down");
        let mut back = Vec::new();
        client
            .read_to_end(&mut back)
            .await
            .expect("the answer and its end");
        assert_eq!(back, b"abcdef");
    }

    #[tokio::test(start_paused = true)]
    async fn a_server_that_does_not_read_holds_a_bounded_queue() {
        let written = Arc::new(AtomicUsize::new(0));
        let mut client = connect(|io: DuplexStream| async move {
            // Holds the connection open and never reads.
            let _io = io;
            std::future::pending::<()>().await
        });
        let counter = Arc::clone(&written);
        let flood = async move {
            let chunk = vec![7u8; CHUNK];
            loop {
                let n = client.write(&chunk).await.expect("written");
                counter.fetch_add(n, Ordering::Relaxed);
            }
        };
        let stalled = tokio::time::timeout(Duration::from_secs(10), flood).await;
        assert!(stalled.is_err(), "the writes block once the queue is full");
        let bound = 3 * PIPE_BUFFER + (QUEUE_CHUNKS + 1) * CHUNK;
        let n = written.load(Ordering::Relaxed);
        assert!(n > 0 && n <= bound, "{n} bytes accepted, bound {bound}");
    }
}
