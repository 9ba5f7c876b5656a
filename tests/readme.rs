//! The README's settings table, command list, sample report and table of contents are
//! generated from the real binary and its flag definitions, so they cannot drift from
//! them (`SSOPROBE_BLESS=1 cargo test --test readme` rewrites them).

mod common;

use clap::CommandFactory;
use ssoprobe::cli::Cli;
use ssoprobe::config::FILE_KEYS;

const BY: &str = "tests/readme.rs";

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// A flag as written on the command line: `-k, --insecure`, `--service URL`.
fn flag(arg: &clap::Arg) -> String {
    let mut out = String::new();
    if let Some(short) = arg.get_short() {
        out.push_str(&format!("-{short}, "));
    }
    match arg.get_long() {
        Some(long) => out.push_str(&format!("--{long}")),
        None => out.push_str(&format!("<{}>", arg.get_id().as_str().to_uppercase())),
    }
    let takes_value = arg.get_num_args().is_some_and(|n| n.takes_values())
        && !matches!(
            arg.get_action(),
            clap::ArgAction::SetTrue | clap::ArgAction::SetFalse | clap::ArgAction::Count
        );
    if takes_value {
        let values: Vec<String> = arg
            .get_possible_values()
            .iter()
            .filter(|v| !v.is_hide_set())
            .map(|v| v.get_name().to_string())
            .collect();
        if !values.is_empty() && values.len() <= 6 {
            out.push_str(&format!(" {}", values.join("|")));
        } else if let Some(names) = arg.get_value_names() {
            let names: Vec<&str> = names.iter().map(|n| n.as_str()).collect();
            out.push_str(&format!(" {}", names.join(" ")));
        } else {
            out.push_str(&format!(" {}", arg.get_id().as_str().to_uppercase()));
        }
    }
    out
}

/// Splits a help text into its meaning and the `[default: …]` it ends with.
fn meaning_and_default(arg: &clap::Arg) -> (String, Option<String>) {
    let help = arg
        .get_long_help()
        .or(arg.get_help())
        .map(|h| h.to_string())
        .unwrap_or_default()
        .replace('\n', " ");
    let mut default = arg
        .get_default_values()
        .iter()
        .map(|v| v.to_string_lossy().into_owned())
        .next();
    let mut meaning = help.clone();
    if let Some(at) = help.find("[default: ") {
        let rest = &help[at + "[default: ".len()..];
        if let Some(close) = rest.find(']') {
            default = Some(rest[..close].to_string());
            meaning = format!("{}{}", &help[..at], &rest[close + 1..]);
        }
    }
    let meaning = meaning
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .trim_end_matches('.')
        .replace(" .", ".")
        .replace(" )", ")");
    (meaning, default)
}

fn visible_args(cmd: &clap::Command) -> Vec<&clap::Arg> {
    cmd.get_arguments()
        .filter(|a| !a.is_hide_set())
        .filter(|a| !matches!(a.get_id().as_str(), "help" | "version"))
        .collect()
}

/// Every setting of `check`: flag, environment variable, config-file key, default.
fn settings_table() -> String {
    let mut cli = Cli::command();
    cli.build();
    let check = cli.find_subcommand("check").expect("check");
    let mut out = String::from(
        "| flag | variable | file key | default | meaning |\n| --- | --- | --- | --- | --- |\n",
    );
    for arg in visible_args(check) {
        let id = arg.get_id().as_str();
        let env = arg
            .get_env()
            .map(|e| format!("`{}`", e.to_string_lossy()))
            .unwrap_or_else(|| "—".into());
        let key = if FILE_KEYS.contains(&id) {
            format!("`{id}`")
        } else {
            "—".into()
        };
        let (meaning, default) = meaning_and_default(arg);
        let default = default
            .map(|d| format!("`{d}`"))
            .unwrap_or_else(|| "—".into());
        out.push_str(&format!(
            "| `{}` | {env} | {key} | {default} | {} |\n",
            cell(&flag(arg)),
            cell(&meaning)
        ));
    }
    out
}

