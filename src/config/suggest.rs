//! "Did you mean …?": the known name closest to a mistyped one (a key, a
//! section's `type`), for the config errors that name what is not known.

/// The name of `known` closest to `word`, whatever the letter case
/// (`Batch_Size` is `batch_size`'s): within two edits, and fewer edits
/// than the name is long (so a short word is not "close" to every short
/// name); on a tie, the first in alphabetical order. `None` when `word` is
/// known as it is written or nothing is close.
pub fn closest<'a>(word: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let known: Vec<&str> = known.into_iter().collect();
    if known.contains(&word) {
        return None;
    }
    let word = word.to_lowercase();
    let mut best: Option<(usize, &str)> = None;
    for k in known {
        match edit_distance(&word, &k.to_lowercase()) {
            d if d <= 2 && d < k.len() && best.is_none_or(|b| (d, k) < b) => best = Some((d, k)),
            _ => {}
        }
    }
    best.map(|(_, k)| k)
}

/// The `type` of `known` a mistyped one was meant to be: the [`closest`],
/// else the only one that `word` (three letters or more, in any case)
/// begins or is a whole `_`-separated word of (`splunk` and `hec` are
/// `splunk_hec`'s, `elastic` is `elasticsearch`'s). `None` when `word` is
/// known, or when nothing or more than one type fits.
pub fn closest_type<'a>(word: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let known: Vec<&str> = known.into_iter().collect();
    if let Some(k) = closest(word, known.iter().copied()) {
        return Some(k);
    }
    let word = word.to_lowercase();
    if word.chars().count() < 3 || known.contains(&word.as_str()) {
        return None;
    }
    let mut fits = known
        .into_iter()
        .filter(|k| k.starts_with(&word) || k.split('_').any(|part| part == word));
    match (fits.next(), fits.next()) {
        (Some(k), None) => Some(k),
        _ => None,
    }
}

/// `; did you mean `NAME`?` to end an error's message with, or nothing.
pub fn did_you_mean(name: Option<&str>) -> String {
    name.map(|k| format!("; did you mean `{k}`?"))
        .unwrap_or_default()
}

/// Edits from `a` to `b` (names are short): insertions, deletions,
/// substitutions, and swaps of two neighbours (`tpc` is one from `tcp`).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // the rows for a's first i-1 and i characters, and the one being filled
    let mut before: Vec<usize> = Vec::new();
    let mut last: Vec<usize> = (0..=b.len()).collect();
    for (i, &ca) in a.iter().enumerate() {
        let mut row = vec![i + 1; b.len() + 1];
        for (j, &cb) in b.iter().enumerate() {
            let mut d = (last[j + 1] + 1)
                .min(row[j] + 1)
                .min(last[j] + usize::from(ca != cb));
            if i > 0 && j > 0 && ca == b[j - 1] && a[i - 1] == cb {
                d = d.min(before[j - 1] + 1);
            }
            row[j + 1] = d;
        }
        before = std::mem::replace(&mut last, row);
    }
    last[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_count_a_swap_of_neighbours_as_one() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "ab"), 2);
        assert_eq!(edit_distance("ab", ""), 2);
        assert_eq!(edit_distance("tpc", "tcp"), 1);
        assert_eq!(edit_distance("batch_sise", "batch_size"), 1);
        assert_eq!(edit_distance("ca", "abc"), 3);
    }

    #[test]
    fn the_closest_name_within_two_edits() {
        let kinds = ["tcp", "tls", "udp"];
        assert_eq!(closest("tpc", kinds), Some("tcp"));
        assert_eq!(closest("tcp", kinds), None);
        assert_eq!(closest("ssh", kinds), None);
        // one edit from each: the first alphabetically
        assert_eq!(closest("tdp", ["udp", "tcp"]), Some("tcp"));
        // a name no longer than the edits is not close
        assert_eq!(closest("b", ["a"]), None);
        // whatever the letter case
        assert_eq!(closest("TPC", kinds), Some("tcp"));
        assert_eq!(closest("Udp", kinds), Some("udp"));
        assert_eq!(did_you_mean(Some("tcp")), "; did you mean `tcp`?");
        assert_eq!(did_you_mean(None), "");
    }

    #[test]
    fn a_type_is_found_by_its_case_its_start_or_one_of_its_words() {
        let kinds = [
            "file",
            "splunk_hec",
            "elasticsearch",
            "datadog",
            "sumo_logic",
            "http",
            "syslog",
        ];
        assert_eq!(closest_type("Splunk_HEC", kinds), Some("splunk_hec"));
        assert_eq!(closest_type("SYSLOG", kinds), Some("syslog"));
        assert_eq!(closest_type("splunk", kinds), Some("splunk_hec"));
        assert_eq!(closest_type("Splunk", kinds), Some("splunk_hec"));
        assert_eq!(closest_type("hec", kinds), Some("splunk_hec"));
        assert_eq!(closest_type("elastic", kinds), Some("elasticsearch"));
        assert_eq!(closest_type("sumo", kinds), Some("sumo_logic"));
        assert_eq!(closest_type("elasticsearh", kinds), Some("elasticsearch"));
        assert_eq!(closest_type("datadog", kinds), None);
        // too short, or more than one fits: no guess
        assert_eq!(closest_type("da", kinds), None);
        let sources = ["syslog_udp", "syslog_tcp", "syslog_tls", "http"];
        assert_eq!(closest_type("syslog", sources), None);
        assert_eq!(closest_type("SYSLOG_TCP", sources), Some("syslog_tcp"));
        assert_eq!(closest_type("kafka", kinds), None);
    }
}
