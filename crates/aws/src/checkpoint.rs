//! Where the poller is in each shard: persisted after every batch whose writes are
//! durable, so a restarted poller resumes right after the last applied record.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardCheckpoint {
    /// The last sequence number whose batch was fully applied.
    pub last_seq: Option<String>,
    /// The shard is closed and every record of it applied (or, with `trimmed_gap`, gone).
    pub finished: bool,
    /// Set when records of this shard were trimmed from the stream (past its 24 h
    /// retention) before the poller read them: they never reached the sinks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trimmed_gap: Option<TrimmedGap>,
}

/// Where a trimmed gap began.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrimmedGap {
    /// The last sequence number applied before the gap; `None`: the shard's start.
    pub after: Option<String>,
}

/// One table's checkpoints: `<dir>/<table>.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableCheckpoint {
    pub stream_arn: String,
    pub shards: BTreeMap<String, ShardCheckpoint>,
}

#[derive(Debug, Clone)]
pub struct CheckpointStore {
    dir: PathBuf,
}

impl CheckpointStore {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    fn path(&self, table: &str) -> PathBuf {
        self.dir.join(format!("{table}.json"))
    }

    /// The table's checkpoints, or fresh ones when none exist or the stream changed (a
    /// recreated table has a new stream and starts from its beginning).
    pub fn load(&self, table: &str, stream_arn: &str) -> std::io::Result<TableCheckpoint> {
        match std::fs::read(self.path(table)) {
            Ok(bytes) => {
                let cp: TableCheckpoint = serde_json::from_slice(&bytes)
                    .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
                Ok(if cp.stream_arn == stream_arn {
                    cp
                } else {
                    TableCheckpoint {
                        stream_arn: stream_arn.to_owned(),
                        ..TableCheckpoint::default()
                    }
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(TableCheckpoint {
                stream_arn: stream_arn.to_owned(),
                ..TableCheckpoint::default()
            }),
            Err(e) => Err(e),
        }
    }

    /// Writes atomically (see [`write_atomically`]).
    pub fn save(&self, table: &str, checkpoint: &TableCheckpoint) -> std::io::Result<()> {
        let bytes = serde_json::to_vec_pretty(checkpoint).map_err(std::io::Error::other)?;
        write_atomically(&self.path(table), &bytes)
    }
}

/// Replaces `path` with `bytes` so that a crash leaves the old file or the new one, never
/// a part: a temporary file beside it, synced, renamed over it, and the directory synced.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = tmp_path(path);
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

fn tmp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_survive_a_restart_and_reset_for_a_new_stream() {
        let dir = tempfile::tempdir().unwrap();
        let store = CheckpointStore::new(dir.path());
        let mut cp = store.load("products", "arn:1").unwrap();
        cp.shards.insert(
            "shard-1".into(),
            ShardCheckpoint {
                last_seq: Some("42".into()),
                finished: false,
                trimmed_gap: None,
            },
        );
        store.save("products", &cp).unwrap();
        assert_eq!(
            CheckpointStore::new(dir.path())
                .load("products", "arn:1")
                .unwrap(),
            cp
        );
        assert!(store.load("products", "arn:2").unwrap().shards.is_empty());
    }
}
