//! What a configuration loads with but should be told: ACL rules that can never match (a
//! placeholder that cannot be filled, a glob that cannot compile), each with its file and line,
//! logged at start and on reload and printed by `authd check`.

use std::path::Path;

use crate::acl::Acl;

/// One line per rule that can never match: `FILE:LINE: acl[I]: REASON; this rule never matches`.
pub fn never_matching_rules(path: &Path, text: &str, acl: &Acl) -> Vec<String> {
    let starts = acl_item_lines(text);
    acl.never_matching()
        .map(|(i, reason)| {
            let at = match starts.get(i) {
                Some(line) => format!("{}:{line}", path.display()),
                None => path.display().to_string(),
            };
            format!("{at}: acl[{i}]: {reason}; this rule never matches")
        })
        .collect()
}

/// The 1-based line of each item of the top-level `acl:` list written in block style (`- ...`
/// lines at the first item's indentation); empty for a flow-style list.
fn acl_item_lines(text: &str) -> Vec<usize> {
    let mut lines = text.lines().enumerate();
    if !lines.any(|(_, l)| l.trim_end().starts_with("acl:")) {
        return Vec::new();
    }
    let mut indent = None;
    let mut starts = Vec::new();
    for (n, line) in lines {
        let body = line.trim_start();
        let depth = line.len() - body.len();
        if body.is_empty() || body.starts_with('#') {
            continue;
        }
        if depth == 0 && !body.starts_with('-') {
            break; // the next top-level key
        }
        if (body.starts_with("- ") || body == "-") && *indent.get_or_insert(depth) == depth {
            starts.push(n + 1);
        }
    }
    starts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_each_rule_line_in_block_lists_at_any_indentation() {
        let text = "server: {addr: x}\nacl:\n  # a comment\n  - match: {account: a}\n    actions: [\"*\"]\n\n  - match:\n      labels: {g: x}\n    actions:\n      - pull\n  - {match: {}, actions: []}\nusers: {}\n- not: acl\n";
        assert_eq!(acl_item_lines(text), vec![4, 7, 11]);
        assert_eq!(
            acl_item_lines("acl:\n- match: {}\n  actions: []\n- match: {}\n"),
            vec![2, 4]
        );
        assert!(acl_item_lines("acl: [{match: {}, actions: []}]\n").is_empty());
        assert!(acl_item_lines("users: {}\n").is_empty());
    }
}
