//! The tenants file where a deployment keeps it: a local path, or an S3 object
//! (`s3://bucket/key`, next to the lake, encrypted by the bucket's KMS default).
//!
//! Every read comes with the file's version (the object's ETag, or a local file's
//! modification time and length), so a long-running process can ask cheaply whether it
//! changed (one `HeadObject`) and an editor can write only over the version it read (a
//! conditional `PutObject`), never over someone else's change.

use std::path::PathBuf;

use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata};

/// Where the file is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Location {
    Path(PathBuf),
    S3 { bucket: String, key: String },
}

/// An opaque version of the file: equal versions mean the same content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version(String);

#[derive(Debug, thiserror::Error)]
pub enum TenantsFileError {
    #[error("cannot read tenants file {location}: {reason}")]
    Read { location: String, reason: String },
    #[error("cannot write tenants file {location}: {reason}")]
    Write { location: String, reason: String },
    /// Someone else changed the file since it was read: read it again and redo the edit.
    #[error("tenants file {0} changed since it was read; run the command again")]
    Changed(String),
    #[error("tenants file {0} does not exist")]
    Missing(String),
}

impl TenantsFileError {
    /// Worth retrying as it is (a network or service failure), as opposed to a file
    /// that is missing, changed under the editor, or not readable as text.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Read { .. } | Self::Write { .. })
    }
}

/// The tenants file of one process.
#[derive(Debug, Clone)]
pub struct TenantsFile {
    location: Location,
    shown: String,
    s3: Option<aws_sdk_s3::Client>,
}

impl TenantsFile {
    /// `location` is a path or `s3://bucket/key`; S3 is reached with `shared` (path-style
    /// addressing for S3-compatible stores when `force_path_style`).
    pub fn new(location: &str, shared: &aws_config::SdkConfig, force_path_style: bool) -> Self {
        let parsed = location
            .strip_prefix("s3://")
            .and_then(|rest| rest.split_once('/'))
            .filter(|(bucket, key)| !bucket.is_empty() && !key.is_empty());
        let (place, s3) = match parsed {
            Some((bucket, key)) => (
                Location::S3 {
                    bucket: bucket.to_owned(),
                    key: key.to_owned(),
                },
                Some(aws_sdk_s3::Client::from_conf(
                    aws_sdk_s3::config::Builder::from(shared)
                        .force_path_style(force_path_style)
                        .build(),
                )),
            ),
            None => (Location::Path(PathBuf::from(location)), None),
        };
        Self {
            location: place,
            shown: location.to_owned(),
            s3,
        }
    }

    /// A file on the local file system.
    pub fn local(path: &std::path::Path) -> Self {
        Self {
            location: Location::Path(path.to_owned()),
            shown: path.display().to_string(),
            s3: None,
        }
    }

    /// Where the file is, as configured.
    pub fn location(&self) -> &str {
        &self.shown
    }

    fn read_error(&self, reason: impl Into<String>) -> TenantsFileError {
        TenantsFileError::Read {
            location: self.shown.clone(),
            reason: reason.into(),
        }
    }

