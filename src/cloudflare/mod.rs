//! Cloudflare: the wire rules of Access as the probe meets them, one file each — the
//! login redirect ([`access`]) and the pages the edge answers instead of the site
//! ([`edge`]). The Zero Trust API client for `doctor` joins them here.

pub mod access;
pub mod edge;

pub use access::{AccessLogin, TEAM_SUFFIX, callback_url, is_aud, parse_login_url, team_domain};
pub use edge::{
    CloudflareError, EdgePage, classify, html_title, html_tractable, normalise_ray, ray_id,
};
