//! The probe built without the embedded lab (`cargo build --no-default-features`, for a
//! monitoring host): `demo` and `lab` say how to get them, everything else works.
//! Run with `cargo test --no-default-features --test without_lab` (.ci/run does).

#![cfg(not(feature = "lab"))]

mod common;

use common::run;

#[test]
fn demo_and_lab_say_how_to_get_the_lab() {
    for command in ["demo", "lab"] {
        let run = run(&[command]);
        assert_eq!(run.code, 3, "{command}\n{}", run.dump());
        assert!(
            run.stderr
                .contains(&format!("`ssoprobe {command}` needs the embedded lab"))
                && run.stderr.contains("cargo feature `lab`")
                && run.stderr.contains("--no-default-features"),
            "{command}\n{}",
            run.dump()
        );
        assert!(run.stdout.is_empty(), "{command}\n{}", run.dump());
    }
}

#[test]
fn the_probe_still_checks_and_validates() {
    let help = run(&["check", "--help"]);
    assert_eq!(help.code, 0, "{}", help.dump());
    assert!(help.stdout.contains("--service"), "{}", help.dump());
    let missing = run(&["check"]);
    assert_eq!(missing.code, 3, "{}", missing.dump());
    assert!(missing.stderr.contains("--service"), "{}", missing.dump());
    // A check against a closed loopback port runs and reports, without the lab.
    let closed = run(&[
        "check",
        "--service",
        "https://service.example.com",
        "--idp",
        "https://id.example.com",
        "--team",
        "xyz",
        "--connect-to",
        "service.example.com:443:127.0.0.1:9",
        "--connect-to",
        "id.example.com:443:127.0.0.1:9",
        "--connect-to",
        "xyz.cloudflareaccess.com:443:127.0.0.1:9",
        "--timeout",
        "2s",
        "--format",
        "json",
    ]);
    assert_eq!(closed.code, 2, "{}", closed.dump());
    let json = closed.json();
    assert_eq!(json["status"], "fail", "{}", closed.dump());
}
