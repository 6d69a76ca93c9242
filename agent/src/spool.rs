//! The agent's durable spool: every result is written here before it is published, and stays
//! until the collector acknowledges its `seq`.
//!
//! Storage is an append-only log of segment files in one directory (see ARCHITECTURE.md for
//! why not an embedded database). A segment is named after its first seq
//! (`00000000000000001842.seg`), starts with an 8-byte magic and holds records
//!
//! ```text
//! len: u32 LE | crc32(body): u32 LE | body = seq: u64 LE | written_ms: u64 LE | check_len: u8 | check | payload
//! ```
//!
//! Only the newest segment is ever written, only by appending one whole record per `write`.
//! `acked` (the highest seq the collector stored) lives in its own small file, replaced
//! atomically. Opening the spool scans every segment: a torn tail (a kill in the middle of a
//! write) or a damaged record ends the segment there, the damaged file is copied to
//! `quarantine/` for inspection, and the readable prefix is kept. A damaged spool is never a
//! reason not to start.
//!
//! Bounds: `max_bytes` and `max_age`. Past either, whole segments are dropped oldest first;
//! the unacknowledged results in them are counted as dropped and reported in heartbeats, and
//! the collector learns from `held_from` not to wait for them.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use protocol::{CheckName, SpoolStats};

const MAGIC: &[u8; 8] = b"VAKTSPL1";
const HEADER: usize = 8;
/// len + crc
const FRAME: usize = 8;
/// seq + written_ms + check_len
const BODY_FIXED: usize = 17;
/// A record larger than this is damage, not data (payloads are capped far below).
const MAX_BODY: usize = 1 << 20;

/// Whether each append is flushed to the disk before the result is published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fsync {
    /// `fsync` after every append: results survive a power cut.
    #[default]
    Always,
    /// Leave it to the kernel: results survive a kill of the agent, not a power cut.
    Never,
}

/// Where the spool lives and how big it may grow.
#[derive(Debug, Clone)]
pub struct SpoolConfig {
    pub dir: PathBuf,
    pub max_bytes: u64,
    pub max_age: Duration,
    pub fsync: Fsync,
}

impl SpoolConfig {
    /// Segments are an eighth of the bound (at most 4 MiB), so dropping one on overflow loses
    /// a small slice of the backlog.
    fn segment_bytes(&self) -> u64 {
        (self.max_bytes / 8).clamp(4096, 4 << 20)
    }
}

/// Why the spool could not be opened or written.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("spool directory {path}: {source}")]
    Dir { path: PathBuf, source: io::Error },
    #[error("spool file {path}: {source}")]
    File { path: PathBuf, source: io::Error },
    #[error("a record of {0} bytes is larger than the spool accepts")]
    TooLarge(usize),
}

/// One spooled result, as read back for publishing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub seq: u64,
    pub check: CheckName,
    /// The encoded message, ready to publish.
    pub payload: Vec<u8>,
}

#[derive(Debug)]
struct Segment {
    path: PathBuf,
    /// (seq, offset of the frame, body length)
    index: Vec<(u64, u64, u32)>,
    bytes: u64,
    /// When its newest record was written.
    newest: SystemTime,
}

impl Segment {
    fn first_seq(&self) -> Option<u64> {
        self.index.first().map(|r| r.0)
    }
    fn last_seq(&self) -> Option<u64> {
        self.index.last().map(|r| r.0)
    }
}

/// The spool. One owner (the publisher); every method does its IO synchronously, and each
/// is a few small reads or writes.
#[derive(Debug)]
pub struct Spool {
    config: SpoolConfig,
    segments: VecDeque<Segment>,
    writer: Option<File>,
    acked: u64,
    next_seq: u64,
    dropped: u64,
    quarantined: u64,
    /// No seq below this is handed out again (damaged records may have been published).
    seq_floor: u64,
}

