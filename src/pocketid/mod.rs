//! Pocket ID: its OpenID Connect wire rules ([`oidc`]: discovery, JWKS, token errors,
//! authorize outcomes), its admin API client ([`api`]) and the enrolment of a software
//! passkey through that API ([`enroll`]), side by side.

pub mod api;
pub mod enroll;
pub mod oidc;

pub use api::{Api, ApiError, User, answer_error};
pub use oidc::{
    ACCESS_ALGS, AuthorizeOutcome, Discovery, EXPECTED_TOKEN_ERRORS, OAuthError, RefusalCause,
    UNKNOWN_RESOURCE, classify_authorize, client_basic, normalise_base, paths, refusal_cause,
};
