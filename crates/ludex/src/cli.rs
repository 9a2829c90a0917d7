//! The `ludex` command line: every command reads its settings from flags or `LUDEX_*`
//! environment variables, opens the store and bucket once, and calls the library.

use crate::api::rate::{Limiters, RateLimits};
use crate::api::session::{SessionKey, SessionKeys};
use crate::api::{ApiConfig, AppState};
use crate::bucket::Bucket;
use crate::ingest::{
    Advance, IngestConfig, IngestError, IngestOutcome, Ingestor, Progress, Upload,
};
use crate::keys::{KeyFile, Keys, Scope};
use crate::metrics::Metrics;
use crate::settings::{Access, Location, Reporting};
use crate::store::{self, Stores};
use crate::synthetic;
use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use ludex_domain::report::IngestStatus;
use ludex_domain::upload::{ColumnMapping, UploadOptions};
use ludex_domain::{GameId, LedgerQuery, ListQuery, ParseLimits, Rating, Sort};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The exit codes of `ludex`, for scripts (listed in `ludex --help` and the README).
pub mod exit {
    /// Anything not listed below.
    pub const ERROR: u8 = 1;
    /// Some records were rejected (for a revert: some games were changed since, and left as
    /// they are); the rest landed.
    pub const REJECTED: u8 = 3;
    /// A file failed as a whole.
    pub const FILE_FAILED: u8 = 4;
    /// The store or the bucket is unavailable; trying again may work (`EX_TEMPFAIL`).
    pub const UNAVAILABLE: u8 = 75;

    /// The code an error ends `ludex` with: `UNAVAILABLE` when anything in its chain is a
    /// passing fault of the store or the bucket, `ERROR` otherwise.
    pub fn of_error(error: &anyhow::Error) -> u8 {
        use crate::bucket::BucketError;
        use crate::ingest::IngestError;
        use ludex_domain::StoreError;
        let passing = error.chain().any(|cause| {
            cause
                .downcast_ref::<StoreError>()
                .is_some_and(|e| matches!(e, StoreError::Unavailable(_)))
                || cause
                    .downcast_ref::<BucketError>()
                    .is_some_and(BucketError::is_transient)
                || cause
                    .downcast_ref::<IngestError>()
                    .is_some_and(IngestError::is_transient)
        });
        if passing { UNAVAILABLE } else { ERROR }
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "ludex",
    version,
    about = "A game catalog: ingest JSON files of games, then list, search and export them.",
    long_about = "A game catalog: ingest JSON files of games, then list, search and export them.\n\n\
        Everything is kept under the data directory (./ludex-data unless --data-dir says otherwise): \
        a SQLite database with the catalog and the ingest ledger, and a bucket folder where \
        rejects reports are written.",
    after_help = "Exit codes:\n  \
        0   success\n  \
        1   an error not listed below (bad settings, a game not found, an internal error)\n  \
        2   usage: an unknown option or a bad value\n  \
        3   ingested, but some records were rejected (the rest landed)\n  \
        4   a file failed as a whole (not JSON, too large, nothing landed)\n  \
        75  the store or the bucket is unavailable; trying again later may work"
)]
pub struct Cli {
    #[command(flatten)]
    pub settings: Settings,
    #[command(subcommand)]
    pub command: Command,
}

