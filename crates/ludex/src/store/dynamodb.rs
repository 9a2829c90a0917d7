//! The DynamoDB store: the catalog and the ingest ledger in one table, one item per game.
//! `docs/dynamodb.md` is the design: keys, indexes, every access pattern, and what this
//! backend refuses. Listings never scan: each is a `Query` on one index, spread over
//! [`SHARDS`] partitions so that an ingest's writes do not all land on one index partition.

use super::{jittered, ledger_entry, ledger_json, now_rfc3339};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, DeleteRequest, GlobalSecondaryIndex,
    IndexStatus, KeySchemaElement, KeyType, KeysAndAttributes, Projection, ProjectionType,
    PutRequest, ScalarAttributeType, TableStatus, WriteRequest,
};
use futures::{StreamExt as _, TryStreamExt as _};
use ludex_domain::counts::{CatalogCounts, CountChanges, Dimension, counters_of};
use ludex_domain::cursor::{self, After};
use ludex_domain::report::{IngestId, IngestRecord};
use ludex_domain::{
    AttemptId, Author, Catalog, Claim, Game, GameId, GameVersion, HistoryQuery, Ledger,
    LedgerQuery, ListQuery, Page, Position, Retention, SortField, StagedGame, StoreError,
    StoreResult, StoredGame, UpsertOutcome,
};
use ludex_domain::{query_limits, search};
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

/// Index partitions per sort. A game's partition is fixed by its id; a listing queries all of
/// them and merges. Part of the data layout: changing it means rewriting every game.
pub const SHARDS: u8 = 8;
/// Items per `BatchWriteItem`, the service's limit.
const WRITE_BATCH: usize = 25;
/// Keys per `BatchGetItem`, the service's limit.
const READ_BATCH: usize = 100;
/// `BatchWriteItem` calls in flight at once for one upsert.
const WRITES_IN_FLIGHT: usize = 8;
/// How long unprocessed items are retried before the batch is reported as failed.
const RETRY_DEADLINE: Duration = Duration::from_secs(60);
const FIRST_BACKOFF: Duration = Duration::from_millis(25);
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// Items a filtered `Query` call reads at least.
const FILTERED_PAGE: usize = 100;
/// Items one call of a scan reads at most (a megabyte stops it before).
const SCAN_PAGE: usize = 1000;
/// Optimistic writes retried when another writer got there first.
const CONTENDED_RETRIES: usize = 5;

const GAME_SK: &str = "GAME";
const INGEST_SK: &str = "INGEST";
/// The sort key of an upload key's item that holds its newest ledger entry.
const LATEST_SK: &str = "LATEST";
const LEDGER_PARTITION: &str = "INGESTS";

/// The three ways a ledger entry is written (see [`Ledger`]).
enum LedgerWrite<'a> {
    Create,
    Claim { now: &'a str, holder: &'a str },
    Update { holder: &'a str },
}
/// The partition of the catalog's aggregates: one counter item per dimension and key, sort key
/// `DIMENSION#KEY`.
const COUNTS_PARTITION: &str = "COUNTS";
/// The attribute of a game's item that names the counters it is counted under (their sort
/// keys), so that a change or delete uncounts it without reading its content.
const COUNTED: &str = "counted";
/// Joins a sort value and the id in index sort keys. It sorts below every character a title,
/// date or rating key can hold, so the joined key sorts like the pair (value, id).
const SEP: char = '\u{1}';
/// The sort keys of a game's index items start with it (`T#<token>#<term>`).
const TERM_SK: &str = "T#";
/// The sort key of the item that marks a game an ingest found unchanged.
const MARK_SK: &str = "MARK";
/// The sort keys of a game's filed versions start with it (`V#<version, 20 digits>`).
const VERSION_SK: &str = "V#";
/// When a filed version expires (epoch seconds): the table's TTL attribute.
pub const EXPIRES_AT: &str = "expires_at";
/// Who wrote a game's version ([`Author::to_text`]), on its item and its filed versions.
const CHANGED_BY: &str = "changed_by";
/// The token of the write that made an item (see [`Stamp::token`]).
const TOKEN: &str = "wt";
/// A game's index terms, on its item, so that the next write can delete its index items.
const TERMS: &str = "terms";
/// A game's platform and genre terms, on its index items, for filters.
const LABELS: &str = "labels";
const YEAR: &str = "year";
/// The rating in tenths.
const RATING: &str = "rating";

/// One global secondary index: its name and key attributes.
#[derive(Debug)]
struct Index {
    name: &'static str,
    pk: &'static str,
    sk: &'static str,
}

const BY_UPDATED: Index = Index {
    name: "gsi1",
    pk: "gsi1pk",
    sk: "gsi1sk",
};
const BY_TITLE: Index = Index {
    name: "gsi2",
    pk: "gsi2pk",
    sk: "gsi2sk",
};
const BY_RELEASE: Index = Index {
    name: "gsi3",
    pk: "gsi3pk",
    sk: "gsi3sk",
};
const BY_RATING: Index = Index {
    name: "gsi4",
    pk: "gsi4pk",
    sk: "gsi4sk",
};
const INDEXES: [&Index; 4] = [&BY_UPDATED, &BY_TITLE, &BY_RELEASE, &BY_RATING];

fn index_for(field: SortField) -> &'static Index {
    match field {
        SortField::UpdatedAt => &BY_UPDATED,
        SortField::Title => &BY_TITLE,
        SortField::ReleaseDate => &BY_RELEASE,
        SortField::Rating => &BY_RATING,
    }
}

type Item = HashMap<String, AttributeValue>;

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn game_pk(id: &str) -> String {
    format!("GAME#{id}")
}

fn game_key(id: &str) -> Item {
    HashMap::from([("pk".into(), s(game_pk(id))), ("sk".into(), s(GAME_SK))])
}

fn ingest_key(id: &IngestId) -> Item {
    HashMap::from([
        ("pk".into(), s(format!("INGEST#{id}"))),
        ("sk".into(), s(INGEST_SK)),
    ])
}

/// The item that holds the newest ledger entry of an upload key: read with one `GetItem`
/// instead of a query over the whole ledger.
fn latest_key(upload_key: &str) -> Item {
    HashMap::from([
        ("pk".into(), s(format!("UPLOAD#{upload_key}"))),
        ("sk".into(), s(LATEST_SK)),
    ])
}

/// The index partition of a game.
fn shard_partition(shard: u8) -> String {
    format!("GAMES#{shard}")
}

fn shard_of(id: &str) -> u8 {
    blake3::hash(id.as_bytes()).as_bytes()[0] % SHARDS
}

/// The rating as it sorts: three digits of tenths, or `-` (below every digit) for none.
fn rating_key(tenths: Option<u8>) -> String {
    tenths.map_or_else(|| "-".to_owned(), |t| format!("{t:03}"))
}

fn text(item: &Item, name: &str) -> StoreResult<String> {
    match item.get(name) {
        Some(AttributeValue::S(value)) => Ok(value.clone()),
        _ => Err(StoreError::Internal(format!(
            "an item lacks the text attribute {name}"
        ))),
    }
}

fn number(item: &Item, name: &str) -> StoreResult<u64> {
    match item.get(name) {
        Some(AttributeValue::N(value)) => value
            .parse()
            .map_err(|_| StoreError::Internal(format!("the attribute {name} is {value:?}"))),
        _ => Err(StoreError::Internal(format!(
            "an item lacks the number attribute {name}"
        ))),
    }
}

fn into_stored(item: &Item) -> StoreResult<StoredGame> {
    let id = text(item, "id")?;
    Ok(StoredGame {
        id: super::stored_id(&id)?,
        version: number(item, "version")?,
        created_at: text(item, "created_at")?,
        updated_at: text(item, "updated_at")?,
        content: text(item, "content")?,
    })
}

fn hash_of(item: &Item) -> Option<&[u8]> {
    match item.get("hash") {
        Some(AttributeValue::B(blob)) => Some(blob.as_ref()),
        _ => None,
    }
}

/// Marks a game's item as a tombstone: what is kept of a deleted game (its id and last
/// version, no index keys, so it is never listed) for a game created again under the id to
/// count on from.
const DELETED: &str = "deleted";

fn is_tombstone(item: &Item) -> bool {
    item.contains_key(DELETED)
}

/// The tombstone that replaces a deleted game's item.
fn tombstone_item(id: &str, version: u64) -> Item {
    let mut item = game_key(id);
    item.extend([
        ("id".into(), s(id)),
        ("version".into(), n(version)),
        (DELETED.into(), s(now_rfc3339())),
    ]);
    item
}

/// The key of a game's filed version: in the game's partition, sorted by version.
fn version_key(id: &str, version: u64) -> Item {
    HashMap::from([
        ("pk".into(), s(game_pk(id))),
        ("sk".into(), s(format!("{VERSION_SK}{version:020}"))),
    ])
}

/// A filed version: `content` and `changed_by` as they were (no content: the version deleted
/// the game). Filed before the change it records is written, so a crash in between leaves a
/// filed version at or above the game's current one, which [`Catalog::history`] skips; filing
/// the same version twice writes the same item.
fn version_item(
    id: &str,
    version: u64,
    changed_at: String,
    changed_by: Option<String>,
    content: Option<String>,
) -> Item {
    let mut item = version_key(id, version);
    item.extend([
        ("version".into(), n(version)),
        ("changed_at".into(), s(changed_at)),
    ]);
    if let Some(author) = changed_by {
        item.insert(CHANGED_BY.into(), s(author));
    }
    if let Some(content) = content {
        item.insert("content".into(), s(content));
    }
    item
}