impl Spool {
    /// Open (or create) the spool, recovering whatever a crash left behind.
    pub fn open(config: SpoolConfig) -> Result<Spool, SpoolError> {
        let dir_error = |source| SpoolError::Dir { path: config.dir.clone(), source };
        fs::create_dir_all(&config.dir).map_err(dir_error)?;
        let acked = read_u64(&config.dir.join("acked")).map_err(dir_error)?.unwrap_or(0);
        let mut names: Vec<(u64, PathBuf)> = Vec::new();
        for entry in fs::read_dir(&config.dir).map_err(dir_error)? {
            let path = entry.map_err(dir_error)?.path();
            let first =
                path.extension().filter(|e| *e == "seg").and_then(|_| path.file_stem()?.to_str()?.parse::<u64>().ok());
            if let Some(first) = first {
                names.push((first, path));
            }
        }
        names.sort();
        let mut spool = Spool {
            config,
            segments: VecDeque::new(),
            writer: None,
            acked,
            next_seq: acked + 1,
            dropped: 0,
            quarantined: 0,
            seq_floor: 0,
        };
        for (_, path) in names {
            let segment = spool.recover(&path)?;
            match segment {
                Some(s) if s.last_seq().is_some_and(|last| last >= spool.next_seq) => {
                    spool.next_seq = s.last_seq().unwrap_or(0) + 1;
                    spool.segments.push_back(s);
                }
                Some(s) if s.index.is_empty() || s.last_seq() <= Some(acked) => {
                    // Empty, or everything in it is acknowledged: nothing to keep.
                    remove(&s.path);
                }
                Some(s) => {
                    tracing::warn!(path = %s.path.display(), "spool segment out of seq order; quarantined");
                    spool.quarantine(&s.path);
                    remove(&s.path);
                }
                None => {}
            }
        }
        spool.next_seq = spool.next_seq.max(spool.seq_floor);
        spool.enforce_bounds(SystemTime::now());
        Ok(spool)
    }

    /// Read one segment, cutting it at the first damaged record.
    fn recover(&mut self, path: &Path) -> Result<Option<Segment>, SpoolError> {
        let file_error = |source| SpoolError::File { path: path.to_path_buf(), source };
        let bytes = fs::read(path).map_err(file_error)?;
        if bytes.len() < HEADER || &bytes[..HEADER] != MAGIC {
            tracing::warn!(path = %path.display(), "spool segment without a valid header; quarantined");
            self.quarantine(path);
            remove(path);
            return Ok(None);
        }
        let mut segment =
            Segment { path: path.to_path_buf(), index: Vec::new(), bytes: HEADER as u64, newest: UNIX_EPOCH };
        let mut at = HEADER;
        let mut damaged = false;
        while at < bytes.len() {
            match parse_record(&bytes[at..]) {
                Some((record, written, body_len)) if segment.last_seq().is_none_or(|last| record.seq > last) => {
                    segment.index.push((record.seq, at as u64, body_len));
                    segment.newest = written;
                    at += FRAME + body_len as usize;
                }
                _ => {
                    damaged = true;
                    break;
                }
            }
        }
        segment.bytes = at as u64;
        if damaged {
            // A record cut short by the end of the file is a write the kill interrupted: it
            // was never published, its seq is free. Anything else is damage to records that
            // may have been published, and their seqs must never be given out again: skip
            // past as many as the damaged bytes could have held.
            let rest = &bytes[at..];
            let torn = rest.len() < FRAME
                || u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize + FRAME > rest.len();
            if !torn {
                let last = segment.last_seq().unwrap_or(self.next_seq.saturating_sub(1));
                let could_hold = (rest.len() / (FRAME + BODY_FIXED + 1)) as u64;
                self.seq_floor = self.seq_floor.max(last + could_hold + 1);
            }
            tracing::warn!(
                path = %path.display(),
                kept = segment.index.len(),
                discarded_bytes = bytes.len() - at,
                "spool segment damaged (torn write or corruption); copied to quarantine and cut at the last good record"
            );
            self.quarantine(path);
            let file = OpenOptions::new().write(true).open(path).map_err(file_error)?;
            file.set_len(at as u64).map_err(file_error)?;
            file.sync_all().map_err(file_error)?;
        }
        Ok(Some(segment))
    }

