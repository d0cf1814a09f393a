//! The daemons' binaries (`authd`, `registryd`) the tests run: built fresh, once per test
//! process, with the same command the scripts use, so a test never runs a stale daemon.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Prefixes of the variables cargo sets for the test process (not for the user's shell).
const CARGO_TEST_VARS: [&str; 7] = [
    "CARGO_PKG_",
    "CARGO_MANIFEST_",
    "CARGO_CRATE_NAME",
    "CARGO_BIN_",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_TARGET_TMPDIR",
    "CARGO_RUSTC_CURRENT_DIR",
];

/// The repository's root (the workspace this test package belongs to).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from(".."), Path::to_path_buf)
}

/// Removes from `cmd` the variables cargo set for this test, so that a cargo it runs behaves as
/// in the user's shell: build scripts (ring's) watch `CARGO_MANIFEST_DIR`, and would otherwise
/// make it rebuild everything.
pub fn as_in_a_shell(cmd: &mut Command) -> &mut Command {
    for (key, _) in std::env::vars_os() {
        let name = key.to_string_lossy();
        if name == "CARGO"
            || name == "OUT_DIR"
            || CARGO_TEST_VARS.iter().any(|p| name.starts_with(p))
        {
            cmd.env_remove(&key);
        }
    }
    cmd
}

/// `target/<profile>/` of the running test executable (which lives in `target/<profile>/deps/`).
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe()
        .unwrap_or_else(|e| panic!("cannot find the running test executable: {e}"));
    exe.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| {
            panic!(
                "test executable {} has no target/<profile>/ parent",
                exe.display()
            )
        })
}

/// Runs `cargo build --workspace` (with `--release` for tests built in release) once per
/// process: a no-op when the binaries are fresh, a rebuild of what changed otherwise. `cargo
/// test -p berth-tests` alone does not build the daemons, since this package does not depend on
/// them.
fn build_once(profile_dir: &Path) {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        as_in_a_shell(&mut cmd)
            .args(["build", "--quiet", "--workspace", "--manifest-path"])
            .arg(repo_root().join("Cargo.toml"));
        if profile_dir.file_name().is_some_and(|p| p == "release") {
            cmd.arg("--release");
        }
        if let Some(target) = profile_dir.parent() {
            cmd.env("CARGO_TARGET_DIR", target);
        }
        let status = cmd
            .status()
            .unwrap_or_else(|e| panic!("cannot run cargo to build the daemons: {e}"));
        assert!(status.success(), "building the daemons failed ({status})");
    });
}

/// Path of the workspace binary `name` built for the running test executable's profile.
///
/// # Panics
/// When the build fails or the binary is missing after it.
pub fn binary(name: &str) -> PathBuf {
    let dir = profile_dir();
    build_once(&dir);
    let path = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.is_file(),
        "binary `{name}` not found at {} after building the workspace",
        path.display()
    );
    path
}
