//! `ssoprobe man`: the manual pages, rendered with clap_mangen from the same clap
//! definitions as `--help`. Without `--dir` it prints ssoprobe(1); with `--dir DIR` it
//! writes ssoprobe.1 and one page per subcommand and nested subcommand
//! (ssoprobe-check.1, ssoprobe-config-check.1, …) into DIR, each atomically, and prints
//! the paths it wrote.
//!
//! Each page is clap_mangen's title (with the version), NAME, SYNOPSIS, DESCRIPTION,
//! OPTIONS (each with "[env: NAME]" where it has a variable) and SUBCOMMANDS sections,
//! then sections of ours: EXIT STATUS, NOTES and EXAMPLES from the subcommand's
//! after-help text, ENVIRONMENT (the variables, never their values) and a SEE ALSO naming
//! only pages that `--dir` writes.

use super::AppError;
use clap_mangen::roff::{Inline, Roff, bold, italic, roman};
use std::io::Write;
use std::path::Path;

/// The manual section of every page (user commands).
const SECTION: &str = "1";

/// One rendered page.
struct Page {
    /// The page name, e.g. `ssoprobe-config-check`; the file is `<name>.1`.
    name: String,
    /// The roff source.
    roff: Vec<u8>,
}

/// Prints ssoprobe(1), or writes every page into `dir`.
pub fn run(dir: Option<&Path>) -> Result<u8, AppError> {
    let pages = pages()?;
    match dir {
        None => {
            if let Some(top) = pages.first() {
                // A closed pipe (`ssoprobe man | head`) ends the process quietly
                // (SIGPIPE is restored for printing commands); other errors have no reader.
                let mut stdout = std::io::stdout().lock();
                let _ = stdout.write_all(&top.roff);
                let _ = stdout.flush();
            }
            Ok(0)
        }
        Some(dir) => write_pages(dir, &pages),
    }
}

/// Writes `pages` into `dir` (created if missing, when its parent exists: a mistyped
/// path makes no tree of directories), then prints their paths. The paths come after
/// the writing, so that a reader that goes away (`| head -1`) cannot stop it halfway; on
/// an error, the pages written before it are still listed.
fn write_pages(dir: &Path, pages: &[Page]) -> Result<u8, AppError> {
    let fix = "give --dir a directory you can write to (created if missing, when its \
               parent exists), e.g. /usr/local/share/man/man1 as root or \
               ~/.local/share/man/man1";
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            return Err(AppError::Io(format!(
                "--dir: cannot write the man pages into {}: it exists and is not a directory; {fix}",
                dir.display()
            )));
        }
        Err(_) => create_last(dir, fix)?,
    }
    let mut written = Vec::new();
    let mut result = Ok(0);
    for page in pages {
        let path = dir.join(format!("{}.{SECTION}", page.name));
        if let Err(e) = crate::atomic::write(&path, &page.roff, 0o644) {
            result = Err(AppError::Io(format!(
                "cannot write the man page {}: {}; {fix}",
                path.display(),
                crate::text::io_words(&e)
            )));
            break;
        }
        written.push(path);
    }
    let mut stdout = std::io::stdout().lock();
    for path in &written {
        let _ = writeln!(stdout, "{}", path.display());
    }
    let _ = stdout.flush();
    result
}

/// Creates directory `dir` whose parent exists; a missing parent is an error naming it
/// (`mkdir -p` is the user's to type).
fn create_last(dir: &Path, fix: &str) -> Result<(), AppError> {
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    match std::fs::metadata(parent) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            return Err(AppError::Io(format!(
                "--dir: cannot create {}: {} is not a directory; {fix}",
                dir.display(),
                parent.display()
            )));
        }
        Err(_) => {
            return Err(AppError::Io(format!(
                "--dir: cannot create {}: its parent directory {} does not exist; create it first \
                 (mkdir -p {}), or correct the path",
                dir.display(),
                parent.display(),
                parent.display()
            )));
        }
    }
    match std::fs::create_dir(dir) {
        Ok(()) => Ok(()),
        // Made meanwhile by someone else: as good.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(AppError::Io(format!(
            "--dir: cannot create the man page directory {}: {}; {fix}",
            dir.display(),
            crate::text::io_words(&e)
        ))),
    }
}

