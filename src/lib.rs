//! ssoprobe: an end-to-end verifier and health check for single sign-on in front of
//! self-hosted sites (Cloudflare Access with Pocket ID as the identity provider).
//!
//! Dependencies run one way: [`cmd`] → [`checks`] → [`http`], [`cloudflare`],
//! [`pocketid`], [`passkey`]; the [`report`] renderers see only results. The embedded
//! lab is a crate of its own (`ssoprobe-lab`, cargo feature `lab`) that knows nothing
//! of the probe.

pub mod atomic;
pub mod checks;
pub mod cli;
pub mod cloudflare;
pub mod cmd;
pub mod config;
pub mod doctor;
pub mod har;
pub mod http;
pub mod passkey;
pub mod ping;
pub mod pocketid;
pub mod redact;
pub mod report;
pub mod timefmt;
pub mod tls;