    fn quarantine(&mut self, path: &Path) {
        self.quarantined += 1;
        let dir = self.config.dir.join("quarantine");
        let Some(name) = path.file_name() else { return };
        let stamp = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis();
        let target = dir.join(format!("{}.{stamp}", name.to_string_lossy()));
        if let Err(error) = fs::create_dir_all(&dir).and_then(|()| fs::copy(path, &target)) {
            tracing::error!(path = %path.display(), error = %error, "could not copy a damaged spool segment aside");
        }
    }

    /// The seq the next result will get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Highest seq assigned so far (0 before the first).
    pub fn last_seq(&self) -> u64 {
        self.next_seq - 1
    }

    /// Highest seq the collector acknowledged.
    pub fn acked(&self) -> u64 {
        self.acked
    }

    /// Damaged segments set aside since opening.
    pub fn quarantined(&self) -> u64 {
        self.quarantined
    }

    /// Append one result, made by `encode` from the seq it gets; returns that seq. The record
    /// is on disk (and flushed, with `Fsync::Always`) when this returns.
    pub fn append(
        &mut self,
        check: &CheckName,
        now: SystemTime,
        encode: impl FnOnce(u64) -> Vec<u8>,
    ) -> Result<u64, SpoolError> {
        let seq = self.next_seq;
        let payload = encode(seq);
        let check_bytes = check.as_str().as_bytes();
        let body_len = BODY_FIXED + check_bytes.len() + payload.len();
        if body_len > MAX_BODY {
            return Err(SpoolError::TooLarge(body_len));
        }
        let written_ms = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64;
        let mut body = Vec::with_capacity(body_len);
        body.extend_from_slice(&seq.to_le_bytes());
        body.extend_from_slice(&written_ms.to_le_bytes());
        body.push(check_bytes.len() as u8);
        body.extend_from_slice(check_bytes);
        body.extend_from_slice(&payload);
        let mut frame = Vec::with_capacity(FRAME + body.len());
        frame.extend_from_slice(&(body.len() as u32).to_le_bytes());
        frame.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
        frame.extend_from_slice(&body);

        let rotate =
            self.segments.back().is_none_or(|s| s.bytes >= self.config.segment_bytes()) || self.writer.is_none();
        if rotate {
            self.start_segment(seq)?;
        }
        let Some(segment) = self.segments.back_mut() else { unreachable_segment()? };
        let path = segment.path.clone();
        let file_error = |source| SpoolError::File { path: path.clone(), source };
        let Some(writer) = self.writer.as_mut() else { unreachable_segment()? };
        let written = writer.write_all(&frame).and_then(|()| match self.config.fsync {
            Fsync::Always => writer.sync_data(),
            Fsync::Never => Ok(()),
        });
        if let Err(error) = written {
            // A write that failed half-way (ENOSPC, EIO) may have left a torn record. Cut it
            // off if the disk lets us, and start a new segment with the next append either
            // way: nothing is ever appended after bytes that might be torn, and recovery stops
            // at a torn record exactly as it does after a crash. The seq was not used.
            let kept = segment.bytes;
            if let Some(writer) = self.writer.take() {
                let _ = writer.set_len(kept);
            }
            return Err(file_error(error));
        }
        segment.index.push((seq, segment.bytes, body.len() as u32));
        segment.bytes += frame.len() as u64;
        segment.newest = now;
        self.next_seq += 1;
        self.enforce_bounds(now);
        Ok(seq)
    }

    fn start_segment(&mut self, first_seq: u64) -> Result<(), SpoolError> {
        let path = self.config.dir.join(format!("{first_seq:020}.seg"));
        let file_error = |source| SpoolError::File { path: path.clone(), source };
        // A segment that never got a record (its first append failed) is replaced, not kept
        // beside its successor.
        if self.segments.back().is_some_and(|s| s.index.is_empty())
            && let Some(empty) = self.segments.pop_back()
            && empty.path != path
        {
            remove(&empty.path);
        }
        // The only way an older file can have this name is a crash right after creating it,
        // or a first append that failed.
        let mut file = OpenOptions::new().create(true).write(true).truncate(true).open(&path).map_err(file_error)?;
        file.write_all(MAGIC).map_err(file_error)?;
        if self.config.fsync == Fsync::Always {
            file.sync_all().map_err(file_error)?;
            File::open(&self.config.dir).and_then(|d| d.sync_all()).map_err(file_error)?;
        }
        self.writer = Some(file);
        self.segments.push_back(Segment { path, index: Vec::new(), bytes: HEADER as u64, newest: SystemTime::now() });
        Ok(())
    }

