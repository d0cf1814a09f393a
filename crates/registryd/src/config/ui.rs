//! `ui`: the web pages registryd serves under `/ui/` for people (see [`crate::ui`]).

use std::time::Duration;

use serde::Deserialize;
use server::go_duration;

/// The `ui` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ui {
    /// Serve `/ui/`; on unless set to false.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// How long a login lasts (it ends sooner when authd stops honouring it).
    #[serde(default = "default_session_lifetime", deserialize_with = "go_duration")]
    pub sessionlifetime: Duration,
    /// Where registryd itself asks authd for tokens, when it must not use the public
    /// `auth.token.realm` (e.g. authd's address inside a container network).
    #[serde(default)]
    pub tokenurl: Option<String>,
}

impl Default for Ui {
    fn default() -> Self {
        Self {
            enabled: true,
            sessionlifetime: default_session_lifetime(),
            tokenurl: None,
        }
    }
}

fn default_true() -> bool {
    true
}

/// A working day: a login made in the morning lasts until the evening.
fn default_session_lifetime() -> Duration {
    Duration::from_secs(12 * 3600)
}
