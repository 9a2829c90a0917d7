//! What the pages share besides markup (which `maud` writes, escaping every value).

use std::borrow::Cow;

/// A query string from pairs (`application/x-www-form-urlencoded`, as forms send them),
/// leaving out empty values; `""` when nothing is left.
pub fn query_string<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut query = form_urlencoded::Serializer::for_suffix(String::from("?"), 1);
    let mut any = false;
    for (name, value) in pairs.into_iter().filter(|(_, v)| !v.is_empty()) {
        query.append_pair(name, value);
        any = true;
    }
    if any { query.finish() } else { String::new() }
}

/// A quoted CSV field when it needs quoting (RFC 4180). Cells that a spreadsheet would read as
/// a formula (OWASP's list of first characters: `= + - @`, tab and carriage return) get a
/// leading apostrophe.
pub fn csv_field(text: &str) -> String {
    let text = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        Cow::Owned(format!("'{text}"))
    } else {
        Cow::Borrowed(text)
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_leave_out_empty_values() {
        assert_eq!(
            query_string([("q", "zelda & link"), ("genre", ""), ("sort", "-rating")]),
            "?q=zelda+%26+link&sort=-rating"
        );
        assert_eq!(query_string([("q", "")]), "");
    }

    #[test]
    fn csv_fields_are_quoted_when_needed() {
        assert_eq!(csv_field("PC"), "PC");
        assert_eq!(csv_field("Action, Adventure"), "\"Action, Adventure\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=1+1"), "'=1+1");
        assert_eq!(csv_field("\t=1+1"), "'\t=1+1");
        assert_eq!(csv_field("\r@SUM(A1)"), "\"'\r@SUM(A1)\"");
    }
}
