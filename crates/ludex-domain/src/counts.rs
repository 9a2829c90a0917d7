//! The catalog's aggregates: games per platform, genre, release year and rating point. Stores
//! keep them as games are written (one counter per dimension and value), so that the reports
//! cost the number of distinct values, not the size of the catalog.
//!
//! A counter is named by its dimension and a key: a platform's or genre's lower-cased label, a
//! year, a whole rating point (`0`–`9`, where 9 holds 9.0–10.0), or the empty key for games
//! without that value. It shows the label it was created with; when one change brings several
//! spellings of a new label at once, the first in byte order.

use crate::game::Game;
use std::collections::BTreeMap;

/// What a counter counts games by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Dimension {
    Platform,
    Genre,
    Year,
    Rating,
}

impl Dimension {
    pub const ALL: [Self; 4] = [Self::Platform, Self::Genre, Self::Year, Self::Rating];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Platform => "platform",
            Self::Genre => "genre",
            Self::Year => "year",
            Self::Rating => "rating",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.as_str() == raw)
    }
}

/// The keys of the ten rating points.
const POINTS: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

/// The counter key of a release year (empty without one).
pub fn year_key(year: Option<u16>) -> String {
    year.map(|y| y.to_string()).unwrap_or_default()
}

/// The counter key of a rating in tenths (empty when unrated): its whole point, 10 with 9.
pub fn rating_key(tenths: Option<u8>) -> &'static str {
    tenths.map_or("", |t| POINTS[usize::from((t / 10).min(9))])
}

/// The counters one game counts under: `(dimension, key, label)`, the label `None` where it
/// is the key (years, rating points).
pub fn counters_of(game: &Game) -> Vec<(Dimension, String, Option<&str>)> {
    let mut all = Vec::with_capacity(game.platforms.len() + game.genres.len() + 2);
    for (dimension, labels) in [
        (Dimension::Platform, &game.platforms),
        (Dimension::Genre, &game.genres),
    ] {
        all.extend(
            labels
                .iter()
                .map(|label| (dimension, label.key(), Some(label.as_str()))),
        );
    }
    all.push((
        Dimension::Year,
        year_key(game.release_date.map(|d| d.year())),
        None,
    ));
    all.push((
        Dimension::Rating,
        rating_key(game.rating.map(|r| r.tenths())).to_owned(),
        None,
    ));
    all
}

/// One counter's change: add `delta` games (negative: remove), creating the counter with
/// `label` when it does not exist.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CountChange {
    pub dimension: Dimension,
    pub key: String,
    pub label: String,
    pub delta: i64,
}

/// The counter changes of a set of writes, summed per counter, so that a batch updates each
/// counter once. Counting a game allocates its keys, and a counter's key and label only the
/// first time the set sees it: it runs once per record on the ingest's path.
#[derive(Clone, Debug, Default)]
pub struct CountChanges(BTreeMap<Dimension, BTreeMap<String, (String, i64)>>);

impl CountChanges {
    fn bump(&mut self, dimension: Dimension, key: &str, label: &str, delta: i64) {
        let counters = self.0.entry(dimension).or_default();
        match counters.get_mut(key) {
            Some((first, sum)) => {
                *sum += delta;
                if delta > 0 && (first.is_empty() || label < first.as_str()) {
                    label.clone_into(first);
                }
            }
            None => {
                let label = if delta > 0 { label } else { "" };
                counters.insert(key.to_owned(), (label.to_owned(), delta));
            }
        }
    }

    /// Counts a game that was written (new, or the new content of a changed one).
    pub fn add(&mut self, game: &Game) {
        for (dimension, key, label) in counters_of(game) {
            self.bump(dimension, &key, label.unwrap_or(&key), 1);
        }
    }

    /// Uncounts a game that was replaced or deleted, by the counter keys it was counted under.
    pub fn remove<'a>(&mut self, keys: impl IntoIterator<Item = (Dimension, &'a str)>) {
        for (dimension, key) in keys {
            self.bump(dimension, key, "", -1);
        }
    }

    /// The counters that change, in (dimension, key) order: the order writers take their
    /// locks in, so that two batches never wait on each other crosswise.
    pub fn into_changes(self) -> Vec<CountChange> {
        self.0
            .into_iter()
            .flat_map(|(dimension, counters)| {
                counters
                    .into_iter()
                    .filter(|(_, (_, delta))| *delta != 0)
                    .map(move |(key, (label, delta))| CountChange {
                        dimension,
                        key,
                        label,
                        delta,
                    })
            })
            .collect()
    }
}

/// A value's label and its number of games.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabelCount {
    pub label: String,
    pub games: u64,
}

