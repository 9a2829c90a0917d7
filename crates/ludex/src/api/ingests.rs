//! `/uploads` stores an upload file under `uploads/` (where the ingest picks it up) and
//! `/ingests` shows the ledger and the rejects of each ingest.

use super::error::{ApiError, ApiResult};
use super::extract::{Path, Query};
use super::{AppState, CanRead, CanWrite, content_type_is, json_response};
use crate::bucket::{Bucket, BucketWriter, ObjectInfo};
use crate::ingest::IngestConfig;
use crate::store::now_rfc3339;
use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use futures::{SinkExt, Stream, StreamExt};
use ludex_domain::LedgerQuery;
use ludex_domain::report::{IngestId, IngestRecord, IngestStatus, Reject};
use ludex_domain::upload::{ColumnMapping, ParseLimits, UploadOptions};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tokio_util::io::{StreamReader, SyncIoBridge};

/// Content types of raw upload bodies.
const UPLOAD_TYPES: [&str; 6] = [
    "application/json",
    "application/x-ndjson",
    "text/csv",
    "application/gzip",
    "application/octet-stream",
    "text/plain",
];

use crate::inbox::UPLOAD_SUFFIXES;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UploadParams {
    /// The file name to store the upload under: required with a raw body; with a form, it
    /// names the file instead of the file part's own name.
    filename: Option<String>,
    /// Only tell what ingesting the file would do (200 with the counts and the differences);
    /// nothing is stored or written.
    dry_run: Option<bool>,
    /// For a CSV file: where its columns go, e.g. `Name=title,Systems=platforms,Notes=`
    /// (a known field, `extra.NAME`, or nothing to leave the column out). Kept with the upload's
    /// ledger entry; columns it does not name go to the field their header names.
    map: Option<String>,
    /// Merge each record into the game of its id instead of replacing it: fields the record
    /// does not have (columns a CSV does not map, empty cells) keep their values. Kept with
    /// the upload's ledger entry.
    merge: Option<bool>,
}

impl UploadParams {
    fn options(&self) -> ApiResult<UploadOptions> {
        let mapping = match self.map.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(text) => Some(
                text.parse::<ColumnMapping>()
                    .map_err(|e| ApiError::bad_parameter("map", e.to_string()))?,
            ),
        };
        Ok(UploadOptions {
            mapping,
            merge: self.merge.unwrap_or(false),
        })
    }
}

/// The longest upload file name.
pub const FILENAME_MAX_CHARS: usize = 128;

/// The pattern of an upload's file name, as [`upload_key`] checks it.
pub fn filename_pattern() -> String {
    let endings: Vec<String> = UPLOAD_SUFFIXES
        .iter()
        .map(|s| s.replace('.', "\\."))
        .collect();
    format!("^[A-Za-z0-9][A-Za-z0-9._-]*(?:{})$", endings.join("|"))
}

/// Checks an upload's file name: a plain name with a known ending.
fn upload_key(filename: &str) -> ApiResult<String> {
    let ok_chars = !filename.is_empty()
        && filename.len() <= FILENAME_MAX_CHARS
        && filename.as_bytes()[0].is_ascii_alphanumeric()
        && filename
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !ok_chars {
        return Err(ApiError::bad_parameter(
            "filename",
            format!(
                "{filename:?} must be 1–{FILENAME_MAX_CHARS} letters, digits, '.', '_' or '-', starting with a letter or digit"
            ),
        ));
    }
    if !crate::inbox::is_upload(filename) {
        return Err(ApiError::bad_parameter(
            "filename",
            format!("{filename:?} must end with {}", UPLOAD_SUFFIXES.join(", ")),
        ));
    }
    Ok(format!("uploads/{filename}"))
}

/// The content type an upload's name implies: what a direct upload's URL is signed for.
fn upload_type(filename: &str) -> &'static str {
    let lower = filename.to_ascii_lowercase();
    if lower.ends_with(".gz") {
        "application/gzip"
    } else if lower.ends_with(".ndjson") || lower.ends_with(".jsonl") {
        "application/x-ndjson"
    } else if lower.ends_with(".csv") {
        "text/csv"
    } else {
        "application/json"
    }
}

