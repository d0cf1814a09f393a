//! Finding the daemons' binaries (`authd`, `registryd`) that cargo built next to the tests.

use std::path::PathBuf;

/// Path of the workspace binary `name` in the target directory of the running test executable.
///
/// Test executables live in `target/<profile>/deps/`, binaries in `target/<profile>/`.
///
/// # Panics
/// When the binary is missing: build it first (`cargo build --workspace`, or run the tests
/// with `cargo test --workspace`, which builds every binary of the workspace).
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe()
        .unwrap_or_else(|e| panic!("cannot find the running test executable: {e}"));
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .unwrap_or_else(|| {
            panic!(
                "test executable {} has no target/<profile>/ parent",
                exe.display()
            )
        });
    let path = profile_dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.is_file(),
        "binary `{name}` not found at {}: run `cargo build --workspace` first \
         (or `cargo test --workspace`, which builds it)",
        path.display()
    );
    path
}
