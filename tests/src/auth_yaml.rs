//! Editing a running authd's `auth.yaml` the way an operator does: in place (like `cat >`) or by
//! writing a new file and renaming it over the old one (like most editors).

use std::path::Path;

use serde_yaml::Value;

/// How the edited file reaches the disk.
#[derive(Clone, Copy, Debug)]
pub enum Write {
    /// Truncate and rewrite the same inode.
    InPlace,
    /// Write `auth.yaml.new` beside it, then rename it over `auth.yaml`.
    Rename,
}

/// The parsed YAML document at `path`.
pub fn read(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{} is not YAML: {e}", path.display()))
}

/// Writes `text` to `path` as `how` says.
pub fn write_text(path: &Path, text: &str, how: Write) {
    let fail = |e: std::io::Error| panic!("cannot write {}: {e}", path.display());
    match how {
        Write::InPlace => std::fs::write(path, text).unwrap_or_else(fail),
        Write::Rename => {
            let new = path.with_extension("yaml.new");
            std::fs::write(&new, text).unwrap_or_else(fail);
            std::fs::rename(&new, path).unwrap_or_else(fail);
        }
    }
}

/// Serializes `doc` to `path` as `how` says.
pub fn write(path: &Path, doc: &Value, how: Write) {
    let text = serde_yaml::to_string(doc).unwrap_or_else(|e| panic!("cannot serialize YAML: {e}"));
    write_text(path, &text, how);
}

/// Puts `rule` (an ACL entry given as YAML text) first in the `acl` list of `path`.
pub fn prepend_rule(path: &Path, rule: &str, how: Write) {
    let mut doc = read(path);
    let rule: Value = serde_yaml::from_str(rule).unwrap_or_else(|e| panic!("bad rule {rule}: {e}"));
    let acl = doc
        .get_mut("acl")
        .and_then(Value::as_sequence_mut)
        .unwrap_or_else(|| panic!("{} has no acl list", path.display()));
    acl.insert(0, rule);
    write(path, &doc, how);
}

/// Removes the first ACL rule of `path` and adds `broken` as an extra top-level key, so that a
/// loader that ignored the bad key would still see the rule gone.
pub fn drop_first_rule_and_break(path: &Path, broken: &str, how: Write) {
    let mut doc = read(path);
    if let Some(acl) = doc.get_mut("acl").and_then(Value::as_sequence_mut) {
        acl.remove(0);
    }
    let text = serde_yaml::to_string(&doc).unwrap_or_else(|e| panic!("cannot serialize YAML: {e}"));
    write_text(path, &format!("{text}{broken}\n"), how);
}