/// The filed version of a live game's item, before a change replaces it.
fn filed_version_of(current: &Item) -> StoreResult<Item> {
    Ok(version_item(
        &text(current, "id")?,
        number(current, "version")?,
        text(current, "updated_at")?,
        text(current, CHANGED_BY).ok(),
        Some(text(current, "content")?),
    ))
}

/// A version of a game's history from its item or a filed version's.
fn game_version(item: &Item) -> StoreResult<GameVersion> {
    let changed_at = match item.get("changed_at") {
        Some(_) => text(item, "changed_at")?,
        None => text(item, "updated_at")?,
    };
    Ok(GameVersion {
        version: number(item, "version")?,
        changed_at,
        author: text(item, CHANGED_BY)
            .ok()
            .as_deref()
            .and_then(Author::from_text),
        content: text(item, "content").ok(),
    })
}

/// What a conditional write of a game's item expects to find.
#[derive(Clone, Copy)]
enum Expect {
    /// No item at all: an id never used.
    Nothing,
    /// A live game at this version.
    Live(u64),
    /// The tombstone of a game deleted at this version.
    Tombstone(u64),
}

/// The listing attributes of an item that stands for a game in index partition `partition`:
/// the four indexes' keys, the id, the year and rating that filters compare, and the token of
/// the write that made it.
fn index_attributes(item: &mut Item, game: &Game, stamp: &Stamp, partition: &str) {
    let id = game.id.as_str();
    let sort_values = [
        stamp.updated_at.clone(),
        game.title_key(),
        game.release_key(),
        rating_key(game.rating.map(|r| r.tenths())),
    ];
    for (index, value) in INDEXES.iter().zip(sort_values) {
        item.insert(index.pk.into(), s(partition));
        item.insert(index.sk.into(), s(format!("{value}{SEP}{id}")));
    }
    item.insert("id".into(), s(id));
    if let Some(date) = game.release_date {
        item.insert(YEAR.into(), n(date.year()));
    }
    if let Some(rating) = game.rating {
        item.insert(RATING.into(), n(rating.tenths()));
    }
    item.insert(TOKEN.into(), s(stamp.token.clone()));
}

/// The item of a game at a version, in its shard's partition of all four indexes. `terms`
/// names its index items (see [`terms_of`]).
fn game_item(
    game: &Game,
    content: String,
    hash: &[u8; 32],
    stamp: &Stamp,
    terms: &[String],
) -> Item {
    let id = game.id.as_str();
    let mut item = game_key(id);
    index_attributes(&mut item, game, stamp, &shard_partition(shard_of(id)));
    item.extend([
        ("version".into(), n(stamp.version)),
        ("created_at".into(), s(stamp.created_at.clone())),
        ("updated_at".into(), s(stamp.updated_at.clone())),
        ("content".into(), s(content)),
        ("hash".into(), AttributeValue::B(Blob::new(hash.to_vec()))),
        (CHANGED_BY.into(), s(stamp.author.clone())),
    ]);
    if let Some(mark) = stamp.attempt.clone() {
        mark_with(&mut item, mark);
    }
    // Never empty: every game counts under a year and a rating (or their absence).
    let counted = counters_of(game)
        .into_iter()
        .map(|(dimension, key, _)| counter_sk(dimension, &key))
        .collect();
    item.insert(COUNTED.into(), AttributeValue::Ss(counted));
    if !terms.is_empty() {
        item.insert(TERMS.into(), AttributeValue::Ss(terms.to_vec()));
    }
    item
}

/// The index terms of a game, one index item each: every prefix of every word of its title
/// (folded as searches fold them, up to the longest word a search may hold), `w:` in front;
/// every platform (`p:`) and genre (`g:`), as filters compare them.
fn terms_of(game: &Game) -> Vec<String> {
    let mut terms = BTreeSet::new();
    for word in search::title_words(game.title.as_str()) {
        let mut prefix = String::new();
        for c in word.chars().take(query_limits::SEARCH_WORD_MAX_CHARS) {
            prefix.push(c);
            terms.insert(word_term(&prefix));
        }
    }
    terms.extend(labels_of(game));
    terms.into_iter().collect()
}

fn word_term(word: &str) -> String {
    let word: String = word
        .chars()
        .take(query_limits::SEARCH_WORD_MAX_CHARS)
        .collect();
    format!("w:{word}")
}

fn platform_term(key: &str) -> String {
    format!("p:{key}")
}

fn genre_term(key: &str) -> String {
    format!("g:{key}")
}

/// A game's platform and genre terms, which index items carry for filters to compare.
fn labels_of(game: &Game) -> Vec<String> {
    let platforms = game.platform_keys().into_iter().map(|k| platform_term(&k));
    platforms
        .chain(game.genre_keys().into_iter().map(|k| genre_term(&k)))
        .collect()
}

/// The index partition of a term's items in a shard.
fn term_partition(term: &str, shard: u8) -> String {
    format!("T#{term}#{shard}")
}

/// The sort key of a game's index item for `term`, written under `token`. It lives in the
/// game's own partition, next to the game's item.
fn term_sk(token: &str, term: &str) -> String {
    format!("{TERM_SK}{token}#{term}")
}

/// A game's index item for `term`.
fn term_item(game: &Game, stamp: &Stamp, term: &str, labels: &[String]) -> Item {
    let id = game.id.as_str();
    let mut item = HashMap::from([
        ("pk".into(), s(game_pk(id))),
        ("sk".into(), s(term_sk(&stamp.token, term))),
    ]);
    index_attributes(&mut item, game, stamp, &term_partition(term, shard_of(id)));
    if !labels.is_empty() {
        item.insert(LABELS.into(), AttributeValue::Ss(labels.to_vec()));
    }
    item
}

/// What writing a new game costs on this store.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriteCost {
    /// The game's item and its index items.
    pub items: usize,
    /// Write request units of the items, in the table and in the four indexes (one unit per
    /// started kilobyte of an item, in each).
    pub write_units: u64,
}

/// The items a new game writes (docs/dynamodb.md, "Cost") and their write units, measured on
/// the items themselves.
pub fn write_cost(game: &Game) -> WriteCost {
    let (content, hash) = game.content_and_hash();
    let stamp = cost_stamp();
    let terms = terms_of(game);
    let labels = labels_of(game);
    let items = std::iter::once(game_item(game, content, &hash, &stamp, &terms))
        .chain(terms.iter().map(|t| term_item(game, &stamp, t, &labels)));
    let mut cost = WriteCost::default();
    for item in items {
        cost.items += 1;
        cost.write_units += (1 + INDEXES.len() as u64) * item_size(&item).div_ceil(1024) as u64;
    }
    cost
}

/// The write units of the filed version an update of `game` adds to the update (docs/data-model.md,
/// "History"): one item in the table, in no index.
pub fn history_cost(game: &Game) -> u64 {
    let (content, hash) = game.content_and_hash();
    let stored = game_item(game, content, &hash, &cost_stamp(), &[]);
    filed_version_of(&stored).map_or(0, |filed| item_size(&filed).div_ceil(1024) as u64)
}

/// The bookkeeping of a game's item in [`write_cost`] and [`history_cost`], at its longest.
fn cost_stamp() -> Stamp {
    Stamp {
        version: 1,
        token: "0123456789abcdef".into(),
        created_at: "2026-01-01T00:00:00.000000Z".into(),
        updated_at: "2026-01-01T00:00:00.000000Z".into(),
        attempt: Some(("0123456789abcdef0123456789abcdef".into(), 1_000_000)),
        author: Author::ingest("uploads/catalog-2026-01-01.ndjson#0123456789abcdef").to_text(),
    }
}

/// An item's size as DynamoDB counts it: attribute names and values, numbers at about one
/// byte per two digits.
fn item_size(item: &Item) -> usize {
    let value = |v: &AttributeValue| match v {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => n.len() / 2 + 1,
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Ss(set) => set.iter().map(String::len).sum(),
        _ => 0,
    };
    item.iter().map(|(name, v)| name.len() + value(v)).sum()
}

