//! `POST /games/batch/filter`: one change (add or remove a list entry, set a field, delete)
//! applied by the server to every game a filter matches, however many, as a job run in steps.
//! Each step lists the next games of the filter (by title, from the step's cursor) and applies
//! the change to each with `If-Match` on the version it listed, for at most [`STEP_GAMES`] games
//! or [`STEP_TIME`], and answers its counts and the cursor of the next step. The job's state is
//! that cursor, held by the client: any instance (or Lambda invocation) runs the next step, and
//! no request is ever large. A first pass with `dry_run` counts the games and what would change.

use super::error::{ApiError, ApiResult, Problem};
use super::games::{ListParams, Precondition, delete_game, patch_game, read_json};
use super::rate::ClientAddr;
use super::{AppState, CanWrite, json_response, list_within};
use axum::Extension;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use ludex_domain::{ListQuery, RecordFields, Sort, SortField, StoredGame};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::time::{Duration, Instant};

/// Games one step handles at most.
pub const STEP_GAMES: usize = 500;

/// How long one step goes on taking new pages.
const STEP_TIME: Duration = Duration::from_secs(5);

/// Failures listed in one step's answer; all are counted.
const FAILURES_SHOWN: usize = 100;

/// A step of a job.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FilterStep {
    /// The games: the query string of `GET /games` without `sort`, `limit` or `cursor`
    /// (`platform=PC&genre=RPG`; empty for every game).
    #[schema(format = "ludex-filter")]
    filter: String,
    change: FilterChange,
    /// The `next_cursor` of the previous step; absent for the first.
    #[serde(default)]
    #[schema(format = "ludex-cursor")]
    cursor: Option<String>,
    /// Count what the change would do; write nothing.
    #[serde(default)]
    dry_run: bool,
}

/// What happens to each game.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(tag = "op", rename_all = "lowercase", deny_unknown_fields)]
pub enum FilterChange {
    /// Adds an entry to a list field (nothing when it is there, ignoring case).
    Add {
        field: ListField,
        value: String,
    },
    /// Removes an entry from a list field, ignoring case.
    Remove {
        field: ListField,
        value: String,
    },
    /// Sets a field; `null` removes it.
    Set {
        field: SetField,
        value: Value,
    },
    Delete,
}

#[derive(Clone, Copy, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ListField {
    Platforms,
    Genres,
    Tags,
}

#[derive(Clone, Copy, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SetField {
    Title,
    ReleaseDate,
    Developer,
    Publisher,
    Rating,
    Description,
}

impl ListField {
    fn name(self) -> &'static str {
        match self {
            Self::Platforms => "platforms",
            Self::Genres => "genres",
            Self::Tags => "tags",
        }
    }
}

impl SetField {
    fn name(self) -> &'static str {
        match self {
            Self::Title => "title",
            Self::ReleaseDate => "release_date",
            Self::Developer => "developer",
            Self::Publisher => "publisher",
            Self::Rating => "rating",
            Self::Description => "description",
        }
    }
}

