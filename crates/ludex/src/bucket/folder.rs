//! The local-folder bucket: each object is a regular file under one root folder. Every path is
//! walked one component at a time from the root's open handle, and no component is ever a
//! symbolic link that gets followed (`O_NOFOLLOW` on each step), so nothing dropped into the
//! folder — a link to `/etc/passwd`, a linked directory — makes ludex read or write outside it.
//! Links, pipes and devices are refused when named and skipped (with a warning) when listed.

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;
use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::path::Path;

/// Why a key cannot be reached in the folder.
#[derive(Debug, thiserror::Error)]
pub enum FolderError {
    #[error("no object at {0}")]
    NotFound(String),
    #[error("{0} is (or passes through) a symbolic link; the bucket folder never follows links")]
    Symlink(String),
    #[error("{0} is not a regular file")]
    NotAFile(String),
    #[error("{key}: {source}")]
    Io { key: String, source: io::Error },
}

/// Listing never goes deeper than this many folders (keys are short paths).
const MAX_DEPTH: usize = 32;

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

pub struct Folder {
    root: OwnedFd,
}

/// A key split into its folders and its file name; keys are checked by the caller
/// (`object_store::path::Path::parse`: no empty, `.` or `..` segment).
fn split(key: &str) -> (Vec<&str>, &str) {
    let mut parts: Vec<&str> = key.split('/').collect();
    let name = parts.pop().unwrap_or_default();
    (parts, name)
}

impl Folder {
    /// Opens (and creates) the root folder. The root itself is the operator's choice and may
    /// be reached through a link; nothing below it is.
    pub fn open(root: &Path) -> io::Result<Self> {
        std::fs::create_dir_all(root)?;
        let root = rustix::fs::open(
            root,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Self { root })
    }

    fn error(key: &str, at: &OwnedFd, name: &str, e: Errno) -> FolderError {
        let is_link = || {
            rustix::fs::statat(at, name, AtFlags::SYMLINK_NOFOLLOW)
                .is_ok_and(|s| FileType::from_raw_mode(s.st_mode) == FileType::Symlink)
        };
        match e {
            Errno::NOENT => FolderError::NotFound(key.to_owned()),
            Errno::LOOP | Errno::NOTDIR if is_link() => FolderError::Symlink(key.to_owned()),
            Errno::NOTDIR => FolderError::NotFound(key.to_owned()),
            e => FolderError::Io {
                key: key.to_owned(),
                source: e.into(),
            },
        }
    }

    /// The open folder `dirs` below the root, created when missing if `create`.
    fn folder(&self, key: &str, dirs: &[&str], create: bool) -> Result<OwnedFd, FolderError> {
        let mut at = rustix::fs::openat(&self.root, ".", DIR_FLAGS, Mode::empty())
            .map_err(|e| Self::error(key, &self.root, ".", e))?;
        for name in dirs {
            let mut opened = rustix::fs::openat(&at, *name, DIR_FLAGS, Mode::empty());
            if create && matches!(opened, Err(Errno::NOENT)) {
                match rustix::fs::mkdirat(&at, *name, Mode::from_raw_mode(0o755)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(Self::error(key, &at, name, e)),
                }
                opened = rustix::fs::openat(&at, *name, DIR_FLAGS, Mode::empty());
            }
            at = opened.map_err(|e| Self::error(key, &at, name, e))?;
        }
        Ok(at)
    }

