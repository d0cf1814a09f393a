//! authd's integration tests: the real server on a 127.0.0.1:0 listener over a temp dir,
//! driven with reqwest. One binary; one module per area.

mod harness;

mod bad_input;
mod cli;
mod external;
mod issuing;
mod lifecycle;
mod lockout;
mod oauth;
mod process;
mod reload;
mod transport;
