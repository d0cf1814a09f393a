//! `ext_auth` and `ext_authz` with real `sh` programs written by the tests: docker_auth's exit
//! codes, labels the ACL uses, static users asked first, failures answered 503, passwords that
//! reach the program byte for byte and are never run, and the authorizer asked only for scopes
//! no rule matched.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::harness::{eventually, granted, yaml, Authd, SERVICE, STANDARD_ACL};

/// The ext_auth program: records every call (the user) in `$D/calls` and its stdin in
/// `$D/in.<pid>`, then answers by user name.
const AUTHN: &str = r#"cat > "$D/in.$$"
IFS=' ' read -r u p < "$D/in.$$"
printf '%s\n' "$u" >> "$D/calls"
case "$u" in
  carol) [ "$p" = carol-pass ] || exit 1
         echo '{"labels": {"group": ["writers"], "team": ["blue"]}}'; exit 0;;
  dave) exit 0;;
  raw) cp "$D/in.$$" "$D/raw"; exit 0;;
  hang) sleep 600 & echo $! > "$D/hang.pid"; wait;;
  flood) yes;;
  badjson) echo 'labels: writers'; exit 0;;
  crash) echo "cannot check $p" >&2; exit 3;;
  signal) kill -9 $$;;
esac
exit 2"#;

/// The ext_authz program: records its stdin in `$D/authz` (one line per call) and answers by
/// the repository name.
const AUTHZ: &str = r#"cat >> "$D/authz"; echo >> "$D/authz"
case "$(tail -n 1 "$D/authz")" in
  *'"Name":"granted/'*) exit 0;;
  *'"Name":"denied/'*|*'"Type":"registry"'*) exit 1;;
esac
exit 5"#;

/// Writes `body` as an executable sh script `name` in `dir`, with `$D` set to `dir`.
fn program(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    let text = format!("#!/bin/sh\nD='{}'\n{body}\n", dir.display());
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .unwrap_or_else(|e| panic!("{e}"));
    path
}

/// authd with the standard users and rules plus a rule for the `writers` label, `ext_auth`
/// running [`AUTHN`] and, when `authz`, `ext_authz` running [`AUTHZ`].
async fn start(authz: bool) -> (tempfile::TempDir, Authd) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let authn = program(dir.path(), "authn.sh", AUTHN);
    let mut extra = format!(
        "ext_auth:\n  command: {}\n  timeout: 2s\n  max_running: 4\n",
        authn.display()
    );
    if authz {
        let authz = program(dir.path(), "authz.sh", AUTHZ);
        extra.push_str(&format!("ext_authz:\n  command: {}\n", authz.display()));
    }
    let acl = format!(
        "  - match: {{labels: {{group: writers}}, name: \"team/**\"}}\n    actions: [pull, push]\n{STANDARD_ACL}"
    );
    let authd = Authd::start(&yaml(&acl, &extra)).await;
    (dir, authd)
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_default()
}

async fn token(authd: &Authd, user: &str, password: &str, scope: &str) -> (u16, Value) {
    let (status, body, _) = authd
        .get(
            Some((user, password)),
            &[("service", SERVICE), ("scope", scope)],
        )
        .await;
    (status, body)
}

