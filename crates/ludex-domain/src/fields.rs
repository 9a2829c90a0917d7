//! Field newtypes of a game: each parses untrusted JSON into a value that is valid by construction.
//!
//! Every parser returns the reason alone ("11.5 is above the maximum 10"); the caller prefixes the
//! field name, so the CLI, the API and the rejects report all say `rating: 11.5 is above the maximum 10`.

use serde_json::Value;
use std::fmt;

/// Limits of the game model; `docs/data-model.md` documents the same numbers.
pub mod limits {
    pub const ID_MAX_CHARS: usize = 64;
    pub const TITLE_MAX_CHARS: usize = 300;
    pub const NAME_MAX_CHARS: usize = 200;
    pub const LABEL_MAX_CHARS: usize = 64;
    pub const LIST_MAX_ENTRIES: usize = 32;
    pub const DESCRIPTION_MAX_CHARS: usize = 10_000;
    /// 256 characters are at most 1024 bytes of UTF-8, S3's limit for a key.
    pub const COVER_KEY_MAX_CHARS: usize = 256;
    pub const YEAR_MIN: u16 = 1950;
    pub const YEAR_MAX: u16 = 2100;
    pub const RATING_MAX_TENTHS: u8 = 100;
    pub const PRICE_MAX_CENTS: u64 = 100_000_000;
    pub const EXTRA_MAX_FIELDS: usize = 32;
    pub const EXTRA_NAME_MAX_CHARS: usize = 64;
    pub const EXTRA_MAX_BYTES: usize = 16 * 1024;
}

/// A short name for the JSON type of `value`, used in "expected X, found Y" messages.
pub fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// A JSON number that is a whole number from 0 to `u64::MAX`, as JSON Schema's `integer` counts
/// them: `2037` and `2037.0` alike.
fn whole_number(n: &serde_json::Number) -> Option<u64> {
    n.as_u64().or_else(|| {
        let x = n.as_f64()?;
        // 2^64: the first whole number past u64::MAX; every f64 below it converts exactly.
        (x.fract() == 0.0 && (0.0..18_446_744_073_709_551_616.0).contains(&x)).then_some(x as u64)
    })
}

fn expect_str<'v>(value: &'v Value, what: &str) -> Result<&'v str, String> {
    value
        .as_str()
        .ok_or_else(|| format!("expected {what}, found {}", json_type(value)))
}

/// The rule of a text field: at most `max_chars` characters as sent, something left once
/// surrounding white space is trimmed, and no control characters in what is left (line breaks
/// and tabs are allowed inside when `newlines`). [`crate::schema`] states the same rule as JSON
/// Schema.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TextRule {
    pub max_chars: usize,
    pub newlines: bool,
}

impl TextRule {
    /// Whether `c` may appear inside the trimmed text.
    pub fn allows(&self, c: char) -> bool {
        !c.is_control() || (self.newlines && matches!(c, '\n' | '\r' | '\t'))
    }

    /// Checks `raw` and returns it trimmed. The length counts characters as sent, so that
    /// a schema's `maxLength` states the same bound.
    pub fn check(&self, raw: &str) -> Result<String, String> {
        let chars = raw.chars().count();
        if chars > self.max_chars {
            return Err(format!(
                "is {chars} characters long; the maximum is {}",
                self.max_chars
            ));
        }
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err("must not be empty".into());
        }
        if let Some((at, c)) = trimmed.chars().enumerate().find(|&(_, c)| !self.allows(c)) {
            return Err(format!(
                "contains the control character U+{:04X} at character {}",
                c as u32,
                at + 1
            ));
        }
        Ok(trimmed.to_owned())
    }
}

/// The text rules of the game's fields.
pub mod rules {
    use super::{DecimalRule, TextRule, limits};

