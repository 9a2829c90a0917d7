//! API keys: random 256-bit secrets shown once; only their BLAKE3 hashes are kept, in a JSON
//! key file locally (`DATA_DIR/api-keys.json`) or in an SSM parameter on AWS, in one format:
//!
//! ```json
//! [{"name": "ci", "scope": "write", "hash": "blake3:…", "created_at": "…", "revoked": false}]
//! ```

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Duration;
// tokio's clock, which tests can pause and advance.
use tokio::time::Instant;

/// What a key may do. Writes include reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Read,
    Write,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyEntry {
    pub name: String,
    pub scope: Scope,
    /// `blake3:` and the hex digest of the key.
    pub hash: String,
    pub created_at: String,
    #[serde(default)]
    pub revoked: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the key file {path} is not valid: {reason}")]
    Invalid { path: String, reason: String },
    #[error("cannot read or write the key file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("no key named {0:?}")]
    UnknownName(String),
    #[error("a key named {0:?} already exists")]
    DuplicateName(String),
    #[error("the system random number generator failed: {0}")]
    Random(String),
    #[error("cannot load the API keys from {from}: {reason}")]
    Load { from: String, reason: String },
}

/// The hash a key is stored and looked up by.
pub fn hash_of(key: &str) -> blake3::Hash {
    blake3::hash(key.as_bytes())
}

/// What a valid key grants: its scope, and its name, which the history records as the
/// author of the key's writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Access {
    pub scope: Scope,
    pub name: String,
}

/// The keys a server accepts, loaded once at start.
#[derive(Clone, Debug, Default)]
pub struct KeyRing {
    active: Vec<(blake3::Hash, Access)>,
}

impl KeyRing {
    pub fn new(entries: &[KeyEntry]) -> Result<Self, String> {
        let mut active = Vec::new();
        for entry in entries.iter().filter(|e| !e.revoked) {
            let hex = entry
                .hash
                .strip_prefix("blake3:")
                .ok_or_else(|| format!("key {:?}: the hash must start with blake3:", entry.name))?;
            let hash =
                blake3::Hash::from_hex(hex).map_err(|e| format!("key {:?}: {e}", entry.name))?;
            active.push((
                hash,
                Access {
                    scope: entry.scope,
                    name: entry.name.clone(),
                },
            ));
        }
        Ok(Self { active })
    }

    pub fn from_json(text: &str) -> Result<Self, String> {
        let entries: Vec<KeyEntry> = serde_json::from_str(text).map_err(|e| e.to_string())?;
        Self::new(&entries)
    }

    /// The scope of a presented key, comparing against every stored hash in constant time.
    pub fn check(&self, presented: &str) -> Option<Scope> {
        self.check_hash(&hash_of(presented))
            .map(|access| access.scope)
    }

    /// What the key with this hash grants (see [`hash_of`]).
    pub fn check_hash(&self, hash: &blake3::Hash) -> Option<Access> {
        // No early exit: the time taken does not depend on which entry matched.
        self.active.iter().fold(None, |found, (stored, access)| {
            if stored == hash {
                Some(access.clone())
            } else {
                found
            }
        })
    }
}

/// A secret text fetched from elsewhere than a local file, such as an SSM parameter on Lambda:
/// the key file's JSON, or the session secret.
#[async_trait::async_trait]
pub trait KeySource: Send + Sync + std::fmt::Debug {
    /// The text.
    async fn fetch(&self) -> Result<String, String>;
    /// What the keys come from, for messages: e.g. `the SSM parameter /ludex/dev/api-keys`.
    fn describe(&self) -> String;
}

/// The key ring a server checks against. Built from a key file it follows the file: each check
/// looks at the file's modification time (one `stat`) and reloads it when it changed, so a key
/// created or revoked with `ludex keys` takes effect on the next request. Built from a
/// [`KeySource`] it is fetched by [`Keys::load`] when a request first presents a key, and
/// fetched again once it is older than its maximum age, so a revoked key stops working within
/// that age.
#[derive(Debug, Default)]
pub struct Keys {
    ring: std::sync::RwLock<KeyRing>,
    file: Option<Followed>,
    fetched: Option<Fetched>,
}

#[derive(Debug)]
struct Fetched {
    source: Box<dyn KeySource>,
    max_age: Duration,
    /// Until when the ring needs no fetch; `None` until the first fetch succeeded.
    fresh_until: std::sync::Mutex<Option<Instant>>,
    /// Held while fetching, so concurrent requests wait for one fetch instead of each making one.
    fetching: tokio::sync::Mutex<()>,
}

/// After a failed refresh, the ring already loaded is kept and the next fetch waits this long
/// (or the maximum age, if shorter): a failing parameter store is not asked on every request.
const REFRESH_RETRY: Duration = Duration::from_secs(30);

