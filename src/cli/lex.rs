//! The command line as options and values, the way `lexopt` reads it: a
//! 70-line tokenizer of our own instead of a dependency (`BENCHMARKS.md`,
//! "Command line").
//!
//! `--name=value` gives its value inline; `--` ends the options (what
//! follows is a value, even `-q`); a lone `-` is a value; any other word
//! starting with `-` is an option, so `join -q` is an unknown option, not
//! a meeting called "-q". `-v`/`--verbose` count anywhere before `--`.

use std::collections::VecDeque;

use super::args::UsageError;

/// One word of the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Arg {
    /// `--name` or `-x`, as written (without an inline value).
    Option(String),
    /// A positional word.
    Value(String),
}

/// The words after the program name.
#[derive(Debug)]
pub struct Args {
    words: VecDeque<String>,
    /// The value given as `--name=value` to the last option, until taken.
    inline: Option<(String, String)>,
    /// `--` was seen: every word is a value.
    positional_only: bool,
    /// `-v` or `--verbose` was seen.
    pub verbose: bool,
}

impl Args {
    /// The words to read.
    pub fn new(words: impl IntoIterator<Item = String>) -> Self {
        Self {
            words: words.into_iter().collect(),
            inline: None,
            positional_only: false,
            verbose: false,
        }
    }

    /// The next option or value; an error if the last option was given
    /// an inline value it does not take.
    pub fn next(&mut self) -> Result<Option<Arg>, UsageError> {
        if let Some((option, value)) = self.inline.take() {
            return Err(UsageError::UnexpectedValue { option, value });
        }
        while let Some(word) = self.words.pop_front() {
            if self.positional_only || word == "-" || !word.starts_with('-') {
                return Ok(Some(Arg::Value(word)));
            }
            if word == "--" {
                self.positional_only = true;
                continue;
            }
            if word == "-v" || word == "--verbose" {
                self.verbose = true;
                continue;
            }
            if let Some((name, value)) = word.split_once('=')
                && name.starts_with("--")
            {
                self.inline = Some((name.to_owned(), value.to_owned()));
                return Ok(Some(Arg::Option(name.to_owned())));
            }
            return Ok(Some(Arg::Option(word)));
        }
        Ok(None)
    }

    /// The value of `option`, just returned by [`next`](Self::next): its
    /// inline value, or the next word whatever it looks like.
    pub fn value(&mut self, option: &'static str) -> Result<String, UsageError> {
        if let Some((_, value)) = self.inline.take() {
            return Ok(value);
        }
        self.words
            .pop_front()
            .ok_or(UsageError::MissingValue(option))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Args {
        Args::new(line.split_whitespace().map(String::from))
    }

    #[test]
    fn options_values_inline_values_and_the_double_dash() {
        let mut args = words("join -q --bind=1.2.3.4:5 -v -- -code --json");
        assert_eq!(args.next(), Ok(Some(Arg::Value("join".into()))));
        assert_eq!(args.next(), Ok(Some(Arg::Option("-q".into()))));
        assert_eq!(args.next(), Ok(Some(Arg::Option("--bind".into()))));
        assert_eq!(args.value("--bind"), Ok("1.2.3.4:5".into()));
        assert_eq!(args.next(), Ok(Some(Arg::Value("-code".into()))));
        assert_eq!(args.next(), Ok(Some(Arg::Value("--json".into()))));
        assert_eq!(args.next(), Ok(None));
        assert!(args.verbose);
    }

    #[test]
    fn an_inline_value_on_a_flag_is_an_error_and_a_missing_value_too() {
        let mut args = words("--json=yes");
        assert_eq!(args.next(), Ok(Some(Arg::Option("--json".into()))));
        assert_eq!(
            args.next(),
            Err(UsageError::UnexpectedValue {
                option: "--json".into(),
                value: "yes".into()
            })
        );
        let mut args = words("--bind");
        args.next().unwrap();
        assert_eq!(
            args.value("--bind"),
            Err(UsageError::MissingValue("--bind"))
        );
    }
}