/// An upload written to the bucket but not yet visible: [`PendingUpload::commit`] makes it
/// appear whole, dropping it (or [`PendingUpload::abort`]) leaves nothing behind.
struct PendingUpload {
    writer: BucketWriter,
    key: String,
    size: u64,
    /// On S3 the fingerprint is the ETag, read after the upload; elsewhere it is hashed here.
    hasher: Option<blake3::Hasher>,
}

impl PendingUpload {
    async fn commit(self, bucket: &Bucket) -> ApiResult<ObjectInfo> {
        let key = self.key;
        self.writer
            .shutdown()
            .await
            .map_err(|e| ApiError::Internal(format!("finishing {key}: {e}")))?;
        match self.hasher {
            Some(hasher) => Ok(ObjectInfo {
                size: self.size,
                fingerprint: hasher.finalize().to_hex().to_string(),
                key,
            }),
            // The ingest will know the upload by its ETag; so must the ledger entry made here.
            None => Ok(bucket.info(&key).await?),
        }
    }

    async fn abort(self) {
        if let Err(abort) = self.writer.abort().await {
            tracing::warn!(key = self.key, error = %abort, "could not clean up an interrupted upload");
        }
    }
}

/// Streams a body into the bucket, hashing it on the way, without making it visible yet.
async fn write_stream<S, E>(
    bucket: &Bucket,
    key: &str,
    mut body: S,
    limit: u64,
) -> ApiResult<PendingUpload>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::error::Error + 'static,
{
    let mut pending = PendingUpload {
        writer: bucket.writer(key).await?,
        key: key.to_owned(),
        size: 0,
        hasher: (!bucket.fingerprints_are_etags()).then(blake3::Hasher::new),
    };
    let outcome: ApiResult<()> = async {
        while let Some(chunk) = body.next().await {
            let chunk =
                chunk.map_err(|e| ApiError::unreadable_body("the upload was interrupted", &e))?;
            pending.size += chunk.len() as u64;
            if pending.size > limit {
                return Err(ApiError::PayloadTooLarge(format!(
                    "the upload is larger than the limit of {limit} bytes"
                )));
            }
            if let Some(hasher) = &mut pending.hasher {
                hasher.update(&chunk);
            }
            pending
                .writer
                .write_all(&chunk)
                .await
                .map_err(|e| ApiError::Internal(format!("writing {key}: {e}")))?;
        }
        Ok(())
    }
    .await;
    match outcome {
        Ok(()) => Ok(pending),
        Err(e) => {
            pending.abort().await;
            Err(e)
        }
    }
}

/// The one `file` part of a form, written but not yet visible: a second `file` part, or any
/// other part, refuses the whole form, since what was meant is not for the server to guess.
async fn write_form(
    state: &AppState,
    mut form: Multipart,
    named: Option<String>,
    limit: u64,
) -> ApiResult<PendingUpload> {
    let unreadable = |e: axum::extract::multipart::MultipartError| {
        ApiError::unreadable_body("the form could not be read", &e)
    };
    let mut pending: Option<PendingUpload> = None;
    loop {
        let field = match form.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(e) => {
                if let Some(pending) = pending {
                    pending.abort().await;
                }
                return Err(unreadable(e));
            }
        };
        let key = match file_part_key(&field, named.as_deref(), pending.is_some()) {
            Ok(key) => key,
            Err(e) => {
                if let Some(pending) = pending.take() {
                    pending.abort().await;
                }
                return Err(e);
            }
        };
        pending = Some(write_stream(&state.bucket, &key, field, limit).await?);
    }
    pending.ok_or_else(|| ApiError::bad_parameter("file", "the form has no `file` part"))
}

/// The upload key a form part names, if the form may have it: only `file` parts, and one of
/// them (`after_file` when one came before); `named` (`?filename=`) names it over the part's
/// own file name.
fn file_part_key(
    field: &axum::extract::multipart::Field<'_>,
    named: Option<&str>,
    after_file: bool,
) -> ApiResult<String> {
    if field.name() != Some("file") {
        let name = field.name().unwrap_or_default().to_owned();
        return Err(ApiError::bad_parameter(
            &name,
            "the form may have only a `file` part; send settings as query parameters",
        ));
    }
    if after_file {
        return Err(ApiError::bad_parameter(
            "file",
            "the form has more than one `file` part; send one file per request",
        ));
    }
    match (named, field.file_name()) {
        (Some(key), _) => Ok(key.to_owned()),
        (None, Some(name)) => upload_key(name),
        (None, None) => Err(ApiError::bad_parameter(
            "filename",
            "the file part has no file name",
        )),
    }
}

