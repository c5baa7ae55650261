//! The write-ahead log of one tenant's index (issue #15): in the engine's logged mode
//! ([`super::EngineOptions::commit_within`]) a batch is acknowledged once its changes are
//! appended here and fsynced, and the index commits them later, in the background or
//! when enough have gathered. Elasticsearch's translog does the same. A Tantivy commit
//! per batch (a new segment, its files fsynced, merges, a reader reload) was most of the
//! CDC path's cost per batch; one append and one fsync is a fraction of it.
//!
//! The log sits beside its index (`<entity>-v<schema>.wal`). It is replayed, through
//! the same sequence guard as any batch, when a writer opens the index, and emptied after
//! every commit. A crash between a commit and the emptying replays changes the index
//! already holds: the guard finds them stale, so nothing changes twice.
//!
//! Format: frames of `[payload length: u32 LE][CRC-32 of the payload: u32 LE][payload]`,
//! the payload one batch's applied changes as JSON. A frame cut short or damaged (a crash
//! during an append, before the fsync that would have acknowledged it) ends the log: it
//! and anything after it are cut off when the log is opened for writing.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// A frame longer than this is damage, not a batch: a Lambda batch is at most 10,000
/// records of at most 400 KB, but one frame's length decides an allocation on replay,
/// so the bound is set here, not by the file.
const MAX_FRAME: u32 = 1 << 30;

/// One applied change as the log keeps it: enough to rebuild the index document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Entry {
    /// The document key.
    pub k: String,
    /// The sequence number, padded as the index stores it.
    pub s: String,
    /// The item as DynamoDB JSON (what the index stores), or `None` for a removal.
    pub d: Option<String>,
}

/// An open log, positioned at its end.
#[derive(Debug)]
pub(super) struct Wal {
    path: PathBuf,
    file: File,
    /// Bytes of whole frames: where the next frame goes.
    len: u64,
}

impl Wal {
    /// Opens (or creates) the log at `path` and reads every whole frame, in order. A
    /// damaged or partial tail is cut off, so new frames follow the last good one.
    pub fn open(path: &Path) -> std::io::Result<(Self, Vec<Vec<Entry>>)> {
        let created = !path.exists();
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let (batches, good) = read_frames(&bytes);
        if good < bytes.len() {
            tracing::warn!(
                path = %path.display(),
                cut = bytes.len() - good,
                "write-ahead log ends in a partial frame (a crash before its batch was acknowledged): cut off"
            );
            file.set_len(good as u64)?;
            file.sync_data()?;
        }
        if created {
            // The new file's name must survive a power loss too, not just its bytes.
            if let Some(dir) = path.parent() {
                File::open(dir)?.sync_all()?;
            }
        }
        Ok((
            Self {
                path: path.to_owned(),
                file,
                len: good as u64,
            },
            batches,
        ))
    }

    /// Appends one batch and fsyncs: when this returns, the batch survives a crash.
    pub fn append(&mut self, entries: &[Entry]) -> std::io::Result<()> {
        let payload = serde_json::to_vec(entries)?;
        let len = u32::try_from(payload.len())
            .ok()
            .filter(|n| *n <= MAX_FRAME)
            .ok_or_else(|| std::io::Error::other("batch too large for one log frame"))?;
        let mut frame = Vec::with_capacity(payload.len() + 8);
        frame.extend_from_slice(&len.to_le_bytes());
        frame.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        frame.extend_from_slice(&payload);
        // At the end of the last whole frame, wherever the file's cursor is.
        self.file.write_all_at(&frame, self.len)?;
        self.file.sync_data()?;
        self.len += frame.len() as u64;
        Ok(())
    }

