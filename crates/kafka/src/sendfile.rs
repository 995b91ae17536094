//! Sending a file range to a socket with sendfile(2): the kernel moves the bytes from the page
//! cache to the socket, the broker never copies them.
use fjord_broker::FileSlice;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use tokio::io::Interest;
use tokio::net::TcpStream;

/// Linux moves at most this many bytes per sendfile call.
const MAX_PER_CALL: usize = 0x7fff_f000;

/// Writes the whole slice to `stream`, waiting for the socket to drain as needed.
pub async fn send_file(stream: &TcpStream, slice: &FileSlice) -> io::Result<()> {
    let Some(file) = slice.file() else {
        return Ok(());
    };
    let mut offset = libc::off_t::try_from(slice.position())
        .map_err(|_| io::Error::other("file position out of range"))?;
    let mut left = slice.len();
    while left > 0 {
        stream.writable().await?;
        let sent = stream.try_io(Interest::WRITABLE, || {
            sendfile_once(stream.as_raw_fd(), file.as_raw_fd(), &mut offset, left)
        });
        match sent {
            Ok(0) => {
                // Published ranges are never truncated, so this means the file is not what the
                // read saw: stop rather than loop.
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "segment file ended inside a fetched range",
                ));
            }
            Ok(n) => left -= n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn sendfile_once(
    socket: RawFd,
    file: RawFd,
    offset: &mut libc::off_t,
    len: usize,
) -> io::Result<usize> {
    // SAFETY: sendfile(2) reads only its arguments: two descriptors that stay open for the call
    // (the caller borrows the socket and the file), and `offset`, a valid exclusive pointer to
    // an off_t that the kernel advances by the bytes sent. No Rust memory is written otherwise.
    let sent = unsafe { libc::sendfile(socket, file, offset, len.min(MAX_PER_CALL)) };
    if sent < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(sent as usize)
    }
}