/// What `POST /uploads` answers.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UploadAccepted {
    /// Poll `/ingests/{ingest_id}` for the outcome.
    ingest_id: String,
    /// Where the upload is stored in the bucket.
    key: String,
    size: u64,
    /// `queued`, or the outcome of an earlier ingest of exactly this content.
    #[schema(value_type = super::openapi::IngestStatusDoc)]
    status: IngestStatus,
}

#[utoipa::path(post, path = "/uploads", operation_id = "upload", tag = "ingests", params(UploadParams),
    request_body(description = "The upload file: a raw body with ?filename=, or multipart/form-data with a `file` field",
        content(
            (Vec<u8> = "application/x-ndjson"),
            (Vec<u8> = "application/json"),
            (Vec<u8> = "text/csv"),
            (Vec<u8> = "application/gzip"),
            (Vec<u8> = "application/octet-stream"),
            (Vec<u8> = "text/plain"),
            (super::openapi::UploadForm = "multipart/form-data"),
        )),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "With dry_run=true: what ingesting the file would do; nothing was stored or written", body = crate::preview::DryRun),
        (status = 202, description = "Stored; the ingest runs in the background", body = UploadAccepted,
            headers(("Location" = String, description = "The ingest's status"))),
        (status = 400, description = "A bad file name or an interrupted body", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid key", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "A read-only key", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 413, description = "Too large", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 415, description = "An unsupported content type", body = super::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn upload(
    _: CanWrite,
    State(state): State<AppState>,
    Query(params): Query<UploadParams>,
    request: Request,
) -> ApiResult<Response> {
    let limit = state.config.max_upload_bytes;
    let headers = request.headers().clone();
    let too_large = |e: ApiError| match e {
        ApiError::PayloadTooLarge(detail) if state.config.max_direct_upload_bytes > limit => {
            ApiError::PayloadTooLarge(format!(
                "{detail} through the API; POST /uploads/presign sends files of up to {} bytes straight to the bucket",
                state.config.max_direct_upload_bytes
            ))
        }
        other => other,
    };
    // Checked before the body is read, and it names a form's file as well as a raw body.
    let named = params.filename.as_deref().map(upload_key).transpose()?;
    let options = params.options()?;
    if params.dry_run == Some(true) {
        return dry_run(&state, request, named, limit, options)
            .await
            .map_err(too_large);
    }
    let pending = if content_type_is(&headers, &["multipart/form-data"]) {
        let form = Multipart::from_request(request, &state)
            .await
            .map_err(|e| ApiError::bad_request(format!("the form could not be read: {e}")))?;
        write_form(&state, form, named, limit)
            .await
            .map_err(too_large)?
    } else if content_type_is(&headers, &UPLOAD_TYPES) {
        let key = named
            .ok_or_else(|| ApiError::bad_parameter("filename", "is required with a raw body"))?;
        write_stream(
            &state.bucket,
            &key,
            request.into_body().into_data_stream(),
            limit,
        )
        .await
        .map_err(too_large)?
    } else {
        return Err(ApiError::UnsupportedMediaType(format!(
            "send the file as multipart/form-data or as a raw body of type {}",
            UPLOAD_TYPES.join(", ")
        )));
    };
    accepted(&state, pending, &options).await
}

/// `POST /uploads?dry_run=true`: the file streamed from the request straight into a preview
/// ([`crate::preview`]), under the same rules of form parts, names, types and size as an
/// upload; nothing is stored.
async fn dry_run(
    state: &AppState,
    request: Request,
    named: Option<String>,
    limit: u64,
    options: UploadOptions,
) -> ApiResult<Response> {
    let headers = request.headers().clone();
    let (mut tx, rx) = futures::channel::mpsc::channel::<std::io::Result<Bytes>>(4);
    let reader = SyncIoBridge::new(StreamReader::new(rx));
    let config = IngestConfig {
        limits: ParseLimits {
            max_bytes: limit,
            ..ParseLimits::default()
        },
        ..IngestConfig::default()
    };
    let preview = crate::preview::preview(&state.stores, Box::new(reader), config, options);
    let pump = async move {
        let sent = pump(state.clone(), request, &headers, named, limit, &mut tx).await;
        if let Err(e) = &sent {
            // The reader fails instead of seeing a short file.
            let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
        }
        sent
    };
    let (sent, previewed) = tokio::join!(pump, preview);
    sent?;
    let preview =
        previewed.map_err(|e| ApiError::Internal(format!("previewing an upload: {e}")))?;
    let body = serde_json::to_string(&crate::preview::DryRun {
        dry_run: true,
        preview,
    })
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(json_response(StatusCode::OK, body))
}

