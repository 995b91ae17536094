//! One client connection: reads length-prefixed frames, handles them one at a time in arrival
//! order (as Kafka does, so responses go out in request order), writes the responses.
use crate::apis;
use crate::codec::CodecError;
use crate::server::Context;
use bytes::{Bytes, BytesMut};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

pub struct Connection {
    reader: BufReader<OwnedReadHalf>,
    writer: BufWriter<OwnedWriteHalf>,
    peer: SocketAddr,
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
        Connection {
            reader: BufReader::with_capacity(64 * 1024, read),
            writer: BufWriter::with_capacity(64 * 1024, write),
            peer,
            context,
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
        let _ = self.writer.shutdown().await;
    }

    async fn serve(&mut self) -> Result<(), Close> {
        loop {
            let frame = self.read_frame().await?;
            if let Some(response) = apis::dispatch(&self.context, self.peer, frame).await? {
                self.writer.write_all(&response).await?;
            }
            // Flush only when no further request is already buffered, so pipelined requests
            // get their responses written in one go.
            if self.reader.buffer().is_empty() {
                self.writer.flush().await?;
            }
        }
    }

    /// Reads one request frame; checks the length prefix before allocating anything.
    async fn read_frame(&mut self) -> Result<Bytes, Close> {
        let mut shutdown = self.context.shutdown.clone();
        let idle = self.context.options.idle_timeout;
        let mut prefix = [0u8; 4];
        tokio::select! {
            read = tokio::time::timeout(idle, self.reader.read_exact(&mut prefix)) => match read {
                Err(_) => return Err(Close::Idle),
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(Close::Eof),
                Ok(Err(e)) => return Err(Close::Io(e)),
                Ok(Ok(_)) => {}
            },
            _ = crate::server::stopped(&mut shutdown) => return Err(Close::Shutdown),
        }
        let size = i32::from_be_bytes(prefix);
        let limit = self.context.options.max_request_bytes;
        if size < 0 || size as usize > limit {
            return Err(Close::BadSize(size, limit));
        }
        let read_body = self.read_body(size as usize);
        match tokio::time::timeout(idle, read_body).await {
            Err(_) => Err(Close::Idle),
            Ok(result) => result,
        }
    }

    /// Reads `size` bytes, growing the buffer as bytes arrive: memory follows what the client
    /// really sent, not what its length prefix claims.
    async fn read_body(&mut self, size: usize) -> Result<Bytes, Close> {
        const CHUNK: usize = 256 * 1024;
        let mut frame = BytesMut::with_capacity(size.min(CHUNK));
        while frame.len() < size {
            let want = (size - frame.len()).min(CHUNK);
            frame.reserve(want);
            let mut limited = (&mut self.reader).take(want as u64);
            match limited.read_buf(&mut frame).await {
                Ok(0) => return Err(Close::Eof),
                Ok(_) => {}
                Err(e) => return Err(Close::Io(e)),
            }
        }
        Ok(frame.freeze())
    }
}