/// Where ludex keeps its data. Every flag has an environment variable.
#[derive(Debug, Args)]
pub struct Settings {
    /// Folder for the database and the bucket when --store/--bucket are not given.
    #[arg(
        long,
        global = true,
        env = "LUDEX_DATA_DIR",
        default_value = "ludex-data"
    )]
    pub data_dir: PathBuf,
    #[command(flatten)]
    pub location: Location,
    #[command(flatten)]
    pub reporting: Reporting,
    #[command(flatten)]
    pub history: crate::settings::HistoryRetention,
    /// Valid records written per store transaction.
    #[arg(long, global = true, env = "LUDEX_BATCH_SIZE", default_value_t = 3000)]
    pub batch_size: usize,
    /// Largest upload accepted, in bytes after decompression.
    #[arg(long, global = true, env = "LUDEX_MAX_UPLOAD_BYTES", default_value_t = 4 * 1024 * 1024 * 1024)]
    pub max_upload_bytes: u64,
    /// Seconds an ingest's claim on an upload lasts unless renewed: after a worker dies,
    /// another takes its upload over this long after its last renewal.
    #[arg(long, global = true, env = "LUDEX_INGEST_LEASE_SECONDS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub ingest_lease_seconds: u64,
    /// The API key file [default: DATA_DIR/api-keys.json]
    #[arg(long, global = true, env = "LUDEX_API_KEYS_FILE")]
    pub api_keys_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the store's tables and indexes (or bring them up to date) and say what was done.
    ///
    /// Every command does this on first use; `init` does only this, e.g. to prepare a
    /// PostgreSQL database before the first deployment: `ludex init --store postgres://…`.
    Init,
    /// Run the HTTP API and watch the bucket's uploads/ folder for files to ingest.
    ///
    /// Files copied into DATA_DIR/bucket/uploads (or sent to POST /uploads) are ingested
    /// within a second. Stops cleanly on Ctrl-C or SIGTERM.
    Serve(ServeArgs),
    /// Create, list and revoke the API keys that writes need.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Ingest JSON, JSON-array, NDJSON or CSV files (optionally .gz) into the catalog.
    ///
    /// Each file is parsed record by record: valid records land, invalid ones are printed
    /// with their line (or array index) and reason, and written to the bucket's rejects
    /// report. Ingesting the same file again changes nothing. Exits non-zero when any
    /// record was rejected or a file failed. On a terminal a progress bar shows the bytes read
    /// with rate and time left, and the records and rejects so far.
    Ingest {
        /// Files to ingest.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// How many rejects to print per file (all are in the report).
        #[arg(long, default_value_t = 100)]
        show_rejects: usize,
        /// Print one summary line per file: no progress bar, no rejects (they are in the
        /// report).
        #[arg(long, short, conflicts_with = "json")]
        quiet: bool,
        /// Print each file's outcome as one JSON object per line, for scripts: the file, whether
        /// it was a replay, the ledger entry and the rejects shown. No progress bar.
        #[arg(long)]
        json: bool,
        /// For CSV files: where columns go, e.g. "Name=title,Systems=platforms,Notes=" (a known
        /// field, extra.NAME, or nothing to leave the column out). Other columns go to the field
        /// their header names, or to an extra field of that name. Recorded in the ledger.
        #[arg(long, value_name = "COLUMN=FIELD,...")]
        map: Option<ColumnMapping>,
        /// Merge each record into the game of its id instead of replacing it: fields the record
        /// does not have (columns a CSV does not map, empty cells) keep their values.
        #[arg(long)]
        merge: bool,
        /// Only tell what ingesting would do: how many records are new, changed, unchanged and
        /// rejected, and the fields each changed record changes (the first 100). Writes
        /// nothing: no game, no ledger entry, no rejects report. Exits as an ingest would.
        #[arg(long)]
        dry_run: bool,
    },
    /// Send files to a ludex API, here or on AWS, and wait for their ingests.
    ///
    /// Each file goes straight to the bucket through a URL from POST /uploads/presign (the
    /// server's own, or an S3 presigned URL), so files of any size up to the upload limit work
    /// behind API Gateway too. Prints each ingest's outcome; the exit code is the worst, as
    /// with `ingest`.
    Upload {
        /// Files to send (.json, .ndjson, .jsonl, .csv, optionally .gz).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The API's address, e.g. http://127.0.0.1:8080 or the API Gateway URL.
        #[arg(long, env = "LUDEX_API")]
        api: String,
        /// An API key with the write scope.
        #[arg(long, env = "LUDEX_API_KEY", hide_env_values = true)]
        key: String,
        /// Seconds to wait for each ingest to finish; 0 sends the files and returns.
        #[arg(long, default_value_t = 600.0, value_parser = wait_seconds)]
        wait: f64,
    },
    /// Copy the SQLite store to a new file, consistent as of one moment, while `serve` runs.
    ///
    /// SQLite's online backup API in one read transaction: writers go on meanwhile. The file
    /// is complete or absent, never partial. PostgreSQL and DynamoDB have their own backups
    /// (docs/operations.md).
    Backup {
        /// The backup file to create (it must not exist).
        path: PathBuf,
    },
    /// Replace the SQLite store with a backup made by `ludex backup`.
    ///
    /// The backup is checked first (SQLite's integrity check, a ludex schema). Stop `serve`
    /// before restoring: a running server would go on from the restored catalog with what it
    /// held in memory (its inbox rounds, its sessions are unaffected).
    Restore {
        /// The backup file.
        path: PathBuf,
    },
    /// List, show and search games.
    #[command(subcommand)]
    Games(GamesCommand),
    /// Write the whole catalog to standard output (or --output), ready to ingest again.
    Export {
        /// How the games are written.
        #[arg(long, value_enum, default_value_t = ExportFormat::Ndjson)]
        format: ExportFormat,
        /// Write to this file instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Show the ingest ledger: every upload ingested, newest first; or revert an ingest.
    Ingests {
        #[command(subcommand)]
        action: Option<IngestsCommand>,
        /// How many entries to show.
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1000))]
        limit: u32,
    },
    /// Print a completion script for a shell: `ludex completions bash > /etc/bash_completion.d/ludex`.
    Completions {
        /// The shell to complete in.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff): `ludex man > ludex.1 && man ./ludex.1`.
    Man,
    /// Write a synthetic NDJSON catalog (about 400 bytes a record), for trying ludex out.
    Generate {
        /// How many records.
        #[arg(long, default_value_t = 1000)]
        count: u64,
        /// Make every N-th record invalid (a rating out of range).
        #[arg(long)]
        bad_every: Option<u64>,
        /// Write to this file instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, env = "LUDEX_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
    #[command(flatten)]
    pub access: Access,
    /// Largest file accepted by POST /uploads, in bytes.
    #[arg(long, env = "LUDEX_MAX_HTTP_UPLOAD_BYTES", default_value_t = crate::api::DEFAULT_MAX_UPLOAD_BYTES)]
    pub max_http_upload_bytes: u64,
    /// With an s3:// bucket: seconds between listings of uploads/ for files to ingest (a local
    /// folder is watched instead).
    #[arg(long, env = "LUDEX_POLL_SECONDS", default_value_t = crate::inbox::POLL_EVERY.as_secs_f64())]
    pub poll_seconds: f64,
    /// Seconds a client has to send a request's head, from its first byte (or from connecting).
    #[arg(long, env = "LUDEX_HEADER_TIMEOUT", default_value_t = 10.0)]
    pub header_timeout: f64,
    /// Seconds a kept-alive connection may wait for its next request before it is closed.
    #[arg(long, env = "LUDEX_IDLE_TIMEOUT", default_value_t = 60.0)]
    pub idle_timeout: f64,
    /// Seconds a request body may pause between two chunks before the request fails (408).
    #[arg(long, env = "LUDEX_BODY_TIMEOUT", default_value_t = 30.0)]
    pub body_timeout: f64,
    /// Connections open at once; lowered to what the open-files limit leaves room for.
    #[arg(long, env = "LUDEX_MAX_CONNECTIONS", default_value_t = 1024)]
    pub max_connections: usize,
    /// Writes (POST, PUT, PATCH, DELETE) a minute per API key, session or client address,
    /// answered 429 beyond; 0 turns the limit off.
    #[arg(long, env = "LUDEX_WRITE_RATE_LIMIT", default_value_t = RateLimits::default().writes_per_minute)]
    pub write_rate_limit: u32,
    /// Sign-in attempts a minute per client address, answered 429 beyond; 0 turns the limit off.
    #[arg(long, env = "LUDEX_SIGN_IN_RATE_LIMIT", default_value_t = RateLimits::default().sign_ins_per_minute)]
    pub sign_in_rate_limit: u32,
    /// The file whose secret seals web UI sessions (created when missing); instances that
    /// share it share their sessions. --session-secret, when given, is used instead
    /// [default: DATA_DIR/session-secret]
    #[arg(long, env = "LUDEX_SESSION_SECRET_FILE")]
    pub session_secret_file: Option<PathBuf>,
}

enum Direction {
    Backup,
    Restore,
}

/// `ludex backup` / `ludex restore` of the SQLite store the settings name; other stores have
/// their own backups.
async fn backup(settings: &Settings, file: &Path, direction: Direction) -> Result<ExitCode> {
    let url = settings.store_url();
    let Some(path) = url.strip_prefix("sqlite://") else {
        anyhow::bail!(
            "backup and restore are for the SQLite store; {} has its own (docs/operations.md)",
            store::redact(&url)
        );
    };
    #[cfg(feature = "sqlite")]
    {
        let store = store::sqlite::SqliteStore::open(Path::new(path))?;
        match direction {
            Direction::Backup => {
                let s = store.backup_to(file).await?;
                println!(
                    "{}: {} games, {} ingests, {} bytes",
                    file.display(),
                    s.games,
                    s.ingests,
                    s.bytes
                );
            }
            Direction::Restore => {
                let s = store.restore_from(file).await?;
                println!(
                    "{url} restored from {}: {} games, {} ingests",
                    file.display(),
                    s.games,
                    s.ingests
                );
            }
        }
        Ok(ExitCode::SUCCESS)
    }
    #[cfg(not(feature = "sqlite"))]
    {
        let _ = (path, file, direction);
        anyhow::bail!("this build of ludex has no SQLite store")
    }
}

/// Seconds to wait: from 0 up to a day.
fn wait_seconds(raw: &str) -> Result<f64, String> {
    raw.parse::<f64>()
        .ok()
        .filter(|s| (0.0..=86_400.0).contains(s))
        .ok_or_else(|| format!("{raw:?} is not a number of seconds from 0 to 86400"))
}

/// A positive number of seconds from an option.
fn seconds(value: f64, option: &str) -> Result<Duration> {
    Duration::try_from_secs_f64(value)
        .ok()
        .filter(|d| !d.is_zero())
        .with_context(|| format!("{option} must be a positive number of seconds"))
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key and print it once; only its hash is stored.
    Create {
        /// A name to recognise the key by (and revoke it).
        #[arg(long)]
        name: String,
        /// `write` keys may also read; `read` keys are for deployments that require keys for reads.
        #[arg(long, value_enum, default_value_t = KeyScope::Write)]
        scope: KeyScope,
    },
    /// List keys (names, scopes, dates; never the keys).
    List,
    /// Revoke a key by name.
    Revoke {
        /// The name the key was created with.
        name: String,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum KeyScope {
    Read,
    Write,
}

#[derive(Debug, Subcommand)]
pub enum IngestsCommand {
    /// Undo what one ingest wrote: games it created are deleted, games it changed get their
    /// content before it back. Games changed since by anyone else are left as they are and
    /// listed as conflicts. The revert is an ingest entry of its own, in every game's history;
    /// reverting the revert applies the upload again. Exits 3 when there were conflicts.
    Revert {
        /// The ingest's id (`ludex ingests` lists them).
        id: String,
        /// Only tell what the revert would do; write nothing.
        #[arg(long)]
        dry_run: bool,
        /// How many conflicts to print (all are counted).
        #[arg(long, default_value_t = 100)]
        show_conflicts: usize,
    },
}

#[derive(Debug, Subcommand)]
pub enum GamesCommand {
    /// List games, one JSON object per line, with filters and a sort.
    List(ListArgs),
    /// Show one game as JSON.
    Get {
        /// The game's id.
        id: String,
    },
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only games on this platform (case does not matter).
    #[arg(long)]
    pub platform: Option<String>,
    /// Only games of this genre.
    #[arg(long)]
    pub genre: Option<String>,
    /// Released in or after this year.
    #[arg(long, value_parser = year())]
    pub year_from: Option<u16>,
    /// Released in or before this year.
    #[arg(long, value_parser = year())]
    pub year_to: Option<u16>,
    /// Rated at least this (0–10, one decimal place).
    #[arg(long, value_parser = |raw: &str| Rating::parse(raw))]
    pub min_rating: Option<Rating>,
    /// Title search: every word must start a word of the title.
    #[arg(long)]
    pub q: Option<String>,
    /// The order: a field, with '-' in front for descending.
    #[arg(long, default_value = "-updated_at", allow_hyphen_values = true, value_parser = sort())]
    pub sort: Sort,
    /// Games per page.
    #[arg(long, default_value_t = ListQuery::DEFAULT_LIMIT, value_parser = clap::value_parser!(u32).range(1..=i64::from(ListQuery::MAX_LIMIT)))]
    pub limit: u32,
    /// The next_cursor printed by the previous page.
    #[arg(long)]
    pub cursor: Option<String>,
}

/// A year the catalog can hold.
fn year() -> clap::builder::RangedI64ValueParser<u16> {
    use ludex_domain::fields::limits::{YEAR_MAX, YEAR_MIN};
    clap::value_parser!(u16).range(i64::from(YEAR_MIN)..=i64::from(YEAR_MAX))
}

/// A sort, from the names the domain accepts (so completions and the man page list them).
fn sort() -> impl clap::builder::TypedValueParser<Value = Sort> {
    use clap::builder::TypedValueParser as _;
    clap::builder::PossibleValuesParser::new(Sort::names()).try_map(|name| Sort::parse(&name))
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ExportFormat {
    /// One game per line.
    Ndjson,
    /// One JSON array.
    Json,
}

impl Settings {
    pub fn store_url(&self) -> String {
        self.location
            .store
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("ludex.db").display()))
    }

    pub fn bucket_url(&self) -> String {
        self.location
            .bucket
            .clone()
            .unwrap_or_else(|| self.data_dir.join("bucket").display().to_string())
    }

    pub fn ingest_config(&self) -> IngestConfig {
        IngestConfig {
            limits: ParseLimits {
                max_bytes: self.max_upload_bytes,
                ..ParseLimits::default()
            },
            batch_size: self.batch_size.max(1),
            lease: Duration::from_secs(self.ingest_lease_seconds),
            ..IngestConfig::default()
        }
    }

    pub fn key_file_path(&self) -> PathBuf {
        self.api_keys_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("api-keys.json"))
    }

    pub async fn open_stores(&self) -> Result<Stores> {
        Ok(store::open_with(&self.store_url(), self.history.retention()).await?)
    }

    pub fn open_bucket(&self) -> Result<Bucket> {
        Ok(Bucket::open(&self.bucket_url())?)
    }
}

impl Cli {
    /// The command line and the `LUDEX_*` variables, as clap parses them except that an empty
    /// variable counts as unset (as on Lambda, where Terraform writes `""` for an empty list);
    /// exits with clap's message and code 2 when they are not valid.
    pub fn from_env_and_args() -> Self {
        use clap::{CommandFactory as _, FromArgMatches as _};
        let mut matches = crate::settings::without_empty_variables(Self::command()).get_matches();
        Self::from_arg_matches_mut(&mut matches).unwrap_or_else(|error| error.exit())
    }

    /// The log level when RUST_LOG is unset: the server logs what it does, commands only warn.
    pub fn default_log_level(&self) -> &'static str {
        match self.command {
            Command::Serve(_) => "info",
            _ => "warn",
        }
    }

    /// Installs logging as the environment and `--log-format` ask.
    pub fn init_logging(&self) {
        let level = self.default_log_level();
        let mut settings = crate::telemetry::LogSettings::from_env(level);
        if let Some(format) = self.settings.reporting.log_format {
            settings.format = format;
        }
        crate::telemetry::install(&settings, level);
    }

    pub async fn run(self) -> Result<ExitCode> {
        let settings = self.settings;
        match self.command {
            Command::Serve(args) => serve(&settings, args).await,
            Command::Init => {
                let url = settings.store_url();
                let (_, applied) = store::init(&url, settings.history.retention()).await?;
                let url = store::redact(&url);
                if applied.is_empty() {
                    println!("{url}: the schema is up to date; nothing to do");
                } else {
                    println!("{url}: set up {}", applied.join(", "));
                }
                Ok(ExitCode::SUCCESS)
            }
            Command::Keys(command) => keys(&settings, command),
            Command::Ingest {
                files,
                show_rejects,
                quiet,
                json,
                map,
                merge,
                dry_run,
            } => {
                let mut config = settings.ingest_config();
                config.rejects_shown = if quiet { 0 } else { show_rejects };
                let options = UploadOptions {
                    mapping: map,
                    merge,
                };
                if dry_run {
                    let output = if json { Output::Json } else { Output::Human };
                    let stores = settings.open_stores().await?;
                    return preview_files(&stores, config, &options, &files, output).await;
                }
                let ingestor = Ingestor::new(
                    settings.open_stores().await?,
                    settings.open_bucket()?,
                    config,
                );
                let output = match (quiet, json) {
                    (_, true) => Output::Json,
                    (true, _) => Output::Quiet,
                    _ => Output::Human,
                };
                ingest_files(&ingestor, &options, &files, output).await
            }
            Command::Upload {
                files,
                api,
                key,
                wait,
            } => {
                let uploader =
                    crate::upload::Uploader::new(&api, key, Duration::from_secs_f64(wait))?;
                let worst = crate::upload::upload_files(&uploader, &files).await?;
                Ok(ExitCode::from(worst))
            }
            Command::Backup { path } => backup(&settings, &path, Direction::Backup).await,
            Command::Restore { path } => backup(&settings, &path, Direction::Restore).await,
            Command::Games(GamesCommand::List(args)) => {
                let stores = settings.open_stores().await?;
                let page = stores.catalog.list(&args.query()?).await?;
                let mut out = std::io::stdout().lock();
                for game in &page.items {
                    writeln!(out, "{}", game.to_json())?;
                }
                if let Some(cursor) = page.next_cursor {
                    eprintln!("more: --cursor {cursor}");
                }
                Ok(ExitCode::SUCCESS)
            }
            Command::Games(GamesCommand::Get { id }) => {
                let id = GameId::parse(&id).map_err(|e| anyhow::anyhow!("id: {e}"))?;
                match settings.open_stores().await?.catalog.get(&id).await? {
                    Some(game) => {
                        println!("{}", game.to_json());
                        Ok(ExitCode::SUCCESS)
                    }
                    None => {
                        eprintln!("no game with the id {id}");
                        Ok(ExitCode::FAILURE)
                    }
                }
            }
            Command::Export { format, output } => {
                let stores = settings.open_stores().await?;
                let count = match output {
                    Some(path) => {
                        let file = std::fs::File::create(&path)
                            .with_context(|| format!("cannot create {}", path.display()))?;
                        export(&stores, format, std::io::BufWriter::new(file)).await?
                    }
                    None => export(&stores, format, std::io::stdout().lock()).await?,
                };
                eprintln!("exported {count} games");
                Ok(ExitCode::SUCCESS)
            }
            Command::Generate {
                count,
                bad_every,
                output,
            } => {
                match output {
                    Some(path) => {
                        let file = std::fs::File::create(&path)
                            .with_context(|| format!("cannot create {}", path.display()))?;
                        let mut out = std::io::BufWriter::new(file);
                        synthetic::write_catalog(&mut out, count, bad_every)?;
                        out.flush()?;
                    }
                    None => {
                        synthetic::write_catalog(&mut std::io::stdout().lock(), count, bad_every)?
                    }
                }
                Ok(ExitCode::SUCCESS)
            }
            Command::Completions { shell } => {
                use clap::CommandFactory as _;
                clap_complete::generate(
                    shell,
                    &mut Cli::command(),
                    "ludex",
                    &mut std::io::stdout(),
                );
                Ok(ExitCode::SUCCESS)
            }
            Command::Man => {
                use clap::CommandFactory as _;
                clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout())?;
                Ok(ExitCode::SUCCESS)
            }
            Command::Ingests {
                action:
                    Some(IngestsCommand::Revert {
                        id,
                        dry_run,
                        show_conflicts,
                    }),
                ..
            } => {
                let stores = settings.open_stores().await?;
                revert(&stores, &id, dry_run, show_conflicts).await
            }
            Command::Ingests {
                action: None,
                limit,
            } => {
                let stores = settings.open_stores().await?;
                let page = stores
                    .ledger
                    .list(&LedgerQuery {
                        limit,
                        cursor: None,
                    })
                    .await?;
                for entry in page.items {
                    println!(
                        "{}  {:<16}  {:>8} accepted  {:>6} rejected  {}  {}",
                        entry.id,
                        entry.status.as_str(),
                        entry.accepted,
                        entry.rejected,
                        entry.started_at,
                        entry.key
                    );
                }
                Ok(ExitCode::SUCCESS)
            }
        }
    }
}

