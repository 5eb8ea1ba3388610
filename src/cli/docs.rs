//! `mcp-http-bridge completions SHELL` and `mcp-http-bridge man`: shell completions
//! (clap_complete) and a man page (clap_mangen), both made from the `Cli` definitions.

use std::io::Write;

use clap::{CommandFactory, Subcommand};
use clap_complete::Shell;

use super::Cli;

/// What the bridge prints instead of serving.
#[derive(Debug, Clone, Subcommand)]
pub enum Tool {
    /// Print a completion script for SHELL (bash, zsh, fish, elvish or powershell) to stdout.
    Completions {
        /// The shell.
        shell: Shell,
    },
    /// Print the man page (roff) to stdout.
    Man,
}

/// Writes what `tool` asks for to `out`.
///
/// # Errors
/// When `out` cannot be written.
pub fn write(tool: &Tool, out: &mut impl Write) -> std::io::Result<()> {
    let mut command = Cli::command();
    let name = command.get_name().to_owned();
    match tool {
        Tool::Completions { shell } => {
            clap_complete::generate(*shell, &mut command, name, out);
            Ok(())
        }
        Tool::Man => clap_mangen::Man::new(command).render(out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completions_and_man_page_name_the_flags() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let mut out = Vec::new();
            write(&Tool::Completions { shell }, &mut out).unwrap();
            let text = String::from_utf8(out).unwrap();
            for flag in ["metrics-listen", "allow-tool", "config", "log-format"] {
                assert!(text.contains(flag), "{shell:?} lacks {flag}");
            }
        }
        let mut out = Vec::new();
        write(&Tool::Man, &mut out).unwrap();
        let man = String::from_utf8(out).unwrap();
        assert!(
            man.starts_with(".ie") || man.contains(".TH"),
            "{}",
            &man[..80]
        );
        assert!(man.contains("metrics\\-listen") && man.contains("completions"));
    }

    #[test]
    fn the_subcommands_parse_without_a_server_command() {
        let cli = Cli::try_parse_with_tips(["b", "completions", "zsh"]).unwrap();
        assert!(matches!(
            cli.tool,
            Some(Tool::Completions { shell: Shell::Zsh })
        ));
        assert!(Cli::try_parse_with_tips(["b", "man"])
            .unwrap()
            .tool
            .is_some());
        assert!(Cli::try_parse_with_tips(["b", "completions", "tcsh"]).is_err());
        assert!(Cli::try_parse_with_tips(["b", "--port", "1"]).is_err());
    }
}
