//! clap's usage errors, said in terms of what was typed: a bad value that came from an
//! `SSOPROBE_*` variable names the variable (not the flag nobody typed) and what it
//! takes; a subcommand's flag typed before the subcommand gets a tip that moves it; a
//! second site on the command line points at the config file's `[targets.NAME]` tables.
//! Never quotes a value the user typed but the one clap already names.

use clap::builder::StyledStr;
use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{Arg, ArgAction, Command};
use std::ffi::OsString;

/// `e`, the error of parsing `argv` (the program name first) with `cmd`, with what it
/// leaves unsaid.
pub(super) fn explain(mut e: clap::Error, cmd: &Command, argv: &[OsString]) -> clap::Error {
    let words: Vec<String> = argv
        .iter()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    match e.kind() {
        ErrorKind::InvalidValue | ErrorKind::ValueValidation => {
            from_environment(&mut e, cmd, &words);
        }
        ErrorKind::UnknownArgument => {
            let _ = flag_before_subcommand(&mut e, cmd, &words) || second_site(&mut e, cmd, &words);
        }
        _ => {}
    }
    e
}

/// The subcommands `words` name, outermost first (`config`, `check`), each with the
/// index of its word: the first word naming a subcommand of the one before.
fn subcommand_path<'a>(cmd: &'a Command, words: &[String]) -> Vec<(usize, &'a Command)> {
    let mut path = Vec::new();
    let mut current = cmd;
    let mut start = 0;
    while let Some((i, sub)) = words
        .iter()
        .enumerate()
        .skip(start)
        .filter(|(_, w)| !w.starts_with('-'))
        .find_map(|(i, w)| current.find_subcommand(w).map(|s| (i, s)))
    {
        path.push((i, sub));
        current = sub;
        start = i + 1;
    }
    path
}

/// The option of `cmd` that `flag` (`--format`, `--format=json`, `-v`) names.
fn find_arg<'a>(cmd: &'a Command, flag: &str) -> Option<&'a Arg> {
    if let Some(long) = flag.strip_prefix("--") {
        let long = long.split('=').next().unwrap_or(long);
        return cmd.get_arguments().find(|a| {
            a.get_long() == Some(long) || a.get_all_aliases().is_some_and(|al| al.contains(&long))
        });
    }
    let short = flag.strip_prefix('-')?.chars().next()?;
    cmd.get_arguments().find(|a| {
        a.get_short() == Some(short)
            || a.get_all_short_aliases()
                .is_some_and(|al| al.contains(&short))
    })
}

/// Whether command-line word `word` gives option `arg` (`--format`, `--format=…`, `-v`,
/// `-qv`).
fn gives(word: &str, arg: &Arg) -> bool {
    if let Some(long) = word.strip_prefix("--") {
        let long = long.split('=').next().unwrap_or(long);
        return arg.get_long() == Some(long)
            || arg.get_all_aliases().is_some_and(|al| al.contains(&long));
    }
    match (word.strip_prefix('-'), arg.get_short()) {
        (Some(cluster), Some(short)) => cluster.starts_with(short),
        _ => false,
    }
}

/// Adds `tip` to the error's tips.
fn add_tip(e: &mut clap::Error, tip: String) {
    let mut tips = match e.get(ContextKind::Suggested) {
        Some(ContextValue::StyledStrs(tips)) => tips.clone(),
        _ => Vec::new(),
    };
    tips.push(StyledStr::from(tip));
    e.insert(ContextKind::Suggested, ContextValue::StyledStrs(tips));
}

/// A bad value clap read from an option's variable (the option itself not typed): the
/// error names the variable, and the tip what it takes.
fn from_environment(e: &mut clap::Error, cmd: &Command, words: &[String]) {
    let (Some(ContextValue::String(named)), Some(ContextValue::String(value))) = (
        e.get(ContextKind::InvalidArg),
        e.get(ContextKind::InvalidValue),
    ) else {
        return;
    };
    let (named, value) = (named.clone(), value.clone());
    let flag = named.split_whitespace().next().unwrap_or_default();
    let path = subcommand_path(cmd, words);
    let (after, sub) = path.last().map_or((0, cmd), |&(i, sub)| (i + 1, sub));
    let Some(arg) = find_arg(sub, flag) else {
        return;
    };
    let Some(variable) = arg.get_env() else {
        return;
    };
    let Some(set) = std::env::var_os(variable) else {
        return;
    };
    if words.iter().skip(after).any(|w| gives(w, arg)) {
        return;
    }
    let set = set.to_string_lossy();
    let from_variable = *set == value
        || arg
            .get_value_delimiter()
            .is_some_and(|d| set.split(d).any(|part| part == value));
    if !from_variable {
        return;
    }
    let variable = variable.to_string_lossy().into_owned();
    e.insert(
        ContextKind::InvalidArg,
        ContextValue::String(variable.clone()),
    );
    let long = arg.get_long().map_or(named.clone(), |l| format!("--{l}"));
    let takes = if e.get(ContextKind::ValidValue).is_some() {
        "one of the values above".to_string()
    } else if matches!(arg.get_action(), ArgAction::SetTrue | ArgAction::SetFalse) {
        "1, true, yes or on to turn it on; 0, false, no or off to turn it off".to_string()
    } else {
        let mut help = vec![cmd.get_name()];
        help.extend(path.iter().map(|(_, s)| s.get_name()));
        format!("a value {long} takes (`{} --help`)", help.join(" "))
    };
    add_tip(
        e,
        format!("the variable {variable} sets {long}: give it {takes}, or unset it"),
    );
}

