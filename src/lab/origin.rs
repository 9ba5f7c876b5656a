//! The protected site itself, behind the edge.

use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};

/// The origin's page.
const PAGE: &str = "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>service.example.com</title></head>\n<body><h1>Welcome to service.example.com</h1><p>You reached the protected site.</p></body>\n</html>\n";

/// What the origin answers for any path.
pub(super) fn page() -> Response {
    (
        StatusCode::OK,
        [(CONTENT_TYPE, "text/html; charset=utf-8")],
        PAGE,
    )
        .into_response()
}