/// Every page: ssoprobe(1) first, then each subcommand's page followed by its own
/// subcommands' pages, in the order of `--help`.
fn pages() -> Result<Vec<Page>, AppError> {
    let mut root = prepare(super::command());
    // Sets each subcommand's display name (`ssoprobe-config-check`), which names its page,
    // and its bin name (`ssoprobe config check`), which its synopsis shows.
    root.build();
    let date = date();
    let mut pages = Vec::new();
    collect(&root, None, &date, &mut pages)
        .map_err(|e| AppError::Io(format!("cannot render the man pages: {e}")))?;
    Ok(pages)
}

/// The command tree as the pages show it: without clap's `help` subcommands (no page is
/// written for them), and with each option's environment variable in its description.
fn prepare(cmd: clap::Command) -> clap::Command {
    cmd.disable_help_subcommand(true)
        .mut_args(with_environment)
        .mut_subcommands(prepare)
}

/// Adds "[env: NAME]" to the description of an option that has one, as `--help` does
/// (next to "[default: …]"): the variable's name only, never its current value. The option's own environment note is
/// hidden, so that a clap_mangen built with its `env` feature does not repeat it.
fn with_environment(arg: clap::Arg) -> clap::Arg {
    let Some(env) = arg.get_env().map(|e| e.to_string_lossy().into_owned()) else {
        return arg;
    };
    let help = arg
        .get_long_help()
        .or_else(|| arg.get_help())
        .map(|h| h.to_string())
        .unwrap_or_default();
    let note = format!("[env: {env}]");
    let help = if help.is_empty() {
        note
    } else {
        format!("{help} {note}")
    };
    arg.long_help(help).hide_env(true)
}

/// The subcommands that get a page (not hidden ones, nor clap's `help`).
fn subcommands(cmd: &clap::Command) -> impl Iterator<Item = &clap::Command> {
    cmd.get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
}

/// The page name of a built command: `ssoprobe`, `ssoprobe-check`, `ssoprobe-passkey-show`.
fn page_name(cmd: &clap::Command) -> String {
    cmd.get_display_name()
        .unwrap_or_else(|| cmd.get_name())
        .to_string()
}

/// Renders `cmd`'s page and those of its subcommands into `pages`.
fn collect(
    cmd: &clap::Command,
    parent: Option<&str>,
    date: &str,
    pages: &mut Vec<Page>,
) -> std::io::Result<()> {
    let name = page_name(cmd);
    pages.push(Page {
        roff: render(cmd, &name, parent, date)?,
        name: name.clone(),
    });
    for sub in subcommands(cmd) {
        collect(sub, Some(&name), date, pages)?;
    }
    Ok(())
}

/// One page: clap_mangen's sections, then ours.
fn render(
    cmd: &clap::Command,
    name: &str,
    parent: Option<&str>,
    date: &str,
) -> std::io::Result<Vec<u8>> {
    let man = clap_mangen::Man::new(cmd.clone())
        .title(name.to_uppercase())
        .section(SECTION)
        // The date must be set: clap_mangen leaves an empty date out of the .TH line,
        // and the source ("ssoprobe 0.1.0") would then be read as the date.
        .date(date)
        .source(format!("ssoprobe {}", env!("CARGO_PKG_VERSION")))
        .manual("ssoprobe Manual");
    // Every rendered piece starts with roff's apostrophe preamble; the page keeps one.
    let mut preamble = Vec::new();
    Roff::new().to_writer(&mut preamble)?;
    let mut page = Vec::new();
    let mut piece = |render: &dyn Fn(&mut dyn Write) -> std::io::Result<()>| {
        let mut out = Vec::new();
        render(&mut out)?;
        let body = match out.strip_prefix(preamble.as_slice()) {
            Some(body) if !page.is_empty() => body,
            _ => out.as_slice(),
        };
        page.extend_from_slice(body);
        std::io::Result::Ok(())
    };
    piece(&|w| man.render_title(w))?;
    // No hyphenation: option names, variables and URLs are split at a hyphen otherwise
    // (SSO-PROBE_SERVICE, id.exam-ple.com), and copied that way.
    piece(&|w| Roff::new().control("nh", []).to_writer(w))?;
    piece(&|w| man.render_name_section(w))?;
    piece(&|w| synopsis(cmd).to_writer(w))?;
    piece(&|w| man.render_description_section(w))?;
    // Renders nothing when every option is hidden.
    piece(&|w| {
        let mut out = Vec::new();
        man.render_options_section(&mut out)?;
        w.write_all(&one_break_before_possible_values(out))
    })?;
    if subcommands(cmd).next().is_some() {
        piece(&|w| man.render_subcommands_section(w))?;
    }
    // Our sections, in the order of man-pages(7).
    let after = cmd
        .get_after_long_help()
        .or_else(|| cmd.get_after_help())
        .map(|a| a.to_string())
        .unwrap_or_default();
    let paragraphs = after_help(&after);
    let mut roff = Roff::new();
    section(&mut roff, &paragraphs, Part::ExitStatus, "EXIT STATUS");
    environment(&mut roff, cmd);
    section(&mut roff, &paragraphs, Part::Notes, "NOTES");
    section(&mut roff, &paragraphs, Part::Examples, "EXAMPLES");
    see_also(&mut roff, cmd, parent);
    piece(&|w| roff.to_writer(w))?;
    Ok(page)
}