/// An option typed before the subcommand that has it (`ssoprobe -v check URL`): a tip
/// with the command line that puts it after.
fn flag_before_subcommand(e: &mut clap::Error, cmd: &Command, words: &[String]) -> bool {
    let Some(ContextValue::String(typed)) = e.get(ContextKind::InvalidArg) else {
        return false;
    };
    let typed = typed.clone();
    if !typed.starts_with('-') || typed == "-" || typed == "--" {
        return false;
    }
    let path = subcommand_path(cmd, words);
    let Some(&(first, _)) = path.first() else {
        return false;
    };
    let word_gives = |w: &String| {
        *w == typed
            || w.starts_with(&format!("{typed}="))
            || (!typed.starts_with("--") && !w.starts_with("--") && w.starts_with(&typed))
    };
    if !words.iter().take(first).any(word_gives) {
        return false;
    }
    // The innermost subcommand typed that has the option.
    let Some((depth, arg)) = path
        .iter()
        .enumerate()
        .rev()
        .find_map(|(depth, (_, sub))| find_arg(sub, &typed).map(|a| (depth, a)))
    else {
        return false;
    };
    let sub = path[depth].1;
    let mut line = vec![cmd.get_name().to_string()];
    line.extend(path[..=depth].iter().map(|(_, s)| s.get_name().to_string()));
    let shown = if typed.starts_with("--") {
        arg.get_long().map(|l| format!("--{l}"))
    } else {
        arg.get_short().map(|s| format!("-{s}"))
    }
    .unwrap_or_else(|| typed.clone());
    line.push(shown.clone());
    if arg.get_action().takes_values() {
        line.push(value_name(arg));
    }
    line.extend(
        sub.get_positionals()
            .filter(|p| !p.is_hide_set())
            .map(value_name),
    );
    let tip = format!("{shown} goes after the subcommand: {}", line.join(" "));
    e.insert(
        ContextKind::Suggested,
        ContextValue::StyledStrs(vec![StyledStr::from(tip)]),
    );
    true
}

/// The placeholder of an argument's value: its value name, else its id in capitals.
pub(super) fn value_name(arg: &Arg) -> String {
    match arg.get_value_names() {
        Some(names) if !names.is_empty() => names
            .iter()
            .map(|n| n.as_str())
            .collect::<Vec<_>>()
            .join(" "),
        _ => arg.get_id().as_str().to_uppercase(),
    }
}

/// A second site after a command's URL argument (`ssoprobe check URL1 URL2`): a tip
/// that one run checks several sites from a config file's `[targets.NAME]` tables.
fn second_site(e: &mut clap::Error, cmd: &Command, words: &[String]) -> bool {
    let Some(ContextValue::String(typed)) = e.get(ContextKind::InvalidArg) else {
        return false;
    };
    if typed.starts_with('-') || !(typed.contains("://") || typed.contains('.')) {
        return false;
    }
    let path = subcommand_path(cmd, words);
    let Some(&(_, sub)) = path.last() else {
        return false;
    };
    if !sub.get_positionals().any(|a| a.get_id() == "url") {
        return false;
    }
    let mut command = vec![cmd.get_name()];
    command.extend(path.iter().map(|(_, s)| s.get_name()));
    let command = command.join(" ");
    // Lined up under the text after "  tip: ".
    let tip = format!(
        "one run checks several sites from a config file, a [targets.NAME] table for each:\n\
         \x20        [targets.wiki]\n\
         \x20        service = \"https://wiki.example.com\"\n\
         \x20        [targets.grafana]   (and so on, one table per site)\n\
         \x20      then run `{command} --config sites.toml`; `ssoprobe config --help` says more"
    );
    add_tip(e, tip);
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn words(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn the_subcommand_path_skips_options_and_values() {
        let cmd = crate::cli::Cli::command();
        let names = |line: &str| -> Vec<String> {
            subcommand_path(&cmd, &words(line))
                .iter()
                .map(|(_, s)| s.get_name().to_string())
                .collect()
        };
        assert_eq!(names("-v config check https://x"), ["config", "check"]);
        assert_eq!(names("check --format json https://x"), ["check"]);
        assert!(names("--version").is_empty());
    }
}
