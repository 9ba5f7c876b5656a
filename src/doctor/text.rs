//! Server-supplied text as `doctor` quotes it in findings, hints, summaries and
//! details. Rule: a finding quotes a server's list in part — its first [`SHOWN`]
//! items, each cut to [`crate::text::SERVER_TEXT_CAP`] characters, then how many more —
//! so an answer of any size makes a line of bounded length.

/// How many items of a list a finding quotes: enough for every scope Pocket ID offers
/// (five), few enough that five cut items make a line of about a thousand characters.
pub const SHOWN: usize = 5;

use crate::text::server_text;

/// The first [`SHOWN`] items of `items`, each by [`server_text`], joined with `sep`, then
/// `{sep}and N more` for the rest. Empty for an empty list. Items past the shown ones
/// are counted, never formatted, so a lazily mapped list costs only what is shown.
pub fn list<I>(items: I, sep: &str) -> String
where
    I: IntoIterator,
    I::IntoIter: ExactSizeIterator,
    I::Item: AsRef<str>,
{
    let mut items = items.into_iter();
    let shown: Vec<String> = items
        .by_ref()
        .take(SHOWN)
        .map(|i| server_text(i.as_ref()))
        .collect();
    let mut out = shown.join(sep);
    let more = items.len();
    if more > 0 {
        out.push_str(&format!("{sep}and {more} more"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::SERVER_TEXT_CAP;

    #[test]
    fn lists_show_five_items_and_count_the_rest() {
        assert_eq!(list(Vec::<String>::new(), ", "), "");
        assert_eq!(list(["a"], ", "), "a");
        assert_eq!(list(["a", "b", "c", "d", "e"], " "), "a b c d e");
        assert_eq!(
            list(["a", "b", "c", "d", "e", "f"], ", "),
            "a, b, c, d, e, and 1 more"
        );
        let many: Vec<String> = (0..90).map(|i| i.to_string()).collect();
        assert_eq!(list(&many, "; "), "0; 1; 2; 3; 4; and 85 more");
    }

    #[test]
    fn items_are_cut_on_a_character_boundary() {
        // Exactly at the cap: kept whole.
        let at = "é".repeat(SERVER_TEXT_CAP);
        assert_eq!(server_text(&at), at);
        // One over: cut, with an ellipsis, still within the cap.
        let over = format!("{at}x");
        let cut = server_text(&over);
        assert!(cut.ends_with('…'), "{cut}");
        assert_eq!(cut.chars().count(), SERVER_TEXT_CAP);
        // Multi-byte characters straddling every byte position near the cap.
        for pad in 0..4 {
            let text = format!("{}{}", "a".repeat(pad), "€😀é".repeat(SERVER_TEXT_CAP));
            let cut = server_text(&text);
            assert!(cut.chars().count() <= SERVER_TEXT_CAP);
            assert!(text.starts_with(cut.trim_end_matches('…')));
        }
        // Control characters never reach the terminal.
        assert_eq!(server_text("a\u{1b}[2Jb\nc"), "a\u{fffd}[2Jb c");
    }

    #[test]
    fn a_list_of_huge_items_stays_short() {
        let callbacks: Vec<String> = (0..90)
            .map(|i| format!("https://h{i}.example.com/{}", "é".repeat(3_500)))
            .collect();
        let text = list(&callbacks, ", ");
        assert!(text.chars().count() < 2_000, "{}", text.chars().count());
        assert!(text.ends_with(", and 85 more"), "{text}");
    }
}