/// A token no write used before: 64 random bits.
fn new_token() -> StoreResult<String> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes)
        .map_err(|e| StoreError::Internal(format!("no randomness for a write token: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The key of the item that marks a game an ingest attempt found unchanged (see
/// [`Existing::mark`]).
fn mark_key(id: &str) -> Item {
    HashMap::from([("pk".into(), s(game_pk(id))), ("sk".into(), s(MARK_SK))])
}

/// The ingest attempt mark an item holds, and the record's position.
fn attempt_of(item: &Item) -> Option<(String, u64)> {
    match (item.get("attempt"), number(item, "attempt_pos")) {
        (Some(AttributeValue::S(a)), Ok(pos)) => Some((a.clone(), pos)),
        _ => None,
    }
}

/// Sets an item's ingest attempt mark.
fn mark_with(item: &mut Item, (attempt, position): (String, u64)) {
    item.insert("attempt".into(), s(attempt));
    item.insert("attempt_pos".into(), n(position));
}

fn strings(item: &Item, name: &str) -> Vec<String> {
    match item.get(name) {
        Some(AttributeValue::Ss(values)) => values.clone(),
        _ => Vec::new(),
    }
}

fn put_request(item: Item) -> StoreResult<WriteRequest> {
    Ok(WriteRequest::builder()
        .put_request(
            PutRequest::builder()
                .set_item(Some(item))
                .build()
                .map_err(|e| StoreError::Internal(e.to_string()))?,
        )
        .build())
}

fn delete_request(key: Item) -> StoreResult<WriteRequest> {
    Ok(WriteRequest::builder()
        .delete_request(
            DeleteRequest::builder()
                .set_key(Some(key))
                .build()
                .map_err(|e| StoreError::Internal(e.to_string()))?,
        )
        .build())
}

/// Deletes of the index items a game's write under `token` made.
fn index_deletes(id: &str, token: &str, terms: &[String]) -> StoreResult<Vec<WriteRequest>> {
    terms
        .iter()
        .map(|term| {
            delete_request(HashMap::from([
                ("pk".into(), s(game_pk(id))),
                ("sk".into(), s(term_sk(token, term))),
            ]))
        })
        .collect()
}

/// Puts of a game's index items, one per term.
fn index_puts(game: &Game, stamp: &Stamp, terms: &[String]) -> StoreResult<Vec<WriteRequest>> {
    let labels = labels_of(game);
    terms
        .iter()
        .map(|term| put_request(term_item(game, stamp, term, &labels)))
        .collect()
}

fn counter_sk(dimension: Dimension, key: &str) -> String {
    format!("{}#{key}", dimension.as_str())
}

/// The counter a [`counter_sk`] names.
fn counter_of_sk(sk: &str) -> Option<(Dimension, &str)> {
    let (dimension, key) = sk.split_once('#')?;
    Some((Dimension::parse(dimension)?, key))
}

/// Takes a stored game out of `changes` by the counters its item names.
fn uncount(item_counted: &[String], changes: &mut CountChanges) {
    changes.remove(item_counted.iter().filter_map(|sk| counter_of_sk(sk)));
}

/// The counters a stored item names (none for a tombstone).
fn counted_of(item: &Item) -> Vec<String> {
    match item.get(COUNTED) {
        Some(AttributeValue::Ss(keys)) => keys.clone(),
        _ => Vec::new(),
    }
}

/// The bookkeeping part of a game's item.
struct Stamp {
    version: u64,
    /// The write's token, which its index items carry: an index item counts only while the
    /// game's item holds the same token.
    token: String,
    created_at: String,
    updated_at: String,
    /// The ingest attempt that last wrote the game and the record's position in its file.
    attempt: Option<(String, u64)>,
    /// [`Author::to_text`].
    author: String,
}

fn position_number(position: Position) -> u64 {
    let (Position::Line(n) | Position::Index(n)) = position;
    n
}

fn same_kind(position: Position, number: u64) -> Position {
    match position {
        Position::Line(_) => Position::Line(number),
        Position::Index(_) => Position::Index(number),
    }
}

/// An inclusive range of index sort keys, and the key of the previous page's last item.
#[derive(Debug, Default)]
struct KeyRange {
    low: Option<String>,
    high: Option<String>,
    /// Left out of the results: the range includes it so that one condition serves both the
    /// filter and the cursor.
    exclude: Option<String>,
}

/// Conditions on index items that their keys do not answer: checked by DynamoDB on the items a
/// query reads (a `FilterExpression`), so that only matching items come back.
#[derive(Debug, Default, PartialEq)]
struct Filter {
    /// Platform and genre terms the game must have (beside the one whose partition is read).
    labels: Vec<String>,
    year_from: Option<u16>,
    year_to: Option<u16>,
    /// In tenths.
    min_rating: Option<u8>,
}

impl Filter {
    /// The filter expression, with its names and values added to the query's.
    fn expression(
        &self,
        names: &mut HashMap<String, String>,
        values: &mut HashMap<String, AttributeValue>,
    ) -> Option<String> {
        let mut parts = Vec::new();
        for (i, label) in self.labels.iter().enumerate() {
            names.insert("#labels".into(), LABELS.into());
            values.insert(format!(":label{i}"), s(label.clone()));
            parts.push(format!("contains(#labels, :label{i})"));
        }
        let mut at_least = |name: &str, attribute: &str, op: &str, value: Option<u64>| {
            if let Some(value) = value {
                names.insert(format!("#{attribute}"), attribute.into());
                values.insert(format!(":{name}"), n(value));
                parts.push(format!("#{attribute} {op} :{name}"));
            }
        };
        at_least("year_from", YEAR, ">=", self.year_from.map(u64::from));
        at_least("year_to", YEAR, "<=", self.year_to.map(u64::from));
        at_least("min_rating", RATING, ">=", self.min_rating.map(u64::from));
        (!parts.is_empty()).then(|| parts.join(" AND "))
    }
}

/// How a listing is read: which items, on which index, in which range of its sort keys, with
/// which conditions.
#[derive(Debug)]
struct Plan {
    index: &'static Index,
    range: KeyRange,
    /// `None`: the games' own items, which carry the documents. A term: its index items, whose
    /// games are then read by id.
    term: Option<String>,
    filter: Filter,
    /// The search's words, checked against each listed game's title.
    words: Vec<String>,
}

impl Plan {
    fn partition(&self, shard: u8) -> String {
        match &self.term {
            Some(term) => term_partition(term, shard),
            None => shard_partition(shard),
        }
    }
}

/// What a listing reads (docs/dynamodb.md, "Access patterns"). The sort picks the index. A
/// search or a platform or genre picks the partitions: those of one term — the longest search
/// word (the most selective as a rule), else the genre, else the platform — and the other
/// labels are filtered on the index items. Years and the minimum rating narrow the key range
/// when the sort is on them, and are filtered otherwise.
fn plan(query: &ListQuery) -> StoreResult<Plan> {
    let words = query
        .q
        .as_deref()
        .map(search::query_words)
        .unwrap_or_default();
    let mut labels: Vec<String> = Vec::new();
    if let Some(platform) = &query.platform {
        labels.push(platform_term(&platform.to_lowercase()));
    }
    if let Some(genre) = &query.genre {
        labels.push(genre_term(&genre.to_lowercase()));
    }
    let term = match words.iter().max_by_key(|w| w.chars().count()) {
        Some(word) => Some(word_term(word)),
        None => labels.pop(),
    };
    let field = query.sort.field;
    let mut range = KeyRange::default();
    let mut filter = Filter {
        labels,
        ..Filter::default()
    };
    if query.year_from.is_some() || query.year_to.is_some() {
        if field == SortField::ReleaseDate {
            // Release keys start with the year; games without a date (empty key) stay out.
            range.low = Some(query.year_from.map_or("0".into(), |y| format!("{y:04}")));
            range.high = query.year_to.map(|y| format!("{y:04}~"));
        } else {
            filter.year_from = query.year_from;
            filter.year_to = query.year_to;
        }
    }
    if let Some(rating) = query.min_rating {
        if field == SortField::Rating {
            range.low = Some(rating_key(Some(rating.tenths())));
        } else {
            filter.min_rating = Some(rating.tenths());
        }
    }
    if let Some(after) = cursor::decode(query)? {
        let serde_json::Value::String(key) = after.value else {
            return Err(StoreError::InvalidCursor(
                "its sort value has the wrong type".into(),
            ));
        };
        let bound = if query.sort.descending {
            &mut range.high
        } else {
            &mut range.low
        };
        let tighter = match bound.take() {
            Some(current) if query.sort.descending => current.min(key.clone()),
            Some(current) => current.max(key.clone()),
            None => key.clone(),
        };
        *bound = Some(tighter);
        range.exclude = Some(key);
    }
    Ok(Plan {
        index: index_for(field),
        range,
        term,
        filter,
        words,
    })
}

/// One index partition, read in index order a page at a time.
struct Partition {
    name: String,
    /// Items read and not yet taken, with their index sort keys.
    read: VecDeque<(String, Item)>,
    /// Where the next page starts.
    start: Option<Item>,
    done: bool,
}

impl Partition {
    fn new(name: String) -> Self {
        Self {
            name,
            read: VecDeque::new(),
            start: None,
            done: false,
        }
    }

    /// Waits for a page: nothing read is left and more may come.
    fn starved(&self) -> bool {
        self.read.is_empty() && !self.done
    }
}

/// The parts of a `Query` that every partition of a listing shares.
struct Reader<'a> {
    index: &'a Index,
    range: &'a KeyRange,
    condition: &'static str,
    filter: Option<String>,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
    descending: bool,
    /// Items per `Query` call (its `Limit`, counted before the filter).
    page: usize,
}

impl<'a> Reader<'a> {
    fn new(
        index: &'a Index,
        range: &'a KeyRange,
        filter: &Filter,
        descending: bool,
        want: usize,
    ) -> Self {
        let condition = match (&range.low, &range.high) {
            (Some(_), Some(_)) => "#pk = :pk AND #sk BETWEEN :low AND :high",
            (Some(_), None) => "#pk = :pk AND #sk >= :low",
            (None, Some(_)) => "#pk = :pk AND #sk <= :high",
            (None, None) => "#pk = :pk",
        };
        let mut values = HashMap::new();
        if let Some(low) = &range.low {
            values.insert(":low".into(), s(low.clone()));
        }
        if let Some(high) = &range.high {
            values.insert(":high".into(), s(high.clone()));
        }
        let mut names = HashMap::from([("#pk".to_owned(), index.pk.to_owned())]);
        if range.low.is_some() || range.high.is_some() {
            names.insert("#sk".into(), index.sk.into());
        }
        let filter = filter.expression(&mut names, &mut values);
        // One more than wanted: the cursor's own item may come first. A filtered read takes
        // bigger pages, since some of what it reads does not come back.
        let page = if filter.is_some() {
            (want + 1).max(FILTERED_PAGE)
        } else {
            want + 1
        };
        Self {
            index,
            range,
            condition,
            filter,
            names,
            values,
            descending,
            page,
        }
    }

    /// Reads the next page of `partition`.
    async fn fetch(&self, store: &DynamoStore, partition: &mut Partition) -> StoreResult<()> {
        let mut values = self.values.clone();
        values.insert(":pk".into(), s(partition.name.clone()));
        let out = store
            .client
            .query()
            .table_name(&store.table)
            .index_name(self.index.name)
            .key_condition_expression(self.condition)
            .set_filter_expression(self.filter.clone())
            .set_expression_attribute_names(Some(self.names.clone()))
            .set_expression_attribute_values(Some(values))
            .scan_index_forward(!self.descending)
            .limit(i32::try_from(self.page).unwrap_or(i32::MAX))
            .set_exclusive_start_key(partition.start.take())
            .send()
            .await
            .map_err(|e| store.error(e))?;
        for item in out.items.unwrap_or_default() {
            let key = text(&item, self.index.sk)?;
            if self.range.exclude.as_ref() != Some(&key) {
                partition.read.push_back((key, item));
            }
        }
        partition.start = out.last_evaluated_key;
        partition.done = partition.start.is_none();
        Ok(())
    }

    /// The first `want` items of one partition.
    async fn first(
        &self,
        store: &DynamoStore,
        name: String,
        want: usize,
    ) -> StoreResult<Vec<(String, Item)>> {
        let mut partition = Partition::new(name);
        while partition.read.len() < want && !partition.done {
            self.fetch(store, &mut partition).await?;
        }
        partition.read.truncate(want);
        Ok(partition.read.into())
    }

    /// Takes up to `want` items from `partitions` in merged index order, stopping early when
    /// a partition that may hold the next item has nothing read.
    fn take_merged(&self, partitions: &mut [Partition], want: usize) -> Vec<(String, Item)> {
        let mut taken = Vec::new();
        while taken.len() < want && !partitions.iter().any(Partition::starved) {
            let next = partitions
                .iter_mut()
                .filter(|p| !p.read.is_empty())
                .min_by(|a, b| {
                    let (a, b) = (&a.read[0].0, &b.read[0].0);
                    if self.descending { b.cmp(a) } else { a.cmp(b) }
                });
            match next.and_then(|p| p.read.pop_front()) {
                Some(item) => taken.push(item),
                None => break,
            }
        }
        taken
    }
}

pub struct DynamoStore {
    client: Client,
    table: String,
    retry_deadline: Duration,
    retention: Retention,
}

/// What `BatchGetItem` found of a game the batch writes.
struct Existing {
    version: u64,
    /// The item is a tombstone: the game was deleted at `version`.
    deleted: bool,
    created_at: String,
    updated_at: String,
    hash: Vec<u8>,
    attempt: Option<(String, u64)>,
    /// The attempt that last found the game unchanged, from the game's mark item: an ingest
    /// that changes nothing writes only that small item, never the game's own (which a
    /// concurrent edit may have replaced since the read).
    mark: Option<(String, u64)>,
    /// The counters the stored game is counted under.
    counted: Vec<String>,
    /// The token of the write that made the item, and the terms of its index items. `None`
    /// for a tombstone, and for a game written before index items existed.
    token: Option<String>,
    terms: Vec<String>,
    /// The version as the history files it when the batch replaces it (`None` for a
    /// tombstone).
    filed: Option<Item>,
}

impl DynamoStore {
    /// A store over an existing table. Makes no request: the first call finds out whether the
    /// table is there (the Lambda functions start with this; Terraform owns the table).
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            retry_deadline: RETRY_DEADLINE,
            retention: Retention::default(),
        }
    }

    /// Keeps the history as `retention` says (all of it by default): a filed version expires
    /// `days` after it was filed (the table's TTL attribute `expires_at`, see
    /// docs/dynamodb.md), and filing a version deletes the one `versions` below it.
    pub fn with_retention(mut self, retention: Retention) -> Self {
        self.retention = retention;
        self
    }

    /// The writes that file `version`, an item of [`version_item`]: the item, with its expiry
    /// when versions are kept for some days (not a deletion: nothing replaces it), and the
    /// deletion of the filed version the count no longer keeps.
    fn filing(&self, mut version: Item) -> StoreResult<Vec<WriteRequest>> {
        let number = number(&version, "version")?;
        let id = text(&version, "pk")?;
        let id = id.strip_prefix(&game_pk("")).unwrap_or(&id).to_owned();
        if let Some(days) = self.retention.days
            && version.contains_key("content")
        {
            let expires = time::OffsetDateTime::now_utc() + time::Duration::days(i64::from(days));
            version.insert(EXPIRES_AT.into(), n(expires.unix_timestamp()));
        }
        let mut writes = vec![put_request(version)?];
        if let Some(dropped) = self
            .retention
            .versions
            .and_then(|keep| number.checked_sub(u64::from(keep)))
            .filter(|v| *v > 0)
        {
            writes.push(delete_request(version_key(&id, dropped))?);
        }
        Ok(writes)
    }

    /// How long unprocessed batch items are retried before the batch fails (default 60 s).
    pub fn with_retry_deadline(mut self, deadline: Duration) -> Self {
        self.retry_deadline = deadline;
        self
    }

    /// Maps an SDK error: throttling, timeouts and lost connections are `Unavailable`.
    fn error<E, R>(&self, e: SdkError<E, R>) -> StoreError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug,
    {
        let message = DisplayErrorContext(&e).to_string();
        let code = e.code().unwrap_or_default();
        match (&e, code) {
            (
                SdkError::TimeoutError(_)
                | SdkError::DispatchFailure(_)
                | SdkError::ResponseError(_),
                _,
            )
            | (
                _,
                "ProvisionedThroughputExceededException"
                | "ThrottlingException"
                | "RequestLimitExceeded"
                | "InternalServerError"
                | "ServiceUnavailable",
            ) => StoreError::Unavailable(message),
            (_, "ResourceNotFoundException") => StoreError::Internal(format!(
                "the DynamoDB table {} does not exist or is not active \
                 (create it with `ludex init --store dynamodb://{}`): {message}",
                self.table, self.table
            )),
            _ => StoreError::Internal(message),
        }
    }

    /// Creates the table with its indexes when it does not exist, and waits until it is
    /// active. Returns what it created (empty when the table was there), for `ludex init`.
    pub async fn ensure_table(&self) -> StoreResult<Vec<String>> {
        match self
            .client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
        {
            Ok(described) => {
                let names: Vec<&str> = described
                    .table()
                    .map(|t| t.global_secondary_indexes())
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|i| i.index_name())
                    .collect();
                if let Some(missing) = INDEXES.iter().find(|i| !names.contains(&i.name)) {
                    return Err(StoreError::Internal(format!(
                        "the DynamoDB table {} has no index {}; it was not made for ludex \
                         (see docs/dynamodb.md)",
                        self.table, missing.name
                    )));
                }
                self.wait_until_active().await?;
                Ok(Vec::new())
            }
            Err(e) if e.code() == Some("ResourceNotFoundException") => {
                self.create_table().await?;
                self.wait_until_active().await?;
                self.client
                    .update_time_to_live()
                    .table_name(&self.table)
                    .time_to_live_specification(
                        aws_sdk_dynamodb::types::TimeToLiveSpecification::builder()
                            .attribute_name(EXPIRES_AT)
                            .enabled(true)
                            .build()
                            .map_err(|e| StoreError::Internal(e.to_string()))?,
                    )
                    .send()
                    .await
                    .map_err(|e| self.error(e))?;
                Ok(vec![format!(
                    "table {} with indexes gsi1..gsi4 and TTL on {EXPIRES_AT}",
                    self.table
                )])
            }
            Err(e) => Err(self.error(e)),
        }
    }

    async fn create_table(&self) -> StoreResult<()> {
        let built = |e: aws_sdk_dynamodb::error::BuildError| StoreError::Internal(e.to_string());
        let key = |name: &str, kind: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
                .map_err(built)
        };
        let attribute = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(built)
        };
        let mut request = self
            .client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key("pk", KeyType::Hash)?)
            .key_schema(key("sk", KeyType::Range)?)
            .attribute_definitions(attribute("pk")?)
            .attribute_definitions(attribute("sk")?);
        for index in INDEXES {
            request = request
                .attribute_definitions(attribute(index.pk)?)
                .attribute_definitions(attribute(index.sk)?)
                .global_secondary_indexes(
                    GlobalSecondaryIndex::builder()
                        .index_name(index.name)
                        .key_schema(key(index.pk, KeyType::Hash)?)
                        .key_schema(key(index.sk, KeyType::Range)?)
                        .projection(
                            Projection::builder()
                                .projection_type(ProjectionType::All)
                                .build(),
                        )
                        .build()
                        .map_err(built)?,
                );
        }
        match request.send().await {
            Ok(_) => Ok(()),
            // Another process created it first.
            Err(e) if e.code() == Some("ResourceInUseException") => Ok(()),
            Err(e) => Err(self.error(e)),
        }
    }

    async fn wait_until_active(&self) -> StoreResult<()> {
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let described = self
                .client
                .describe_table()
                .table_name(&self.table)
                .send()
                .await
                .map_err(|e| self.error(e))?;
            let active = described.table().is_some_and(|t| {
                t.table_status() == Some(&TableStatus::Active)
                    && t.global_secondary_indexes()
                        .iter()
                        .all(|i| i.index_status() == Some(&IndexStatus::Active))
            });
            if active {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(StoreError::Unavailable(format!(
                    "the table {} did not become active in 5 minutes",
                    self.table
                )));
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    async fn get_item(&self, key: Item) -> StoreResult<Option<Item>> {
        self.client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map(|out| out.item)
            .map_err(|e| self.error(e))
    }

    /// Writes a game's item only if the stored item is what `expected` says. `Ok(false)` when
    /// the condition failed.
    async fn put_if(&self, item: Item, expected: Expect) -> StoreResult<bool> {
        let request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item));
        let request = match expected {
            Expect::Nothing => request.condition_expression("attribute_not_exists(pk)"),
            Expect::Live(version) => request
                .condition_expression("version = :expected AND attribute_not_exists(#deleted)")
                .expression_attribute_names("#deleted", DELETED)
                .expression_attribute_values(":expected", n(version)),
            Expect::Tombstone(version) => request
                .condition_expression("version = :expected AND attribute_exists(#deleted)")
                .expression_attribute_names("#deleted", DELETED)
                .expression_attribute_values(":expected", n(version)),
        };
        self.put_conditionally(request).await
    }

    /// Sends a conditional `PutItem`: `Ok(false)` when its condition failed.
    async fn put_conditionally(
        &self,
        request: aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder,
    ) -> StoreResult<bool> {
        match request.send().await {
            Ok(_) => Ok(true),
            Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(false),
            Err(e) => Err(self.error(e)),
        }
    }

    /// Writes a ledger entry if the stored one allows `write`, then the upload key's newest
    /// entry. `Ok(false)`, and nothing written, when the condition failed.
    async fn put_entry(&self, record: &IngestRecord, write: LedgerWrite<'_>) -> StoreResult<bool> {
        let json = ledger_json(record)?;
        let mut item = ingest_key(&record.id);
        item.extend([
            (BY_UPDATED.pk.into(), s(LEDGER_PARTITION)),
            (
                BY_UPDATED.sk.into(),
                s(format!("{}{SEP}{}", record.started_at, record.id)),
            ),
            ("record".into(), s(json.clone())),
        ]);
        // What the conditions read, outside the JSON.
        if record.is_settled() {
            item.insert("settled".into(), AttributeValue::Bool(true));
        }
        if let Some(lease) = &record.lease {
            item.insert("lease_holder".into(), s(lease.holder.clone()));
            item.insert("lease_until".into(), s(lease.until.clone()));
        }
        let request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item));
        let request = match write {
            LedgerWrite::Create => request.condition_expression("attribute_not_exists(pk)"),
            LedgerWrite::Claim { now, holder } => request
                .condition_expression(
                    "attribute_not_exists(pk) OR (attribute_not_exists(settled) AND \
                     (attribute_not_exists(lease_holder) OR lease_until < :now OR lease_holder = :holder))",
                )
                .expression_attribute_values(":now", s(now))
                .expression_attribute_values(":holder", s(holder)),
            LedgerWrite::Update { holder } => request
                .condition_expression("lease_holder = :holder")
                .expression_attribute_values(":holder", s(holder)),
        };
        if !self.put_conditionally(request).await? {
            return Ok(false);
        }
        // Then the key's newest entry, unless an entry that started later is already there.
        // Written after the entry: a crash in between leaves the previous newest entry, and
        // the upload is then ingested again rather than taken for a replay.
        let mut latest = latest_key(&record.key);
        latest.extend([
            ("started_at".into(), s(record.started_at.clone())),
            ("record".into(), s(json)),
        ]);
        // A refused condition leaves the later entry in place; the entry itself is written.
        self.put_conditionally(
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(latest))
                .condition_expression("attribute_not_exists(pk) OR started_at <= :started")
                .expression_attribute_values(":started", s(record.started_at.clone())),
        )
        .await?;
        Ok(true)
    }

    /// Writes a game's index items, then its item if the stored item is what `expected` says.
    /// When the condition fails the index items are deleted again (no game will name their
    /// token) and the answer is `Ok(false)`.
    async fn write_indexed(
        &self,
        game: &Game,
        stamp: &Stamp,
        terms: &[String],
        item: Item,
        expected: Expect,
    ) -> StoreResult<bool> {
        self.write_all(index_puts(game, stamp, terms)?).await?;
        if self.put_if(item, expected).await? {
            return Ok(true);
        }
        self.write_all(index_deletes(game.id.as_str(), &stamp.token, terms)?)
            .await?;
        Ok(false)
    }

    /// Deletes the index items of a game's item that a write has just replaced.
    async fn drop_index(&self, replaced: &Item) -> StoreResult<()> {
        let Ok(token) = text(replaced, TOKEN) else {
            return Ok(());
        };
        let id = text(replaced, "id")?;
        self.write_all(index_deletes(&id, &token, &strings(replaced, TERMS))?)
            .await
    }

    /// A game's item as it is now, tombstone or live, read consistently.
    async fn game_item_now(&self, id: &GameId) -> StoreResult<Option<Item>> {
        self.get_item(game_key(id.as_str())).await
    }

    /// Items by key, read consistently, 100 keys a call, unprocessed keys retried. Missing
    /// items are left out.
    async fn batch_get(
        &self,
        keys: Vec<Item>,
        projection: Option<(&str, &[(&str, &str)])>,
    ) -> StoreResult<Vec<Item>> {
        let mut found = Vec::with_capacity(keys.len());
        let mut rest = keys.into_iter().peekable();
        while rest.peek().is_some() {
            let mut keys: Vec<Item> = rest.by_ref().take(READ_BATCH).collect();
            let mut retry = Retry::new(self.retry_deadline);
            while !keys.is_empty() {
                let mut request = KeysAndAttributes::builder()
                    .set_keys(Some(keys))
                    .consistent_read(true);
                if let Some((expression, names)) = projection {
                    request = request.projection_expression(expression);
                    for (name, attribute) in names {
                        request = request.expression_attribute_names(*name, *attribute);
                    }
                }
                let request = request
                    .build()
                    .map_err(|e| StoreError::Internal(e.to_string()))?;
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(|e| self.error(e))?;
                found.extend(
                    out.responses
                        .and_then(|mut r| r.remove(&self.table))
                        .unwrap_or_default(),
                );
                keys = out
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(&self.table))
                    .map(|k| k.keys)
                    .unwrap_or_default();
                if !keys.is_empty() {
                    retry.wait(keys.len(), "BatchGetItem").await?;
                }
            }
        }
        Ok(found)
    }

    /// Reads what the batch's games look like now: their items and mark items.
    async fn existing(&self, ids: &[&str]) -> StoreResult<HashMap<String, Existing>> {
        let keys = ids
            .iter()
            .flat_map(|id| [game_key(id), mark_key(id)])
            .collect();
        let items = self
            .batch_get(
                keys,
                Some((
                    "pk, sk, id, version, created_at, updated_at, #hash, attempt, attempt_pos, \
                     #deleted, #counted, #token, #terms, content, #changed_by",
                    &[
                        ("#changed_by", CHANGED_BY),
                        ("#counted", COUNTED),
                        ("#hash", "hash"),
                        ("#deleted", DELETED),
                        ("#token", TOKEN),
                        ("#terms", TERMS),
                    ],
                )),
            )
            .await?;
        let mut found = HashMap::with_capacity(ids.len());
        let mut marks = HashMap::new();
        for item in items {
            let attempt = attempt_of(&item);
            if text(&item, "sk")? == MARK_SK {
                let pk = text(&item, "pk")?;
                if let (Some(id), Some(attempt)) = (pk.strip_prefix("GAME#"), attempt) {
                    marks.insert(id.to_owned(), attempt);
                }
                continue;
            }
            let deleted = is_tombstone(&item);
            // A tombstone keeps no times.
            let time = |name| match deleted {
                true => Ok(String::new()),
                false => text(&item, name),
            };
            found.insert(
                text(&item, "id")?,
                Existing {
                    version: number(&item, "version")?,
                    deleted,
                    created_at: time("created_at")?,
                    updated_at: time("updated_at")?,
                    hash: hash_of(&item).unwrap_or_default().to_vec(),
                    attempt,
                    mark: None,
                    counted: counted_of(&item),
                    token: text(&item, TOKEN).ok(),
                    terms: strings(&item, TERMS),
                    filed: (!deleted).then(|| filed_version_of(&item)).transpose()?,
                },
            );
        }
        for (id, mark) in marks {
            if let Some(existing) = found.get_mut(&id) {
                existing.mark = Some(mark);
            }
        }
        Ok(found)
    }

    /// Writes and deletes items, 25 a call and a few calls at once.
    async fn write_all(&self, requests: Vec<WriteRequest>) -> StoreResult<()> {
        let mut chunks = Vec::with_capacity(requests.len().div_ceil(WRITE_BATCH));
        let mut rest = requests.into_iter().peekable();
        while rest.peek().is_some() {
            chunks.push(rest.by_ref().take(WRITE_BATCH).collect::<Vec<_>>());
        }
        futures::stream::iter(chunks)
            .map(|chunk| self.write_chunk(chunk))
            .buffer_unordered(WRITES_IN_FLIGHT)
            .try_collect::<()>()
            .await
    }

    /// The listed games of index items read for `plan`, in their order: each item's game is
    /// read by id and kept only if its item still holds the index item's token (a write since
    /// replaced it, or is about to) and its title has the search's words.
    async fn resolve(
        &self,
        plan: &Plan,
        items: Vec<(String, Item)>,
    ) -> StoreResult<Vec<(String, StoredGame)>> {
        if plan.term.is_none() {
            // The games' own items, documents included.
            return items
                .into_iter()
                .map(|(key, item)| Ok((key, into_stored(&item)?)))
                .collect();
        }
        let ids: BTreeSet<String> = items
            .iter()
            .map(|(_, item)| text(item, "id"))
            .collect::<StoreResult<_>>()?;
        let games: HashMap<String, Item> = self
            .batch_get(ids.iter().map(|id| game_key(id)).collect(), None)
            .await?
            .into_iter()
            .map(|item| Ok((text(&item, "id")?, item)))
            .collect::<StoreResult<_>>()?;
        let mut listed = Vec::with_capacity(items.len());
        for (key, item) in items {
            let Some(game) = games.get(&text(&item, "id")?) else {
                continue;
            };
            if is_tombstone(game) || game.get(TOKEN) != item.get(TOKEN) {
                continue;
            }
            let stored = into_stored(game)?;
            if !plan.words.is_empty() {
                let title = stored
                    .game()
                    .map_err(|_| StoreError::Internal(format!("the stored game {}", stored.id)))?
                    .title;
                if !search::title_matches(title.as_str(), &plan.words) {
                    continue;
                }
            }
            listed.push((key, stored));
        }
        Ok(listed)
    }

    /// One `BatchWriteItem` of up to 25 puts, with its unprocessed items retried until done
    /// or the deadline passes (then the batch fails: nothing is dropped silently).
    async fn write_chunk(&self, chunk: Vec<WriteRequest>) -> StoreResult<()> {
        let mut pending = chunk;
        let mut retry = Retry::new(self.retry_deadline);
        loop {
            let out = self
                .client
                .batch_write_item()
                .request_items(&self.table, pending)
                .send()
                .await
                .map_err(|e| self.error(e))?;
            pending = out
                .unprocessed_items
                .and_then(|mut u| u.remove(&self.table))
                .unwrap_or_default();
            if pending.is_empty() {
                return Ok(());
            }
            retry.wait(pending.len(), "BatchWriteItem").await?;
        }
    }

    /// Applies the counter changes of one API write whose game item has landed. A passing
    /// failure (throttling past the SDK's retries) is logged, not returned: the write itself
    /// succeeded, and answering it with an error would have the client retry a write that is
    /// done. The aggregates are then off, as docs/dynamodb.md says under "Where the counters
    /// can drift". Any other failure (a missing permission) is returned.
    async fn count_written(&self, changes: CountChanges) -> StoreResult<()> {
        match self.apply_counts(changes).await {
            Err(StoreError::Unavailable(e)) => {
                tracing::error!(error = %e, "a game was written but its counters were not updated; the aggregates are off");
                Ok(())
            }
            counted => counted,
        }
    }

    /// Applies counter changes: one `UpdateItem` per counter, a few at a time. A counter at
    /// zero stays (reads skip it), so that no write ever needs a second request.
    async fn apply_counts(&self, changes: CountChanges) -> StoreResult<()> {
        futures::stream::iter(changes.into_changes())
            .map(|change| async move {
                self.client
                    .update_item()
                    .table_name(&self.table)
                    .key("pk", s(COUNTS_PARTITION))
                    .key("sk", s(counter_sk(change.dimension, &change.key)))
                    .update_expression("ADD games :delta SET label = if_not_exists(label, :label)")
                    .expression_attribute_values(":delta", n(change.delta))
                    .expression_attribute_values(":label", s(change.label))
                    .send()
                    .await
                    .map_err(|e| self.error(e))
            })
            .buffer_unordered(WRITES_IN_FLIGHT)
            .try_collect::<Vec<_>>()
            .await?;
        Ok(())
    }
}

