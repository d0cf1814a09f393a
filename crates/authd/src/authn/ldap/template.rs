//! Putting a client's account name into LDAP text: the search filter (RFC 4515 escaping) and
//! the DN of `initial_bind_as_user` (RFC 4514 escaping), and reading the CN of a DN value for
//! `parse_cn` labels. Nothing a client types can change the structure of a filter or a DN.

use std::fmt::Write as _;

/// The placeholder docker_auth substitutes in `filter` and `bind_dn`.
pub const ACCOUNT: &str = "${account}";

/// `value` as an RFC 4515 assertion value: every byte other than a letter, a digit or one of
/// `-._@` is written `\xx`, so `*`, `(`, `)`, `\`, NUL and anything else is a literal and
/// never filter syntax (escaping more than the RFC requires is allowed by it).
pub fn filter_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'@') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "\\{b:02x}");
        }
    }
    out
}

/// `value` as an RFC 4514 attribute value inside a DN: every byte other than a letter, a
/// digit or one of `-._@` is written `\xx` (RFC 4514 §2.4 allows any byte so), so `,`, `+`,
/// `=`, `"`, `\`, `<`, `>`, `;`, `#`, spaces and NUL never change the DN's structure.
pub fn dn_value(value: &str) -> String {
    // The same hex escapes serve both grammars.
    filter_value(value)
}

/// `template` with each `${account}` replaced by `escaped`.
pub fn expand(template: &str, escaped: &str) -> String {
    template.replace(ACCOUNT, escaped)
}

/// The value of the first `CN` in a DN such as a `memberOf` value (`cn=dev,ou=groups,…` →
/// `dev`), unescaped; the whole value when it has none (docker_auth's `parse_cn`).
pub fn cn_of(dn: &str) -> String {
    for rdn in split_unescaped(dn, b',') {
        for part in split_unescaped(rdn, b'+') {
            if let Some((kind, value)) = part.split_once('=') {
                if kind.trim().eq_ignore_ascii_case("cn") {
                    return unescape(value.trim());
                }
            }
        }
    }
    dn.to_owned()
}

/// `s` cut at each `sep` not escaped by a backslash.
fn split_unescaped(s: &str, sep: u8) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut escaped) = (0, false);
    for (i, b) in s.bytes().enumerate() {
        match b {
            _ if escaped => escaped = false,
            b'\\' => escaped = true,
            _ if b == sep => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

/// An RFC 4514 value with `\,` and `\xx` escapes undone (invalid UTF-8 is replaced).
fn unescape(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b != b'\\' {
            out.push(b);
            i += 1;
            continue;
        }
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (hex, bytes.get(i + 1)) {
            (Some(v), _) => {
                out.push(v);
                i += 3;
            }
            (None, Some(&c)) => {
                out.push(c);
                i += 2;
            }
            (None, None) => i += 1,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_values_escape_every_metacharacter() {
        assert_eq!(filter_value("alice"), "alice");
        assert_eq!(filter_value("a.b-c_d@x"), "a.b-c_d@x");
        assert_eq!(filter_value("*"), "\\2a");
        assert_eq!(filter_value(")(uid=*"), "\\29\\28uid\\3d\\2a");
        assert_eq!(filter_value("a\\b"), "a\\5cb");
        assert_eq!(filter_value("a\0b"), "a\\00b");
        assert_eq!(filter_value("é"), "\\c3\\a9");
        assert_eq!(
            filter_value("a b|c&d!e~f<g>h"),
            "a\\20b\\7cc\\26d\\21e\\7ef\\3cg\\3eh"
        );
        // Whatever comes in, the expanded filter parses as one equality on uid.
        for hostile in ["*", ")(uid=*", "*)(|(uid=*", "\\", "\0", "a)(objectClass=*"] {
            let f = expand(
                "(&(uid=${account})(objectClass=person))",
                &filter_value(hostile),
            );
            assert!(ldap3::parse_filter(&f).is_ok(), "{f}");
            assert!(!f[6..].contains('*') && f.matches('(').count() == 3, "{f}");
        }
    }

    #[test]
    fn dn_values_cannot_add_components() {
        assert_eq!(dn_value("alice"), "alice");
        assert_eq!(dn_value("a,ou=admins"), "a\\2cou\\3dadmins");
        assert_eq!(dn_value("a+cn=x"), "a\\2bcn\\3dx");
        assert_eq!(dn_value(" #a\""), "\\20\\23a\\22");
        assert_eq!(
            expand("uid=${account},ou=people,dc=x", &dn_value("bob,ou=admins")),
            "uid=bob\\2cou\\3dadmins,ou=people,dc=x"
        );
    }

    #[test]
    fn cn_comes_from_the_first_cn_component() {
        assert_eq!(
            cn_of("cn=developers,ou=groups,dc=berth,dc=test"),
            "developers"
        );
        assert_eq!(cn_of("CN=Ops Team,OU=Groups,DC=x"), "Ops Team");
        assert_eq!(cn_of("ou=x,cn=inner,dc=y"), "inner");
        assert_eq!(cn_of("uid=a+cn=both,dc=y"), "both");
        assert_eq!(cn_of("cn=a\\,b,dc=y"), "a,b");
        assert_eq!(cn_of("cn=a\\2cb,dc=y"), "a,b");
        assert_eq!(cn_of("cn=trailing\\"), "trailing");
        assert_eq!(cn_of("not a dn"), "not a dn");
        assert_eq!(cn_of("ou=only,dc=y"), "ou=only,dc=y");
    }
}