#[tokio::test]
async fn exit_codes_decide_and_labels_reach_the_acl() {
    let (dir, authd) = start(false).await;
    let (status, body) = token(
        &authd,
        "carol",
        "carol-pass",
        "repository:team/app:pull,push",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(granted(&body), ["repository:team/app:pull,push"]);
    // Accepted without labels: no rule names dave, so nothing is granted, but he is known.
    let (status, body) = token(&authd, "dave", "any", "repository:team/app:pull").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(granted(&body), ["repository:team/app:"]);
    // 1: wrong password; 2: unknown to the program, and to everyone after it.
    for (user, password) in [("carol", "wrong"), ("erin", "erin-pass")] {
        let (status, body) = token(&authd, user, password, "repository:team/app:pull").await;
        assert_eq!(status, 401, "{user}: {body}");
        assert_eq!(body["errors"][0]["code"], "UNAUTHORIZED");
    }
    assert_eq!(read(dir.path(), "calls"), "carol\ndave\ncarol\nerin\n");
}

#[tokio::test]
async fn static_users_are_asked_first_and_anonymous_never_reaches_the_program() {
    let (dir, authd) = start(false).await;
    let (status, body) = token(&authd, "alice", "alice-pass", "repository:alice/x:push").await;
    assert_eq!(
        (status, granted(&body)),
        (200, vec!["repository:alice/x:push".to_owned()])
    );
    let (status, _) = token(&authd, "alice", "wrong", "repository:alice/x:push").await;
    assert_eq!(status, 401);
    let (status, _, _) = authd.get(None, &[("service", SERVICE)]).await;
    assert_eq!(status, 200);
    // Names the program could not tell from the password are not given to it.
    for user in ["two words", "tab\tname", ""] {
        let (status, _) = token(&authd, user, "carol-pass", "repository:x:pull").await;
        assert_eq!(status, 401, "{user:?}");
    }
    assert_eq!(read(dir.path(), "calls"), "", "the program was run");
}

#[tokio::test]
async fn a_failing_program_is_503_never_an_answer() {
    let (dir, authd) = start(false).await;
    for user in ["hang", "flood", "badjson", "crash", "signal"] {
        let (status, body) = token(&authd, user, "pw", "repository:team/app:pull").await;
        assert_eq!(status, 503, "{user}: {body}");
        assert_eq!(body["errors"][0]["code"], "UNAVAILABLE", "{user}");
        assert!(body.get("token").is_none(), "{user}");
    }
    // What the hung program started is killed with it (a zombie awaiting its reaper is gone).
    let pid = read(dir.path(), "hang.pid");
    assert!(!pid.trim().is_empty());
    let stat = format!("/proc/{}/stat", pid.trim());
    let gone = eventually(|| async {
        std::fs::read_to_string(&stat).map_or(true, |s| s.contains(") Z "))
    })
    .await;
    assert!(gone, "{} still runs", pid.trim());
    // A failure is no wrong guess: the account is not locked out by it.
    let (status, body) = token(&authd, "carol", "carol-pass", "repository:team/app:pull").await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn the_password_arrives_byte_for_byte_and_is_never_run() {
    let (dir, authd) = start(false).await;
    let d = dir.path().display();
    let password = format!(
        "two  spaces\nsecond line $(touch {d}/pwned1) `touch {d}/pwned2`; touch {d}/pwned3 | ' \" \\ *"
    );
    let (status, body) = token(&authd, "raw", &password, "repository:x:pull").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(read(dir.path(), "raw"), format!("raw {password}"));
    for n in 1..=3 {
        assert!(!dir.path().join(format!("pwned{n}")).exists(), "pwned{n}");
    }
}

#[tokio::test]
async fn program_users_get_no_refresh_token_so_docker_keeps_the_password() {
    let (_dir, authd) = start(false).await;
    let offline = |user, password| {
        [
            ("grant_type", "password"),
            ("username", user),
            ("password", password),
            ("service", SERVICE),
            ("client_id", "docker"),
            ("access_type", "offline"),
        ]
    };
    let (status, body, _) = authd.post(&offline("carol", "carol-pass")).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("refresh_token").is_none(), "{body}");
    let (status, body, _) = authd.post(&offline("alice", "alice-pass")).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["refresh_token"].is_string(), "{body}");
}

#[tokio::test]
async fn ext_authz_decides_only_what_no_rule_matched() {
    let (dir, authd) = start(true).await;
    // A rule matches: the program is not asked.
    let (status, body) = token(&authd, "admin", "admin-pass", "repository:denied/x:push").await;
    assert_eq!(
        (status, granted(&body)),
        (200, vec!["repository:denied/x:push".to_owned()])
    );
    assert_eq!(read(dir.path(), "authz"), "");
    // No rule matches dave: exit 0 grants all asked, exit 1 none, any other code is 503.
    let scope = "repository:granted/app:push,pull repository:denied/app:pull";
    let (status, body) = token(&authd, "dave", "pw", scope).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        granted(&body),
        ["repository:granted/app:pull,push", "repository:denied/app:"]
    );
    let (status, body) = token(&authd, "dave", "pw", "repository:other/app:pull").await;
    assert_eq!(
        (status, &body["errors"][0]["code"]),
        (503, &Value::from("UNAVAILABLE"))
    );
    // carol's labels from ext_auth reach ext_authz with docker_auth's AuthRequestInfo fields.
    let (status, body) = token(&authd, "carol", "carol-pass", "registry:catalog:*").await;
    assert_eq!(
        (status, granted(&body)),
        (200, vec!["registry:catalog:".to_owned()])
    );
    let calls: Vec<Value> = read(dir.path(), "authz")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(calls.len(), 4, "{calls:?}");
    assert_eq!(
        calls[0],
        serde_json::json!({"Account": "dave", "Type": "repository", "Name": "granted/app",
            "Service": SERVICE, "IP": "127.0.0.1", "Actions": ["pull", "push"], "Labels": {}})
    );
    assert_eq!(
        calls[3],
        serde_json::json!({"Account": "carol", "Type": "registry", "Name": "catalog",
            "Service": SERVICE, "IP": "127.0.0.1", "Actions": ["*"],
            "Labels": {"group": ["writers"], "team": ["blue"]}})
    );
}
