//! One client connection. A reader task reads length-prefixed frames; the connection task
//! handles them one at a time in arrival order and writes the responses in request order.
//! Handling a produce request appends its records at once but its response may wait for an
//! fsync (sync flush policy): up to [`MAX_PENDING`] such responses wait in a queue while the next
//! requests are handled, so a pipelining producer's requests share group-commit rounds instead
//! of paying one fsync each.
//!
//! Memory follows what is in flight: an idle connection holds no buffer at all (it waits for
//! readability before reserving one), a request buffer grows with the bytes really received and
//! a response buffer is released after each flush — so a reconnect storm leaves nothing behind.
use crate::apis::{self, ConnectionState, LaterReply, Reply};
use crate::codec::CodecError;
use crate::frame::{Frame, Part};
use crate::sendfile;
use crate::server::Context;
use bytes::{Buf, Bytes, BytesMut};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// Responses waiting for durability, per connection (Kafka clients pipeline up to 5 requests).
const MAX_PENDING: usize = 8;

/// Responses are gathered up to this size before a write; larger pieces go out directly.
const WRITE_BUFFER: usize = 64 * 1024;

/// A request is read in steps of at most this much (bounds what a slow sender pins).
const READ_CHUNK: usize = 256 * 1024;

/// The smallest read buffer reserved once bytes are waiting (most requests fit).
const READ_MIN: usize = 8 * 1024;

pub struct Connection {
    reader: Option<FrameReader>,
    writer: ResponseWriter,
    peer: SocketAddr,
    context: Arc<Context>,
    state: ConnectionState,
}

/// Gathers response bytes and writes them; the buffer exists only between flushes.
struct ResponseWriter {
    socket: OwnedWriteHalf,
    buffer: Vec<u8>,
}

/// Reads request frames; runs as its own task so that reading never races a response.
struct FrameReader {
    socket: OwnedReadHalf,
    /// Bytes received but not yet handed out as a frame; unallocated while the client is idle.
    buffer: BytesMut,
    context: Arc<Context>,
}

/// Why a connection ends.
#[derive(Debug, thiserror::Error)]
enum Close {
    #[error("client closed the connection")]
    Eof,
    #[error("idle for longer than connections.max.idle.ms")]
    Idle,
    #[error("broker is shutting down")]
    Shutdown,
    #[error("request size {0} is negative or larger than socket.request.max.bytes ({1})")]
    BadSize(i32, usize),
    #[error("{0}")]
    Codec(#[from] CodecError),
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

impl Connection {
    pub fn new(socket: TcpStream, peer: SocketAddr, context: Arc<Context>) -> Connection {
        let (read, write) = socket.into_split();
        let reader = FrameReader {
            socket: read,
            buffer: BytesMut::new(),
            context: context.clone(),
        };
        Connection {
            reader: Some(reader),
            writer: ResponseWriter {
                socket: write,
                buffer: Vec::new(),
            },
            peer,
            context,
            state: ConnectionState::new(peer),
        }
    }

    pub async fn run(mut self) {
        tracing::debug!(peer = %self.peer, "connection opened");
        metrics::gauge!("fjord_connections_active").increment(1.0);
        metrics::counter!("fjord_connections_total").increment(1);
        let outcome = self.serve().await;
        metrics::gauge!("fjord_connections_active").decrement(1.0);
        match outcome {
            Err(Close::Eof | Close::Shutdown) => {
                tracing::debug!(peer = %self.peer, "connection closed")
            }
            Err(Close::Io(e)) => tracing::debug!(peer = %self.peer, error = %e, "connection lost"),
            Err(reason) => {
                metrics::counter!("fjord_connections_refused_requests_total").increment(1);
                tracing::warn!(peer = %self.peer, %reason, "closing connection")
            }
            Ok(()) => {}
        }
        let _ = self.writer.socket.shutdown().await;
        let sessions = self.state.take_share_sessions();
        if !sessions.is_empty() {
            self.context
                .broker
                .share_connection_closed(self.state.id, &sessions)
                .await;
        }
    }

    async fn serve(&mut self) -> Result<(), Close> {
        let Some(reader) = self.reader.take() else {
            return Ok(());
        };
        // A small channel: the reader stays at most a few requests ahead (back-pressure).
        let (frames, mut incoming) = mpsc::channel(4);
        let reading = tokio::spawn(reader.run(frames));
        let result = self.handle_frames(&mut incoming).await;
        reading.abort();
        result
    }

    async fn handle_frames(
        &mut self,
        incoming: &mut mpsc::Receiver<Result<Bytes, Close>>,
    ) -> Result<(), Close> {
        let mut pending: VecDeque<LaterReply> = VecDeque::new();
        loop {
            tokio::select! {
                // The oldest waiting response first: responses leave in request order.
                response = oldest(&mut pending), if !pending.is_empty() => {
                    pending.pop_front();
                    self.write(response?).await?;
                }
                frame = incoming.recv(), if pending.len() < MAX_PENDING => {
                    let frame = match frame {
                        Some(Ok(frame)) => frame,
                        // The client went away or broke the protocol: answer what was already
                        // accepted (those records are in the log), then close.
                        Some(Err(close)) => return self.drain(pending, Err(close)).await,
                        None => return self.drain(pending, Ok(())).await,
                    };
                    // Boxed: the handler's state lives only while a request is handled, instead
                    // of sizing every (mostly idle) connection task for the largest handler.
                    match Box::pin(apis::dispatch(&self.context, &self.state, frame)).await {
                        Ok(Reply::Now(response)) if pending.is_empty() => self.write(response).await?,
                        Ok(Reply::Now(response)) => pending.push_back(Box::pin(async move { Ok(response) })),
                        Ok(Reply::Later(reply)) => pending.push_back(reply),
                        Err(e) => return self.drain(pending, Err(e.into())).await,
                    }
                }
            }
            // Flush only when nothing else is ready to go out, so pipelined responses share
            // a write.
            if pending.is_empty() && incoming.is_empty() {
                self.writer.flush().await?;
            }
        }
    }

    /// Queues a response in the write buffer; file ranges go out with sendfile after what is
    /// buffered before them.
    async fn write(&mut self, response: Option<Frame>) -> Result<(), Close> {
        let Some(response) = response else {
            return Ok(());
        };
        for part in response.into_parts() {
            match part {
                Part::Bytes(bytes) => self.writer.write(&bytes).await?,
                Part::File(slice) => {
                    self.writer.flush().await?;
                    sendfile::send_file(self.writer.socket.as_ref(), &slice).await?;
                }
            }
        }
        Ok(())
    }

    /// Writes the responses still owed, then ends with `end`.
    async fn drain(
        &mut self,
        pending: VecDeque<LaterReply>,
        end: Result<(), Close>,
    ) -> Result<(), Close> {
        for reply in pending {
            self.write(reply.await?).await?;
        }
        self.writer.flush().await?;
        end
    }
}

/// The oldest queued response (cancel-safe: the future stays in the queue).
async fn oldest(pending: &mut VecDeque<LaterReply>) -> Result<Option<Frame>, CodecError> {
    match pending.front_mut() {
        Some(reply) => reply.as_mut().await,
        None => std::future::pending().await,
    }
}

impl ResponseWriter {
    async fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if self.buffer.len() + bytes.len() > WRITE_BUFFER {
            self.flush().await?;
        }
        if bytes.len() >= WRITE_BUFFER {
            return self.socket.write_all(bytes).await;
        }
        self.buffer.extend_from_slice(bytes);
        Ok(())
    }

    /// Writes what is gathered and releases the buffer.
    async fn flush(&mut self) -> std::io::Result<()> {
        if !self.buffer.is_empty() {
            let buffer = std::mem::take(&mut self.buffer);
            self.socket.write_all(&buffer).await?;
        }
        Ok(())
    }
}

impl FrameReader {
    async fn run(mut self, frames: mpsc::Sender<Result<Bytes, Close>>) {
        loop {
            let frame = self.read_frame().await;
            let stop = frame.is_err();
            if frames.send(frame).await.is_err() || stop {
                return;
            }
        }
    }