    pub const TITLE: TextRule = TextRule {
        max_chars: limits::TITLE_MAX_CHARS,
        newlines: false,
    };
    pub const NAME: TextRule = TextRule {
        max_chars: limits::NAME_MAX_CHARS,
        newlines: false,
    };
    pub const LABEL: TextRule = TextRule {
        max_chars: limits::LABEL_MAX_CHARS,
        newlines: false,
    };
    pub const DESCRIPTION: TextRule = TextRule {
        max_chars: limits::DESCRIPTION_MAX_CHARS,
        newlines: true,
    };
    /// 0–10 in steps of 0.1.
    pub const RATING: DecimalRule = DecimalRule {
        places: 1,
        max_units: limits::RATING_MAX_TENTHS as u64,
    };
    /// 0–1,000,000 in steps of 0.01.
    pub const PRICE: DecimalRule = DecimalRule {
        places: 2,
        max_units: limits::PRICE_MAX_CENTS,
    };
}

/// A game id: 1–64 characters, ASCII letters, digits, `.`, `_` and `-`, starting with a letter or digit.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GameId(String);

impl GameId {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.is_empty() {
            return Err("must not be empty".into());
        }
        if raw.len() > limits::ID_MAX_CHARS {
            return Err(format!(
                "is {} characters long; the maximum is {}",
                raw.chars().count(),
                limits::ID_MAX_CHARS
            ));
        }
        let first_ok = raw.as_bytes()[0].is_ascii_alphanumeric();
        let rest_ok = raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !first_ok || !rest_ok {
            return Err(format!(
                "{raw:?} may use only ASCII letters, digits, '.', '_' and '-', and must start with a letter or digit"
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// Accepts a string or a non-negative integer (many catalogs number their games).
    pub fn from_json(value: &Value) -> Result<Self, String> {
        match value {
            Value::Number(n) => match whole_number(n) {
                Some(number) => Self::parse(&number.to_string()),
                None => Err(format!("{n} is not a whole number from 0 to {}", u64::MAX)),
            },
            _ => Self::parse(expect_str(value, "a string")?),
        }
    }

    /// The id of a game uploaded without one: a slug of the normalised title plus the release
    /// year, so that the same record uploaded twice lands on the same id.
    /// `"The Witcher 3: Wild Hunt"` released 2015 becomes `the-witcher-3-wild-hunt-2015`.
    pub fn derive(title: &Title, release: Option<&ReleaseDate>) -> Self {
        let ascii = deunicode::deunicode(title.as_str()).to_ascii_lowercase();
        let mut slug = String::with_capacity(ascii.len());
        for c in ascii.chars() {
            if c.is_ascii_alphanumeric() {
                slug.push(c);
            } else if !slug.is_empty() && !slug.ends_with('-') {
                slug.push('-');
            }
        }
        // Leaves room for "-YYYY" within the id limit.
        slug.truncate(limits::ID_MAX_CHARS - 5);
        while slug.ends_with('-') {
            slug.pop();
        }
        if slug.is_empty() {
            // Titles with no Latin transliteration still get a stable id.
            let hash = blake3::hash(title.as_str().to_lowercase().as_bytes());
            slug = format!("game-{}", &hash.to_hex()[..12]);
        }
        if let Some(date) = release {
            slug.push('-');
            slug.push_str(&date.year().to_string());
        }
        Self(slug)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for GameId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

macro_rules! text_newtype {
    ($(#[$doc:meta])* $name:ident, $rule:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub struct $name(String);

        impl $name {
            pub fn parse(raw: &str) -> Result<Self, String> {
                $rule.check(raw).map(Self)
            }

            pub fn from_json(value: &Value) -> Result<Self, String> {
                Self::parse(expect_str(value, "a string")?)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
    };
}

text_newtype!(
    /// A title: 1–300 characters, no control characters.
    Title,
    rules::TITLE
);
text_newtype!(
    /// A developer or publisher name: 1–200 characters.
    Name,
    rules::NAME
);
text_newtype!(
    /// A platform, genre or tag: 1–64 characters.
    Label,
    rules::LABEL
);
text_newtype!(
    /// A description: up to 10,000 characters; line breaks and tabs allowed.
    Description,
    rules::DESCRIPTION
);

impl Label {
    /// The form filters compare: lowercase, so `PC` and `pc` are one platform.
    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }

    /// A list of labels: at most 32, duplicates (ignoring case) dropped, order kept.
    /// Errors name the entry: `platforms[2]: must not be empty` is reported as `[2]: …`
    /// relative to the list, and the caller adds the field name.
    pub fn list_from_json(value: &Value) -> Result<Vec<Self>, (Option<usize>, String)> {
        let Value::Array(items) = value else {
            return Err((
                None,
                format!("expected a list of strings, found {}", json_type(value)),
            ));
        };
        if items.len() > limits::LIST_MAX_ENTRIES {
            return Err((
                None,
                format!(
                    "has {} entries; the maximum is {}",
                    items.len(),
                    limits::LIST_MAX_ENTRIES
                ),
            ));
        }
        let mut labels: Vec<Self> = Vec::with_capacity(items.len());
        let mut keys: Vec<String> = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let label = Self::from_json(item).map_err(|e| (Some(i), e))?;
            let key = label.key();
            if !keys.contains(&key) {
                keys.push(key);
                labels.push(label);
            }
        }
        Ok(labels)
    }
}

/// A release date with the precision the source knows: `YYYY`, `YYYY-MM` or `YYYY-MM-DD`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ReleaseDate {
    year: u16,
    month: Option<u8>,
    day: Option<u8>,
}

impl ReleaseDate {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let bad = || format!("{raw:?} is not a date of the form YYYY, YYYY-MM or YYYY-MM-DD");
        let parts: Vec<&str> = raw.split('-').collect();
        let number = |s: &str, len: usize| -> Result<u16, String> {
            if s.len() == len && s.bytes().all(|b| b.is_ascii_digit()) {
                s.parse::<u16>().map_err(|_| bad())
            } else {
                Err(bad())
            }
        };
        let (year, month, day) = match parts.as_slice() {
            [y] => (number(y, 4)?, None, None),
            [y, m] => (number(y, 4)?, Some(number(m, 2)?), None),
            [y, m, d] => (number(y, 4)?, Some(number(m, 2)?), Some(number(d, 2)?)),
            _ => return Err(bad()),
        };
        Self::new(year, month, day)
    }

    /// Accepts a date string or a bare year as an integer.
    pub fn from_json(value: &Value) -> Result<Self, String> {
        match value {
            Value::Number(n) => match whole_number(n).and_then(|y| u16::try_from(y).ok()) {
                Some(year) => Self::new(year, None, None),
                None => Err(format!("{n} is not a year")),
            },
            _ => Self::parse(expect_str(value, "a date string")?),
        }
    }

    fn new(year: u16, month: Option<u16>, day: Option<u16>) -> Result<Self, String> {
        if !(limits::YEAR_MIN..=limits::YEAR_MAX).contains(&year) {
            return Err(format!(
                "the year {year} is outside {}–{}",
                limits::YEAR_MIN,
                limits::YEAR_MAX
            ));
        }
        if let Some(m) = month
            && !(1..=12).contains(&m)
        {
            return Err(format!("the month {m:02} does not exist"));
        }
        if let (Some(m), Some(d)) = (month, day) {
            let leap =
                (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400);
            let days = match m {
                2 if leap => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            if d == 0 || d > days {
                return Err(format!("{year}-{m:02}-{d:02} does not exist"));
            }
        }
        // Both fit in u8: checked just above.
        Ok(Self {
            year,
            month: month.map(|m| m as u8),
            day: day.map(|d| d as u8),
        })
    }

    pub fn year(&self) -> u16 {
        self.year
    }
}

impl fmt::Display for ReleaseDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}", self.year)?;
        if let Some(m) = self.month {
            write!(f, "-{m:02}")?;
        }
        if let Some(d) = self.day {
            write!(f, "-{d:02}")?;
        }
        Ok(())
    }
}

/// The rule of a decimal field: non-negative, at most `places` decimal places, at most
/// `max_units` units of `10^-places`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecimalRule {
    pub places: u32,
    pub max_units: u64,
}

impl DecimalRule {
    /// The step between allowed values: `10^-places`.
    pub fn step(&self) -> f64 {
        10f64.powi(-(self.places as i32))
    }

