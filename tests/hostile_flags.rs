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
