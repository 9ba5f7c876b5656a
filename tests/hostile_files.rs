//! Hostile inputs around the passkey file and the admin API key: plain-HTTP IdPs,
//! ids that are paths, concurrent runs on one file, symlinks, loose directories,
//! malformed files, a refused API key. Loopback only: a local listener stands in for a
//! server that must never be contacted, and the lab for Pocket ID.

mod common;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{Lab, run};
use ssoprobe::passkey::{
    CredentialFile, FILE_VERSION, Registrar, SoftPasskey, parse_creation_options,
    parse_request_options,
};
use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use url::Url;

const USER_ID: &str = "44f4b412-fe14-4ead-8ac6-2b91ae42330a";

/// A directory of the test's own, mode 0700.
fn private_dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("ssoprobe-hostile-{}", common::uuid_like()));
    std::fs::create_dir_all(&d).unwrap();
    chmod(&d, 0o700);
    d
}

fn chmod(path: &Path, mode: u32) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
}

fn write_private(path: &Path, content: &str) {
    std::fs::write(path, content).unwrap();
    chmod(path, 0o600);
}

/// A valid credential file for `idp` (a fresh key), not known to any server.
fn credential(idp: &str) -> CredentialFile {
    let origin = Url::parse("https://id.example.com").unwrap();
    let options = parse_creation_options(serde_json::json!({
        "rp": {"name": "Pocket ID", "id": "id.example.com"},
        "user": {"name": "probe", "displayName": "Probe", "id": URL_SAFE_NO_PAD.encode(USER_ID)},
        "challenge": URL_SAFE_NO_PAD.encode([7u8; 32]),
        "pubKeyCredParams": [{"type": "public-key", "alg": -7}],
        "authenticatorSelection": {"requireResidentKey": true, "residentKey": "required", "userVerification": "required"}
    }))
    .unwrap();
    let (_, made) = Registrar::default().register(&origin, options).unwrap();
    CredentialFile {
        version: FILE_VERSION,
        idp: idp.to_string(),
        rp_id: made.rp_id,
        user_id: USER_ID.to_string(),
        username: "probe".into(),
        email: Some("probe@example.com".into()),
        credential_id: URL_SAFE_NO_PAD.encode(&made.credential_id),
        pocket_id_passkey_id: Some("0b6f9a57-3c41-4f5e-9a55-2f7c2c1d7e10".into()),
        private_key: made.pkcs8,
        counter: 0,
        created_at: 1,
        last_used_at: None,
    }
}

/// A loopback listener that must not be contacted: records every connection's bytes.
struct Catcher {
    port: u16,
    seen: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl Catcher {
    fn start() -> Catcher {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(std::time::Duration::from_millis(500)));
                let mut buf = vec![0u8; 8192];
                let n = stream.read(&mut buf).unwrap_or(0);
                buf.truncate(n);
                sink.lock().unwrap().push(buf);
            }
        });
        Catcher { port, seen }
    }

    fn connections(&self) -> Vec<String> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect()
    }
}

// ---- 1. the admin API key never travels over plain HTTP ----

