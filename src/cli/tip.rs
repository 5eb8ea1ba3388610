//! Tips added to clap's usage errors, for the mistakes new users make.

use std::ffi::OsString;

use clap::error::{ContextKind, ContextValue, ErrorKind};

/// Adds "the command goes after --" to an unexpected-argument error about a word that is not
/// a flag, showing the command line it was probably meant to be.
pub(super) fn with_separator_tip(mut e: clap::Error, args: &[OsString]) -> clap::Error {
    if e.kind() != ErrorKind::UnknownArgument {
        return e;
    }
    let Some(ContextValue::String(word)) = e.get(ContextKind::InvalidArg) else {
        return e;
    };
    if word.starts_with('-') {
        return e;
    }
    // The words from the unexpected one on (past the program name): the server's command line.
    let command: Vec<String> = args
        .iter()
        .skip(1)
        .skip_while(|a| a.to_str() != Some(word.as_str()))
        .map(|a| shell_word(&a.to_string_lossy()))
        .collect();
    let tip = format!(
        "the MCP server's command goes after --: mcp-http-bridge [OPTIONS] -- {}",
        command.join(" ")
    );
    let mut tips = match e.get(ContextKind::Suggested) {
        Some(ContextValue::StyledStrs(tips)) => tips.clone(),
        _ => Vec::new(),
    };
    tips.push(tip.into());
    e.insert(ContextKind::Suggested, ContextValue::StyledStrs(tips));
    e
}

/// `word` as a shell would need it: single-quoted unless it is plainly safe.
fn shell_word(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;

    #[test]
    fn a_command_without_double_dash_gets_a_tip() {
        let err =
            Cli::try_parse_with_tips(["b", "--port", "0", "npx", "-y", "some server"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UnknownArgument);
        let text = err.to_string();
        assert!(text.contains("unexpected argument 'npx'"), "{text}");
        assert!(
            text.contains("tip: the MCP server's command goes after --: mcp-http-bridge [OPTIONS] -- npx -y 'some server'"),
            "{text}"
        );
        let flag = Cli::try_parse_with_tips(["b", "--bogus", "--", "srv"]).unwrap_err();
        assert!(!flag.to_string().contains("goes after --"), "{flag}");
        assert!(Cli::try_parse_with_tips(["b", "--", "srv"]).is_ok());
    }
}
