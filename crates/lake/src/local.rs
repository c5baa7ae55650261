//! The local-directory object sink: the same keys as S3, as files under a root.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;

use crate::sink::{ObjectKey, ObjectSink, SinkError};

/// Objects as files under `root`. A put writes a hidden temporary file beside the target,
/// syncs it and renames it over the target, so readers never see a partial object.
#[derive(Debug)]
pub struct LocalDirSink {
    root: PathBuf,
    tmp_counter: AtomicU64,
}

impl LocalDirSink {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            tmp_counter: AtomicU64::new(0),
        }
    }

    pub fn path_of(&self, key: &ObjectKey) -> PathBuf {
        key.segments().fold(self.root.clone(), |p, seg| p.join(seg))
    }
}

fn unavailable(e: std::io::Error) -> SinkError {
    SinkError::Unavailable(e.to_string())
}

fn write_atomically(target: &Path, tmp: &Path, body: &[u8]) -> std::io::Result<()> {
    let dir = target.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let result = (|| {
        let mut file = match std::fs::File::create(tmp) {
            // A delete pruned the directory just after it was made (it was empty).
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(dir)?;
                std::fs::File::create(tmp)?
            }
            other => other?,
        };
        file.write_all(body)?;
        file.sync_all()?;
        std::fs::rename(tmp, target)?;
        // The rename is durable only once the directory entry is.
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(tmp);
    }
    result
}

fn walk(dir: &Path, rel: &str, out: &mut Vec<String>) -> std::io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue; // temporary files of puts in flight
        }
        let child = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        if entry.file_type()?.is_dir() {
            walk(&entry.path(), &child, out)?;
        } else {
            out.push(child);
        }
    }
    Ok(())
}

#[async_trait]
impl ObjectSink for LocalDirSink {
    async fn put(&self, key: &ObjectKey, body: Vec<u8>) -> Result<(), SinkError> {
        let target = self.path_of(key);
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let n = self.tmp_counter.fetch_add(1, Ordering::Relaxed);
        let tmp = target.with_file_name(format!(".{name}.{}.{n}.tmp", std::process::id()));
        tokio::task::spawn_blocking(move || write_atomically(&target, &tmp, &body))
            .await
            .map_err(|e| SinkError::Unavailable(e.to_string()))?
            .map_err(unavailable)
    }

    async fn get(&self, key: &ObjectKey) -> Result<Option<Vec<u8>>, SinkError> {
        match tokio::fs::read(self.path_of(key)).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectKey>, SinkError> {
        // Walk from the deepest whole directory in the prefix, then filter by the rest.
        let dir_part = prefix.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
        let start = if dir_part.is_empty() {
            self.root.clone()
        } else {
            self.path_of(&ObjectKey::parse(dir_part)?)
        };
        let dir_part = dir_part.to_owned();
        let mut names = tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            walk(&start, &dir_part, &mut out).map(|()| out)
        })
        .await
        .map_err(|e| SinkError::Unavailable(e.to_string()))?
        .map_err(unavailable)?;
        names.retain(|n| n.starts_with(prefix));
        names.sort();
        names
            .iter()
            .map(|n| ObjectKey::parse(n).map_err(SinkError::from))
            .collect()
    }

    /// Removes the file, and the directories it leaves empty up to the root: a deleted
    /// partition (or a purged tenant) leaves no empty `tenant_id=…/dt=…/` behind, as in S3.
    async fn delete(&self, key: &ObjectKey) -> Result<(), SinkError> {
        let path = self.path_of(key);
        match tokio::fs::remove_file(&path).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(unavailable(e)),
        }
        let mut dir = path.parent();
        while let Some(d) = dir.filter(|d| *d != self.root && d.starts_with(&self.root)) {
            // Fails (and stops) at the first directory that still holds something.
            if tokio::fs::remove_dir(d).await.is_err() {
                break;
            }
            dir = d.parent();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_put_overwrites_and_leaves_no_temporary_files() {
        let dir = tempfile::tempdir().unwrap();
        let sink = LocalDirSink::new(dir.path());
        let key = ObjectKey::parse("lake/a/tenant_id=t/x.json.gz").unwrap();
        sink.put(&key, b"one".to_vec()).await.unwrap();
        sink.put(&key, b"two".to_vec()).await.unwrap();
        assert_eq!(sink.get(&key).await.unwrap().as_deref(), Some(&b"two"[..]));
        let files: Vec<_> = std::fs::read_dir(dir.path().join("lake/a/tenant_id=t"))
            .unwrap()
            .collect();
        assert_eq!(files.len(), 1, "temporary files were left behind");
        assert_eq!(sink.list("lake/").await.unwrap(), vec![key.clone()]);
        assert_eq!(sink.list("lake/a/tenant_id=u").await.unwrap(), vec![]);
        assert_eq!(
            sink.get(&ObjectKey::parse("lake/none").unwrap())
                .await
                .unwrap(),
            None
        );
        sink.delete(&key).await.unwrap();
        sink.delete(&key).await.unwrap();
        assert_eq!(sink.get(&key).await.unwrap(), None);
        assert_eq!(sink.list("lake/").await.unwrap(), vec![]);
    }
}