    /// Opens the regular file at `key` for reading.
    pub fn open_file(&self, key: &str) -> Result<File, FolderError> {
        let (dirs, name) = split(key);
        let at = self.folder(key, &dirs, false)?;
        // Non-blocking, so that a named pipe cannot hang the open; cleared for the read.
        let fd = rustix::fs::openat(
            &at,
            name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK,
            Mode::empty(),
        )
        .map_err(|e| Self::error(key, &at, name, e))?;
        let io = |e: Errno| FolderError::Io {
            key: key.to_owned(),
            source: e.into(),
        };
        let stat = rustix::fs::fstat(&fd).map_err(io)?;
        if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
            return Err(FolderError::NotAFile(key.to_owned()));
        }
        rustix::fs::fcntl_setfl(&fd, OFlags::empty()).map_err(io)?;
        Ok(File::from(fd))
    }

    /// Creates a hidden temporary file beside `key` (creating its folders); [`Self::commit`]
    /// renames it into place, so readers see the object whole or not at all.
    pub fn create_temp(&self, key: &str) -> Result<TempFile, FolderError> {
        let (dirs, name) = split(key);
        let at = self.folder(key, &dirs, true)?;
        let mut random = [0u8; 8];
        getrandom::fill(&mut random).map_err(|e| FolderError::Io {
            key: key.to_owned(),
            source: io::Error::other(e.to_string()),
        })?;
        let temp = format!(".{name}.{}.part", u64::from_le_bytes(random));
        let fd = rustix::fs::openat(
            &at,
            temp.as_str(),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o644),
        )
        .map_err(|e| Self::error(key, &at, &temp, e))?;
        Ok(TempFile {
            file: File::from(fd),
            at,
            temp,
            name: name.to_owned(),
            key: key.to_owned(),
            committed: false,
        })
    }

    /// Removes the file at `key`; a missing one is not an error. A link is removed itself,
    /// never what it points to.
    pub fn remove(&self, key: &str) -> Result<(), FolderError> {
        let (dirs, name) = split(key);
        let at = match self.folder(key, &dirs, false) {
            Err(FolderError::NotFound(_)) => return Ok(()),
            other => other?,
        };
        match rustix::fs::unlinkat(&at, name, AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => Ok(()),
            Err(e) => Err(Self::error(key, &at, name, e)),
        }
    }

    /// The keys of the regular files below the folder `prefix`, in no particular order.
    /// Links and other special files are skipped with a warning.
    pub fn list(&self, prefix: &str) -> Result<Vec<String>, FolderError> {
        let dirs: Vec<&str> = prefix.split('/').filter(|s| !s.is_empty()).collect();
        let top = match self.folder(prefix, &dirs, false) {
            Err(FolderError::NotFound(_)) => return Ok(Vec::new()),
            other => other?,
        };
        let mut keys = Vec::new();
        let mut pending = vec![(top, dirs.join("/"), 0usize)];
        while let Some((at, path, depth)) = pending.pop() {
            let io = |e: Errno| FolderError::Io {
                key: path.clone(),
                source: e.into(),
            };
            for entry in rustix::fs::Dir::read_from(&at).map_err(io)? {
                let entry = entry.map_err(io)?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if name == "." || name == ".." {
                    continue;
                }
                let key = if path.is_empty() {
                    name.clone()
                } else {
                    format!("{path}/{name}")
                };
                let kind = match entry.file_type() {
                    FileType::Unknown => {
                        rustix::fs::statat(&at, name.as_str(), AtFlags::SYMLINK_NOFOLLOW)
                            .map_or(FileType::Unknown, |s| FileType::from_raw_mode(s.st_mode))
                    }
                    kind => kind,
                };
                match kind {
                    FileType::RegularFile => keys.push(key),
                    FileType::Directory if depth < MAX_DEPTH => {
                        match rustix::fs::openat(&at, name.as_str(), DIR_FLAGS, Mode::empty()) {
                            Ok(dir) => pending.push((dir, key, depth + 1)),
                            Err(e) => {
                                tracing::warn!(key, error = %e, "skipped a folder of the bucket")
                            }
                        }
                    }
                    FileType::Symlink => {
                        tracing::warn!(
                            key,
                            "skipped a symbolic link in the bucket folder; links are never followed"
                        );
                    }
                    _ => tracing::warn!(
                        key,
                        "skipped an entry of the bucket folder that is not a regular file"
                    ),
                }
            }
        }
        Ok(keys)
    }
}

/// A file being written beside its final name.
pub struct TempFile {
    pub file: File,
    at: OwnedFd,
    temp: String,
    name: String,
    key: String,
    committed: bool,
}

impl TempFile {
    /// Moves the finished file to its key (replacing what was there, a link included: the
    /// link is replaced, not followed).
    pub fn commit(mut self) -> Result<(), FolderError> {
        self.file.sync_data().map_err(|source| FolderError::Io {
            key: self.key.clone(),
            source,
        })?;
        rustix::fs::renameat(&self.at, self.temp.as_str(), &self.at, self.name.as_str()).map_err(
            |e| FolderError::Io {
                key: self.key.clone(),
                source: e.into(),
            },
        )?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        // Abandoned (an error or an aborted upload): remove the partial file.
        if !self.committed {
            let _ = rustix::fs::unlinkat(&self.at, self.temp.as_str(), AtFlags::empty());
        }
    }
}