/// SYNOPSIS: the command, then each visible option in clap_mangen's order with its value
/// (`[--timeout DURATION]`, which clap_mangen's own synopsis leaves out) and `...` when
/// it repeats, then the arguments and the subcommand; a required option without
/// brackets.
fn synopsis(cmd: &clap::Command) -> Roff {
    let name = cmd.get_bin_name().unwrap_or_else(|| cmd.get_name());
    let mut line: Vec<Inline> = vec![bold(name)];
    let mut options: Vec<&clap::Arg> = cmd
        .get_arguments()
        .filter(|a| !a.is_hide_set() && !a.is_positional())
        .collect();
    // clap_mangen's order: display order, then the short flag (else the long one).
    options.sort_by_key(|a| {
        let key = match (a.get_short(), a.get_long()) {
            (Some(s), _) => {
                format!(
                    "{}{}",
                    s.to_ascii_lowercase(),
                    u8::from(!s.is_ascii_lowercase())
                )
            }
            (None, Some(l)) => l.to_string(),
            (None, None) => format!("{{{}", a.get_id()),
        };
        (a.get_display_order(), key)
    });
    // Optional options first, then required ones, as clap_mangen has them.
    options.sort_by_key(|a| a.is_required_set());
    for arg in options {
        let flags: Vec<String> = arg
            .get_short()
            .map(|s| format!("-{s}"))
            .into_iter()
            .chain(arg.get_long().map(|l| format!("--{l}")))
            .collect();
        if flags.is_empty() {
            continue;
        }
        line.push(roman(if arg.is_required_set() { " " } else { " [" }));
        for (i, flag) in flags.into_iter().enumerate() {
            if i > 0 {
                line.push(roman("|"));
            }
            line.push(bold(flag));
        }
        if arg.get_action().takes_values() {
            line.push(roman(" "));
            line.push(italic(super::usage::value_name(arg)));
        }
        if !arg.is_required_set() {
            line.push(roman("]"));
        }
        if matches!(
            arg.get_action(),
            clap::ArgAction::Append | clap::ArgAction::Count
        ) {
            line.push(roman("..."));
        }
    }
    for arg in cmd.get_positionals().filter(|a| !a.is_hide_set()) {
        let (open, close) = if arg.is_required_set() {
            (" <", ">")
        } else {
            (" [", "]")
        };
        line.push(roman(open));
        line.push(italic(super::usage::value_name(arg)));
        line.push(roman(close));
    }
    if cmd.has_subcommands() {
        let (open, close) = if cmd.is_subcommand_required_set() {
            (" <", ">")
        } else {
            (" [", "]")
        };
        line.push(roman(open));
        line.push(italic(
            cmd.get_subcommand_value_name()
                .unwrap_or("subcommands")
                .to_lowercase(),
        ));
        line.push(roman(close));
    }
    let mut roff = Roff::new();
    roff.control("SH", ["SYNOPSIS"]);
    roff.text(line);
    roff
}

/// Which section a paragraph of the after-help text belongs in.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    ExitStatus,
    Notes,
    Examples,
}