impl ListArgs {
    /// The query, with the bounds clap cannot check (the words of a search, the lengths of
    /// labels and cursors).
    fn query(&self) -> Result<ListQuery> {
        ListQuery {
            platform: self.platform.clone(),
            genre: self.genre.clone(),
            year_from: self.year_from,
            year_to: self.year_to,
            min_rating: self.min_rating,
            q: self.q.clone(),
            sort: self.sort,
            limit: self.limit,
            cursor: self.cursor.clone(),
        }
        .bounded()
        .map_err(|errors| {
            let errors: Vec<String> = errors.iter().map(|e| format!("--{e}")).collect();
            anyhow::anyhow!(errors.join("; "))
        })
    }
}

async fn serve(settings: &Settings, args: ServeArgs) -> Result<ExitCode> {
    let stores = settings.open_stores().await?;
    let bucket = settings.open_bucket()?;
    let keys = Keys::from_file(&settings.key_file_path())?;
    let metrics = Metrics::for_sink(settings.reporting.metrics);
    let state = AppState {
        stores: stores.clone(),
        bucket: bucket.clone(),
        keys: Arc::new(keys),
        config: Arc::new(ApiConfig {
            reads_require_key: args.access.reads_require_key,
            cors_origins: args.access.cors_origins.clone(),
            max_upload_bytes: args.max_http_upload_bytes,
            max_direct_upload_bytes: args.max_http_upload_bytes,
            sessions: Arc::new(SessionKeys::given(session_key(settings, &args)?)),
            rate_limiters: Arc::new(Limiters::new(RateLimits {
                writes_per_minute: args.write_rate_limit,
                sign_ins_per_minute: args.sign_in_rate_limit,
            })),
            ..ApiConfig::default()
        }),
        metrics: metrics.clone(),
    };
    let ingestor =
        Ingestor::new(stores, bucket.clone(), settings.ingest_config()).with_metrics(metrics);
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let address = listener.local_addr()?;
    println!("ludex is serving http://{address} (API docs: http://{address}/docs)");
    std::io::stdout().flush()?;
    let poll_every = seconds(args.poll_seconds, "--poll-seconds")?;
    let limits = connection_limits(&args)?;
    crate::serve::run(
        listener,
        state,
        ingestor,
        poll_every,
        limits,
        settings.history.retention(),
    )
    .await?;
    Ok(ExitCode::SUCCESS)
}

