//! The runner against real `sh` scripts: exit codes and output, the timeout killing the whole
//! process group, bounded output, input a program never reads, and the bound on runs at once.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::*;

/// A program running `body` (sh) in its own temp dir, which is `$D` inside it.
fn script(body: &str, timeout: Duration, max_running: usize) -> (tempfile::TempDir, Program) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("prog.sh");
    let text = format!("#!/bin/sh\nD='{}'\n{body}\n", dir.path().display());
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .unwrap_or_else(|e| panic!("{e}"));
    let raw = RawProgram {
        command: "./prog.sh".to_owned(),
        args: vec!["first arg".to_owned(), "$HOME;x".to_owned()],
        timeout,
        max_running,
    };
    let program = Program::new("ext_auth", raw, dir.path()).unwrap_or_else(|e| panic!("{e}"));
    (dir, program)
}

const SHORT: Duration = Duration::from_secs(10);

/// Whether `pid` still runs a while after it was killed (a zombie waiting for its reaper
/// counts as gone): polled up to about a second, as a killed process takes a moment to go.
async fn alive(pid: &str) -> bool {
    let running = || {
        std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).is_ok_and(|stat| {
            stat.rsplit(')')
                .next()
                .is_some_and(|s| !s.trim_start().starts_with('Z'))
        })
    };
    for _ in 0..50 {
        if !running() {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}

#[tokio::test]
async fn passes_stdin_and_args_and_reports_code_and_output() {
    let (_d, p) = script(
        r#"printf '%s|' "$1" "$2"; cat; echo oops >&2; exit 7"#,
        SHORT,
        1,
    );
    let exit = p
        .run(b"user pass word")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(exit.code, 7);
    assert_eq!(exit.stdout, b"first arg|$HOME;x|user pass word");
    assert_eq!(exit.stderr, b"oops\n");
}

#[tokio::test]
async fn a_hung_program_and_what_it_started_are_killed() {
    let (d, p) = script(
        r#"echo $$ > "$D/leader"; sleep 600 & echo $! > "$D/child"; wait"#,
        Duration::from_secs(1),
        1,
    );
    let got = p.run(b"").await;
    assert!(matches!(got, Err(Error::Backend(_))), "{:?}", got.err());
    for name in ["leader", "child"] {
        let pid = std::fs::read_to_string(d.path().join(name)).unwrap_or_default();
        assert!(!pid.trim().is_empty(), "{name} pid written");
        assert!(!alive(&pid).await, "{name} {pid} still runs");
    }
}

#[tokio::test]
async fn a_run_given_up_by_its_request_kills_what_the_program_started() {
    let (d, p) = script(
        r#"sleep 600 & echo $! > "$D/child.tmp"; mv "$D/child.tmp" "$D/child"; wait"#,
        Duration::from_secs(600),
        1,
    );
    let run = tokio::spawn(async move { p.run(b"").await.is_ok() });
    let child = d.path().join("child");
    for _ in 0..500 {
        if child.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    run.abort();
    assert!(run.await.is_err_and(|e| e.is_cancelled()));
    let pid = std::fs::read_to_string(child).unwrap_or_default();
    assert!(!pid.trim().is_empty(), "child pid written");
    assert!(!alive(&pid).await, "{pid} still runs");
}

#[tokio::test]
async fn output_past_the_bound_is_a_failure_and_the_program_is_killed() {
    for stream in ["", ">&2"] {
        let (d, p) = script(&format!(r#"echo $$ > "$D/pid"; yes {stream}"#), SHORT, 1);
        assert!(
            matches!(p.run(b"").await, Err(Error::Backend(_))),
            "{stream}"
        );
        let pid = std::fs::read_to_string(d.path().join("pid")).unwrap_or_default();
        assert!(!alive(&pid).await, "{pid} still runs");
    }
    let exactly = format!("head -c {MAX_OUTPUT} /dev/zero");
    let (_d, p) = script(&exactly, SHORT, 1);
    let exit = p.run(b"").await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(exit.stdout.len(), MAX_OUTPUT);
}

#[tokio::test]
async fn input_never_read_or_read_late_does_not_block() {
    let big = vec![b'x'; 1 << 20];
    let (_d, p) = script("exit 0", SHORT, 1);
    assert_eq!(p.run(&big).await.map(|e| e.code).ok(), Some(0));
    // Fills its stdout pipe before reading: only reading both at once lets it finish.
    let (_d, p) = script("head -c 60000 /dev/zero; wc -c", SHORT, 1);
    let exit = p.run(&big).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(exit.stdout.ends_with(b"1048576\n"));
}

#[tokio::test]
async fn a_signal_is_a_failure() {
    let (_d, p) = script("kill -9 $$", SHORT, 1);
    assert!(matches!(p.run(b"").await, Err(Error::Backend(_))));
}

#[tokio::test]
async fn runs_at_once_stay_within_max_running() {
    let body = r#"touch "$D/run.$$"; ls "$D" | grep -c '^run\.' >> "$D/counts"; sleep 0.2; rm "$D/run.$$""#;
    let (d, p) = script(body, Duration::from_secs(30), 2);
    let p = Arc::new(p);
    let runs: Vec<_> = (0..8)
        .map(|_| {
            let p = p.clone();
            tokio::spawn(async move { p.run(b"").await.map(|e| e.code).ok() })
        })
        .collect();
    for run in runs {
        assert_eq!(run.await.ok().flatten(), Some(0));
    }
    let counts = std::fs::read_to_string(d.path().join("counts")).unwrap_or_default();
    let counts: Vec<u32> = counts
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    assert_eq!(counts.len(), 8);
    assert!(counts.iter().all(|&c| (1..=2).contains(&c)), "{counts:?}");
}

#[test]
fn refuses_commands_that_cannot_run_and_useless_bounds() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("plain"), "#!/bin/sh\n").unwrap_or_else(|e| panic!("{e}"));
    let raw = |command: &str, timeout: u64, max_running: usize| RawProgram {
        command: command.to_owned(),
        args: vec![],
        timeout: Duration::from_secs(timeout),
        max_running,
    };
    let base = dir.path();
    let err = |r| Program::new("ext_auth", r, base).err().unwrap_or_default();
    assert!(err(raw("", 1, 1)).contains("ext_auth.command"));
    assert!(err(raw("./missing", 1, 1)).contains("not an executable file"));
    assert!(err(raw("./plain", 1, 1)).contains("not an executable file"));
    assert!(err(raw("no-such-program-anywhere", 1, 1)).contains("PATH"));
    assert!(err(raw("sh", 0, 1)).contains("ext_auth.timeout"));
    assert!(err(raw("sh", 1, 0)).contains("ext_auth.max_running"));
    assert!(Program::new("ext_auth", raw("sh", 1, 1), Path::new("/")).is_ok());
}
