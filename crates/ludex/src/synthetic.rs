//! Synthetic catalogs for trying ludex out, load tests and benchmarks: deterministic NDJSON
//! records of about 400 bytes, with optional bad records mixed in.

use std::io::{self, Write};

const ADJECTIVES: [&str; 16] = [
    "Silent",
    "Crimson",
    "Eternal",
    "Lost",
    "Iron",
    "Hidden",
    "Broken",
    "Golden",
    "Frozen",
    "Savage",
    "Radiant",
    "Hollow",
    "Electric",
    "Ancient",
    "Wild",
    "Shattered",
];
const NOUNS: [&str; 16] = [
    "Kingdom",
    "Frontier",
    "Odyssey",
    "Legacy",
    "Horizon",
    "Dungeon",
    "Empire",
    "Galaxy",
    "Citadel",
    "Voyage",
    "Requiem",
    "Labyrinth",
    "Outpost",
    "Chronicle",
    "Arena",
    "Harbor",
];
const PLATFORMS: [&str; 8] = [
    "PC",
    "PlayStation 5",
    "PlayStation 4",
    "Xbox Series X|S",
    "Xbox One",
    "Nintendo Switch",
    "Mobile",
    "Steam Deck",
];
const GENRES: [&str; 10] = [
    "RPG",
    "Action",
    "Adventure",
    "Strategy",
    "Puzzle",
    "Platformer",
    "Shooter",
    "Simulation",
    "Roguelike",
    "Sports",
];
const STUDIOS: [&str; 8] = [
    "Northwind Games",
    "Blue Lantern",
    "Pixel Foundry",
    "Quiet Owl",
    "Harbor Lights",
    "Red Kite Studio",
    "Glasswork",
    "Tin Robot",
];

/// A small deterministic generator (SplitMix64): the same index always gives the same record.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn pick<'a>(list: &[&'a str], r: u64) -> &'a str {
    list[(r % list.len() as u64) as usize]
}

/// Writes record number `i` (0-based) as one NDJSON line.
pub fn write_record(out: &mut impl Write, i: u64) -> io::Result<()> {
    let r = mix(i);
    let title = format!(
        "{} {} {}",
        pick(&ADJECTIVES, r),
        pick(&NOUNS, r >> 8),
        i + 1
    );
    let p1 = pick(&PLATFORMS, r >> 16);
    let p2 = pick(&PLATFORMS, r >> 20);
    let platforms = if p1 == p2 {
        format!("\"{p1}\"")
    } else {
        format!("\"{p1}\",\"{p2}\"")
    };
    let year = 1980 + (r >> 24) % 46;
    let month = 1 + (r >> 32) % 12;
    let day = 1 + (r >> 36) % 28;
    let rating = (r >> 40) % 101;
    let price = (r >> 48) % 7000;
    writeln!(
        out,
        "{{\"id\":\"g{i:07}\",\"title\":\"{title}\",\"platforms\":[{platforms}],\"genres\":[\"{}\"],\
         \"release_date\":\"{year}-{month:02}-{day:02}\",\"developer\":\"{}\",\"publisher\":\"{}\",\
         \"rating\":{}.{},\"price\":{}.{:02},\"currency\":\"USD\",\"tags\":[\"synthetic\",\"batch-{}\"],\
         \"description\":\"A generated game used to measure ludex; it has no story worth telling, only bytes.\"}}",
        pick(&GENRES, r >> 44),
        pick(&STUDIOS, r >> 52),
        pick(&STUDIOS, r >> 56),
        rating / 10,
        rating % 10,
        price / 100,
        price % 100,
        i / 1000,
    )
}

/// Writes `count` records; with `bad_every = Some(k)`, every k-th record has a rating out of range.
pub fn write_catalog(out: &mut impl Write, count: u64, bad_every: Option<u64>) -> io::Result<()> {
    for i in 0..count {
        if bad_every.is_some_and(|k| k > 0 && (i + 1) % k == 0) {
            writeln!(
                out,
                "{{\"id\":\"bad{i:07}\",\"title\":\"Broken {i}\",\"rating\":42}}"
            )?;
        } else {
            write_record(out, i)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use ludex_domain::Game;

    #[test]
    fn generated_records_are_valid_and_about_400_bytes() {
        let mut out = Vec::new();
        super::write_catalog(&mut out, 1000, None).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1000);
        let average = text.len() / lines.len();
        assert!(
            (350..=450).contains(&average),
            "average record is {average} bytes"
        );
        for line in lines {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            Game::from_value(&value).unwrap();
        }
    }

    #[test]
    fn bad_records_are_mixed_in_on_request() {
        let mut out = Vec::new();
        super::write_catalog(&mut out, 10, Some(5)).unwrap();
        let bad = String::from_utf8(out)
            .unwrap()
            .lines()
            .filter(|l| l.contains("\"rating\":42"))
            .count();
        assert_eq!(bad, 2);
    }
}
