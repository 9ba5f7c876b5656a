//! A hostile token endpoint against `--har FILE`: Pocket ID's token endpoint, started by
//! the test on loopback, quotes back the client credential it received in every common
//! encoding — in JSON keys and values, response headers and a redirect's query, raw,
//! percent-encoded once and twice, base64 and hex, and split by line breaks. Neither the
//! archive nor the JSON report may hold any of them.

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use common::Run;
use common::hostile::{Answer, Server, header};
use serde_json::{Value, json};

const HOSTS: [&str; 3] = [
    "service.example.com",
    "xyz.cloudflareaccess.com",
    "id.example.com",
];

const CLIENT_ID: &str = "2f0408cf-25d7-4daa-9fb9-7b072516a681";

/// The client secret: characters that every encoding treats differently (a space, `+`,
/// `/`, `=`, `~`, `*`, quotes and brackets; its base64 differs from its base64url and
/// is padded).
const SECRET: &str = "s3cr3t+/Value= with~*'(x)!?>-end";

/// Percent-encoding that keeps letters, digits and `-._~` (RFC 3986), with upper-case
/// hex digits.
fn percent(text: &str) -> String {
    percent_cased(text, false)
}

/// [`percent`], with lower-case hex digits if `lower`.
fn percent_cased(text: &str, lower: bool) -> String {
    text.bytes()
        .map(|b| match b {
            b if b.is_ascii_alphanumeric() || b"-._~".contains(&b) => (b as char).to_string(),
            b if lower => format!("%{b:02x}"),
            b => format!("%{b:02X}"),
        })
        .collect()
}

