//! Components named by the user for files no package database owns: a
//! component-assignment file of path patterns and component names.
//!
//! One rule a line, `PATTERN COMPONENT`, separated by white space; blank
//! lines and lines starting with `#` are skipped. A pattern is a path from
//! the root (a leading `/` is optional) in which `*` matches any run of
//! characters but `/`, `?` one character but `/`, `**/` no directory or
//! any run of them, and `**` any run of characters, `/` included. A pattern matches a path, and everything below
//! a directory it matches (`opt/app` claims `opt/app/bin/x`). The first rule
//! that matches wins.

use std::path::Path;
use std::sync::Arc;

use crate::error::{Error, Result};

/// The rules of a component-assignment file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Assignments {
    rules: Vec<(Pattern, Arc<str>)>,
}

/// A compiled path pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Pattern {
    tokens: Vec<Token>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Byte(u8),
    /// `?`
    One,
    /// `*`
    Star,
    /// `**`
    Any,
    /// `**/`: no directory, or any run of them.
    AnyDirs,
}

impl Assignments {
    /// Reads the rules of `file`.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when it cannot be read; [`Error::PackageDb`] naming the
    /// line of a rule that is not `PATTERN COMPONENT`.
    pub fn read(file: &Path) -> Result<Self> {
        let text = std::fs::read(file).map_err(|e| Error::io(file, e))?;
        Self::parse(file, &text)
    }

    /// Parses the rules in `text`, read from `file` (named in errors).
    pub fn parse(file: &Path, text: &[u8]) -> Result<Self> {
        let bad = |line: usize, message: &str| Error::PackageDb {
            path: file.to_path_buf(),
            line,
            message: message.to_string(),
        };
        let text = std::str::from_utf8(text).map_err(|_| bad(0, "not UTF-8 text"))?;
        let mut rules = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut words = line.split_whitespace();
            let (Some(pattern), Some(name), None) = (words.next(), words.next(), words.next())
            else {
                return Err(bad(i + 1, "a rule is PATTERN COMPONENT"));
            };
            if name.chars().any(char::is_control) {
                return Err(bad(i + 1, "a component name holds no control characters"));
            }
            let pattern = Pattern::compile(pattern);
            if pattern.tokens.is_empty() {
                return Err(bad(
                    i + 1,
                    "the pattern names the root: use a path below it",
                ));
            }
            rules.push((pattern, Arc::from(name)));
        }
        Ok(Assignments { rules })
    }

    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The component the first matching rule names for `path` (relative to
    /// the root).
    pub fn component_of(&self, path: &Path) -> Option<&str> {
        use std::os::unix::ffi::OsStrExt;
        let path = path
            .strip_prefix("/")
            .unwrap_or(path)
            .as_os_str()
            .as_bytes();
        self.rules
            .iter()
            .find(|(p, _)| p.matches(path))
            .map(|(_, name)| &**name)
    }
}

impl Pattern {
    fn compile(text: &str) -> Pattern {
        let trimmed = text.trim_start_matches('/').trim_end_matches('/');
        let b = trimmed.as_bytes();
        let mut tokens = Vec::new();
        let mut i = 0;
        while i < b.len() {
            tokens.push(match b[i] {
                b'*' if b.get(i + 1) == Some(&b'*') && b.get(i + 2) == Some(&b'/') => {
                    i += 2;
                    Token::AnyDirs
                }
                b'*' if b.get(i + 1) == Some(&b'*') => {
                    i += 1;
                    Token::Any
                }
                b'*' => Token::Star,
                b'?' => Token::One,
                c => Token::Byte(c),
            });
            i += 1;
        }
        Pattern { tokens }
    }

    /// Whether the pattern matches `path`, or a directory above it.
    fn matches(&self, path: &[u8]) -> bool {
        glob(&self.tokens, path)
            || path
                .iter()
                .enumerate()
                .filter(|&(_, &c)| c == b'/')
                .any(|(i, _)| glob(&self.tokens, &path[..i]))
    }
}

/// Whether `tokens` match all of `s`.
fn glob(tokens: &[Token], s: &[u8]) -> bool {
    // Positions in `s` the tokens so far can end at.
    let mut at = vec![false; s.len() + 1];
    at[0] = true;
    for t in tokens {
        let mut next = vec![false; s.len() + 1];
        for i in 0..=s.len() {
            if !at[i] {
                continue;
            }
            match t {
                Token::Byte(c) => {
                    if s.get(i) == Some(c) {
                        next[i + 1] = true;
                    }
                }
                Token::One => {
                    if s.get(i).is_some_and(|&c| c != b'/') {
                        next[i + 1] = true;
                    }
                }
                Token::Star => {
                    next[i] = true;
                    let mut j = i;
                    while j < s.len() && s[j] != b'/' {
                        j += 1;
                        next[j] = true;
                    }
                }
                Token::Any => {
                    for n in &mut next[i..] {
                        *n = true;
                    }
                }
                Token::AnyDirs => {
                    next[i] = true;
                    for j in i + 1..=s.len() {
                        if s[j - 1] == b'/' {
                            next[j] = true;
                        }
                    }
                }
            }
        }
        at = next;
    }
    at[s.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(text: &str) -> Assignments {
        Assignments::parse(Path::new("rules"), text.as_bytes()).unwrap()
    }

    #[test]
    fn patterns_match_paths_and_what_is_below() {
        let r = rules(
            "# generated\n\n/opt/app/**/*.so  app-libs\nopt/app app\nusr/local/bin/tool? tools\n*.conf config\n",
        );
        let of = |p: &str| r.component_of(Path::new(p));
        assert_eq!(of("opt/app/lib/x/libz.so"), Some("app-libs"));
        assert_eq!(
            of("opt/app/libz.so"),
            Some("app-libs"),
            "** matches no directory too"
        );
        assert_eq!(of("opt/app/bin/run"), Some("app"));
        assert_eq!(of("opt/app"), Some("app"));
        assert_eq!(of("opt/application"), None);
        assert_eq!(of("usr/local/bin/tool1"), Some("tools"));
        assert_eq!(of("usr/local/bin/tool"), None);
        assert_eq!(of("x.conf"), Some("config"));
        assert_eq!(of("etc/x.conf"), None, "* stops at /");
        assert_eq!(of("/opt/app/bin/run"), Some("app"));
    }

    #[test]
    fn bad_rules_name_their_line() {
        for (text, line) in [
            ("a b c\n", 1),
            ("ok x\nlonely\n", 2),
            ("/ root\n", 1),
            ("a b\u{7}\n", 1),
        ] {
            match Assignments::parse(Path::new("f"), text.as_bytes()) {
                Err(Error::PackageDb { line: l, .. }) => assert_eq!(l, line, "{text:?}"),
                other => panic!("{text:?}: {other:?}"),
            }
        }
    }
}