impl Fetched {
    fn fresh_until(&self) -> Option<Instant> {
        *self
            .fresh_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn set_fresh_until(&self, until: Instant) {
        *self
            .fresh_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(until);
    }
}

#[derive(Debug)]
struct Followed {
    path: std::path::PathBuf,
    modified: std::sync::Mutex<Option<std::time::SystemTime>>,
}

fn modified(path: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

impl Keys {
    /// A fixed ring (keys from configuration).
    pub fn new(ring: KeyRing) -> Self {
        Self {
            ring: std::sync::RwLock::new(ring),
            file: None,
            fetched: None,
        }
    }

    /// Keys fetched from `source` on first use and again once older than `max_age` (see
    /// [`Keys::load`]); none until the first fetch.
    pub fn fetched(source: impl KeySource + 'static, max_age: Duration) -> Self {
        Self {
            fetched: Some(Fetched {
                source: Box::new(source),
                max_age,
                fresh_until: std::sync::Mutex::new(None),
                fetching: tokio::sync::Mutex::new(()),
            }),
            ..Self::default()
        }
    }

    /// Fetches the keys of a [`Keys::fetched`] ring when it has none yet or they are older than
    /// its maximum age; does nothing for the other kinds. Called before checking a presented
    /// key: a request without one needs no keys, so a cold start does not wait for them.
    ///
    /// Fails only while no fetch has ever succeeded. When a refresh fails, the keys already
    /// loaded stay in use (logged as a warning) and the fetch is retried after
    /// `min(30 s, max age)`: an outage of the parameter store does not lock every client out.
    pub async fn load(&self) -> Result<(), KeyError> {
        let Some(fetched) = &self.fetched else {
            return Ok(());
        };
        let is_fresh = || {
            fetched
                .fresh_until()
                .is_some_and(|until| Instant::now() < until)
        };
        if is_fresh() {
            return Ok(());
        }
        let _fetching = fetched.fetching.lock().await;
        if is_fresh() {
            return Ok(()); // another request fetched while this one waited
        }
        let failed = |reason| KeyError::Load {
            from: fetched.source.describe(),
            reason,
        };
        let ring = match fetched.source.fetch().await {
            Ok(text) => KeyRing::from_json(&text).map_err(failed),
            Err(reason) => Err(failed(reason)),
        };
        match ring {
            Ok(ring) => {
                *self
                    .ring
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = ring;
                fetched.set_fresh_until(Instant::now() + fetched.max_age);
                tracing::info!(from = %fetched.source.describe(), "API keys loaded");
                Ok(())
            }
            Err(error) if fetched.fresh_until().is_some() => {
                fetched.set_fresh_until(Instant::now() + REFRESH_RETRY.min(fetched.max_age));
                tracing::warn!(%error, "keeping the API keys loaded before");
                Ok(())
            }
            Err(error) => Err(error),
        }
    }

    /// The keys of a key file, followed as it changes.
    pub fn from_file(path: &Path) -> Result<Self, KeyError> {
        let seen = modified(path);
        Ok(Self {
            ring: std::sync::RwLock::new(KeyFile::new(path).ring()?),
            file: Some(Followed {
                path: path.to_owned(),
                modified: std::sync::Mutex::new(seen),
            }),
            fetched: None,
        })
    }

    fn follow(&self) {
        let Some(file) = &self.file else { return };
        let now = modified(&file.path);
        let mut seen = file
            .modified
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if *seen == now {
            return;
        }
        match KeyFile::new(&file.path).ring() {
            Ok(ring) => {
                *self
                    .ring
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = ring;
                *seen = now;
                tracing::info!(file = %file.path.display(), "API keys reloaded");
            }
            // A half-edited file keeps the previous keys; the next check tries again.
            Err(e) => tracing::error!(error = %e, "API keys not reloaded"),
        }
    }

    /// The scope of a presented key, after fetching the keys when they are due (see
    /// [`Keys::load`]). What a request that presents a key asks.
    pub async fn scope_of(&self, presented: &str) -> Result<Option<Scope>, KeyError> {
        Ok(self.access_of(presented).await?.map(|access| access.scope))
    }

    /// What a presented key grants, as [`Keys::scope_of`].
    pub async fn access_of(&self, presented: &str) -> Result<Option<Access>, KeyError> {
        self.access_of_hash(&hash_of(presented)).await
    }

    /// What the key with this hash grants, as [`Keys::access_of`]: what a session, which
    /// holds only its key's hash, asks.
    pub async fn access_of_hash(&self, hash: &blake3::Hash) -> Result<Option<Access>, KeyError> {
        self.load().await?;
        Ok(self.check_hash(hash))
    }

    /// The scope of a presented key in the keys as they are now, fetching nothing.
    pub fn check(&self, presented: &str) -> Option<Scope> {
        self.check_hash(&hash_of(presented))
            .map(|access| access.scope)
    }

    fn check_hash(&self, hash: &blake3::Hash) -> Option<Access> {
        self.follow();
        self.ring
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .check_hash(hash)
    }
}

/// The local key file.
pub struct KeyFile<'a> {
    path: &'a Path,
}

impl<'a> KeyFile<'a> {
    pub fn new(path: &'a Path) -> Self {
        Self { path }
    }