fn too_large(limit: u64) -> ApiError {
    ApiError::PayloadTooLarge(format!(
        "the upload is larger than the limit of {limit} bytes"
    ))
}

fn unreadable_form(e: axum::extract::multipart::MultipartError) -> ApiError {
    ApiError::unreadable_body("the form could not be read", &e)
}

/// Sends the upload file of a request to `tx`, under the rules of `POST /uploads`, until it
/// ends or the reader stops reading.
async fn pump(
    state: AppState,
    request: Request,
    headers: &axum::http::HeaderMap,
    named: Option<String>,
    limit: u64,
    tx: &mut futures::channel::mpsc::Sender<std::io::Result<Bytes>>,
) -> ApiResult<()> {
    let mut size = 0u64;
    if content_type_is(headers, &["multipart/form-data"]) {
        let mut form = Multipart::from_request(request, &state)
            .await
            .map_err(|e| ApiError::bad_request(format!("the form could not be read: {e}")))?;
        let mut files = 0;
        while let Some(mut field) = form.next_field().await.map_err(unreadable_form)? {
            file_part_key(&field, named.as_deref(), files > 0)?;
            files += 1;
            while let Some(chunk) = field.chunk().await.map_err(unreadable_form)? {
                size += chunk.len() as u64;
                if size > limit {
                    return Err(too_large(limit));
                }
                // A preview that stopped reading (a broken file) needs no more.
                if tx.send(Ok(chunk)).await.is_err() {
                    return Ok(());
                }
            }
        }
        if files == 0 {
            return Err(ApiError::bad_parameter(
                "file",
                "the form has no `file` part",
            ));
        }
        Ok(())
    } else if content_type_is(headers, &UPLOAD_TYPES) {
        named.ok_or_else(|| ApiError::bad_parameter("filename", "is required with a raw body"))?;
        let mut body = request.into_body().into_data_stream();
        while let Some(chunk) = body.next().await {
            let chunk =
                chunk.map_err(|e| ApiError::unreadable_body("the upload was interrupted", &e))?;
            size += chunk.len() as u64;
            if size > limit {
                return Err(too_large(limit));
            }
            if tx.send(Ok(chunk)).await.is_err() {
                return Ok(());
            }
        }
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType(format!(
            "send the file as multipart/form-data or as a raw body of type {}",
            UPLOAD_TYPES.join(", ")
        )))
    }
}

/// Makes a written upload visible and answers `202` with the ledger entry its ingest will
/// use, created `queued` unless it exists.
async fn accepted(
    state: &AppState,
    pending: PendingUpload,
    options: &UploadOptions,
) -> ApiResult<Response> {
    let info = pending.commit(&state.bucket).await?;
    // The same entry the ingest will pick: the key's latest when it holds this content.
    let latest = state.stores.ledger.latest(&info.key).await?;
    let id = IngestId::for_upload_after(
        &info.key,
        &info.fingerprint,
        options.reading().as_deref(),
        latest.as_ref(),
    );
    let status = match latest.filter(|latest| latest.id == id) {
        Some(earlier) => earlier.status,
        None => {
            let queued = IngestRecord {
                mapping: options.mapping.as_ref().map(ToString::to_string),
                merge: options.merge,
                ..IngestRecord::new(
                    id.clone(),
                    info.key.clone(),
                    info.size,
                    info.fingerprint.clone(),
                    IngestStatus::Queued,
                    now_rfc3339(),
                )
            };
            // An ingest that claimed the upload meanwhile keeps its entry.
            if state.stores.ledger.create(&queued).await? {
                IngestStatus::Queued
            } else {
                state
                    .stores
                    .ledger
                    .get(&id)
                    .await?
                    .map_or(IngestStatus::Queued, |stored| stored.status)
            }
        }
    };
    let body = UploadAccepted {
        ingest_id: id.to_string(),
        key: info.key,
        size: info.size,
        status,
    };
    let mut response = json_response(
        StatusCode::ACCEPTED,
        serde_json::to_string(&body).map_err(|e| ApiError::Internal(e.to_string()))?,
    );
    if let Ok(location) = HeaderValue::from_str(&format!("/ingests/{id}")) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PresignParams {
    /// The file name to store the upload under (the rules of `POST /uploads`).
    filename: String,
    /// The file's exact size in bytes: the URL takes a body of this length only.
    #[param(value_type = u64, minimum = 0)]
    size: String,
}

/// What `POST /uploads/presign` answers: how to send one file straight to the bucket.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DirectUpload {
    /// Where to send the file. An S3 presigned URL (absolute) with an S3 bucket; with a
    /// folder bucket, a URL of this server relative to the API's address.
    url: String,
    /// Always `PUT`.
    method: &'static str,
    /// Headers to send with the body, exactly (a browser sets `content-length` itself).
    headers: BTreeMap<String, String>,
    /// Where the file will be stored in the bucket.
    key: String,
    /// When the URL stops working (RFC 3339, UTC).
    expires_at: String,
}