/// Exponential backoff with full jitter, bounded by a deadline.
struct Retry {
    patience: Duration,
    deadline: Instant,
    backoff: Duration,
}

impl Retry {
    fn new(patience: Duration) -> Self {
        Self {
            patience,
            deadline: Instant::now() + patience,
            backoff: FIRST_BACKOFF,
        }
    }

    async fn wait(&mut self, pending: usize, operation: &str) -> StoreResult<()> {
        if Instant::now() + self.backoff > self.deadline {
            return Err(StoreError::Unavailable(format!(
                "{pending} items of a {operation} were still unprocessed after {:?} of retries",
                self.patience
            )));
        }
        tokio::time::sleep(jittered(self.backoff)).await;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        Ok(())
    }
}

#[async_trait]
impl Catalog for DynamoStore {
    async fn get(&self, id: &GameId) -> StoreResult<Option<StoredGame>> {
        self.game_item_now(id)
            .await?
            .filter(|item| !is_tombstone(item))
            .map(|item| into_stored(&item))
            .transpose()
    }

    async fn create(&self, game: &Game, author: &Author) -> StoreResult<StoredGame> {
        let (content, hash) = game.content_and_hash();
        let terms = terms_of(game);
        // Most ids are new: write first, and look only when something is there.
        let mut expected = Expect::Nothing;
        for _ in 0..CONTENDED_RETRIES {
            let now = now_rfc3339();
            let version = match expected {
                Expect::Tombstone(deleted) => deleted + 1,
                Expect::Nothing | Expect::Live(_) => 1,
            };
            let stamp = Stamp {
                version,
                token: new_token()?,
                created_at: now.clone(),
                updated_at: now,
                attempt: None,
                author: author.to_text(),
            };
            let item = game_item(game, content.clone(), &hash, &stamp, &terms);
            let stored = into_stored(&item)?;
            if self
                .write_indexed(game, &stamp, &terms, item, expected)
                .await?
            {
                let mut changes = CountChanges::default();
                changes.add(game);
                self.count_written(changes).await?;
                return Ok(stored);
            }
            expected = match self.game_item_now(&game.id).await? {
                None => Expect::Nothing,
                Some(item) if is_tombstone(&item) => Expect::Tombstone(number(&item, "version")?),
                Some(_) => return Err(StoreError::AlreadyExists(game.id.clone())),
            };
        }
        Err(StoreError::Unavailable(format!(
            "the game {} kept changing under {CONTENDED_RETRIES} attempts to create it",
            game.id
        )))
    }

