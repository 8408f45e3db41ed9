//! Completions from the command's own definition: shell scripts (`kpulse completions SHELL`,
//! clap_complete), a man page (`kpulse man`, clap_mangen), and kubectl's plugin completion
//! protocol (`kubectl-pulse __complete ARGS… WORD`), which kubectl ≥ 1.26 runs through a
//! `kubectl_complete-pulse` executable on PATH to complete `kubectl pulse …`.

use clap::Command;

use crate::cli::CompletionShell;

/// Cobra's directives, the last line of a `__complete` answer.
const DIRECTIVE_DEFAULT: u32 = 0;
const DIRECTIVE_NO_FILE_COMP: u32 = 4;

/// What kubectl_complete-pulse holds: it hands kubectl's words to the plugin.
pub const KUBECTL_COMPLETE_SCRIPT: &str =
    "#!/bin/sh\n# kubectl ≥ 1.26 runs this to complete `kubectl pulse …`.\nexec kubectl-pulse __complete \"$@\"\n";

/// Prints `shell`'s completion script for `command` (as invoked: kpulse or kubectl-pulse).
pub fn print_script(shell: CompletionShell, mut command: Command) -> i32 {
    use clap_complete::Shell;
    let shell = match shell {
        CompletionShell::Kubectl => {
            print!("{KUBECTL_COMPLETE_SCRIPT}");
            return 0;
        }
        CompletionShell::Bash => Shell::Bash,
        CompletionShell::Zsh => Shell::Zsh,
        CompletionShell::Fish => Shell::Fish,
        CompletionShell::Powershell => Shell::PowerShell,
        CompletionShell::Elvish => Shell::Elvish,
    };
    let name = command.get_name().to_string();
    clap_complete::generate(shell, &mut command, name, &mut std::io::stdout());
    0
}

/// Prints the man page (roff) of `command`.
pub fn print_man_page(command: Command) -> i32 {
    match clap_mangen::Man::new(command).render(&mut std::io::stdout()) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("kpulse: writing the man page: {e}");
            1
        }
    }
}

/// The answer to `__complete ARGS… WORD`: one candidate a line (`candidate\tdescription`), then
/// `:DIRECTIVE`. `words` are the words typed after the plugin's name, the last one the word
/// being completed (empty when a new word starts).
pub fn complete(mut root: Command, words: &[String]) -> String {
    // Built, every subcommand holds the global flags too, and each flag knows if it takes a value.
    root.build();
    let (typed, current) = match words.split_last() {
        Some((current, typed)) => (typed, current.as_str()),
        None => (&[][..], ""),
    };
    // Walk the typed words: into a subcommand, past a flag's value.
    let mut command = &root;
    let mut expects_value: Option<&clap::Arg> = None;
    for word in typed {
        if expects_value.take().is_some() {
            continue;
        }
        if let Some(flag) = word.strip_prefix("--") {
            if !flag.contains('=') {
                expects_value = long_arg(command, flag).filter(|a| takes_value(a));
            }
        } else if let Some(short) = word.strip_prefix('-').and_then(|s| s.chars().next()) {
            expects_value = short_arg(command, short).filter(|a| takes_value(a));
        } else if let Some(sub) = command.find_subcommand(word) {
            command = sub;
        }
    }
    let mut out = String::new();
    let directive = if let Some(arg) = expects_value {
        value_candidates(arg, current, &mut out)
    } else if let Some((flag, value)) = current.strip_prefix("--").and_then(|f| f.split_once('=')) {
        match long_arg(command, flag) {
            Some(arg) => value_candidates(arg, value, &mut out),
            None => DIRECTIVE_NO_FILE_COMP,
        }
    } else if current.starts_with('-') {
        for arg in flags(command) {
            if let Some(long) = arg.get_long().map(|l| format!("--{l}")).filter(|l| l.starts_with(current)) {
                push(&mut out, &long, arg.get_help());
            }
        }
        DIRECTIVE_NO_FILE_COMP
    } else {
        for sub in command.get_subcommands().filter(|s| !s.is_hide_set() && s.get_name().starts_with(current)) {
            push(&mut out, sub.get_name(), sub.get_about());
        }
        DIRECTIVE_NO_FILE_COMP
    };
    out.push_str(&format!(":{directive}\n"));
    out
}

/// A flag's values: its possible values when it has a list, else the shell's files for a path
/// (FILE, DIR) and nothing for free text.
fn value_candidates(arg: &clap::Arg, current: &str, out: &mut String) -> u32 {
    let values = arg.get_possible_values();
    if !values.is_empty() {
        for v in values.iter().filter(|v| !v.is_hide_set() && v.get_name().starts_with(current)) {
            push(out, v.get_name(), v.get_help());
        }
        return DIRECTIVE_NO_FILE_COMP;
    }
    let names_a_path = arg.get_value_names().is_some_and(|n| n.iter().any(|n| matches!(n.as_str(), "FILE" | "DIR")));
    if names_a_path { DIRECTIVE_DEFAULT } else { DIRECTIVE_NO_FILE_COMP }
}

fn push(out: &mut String, candidate: &str, help: Option<&clap::builder::StyledStr>) {
    out.push_str(candidate);
    if let Some(help) = help {
        // A description column, not a paragraph: the first sentence, at most 80 characters.
        let help = help.to_string();
        let sentence = help.lines().next().unwrap_or_default().split(". ").next().unwrap_or_default();
        out.push('\t');
        if sentence.chars().count() > 80 {
            let cut: String = sentence.chars().take(79).collect();
            out.push_str(cut.rsplit_once(' ').map_or(cut.as_str(), |(head, _)| head));
            out.push('…');
        } else {
            out.push_str(sentence);
        }
    }
    out.push('\n');
}

/// The flags that apply in a built `command`: its own and the global ones.
fn flags(command: &Command) -> impl Iterator<Item = &clap::Arg> {
    command.get_arguments().filter(|a| !a.is_hide_set() && !a.is_positional())
}

fn long_arg<'a>(command: &'a Command, long: &str) -> Option<&'a clap::Arg> {
    flags(command).find(|a| a.get_long() == Some(long))
}

fn short_arg(command: &Command, short: char) -> Option<&clap::Arg> {
    flags(command).find(|a| a.get_short() == Some(short))
}

fn takes_value(arg: &clap::Arg) -> bool {
    arg.get_num_args().is_some_and(|n| n.takes_values())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn answer(words: &[&str]) -> Vec<String> {
        let words: Vec<String> = words.iter().map(|w| w.to_string()).collect();
        complete(crate::cli::Cli::command(), &words)
            .lines()
            .map(|l| l.split('\t').next().unwrap().to_string())
            .collect()
    }

    #[test]
    fn subcommands_flags_and_values_complete_as_kubectl_asks() {
        assert_eq!(answer(&["sn"]), ["snapshot", ":4"]);
        assert_eq!(answer(&["--prometheus-h"]), ["--prometheus-header", ":4"]);
        // A subcommand's own flags beside the global ones.
        let snapshot_flags = answer(&["snapshot", "--f"]);
        assert_eq!(snapshot_flags, ["--format", "--fail-on", ":4"]);
        assert_eq!(answer(&["-A", "--usage", "c"]), ["cadvisor", ":4"]);
        assert_eq!(answer(&["--usage=me"]), ["metrics-api", ":4"]);
        // A path: the shell's own file completion.
        assert_eq!(answer(&["--kubeconfig", ""]), [":0"]);
        // Free text: nothing to offer, and no files either.
        assert_eq!(answer(&["-n", ""]), [":4"]);
        assert_eq!(answer(&[]), answer(&[""]));
    }
}