    /// Reads one request frame; checks the length prefix before allocating for the body.
    async fn read_frame(&mut self) -> Result<Bytes, Close> {
        let mut shutdown = self.context.shutdown.clone();
        let idle = self.context.options.idle_timeout;
        tokio::select! {
            read = tokio::time::timeout(idle, self.fill(4)) => match read {
                Err(_) => return Err(Close::Idle),
                Ok(result) => result?,
            },
            _ = crate::server::stopped(&mut shutdown) => return Err(Close::Shutdown),
        }
        let size = i32::from_be_bytes(self.buffer[..4].try_into().expect("4 bytes"));
        let limit = self.context.options.max_request_bytes;
        if size < 0 || size as usize > limit {
            return Err(Close::BadSize(size, limit));
        }
        let total = 4 + size as usize;
        match tokio::time::timeout(idle, self.fill(total)).await {
            Err(_) => return Err(Close::Idle),
            Ok(result) => result?,
        }
        let mut frame = self.buffer.split_to(total);
        frame.advance(4);
        if self.buffer.is_empty() {
            // Drop the (now shared) allocation: the frame keeps what it needs.
            self.buffer = BytesMut::new();
        }
        Ok(frame.freeze())
    }

    /// Reads until the buffer holds at least `want` bytes. The buffer is reserved only once the
    /// socket is readable, and grows with the bytes actually received: memory follows what the
    /// client really sent, not what its length prefix claims.
    async fn fill(&mut self, want: usize) -> Result<(), Close> {
        while self.buffer.len() < want {
            self.socket.readable().await?;
            let missing = want - self.buffer.len();
            self.buffer.reserve(missing.clamp(READ_MIN, READ_CHUNK));
            match self.socket.try_read_buf(&mut self.buffer) {
                Ok(0) if self.buffer.is_empty() => return Err(Close::Eof),
                Ok(0) => {
                    return Err(Close::Io(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "connection closed inside a request",
                    )))
                }
                Ok(_) => {}
                // Readiness was stale (tokio clears it only when a read would block): give the
                // buffer back while nothing is waiting, or every idle connection would keep one.
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if self.buffer.is_empty() {
                        self.buffer = BytesMut::new();
                    }
                }
                Err(e) => return Err(Close::Io(e)),
            }
        }
        Ok(())
    }
}