    async fn replace(
        &self,
        game: &Game,
        if_version: Option<u64>,
        author: &Author,
    ) -> StoreResult<StoredGame> {
        let (content, hash) = game.content_and_hash();
        let terms = terms_of(game);
        for _ in 0..CONTENDED_RETRIES {
            let Some(current) = self
                .game_item_now(&game.id)
                .await?
                .filter(|item| !is_tombstone(item))
            else {
                return Err(StoreError::NotFound(game.id.clone()));
            };
            let version = number(&current, "version")?;
            if if_version.is_some_and(|expected| expected != version) {
                return Err(StoreError::VersionMismatch { current: version });
            }
            if hash_of(&current) == Some(&hash[..]) {
                // Identical content: not a change.
                return into_stored(&current);
            }
            let attempt = attempt_of(&current);
            let stamp = Stamp {
                version: version + 1,
                token: new_token()?,
                created_at: text(&current, "created_at")?,
                updated_at: now_rfc3339(),
                attempt,
                author: author.to_text(),
            };
            let item = game_item(game, content.clone(), &hash, &stamp, &terms);
            let stored = into_stored(&item)?;
            self.write_all(self.filing(filed_version_of(&current)?)?)
                .await?;
            if self
                .write_indexed(game, &stamp, &terms, item, Expect::Live(version))
                .await?
            {
                self.drop_index(&current).await?;
                let mut changes = CountChanges::default();
                uncount(&counted_of(&current), &mut changes);
                changes.add(game);
                self.count_written(changes).await?;
                return Ok(stored);
            }
            // Another writer changed the game between the read and the write: look again.
        }
        Err(StoreError::Unavailable(format!(
            "the game {} kept changing under {CONTENDED_RETRIES} attempts to replace it",
            game.id
        )))
    }

