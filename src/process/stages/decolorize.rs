//! `decolorize`: removes ANSI escape sequences (colours, cursor moves)
//! from the line, with the pattern Grafana's LogQL `decolorize` uses.
//! It takes no settings.

use std::sync::LazyLock;

use regex::Regex;

use super::super::fields::Fields;
use super::super::yaml::Node;
use super::super::{EachEntry, Entry};

/// Loki's `ansiPattern` (from acarl005/stripansi). Go's `\d` is ASCII
/// only, so it is spelled `[0-9]` here (Rust's `\d` is Unicode).
const ANSI: &str = "[\u{1B}\u{9B}][\\[\\]()#;?]*(?:(?:(?:[a-zA-Z0-9]*(?:;[a-zA-Z0-9]*)*)?\u{7})|(?:(?:[0-9]{1,4}(?:;[0-9]{0,4})*)?[0-9A-PRZcf-ntqry=><~]))";

static ANSI_RE: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(ANSI).ok());

#[derive(Debug, Clone)]
pub struct Decolorize {
    regex: &'static Regex,
}

impl Decolorize {
    pub fn new(config: &Node) -> Result<Decolorize, String> {
        Fields::new(config)?.finish()?;
        let regex = ANSI_RE
            .as_ref()
            .ok_or("the decolorize stage's pattern does not compile")?;
        Ok(Decolorize { regex })
    }
}

impl EachEntry for Decolorize {
    const NAME: &'static str = "decolorize";

    fn apply(&self, entry: &mut Entry) {
        if let std::borrow::Cow::Owned(line) = self.regex.replace_all(&entry.line, "") {
            entry.line = line;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::testing::refused;
    use super::super::run_once as run;

    #[test]
    fn colours_go_away() {
        let out = run(
            "[{decolorize: }]",
            &[
                "\u{1b}[0;32mINFO\u{1b}[0m started",
                "\u{1b}]0;title\u{7}plain \u{1b}[1;2;3m",
                "no colour",
                "\u{1b}[٣m arabic digit is not a digit here",
            ],
        );
        let lines: Vec<&str> = out.iter().map(|e| e.line.as_str()).collect();
        assert_eq!(
            lines,
            [
                "INFO started",
                "plain ",
                "no colour",
                "\u{1b}[٣m arabic digit is not a digit here"
            ]
        );
        assert!(refused("[{decolorize: {x: 1}}]").contains("unknown setting"));
    }
}
