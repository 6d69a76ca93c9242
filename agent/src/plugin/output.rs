//! Where a plugin's WASI stdout and stderr go: a bounded buffer per run, logged by the agent
//! afterwards. Writes past the cap are dropped and counted, never an error, so a chatty plugin
//! neither fails nor fills the agent's memory or log.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

#[derive(Debug, Default)]
struct Buffer {
    kept: Vec<u8>,
    dropped: usize,
}

/// A bounded capture of one output stream.
#[derive(Debug, Clone)]
pub(crate) struct CapturedOutput {
    buffer: Arc<Mutex<Buffer>>,
    cap: usize,
}

impl CapturedOutput {
    pub(crate) fn new(cap: usize) -> CapturedOutput {
        CapturedOutput { buffer: Arc::default(), cap }
    }

    /// What was kept (lossy UTF-8) and how many bytes were dropped.
    pub(crate) fn snapshot(&self) -> (String, usize) {
        let buffer = self.buffer.lock().unwrap_or_else(|p| p.into_inner());
        (String::from_utf8_lossy(&buffer.kept).into_owned(), buffer.dropped)
    }

    fn write(&self, bytes: &[u8]) {
        let mut buffer = self.buffer.lock().unwrap_or_else(|p| p.into_inner());
        let room = self.cap.saturating_sub(buffer.kept.len());
        let keep = room.min(bytes.len());
        buffer.kept.extend_from_slice(&bytes[..keep]);
        buffer.dropped += bytes.len() - keep;
    }
}

/// A run's stdout and stderr.
#[derive(Debug, Clone)]
pub(crate) struct Stdio {
    pub(crate) stdout: CapturedOutput,
    pub(crate) stderr: CapturedOutput,
}

impl Stdio {
    /// Both streams, each kept up to `cap` bytes.
    pub(crate) fn new(cap: usize) -> Stdio {
        Stdio { stdout: CapturedOutput::new(cap), stderr: CapturedOutput::new(cap) }
    }
}

impl IsTerminal for CapturedOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CapturedOutput {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl AsyncWrite for CapturedOutput {
    fn poll_write(self: Pin<&mut Self>, _cx: &mut Context<'_>, bytes: &[u8]) -> Poll<io::Result<usize>> {
        self.write(bytes);
        Poll::Ready(Ok(bytes.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_up_to_the_cap_and_counts_the_rest() {
        let out = CapturedOutput::new(5);
        out.write(b"abc");
        out.write(b"defgh");
        assert_eq!(out.snapshot(), ("abcde".to_string(), 3));
    }
}