    async fn delete(
        &self,
        id: &GameId,
        if_version: Option<u64>,
        author: &Author,
    ) -> StoreResult<StoredGame> {
        for _ in 0..CONTENDED_RETRIES {
            // The game's item becomes its tombstone at the version it was deleted at.
            let Some(current) = self
                .game_item_now(id)
                .await?
                .filter(|item| !is_tombstone(item))
            else {
                return Err(StoreError::NotFound(id.clone()));
            };
            let version = number(&current, "version")?;
            if if_version.is_some_and(|expected| expected != version) {
                return Err(StoreError::VersionMismatch { current: version });
            }
            // The deleted version and the deletion, a version of its own that the tombstone keeps.
            let deletion = version_item(
                id.as_str(),
                version + 1,
                now_rfc3339(),
                Some(author.to_text()),
                None,
            );
            let mut filing = self.filing(deletion)?;
            // Keeping one version, the deletion's filing deletes the version it replaces: one
            // batch may not put and delete the same item.
            let replaced = version_key(id.as_str(), version);
            if !filing
                .iter()
                .any(|w| w.delete_request().is_some_and(|d| d.key() == &replaced))
            {
                filing.extend(self.filing(filed_version_of(&current)?)?);
            }
            self.write_all(filing).await?;
            if self
                .put_if(
                    tombstone_item(id.as_str(), version + 1),
                    Expect::Live(version),
                )
                .await?
            {
                self.drop_index(&current).await?;
                let mut changes = CountChanges::default();
                uncount(&counted_of(&current), &mut changes);
                self.count_written(changes).await?;
                return into_stored(&current);
            }
            // Another writer changed the game between the read and the write: look again.
        }
        Err(StoreError::Unavailable(format!(
            "the game {id} kept changing under {CONTENDED_RETRIES} attempts to delete it"
        )))
    }