    fn io(&self, source: std::io::Error) -> KeyError {
        KeyError::Io {
            path: self.path.display().to_string(),
            source,
        }
    }

    pub fn load(&self) -> Result<Vec<KeyEntry>, KeyError> {
        match std::fs::read_to_string(self.path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| KeyError::Invalid {
                path: self.path.display().to_string(),
                reason: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(self.io(e)),
        }
    }

    pub fn ring(&self) -> Result<KeyRing, KeyError> {
        KeyRing::new(&self.load()?).map_err(|reason| KeyError::Invalid {
            path: self.path.display().to_string(),
            reason,
        })
    }

    /// Takes the key file's lock (an exclusive `flock` on `PATH.lock`, held until the
    /// returned file is dropped): changes are read, made and written by one process at a
    /// time, so two `keys create` at the same moment both keep their key.
    fn lock(&self) -> Result<std::fs::File, KeyError> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| self.io(e))?;
        }
        let mut name = self.path.as_os_str().to_owned();
        name.push(".lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(std::path::PathBuf::from(name))
            .map_err(|e| self.io(e))?;
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| self.io(e.into()))?;
        Ok(lock)
    }

    /// Replaces the key file with `entries`. Call with the lock held.
    fn save(&self, entries: &[KeyEntry]) -> Result<(), KeyError> {
        use std::io::Write as _;
        let text = serde_json::to_string_pretty(entries).map_err(|e| KeyError::Invalid {
            path: self.path.display().to_string(),
            reason: e.to_string(),
        })?;
        // Written beside, flushed to disk and renamed, so a crash never leaves half a key
        // file.
        let tmp = self.path.with_extension("json.tmp");
        let mut file = std::fs::File::create(&tmp).map_err(|e| self.io(e))?;
        restrict_permissions(&tmp).map_err(|e| self.io(e))?;
        file.write_all((text + "\n").as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| self.io(e))?;
        std::fs::rename(&tmp, self.path).map_err(|e| self.io(e))
    }

    /// Creates a key and returns it; only its hash is stored.
    pub fn create(
        &self,
        name: &str,
        scope: Scope,
        now: String,
    ) -> Result<(String, KeyEntry), KeyError> {
        let _lock = self.lock()?;
        let mut entries = self.load()?;
        if entries.iter().any(|e| e.name == name && !e.revoked) {
            return Err(KeyError::DuplicateName(name.to_owned()));
        }
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(|e| KeyError::Random(e.to_string()))?;
        let key = format!("ludex_{}", URL_SAFE_NO_PAD.encode(secret));
        let entry = KeyEntry {
            name: name.to_owned(),
            scope,
            hash: format!("blake3:{}", hash_of(&key).to_hex()),
            created_at: now,
            revoked: false,
        };
        entries.push(entry.clone());
        self.save(&entries)?;
        Ok((key, entry))
    }

    pub fn revoke(&self, name: &str) -> Result<(), KeyError> {
        let _lock = self.lock()?;
        let mut entries = self.load()?;
        let mut found = false;
        for entry in entries.iter_mut().filter(|e| e.name == name && !e.revoked) {
            entry.revoked = true;
            found = true;
        }
        if !found {
            return Err(KeyError::UnknownName(name.to_owned()));
        }
        self.save(&entries)
    }
}

#[cfg(unix)]
fn restrict_permissions(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
}

