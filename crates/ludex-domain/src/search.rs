//! Title search as the stores answer it: every word of the search must start a word of the
//! title, ignoring case and accents. SQLite (FTS5, `unicode61 remove_diacritics 2`) and
//! PostgreSQL (`unaccent` and a text-search vector) apply this rule in the database; the
//! DynamoDB store indexes the word prefixes these functions produce and checks candidates with
//! [`title_matches`].

use crate::ports::search_words;
use unicode_normalization::UnicodeNormalization as _;
use unicode_normalization::char::is_combining_mark;

/// A word as searches compare it: lower-cased, with the accents Unicode decomposes removed
/// (`Éclair` becomes `eclair`).
pub fn fold(word: &str) -> String {
    word.nfd()
        .filter(|c| !is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .collect()
}

/// The distinct folded words of a title, in order: runs of letters and digits.
pub fn title_words(title: &str) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    for word in title.split(|c: char| !c.is_alphanumeric()) {
        let word = fold(word);
        if !word.is_empty() && !words.contains(&word) {
            words.push(word);
        }
    }
    words
}

/// The folded words of a search, without those that start another of its words (see
/// [`search_words`]).
pub fn query_words(q: &str) -> Vec<String> {
    let folded: Vec<String> = search_words(q).iter().map(|w| fold(w)).collect();
    search_words(&folded.join(" "))
}

/// Whether every one of `words` (from [`query_words`]) starts a word of `title`.
pub fn title_matches(title: &str, words: &[String]) -> bool {
    let title = title_words(title);
    words
        .iter()
        .all(|w| title.iter().any(|t| t.starts_with(w.as_str())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_fold_case_and_accents_and_split_on_everything_else() {
        assert_eq!(
            title_words("Éclair Quest: ÉCLAIR, co-op 2 世界"),
            ["eclair", "quest", "co", "op", "2", "世界"]
        );
        assert_eq!(query_words("ECL éclair Qu"), ["eclair", "qu"]);
    }

    #[test]
    fn every_search_word_must_start_a_title_word() {
        let words = query_words("eclair que");
        assert!(title_matches("Éclair Quest 3", &words));
        assert!(!title_matches("Éclair Conquest", &words), "inside a word");
        assert!(!title_matches("Quest", &words), "one word missing");
        assert!(title_matches("Anything", &[]));
    }
}