    async fn upsert_batch(
        &self,
        batch: Vec<StagedGame>,
        attempt: &AttemptId,
        author: &Author,
    ) -> StoreResult<Vec<UpsertOutcome>> {
        let author = author.to_text();
        // The first record of each id in the batch; later ones are duplicates of it.
        let mut first_of: HashMap<&str, usize> = HashMap::with_capacity(batch.len());
        for (i, staged) in batch.iter().enumerate() {
            first_of.entry(staged.game.id.as_str()).or_insert(i);
        }
        let ids: Vec<&str> = first_of.keys().copied().collect();
        let existing = self.existing(&ids).await?;
        let now = now_rfc3339();
        let mut outcomes = Vec::with_capacity(batch.len());
        // Written in three rounds, each after the one before has landed: the index items of
        // the new versions with the filed versions they replace, the games' items that name
        // them, and then the index items of the versions replaced. A crash between rounds leaves unnamed index items, never a game
        // whose index items are missing.
        let mut new_index = Vec::new();
        let mut games = Vec::with_capacity(ids.len());
        let mut old_index = Vec::new();
        let mut changes = CountChanges::default();
        for (i, staged) in batch.iter().enumerate() {
            let id = staged.game.id.as_str();
            let first = first_of.get(id).copied().unwrap_or(i);
            // A deleted game's tombstone counts as no game, whose versions go on from it.
            let (before, counted) = match existing.get(id) {
                Some(b) if b.deleted => (None, b.version),
                found => (found, 0),
            };
            if let Some((_, pos)) = before
                .into_iter()
                .flat_map(|b| [&b.attempt, &b.mark])
                .flatten()
                .find(|(a, _)| *a == attempt.0)
            {
                // An earlier batch of this attempt wrote the id.
                outcomes.push(UpsertOutcome::Duplicate {
                    first: same_kind(staged.position, *pos),
                });
                continue;
            }
            if first != i {
                outcomes.push(UpsertOutcome::Duplicate {
                    first: batch[first].position,
                });
                continue;
            }
            let mark = (attempt.0.clone(), position_number(staged.position));
            if before.is_some_and(|b| b.hash == staged.content_hash && b.token.is_some()) {
                // Only the mark, so that a later record with the same id in this upload is
                // caught as a duplicate.
                let mut item = mark_key(id);
                mark_with(&mut item, mark);
                games.push(put_request(item)?);
                outcomes.push(UpsertOutcome::Unchanged);
                continue;
            }
            let (outcome, stamp) = match before {
                None => (
                    UpsertOutcome::Inserted,
                    Stamp {
                        version: counted + 1,
                        token: new_token()?,
                        created_at: now.clone(),
                        updated_at: now.clone(),
                        attempt: Some(mark),
                        author: author.clone(),
                    },
                ),
                // Unchanged content written before index items existed gains them.
                Some(b) if b.hash == staged.content_hash => (
                    UpsertOutcome::Unchanged,
                    Stamp {
                        version: b.version,
                        token: new_token()?,
                        created_at: b.created_at.clone(),
                        updated_at: b.updated_at.clone(),
                        attempt: Some(mark),
                        author: author.clone(),
                    },
                ),
                Some(b) => (
                    UpsertOutcome::Updated,
                    Stamp {
                        version: b.version + 1,
                        token: new_token()?,
                        created_at: b.created_at.clone(),
                        updated_at: now.clone(),
                        attempt: Some(mark),
                        author: author.clone(),
                    },
                ),
            };
            match (outcome, before) {
                (UpsertOutcome::Inserted, _) => changes.add(&staged.game),
                (UpsertOutcome::Updated, Some(b)) => {
                    uncount(&b.counted, &mut changes);
                    changes.add(&staged.game);
                    if let Some(filed) = &b.filed {
                        new_index.extend(self.filing(filed.clone())?);
                    }
                }
                _ => {}
            }
            if let Some(b) = before
                && let Some(token) = &b.token
            {
                old_index.extend(index_deletes(id, token, &b.terms)?);
            }
            outcomes.push(outcome);
            let terms = terms_of(&staged.game);
            new_index.extend(index_puts(&staged.game, &stamp, &terms)?);
            games.push(put_request(game_item(
                &staged.game,
                staged.content.clone(),
                &staged.content_hash,
                &stamp,
                &terms,
            ))?);
        }
        self.write_all(new_index).await?;
        self.write_all(games).await?;
        self.write_all(old_index).await?;
        self.apply_counts(changes).await?;
        Ok(outcomes)
    }

    async fn history(&self, id: &GameId, query: &HistoryQuery) -> StoreResult<Page<GameVersion>> {
        let limit = query.limit as usize;
        let mut versions = Vec::with_capacity(limit + 1);
        let mut below = query.before.unwrap_or(u64::MAX);
        if let Some(current) = self
            .game_item_now(id)
            .await?
            .filter(|item| !is_tombstone(item))
        {
            let version = number(&current, "version")?;
            if version < below {
                versions.push(game_version(&current)?);
            }
            // Filed versions at or above the current one are from changes a crash cut short.
            below = below.min(version);
        }
        let mut start = None;
        while versions.len() <= limit && below > 1 {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND sk BETWEEN :low AND :high")
                .expression_attribute_values(":pk", s(game_pk(id.as_str())))
                .expression_attribute_values(":low", s(VERSION_SK))
                .expression_attribute_values(":high", s(format!("{VERSION_SK}{:020}", below - 1)))
                .scan_index_forward(false)
                .consistent_read(true)
                .limit(i32::try_from(limit + 1 - versions.len()).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| self.error(e))?;
            for item in out.items() {
                versions.push(game_version(item)?);
            }
            start = out.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        Ok(super::history_page(&mut versions, query.limit))
    }

    async fn written_by(
        &self,
        author: &Author,
        limit: u32,
        cursor: Option<&str>,
    ) -> StoreResult<Page<(GameId, u64)>> {
        // One call of a scan of the table, which reads at least [`SCAN_PAGE`] items: a page
        // may find none of the author's and still go on. The cursor is the key of the last item
        // the page holds, or where the call stopped.
        let start = cursor
            .map(|cursor| {
                serde_json::from_str::<(String, String)>(cursor)
                    .ok()
                    .map(|(pk, sk)| HashMap::from([("pk".into(), s(pk)), ("sk".into(), s(sk))]))
                    .ok_or_else(|| StoreError::InvalidCursor("not a cursor of this listing".into()))
            })
            .transpose()?;
        let out = self
            .client
            .scan()
            .table_name(&self.table)
            .filter_expression(
                "#by = :by AND (sk = :game OR begins_with(sk, :filed)) \
                 AND attribute_not_exists(#deleted)",
            )
            .projection_expression("pk, sk, version")
            .expression_attribute_names("#by", CHANGED_BY)
            .expression_attribute_names("#deleted", DELETED)
            .expression_attribute_values(":by", s(author.to_text()))
            .expression_attribute_values(":game", s(GAME_SK))
            .expression_attribute_values(":filed", s(VERSION_SK))
            .limit(i32::try_from(SCAN_PAGE.max(limit as usize)).unwrap_or(i32::MAX))
            .set_exclusive_start_key(start)
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.error(e))?;
        let found = out.items();
        let taken = &found[..found.len().min(limit as usize)];
        let items = taken
            .iter()
            .map(|item| {
                let pk = text(item, "pk")?;
                let id = pk.strip_prefix(&game_pk("")).unwrap_or(&pk);
                Ok((super::stored_id(id)?, number(item, "version")?))
            })
            .collect::<StoreResult<Vec<_>>>()?;
        let next = match (taken.len() < found.len(), taken.last()) {
            (true, Some(last)) => Some(last),
            _ => out.last_evaluated_key(),
        };
        let next_cursor = next
            .map(|key| {
                serde_json::to_string(&(text(key, "pk")?, text(key, "sk")?))
                    .map_err(|e| StoreError::Internal(e.to_string()))
            })
            .transpose()?;
        Ok(Page { items, next_cursor })
    }

