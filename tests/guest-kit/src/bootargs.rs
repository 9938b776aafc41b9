//! Reading `key=value` words from a kernel command line (`/chosen/bootargs`).

/// The value of the first `key=value` word of `bootargs`, words being
/// separated by ASCII whitespace. `None` if no word starts with `key=`.
pub fn value<'a>(bootargs: &'a str, key: &str) -> Option<&'a str> {
    bootargs.split_ascii_whitespace().find_map(|word| {
        word.strip_prefix(key)
            .and_then(|rest| rest.strip_prefix('='))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_value_among_other_words() {
        assert_eq!(value("console=ttyAMA0 role=a quiet", "role"), Some("a"));
        assert_eq!(value("role=hello", "role"), Some("hello"));
    }

    #[test]
    fn a_key_is_a_whole_word_prefix() {
        assert_eq!(value("xrole=a", "role"), None, "xrole is not role");
        assert_eq!(value("roles=a", "role"), None, "roles is not role");
        assert_eq!(value("role", "role"), None, "no '=' means no value");
    }

    #[test]
    fn the_first_occurrence_wins_and_empty_values_are_kept() {
        assert_eq!(value("role=a role=b", "role"), Some("a"));
        assert_eq!(value("role= x", "role"), Some(""));
        assert_eq!(value("", "role"), None);
    }
}