/// Form encoding (`+` for a space, as browsers send forms).
fn form(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

fn hex(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

/// `text` with a line break in its middle.
fn split(text: &str, brk: &str) -> String {
    let half = text.chars().count() / 2;
    let first: String = text.chars().take(half).collect();
    let second: String = text.chars().skip(half).collect();
    format!("{first}{brk}{second}")
}

/// Every form of the credentials the archive and the report must not hold. `basic` is
/// the `Authorization` credential as sent (base64 of the form-encoded `id:secret`).
fn encodings(basic: &str) -> Vec<(&'static str, String)> {
    let raw_pair = format!("{CLIENT_ID}:{SECRET}");
    let mut all = vec![
        ("raw", SECRET.to_string()),
        ("percent", percent(SECRET)),
        ("percent, lower-case", percent_cased(SECRET, true)),
        ("form", form(SECRET)),
        ("percent twice", percent(&percent(SECRET))),
        ("form twice", form(&form(SECRET))),
        ("percent, then form", form(&percent(SECRET))),
        ("form, then percent", percent(&form(SECRET))),
        ("base64", STANDARD.encode(SECRET)),
        ("base64 unpadded", STANDARD_NO_PAD.encode(SECRET)),
        ("base64url", URL_SAFE.encode(SECRET)),
        ("base64url unpadded", URL_SAFE_NO_PAD.encode(SECRET)),
        ("hex", hex(SECRET)),
        ("HEX", hex(SECRET).to_ascii_uppercase()),
        ("basic", basic.to_string()),
        ("basic, percent", percent(basic)),
        ("basic of the raw pair", STANDARD.encode(&raw_pair)),
        (
            "basic of the raw pair, url",
            URL_SAFE_NO_PAD.encode(&raw_pair),
        ),
    ];
    all.retain(|(_, v)| !v.is_empty());
    all
}

/// The token endpoint's answer: every encoding of what it received, in keys, values,
/// headers and a redirect's query.
fn echo(head: &str) -> Answer {
    let authorization = header(head, "authorization").unwrap_or_default();
    let basic = authorization
        .strip_prefix("Basic ")
        .unwrap_or_default()
        .to_string();
    let mut body = serde_json::Map::new();
    body.insert("error".into(), json!("invalid_client"));
    // The raw secret as a key, and an encoded one as a nested key.
    body.insert(SECRET.into(), json!("the key is the secret"));
    body.insert(
        "nested".into(),
        json!({ percent(SECRET): [STANDARD.encode(SECRET)], "basic": basic }),
    );
    for (name, value) in encodings(&basic) {
        body.insert(name.into(), json!(value));
    }
    body.insert("split LF".into(), json!(split(SECRET, "\n")));
    body.insert("split CRLF".into(), json!(split(SECRET, "\r\n")));
    body.insert(
        "split base64".into(),
        json!(split(&STANDARD.encode(SECRET), "\r\n")),
    );
    body.insert(
        "error_description".into(),
        json!(format!(
            "client sent Basic {basic} and secret {}",
            form(SECRET)
        )),
    );
    let location = format!(
        "https://id.example.com/echo?echo={}&b={}&twice={}",
        percent(SECRET),
        percent(&basic),
        percent(&percent(SECRET))
    );
    Answer {
        status: 400,
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("x-echo-basic".into(), basic.clone()),
            ("x-echo-secret".into(), percent(SECRET)),
            ("x-echo-hex".into(), hex(SECRET)),
            (
                format!("x-{}", hex(SECRET)),
                "secret in a header name".into(),
            ),
            ("location".into(), location),
        ],
        body: Value::Object(body).to_string().into_bytes(),
    }
}

/// Every string of `value` (keys too), and those of strings that hold JSON themselves
/// (a recorded body).
fn strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => {
            out.push(s.clone());
            if let Ok(inner @ (Value::Object(_) | Value::Array(_))) =
                serde_json::from_str::<Value>(s)
            {
                strings(&inner, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
        Value::Object(map) => {
            for (k, v) in map {
                out.push(k.clone());
                strings(v, out);
            }
        }
        _ => {}
    }
}

/// Panics when any string of `document` (or the text itself) holds a form of the
/// secret, also with its line breaks removed.
fn assert_none(what: &str, document: &Value, text: &str, basic: &str, run: &Run) {
    let mut all = Vec::new();
    strings(document, &mut all);
    all.push(text.to_string());
    for s in &all {
        let joined = s.replace(['\r', '\n'], "");
        for (name, form) in encodings(basic) {
            assert!(
                !joined.contains(&form),
                "{what} holds the secret ({name}) in {s:?}\n{}",
                run.dump()
            );
        }
    }
}

#[test]
fn an_echoing_token_endpoint_leaves_no_encoding_of_the_secret_in_the_har_or_report() {
    let hostile = Server::start(&HOSTS, |host, target, head| {
        if host == "id.example.com" && target.starts_with("/api/oidc/token") {
            return echo(head);
        }
        Answer::new(404, "{}").header("content-type", "application/json")
    });
    let secret_path = hostile.secret_file("client-secret.txt", SECRET);
    let har_path = hostile.path("run.har");
    let run = hostile.check(&[
        "--deadline",
        "10s",
        "--format",
        "json",
        "--client-id",
        CLIENT_ID,
        "--client-secret-file",
        &secret_path,
        "--har",
        &har_path,
    ]);
    assert_ne!(run.code, 101, "panicked\n{}", run.dump());
    // The credential as the token endpoint last received it.
    let basic = hostile
        .heads_for("id.example.com")
        .iter()
        .rev()
        .filter(|head| head.starts_with("POST /api/oidc/token"))
        .find_map(|head| header(head, "authorization"))
        .and_then(|a| a.strip_prefix("Basic ").map(str::to_string))
        .unwrap_or_else(|| panic!("the token endpoint got no Basic credential\n{}", run.dump()));
    let text = std::fs::read_to_string(&har_path)
        .unwrap_or_else(|e| panic!("{har_path}: {e}\n{}", run.dump()));
    let har: Value = serde_json::from_str(&text).expect("the HAR is JSON");
    // The echo was recorded (else the test proves nothing), with the fingerprints.
    let token_entry = har["log"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| {
            e["request"]["url"]
                .as_str()
                .is_some_and(|u| u.ends_with("/api/oidc/token"))
        })
        .unwrap_or_else(|| panic!("no token request in the HAR\n{}", run.dump()));
    let body = token_entry["response"]["content"]["text"].as_str().unwrap();
    assert!(
        body.contains("invalid_client") && body.contains("[redacted:"),
        "{body}"
    );
    assert_none("the HAR", &har, &text, &basic, &run);
    let report = run.json();
    assert_none("the JSON report", &report, &run.stdout, &basic, &run);
    assert_none("stderr", &Value::Null, &run.stderr, &basic, &run);
}