/// The name a direct-upload grant is sealed under.
const DIRECT_GRANT: &str = "ludex_direct_upload";

/// What a folder bucket's direct-upload URL grants, sealed into its token with the session key.
#[derive(Debug, Serialize, Deserialize)]
struct DirectGrant {
    key: String,
    size: u64,
    content_type: String,
    /// Seconds since the Unix epoch.
    expires: u64,
}

/// The sealed value (standard base64) as URL-safe base64, for a query string.
fn url_token(sealed: &str) -> Option<String> {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    STANDARD
        .decode(sealed)
        .ok()
        .map(|b| URL_SAFE_NO_PAD.encode(b))
}

/// The sealed value a URL's token carries, `None` when it is not URL-safe base64.
fn sealed_value(token: &str) -> Option<String> {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .map(|b| STANDARD.encode(b))
}

fn rfc3339(unix: u64) -> String {
    time::OffsetDateTime::from_unix_timestamp(i64::try_from(unix).unwrap_or(i64::MAX))
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

#[utoipa::path(post, path = "/uploads/presign", operation_id = "presign_upload", tag = "ingests", params(PresignParams),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Send the file to `url` with `method` and `headers` before `expires_at`; the ingest then runs as for any upload", body = DirectUpload),
        (status = 400, description = "A bad file name or size", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid key", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "A read-only key", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 413, description = "Larger than the upload limit", body = super::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn presign(
    _: CanWrite,
    State(state): State<AppState>,
    Query(params): Query<PresignParams>,
) -> ApiResult<Response> {
    let key = upload_key(&params.filename)?;
    let size: u64 = params.size.trim().parse().map_err(|_| {
        ApiError::bad_parameter(
            "size",
            format!("{:?} is not a whole number of bytes", params.size),
        )
    })?;
    let limit = state.config.max_direct_upload_bytes;
    if size > limit {
        return Err(ApiError::PayloadTooLarge(format!(
            "the upload is larger than the limit of {limit} bytes"
        )));
    }
    let content_type = upload_type(&params.filename);
    let lifetime = state.config.upload_url_lifetime;
    let expires = super::session::unix_now() + lifetime.as_secs();
    let (url, headers) = match state
        .bucket
        .presign_put(&key, size, content_type, lifetime)
        .await?
    {
        Some(presigned) => (presigned.url, presigned.headers.into_iter().collect()),
        None => {
            let grant = DirectGrant {
                key: key.clone(),
                size,
                content_type: content_type.to_owned(),
                expires,
            };
            let json =
                serde_json::to_string(&grant).map_err(|e| ApiError::Internal(e.to_string()))?;
            let token = state
                .config
                .sessions
                .key()
                .await?
                .seal_as(DIRECT_GRANT, json)
                .and_then(|sealed| url_token(&sealed))
                .ok_or_else(|| ApiError::Internal("the upload URL could not be sealed".into()))?;
            let headers = BTreeMap::from([
                ("content-length".to_owned(), size.to_string()),
                ("content-type".to_owned(), content_type.to_owned()),
            ]);
            (format!("/uploads/direct?token={token}"), headers)
        }
    };
    to_json(&DirectUpload {
        url,
        method: "PUT",
        headers,
        key,
        expires_at: rfc3339(expires),
    })
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DirectParams {
    /// The token of a URL from `POST /uploads/presign`.
    token: String,
}

#[utoipa::path(put, path = "/uploads/direct", operation_id = "direct_upload", tag = "ingests", params(DirectParams),
    request_body(description = "The file, exactly as announced: its size and content type",
        content(
            (Vec<u8> = "application/x-ndjson"),
            (Vec<u8> = "application/json"),
            (Vec<u8> = "text/csv"),
            (Vec<u8> = "application/gzip"),
        )),
    responses(
        (status = 200, description = "With dry_run=true: what ingesting the file would do; nothing was stored or written", body = crate::preview::DryRun),
        (status = 202, description = "Stored; the ingest runs in the background", body = UploadAccepted,
            headers(("Location" = String, description = "The ingest's status"))),
        (status = 400, description = "A body of another size than the URL was made for, or an interrupted body", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "A token that is expired, altered or from another server", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 413, description = "Longer than the URL was made for", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Another content type than the URL was made for", body = super::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn direct(
    State(state): State<AppState>,
    Query(params): Query<DirectParams>,
    request: Request,
) -> ApiResult<Response> {
    let session_key = state.config.sessions.key().await?;
    let grant: DirectGrant = sealed_value(&params.token)
        .and_then(|sealed| session_key.unseal_as(DIRECT_GRANT, &sealed))
        .and_then(|json| serde_json::from_str(&json).ok())
        .ok_or_else(|| {
            ApiError::Forbidden(
                "the upload URL is not valid: altered, or made by another server".into(),
            )
        })?;
    if super::session::unix_now() >= grant.expires {
        return Err(ApiError::Forbidden(format!(
            "the upload URL expired at {}; ask for a new one",
            rfc3339(grant.expires)
        )));
    }
    if !content_type_is(request.headers(), &[grant.content_type.as_str()]) {
        return Err(ApiError::UnsupportedMediaType(format!(
            "the upload URL is for a body of type {}",
            grant.content_type
        )));
    }
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n != grant.size) {
        return Err(ApiError::bad_request(format!(
            "the upload URL is for a body of exactly {} bytes",
            grant.size
        )));
    }
    let pending = write_stream(
        &state.bucket,
        &grant.key,
        request.into_body().into_data_stream(),
        grant.size,
    )
    .await?;
    if pending.size != grant.size {
        let size = pending.size;
        pending.abort().await;
        return Err(ApiError::bad_request(format!(
            "the body ended after {size} of the {} bytes the upload URL is for",
            grant.size
        )));
    }
    accepted(&state, pending, &UploadOptions::default()).await
}

#[utoipa::path(get, path = "/uploads/{filename}", operation_id = "get_upload", tag = "ingests",
    params(("filename" = String, Path, description = "The upload's file name")),
    responses(
        (status = 200, description = "The newest ledger entry of the upload: how a client that sent a file straight to the bucket follows its ingest (compare `fingerprint` with the ETag the bucket answered)", body = super::openapi::IngestRecordDoc),
        (status = 400, description = "A bad file name", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 401, description = "A key is required for reads here", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "Nothing was ingested under this name yet", body = super::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn latest_upload(
    _: CanRead,
    State(state): State<AppState>,
    Path(filename): Path<String>,
) -> ApiResult<Response> {
    let key = upload_key(&filename)?;
    let record = state
        .stores
        .ledger
        .latest(&key)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("nothing was ingested as {key} yet")))?;
    to_json(&record)
}

/// The page sizes a parameter accepts, and its default.
#[derive(Clone, Copy, Debug)]
pub struct PageLimit {
    pub default: u32,
    pub max: u32,
}

/// `limit` of `GET /ingests`.
pub const LEDGER_LIMIT: PageLimit = PageLimit {
    default: 20,
    max: 100,
};

/// `limit` of `GET /ingests/{ingest_id}/rejects`.
pub const REJECTS_LIMIT: PageLimit = PageLimit {
    default: 100,
    max: 1000,
};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Entries per page (default 20).
    #[param(value_type = Option<u32>)]
    limit: Option<String>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

pub(crate) fn limit_param(raw: Option<&str>, limit: PageLimit) -> ApiResult<u32> {
    let Some(raw) = raw else {
        return Ok(limit.default);
    };
    match raw.trim().parse::<u32>() {
        Ok(n) if (1..=limit.max).contains(&n) => Ok(n),
        _ => Err(ApiError::bad_parameter(
            "limit",
            format!("{raw:?} is not a whole number from 1 to {}", limit.max),
        )),
    }
}

#[derive(Serialize)]
struct IngestPage {
    items: Vec<IngestRecord>,
    next_cursor: Option<String>,
}

fn to_json<T: Serialize>(value: &T) -> ApiResult<Response> {
    let body = serde_json::to_string(value).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(json_response(StatusCode::OK, body))
}

#[utoipa::path(get, path = "/ingests", operation_id = "list_ingests", tag = "ingests", params(PageParams),
    responses(
        (status = 200, description = "Ledger entries, newest first", body = super::openapi::IngestPageDoc),
        (status = 400, description = "A bad parameter or cursor", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 401, description = "A key is required for reads here", body = super::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn list(
    _: CanRead,
    State(state): State<AppState>,
    Query(params): Query<PageParams>,
) -> ApiResult<Response> {
    let query = LedgerQuery {
        limit: limit_param(params.limit.as_deref(), LEDGER_LIMIT)?,
        cursor: params.cursor.filter(|c| !c.is_empty()),
    };
    let page = state.stores.ledger.list(&query).await?;
    to_json(&IngestPage {
        items: page.items,
        next_cursor: page.next_cursor,
    })
}

async fn record(state: &AppState, raw: &str) -> ApiResult<IngestRecord> {
    let id = IngestId::parse(raw).map_err(|e| ApiError::bad_parameter("ingest_id", e))?;
    state
        .stores
        .ledger
        .get(&id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no ingest with the id {id}")))
}

#[utoipa::path(get, path = "/ingests/{ingest_id}", operation_id = "get_ingest", tag = "ingests",
    params(("ingest_id" = String, Path, description = "The ingest's id")),
    responses(
        (status = 200, description = "The ledger entry", body = super::openapi::IngestRecordDoc),
        (status = 400, description = "A malformed id", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 401, description = "A key is required for reads here", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such ingest", body = super::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn get(
    _: CanRead,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    to_json(&record(&state, &id).await?)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RejectParams {
    /// Rejects to return (default 100), in file order.
    #[param(value_type = Option<u32>)]
    limit: Option<String>,
}

#[derive(Serialize)]
struct RejectList {
    ingest_id: String,
    total: u64,
    items: Vec<Reject>,
}

#[utoipa::path(get, path = "/ingests/{ingest_id}/rejects", operation_id = "get_rejects", tag = "ingests",
    params(("ingest_id" = String, Path, description = "The ingest's id"), RejectParams),
    responses(
        (status = 200, description = "The first rejects of the ingest, with their positions and reasons", body = super::openapi::RejectListDoc),
        (status = 400, description = "A malformed id or limit", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 401, description = "A key is required for reads here", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such ingest", body = super::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn rejects(
    _: CanRead,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<RejectParams>,
) -> ApiResult<Response> {
    let limit = limit_param(params.limit.as_deref(), REJECTS_LIMIT)? as usize;
    let record = record(&state, &id).await?;
    let mut items = Vec::new();
    if let Some(key) = &record.rejects_key {
        for line in state.bucket.read_lines(key, limit).await? {
            items.push(
                serde_json::from_str(&line)
                    .map_err(|e| ApiError::Internal(format!("rejects report {key}: {e}")))?,
            );
        }
    }
    to_json(&RejectList {
        ingest_id: record.id.to_string(),
        total: record.rejected,
        items,
    })
}

#[cfg(test)]
mod tests {
    use super::{upload_key, upload_type};

    #[test]
    fn upload_names_are_plain_and_end_like_uploads() {
        assert_eq!(upload_key("games.ndjson").unwrap(), "uploads/games.ndjson");
        assert!(upload_key("games.json.gz").is_ok());
        assert!(upload_key("../etc/passwd.json").is_err());
        assert!(upload_key("games.csv").is_ok());
        assert!(upload_key("games.xlsx").is_err());
        assert!(upload_key(".hidden.json").is_err());
    }

    #[test]
    fn a_presigned_upload_is_signed_for_the_type_of_its_name() {
        assert_eq!(upload_type("a.json"), "application/json");
        assert_eq!(upload_type("a.JSONL"), "application/x-ndjson");
        assert_eq!(upload_type("a.csv"), "text/csv");
        assert_eq!(upload_type("a.csv.gz"), "application/gzip");
    }
}