/// Every command with what it does and its own flags (`check`'s are in the table).
fn commands() -> String {
    let mut cli = Cli::command();
    cli.build();
    let mut out = String::from("| command | what it does |\n| --- | --- |\n");
    let mut rows = Vec::new();
    fn walk(cmd: &clap::Command, path: &str, rows: &mut Vec<(String, String)>) {
        for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
            let name = format!("{path} {}", sub.get_name());
            if sub.has_subcommands() {
                walk(sub, &name, rows);
                continue;
            }
            let mut usage = format!("`{name}`");
            let flags: Vec<String> =
                if ["ssoprobe check", "ssoprobe config check", "ssoprobe doctor"]
                    .contains(&name.as_str())
                {
                    vec!["the settings below".into()]
                } else {
                    visible_args(sub)
                        .into_iter()
                        .map(|a| {
                            if a.is_positional() {
                                format!("`{}`", a.get_id().as_str().to_uppercase())
                            } else {
                                format!("`{}`", flag(a))
                            }
                        })
                        .collect()
                };
            if !flags.is_empty() {
                usage.push_str(&format!(" {}", flags.join(" ")));
            }
            let about = sub.get_about().map(|a| a.to_string()).unwrap_or_default();
            rows.push((usage, about));
        }
    }
    walk(&cli, "ssoprobe", &mut rows);
    for (usage, about) in rows {
        out.push_str(&format!("| {} | {} |\n", cell(&usage), cell(&about)));
    }
    out
}

#[test]
fn checks_tables_are_generated_from_the_declaration() {
    use ssoprobe::checks::spec;
    common::readme_section("checks", BY, &spec::markdown(spec::PROBE), str::to_string);
    common::readme_section(
        "config checks",
        BY,
        &spec::markdown(spec::CONFIG),
        str::to_string,
    );
}

#[test]
fn settings_table_is_generated_from_the_flags() {
    common::readme_section("settings", BY, &settings_table(), str::to_string);
}

#[test]
fn command_list_is_generated_from_the_commands() {
    common::readme_section("commands", BY, &commands(), str::to_string);
}

/// The durations of a report vary from run to run; nothing else in the demo does.
fn without_times(text: &str) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    let number = |w: &str| !w.is_empty() && w.chars().all(|c| c.is_ascii_digit() || c == '.');
    let mut out = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let word = words[i];
        let unit = words.get(i + 1).map(|u| u.trim_end_matches(')'));
        if number(word) && matches!(unit, Some("ms" | "s")) {
            // "928 ms" and "1.2 s" are the same time to the reader.
            let closed = if words[i + 1].ends_with(')') { ")" } else { "" };
            out.push(format!("N T{closed}"));
            i += 2;
            continue;
        }
        out.push(if number(word) {
            "N".to_string()
        } else {
            word.to_string()
        });
        i += 1;
    }
    out.join(" ")
}

#[test]
fn sample_report_is_the_real_report() {
    let run = common::run(&[
        "demo",
        "--fault",
        "callback-not-registered",
        "--color",
        "never",
    ]);
    assert_eq!(run.code, 2, "{}", run.dump());
    let sample = format!(
        "```\n$ ssoprobe demo --fault callback-not-registered\n{}```\n",
        run.stdout
    );
    common::readme_section("sample report", BY, &sample, without_times);
}

#[test]
fn doctor_sample_is_the_real_report() {
    let lab = common::Lab::start(&["no-pkce", "user-not-allowed"]);
    let enrolled = lab.enroll(&lab.path("probe.passkey"));
    assert_eq!(enrolled.code, 0, "{}", enrolled.dump());
    let mut args: Vec<&str> = vec!["doctor"];
    args.extend(lab.doctor.iter().map(String::as_str));
    args.extend(["--color", "never"]);
    let run = common::run(&args);
    assert_eq!(run.code, 2, "{}", run.dump());
    // The lab's paths and addresses change from run to run; the report does not.
    let sample = format!(
        "```\n$ ssoprobe doctor --service https://service.example.com --idp https://id.example.com \\\n    --cf-api-token-file cf-token.txt --api-key-file key.txt --user probe@example.com   # the lab, with faults no-pkce and user-not-allowed\n{}```\n",
        run.stdout
    );
    common::readme_section("doctor sample", BY, &sample, without_times);
}