    async fn prune_history(
        &self,
        _: &Retention,
        _: time::OffsetDateTime,
        _: u32,
    ) -> StoreResult<u64> {
        // The table's TTL and the writes that file versions prune (see `filing`).
        Ok(0)
    }

    async fn list(&self, query: &ListQuery) -> StoreResult<Page<StoredGame>> {
        let plan = plan(query)?;
        let limit = query.limit as usize;
        if let (Some(low), Some(high)) = (&plan.range.low, &plan.range.high)
            && low > high
        {
            return Ok(Page {
                items: Vec::new(),
                next_cursor: None,
            });
        }
        // One more than the page: whether it is there says whether a next page is.
        let want = limit + 1;
        let reader = Reader::new(
            plan.index,
            &plan.range,
            &plan.filter,
            query.sort.descending,
            want,
        );
        let mut partitions: Vec<Partition> = (0..SHARDS)
            .map(|shard| Partition::new(plan.partition(shard)))
            .collect();
        let mut listed: Vec<(String, StoredGame)> = Vec::with_capacity(want);
        while listed.len() < want {
            futures::future::try_join_all(
                partitions
                    .iter_mut()
                    .filter(|p| p.starved())
                    .map(|p| reader.fetch(self, p)),
            )
            .await?;
            let taken = reader.take_merged(&mut partitions, want - listed.len());
            if taken.is_empty() && partitions.iter().all(|p| p.done && p.read.is_empty()) {
                break;
            }
            listed.extend(self.resolve(&plan, taken).await?);
        }
        let next_cursor = match listed.get(limit.wrapping_sub(1)) {
            Some((key, game)) if listed.len() > limit => Some(cursor::encode(
                query,
                After {
                    value: serde_json::Value::String(key.clone()),
                    id: game.id.to_string(),
                },
            )),
            _ => None,
        };
        listed.truncate(limit);
        Ok(Page {
            items: listed.into_iter().map(|(_, game)| game).collect(),
            next_cursor,
        })
    }

    async fn counts(&self) -> StoreResult<CatalogCounts> {
        let mut counters = Vec::new();
        let mut pages = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(COUNTS_PARTITION))
            .into_paginator()
            .items()
            .send();
        while let Some(item) = pages.next().await {
            let item = item.map_err(|e| self.error(e))?;
            let sk = text(&item, "sk")?;
            let (dimension, key) = counter_of_sk(&sk)
                .ok_or_else(|| StoreError::Internal(format!("the counter {sk:?}")))?;
            let games = match item.get("games") {
                Some(AttributeValue::N(games)) => games.parse().ok(),
                _ => None,
            }
            .ok_or_else(|| StoreError::Internal(format!("the counter {sk:?} has no number")))?;
            counters.push((dimension, key.to_owned(), text(&item, "label")?, games));
        }
        CatalogCounts::from_counters(counters).map_err(StoreError::Internal)
    }

    async fn ping(&self) -> StoreResult<()> {
        self.get_item(HashMap::from([
            ("pk".into(), s("PING")),
            ("sk".into(), s("PING")),
        ]))
        .await
        .map(|_| ())
    }
}

#[async_trait]
impl Ledger for DynamoStore {
    async fn get(&self, id: &IngestId) -> StoreResult<Option<IngestRecord>> {
        self.get_item(ingest_key(id))
            .await?
            .map(|item| ledger_entry(&text(&item, "record")?, id))
            .transpose()
    }

    async fn create(&self, record: &IngestRecord) -> StoreResult<bool> {
        self.put_entry(record, LedgerWrite::Create).await
    }

    async fn claim(&self, record: &IngestRecord, now: &str) -> StoreResult<Claim> {
        let holder = super::claimer(record)?;
        if self
            .put_entry(record, LedgerWrite::Claim { now, holder })
            .await?
        {
            return Ok(Claim::Taken);
        }
        let stored = Ledger::get(self, &record.id).await?.ok_or_else(|| {
            StoreError::Internal(format!("the refused claim's entry {} is gone", record.id))
        })?;
        super::refused_claim(stored)
    }

    async fn update(&self, record: &IngestRecord, holder: &str) -> StoreResult<bool> {
        self.put_entry(record, LedgerWrite::Update { holder }).await
    }
    async fn latest(&self, key: &str) -> StoreResult<Option<IngestRecord>> {
        self.get_item(latest_key(key))
            .await?
            .map(|item| ledger_entry(&text(&item, "record")?, format_args!("of {key}")))
            .transpose()
    }

    async fn list(&self, query: &LedgerQuery) -> StoreResult<Page<IngestRecord>> {
        let range = KeyRange {
            high: cursor::decode_ledger(query.cursor.as_deref())?
                .map(|(started_at, id)| format!("{started_at}{SEP}{id}")),
            ..KeyRange::default()
        };
        let limit = query.limit as usize;
        let mut range = range;
        range.exclude = range.high.clone();
        let items = Reader::new(&BY_UPDATED, &range, &Filter::default(), true, limit + 1)
            .first(self, LEDGER_PARTITION.into(), limit + 1)
            .await?;
        let records = items
            .iter()
            .map(|(_, item)| ledger_entry(&text(item, "record")?, "in a listing"))
            .collect::<StoreResult<Vec<_>>>()?;
        let next_cursor = (records.len() > limit).then(|| {
            let last = &records[limit - 1];
            cursor::encode_ledger(&last.started_at, last.id.as_str())
        });
        Ok(Page {
            items: records.into_iter().take(limit).collect(),
            next_cursor,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ludex_domain::{Rating, Sort};

    #[test]
    fn an_update_files_one_item_of_one_write_unit_for_its_history() {
        let mut file = Vec::new();
        crate::synthetic::write_catalog(&mut file, 200, None).unwrap();
        for line in std::str::from_utf8(&file).unwrap().lines() {
            let game = Game::from_value(&serde_json::from_str(line).unwrap()).unwrap();
            assert_eq!(history_cost(&game), 1, "{line}");
            // Against the items an update writes: the game's and its index items, in the table
            // and four indexes.
            assert!(write_cost(&game).write_units >= 50, "{line}");
        }
        let long = Game::from_value(&serde_json::json!({
            "title": "Long", "description": "x".repeat(3000)
        }))
        .unwrap();
        assert_eq!(
            history_cost(&long),
            4,
            "a filed version is billed by its size"
        );
    }

    #[test]
    fn joined_sort_keys_sort_like_the_pair() {
        // A title that is a prefix of another sorts first, whatever the ids.
        let short = format!("doom{SEP}zzz");
        let long = format!("doom 2{SEP}aaa");
        assert!(short < long);
        assert!(rating_key(None) < rating_key(Some(0)));
        assert!(rating_key(Some(95)) < rating_key(Some(100)));
    }

    #[test]
    fn listings_read_one_index_and_one_partition_per_shard() {
        let query = |f: &dyn Fn(&mut ListQuery)| {
            let mut q = ListQuery {
                limit: 10,
                ..ListQuery::default()
            };
            f(&mut q);
            plan(&q).unwrap()
        };
        let all = query(&|_| {});
        assert_eq!(
            (all.index.name, all.term, all.filter),
            ("gsi1", None, Filter::default())
        );
        let years = query(&|q| {
            q.sort = Sort::parse("release_date").unwrap();
            q.year_to = Some(1999);
        });
        assert_eq!(years.index.name, "gsi3");
        assert_eq!(
            (years.range.low, years.range.high),
            (Some("0".into()), Some("1999~".into()))
        );
        // The longest word picks the partitions; the labels and the rating are filtered.
        let mixed = query(&|q| {
            q.q = Some("Éclair que".into());
            q.platform = Some("PC".into());
            q.genre = Some("RPG".into());
            q.min_rating = Some(Rating::parse("7.5").unwrap());
            q.sort = Sort::parse("title").unwrap();
        });
        assert_eq!(mixed.index.name, "gsi2");
        assert_eq!(mixed.term.as_deref(), Some("w:eclair"));
        assert_eq!(mixed.words, ["eclair", "que"]);
        assert_eq!(
            mixed.filter,
            Filter {
                labels: vec!["p:pc".into(), "g:rpg".into()],
                min_rating: Some(75),
                ..Filter::default()
            }
        );
        let genre = query(&|q| {
            q.platform = Some("PC".into());
            q.genre = Some("RPG".into());
        });
        assert_eq!(genre.term.as_deref(), Some("g:rpg"));
        assert_eq!(genre.filter.labels, ["p:pc"]);
    }

    #[test]
    fn a_game_has_a_term_per_word_prefix_and_label() {
        let game = Game::from_value(&serde_json::json!({
            "id": "g", "title": "Éclair of Éclairs", "platforms": ["PC"], "genres": ["RPG"]
        }))
        .unwrap();
        let terms = terms_of(&game);
        for term in [
            "w:e",
            "w:ecl",
            "w:eclair",
            "w:eclairs",
            "w:o",
            "w:of",
            "p:pc",
            "g:rpg",
        ] {
            assert!(terms.contains(&term.to_owned()), "{term} in {terms:?}");
        }
        assert_eq!(terms.len(), 7 + 2 + 2, "{terms:?}");
    }
}