#[cfg(not(unix))]
fn restrict_permissions(_: &Path) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_keys_are_checked_by_hash_and_revoked_keys_stop_working() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("api-keys.json");
        let file = KeyFile::new(&path);
        let (writer, entry) = file.create("ci", Scope::Write, "now".into()).unwrap();
        let (reader, _) = file.create("dashboard", Scope::Read, "now".into()).unwrap();
        let stored = std::fs::read_to_string(&path).unwrap();
        assert!(!stored.contains(&writer), "the key itself is never stored");
        assert!(stored.contains(&entry.hash));

        let ring = file.ring().unwrap();
        assert_eq!(ring.check(&writer), Some(Scope::Write));
        assert_eq!(ring.check(&reader), Some(Scope::Read));
        assert_eq!(ring.check("ludex_wrong"), None);
        assert!(matches!(
            file.create("ci", Scope::Read, "now".into()),
            Err(KeyError::DuplicateName(_))
        ));

        let followed = Keys::from_file(&path).unwrap();
        let (late, _) = file.create("late", Scope::Write, "now".into()).unwrap();
        assert_eq!(
            followed.check(&late),
            Some(Scope::Write),
            "a new key works at once"
        );

        file.revoke("ci").unwrap();
        assert_eq!(file.ring().unwrap().check(&writer), None);
        assert_eq!(followed.check(&writer), None, "a revoked key stops at once");
        assert!(matches!(file.revoke("ci"), Err(KeyError::UnknownName(_))));
    }

    #[derive(Debug)]
    struct Parameter {
        text: std::sync::Mutex<Result<String, String>>,
        fetches: std::sync::atomic::AtomicUsize,
    }

    #[async_trait::async_trait]
    impl KeySource for std::sync::Arc<Parameter> {
        async fn fetch(&self) -> Result<String, String> {
            self.fetches
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.text.lock().unwrap().clone()
        }
        fn describe(&self) -> String {
            "the test parameter".into()
        }
    }

    fn ring_json(keys: &[(&str, &str)]) -> String {
        let entries: Vec<String> = keys
            .iter()
            .map(|(name, key)| {
                format!(
                    r#"{{"name":"{name}","scope":"read","hash":"blake3:{}","created_at":"x"}}"#,
                    blake3::hash(key.as_bytes()).to_hex()
                )
            })
            .collect();
        format!("[{}]", entries.join(","))
    }

    // The clock is tokio's, paused: time moves only by `advance`.
    #[tokio::test(start_paused = true)]
    async fn fetched_keys_are_loaded_on_first_use_refreshed_when_old_and_kept_through_failures() {
        let (old, new) = ("ludex_old", "ludex_new");
        let parameter = std::sync::Arc::new(Parameter {
            text: std::sync::Mutex::new(Err("throttled".into())),
            fetches: Default::default(),
        });
        let fetches = || parameter.fetches.load(std::sync::atomic::Ordering::SeqCst);
        let set = |text: Result<String, String>| *parameter.text.lock().unwrap() = text;
        let keys = Keys::fetched(parameter.clone(), Duration::from_secs(300));
        assert_eq!(keys.check(old), None, "nothing is fetched before load");
        assert_eq!(fetches(), 0);

        let error = keys.load().await.unwrap_err().to_string();
        assert_eq!(
            error,
            "cannot load the API keys from the test parameter: throttled"
        );
        set(Ok(ring_json(&[("old", old)])));
        keys.load().await.unwrap();
        keys.load().await.unwrap();
        assert_eq!(keys.check(old), Some(Scope::Read));
        assert_eq!(fetches(), 2, "fetched again after the failure, then not");

        // `old` is revoked and `new` created: both show once the ring is older than its age.
        set(Ok(ring_json(&[("new", new)])));
        tokio::time::advance(Duration::from_secs(299)).await;
        keys.load().await.unwrap();
        assert_eq!((keys.check(old), fetches()), (Some(Scope::Read), 2));
        tokio::time::advance(Duration::from_secs(2)).await;
        // What request paths call: fetch when due, then check.
        assert_eq!(
            keys.scope_of(old).await.unwrap(),
            None,
            "a revoked key stops after the max age"
        );
        assert_eq!(fetches(), 3);
        assert_eq!(keys.check(new), Some(Scope::Read));

        // A failed refresh keeps the ring it has and asks again after 30 s, not at each request.
        set(Err("throttled".into()));
        tokio::time::advance(Duration::from_secs(301)).await;
        keys.load().await.unwrap();
        keys.load().await.unwrap();
        assert_eq!((keys.check(new), fetches()), (Some(Scope::Read), 4));
        set(Ok("not json".into()));
        tokio::time::advance(Duration::from_secs(31)).await;
        keys.load().await.unwrap();
        assert_eq!((keys.check(new), fetches()), (Some(Scope::Read), 5));
        set(Ok(ring_json(&[])));
        tokio::time::advance(Duration::from_secs(31)).await;
        keys.load().await.unwrap();
        assert_eq!((keys.check(new), fetches()), (None, 6));
    }

    #[test]
    fn a_key_ring_reads_the_shared_json_format() {
        let key = "ludex_example";
        let json = format!(
            r#"[{{"name":"a","scope":"write","hash":"blake3:{}","created_at":"x"}}]"#,
            blake3::hash(key.as_bytes()).to_hex()
        );
        assert_eq!(
            KeyRing::from_json(&json).unwrap().check(key),
            Some(Scope::Write)
        );
        assert!(
            KeyRing::from_json(
                r#"[{"name":"a","scope":"write","hash":"md5:00","created_at":"x"}]"#
            )
            .is_err()
        );
    }
}
