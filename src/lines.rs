//! `LineReader`: newline-delimited framing of a child's output with a length limit. A line over
//! the limit is discarded up to its newline and reported, so one bad line never wedges the pipe.

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

/// One framed line.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A complete line without its `\n` (or `\r\n`).
    Text(Bytes),
    /// A line longer than the limit was skipped; it held this many bytes.
    TooLong(usize),
}

/// Reads lines from `R`, keeping partial lines in its own buffer between calls.
pub struct LineReader<R> {
    inner: R,
    buf: BytesMut,
    max: usize,
    /// Bytes of an over-long line thrown away so far; `Some` while discarding.
    discarding: Option<usize>,
    /// How much of `buf` is known to hold no newline.
    scanned: usize,
    /// The first and last bytes of the last line skipped for its length.
    skipped_head: Vec<u8>,
    skipped_tail: Vec<u8>,
}

/// Bytes kept from each end of a skipped line.
const SKIPPED_ENDS: usize = 512;

/// Keeps the last `SKIPPED_ENDS` bytes of `tail` followed by `more`.
fn keep_tail(tail: &mut Vec<u8>, more: &[u8]) {
    tail.extend_from_slice(&more[more.len().saturating_sub(SKIPPED_ENDS)..]);
    let excess = tail.len().saturating_sub(SKIPPED_ENDS);
    tail.drain(..excess);
}

const READ_CHUNK: usize = 64 * 1024;

impl<R: AsyncRead + Unpin> LineReader<R> {
    /// Frames `inner`, skipping lines longer than `max` bytes.
    pub fn new(inner: R, max: usize) -> Self {
        LineReader {
            inner,
            buf: BytesMut::with_capacity(READ_CHUNK),
            max,
            discarding: None,
            scanned: 0,
            skipped_head: Vec::new(),
            skipped_tail: Vec::new(),
        }
    }

    /// The first and last bytes (up to 512 each) of the last line skipped for its length.
    pub fn skipped_ends(&self) -> (&[u8], &[u8]) {
        (&self.skipped_head, &self.skipped_tail)
    }

    fn start_skipping(&mut self, bytes: &[u8]) {
        self.skipped_head = bytes[..bytes.len().min(SKIPPED_ENDS)].to_vec();
        self.skipped_tail.clear();
        keep_tail(&mut self.skipped_tail, bytes);
    }

    /// The next line, or `None` at end of input.
    ///
    /// Whether a whole line is buffered already (the next `next_line` needs no read).
    pub fn has_line(&self) -> bool {
        self.discarding.is_none() && memchr::memchr(b'\n', &self.buf).is_some()
    }

    /// Cancel safety: every byte read is kept in `self.buf` before any await point, so
    /// dropping this future loses nothing; the next call resumes where it stopped.
    ///
    /// # Errors
    /// I/O errors of the underlying reader.
    pub async fn next_line(&mut self) -> std::io::Result<Option<Line>> {
        loop {
            if let Some(pos) = memchr::memchr(b'\n', &self.buf[self.scanned..]) {
                let end = self.scanned + pos;
                let mut line = self.buf.split_to(end + 1);
                self.scanned = 0;
                if let Some(skipped) = self.discarding.take() {
                    keep_tail(&mut self.skipped_tail, &line[..end]);
                    return Ok(Some(Line::TooLong(skipped + line.len() - 1)));
                }
                line.truncate(end);
                if line.last() == Some(&b'\r') {
                    line.truncate(end - 1);
                }
                if line.len() > self.max {
                    self.start_skipping(&line);
                    return Ok(Some(Line::TooLong(line.len())));
                }
                return Ok(Some(Line::Text(line.freeze())));
            }
            self.scanned = self.buf.len();
            if self.buf.len() > self.max {
                if self.discarding.is_none() {
                    let first = std::mem::take(&mut self.buf);
                    self.start_skipping(&first);
                    self.buf = first;
                } else {
                    let chunk = std::mem::take(&mut self.buf);
                    keep_tail(&mut self.skipped_tail, &chunk);
                    self.buf = chunk;
                }
                *self.discarding.get_or_insert(0) += self.buf.len();
                self.buf.clear();
                self.scanned = 0;
            }
            self.buf.reserve(READ_CHUNK);
            if self.inner.read_buf(&mut self.buf).await? == 0 {
                return Ok(self.finish());
            }
        }
    }

    fn finish(&mut self) -> Option<Line> {
        self.scanned = 0;
        if let Some(skipped) = self.discarding.take() {
            return Some(Line::TooLong(skipped + self.buf.split().len()));
        }
        if self.buf.is_empty() {
            return None;
        }
        let line = self.buf.split();
        if line.len() > self.max {
            return Some(Line::TooLong(line.len()));
        }
        Some(Line::Text(line.freeze()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    async fn collect(input: &[u8], max: usize) -> Vec<Line> {
        // A duplex of 8 bytes forces many partial reads.
        let (mut w, r) = tokio::io::duplex(8);
        let data = input.to_vec();
        let writer = tokio::spawn(async move {
            w.write_all(&data).await.unwrap();
        });
        let mut lines = LineReader::new(r, max);
        let mut out = Vec::new();
        while let Some(l) = lines.next_line().await.unwrap() {
            out.push(l);
        }
        writer.await.unwrap();
        out
    }

    fn text(s: &str) -> Line {
        Line::Text(Bytes::copy_from_slice(s.as_bytes()))
    }

    #[tokio::test]
    async fn frames_lines_across_partial_reads() {
        let got = collect(b"{\"a\":1}\n\r\n{\"b\":22}\r\nlast", 100).await;
        assert_eq!(
            got,
            vec![
                text("{\"a\":1}"),
                text(""),
                text("{\"b\":22}"),
                text("last")
            ]
        );
    }

    #[tokio::test]
    async fn skips_over_long_lines_and_carries_on() {
        let long = "x".repeat(100);
        let input = format!("ok\n{long}\nafter\n{long}");
        let got = collect(input.as_bytes(), 16).await;
        assert_eq!(
            got,
            vec![
                text("ok"),
                Line::TooLong(100),
                text("after"),
                Line::TooLong(100)
            ]
        );
    }

    #[tokio::test]
    async fn the_ends_of_a_skipped_line_are_kept() {
        let long = format!("{{\"id\":7,{}\"end\":1}}\nnext\n", "x".repeat(5000));
        let (mut w, r) = tokio::io::duplex(64);
        tokio::spawn(async move { w.write_all(long.as_bytes()).await.unwrap() });
        let mut lines = LineReader::new(r, 100);
        assert_eq!(lines.next_line().await.unwrap(), Some(Line::TooLong(5016)));
        let (head, tail) = lines.skipped_ends();
        assert!(
            head.starts_with(b"{\"id\":7,xxx") && head.len() <= 512,
            "{:?}",
            String::from_utf8_lossy(head)
        );
        assert!(tail.ends_with(b"xxx\"end\":1}") && tail.len() <= 512);
        assert_eq!(lines.next_line().await.unwrap(), Some(text("next")));
    }

    #[tokio::test]
    async fn a_line_exactly_at_the_limit_passes() {
        let got = collect(b"1234\n12345\n", 4).await;
        assert_eq!(got, vec![text("1234"), Line::TooLong(5)]);
    }
}