    /// The collector stored everything up to `upto`: forget it. Acks past the last seq
    /// assigned are clamped (they can only come from a confused or hostile sender).
    pub fn ack(&mut self, upto: u64) -> Result<(), SpoolError> {
        let upto = upto.min(self.last_seq());
        if upto <= self.acked {
            return Ok(());
        }
        self.acked = upto;
        let path = self.config.dir.join("acked");
        write_u64(&path, upto).map_err(|source| SpoolError::File { path, source })?;
        while self.segments.front().is_some_and(|s| s.last_seq().is_none_or(|last| last <= upto)) {
            let last_one = self.segments.len() == 1;
            if let Some(s) = self.segments.pop_front() {
                remove(&s.path);
            }
            if last_one {
                self.writer = None;
            }
        }
        Ok(())
    }

    /// Drop whole segments, oldest first, while the spool is over its byte bound or its oldest
    /// segment is past the age bound. Called after every append; call it on a timer too so
    /// age applies while no results come.
    pub fn enforce_bounds(&mut self, now: SystemTime) {
        loop {
            let total: u64 = self.segments.iter().map(|s| s.bytes).sum();
            let Some(oldest) = self.segments.front() else { return };
            let too_big = total > self.config.max_bytes && self.segments.len() > 1;
            let too_old = now.duration_since(oldest.newest).unwrap_or_default() > self.config.max_age;
            if !too_big && !too_old {
                return;
            }
            let lost = oldest.index.iter().filter(|r| r.0 > self.acked).count() as u64;
            let (first, last) = (oldest.first_seq().unwrap_or(0), oldest.last_seq().unwrap_or(0));
            tracing::warn!(
                first_seq = first,
                last_seq = last,
                results = lost,
                reason = if too_big { "spool full" } else { "too old" },
                "dropping the oldest unacknowledged results"
            );
            self.dropped += lost;
            let last_one = self.segments.len() == 1;
            if let Some(s) = self.segments.pop_front() {
                remove(&s.path);
            }
            if last_one {
                self.writer = None;
            }
        }
    }

    /// Lowest seq still held and not acknowledged (or the next seq when there is none).
    pub fn held_from(&self) -> u64 {
        self.segments
            .iter()
            .flat_map(|s| s.index.iter())
            .map(|r| r.0)
            .find(|&seq| seq > self.acked)
            .unwrap_or(self.next_seq)
    }

    /// Up to `max` records with seq greater than `after`, in seq order.
    pub fn read_after(&self, after: u64, max: usize) -> Result<Vec<Record>, SpoolError> {
        let after = after.max(self.acked);
        let mut out = Vec::new();
        for segment in &self.segments {
            if segment.last_seq().is_none_or(|last| last <= after) {
                continue;
            }
            let file_error = |source| SpoolError::File { path: segment.path.clone(), source };
            // Read only the byte range of the records wanted.
            let wanted: Vec<&(u64, u64, u32)> =
                segment.index[segment.index.partition_point(|r| r.0 <= after)..].iter().take(max - out.len()).collect();
            let (Some(first), Some(last)) = (wanted.first(), wanted.last()) else { continue };
            let start = first.1;
            let end = last.1 + (FRAME as u64) + u64::from(last.2);
            let mut file = File::open(&segment.path).map_err(file_error)?;
            file.seek(SeekFrom::Start(start)).map_err(file_error)?;
            let mut bytes = vec![0u8; (end - start) as usize];
            file.read_exact(&mut bytes).map_err(file_error)?;
            for &&(seq, offset, _) in &wanted {
                let record = bytes.get((offset - start) as usize..).and_then(parse_record).map(|r| r.0);
                match record {
                    Some(record) if record.seq == seq => out.push(record),
                    _ => {
                        return Err(file_error(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("record {seq} changed on disk"),
                        )));
                    }
                }
                if out.len() >= max {
                    return Ok(out);
                }
            }
        }
        Ok(out)
    }

    /// Counts for the heartbeat.
    pub fn stats(&self) -> SpoolStats {
        let records = self.segments.iter().flat_map(|s| s.index.iter()).filter(|r| r.0 > self.acked).count();
        SpoolStats {
            records: records as u64,
            bytes: self.segments.iter().map(|s| s.bytes).sum(),
            held_from: self.held_from(),
            acked: self.acked,
            dropped: self.dropped,
            pending: 0,
            write_errors: 0,
        }
    }
}

