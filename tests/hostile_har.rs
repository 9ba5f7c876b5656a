//! A hostile token endpoint against `--har FILE`: Pocket ID's token endpoint, started by
//! the test on loopback, quotes back the client credential it received in every common
//! encoding — in JSON keys and values, response headers and a redirect's query, raw,
//! percent-encoded once and twice, base64 and hex, and split by line breaks. Neither the
//! archive nor the JSON report may hold any of them.

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use common::{Run, run};
use serde_json::{Value, json};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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

/// One answer: status, headers, body.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// What the route is given: host, request target and the request head.
type Route = dyn Fn(&str, &str, &str) -> Answer + Send + Sync;

/// An HTTPS server for the three hosts on a free loopback port with a CA of its own,
/// answering with `route`.
struct Hostile {
    dir: std::path::PathBuf,
    /// Serves until the test ends.
    _runtime: tokio::runtime::Runtime,
    flags: Vec<String>,
}

impl Hostile {
    fn start(route: impl Fn(&str, &str, &str) -> Answer + Send + Sync + 'static) -> Hostile {
        let dir =
            std::env::temp_dir().join(format!("ssoprobe-hostile-har-{}", common::uuid_like()));
        std::fs::create_dir_all(&dir).unwrap();
        let acceptor = common::tls_acceptor(&dir, &HOSTS);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let route: Arc<Route> = Arc::new(route);
        runtime.spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, route) = (acceptor.clone(), Arc::clone(&route));
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    // One request per connection: its head, then as much body as it says.
                    let mut read = Vec::new();
                    let mut buf = [0u8; 4096];
                    let head_end = loop {
                        if let Some(i) = read.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                        match tls.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => read.extend_from_slice(&buf[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&read[..head_end]).into_owned();
                    let length = header(&head, "content-length")
                        .and_then(|v| v.parse::<usize>().ok())
                        .unwrap_or(0);
                    while read.len() < head_end + length {
                        match tls.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => read.extend_from_slice(&buf[..n]),
                        }
                    }
                    let target = head.split_whitespace().nth(1).unwrap_or("/").to_string();
                    let host = header(&head, "host")
                        .map(|h| h.split(':').next().unwrap_or("").to_string())
                        .unwrap_or_default();
                    let answer = route(&host, &target, &head);
                    let mut out = format!(
                        "HTTP/1.1 {} X\r\ncontent-length: {}\r\nconnection: close\r\n",
                        answer.status,
                        answer.body.len()
                    )
                    .into_bytes();
                    for (k, v) in &answer.headers {
                        out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
                    }
                    out.extend_from_slice(b"\r\n");
                    out.extend_from_slice(&answer.body);
                    let _ = tls.write_all(&out).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        let mut flags = Vec::new();
        for host in HOSTS {
            flags.push("--connect-to".to_string());
            flags.push(format!("{host}:443:127.0.0.1:{port}"));
        }
        flags.push("--ca-file".to_string());
        flags.push(dir.join("ca.pem").display().to_string());
        Hostile {
            dir,
            _runtime: runtime,
            flags,
        }
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The value of header `name` in a request head.
fn header(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_string())
    })
}

/// Percent-encoding that keeps letters, digits and `-._~` (RFC 3986).
fn percent(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// [`percent`] with lower-case hex digits.
fn percent_lower(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02x}")
            }
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
        ("percent, lower-case", percent_lower(SECRET)),
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
    let received = Arc::new(std::sync::Mutex::new(String::new()));
    let seen = Arc::clone(&received);
    let hostile = Hostile::start(move |host, target, head| {
        if host == "id.example.com" && target.starts_with("/api/oidc/token") {
            if let Some(a) = header(head, "authorization") {
                *seen.lock().unwrap() = a;
            }
            return echo(head);
        }
        Answer {
            status: 404,
            headers: vec![("content-type".into(), "application/json".into())],
            body: b"{}".to_vec(),
        }
    });
    let dir =
        std::env::temp_dir().join(format!("ssoprobe-hostile-har-run-{}", common::uuid_like()));
    std::fs::create_dir_all(&dir).unwrap();
    let secret_file = dir.join("client-secret.txt");
    std::fs::write(&secret_file, SECRET).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&secret_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let har_path = dir.join("run.har").display().to_string();
    let secret_path = secret_file.display().to_string();
    let mut args = vec![
        "check",
        "--service",
        "https://service.example.com/",
        "--idp",
        "https://id.example.com",
        "--team",
        "xyz",
        "--timeout",
        "3s",
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
    ];
    args.extend(hostile.flags.iter().map(String::as_str));
    let run = run(&args);
    assert_ne!(run.code, 101, "panicked\n{}", run.dump());
    let authorization = received.lock().unwrap().clone();
    let basic = authorization
        .strip_prefix("Basic ")
        .unwrap_or_else(|| panic!("the token endpoint got no Basic credential\n{}", run.dump()))
        .to_string();
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
    let _ = std::fs::remove_dir_all(&dir);
}
