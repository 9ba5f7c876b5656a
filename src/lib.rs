//! ssoprobe: an end-to-end verifier and health check for single sign-on in front of
//! self-hosted sites (Cloudflare Access with Pocket ID as the identity provider).

pub mod app;
pub mod atomic;
pub mod checks;
pub mod cli;
pub mod cloudflare;
pub mod config;
pub mod enroll;
pub mod http;
pub mod lab;
pub mod passkey;
pub mod ping;
pub mod pocketid;
pub mod redact;
pub mod report;
pub mod serve;
pub mod timefmt;
pub mod tls;