fn unreachable_segment<T>() -> Result<T, SpoolError> {
    Err(SpoolError::Dir { path: PathBuf::new(), source: io::Error::other("no open spool segment") })
}

/// Parse the record at the start of `bytes`: the record, when it was written, its body length.
fn parse_record(bytes: &[u8]) -> Option<(Record, SystemTime, u32)> {
    let len = u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?);
    let crc = u32::from_le_bytes(bytes.get(4..8)?.try_into().ok()?);
    let body = bytes.get(FRAME..FRAME.checked_add(len as usize)?)?;
    if (len as usize) < BODY_FIXED || len as usize > MAX_BODY || crc32fast::hash(body) != crc {
        return None;
    }
    let seq = u64::from_le_bytes(body[..8].try_into().ok()?);
    let written = UNIX_EPOCH + Duration::from_millis(u64::from_le_bytes(body[8..16].try_into().ok()?));
    let check_len = body[16] as usize;
    let check = std::str::from_utf8(body.get(BODY_FIXED..BODY_FIXED + check_len)?).ok()?;
    let check = CheckName::new(check).ok()?;
    let payload = body[BODY_FIXED + check_len..].to_vec();
    Some((Record { seq, check, payload }, written, len))
}

fn remove(path: &Path) {
    if let Err(error) = fs::remove_file(path)
        && error.kind() != io::ErrorKind::NotFound
    {
        tracing::error!(path = %path.display(), error = %error, "could not delete a spool segment");
    }
}

/// A small number in a file, replaced atomically (write, flush, rename, flush the directory).
pub fn write_u64(path: &Path, value: u64) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut file = File::create(&tmp)?;
    file.write_all(format!("{value}\n").as_bytes())?;
    file.sync_all()?;
    fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Read what [`write_u64`] wrote; `None` when the file does not exist.
