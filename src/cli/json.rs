//! One-line JSON objects for `--json` output, written by hand (RFC 8259
//! string escaping) so the binary needs no JSON library.

use std::fmt::Write;

/// A JSON object being built field by field; starts with `"event"`.
pub struct JsonLine(String);

impl JsonLine {
    /// `{"event":NAME`.
    pub fn event(name: &str) -> Self {
        let mut line = Self(String::from("{"));
        line.push_key("event");
        push_string(&mut line.0, name);
        line
    }

    /// Adds a string field.
    pub fn str(mut self, key: &str, value: &str) -> Self {
        self.0.push(',');
        self.push_key(key);
        push_string(&mut self.0, value);
        self
    }

    /// Adds a number field.
    pub fn number(mut self, key: &str, value: u64) -> Self {
        self.0.push(',');
        self.push_key(key);
        self.0.push_str(&value.to_string());
        self
    }

    /// Adds a field whose value is its `Display` text, as a JSON string.
    pub fn display(self, key: &str, value: impl std::fmt::Display) -> Self {
        self.str(key, &value.to_string())
    }

    /// The finished object, without a trailing newline.
    pub fn finish(mut self) -> String {
        self.0.push('}');
        self.0
    }

    fn push_key(&mut self, key: &str) {
        push_string(&mut self.0, key);
        self.0.push(':');
    }
}

fn push_string(out: &mut String, value: &str) {
    out.push('"');
    let mut rest = value;
    // Runs of characters that need no escape are copied at once.
    while let Some((at, c)) = rest.char_indices().find(|&(_, c)| needs_escape(c)) {
        out.push_str(&rest[..at]);
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            // Writing to a String cannot fail.
            c => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
        }
        rest = &rest[at + c.len_utf8()..];
    }
    out.push_str(rest);
    out.push('"');
}

/// Characters RFC 8259 requires escaped in a string.
fn needs_escape(c: char) -> bool {
    c == '"' || c == '\\' || u32::from(c) < 0x20
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_control_characters_and_quotes() {
        let line = JsonLine::event("error")
            .str("what", "a \"b\"\\\n\u{1}é\r\t\u{1f}z")
            .finish();
        assert_eq!(
            line,
            r#"{"event":"error","what":"a \"b\"\\\n\u0001é\r\t\u001fz"}"#
        );
    }

    #[test]
    fn plain_text_and_escapes_at_the_edges() {
        let line = |text: &str| JsonLine::event("m").str("t", text).finish();
        assert_eq!(line("plain"), r#"{"event":"m","t":"plain"}"#);
        assert_eq!(line("\"x\""), r#"{"event":"m","t":"\"x\""}"#);
        assert_eq!(line(""), r#"{"event":"m","t":""}"#);
    }
}
