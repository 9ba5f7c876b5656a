//! ssoprobe: an end-to-end verifier and health check for single sign-on in front of
//! self-hosted sites (Cloudflare Access or oauth2-proxy in front, Pocket ID as the
//! identity provider).
//!
//! Dependencies run one way: each module names only modules below it in
//! [`cmd`] > [`report`] > [`checks`] > [`ping`], [`doctor`] > [`config`] > [`pocketid`] >
//! [`finding`], [`cloudflare`], [`oauth2proxy`], [`passkey`] > [`http`] > [`tls`], [`har`] > [`proxy`] >
//! [`text`] > [`redact`], [`timefmt`], [`atomic`], [`cli`] (`tests/modules.rs` fails on
//! a cycle).
//! The embedded lab is a crate of its own (`ssoprobe-lab`, cargo feature `lab`) that
//! knows nothing of the probe.

pub mod atomic;
pub mod checks;
pub mod cli;
pub mod cloudflare;
pub mod cmd;
pub mod config;
pub mod doctor;
pub mod finding;
pub mod har;
pub mod http;
pub mod oauth2proxy;
pub mod passkey;
pub mod ping;
pub mod pocketid;
pub mod proxy;
pub mod redact;
pub mod report;
pub mod text;
pub mod timefmt;
pub mod tls;