/// The key of web UI sessions: the secret given (`LUDEX_SESSION_SECRET`), else the secret
/// file's.
fn session_key(settings: &Settings, args: &ServeArgs) -> Result<SessionKey> {
    if let Some(key) = args.access.session_key()? {
        return Ok(key);
    }
    let path = args
        .session_secret_file
        .clone()
        .unwrap_or_else(|| settings.data_dir.join("session-secret"));
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    SessionKey::from_file(&path).with_context(|| format!("the session secret {}", path.display()))
}

/// The connection limits of `serve`, with the connection cap fitted to the open-files limit
/// (raised to its hard value first). Call once the stores are open: their files count.
fn connection_limits(args: &ServeArgs) -> Result<crate::connections::ConnectionLimits> {
    use crate::connections;
    let open_now = connections::open_files().unwrap_or(64);
    let (budget, files) =
        connections::connection_budget(open_now).context("cannot raise the open-files limit")?;
    let max_connections = args.max_connections.min(budget);
    anyhow::ensure!(
        max_connections >= 2,
        "the open-files limit ({files}) leaves room for {budget} connections; raise it \
         (ulimit -n) or lower what the server opens"
    );
    if max_connections < args.max_connections {
        tracing::warn!(
            open_files_limit = files,
            max_connections,
            "the open-files limit lowers the connection cap"
        );
    }
    Ok(connections::ConnectionLimits {
        header_timeout: seconds(args.header_timeout, "--header-timeout")?,
        idle_timeout: seconds(args.idle_timeout, "--idle-timeout")?,
        body_timeout: seconds(args.body_timeout, "--body-timeout")?,
        max_connections,
    })
}

