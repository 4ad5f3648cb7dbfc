//! Tokens of the text form. Whitespace and newlines separate tokens and mean nothing
//! else; `;` starts a comment that runs to the end of the line. A comment that is
//! exactly one string literal (`; "/conv1/Conv"`) right after a token on the same line
//! is that line's *name*: the lexer attaches it to the token, and the parser reads it
//! where a name may stand (after a node's type) and ignores it anywhere else.

use super::ParseError;

/// What a token is.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Tok {
    /// `graph`, `f32`, `x_zp`: a letter or `_`, then letters, digits, `_`, `.`.
    Ident(String),
    /// `12`, `-0.5`, `1e-7`, `-inf`: a digit, or a sign then a digit, letter or `.`;
    /// checked when the parser asks for a particular kind of number.
    Number(String),
    /// A string literal, unescaped.
    Str(String),
    /// `%12`, `%r3`: a value or a register.
    Value(String),
    /// `@4.tables`: a reference to a data entry.
    Ref(String),
    /// Punctuation: `= , : ? ! [ ] { } ( ) < <= > >= == !=`.
    Punct(&'static str),
    /// The end of the text.
    Eof,
}

/// A token and where it starts.
#[derive(Clone, Debug)]
pub(crate) struct Token {
    pub tok: Tok,
    pub line: u32,
    pub col: u32,
    /// The name comment that follows it on its line.
    pub name: Option<String>,
}

const PUNCT: [&str; 17] = ["<=", ">=", "==", "!=", "=", ",", ":", "?", "!", "[", "]", "{", "}", "(", ")", "<", ">"];

struct Lexer<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    line: u32,
    col: u32,
}

impl Lexer<'_> {
    fn peek(&mut self) -> Option<char> {
        self.chars.peek().copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.chars.next()?;
        if c == '\n' {
            self.line = self.line.saturating_add(1);
            self.col = 1;
        } else {
            self.col = self.col.saturating_add(1);
        }
        Some(c)
    }

    fn err(&self, line: u32, col: u32, message: impl Into<String>) -> ParseError {
        ParseError { line, col, message: message.into() }
    }

    fn take_while(&mut self, s: &mut String, keep: impl Fn(char) -> bool) {
        while let Some(c) = self.peek().filter(|&c| keep(c)) {
            s.push(c);
            self.bump();
        }
    }

    /// The rest of a string literal whose opening quote is consumed. Strings end on
    /// their line: the printer escapes newlines.
    fn string(&mut self, line: u32, col: u32) -> Result<String, ParseError> {
        let mut s = String::new();
        loop {
            let (l, c) = (self.line, self.col);
            let Some(ch) = self.peek().filter(|&ch| ch != '\n') else {
                return Err(self.err(line, col, "unterminated string"));
            };
            self.bump();
            match ch {
                '"' => return Ok(s),
                '\\' if matches!(self.peek(), None | Some('\n')) => {
                    return Err(self.err(line, col, "unterminated string"));
                }
                '\\' => match self.bump() {
                    Some('"') => s.push('"'),
                    Some('\\') => s.push('\\'),
                    Some('n') => s.push('\n'),
                    Some('r') => s.push('\r'),
                    Some('t') => s.push('\t'),
                    Some('0') => s.push('\0'),
                    Some('u') => s.push(self.unicode_escape(l, c)?),
                    _ => return Err(self.err(l, c, "unknown escape (use \\\" \\\\ \\n \\r \\t \\0 or \\u{...})")),
                },
                ch => s.push(ch),
            }
        }
    }

    fn unicode_escape(&mut self, line: u32, col: u32) -> Result<char, ParseError> {
        let bad = |lx: &Self| lx.err(line, col, "bad \\u{...} escape (1 to 6 hex digits of a Unicode scalar value)");
        if self.bump() != Some('{') {
            return Err(bad(self));
        }
        let mut hex = String::new();
        self.take_while(&mut hex, |c| c.is_ascii_hexdigit());
        if self.bump() != Some('}') || hex.is_empty() || hex.len() > 6 {
            return Err(bad(self));
        }
        u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32).ok_or_else(|| bad(self))
    }

    /// After a `;`: a name comment's string, or `None` for a plain comment. Either way
    /// the rest of the line is consumed.
    fn comment(&mut self) -> Option<String> {
        while matches!(self.peek(), Some(' ' | '\t')) {
            self.bump();
        }
        let name = if self.peek() == Some('"') {
            let (line, col) = (self.line, self.col);
            self.bump();
            self.string(line, col).ok().filter(|_| {
                while matches!(self.peek(), Some(' ' | '\t' | '\r')) {
                    self.bump();
                }
                matches!(self.peek(), None | Some('\n' | ';'))
            })
        } else {
            None
        };
        while self.peek().is_some_and(|c| c != '\n') {
            self.bump();
        }
        name
    }
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '.'
}