#[test]
fn enroll_refuses_plain_http_before_reading_or_sending_the_key() {
    let catcher = Catcher::start();
    let dir = private_dir();
    let key = dir.join("api-key.txt");
    write_private(&key, "the-admin-api-key-0123456789");
    let out = dir.join("probe.passkey");
    let idp = format!("http://127.0.0.1:{}", catcher.port);
    let r = run(&[
        "enroll",
        "--idp",
        &idp,
        "--api-key-file",
        key.to_str().unwrap(),
        "--user",
        "probe@example.com",
        "--out",
        out.to_str().unwrap(),
        "--timeout",
        "3s",
    ]);
    assert_eq!(r.code, 3, "{}", r.dump());
    assert!(
        r.stderr.contains("--idp") && r.stderr.contains("not https"),
        "{}",
        r.dump()
    );
    assert!(r.stderr.contains("https://127.0.0.1"), "{}", r.dump());
    assert!(
        catcher.connections().is_empty(),
        "{:?}",
        catcher.connections()
    );
    // A login code is a secret too.
    let r = run(&[
        "enroll",
        "--idp",
        &idp,
        "--login-code",
        "ABC123",
        "--out",
        out.to_str().unwrap(),
        "--timeout",
        "3s",
    ]);
    assert_eq!(r.code, 3, "{}", r.dump());
    assert!(
        catcher.connections().is_empty(),
        "{:?}",
        catcher.connections()
    );
    assert!(!out.exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn passkey_remove_refuses_a_file_whose_idp_is_plain_http() {
    let catcher = Catcher::start();
    let dir = private_dir();
    let key = dir.join("api-key.txt");
    write_private(&key, "the-admin-api-key-0123456789");
    let pk = dir.join("probe.passkey");
    credential(&format!("http://127.0.0.1:{}", catcher.port))
        .save(&pk)
        .unwrap();
    let r = run(&[
        "passkey",
        "remove",
        pk.to_str().unwrap(),
        "--api-key-file",
        key.to_str().unwrap(),
        "--timeout",
        "3s",
    ]);
    assert_eq!(r.code, 3, "{}", r.dump());
    assert!(
        r.stderr.contains("names the IdP") && r.stderr.contains("not https"),
        "{}",
        r.dump()
    );
    assert!(
        r.stderr.contains("idp to Pocket ID's https URL"),
        "{}",
        r.dump()
    );
    assert!(
        catcher.connections().is_empty(),
        "{:?}",
        catcher.connections()
    );
    assert!(pk.exists(), "the file must stay when nothing was deleted");
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---- 2. ids from the file never become paths ----

#[test]
fn passkey_remove_refuses_a_user_id_that_is_a_path() {
    let catcher = Catcher::start();
    let dir = private_dir();
    let key = dir.join("api-key.txt");
    write_private(&key, "the-admin-api-key-0123456789");
    let pk = dir.join("probe.passkey");
    let mut file = credential(&format!("https://127.0.0.1:{}", catcher.port));
    file.user_id = "../../api/oidc/clients/x".into();
    file.save(&pk).unwrap();
    let r = run(&[
        "passkey",
        "remove",
        pk.to_str().unwrap(),
        "--api-key-file",
        key.to_str().unwrap(),
        "--timeout",
        "3s",
    ]);
    assert_eq!(r.code, 3, "{}", r.dump());
    assert!(r.stderr.contains("field `user_id`"), "{}", r.dump());
    assert!(!r.stderr.contains("oidc/clients"), "{}", r.dump());
    assert!(
        catcher.connections().is_empty(),
        "{:?}",
        catcher.connections()
    );
    assert!(pk.exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn removing_a_passkey_already_deleted_says_so_and_removes_the_file() {
    let lab = Lab::start(&[]);
    let pk = lab.path("probe.passkey");
    let enrolled = lab.enroll(&pk);
    assert_eq!(enrolled.code, 0, "{}", enrolled.dump());
    let copy = lab.path("copy.passkey");
    std::fs::copy(&pk, &copy).unwrap();
    let key = lab.path("api-key.txt");
    let remove = |file: &str| {
        let mut args = vec!["passkey", "remove", file, "--api-key-file", &key];
        args.extend(lab.routes.iter().map(String::as_str));
        run(&args)
    };
    let first = remove(&pk);
    assert_eq!(first.code, 0, "{}", first.dump());
    assert!(first.stdout.contains("deleted passkey"), "{}", first.dump());
    let second = remove(&copy);
    assert_eq!(second.code, 0, "{}", second.dump());
    assert!(
        second.stdout.contains("already deleted at Pocket ID"),
        "{}",
        second.dump()
    );
    assert!(!Path::new(&copy).exists());
}

// ---- 3. concurrent runs on one file ----

/// Re-runs this test binary as a child that runs only `test` with `env` set.
fn child(test: &str, env: (&str, &Path)) -> std::process::Child {
    std::process::Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads", "1"])
        .env(env.0, env.1)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// The child of [`parallel_processes_writing_one_file_all_succeed`]; a no-op alone.
#[test]
fn child_atomic_writer() {
    let Some(target) = std::env::var_os("SSOPROBE_TEST_WRITE") else {
        return;
    };
    let body = format!("{}\n", std::process::id()).repeat(2048);
    for _ in 0..40 {
        ssoprobe::atomic::write(Path::new(&target), body.as_bytes(), 0o644)
            .expect("an atomic write failed");
    }
}

#[test]
fn parallel_processes_writing_one_file_all_succeed() {
    let dir = private_dir();
    let target = dir.join("report.json");
    let children: Vec<_> = (0..8)
        .map(|_| child("child_atomic_writer", ("SSOPROBE_TEST_WRITE", &target)))
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "a writer failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = std::fs::read_to_string(&target).unwrap();
    let first = text.lines().next().unwrap();
    assert!(text.lines().all(|l| l == first), "a torn file");
    assert_eq!(text.lines().count(), 2048);
    // Every writer cleaned up after itself.
    let left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n != "report.json")
        .collect();
    assert!(left.is_empty(), "{left:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn parallel_threads_writing_one_file_all_succeed() {
    let dir = private_dir();
    let target = dir.join("report.prom");
    for round in 0..20 {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let target = target.clone();
                std::thread::spawn(move || {
                    let body = format!("{round} {i}\n").repeat(1024);
                    ssoprobe::atomic::write(&target, body.as_bytes(), 0o644)
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap().expect("a parallel writer failed");
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The child of [`locked_logins_in_parallel_processes_sign_increasing_counters`].
#[test]
fn child_locked_signer() {
    let Some(path) = std::env::var_os("SSOPROBE_TEST_SIGN") else {
        return;
    };
    let origin = Url::parse("https://id.example.com").unwrap();
    for _ in 0..5 {
        let (file, lock) = CredentialFile::load_locked(Path::new(&path)).unwrap();
        let mut pk = SoftPasskey::new(file).unwrap();
        let options = parse_request_options(serde_json::json!({
            "challenge": URL_SAFE_NO_PAD.encode([9u8; 32]),
            "rpId": "id.example.com",
        }))
        .unwrap();
        let a = pk.assert(&origin, options).unwrap();
        let ad = &a.response.authenticator_data;
        let counter = u32::from_be_bytes([ad[33], ad[34], ad[35], ad[36]]);
        pk.file().save(lock.path()).unwrap();
        drop(lock);
        println!("signed-counter {counter}");
    }
}

#[test]
fn locked_logins_in_parallel_processes_sign_increasing_counters() {
    let dir = private_dir();
    let pk = dir.join("probe.passkey");
    credential("https://id.example.com").save(&pk).unwrap();
    let children: Vec<_> = (0..6)
        .map(|_| child("child_locked_signer", ("SSOPROBE_TEST_SIGN", &pk)))
        .collect();
    let mut counters = Vec::new();
    for c in children {
        let out = c.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "a signer failed: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mine: Vec<u32> = stdout
            .lines()
            // libtest's "test … " may precede the first line.
            .filter_map(|l| l.split_once("signed-counter ").map(|(_, n)| n))
            .map(|n| n.trim().parse().unwrap())
            .collect();
        // Each process sees its own counters strictly increase.
        assert!(mine.windows(2).all(|w| w[0] < w[1]), "{mine:?}");
        counters.extend(mine);
    }
    counters.sort_unstable();
    assert_eq!(
        counters,
        (1..=30).collect::<Vec<u32>>(),
        "a counter was signed twice"
    );
    assert_eq!(CredentialFile::load(&pk).unwrap().counter, 30);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Five checks at once with one passkey: each signs a counter of its own and the file
/// ends at the last one. Needs the login (src/checks/login.rs) to hold
/// `CredentialFile::load_locked` from before signing until the counter is saved.
#[test]
fn parallel_checks_with_one_passkey_all_log_in() {
    let lab = Lab::start(&[]);
    let pk = lab.path("probe.passkey");
    assert_eq!(lab.enroll(&pk).code, 0);
    let runs: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..5)
            .map(|_| s.spawn(|| lab.check(&["--passkey", &pk])))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for r in &runs {
        assert_eq!(r.code, 0, "{}", r.dump());
    }
    assert_eq!(CredentialFile::load(Path::new(&pk)).unwrap().counter, 5);
}

// ---- 4. the passkey file and its directory ----

#[cfg(unix)]
#[test]
fn a_symlinked_passkey_file_is_refused_and_stays_a_link() {
    let dir = private_dir();
    let real = dir.join("real.passkey");
    credential("https://id.example.com").save(&real).unwrap();
    let link = dir.join("link.passkey");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let r = run(&["passkey", "show", link.to_str().unwrap()]);
    assert_eq!(r.code, 3, "{}", r.dump());
    assert!(
        r.stderr.contains("is a symbolic link") && r.stderr.contains("readlink -f"),
        "{}",
        r.dump()
    );
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[cfg(unix)]
#[test]
fn a_passkey_in_a_directory_others_can_write_is_refused() {
    let dir = private_dir();
    let pk = dir.join("probe.passkey");
    credential("https://id.example.com").save(&pk).unwrap();
    chmod(&dir, 0o777);
    let r = run(&["passkey", "show", pk.to_str().unwrap()]);
    assert_eq!(r.code, 3, "{}", r.dump());
    assert!(
        r.stderr.contains(&format!("chmod 700 {}", dir.display())),
        "{}",
        r.dump()
    );
    chmod(&dir, 0o700);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[cfg(unix)]
#[test]
fn a_passkey_of_another_user_is_refused() {
    use std::os::unix::fs::MetadataExt;
    let dir = private_dir();
    let pk = dir.join("probe.passkey");
    credential("https://id.example.com").save(&pk).unwrap();
    // Only root can give a file away.
    if std::fs::metadata(&dir).unwrap().uid() == 0 {
        std::os::unix::fs::chown(&pk, Some(65534), None).unwrap();
        let r = run(&["passkey", "show", pk.to_str().unwrap()]);
        assert_eq!(r.code, 3, "{}", r.dump());
        assert!(r.stderr.contains("belongs to uid 65534"), "{}", r.dump());
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_malformed_passkey_file_names_the_field_never_the_value() {
    let dir = private_dir();
    let pk = dir.join("probe.passkey");
    let mut value = serde_json::to_value(credential("https://id.example.com")).unwrap();
    let secret = value["private_key"].as_str().unwrap().to_string();
    value["counter"] = serde_json::json!(secret.clone());
    write_private(&pk, &value.to_string());
    let r = run(&["passkey", "show", pk.to_str().unwrap()]);
    assert_eq!(r.code, 3, "{}", r.dump());
    assert!(r.stderr.contains("field `counter`"), "{}", r.dump());
    assert!(!r.stderr.contains(&secret[..16]), "{}", r.dump());
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---- 6. a refused API key ----

#[test]
fn a_refused_api_key_says_so_and_how_to_make_one() {
    let lab = Lab::start(&[]);
    let key = lab.path("wrong-key.txt");
    write_private(Path::new(&key), "not-the-key-at-all-0123456789");
    let out = lab.path("probe.passkey");
    let r = lab.enroll_with_key(&out, &key);
    assert_eq!(r.code, 2, "{}", r.dump());
    assert!(r.stderr.contains("refused the API key"), "{}", r.dump());
    assert!(
        r.stderr.contains("Settings → API Keys") && r.stderr.contains("STATIC_API_KEY"),
        "{}",
        r.dump()
    );
    assert!(!Path::new(&out).exists());
}

/// A file that cannot be read is named with its flag and said in plain words, never
/// with the operating system's text or error number.
#[test]
fn a_missing_file_is_said_in_plain_words() {
    let missing = "/nonexistent/ssoprobe-test-file";
    let cases: [&[&str]; 6] = [
        &["--ca-file", missing],
        &["--passkey", missing],
        &["--config", missing],
        &["--client-secret-file", missing],
        &["--api-key-file", missing, "--idp", "https://id.example.com"],
        &[
            "--service-token-id",
            "x",
            "--service-token-secret-file",
            missing,
        ],
    ];
    for args in cases {
        let mut all = vec!["check", "https://service.example.com"];
        all.extend_from_slice(args);
        let r = common::run(&all);
        assert_ne!(r.code, 0, "{}", r.dump());
        assert!(
            r.stderr.contains(args[args.len() - 1]) || r.stderr.contains(missing),
            "{}",
            r.dump()
        );
        assert!(
            r.stderr.contains("no such file or directory"),
            "{}",
            r.dump()
        );
        assert!(!r.stderr.contains("os error"), "{}", r.dump());
        assert!(!r.stderr.contains("No such file"), "{}", r.dump());
    }
}