    /// The largest allowed value.
    pub fn max(&self) -> f64 {
        self.max_units as f64 / 10f64.powi(self.places as i32)
    }

    /// Reads `value` as an integer count of `10^-places` units.
    pub fn units(&self, value: &Value) -> Result<u64, String> {
        let Value::Number(n) = value else {
            return Err(format!("expected a number, found {}", json_type(value)));
        };
        let x = n.as_f64().ok_or_else(|| format!("{n} is not a number"))?;
        if x < 0.0 {
            return Err(format!("{n} is below the minimum 0"));
        }
        if x > self.max() {
            return Err(format!("{n} is above the maximum {}", self.max()));
        }
        let scaled = x * 10f64.powi(self.places as i32);
        if (scaled - scaled.round()).abs() > 1e-6 {
            let places = if self.places == 1 {
                "one decimal place".to_owned()
            } else {
                format!("{} decimal places", self.places)
            };
            return Err(format!("{n} has more than {places}"));
        }
        Ok(scaled.round() as u64)
    }
}

/// A rating from 0 to 10 in steps of 0.1, kept as tenths so it compares and sorts exactly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rating(u8);

impl Rating {
    pub fn from_json(value: &Value) -> Result<Self, String> {
        rules::RATING.units(value).map(|tenths| Self(tenths as u8))
    }

