//! Settings that could carry more than they seem: durations in every unit the messages
//! name, from flags, variables and the config file.

mod common;
use common::{Run, bin};
use std::time::Instant;

const SITE: [&str; 4] = [
    "--service",
    "https://s.example",
    "--idp",
    "https://id.example",
];

/// `ssoprobe config check` of SITE with `args` and the variables `env` (no network).
fn config_check(args: &[&str], env: &[(&str, &str)]) -> Run {
    let started = Instant::now();
    let mut command = bin();
    command.args(["config", "check"]).args(SITE).args(args);
    for (k, v) in env {
        command.env(k, v);
    }
    Run::from(command.output().expect("run ssoprobe"), started.elapsed())
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
    let started = Instant::now();
    let output = bin()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(SITE)
        .env("SSOPROBE_MIN_LOGIN_INTERVAL", "2h")
        .output()
        .unwrap();
    let r = Run::from(output, started.elapsed());
    assert_eq!(r.code, 3, "{}", r.dump());
    assert!(
        r.stderr
            .contains("SSOPROBE_MIN_LOGIN_INTERVAL: '2h' is out of range; give between 1ms and 1h"),
        "{}",
        r.dump()
    );
}
