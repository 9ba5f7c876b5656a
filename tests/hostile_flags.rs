//! Settings that could carry more than they seem: a `-H` value with a line break in it
//! (a second, injected header), `SSOPROBE_HEADER` holding several lines, and durations
//! in every unit the messages name, from flags, variables and the config file.

mod common;
use common::{Run, run_with_env};

const SITE: [&str; 4] = [
    "--service",
    "https://s.example",
    "--idp",
    "https://id.example",
];

/// `ssoprobe config check` of SITE with `args` and the variables `env` (no network).
fn config_check(args: &[&str], env: &[(&str, &str)]) -> Run {
    run_with_env(&[&["config", "check"], &SITE[..], args].concat(), env)
}

/// A config file in a directory of its own holding `text`; returns both paths.
fn config_file(text: &str) -> (std::path::PathBuf, String) {
    let dir = std::env::temp_dir().join(format!("ssoprobe-flags-{}", common::uuid_like()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("probe.toml");
    std::fs::write(&path, text).unwrap();
    (dir, path.display().to_string())
}

#[test]
fn a_line_break_inside_one_header_flag_is_refused() {
    for value in [
        "X-A: b\r\nInjected: 1",
        "X-A: b\nInjected: 1",
        "X-A: b\rInjected: 1",
        "X-A: b\n",
    ] {
        for args in [
            vec!["-H", value],
            vec!["--header", value],
            vec!["-H", "X-Ok: 1", "-H", value],
        ] {
            let r = config_check(&args, &[]);
            assert_eq!(r.code, 3, "{args:?}\n{}", r.dump());
            assert!(
                r.stderr.contains("-H/--header") && r.stderr.contains("line break"),
                "{args:?}\n{}",
                r.dump()
            );
            // What to do instead is said; the value (maybe a secret) is not quoted.
            assert!(r.stderr.contains("one -H per header"), "{}", r.dump());
            assert!(!r.stderr.contains("Injected"), "{}", r.dump());
        }
    }
    // In the config file, each string of `header` is one header too.
    for value in ["X-A: b\\r\\nInjected: 1", "X-A: b\\n"] {
        let (dir, file) = config_file(&format!(
            "service = \"https://s.example\"\nidp = \"https://id.example\"\nheader = [\"{value}\"]\n"
        ));
        let r = common::run(&["config", "check", "--config", &file]);
        assert_eq!(r.code, 3, "{value}\n{}", r.dump());
        assert!(
            r.stderr.contains("key `header`") && r.stderr.contains("line break"),
            "{value}\n{}",
            r.dump()
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn the_header_variable_is_split_on_line_breaks_and_empty_lines_are_ignored() {
    for value in [
        "X-A: 1\nX-B: 2\n",
        "X-A: 1\r\nX-B: 2\r\n",
        "\nX-A: 1\n\n",
        "",
        "\n",
    ] {
        let r = config_check(&[], &[("SSOPROBE_HEADER", value)]);
        assert_eq!(r.code, 0, "{value:?}\n{}", r.dump());
    }
    // A carriage return alone is no line break of the list: refused, not split.
    let r = config_check(&[], &[("SSOPROBE_HEADER", "X-A: 1\rInjected: 2")]);
    assert_eq!(r.code, 3, "{}", r.dump());
    assert!(
        r.stderr.contains("SSOPROBE_HEADER") && !r.stderr.contains("Injected"),
        "{}",
        r.dump()
    );
    // A flag wins over the variable, whole.
    let r = config_check(&["-H", "X-C: 3"], &[("SSOPROBE_HEADER", "not a header\n")]);
    assert_eq!(r.code, 0, "{}", r.dump());
}

#[cfg(feature = "lab")]
#[test]
fn both_lines_of_the_header_variable_reach_the_site() {
    let lab = common::Lab::start(&[]);
    let mut args = vec!["check"];
    args.extend(lab.check.iter().map(String::as_str));
    args.extend(["--format", "json", "--trace"]);
    let r = run_with_env(&args, &[("SSOPROBE_HEADER", "X-A: 1\nX-B: 2\n")]);
    assert_eq!(r.code, 0, "{}", r.dump());
    assert!(r.stderr.contains("headers: x-a, x-b"), "{}", r.dump());
}

#[test]
fn durations_take_every_unit_their_messages_name() {
    // The bounds, from a flag, a variable and a file key, for each duration setting.
    for (min, max) in [("1ms", "1h"), ("1 ms", "60m"), ("0.001s", "3600s")] {
        let r = config_check(
            &[
                "--timeout",
                max,
                "--connect-timeout",
                max,
                "--deadline",
                min,
            ],
            &[],
        );
        assert_eq!(r.code, 0, "{min} {max}\n{}", r.dump());
        let r = config_check(
            &[],
            &[
                ("SSOPROBE_TIMEOUT", max),
                ("SSOPROBE_CONNECT_TIMEOUT", min),
                ("SSOPROBE_DEADLINE", max),
            ],
        );
        assert_eq!(r.code, 0, "{min} {max}\n{}", r.dump());
        let (dir, file) = config_file(&format!(
            "service = \"https://s.example\"\nidp = \"https://id.example\"\ntimeout = \"{max}\"\nconnect_timeout = \"{max}\"\ndeadline = \"{min}\"\n"
        ));
        let r = common::run(&["config", "check", "--config", &file]);
        assert_eq!(r.code, 0, "{min} {max}\n{}", r.dump());
        let _ = std::fs::remove_dir_all(&dir);
    }
    // Past a bound: the message's own bounds are then accepted.
    let r = config_check(&["--connect-timeout", "2h"], &[]);
    assert_eq!(r.code, 3, "{}", r.dump());
    assert!(
        r.stderr
            .contains("--connect-timeout: '2h' is out of range; give between 1ms and 1h"),
        "{}",
        r.dump()
    );
    // Garbage is refused naming the setting as given.
    for (args, env, named) in [
        (vec!["--deadline", "soon"], vec![], "--deadline:"),
        (
            vec![],
            vec![("SSOPROBE_TIMEOUT", "10 sec")],
            "SSOPROBE_TIMEOUT:",
        ),
    ] {
        let r = config_check(&args, &env);
        assert_eq!(r.code, 3, "{}", r.dump());
        assert!(r.stderr.contains(named), "{}", r.dump());
    }
    // serve's interval, from the variable, is named as the variable.
    let r = run_with_env(
        &[&["serve", "--listen", "127.0.0.1:0"], &SITE[..]].concat(),
        &[("SSOPROBE_MIN_LOGIN_INTERVAL", "2h")],
    );
    assert_eq!(r.code, 3, "{}", r.dump());
    assert!(
        r.stderr
            .contains("SSOPROBE_MIN_LOGIN_INTERVAL: '2h' is out of range; give between 1ms and 1h"),
        "{}",
        r.dump()
    );
}

/// Help text with its line breaks and indentation as single spaces.
fn flat(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A secret file (mode 0600) in a directory of its own; returns both paths.
fn secret_file() -> (std::path::PathBuf, String) {
    let dir = std::env::temp_dir().join(format!("ssoprobe-secret-{}", common::uuid_like()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("secret.txt");
    std::fs::write(&path, "s3cr3t-value\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    (dir, path.display().to_string())
}

#[test]
fn an_error_between_two_settings_names_both_as_they_were_given() {
    // Flags: the flags, never the file keys.
    let r = config_check(&["--tls-warn-days", "5", "--tls-fail-days", "10"], &[]);
    assert_eq!(r.code, 3, "{}", r.dump());
    assert!(
        r.stderr
            .contains("--tls-warn-days: 5 is below --tls-fail-days (10)"),
        "{}",
        r.dump()
    );
    assert!(!r.stderr.contains("tls_"), "{}", r.dump());
    // Variables: the variables.
    let r = config_check(
        &[],
        &[
            ("SSOPROBE_TLS_WARN_DAYS", "5"),
            ("SSOPROBE_TLS_FAIL_DAYS", "10"),
        ],
    );
    assert_eq!(r.code, 3, "{}", r.dump());
    assert!(
        r.stderr
            .contains("SSOPROBE_TLS_WARN_DAYS: 5 is below SSOPROBE_TLS_FAIL_DAYS (10)"),
        "{}",
        r.dump()
    );
    // The file's key with its file, and the default it meets.
    let (dir, file) = config_file(
        "service = \"https://s.example\"\nidp = \"https://id.example\"\ntls_fail_days = 30\n",
    );
    let r = common::run(&["config", "check", "--config", &file]);
    assert_eq!(r.code, 3, "{}", r.dump());
    assert!(
        r.stderr.contains(&format!(
            "{file}: key `tls_fail_days`: 30 is above the default of --tls-warn-days (21)"
        )),
        "{}",
        r.dump()
    );
    let _ = std::fs::remove_dir_all(&dir);
    // One from a variable, the other from a flag.
    let r = config_check(&["--timeout", "5s"], &[("SSOPROBE_CONNECT_TIMEOUT", "20s")]);
    assert_eq!(r.code, 3, "{}", r.dump());
    assert!(
        r.stderr.contains(
            "SSOPROBE_CONNECT_TIMEOUT: 20 s is longer than the per-request timeout (5 s, --timeout)"
        ),
        "{}",
        r.dump()
    );
    // A setting that needs another says how to give it, the way the first was given.
    let (secret_dir, secret) = secret_file();
    let r = config_check(&[], &[("SSOPROBE_CLIENT_SECRET_FILE", secret.as_str())]);
    assert_eq!(r.code, 3, "{}", r.dump());
    assert!(
        r.stderr
            .contains("SSOPROBE_CLIENT_SECRET_FILE: idp.exchange needs the client id with the secret: set SSOPROBE_CLIENT_ID"),
        "{}",
        r.dump()
    );
    let (dir, file) = config_file(&format!(
        "service = \"https://s.example\"\nservice_token_secret_file = \"{secret}\"\n"
    ));
    let r = common::run(&["config", "check", "--config", &file]);
    assert_eq!(r.code, 3, "{}", r.dump());
    assert!(
        r.stderr.contains(&format!(
            "{file}: key `service_token_secret_file`: a service token needs its id too: add `service_token_id` to {file}"
        )),
        "{}",
        r.dump()
    );
    assert!(!r.stderr.contains("s3cr3t"), "{}", r.dump());
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&secret_dir);
}

#[test]
fn lists_in_one_value_are_split_where_the_help_says() {
    // The help says where a value holds several.
    let help = common::run(&["check", "--help"]);
    for said in [
        "separated by commas, as SSOPROBE_RESOLVE takes them",
        "separated by commas, as SSOPROBE_CONNECT_TO takes them",
        "one header per -H; SSOPROBE_HEADER takes one per line",
    ] {
        assert!(
            flat(&help.stdout).contains(said),
            "{said:?}\n{}",
            help.dump()
        );
    }
    for command in ["demo", "lab", "enroll"] {
        let help = common::run(&[command, "--help"]);
        assert!(
            flat(&help.stdout).contains("or several in one value separated by commas"),
            "{command}\n{}",
            help.dump()
        );
    }
    // The variables and the flags split at commas (a space after one is fine) ...
    for (variable, flag, good, bad) in [
        (
            "SSOPROBE_RESOLVE",
            "--resolve",
            "a.example:443:127.0.0.1, b.example:443:[::1]",
            "b.example:443",
        ),
        (
            "SSOPROBE_CONNECT_TO",
            "--connect-to",
            "a.example:443:127.0.0.1:8443,::127.0.0.2:9443",
            "b.example:443:127.0.0.1",
        ),
    ] {
        let r = config_check(&[], &[(variable, good)]);
        assert_eq!(r.code, 0, "{variable}={good}\n{}", r.dump());
        let r = config_check(&[flag, good], &[]);
        assert_eq!(r.code, 0, "{flag} {good}\n{}", r.dump());
        // ... and each part is one setting: the bad one is named alone.
        let both = format!("{good},{bad}");
        let r = config_check(&[], &[(variable, both.as_str())]);
        assert_eq!(r.code, 3, "{variable}={both}\n{}", r.dump());
        assert!(
            r.stderr.contains(&format!("{variable}: '{bad}'")),
            "{}",
            r.dump()
        );
        let r = config_check(&[flag, &both], &[]);
        assert_eq!(r.code, 3, "{flag} {both}\n{}", r.dump());
        assert!(
            r.stderr.contains(&format!("{flag}: '{bad}'")),
            "{}",
            r.dump()
        );
    }
    // A header's value may hold a comma: SSOPROBE_HEADER splits at line breaks only.
    let r = config_check(&[], &[("SSOPROBE_HEADER", "X-A: 1, 2\nX-B: 3")]);
    assert_eq!(r.code, 0, "{}", r.dump());
    // The lab's faults split at commas too: the unknown one is named alone.
    let r = common::run(&["demo", "--fault", "idp-slow,no-such-fault"]);
    assert_eq!(r.code, 3, "{}", r.dump());
    assert!(
        r.stderr.contains("unknown fault 'no-such-fault'"),
        "{}",
        r.dump()
    );
}

#[cfg(feature = "lab")]
#[test]
fn every_address_in_the_resolve_variable_is_used() {
    let lab = common::Lab::start(&[]);
    let routes = |kind: &str| lab.route_values(kind).join(",");
    let (resolve, connect_to) = (routes("--resolve"), routes("--connect-to"));
    assert!(
        resolve.contains(','),
        "the lab pins several hosts: {resolve}"
    );
    let ca = lab.ca_file();
    let mut env = vec![("SSOPROBE_RESOLVE", resolve.as_str())];
    if !connect_to.is_empty() {
        env.push(("SSOPROBE_CONNECT_TO", connect_to.as_str()));
    }
    let r = run_with_env(
        &[
            "check",
            "https://service.example.com",
            "--ca-file",
            &ca,
            "--format",
            "json",
        ],
        &env,
    );
    assert_eq!(r.code, 0, "{}", r.dump());
}