/// Splits `text` into tokens, ending with [`Tok::Eof`].
pub(crate) fn lex(text: &str) -> Result<Vec<Token>, ParseError> {
    let mut lx = Lexer { chars: text.chars().peekable(), line: 1, col: 1 };
    let mut toks: Vec<Token> = Vec::new();
    while let Some(c) = lx.peek() {
        let (line, col) = (lx.line, lx.col);
        let tok = match c {
            ' ' | '\t' | '\r' | '\n' => {
                lx.bump();
                continue;
            }
            ';' => {
                lx.bump();
                let name = lx.comment();
                if let Some(prev) = toks.last_mut().filter(|t| t.line == line) {
                    prev.name = name;
                }
                continue;
            }
            '"' => {
                lx.bump();
                Tok::Str(lx.string(line, col)?)
            }
            '%' | '@' => {
                lx.bump();
                let mut s = String::new();
                lx.take_while(
                    &mut s,
                    if c == '%' { |c: char| c.is_ascii_alphanumeric() || c == '_' } else { is_name_char },
                );
                if s.is_empty() {
                    return Err(lx.err(line, col, format!("`{c}` must be followed by a name")));
                }
                if c == '%' {
                    Tok::Value(s)
                } else {
                    Tok::Ref(s)
                }
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let mut s = String::new();
                lx.take_while(&mut s, is_name_char);
                Tok::Ident(s)
            }
            c if c.is_ascii_digit() || c == '+' || c == '-' => {
                let mut s = String::new();
                s.push(c);
                lx.bump();
                if !c.is_ascii_digit() && !lx.peek().is_some_and(is_name_char) {
                    return Err(lx.err(line, col, format!("`{c}` must start a number")));
                }
                // A sign may follow an exponent's `e` in a number that starts with a digit.
                let digits = c.is_ascii_digit() || lx.peek().is_some_and(|d| d.is_ascii_digit() || d == '.');
                while let Some(d) = lx.peek() {
                    let exp_sign = digits && (d == '+' || d == '-') && s.ends_with(['e', 'E']);
                    if !(is_name_char(d) || exp_sign) {
                        break;
                    }
                    s.push(d);
                    lx.bump();
                }
                Tok::Number(s)
            }
            _ => {
                lx.bump();
                let two: Option<&'static str> = lx.peek().and_then(|d| {
                    let pair: String = [c, d].iter().collect();
                    PUNCT.iter().copied().find(|p| p.len() == 2 && *p == pair)
                });
                match two {
                    Some(p) => {
                        lx.bump();
                        Tok::Punct(p)
                    }
                    None => match PUNCT.iter().copied().find(|p| p.len() == 1 && p.starts_with(c)) {
                        Some(p) => Tok::Punct(p),
                        None => return Err(lx.err(line, col, format!("unexpected character {c:?}"))),
                    },
                }
            }
        };
        toks.push(Token { tok, line, col, name: None });
    }
    toks.push(Token { tok: Tok::Eof, line: lx.line, col: lx.col, name: None });
    Ok(toks)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<Tok> {
        lex(text).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn numbers_signs_and_punctuation() {
        use Tok::*;
        assert_eq!(
            kinds("x[3] <= -1.5e-7 ? 1 : 2 != -inf >"),
            vec![
                Ident("x".into()),
                Punct("["),
                Number("3".into()),
                Punct("]"),
                Punct("<="),
                Number("-1.5e-7".into()),
                Punct("?"),
                Number("1".into()),
                Punct(":"),
                Number("2".into()),
                Punct("!="),
                Number("-inf".into()),
                Punct(">"),
                Eof
            ]
        );
    }

    #[test]
    fn a_string_comment_after_a_token_is_its_name() {
        let t = lex("%1 = relu %0 : f32[1]  ; \"a \\\"b\\\" \\u{e9}\"\n; \"not a name\"\n; check: x\nreturn").unwrap();
        assert_eq!(t[8].tok, Tok::Punct("]"));
        assert_eq!(t[8].name.as_deref(), Some("a \"b\" é"));
        assert!(t.iter().filter(|t| t.name.is_some()).count() == 1);
        assert_eq!((t[9].line, t[9].col), (4, 1));
    }

    #[test]
    fn errors_say_where() {
        let e = lex("graph \"x\" {\n  %1 = $").unwrap_err();
        assert_eq!((e.line, e.col), (2, 8));
        let e = lex("\"abc\ndef\"").unwrap_err();
        assert_eq!((e.line, e.col, e.message.as_str()), (1, 1, "unterminated string"));
        assert!(lex("\"\\u{110000}\"").is_err());
        assert!(lex("\"\\q\"").is_err());
        assert!(lex("% x").is_err());
    }
}