/// The paragraphs of the after-help text (exit codes, examples, notes), each with the
/// section it goes in. Paragraphs are separated by blank lines; an "Example:" or
/// "Examples:" line labels the paragraph it starts (and is dropped: the section heading
/// says it), a paragraph starting "Exit codes:" goes in EXIT STATUS, any other in NOTES.
fn after_help(text: &str) -> Vec<(Part, Vec<&str>)> {
    let mut paragraphs = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    for line in text.lines().chain(std::iter::once("")) {
        if !line.trim().is_empty() {
            current.push(line.trim_end());
            continue;
        }
        let Some(first) = current.first().map(|l| l.trim()) else {
            continue;
        };
        let part = if first == "Example:" || first == "Examples:" {
            current.remove(0);
            Part::Examples
        } else if first.starts_with("Exit codes:") || first.starts_with("Exit status:") {
            Part::ExitStatus
        } else {
            Part::Notes
        };
        let lines = std::mem::take(&mut current);
        if !lines.is_empty() {
            paragraphs.push((part, lines));
        }
    }
    paragraphs
}

/// The section `heading` with the paragraphs that belong in it, if any.
fn section(roff: &mut Roff, paragraphs: &[(Part, Vec<&str>)], part: Part, heading: &str) {
    for (i, (_, lines)) in paragraphs.iter().filter(|(p, _)| *p == part).enumerate() {
        if i == 0 {
            roff.control("SH", [heading]);
        } else {
            // Not right after .SH: mandoc warns about a paragraph macro there.
            roff.control("PP", []);
        }
        paragraph(roff, lines);
    }
}

/// Lines of one paragraph: flush-left lines are filled text, runs of indented lines are
/// an indented block set line by line (commands to copy).
fn paragraph(roff: &mut Roff, lines: &[&str]) {
    let mut in_block = false;
    for line in lines {
        let indented = line.starts_with(' ') || line.starts_with('\t');
        if indented && !in_block {
            roff.control("RS", ["4"]);
            roff.control("nf", []);
            in_block = true;
        } else if !indented && in_block {
            roff.control("fi", []);
            roff.control("RE", []);
            in_block = false;
        }
        roff.text([roman(line.trim())]);
    }
    if in_block {
        roff.control("fi", []);
        roff.control("RE", []);
    }
}

/// ENVIRONMENT: each variable an option of `cmd` reads, with the option it stands for.
fn environment(roff: &mut Roff, cmd: &clap::Command) {
    let mut heading = false;
    for arg in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
        let Some(env) = arg.get_env() else {
            continue;
        };
        if !heading {
            roff.control("SH", ["ENVIRONMENT"]);
            heading = true;
        }
        roff.control("TP", []);
        roff.text([bold(env.to_string_lossy().into_owned())]);
        match arg.get_long() {
            Some(long) => roff.text([roman("Same as "), bold(format!("--{long}")), roman(".")]),
            None => roff.text([roman(format!("Same as <{}>.", arg.get_id()))]),
        };
    }
}

/// SEE ALSO: the parent command's page and the subcommands' pages — all written by
/// `ssoprobe man --dir`.
fn see_also(roff: &mut Roff, cmd: &clap::Command, parent: Option<&str>) {
    let names: Vec<String> = parent
        .map(str::to_string)
        .into_iter()
        .chain(subcommands(cmd).map(page_name))
        .collect();
    if names.is_empty() {
        return;
    }
    roff.control("SH", ["SEE ALSO"]);
    let last = names.len() - 1;
    for (i, name) in names.into_iter().enumerate() {
        let punctuation = if i < last { ")," } else { ")" };
        roff.text([bold(name), roman(format!("({SECTION}{punctuation}"))]);
    }
}

/// The page date, YYYY-MM-DD: SOURCE_DATE_EPOCH when set (reproducible builds), else
/// today (UTC).
fn date() -> String {
    let unix = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .unwrap_or_else(crate::timefmt::unix_now);
    let (year, month, day) = crate::timefmt::civil_from_days(unix.div_euclid(86_400));
    format!("{year:04}-{month:02}-{day:02}")
}

/// clap_mangen separates an option's help from its "Possible values:" list with a line
/// break, an empty line and another line break (`.br`, blank, `.br`), which mandoc
/// reports as "skipping paragraph macro: br before sp" and "br after sp" (a blank line is
/// a `.sp`). One `.sp` is the space meant. Text never renders as a `.br` line (roff
/// escapes a leading period), so this sequence is clap_mangen's markup only.
fn one_break_before_possible_values(roff: Vec<u8>) -> Vec<u8> {
    const CLAP_MANGEN: &str = "\n.br\n\n.br\n";
    match String::from_utf8(roff) {
        Ok(text) => text.replace(CLAP_MANGEN, "\n.sp\n").into_bytes(),
        Err(e) => e.into_bytes(),
    }
}