/// GitHub's anchor for a heading.
fn anchor(heading: &str) -> String {
    heading
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

#[test]
fn table_of_contents_lists_every_section() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
    let readme = std::fs::read_to_string(path).unwrap();
    let mut toc = String::new();
    let mut in_code = false;
    for line in readme.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
        }
        if in_code {
            continue;
        }
        if let Some(h) = line.strip_prefix("## ") {
            toc.push_str(&format!("- [{h}](#{})\n", anchor(h)));
        } else if let Some(h) = line.strip_prefix("### ") {
            toc.push_str(&format!("  - [{h}](#{})\n", anchor(h)));
        }
    }
    common::readme_section("contents", BY, &toc, str::to_string);
}

#[test]
fn install_is_documented_and_packaging_uses_one_absolute_path() {
    let root = env!("CARGO_MANIFEST_DIR");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    assert!(readme.contains("cargo install --locked --path ."));
    // cron's PATH lacks /usr/local/bin: every example that runs ssoprobe names it whole.
    for file in [
        "packaging/cron/ssoprobe.cron",
        "packaging/systemd/ssoprobe.service",
        "packaging/kubernetes/cronjob.yaml",
    ] {
        let text = std::fs::read_to_string(format!("{root}/{file}")).unwrap();
        let runs: Vec<&str> = text
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .filter(|l| l.contains("ssoprobe check") || l.contains("ssoprobe\", \"check\""))
            .collect();
        assert!(!runs.is_empty(), "{file} runs no check");
        for line in runs {
            assert!(
                line.contains("/usr/local/bin/ssoprobe"),
                "{file}: {line:?} does not run /usr/local/bin/ssoprobe"
            );
        }
    }
}

/// The anchors of a Markdown page's headings, outside code blocks.
fn anchors(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_code = false;
    for line in text.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
        }
        if !in_code && line.starts_with('#') {
            out.push(anchor(line.trim_start_matches('#').trim()));
        }
    }
    out
}

#[test]
fn every_link_between_the_readme_and_the_docs_resolves() {
    // The README links into docs/ and docs/ links back: a moved section or a renamed
    // heading breaks a link, and this names it.
    let mut broken = Vec::new();
    for page in common::doc_files() {
        let text = std::fs::read_to_string(&page).unwrap();
        let dir = page.parent().unwrap().to_path_buf();
        let mut rest = text.as_str();
        while let Some(at) = rest.find("](") {
            rest = &rest[at + 2..];
            let Some(end) = rest.find(')') else { break };
            let link = &rest[..end];
            if link.starts_with("http") || link.contains(' ') || link.is_empty() {
                continue;
            }
            let (file, fragment) = link.split_once('#').unwrap_or((link, ""));
            let target = if file.is_empty() {
                page.clone()
            } else {
                dir.join(file)
            };
            if !target.exists() {
                broken.push(format!("{}: {link} (no such file)", page.display()));
                continue;
            }
            if !fragment.is_empty()
                && target.extension().is_some_and(|x| x == "md")
                && !anchors(&std::fs::read_to_string(&target).unwrap())
                    .iter()
                    .any(|a| a == fragment)
            {
                broken.push(format!("{}: {link} (no such heading)", page.display()));
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn the_readme_is_a_front_door() {
    // Read in five minutes: the reference lives in docs/.
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let lines = readme.lines().count();
    assert!(
        lines <= 250,
        "README.md has {lines} lines; move reference material to docs/"
    );
    for license in ["LICENSE-MIT", "LICENSE-APACHE"] {
        assert!(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(license)
                .exists(),
            "{license} is missing (Cargo.toml says MIT OR Apache-2.0)"
        );
    }
}