    /// The file's text and version.
    pub async fn read(&self) -> Result<(String, Version), TenantsFileError> {
        match (&self.location, &self.s3) {
            (Location::S3 { bucket, key }, Some(s3)) => {
                let object = match s3.get_object().bucket(bucket).key(key).send().await {
                    Ok(object) => object,
                    Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_key()) => {
                        return Err(TenantsFileError::Missing(self.shown.clone()));
                    }
                    Err(e) => return Err(self.read_error(DisplayErrorContext(e).to_string())),
                };
                let version = Version(object.e_tag().unwrap_or_default().to_owned());
                let bytes = object
                    .body
                    .collect()
                    .await
                    .map_err(|e| self.read_error(e.to_string()))?
                    .into_bytes();
                let text = String::from_utf8(bytes.to_vec())
                    .map_err(|e| self.read_error(e.to_string()))?;
                Ok((text, version))
            }
            (Location::Path(path), _) => {
                // One read gives both, so the version is that of the text returned.
                let bytes = self.read_local(path)?;
                let version = content_version(&bytes);
                let text = String::from_utf8(bytes).map_err(|e| self.read_error(e.to_string()))?;
                Ok((text, version))
            }
            (Location::S3 { .. }, None) => Err(self.read_error("no S3 client")),
        }
    }

    /// The file's current version: one `HeadObject` in S3 (not the content); a local
    /// file is read and hashed (a modification time may not tick between two quick
    /// edits of the same length).
    pub async fn version(&self) -> Result<Version, TenantsFileError> {
        match (&self.location, &self.s3) {
            (Location::S3 { bucket, key }, Some(s3)) => {
                match s3.head_object().bucket(bucket).key(key).send().await {
                    Ok(head) => Ok(Version(head.e_tag().unwrap_or_default().to_owned())),
                    Err(e) if e.as_service_error().is_some_and(|e| e.is_not_found()) => {
                        Err(TenantsFileError::Missing(self.shown.clone()))
                    }
                    Err(e) => Err(self.read_error(DisplayErrorContext(e).to_string())),
                }
            }
            (Location::Path(path), _) => Ok(content_version(&self.read_local(path)?)),
            (Location::S3 { .. }, None) => Err(self.read_error("no S3 client")),
        }
    }

    fn read_local(&self, path: &std::path::Path) -> Result<Vec<u8>, TenantsFileError> {
        match std::fs::read(path) {
            Ok(bytes) => Ok(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(TenantsFileError::Missing(self.shown.clone()))
            }
            Err(e) => Err(self.read_error(e.to_string())),
        }
    }

    /// Writes `text` if the file is still at `expected` (`None`: only if it does not
    /// exist yet); its new version.
    pub async fn write(
        &self,
        text: &str,
        expected: Option<&Version>,
    ) -> Result<Version, TenantsFileError> {
        let write_error = |reason: String| TenantsFileError::Write {
            location: self.shown.clone(),
            reason,
        };
        match (&self.location, &self.s3) {
            (Location::S3 { bucket, key }, Some(s3)) => {
                let put = s3
                    .put_object()
                    .bucket(bucket)
                    .key(key)
                    .content_type("application/toml")
                    .body(text.as_bytes().to_vec().into());
                let put = match expected {
                    Some(version) => put.if_match(&version.0),
                    None => put.if_none_match("*"),
                };
                match put.send().await {
                    Ok(out) => Ok(Version(out.e_tag().unwrap_or_default().to_owned())),
                    Err(e) => {
                        let code = e.as_service_error().and_then(|e| e.code()).or_else(|| {
                            e.raw_response()
                                .filter(|r| r.status().as_u16() == 412)
                                .map(|_| "PreconditionFailed")
                        });
                        if matches!(
                            code,
                            Some("PreconditionFailed" | "ConditionalRequestConflict")
                        ) {
                            Err(TenantsFileError::Changed(self.shown.clone()))
                        } else {
                            Err(write_error(DisplayErrorContext(e).to_string()))
                        }
                    }
                }
            }
            (Location::Path(path), _) => {
                // Check and rename under an exclusive lock of a file beside it, so that two
                // editors cannot both pass the check and the second overwrite the first.
                // The lock goes with the file handle (also if this process dies).
                let lock_path = {
                    let mut name = path.file_name().unwrap_or_default().to_os_string();
                    name.push(".lock");
                    path.with_file_name(name)
                };
                let lock = std::fs::OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(&lock_path)
                    .and_then(|f| f.lock().map(|()| f))
                    .map_err(|e| write_error(format!("locking {}: {e}", lock_path.display())))?;
                let current = match self.version().await {
                    Ok(v) => Some(v),
                    Err(TenantsFileError::Missing(_)) => None,
                    Err(e) => return Err(e),
                };
                if current.as_ref() != expected {
                    return Err(TenantsFileError::Changed(self.shown.clone()));
                }
                // Written aside and renamed over, so a reader never sees half a file.
                let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
                let dir = dir.unwrap_or_else(|| std::path::Path::new("."));
                let mut tmp =
                    tempfile::NamedTempFile::new_in(dir).map_err(|e| write_error(e.to_string()))?;
                // The new file keeps the old one's permissions (a temporary file is 0600,
                // which a server running as another user could not read).
                if let Ok(meta) = std::fs::metadata(path) {
                    tmp.as_file()
                        .set_permissions(meta.permissions())
                        .map_err(|e| write_error(e.to_string()))?;
                }
                std::io::Write::write_all(&mut tmp, text.as_bytes())
                    .and_then(|()| tmp.as_file().sync_all())
                    .map_err(|e| write_error(e.to_string()))?;
                tmp.persist(path)
                    .map_err(|e| write_error(e.error.to_string()))?;
                drop(lock);
                Ok(content_version(text.as_bytes()))
            }
            (Location::S3 { .. }, None) => Err(write_error("no S3 client".to_owned())),
        }
    }
}

/// A local file's version: a hash of its content, and its length.
fn content_version(bytes: &[u8]) -> Version {
    let mut hasher = std::hash::DefaultHasher::new();
    std::hash::Hash::hash(bytes, &mut hasher);
    Version(format!(
        "{:016x}-{}",
        std::hash::Hasher::finish(&hasher),
        bytes.len()
    ))
}