impl FilterChange {
    /// The merge patch that makes the change to `game`, or `None` when it would change nothing.
    fn patch(&self, game: &StoredGame) -> Option<RecordFields> {
        let current = game.fields().ok()?;
        let entries = |field: ListField| -> Vec<String> {
            current
                .known
                .get(field.name())
                .and_then(Value::as_array)
                .map(|items| {
                    items
                        .iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        let same = |a: &str, b: &str| a.to_lowercase() == b.trim().to_lowercase();
        let (field, value) = match self {
            Self::Add { field, value } => {
                let mut list = entries(*field);
                if list.iter().any(|v| same(v, value)) {
                    return None;
                }
                list.push(value.trim().to_owned());
                (field.name(), Value::from(list))
            }
            Self::Remove { field, value } => {
                let list = entries(*field);
                let kept: Vec<String> = list.iter().filter(|v| !same(v, value)).cloned().collect();
                if kept.len() == list.len() {
                    return None;
                }
                let value = if kept.is_empty() {
                    Value::Null
                } else {
                    Value::from(kept)
                };
                (field.name(), value)
            }
            Self::Set { field, value } => {
                if current.known.get(field.name()).unwrap_or(&Value::Null) == value {
                    return None;
                }
                (field.name(), value.clone())
            }
            Self::Delete => return Some(RecordFields::default()),
        };
        let mut known = Map::new();
        known.insert(field.to_owned(), value);
        Some(RecordFields {
            known,
            ..RecordFields::default()
        })
    }
}

/// A game the change could not be made to, with the status its own request would have had.
#[derive(Serialize, utoipa::ToSchema)]
pub struct FilterFailure {
    id: String,
    status: u16,
    problem: Problem,
}

/// What a step did (or, in a dry run, would do).
#[derive(Default, Serialize, utoipa::ToSchema)]
pub struct FilterStepDone {
    /// Games of the filter this step went through.
    processed: u64,
    /// Games changed (or, in a dry run, that would be).
    changed: u64,
    /// Games the change left as they were (the entry already there, the value already set).
    unchanged: u64,
    /// Games not changed because of an error: 412 when one changed since it was listed.
    failed: u64,
    /// The first failures.
    failures: Vec<FilterFailure>,
    /// The cursor of the next step; null when the job is done (`""`: from the start again).
    next_cursor: Option<String>,
    /// Seconds to wait before the next step, when the key's write limit stopped this one.
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_after: Option<u64>,
}

#[utoipa::path(post, path = "/games/batch/filter", operation_id = "batch_filter", tag = "games",
    request_body(content = FilterStep, content_type = "application/json"),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "One step: its counts, and the cursor of the next step (null when done)", body = FilterStepDone),
        (status = 400, description = "Not a step, or a bad filter or cursor (named in the problem)", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 401, description = "No valid key", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "A read-only key", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 413, description = "Too large", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 429, description = "More writes than the key has left now; the step changed nothing", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 503, description = "The listing ran longer than its timeout", body = super::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn step(
    CanWrite(author): CanWrite,
    State(state): State<AppState>,
    address: Option<Extension<ClientAddr>>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let json = (&["application/json"][..], "the step");
    let bytes = read_json(&headers, body, state.config.max_json_bytes, json).await?;
    let step: FilterStep = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("not a step: {e}")))?;
    let params: ListParams = serde_urlencoded::from_str(&step.filter)
        .map_err(|e| ApiError::bad_parameter("filter", e.to_string()))?;
    if params.orders() {
        return Err(ApiError::bad_parameter(
            "filter",
            "sort, limit and cursor belong to the job, not to its filter",
        ));
    }
    // By title: a change never moves a game along this order, except setting its title,
    // which is idempotent (a game met again is left as it is).
    let mut query = ListQuery {
        sort: Sort {
            field: SortField::Title,
            descending: false,
        },
        limit: ListQuery::MAX_LIMIT,
        cursor: step.cursor.clone().filter(|c| !c.is_empty()),
        ..params.query()?
    }
    .bounded()
    .map_err(ApiError::bad_query)?;
    let address = address.map(|Extension(a)| a);
    let began = Instant::now();
    let mut done = FilterStepDone::default();
    loop {
        let page = list_within(&state, &query).await?;
        let planned: Vec<(&StoredGame, Option<RecordFields>)> = page
            .items
            .iter()
            .map(|game| (game, step.change.patch(game)))
            .collect();
        for (game, patch) in planned {
            let Some(patch) = patch else {
                done.processed += 1;
                done.unchanged += 1;
                continue;
            };
            if step.dry_run {
                done.processed += 1;
                done.changed += 1;
                continue;
            }
            // Every change counts as a write against the key; the request was the first.
            let first = done.changed + done.failed == 0;
            if !first
                && let Err(refused) = state.config.rate_limiters.admit_more(&headers, address, 1)
            {
                // What this step did stands; the next step goes through this page again (from
                // the start: ""), where the games already changed are met as unchanged.
                done.next_cursor = Some(query.cursor.clone().unwrap_or_default());
                if let ApiError::TooManyRequests { retry_after, .. } = refused {
                    done.retry_after = Some(retry_after);
                }
                return answer(&done);
            }
            done.processed += 1;
            let listed = Precondition::version(game.version);
            let written = match step.change {
                FilterChange::Delete => delete_game(&state, &author, &game.id, &listed).await,
                _ => patch_game(&state, &author, &game.id, &listed, &patch)
                    .await
                    .map(|_| ()),
            };
            match written {
                Ok(()) => done.changed += 1,
                Err(error) => {
                    done.failed += 1;
                    let (problem, _, _) = error.problem();
                    if done.failures.len() < FAILURES_SHOWN {
                        done.failures.push(FilterFailure {
                            id: game.id.to_string(),
                            status: problem.status,
                            problem,
                        });
                    }
                }
            }
        }
        done.next_cursor = page.next_cursor;
        match &done.next_cursor {
            Some(cursor)
                if (done.processed as usize) < STEP_GAMES && began.elapsed() < STEP_TIME =>
            {
                query.cursor = Some(cursor.clone());
            }
            _ => break,
        }
    }
    answer(&done)
}

fn answer(done: &FilterStepDone) -> ApiResult<Response> {
    let body = serde_json::to_string(done)
        .map_err(|e| ApiError::Internal(format!("serialising a step: {e}")))?;
    Ok(json_response(StatusCode::OK, body))
}