    /// Parses a rating written as text, as in a query string (`min_rating=7.5`).
    pub fn parse(raw: &str) -> Result<Self, String> {
        let n: serde_json::Number = raw
            .trim()
            .parse()
            .map_err(|_| format!("{raw:?} is not a number"))?;
        Self::from_json(&Value::Number(n))
    }

    pub fn tenths(&self) -> u8 {
        self.0
    }

    pub fn value(&self) -> f64 {
        f64::from(self.0) / 10.0
    }
}

/// A price in minor units (cents) with an ISO 4217 currency.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Price {
    cents: u64,
    currency: Currency,
}

impl Price {
    pub fn from_json(value: &Value, currency: Currency) -> Result<Self, String> {
        rules::PRICE
            .units(value)
            .map(|cents| Self { cents, currency })
    }

    pub fn cents(&self) -> u64 {
        self.cents
    }

    pub fn amount(&self) -> f64 {
        self.cents as f64 / 100.0
    }

    pub fn currency(&self) -> Currency {
        self.currency
    }
}

/// An ISO 4217 currency code in upper case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Currency([u8; 3]);

/// Active ISO 4217 codes (2024 list), sorted for binary search.
const ISO_4217: [[u8; 3]; 156] = [
    *b"AED", *b"AFN", *b"ALL", *b"AMD", *b"ANG", *b"AOA", *b"ARS", *b"AUD", *b"AWG", *b"AZN",
    *b"BAM", *b"BBD", *b"BDT", *b"BGN", *b"BHD", *b"BIF", *b"BMD", *b"BND", *b"BOB", *b"BRL",
    *b"BSD", *b"BTN", *b"BWP", *b"BYN", *b"BZD", *b"CAD", *b"CDF", *b"CHF", *b"CLP", *b"CNY",
    *b"COP", *b"CRC", *b"CUP", *b"CVE", *b"CZK", *b"DJF", *b"DKK", *b"DOP", *b"DZD", *b"EGP",
    *b"ERN", *b"ETB", *b"EUR", *b"FJD", *b"FKP", *b"GBP", *b"GEL", *b"GHS", *b"GIP", *b"GMD",
    *b"GNF", *b"GTQ", *b"GYD", *b"HKD", *b"HNL", *b"HTG", *b"HUF", *b"IDR", *b"ILS", *b"INR",
    *b"IQD", *b"IRR", *b"ISK", *b"JMD", *b"JOD", *b"JPY", *b"KES", *b"KGS", *b"KHR", *b"KMF",
    *b"KPW", *b"KRW", *b"KWD", *b"KYD", *b"KZT", *b"LAK", *b"LBP", *b"LKR", *b"LRD", *b"LSL",
    *b"LYD", *b"MAD", *b"MDL", *b"MGA", *b"MKD", *b"MMK", *b"MNT", *b"MOP", *b"MRU", *b"MUR",
    *b"MVR", *b"MWK", *b"MXN", *b"MYR", *b"MZN", *b"NAD", *b"NGN", *b"NIO", *b"NOK", *b"NPR",
    *b"NZD", *b"OMR", *b"PAB", *b"PEN", *b"PGK", *b"PHP", *b"PKR", *b"PLN", *b"PYG", *b"QAR",
    *b"RON", *b"RSD", *b"RUB", *b"RWF", *b"SAR", *b"SBD", *b"SCR", *b"SDG", *b"SEK", *b"SGD",
    *b"SHP", *b"SLE", *b"SOS", *b"SRD", *b"SSP", *b"STN", *b"SVC", *b"SYP", *b"SZL", *b"THB",
    *b"TJS", *b"TMT", *b"TND", *b"TOP", *b"TRY", *b"TTD", *b"TWD", *b"TZS", *b"UAH", *b"UGX",
    *b"USD", *b"UYU", *b"UZS", *b"VES", *b"VND", *b"VUV", *b"WST", *b"XAF", *b"XCD", *b"XCG",
    *b"XOF", *b"XPF", *b"YER", *b"ZAR", *b"ZMW", *b"ZWG",
];