pub fn read_u64(path: &Path) -> io::Result<Option<u64>> {
    match fs::read_to_string(path) {
        Ok(text) => {
            text.trim().parse().map(Some).map_err(|e| {
                io::Error::new(io::ErrorKind::InvalidData, format!("{}: not a number: {e}", path.display()))
            })
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn config(dir: &Path, max_bytes: u64) -> SpoolConfig {
        SpoolConfig { dir: dir.to_path_buf(), max_bytes, max_age: Duration::from_secs(3600), fsync: Fsync::Never }
    }

    fn check() -> CheckName {
        CheckName::new("disk").unwrap()
    }

    fn put(spool: &mut Spool, n: usize) -> Vec<u64> {
        (0..n)
            .map(|_| spool.append(&check(), SystemTime::now(), |seq| format!("result {seq}").into_bytes()).unwrap())
            .collect()
    }

    fn seqs(spool: &Spool) -> Vec<u64> {
        spool.read_after(0, usize::MAX).unwrap().iter().map(|r| r.seq).collect()
    }

    #[test]
    fn seqs_continue_across_reopen_and_acks_delete() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(config(dir.path(), 1 << 20)).unwrap();
        assert_eq!(put(&mut spool, 3), [1, 2, 3]);
        let records = spool.read_after(1, 10).unwrap();
        assert_eq!(records[0], Record { seq: 2, check: check(), payload: b"result 2".to_vec() });
        spool.ack(3).unwrap();
        assert_eq!(spool.stats().records, 0);
        drop(spool);
        let mut spool = Spool::open(config(dir.path(), 1 << 20)).unwrap();
        assert_eq!(spool.acked(), 3);
        assert_eq!(put(&mut spool, 1), [4]);
        drop(spool);
        let spool = Spool::open(config(dir.path(), 1 << 20)).unwrap();
        assert_eq!(seqs(&spool), [4]);
        assert_eq!(spool.next_seq(), 5);
    }

    #[test]
    fn a_torn_tail_is_cut_and_quarantined_and_the_rest_kept() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(config(dir.path(), 1 << 20)).unwrap();
        put(&mut spool, 5);
        let path = spool.segments[0].path.clone();
        drop(spool);
        let len = fs::metadata(&path).unwrap().len();
        OpenOptions::new().write(true).open(&path).unwrap().set_len(len - 3).unwrap();
        let mut spool = Spool::open(config(dir.path(), 1 << 20)).unwrap();
        assert_eq!(seqs(&spool), [1, 2, 3, 4]);
        assert_eq!(spool.quarantined(), 1);
        assert_eq!(fs::read_dir(dir.path().join("quarantine")).unwrap().count(), 1);
        // The torn record was never published, so its seq is given out again.
        assert_eq!(put(&mut spool, 1), [5]);
    }

    #[test]
    fn a_flipped_byte_ends_the_segment_there() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(config(dir.path(), 1 << 20)).unwrap();
        put(&mut spool, 5);
        let (path, offset) = (spool.segments[0].path.clone(), spool.segments[0].index[2].1);
        drop(spool);
        let mut bytes = fs::read(&path).unwrap();
        bytes[offset as usize + FRAME + 3] ^= 0xff;
        fs::write(&path, bytes).unwrap();
        let mut spool = Spool::open(config(dir.path(), 1 << 20)).unwrap();
        assert_eq!(seqs(&spool), [1, 2]);
        assert_eq!(spool.quarantined(), 1);
        // Records 3..=5 may have been published: their seqs are never reused.
        assert!(put(&mut spool, 1)[0] > 5);
    }

    #[test]
    fn garbage_files_are_set_aside_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("00000000000000000001.seg"), b"not a segment at all").unwrap();
        fs::write(dir.path().join("00000000000000000009.seg"), b"").unwrap();
        let mut spool = Spool::open(config(dir.path(), 1 << 20)).unwrap();
        assert_eq!(spool.quarantined(), 2);
        assert_eq!(put(&mut spool, 1), [1]);
    }

    #[test]
    fn a_full_spool_drops_the_oldest_and_counts_them() {
        let dir = tempfile::tempdir().unwrap();
        // 32 KiB bound, 4 KiB segments, ~33-byte records.
        let mut spool = Spool::open(config(dir.path(), 32 * 1024)).unwrap();
        put(&mut spool, 5000);
        let stats = spool.stats();
        assert!(stats.bytes <= 32 * 1024 + 4096, "{stats:?}");
        assert!(stats.dropped > 3000, "{stats:?}");
        assert_eq!(stats.dropped + stats.records, 5000);
        let held = seqs(&spool);
        assert_eq!(held.first(), Some(&stats.held_from));
        assert_eq!(held.last(), Some(&5000));
        assert!(held.windows(2).all(|w| w[1] == w[0] + 1));
    }

    #[test]
    fn old_results_expire() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(config(dir.path(), 1 << 20)).unwrap();
        put(&mut spool, 3);
        spool.enforce_bounds(SystemTime::now() + Duration::from_secs(7200));
        assert_eq!(spool.stats().dropped, 3);
        assert_eq!(spool.held_from(), 4);
        assert_eq!(put(&mut spool, 1), [4]);
    }

    #[test]
    fn acks_from_the_future_are_clamped() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(config(dir.path(), 1 << 20)).unwrap();
        put(&mut spool, 2);
        spool.ack(1_000_000).unwrap();
        assert_eq!(spool.acked(), 2);
        assert_eq!(put(&mut spool, 1), [3]);
    }
}