    /// Empties the log once the index has committed everything in it.
    pub fn clear(&mut self) -> std::io::Result<()> {
        if self.len == 0 {
            return Ok(());
        }
        self.file.set_len(0)?;
        self.file.sync_data()?;
        self.len = 0;
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Whether the log at `path` holds anything (a writer stopped before committing it).
pub(super) fn has_entries(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.len() > 0)
}

/// The whole frames at the start of `bytes`, and how many bytes they take.
fn read_frames(bytes: &[u8]) -> (Vec<Vec<Entry>>, usize) {
    let mut batches = Vec::new();
    let mut at = 0;
    while let Some(header) = bytes.get(at..at + 8) {
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
        let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        if len > MAX_FRAME {
            break;
        }
        let Some(payload) = bytes.get(at + 8..at + 8 + len as usize) else {
            break;
        };
        if crc32fast::hash(payload) != crc {
            break;
        }
        let Ok(entries) = serde_json::from_slice::<Vec<Entry>>(payload) else {
            break;
        };
        batches.push(entries);
        at += 8 + len as usize;
    }
    (batches, at)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn entry(k: &str, s: &str) -> Entry {
        Entry {
            k: k.into(),
            s: s.into(),
            d: Some(format!("{{\"id\":{{\"S\":\"{k}\"}}}}")),
        }
    }

    #[test]
    fn appended_batches_are_read_back_in_order_after_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.wal");
        let (mut wal, old) = Wal::open(&path).unwrap();
        assert!(old.is_empty());
        wal.append(&[entry("a", "1"), entry("b", "2")]).unwrap();
        wal.append(&[Entry {
            k: "a".into(),
            s: "3".into(),
            d: None,
        }])
        .unwrap();
        drop(wal);
        let (_, batches) = Wal::open(&path).unwrap();
        assert_eq!(batches.len(), 2);
        assert_eq!(batches[0], vec![entry("a", "1"), entry("b", "2")]);
        assert_eq!(batches[1][0].d, None);
    }

    #[test]
    fn a_partial_last_frame_is_cut_off_and_new_frames_follow_the_last_whole_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.wal");
        let (mut wal, _) = Wal::open(&path).unwrap();
        wal.append(&[entry("a", "1")]).unwrap();
        wal.append(&[entry("b", "2")]).unwrap();
        drop(wal);
        // A crash in the middle of the second append.
        let len = std::fs::metadata(&path).unwrap().len();
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(len - 5).unwrap();
        drop(f);

        let (mut wal, batches) = Wal::open(&path).unwrap();
        assert_eq!(batches, vec![vec![entry("a", "1")]]);
        wal.append(&[entry("c", "3")]).unwrap();
        drop(wal);
        let (_, batches) = Wal::open(&path).unwrap();
        assert_eq!(batches, vec![vec![entry("a", "1")], vec![entry("c", "3")]]);
    }

    #[test]
    fn a_damaged_frame_ends_the_log_and_a_huge_length_allocates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.wal");
        let (mut wal, _) = Wal::open(&path).unwrap();
        wal.append(&[entry("a", "1")]).unwrap();
        let good = std::fs::metadata(&path).unwrap().len();
        wal.append(&[entry("b", "2")]).unwrap();
        drop(wal);
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 2;
        bytes[last] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        let (wal, batches) = Wal::open(&path).unwrap();
        assert_eq!(batches, vec![vec![entry("a", "1")]]);
        assert_eq!(std::fs::metadata(wal.path()).unwrap().len(), good);

        let mut huge = u32::MAX.to_le_bytes().to_vec();
        huge.extend_from_slice(&[0; 12]);
        assert_eq!(read_frames(&huge), (Vec::new(), 0));
    }

    #[test]
    fn clearing_empties_the_log_for_good() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.wal");
        let (mut wal, _) = Wal::open(&path).unwrap();
        wal.append(&[entry("a", "1")]).unwrap();
        assert!(has_entries(&path));
        wal.clear().unwrap();
        assert_eq!(wal.len, 0);
        assert!(!has_entries(&path));
        wal.append(&[entry("b", "2")]).unwrap();
        drop(wal);
        let (_, batches) = Wal::open(&path).unwrap();
        assert_eq!(batches, vec![vec![entry("b", "2")]]);
    }
}