/// The catalog's aggregates as the reports show them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CatalogCounts {
    pub games: u64,
    /// Most games first, then by label ignoring case.
    pub platforms: Vec<LabelCount>,
    pub genres: Vec<LabelCount>,
    pub years: BTreeMap<u16, u64>,
    pub undated: u64,
    /// Games per whole rating point: `[0, 1)`, …, `[9, 10]`.
    pub ratings: [u64; 10],
    pub unrated: u64,
}

impl CatalogCounts {
    /// The aggregates from a store's counters, `(dimension, key, label, games)`. Counters at
    /// zero or below count nothing; a counter that makes no sense is an error.
    pub fn from_counters(
        counters: impl IntoIterator<Item = (Dimension, String, String, i64)>,
    ) -> Result<Self, String> {
        let mut counts = Self::default();
        for (dimension, key, label, games) in counters {
            let Ok(games @ 1..) = u64::try_from(games) else {
                continue;
            };
            match dimension {
                Dimension::Platform => counts.platforms.push(LabelCount { label, games }),
                Dimension::Genre => counts.genres.push(LabelCount { label, games }),
                Dimension::Year if key.is_empty() => counts.undated += games,
                Dimension::Year => {
                    let year = key
                        .parse()
                        .map_err(|_| format!("the year counter {key:?}"))?;
                    *counts.years.entry(year).or_default() += games;
                }
                Dimension::Rating if key.is_empty() => counts.unrated += games,
                Dimension::Rating => {
                    let point: usize = key
                        .parse()
                        .ok()
                        .filter(|p| *p < 10)
                        .ok_or_else(|| format!("the rating counter {key:?}"))?;
                    counts.ratings[point] += games;
                }
            }
        }
        counts.games = counts.undated + counts.years.values().sum::<u64>();
        for labels in [&mut counts.platforms, &mut counts.genres] {
            labels.sort_by(|a, b| {
                b.games
                    .cmp(&a.games)
                    .then_with(|| a.label.to_lowercase().cmp(&b.label.to_lowercase()))
                    .then_with(|| a.label.cmp(&b.label))
            });
        }
        Ok(counts)
    }

    /// The aggregates of a set of games, counted one by one: what the counters must equal.
    pub fn of_games<'a>(games: impl IntoIterator<Item = &'a Game>) -> Self {
        let mut changes = CountChanges::default();
        for game in games {
            changes.add(game);
        }
        let counters = changes
            .into_changes()
            .into_iter()
            .map(|c| (c.dimension, c.key, c.label, c.delta));
        Self::from_counters(counters).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn game(value: serde_json::Value) -> Game {
        Game::from_value(&value).unwrap()
    }

    #[test]
    fn a_change_counts_the_difference_once_per_counter() {
        let old = game(
            json!({"id": "a", "title": "A", "platforms": ["PC", "Switch"],
            "release_date": "1998-11", "rating": 9.5}),
        );
        let new = game(json!({"id": "a", "title": "A", "platforms": ["pc", "PS5"],
            "genres": ["RPG"], "rating": 7.0}));
        let mut changes = CountChanges::default();
        let old_counters = counters_of(&old);
        changes.remove(old_counters.iter().map(|(d, k, _)| (*d, k.as_str())));
        changes.add(&new);
        let changes: Vec<_> = changes
            .into_changes()
            .into_iter()
            .map(|c| (c.dimension.as_str(), c.key, c.delta))
            .collect();
        assert_eq!(
            changes,
            [
                ("platform", "ps5".into(), 1),
                ("platform", "switch".into(), -1),
                ("genre", "rpg".into(), 1),
                ("year", "".into(), 1),
                ("year", "1998".into(), -1),
                ("rating", "7".into(), 1),
                ("rating", "9".into(), -1),
            ],
            "pc stays as it was"
        );
    }

    #[test]
    fn counters_become_the_reports() {
        let games = [
            game(json!({"id": "a", "title": "A", "platforms": ["PC"], "rating": 10})),
            game(
                json!({"id": "b", "title": "B", "platforms": ["pc", "Amiga"],
                "release_date": "1990-01-02", "rating": 0.5}),
            ),
            game(json!({"id": "c", "title": "C", "platforms": ["amiga"], "release_date": "1990"})),
        ];
        let counts = CatalogCounts::of_games(&games);
        assert_eq!(counts.games, 3);
        assert_eq!(
            counts.platforms,
            [
                LabelCount {
                    label: "Amiga".into(),
                    games: 2
                },
                LabelCount {
                    label: "PC".into(),
                    games: 2
                }
            ],
            "ties by name; the first label in byte order"
        );
        assert_eq!(counts.years, BTreeMap::from([(1990, 2)]));
        assert_eq!((counts.undated, counts.unrated), (1, 1));
        assert_eq!(counts.ratings[0], 1);
        assert_eq!(counts.ratings[9], 1, "10 counts with 9");
        assert!(
            CatalogCounts::from_counters([(Dimension::Rating, "10".into(), "".into(), 1)]).is_err()
        );
    }
}
