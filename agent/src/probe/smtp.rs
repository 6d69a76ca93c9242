//! SMTP banner and EHLO probe. Replies are read line by line with caps on line length and
//! line count, so a hostile server cannot make the agent buffer without bound.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::time::Instant;

use super::{AddressPolicy, ProbeError, Prober, describe_io, within};

const MAX_LINE: usize = 1024;
const MAX_LINES: usize = 100;

/// What the server said.
#[derive(Debug, Clone)]
pub struct SmtpReply {
    pub address: std::net::SocketAddr,
    pub connect: Duration,
    pub banner_code: u16,
    pub banner: String,
    pub ehlo_code: u16,
    pub extensions: Vec<String>,
    pub total: Duration,
}

/// One multi-line reply: its code and the text of each line.
async fn read_reply<R: tokio::io::AsyncBufRead + Unpin>(reader: &mut R) -> Result<(u16, Vec<String>), ProbeError> {
    let mut lines = Vec::new();
    let mut buffer = Vec::new();
    loop {
        buffer.clear();
        let read = (&mut *reader)
            .take(MAX_LINE as u64 + 2)
            .read_until(b'\n', &mut buffer)
            .await
            .map_err(|e| ProbeError::Failed(describe_io(&e)))?;
        if read == 0 {
            return Err(ProbeError::Failed("the server closed the connection".into()));
        }
        if !buffer.ends_with(b"\n") {
            return Err(ProbeError::Failed(format!("the server sent a line longer than {MAX_LINE} bytes")));
        }
        let line = String::from_utf8_lossy(&buffer).trim_end().to_string();
        let code: u16 = line
            .get(..3)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| ProbeError::Failed(format!("not an SMTP reply: {line:?}")))?;
        let last = line.as_bytes().get(3) != Some(&b'-');
        lines.push(line.get(4..).unwrap_or("").to_string());
        if last {
            return Ok((code, lines));
        }
        if lines.len() >= MAX_LINES {
            return Err(ProbeError::Failed(format!("the server sent more than {MAX_LINES} reply lines")));
        }
    }
}

impl Prober {
    /// Connect, read the banner, say EHLO, read the reply, say QUIT.
    pub async fn smtp_probe(
        &self,
        host: &str,
        port: u16,
        ehlo_name: &str,
        limit: Duration,
        policy: &dyn AddressPolicy,
    ) -> Result<SmtpReply, ProbeError> {
        within(limit, async {
            let started = Instant::now();
            let connected = self.connect(host, port, policy).await?;
            let (read, mut write) = connected.stream.into_split();
            let mut reader = BufReader::new(read);
            let (banner_code, banner) = read_reply(&mut reader).await?;
            let write_err = |e: std::io::Error| ProbeError::Failed(describe_io(&e));
            write.write_all(format!("EHLO {ehlo_name}\r\n").as_bytes()).await.map_err(write_err)?;
            let (ehlo_code, mut ehlo) = read_reply(&mut reader).await?;
            let total = started.elapsed();
            // Best effort: the answer is already in.
            let _ = write.write_all(b"QUIT\r\n").await;
            let extensions = if ehlo.is_empty() { Vec::new() } else { ehlo.split_off(1) };
            Ok(SmtpReply {
                address: connected.addr,
                connect: connected.connect,
                banner_code,
                banner: banner.join(" "),
                ehlo_code,
                extensions,
                total,
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn multi_line_replies_are_joined_and_bounded() {
        let mut input: &[u8] = b"250-mx.example.com\r\n250-PIPELINING\r\n250 STARTTLS\r\n";
        let (code, lines) = read_reply(&mut input).await.unwrap();
        assert_eq!(code, 250);
        assert_eq!(lines, ["mx.example.com", "PIPELINING", "STARTTLS"]);

        let long = format!("220 {}\r\n", "x".repeat(5000));
        let mut input = long.as_bytes();
        assert!(matches!(read_reply(&mut input).await, Err(ProbeError::Failed(m)) if m.contains("longer than")));

        let many = "250-x\r\n".repeat(200);
        let mut input = many.as_bytes();
        assert!(matches!(read_reply(&mut input).await, Err(ProbeError::Failed(m)) if m.contains("more than")));

        let mut input: &[u8] = b"hello\r\n";
        assert!(read_reply(&mut input).await.is_err());
    }
}