impl Currency {
    pub const USD: Currency = Currency(*b"USD");

    pub fn parse(raw: &str) -> Result<Self, String> {
        let upper = raw.trim().to_ascii_uppercase();
        match <[u8; 3]>::try_from(upper.as_bytes()) {
            Ok(code) if ISO_4217.binary_search(&code).is_ok() => Ok(Self(code)),
            _ => Err(format!("{raw:?} is not an ISO 4217 currency code")),
        }
    }

    pub fn from_json(value: &Value) -> Result<Self, String> {
        Self::parse(expect_str(value, "a currency code string")?)
    }

    /// Every code [`Currency::parse`] accepts (in upper case; it also takes lower case).
    pub fn codes() -> impl Iterator<Item = &'static str> {
        ISO_4217
            .iter()
            .filter_map(|code| std::str::from_utf8(code).ok())
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII letters from the list above are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("USD")
    }
}

/// The bucket key of a cover image; set by the API (`covers/…`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoverKey(String);

impl CoverKey {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let ok = raw.starts_with("covers/")
            && raw.len() > "covers/".len()
            && raw.chars().count() <= limits::COVER_KEY_MAX_CHARS
            && !raw
                .split('/')
                .any(|seg| seg.is_empty() || seg == ".." || seg == ".")
            && !raw.chars().any(char::is_control);
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(format!(
                "{raw:?} is not a cover key (covers/<name>: segments that are not empty, `.` or \
                 `..`, no control characters, at most {} characters)",
                limits::COVER_KEY_MAX_CHARS
            ))
        }
    }

    pub fn from_json(value: &Value) -> Result<Self, String> {
        Self::parse(expect_str(value, "a string")?)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rating_reports_the_exact_bound_it_broke() {
        assert_eq!(
            Rating::from_json(&json!(11.5)).unwrap_err(),
            "11.5 is above the maximum 10"
        );
        assert_eq!(
            Rating::from_json(&json!(-1)).unwrap_err(),
            "-1 is below the minimum 0"
        );
        assert_eq!(
            Rating::from_json(&json!(8.75)).unwrap_err(),
            "8.75 has more than one decimal place"
        );
        assert_eq!(
            Rating::from_json(&json!("9")).unwrap_err(),
            "expected a number, found a string"
        );
        assert_eq!(Rating::from_json(&json!(9.3)).unwrap().tenths(), 93);
        assert_eq!(Rating::from_json(&json!(10)).unwrap().tenths(), 100);
    }

    #[test]
    fn release_dates_keep_their_precision_and_check_the_calendar() {
        assert_eq!(ReleaseDate::parse("2015").unwrap().to_string(), "2015");
        assert_eq!(
            ReleaseDate::parse("2015-05").unwrap().to_string(),
            "2015-05"
        );
        assert_eq!(
            ReleaseDate::parse("2016-02-29").unwrap().to_string(),
            "2016-02-29"
        );
        assert_eq!(
            ReleaseDate::parse("2015-02-29").unwrap_err(),
            "2015-02-29 does not exist"
        );
        assert_eq!(
            ReleaseDate::parse("2015-13").unwrap_err(),
            "the month 13 does not exist"
        );
        assert!(ReleaseDate::parse("15-05-2015").is_err());
        assert_eq!(
            ReleaseDate::from_json(&json!(1998)).unwrap().to_string(),
            "1998"
        );
        assert_eq!(
            ReleaseDate::parse("1900").unwrap_err(),
            "the year 1900 is outside 1950–2100"
        );
    }

    #[test]
    fn ids_are_checked_and_derived_deterministically() {
        assert!(GameId::parse("zelda-botw_2017.v1").is_ok());
        assert!(GameId::parse("-bad").is_err());
        assert!(GameId::parse("has space").is_err());
        assert!(GameId::parse(&"a".repeat(65)).is_err());
        assert_eq!(GameId::from_json(&json!(42)).unwrap().as_str(), "42");
        // JSON Schema's integers, as the API's document promises them.
        assert_eq!(GameId::from_json(&json!(42.0)).unwrap().as_str(), "42");
        assert!(GameId::from_json(&json!(4.2)).is_err());
        assert!(GameId::from_json(&json!(-1)).is_err());
        assert_eq!(
            ReleaseDate::from_json(&json!(2037.0)).unwrap().to_string(),
            "2037"
        );
        let title = Title::parse("  The Witcher 3: Wild Hunt ").unwrap();
        let date = ReleaseDate::parse("2015-05-19").unwrap();
        assert_eq!(
            GameId::derive(&title, Some(&date)).as_str(),
            "the-witcher-3-wild-hunt-2015"
        );
        let accented = Title::parse("Pokémon Légendes").unwrap();
        assert_eq!(GameId::derive(&accented, None).as_str(), "pokemon-legendes");
        let symbols = Title::parse("★★★").unwrap();
        let id = GameId::derive(&symbols, None);
        assert!(GameId::parse(id.as_str()).is_ok(), "{id}");
        assert_eq!(id, GameId::derive(&symbols, None));
    }

    #[test]
    fn text_fields_are_trimmed_and_bounded() {
        assert_eq!(Title::parse("  Doom ").unwrap().as_str(), "Doom");
        assert_eq!(Title::parse("   ").unwrap_err(), "must not be empty");
        assert_eq!(
            Title::parse(&"x".repeat(301)).unwrap_err(),
            "is 301 characters long; the maximum is 300"
        );
        assert!(Title::parse(&"é".repeat(300)).is_ok());
        assert!(Title::parse("a\u{7}b").unwrap_err().contains("U+0007"));
        assert!(Description::parse("line one\nline two").is_ok());
    }

    #[test]
    fn label_lists_are_bounded_and_deduplicated() {
        let labels = Label::list_from_json(&json!(["PC", "pc", "PS5"])).unwrap();
        assert_eq!(labels.len(), 2);
        let too_many: Vec<String> = (0..33).map(|i| format!("p{i}")).collect();
        assert_eq!(
            Label::list_from_json(&json!(too_many)).unwrap_err().1,
            "has 33 entries; the maximum is 32"
        );
        assert_eq!(
            Label::list_from_json(&json!(["ok", 3])).unwrap_err(),
            (Some(1), "expected a string, found a number".to_owned())
        );
    }

    #[test]
    fn prices_and_currencies() {
        let price = Price::from_json(&json!(59.99), Currency::USD).unwrap();
        assert_eq!(price.cents(), 5999);
        assert_eq!(
            Price::from_json(&json!(1.999), Currency::USD).unwrap_err(),
            "1.999 has more than 2 decimal places"
        );
        assert_eq!(Currency::parse("eur").unwrap().as_str(), "EUR");
        assert_eq!(
            Currency::parse("XYZ").unwrap_err(),
            "\"XYZ\" is not an ISO 4217 currency code"
        );
    }
}
