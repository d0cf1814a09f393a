//! The names of authd's metrics (the recorder is the shared one, `server::metrics`; bcrypt's
//! are `authd_bcrypt_seconds` and `authd_bcrypt_cache_hits_total`, named by `server::passwords`).

/// Token requests, labelled by `grant` (basic, password, refresh_token) and `outcome`.
pub const TOKEN_REQUESTS: &str = "authd_token_requests_total";
/// Reload attempts, labelled by `result` (ok, error).
pub const RELOADS: &str = "authd_config_reloads_total";
/// 1 when the configuration in force is the file's current content, 0 after a failed reload.
pub const CONFIG_OK: &str = "authd_config_last_reload_ok";
/// Seconds spent signing one token.
pub const SIGN_SECONDS: &str = "authd_sign_seconds";
/// Binds sent to the LDAP server, labelled by `result` (ok, invalid_credentials, error).
pub const LDAP_BINDS: &str = "authd_ldap_binds_total";
/// LDAP logins answered from the cache of recent successes, without the server.
pub const LDAP_CACHE_HITS: &str = "authd_ldap_cache_hits_total";