fn keys(settings: &Settings, command: KeysCommand) -> Result<ExitCode> {
    let path = settings.key_file_path();
    let file = KeyFile::new(&path);
    match command {
        KeysCommand::Create { name, scope } => {
            let scope = match scope {
                KeyScope::Read => Scope::Read,
                KeyScope::Write => Scope::Write,
            };
            let (key, _) = file.create(&name, scope, store::now_rfc3339())?;
            eprintln!("Created the API key {name:?}. It is shown only this once; keep it secret:");
            println!("{key}");
        }
        KeysCommand::List => {
            for entry in file.load()? {
                println!(
                    "{:<24} {:<6} created {}{}",
                    entry.name,
                    match entry.scope {
                        Scope::Read => "read",
                        Scope::Write => "write",
                    },
                    entry.created_at,
                    if entry.revoked { "  (revoked)" } else { "" }
                );
            }
        }
        KeysCommand::Revoke { name } => {
            file.revoke(&name)?;
            eprintln!("Revoked the API key {name:?}.");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// How `ludex ingest` reports.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Output {
    /// A progress bar on a terminal, then the summary and the rejects shown.
    Human,
    /// The summary line only.
    Quiet,
    /// One JSON object per file.
    Json,
}

/// A progress bar by bytes on a terminal; nothing otherwise (the final report is printed
/// either way).
struct Bar(Option<ProgressBar>);

impl Bar {
    /// The bar of the file `name` at `path` (its size is the bar's length).
    fn new(name: &str, path: &Path, output: Output) -> Self {
        if output != Output::Human || !std::io::stderr().is_terminal() {
            return Self(None);
        }
        let bar = ProgressBar::new(std::fs::metadata(path).map_or(0, |m| m.len()));
        let style = ProgressStyle::with_template(
            "{prefix} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta} left) {msg}",
        )
        .map(|style| style.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_prefix(name.to_owned());
        bar.enable_steady_tick(Duration::from_millis(200));
        Self(Some(bar))
    }
}

impl Progress for Bar {
    fn advanced(&self, at: &Advance) {
        if let Some(bar) = &self.0 {
            bar.set_length(at.size);
            bar.set_position(at.bytes.min(at.size));
            bar.set_message(format!("{} records, {} rejected", at.records, at.rejected));
        }
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

/// Ingests one file. While another attempt holds it (a `ludex serve` ingesting the same file,
/// or a killed `ludex ingest` whose lease has not run out), waits: for that attempt's outcome
/// (then reported as a replay) or for its lease to expire (then this one completes the file).
async fn ingest_when_free(
    ingestor: &Ingestor,
    upload: &Upload<'_>,
    options: &UploadOptions,
    file: &Path,
    output: Output,
) -> Result<IngestOutcome, IngestError> {
    let mut told = false;
    loop {
        let bar = Bar::new(upload.key, file, output);
        match ingestor.ingest_with(upload, options, &bar).await {
            Err(IngestError::Busy { holder, until }) => {
                drop(bar);
                if !told && output == Output::Human {
                    eprintln!(
                        "{}: another attempt ({holder}) is ingesting it; waiting until it ends \
                         or its lease runs out ({until})",
                        file.display()
                    );
                    told = true;
                }
                tokio::time::sleep((ingestor.lease() / 3).min(Duration::from_secs(1))).await;
            }
            done => return done,
        }
    }
}

/// Reverts an ingest step by step, printing each conflict as it is found and the counts at the
/// end (see [`crate::revert`]).
async fn revert(
    stores: &Stores,
    id: &str,
    dry_run: bool,
    show_conflicts: usize,
) -> Result<ExitCode> {
    let id = ludex_domain::IngestId::parse(id).map_err(anyhow::Error::msg)?;
    let mut admit = || Ok(());
    let mut cursor: Option<String> = None;
    let (mut deleted, mut restored, mut recreated, mut conflicted) = (0, 0, 0, 0);
    let mut shown = 0;
    let revert_id = loop {
        let step =
            crate::revert::step(stores, &id, cursor.as_deref(), dry_run, "cli", &mut admit).await?;
        (deleted, restored, recreated) = (
            deleted + step.deleted,
            restored + step.restored,
            recreated + step.recreated,
        );
        conflicted += step.conflicted;
        for conflict in step
            .conflicts
            .iter()
            .take(show_conflicts.saturating_sub(shown))
        {
            shown += 1;
            println!(
                "conflict: {} (version {} by this ingest, now {}{}{}): {}",
                conflict.id,
                conflict.version,
                if conflict.deleted { "deleted at " } else { "" },
                conflict.now,
                conflict
                    .changed_by
                    .as_deref()
                    .map(|by| format!(" by {by}"))
                    .unwrap_or_default(),
                conflict.reason
            );
        }
        match step.next_cursor {
            Some(next) => cursor = Some(next),
            None => break step.revert,
        }
    };
    let verb = if dry_run { "would revert" } else { "reverted" };
    println!(
        "{revert_id}: {verb} ingest {id}: {deleted} deleted, {restored} put back, {recreated} \
         brought back, {conflicted} conflicts{}",
        if conflicted > shown as u64 {
            format!(" ({} not shown)", conflicted - shown as u64)
        } else {
            String::new()
        }
    );
    Ok(if conflicted > 0 {
        ExitCode::from(exit::REJECTED)
    } else {
        ExitCode::SUCCESS
    })
}

/// Ingests each file; the exit code is the worst outcome (see [`exit`]).
async fn ingest_files(
    ingestor: &Ingestor,
    options: &UploadOptions,
    files: &[PathBuf],
    output: Output,
) -> Result<ExitCode> {
    let mut worst = 0;
    for file in files {
        let absolute = std::path::absolute(file)
            .with_context(|| format!("cannot resolve {}", file.display()))?;
        let (Some(dir), Some(name)) = (absolute.parent(), absolute.file_name()) else {
            anyhow::bail!("{} is not a file", file.display());
        };
        let name = name.to_string_lossy();
        let source = Bucket::local(dir)?;
        let upload = Upload {
            source: &source,
            key: &name,
            ledger_key: format!("file://{}", absolute.display()),
        };
        let started = Instant::now();
        let outcome = ingest_when_free(ingestor, &upload, options, file, output)
            .await
            .with_context(|| format!("ingesting {}", file.display()))?;
        if output == Output::Json {
            let line = serde_json::json!({
                "file": file.display().to_string(),
                "replayed": outcome.replayed,
                "ingest": outcome.record,
                "rejects": outcome.rejects,
                "elapsed_ms": started.elapsed().as_millis() as u64,
            });
            println!("{line}");
        } else {
            print_outcome(
                file,
                &outcome,
                started.elapsed(),
                ingestor.bucket().local_root(),
                output,
            );
        }
        worst = worst.max(match outcome.record.status {
            IngestStatus::Failed => exit::FILE_FAILED,
            IngestStatus::PartiallyFailed => exit::REJECTED,
            _ => 0,
        });
    }
    Ok(ExitCode::from(worst))
}

/// Tells what ingesting each file would do; the exit code is what the ingest's would be.
async fn preview_files(
    stores: &Stores,
    config: IngestConfig,
    options: &UploadOptions,
    files: &[PathBuf],
    output: Output,
) -> Result<ExitCode> {
    let mut worst = 0;
    for file in files {
        let reader =
            std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
        let preview = crate::preview::preview(stores, Box::new(reader), config, options.clone())
            .await
            .with_context(|| format!("previewing {}", file.display()))?;
        if output == Output::Json {
            let line = serde_json::json!({
                "file": file.display().to_string(),
                "dry_run": true,
                "preview": preview,
            });
            println!("{line}");
        } else {
            print_preview(file, &preview, config.rejects_shown);
        }
        worst = worst.max(if preview.error.is_some() {
            exit::FILE_FAILED
        } else if preview.rejected > 0 {
            exit::REJECTED
        } else {
            0
        });
    }
    Ok(ExitCode::from(worst))
}

fn print_preview(file: &Path, preview: &crate::preview::Preview, rejects_shown: usize) {
    println!(
        "{}: dry run, nothing written — {} records: {} new, {} changed, {} unchanged, {} rejected",
        file.display(),
        preview.records,
        preview.new,
        preview.changed,
        preview.unchanged,
        preview.rejected
    );
    if let Some(error) = &preview.error {
        println!("  error: {error}");
    }
    let text = |value: &Option<Box<serde_json::value::RawValue>>| {
        value.as_ref().map_or("(none)", |v| v.get()).to_owned()
    };
    for change in &preview.changes {
        println!(
            "  {} ({}, version {}):",
            change.id, change.position, change.version
        );
        for field in &change.fields {
            println!(
                "    {}: {} → {}",
                field.field,
                text(&field.from),
                text(&field.to)
            );
        }
    }
    if preview.changed > preview.changes.len() as u64 {
        println!(
            "  … and {} more changed",
            preview.changed - preview.changes.len() as u64
        );
    }
    for reject in preview.rejects.iter().take(rejects_shown) {
        println!("  {reject}");
    }
    let listed = preview.rejects.len().min(rejects_shown) as u64;
    if preview.rejected > listed {
        println!("  … and {} more rejected", preview.rejected - listed);
    }
}

/// The summary line of an ingest (and its error); unless quiet, also the rejects shown and
/// where the report is (a path under `bucket_root` when the bucket is a folder).
fn print_outcome(
    file: &Path,
    outcome: &IngestOutcome,
    took: Duration,
    bucket_root: Option<&Path>,
    output: Output,
) {
    let r = &outcome.record;
    let name = file.display();
    if outcome.replayed {
        println!(
            "{name}: already ingested with this content (ingest {}, {}); nothing to do",
            r.id, r.status
        );
        return;
    }
    println!(
        "{name}: {} — {} accepted ({} new, {} changed, {} unchanged), {} rejected in {:.2} s (ingest {})",
        r.status,
        r.accepted,
        r.inserted,
        r.updated,
        r.unchanged,
        r.rejected,
        took.as_secs_f64(),
        r.id
    );
    if let Some(error) = &r.error {
        println!("  error: {error}");
    }
    if output == Output::Quiet {
        return;
    }
    for reject in &outcome.rejects {
        println!("  {reject}");
    }
    if r.rejected > outcome.rejects.len() as u64 {
        println!("  … and {} more", r.rejected - outcome.rejects.len() as u64);
    }
    if let Some(key) = &r.rejects_key {
        match bucket_root {
            Some(root) => println!("  rejects report: {}", root.join(key).display()),
            None => println!("  rejects report: {key}"),
        }
    }
}

async fn export(stores: &Stores, format: ExportFormat, mut out: impl Write) -> Result<u64> {
    let mut query = ListQuery {
        limit: ListQuery::MAX_LIMIT,
        ..ListQuery::default()
    };
    let mut count = 0u64;
    if matches!(format, ExportFormat::Json) {
        out.write_all(b"[")?;
    }
    loop {
        let page = stores.catalog.list(&query).await?;
        for game in &page.items {
            match format {
                ExportFormat::Ndjson => writeln!(out, "{}", game.to_json())?,
                ExportFormat::Json => {
                    let sep = if count == 0 { "\n" } else { ",\n" };
                    write!(out, "{sep}{}", game.to_json())?;
                }
            }
            count += 1;
        }
        match page.next_cursor {
            Some(cursor) => query.cursor = Some(cursor),
            None => break,
        }
    }
    if matches!(format, ExportFormat::Json) {
        out.write_all(b"\n]\n")?;
    }
    out.flush()?;
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory as _;

    #[test]
    fn every_command_and_argument_has_help() {
        fn check(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in command.get_arguments() {
                let builtin = matches!(arg.get_id().as_str(), "help" | "version");
                if !builtin && arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} {}", arg.get_id()));
                }
            }
            for sub in command.get_subcommands() {
                let path = format!("{path} {}", sub.get_name());
                if sub.get_about().is_none() && sub.get_name() != "help" {
                    missing.push(path.clone());
                }
                check(sub, &path, missing);
            }
        }
        let mut missing = Vec::new();
        check(&Cli::command(), "ludex", &mut missing);
        assert_eq!(missing, Vec::<String>::new());
        Cli::command().debug_assert();
    }
}
