//! The parsing half of the text form: a cursor over the tokens, with the readers of
//! the shapes of values every op shares (numbers, lists, attribute blocks, records).
//!
//! Data entries (`@name = [...]` after the main block) are found before parsing
//! starts, so a list can be read from its entry when the text refers to it.

use super::lexer::{lex, Tok, Token};
use super::ParseError;
use crate::entity::ValueId;
use std::collections::HashMap;
use std::str::FromStr;

/// A data entry: where its list starts, and whether the text refers to it.
struct Entry {
    /// Index of the `@name` token.
    at: usize,
    /// Index of the list's `[`.
    start: usize,
    /// Index just past the list's `]`.
    end: usize,
    used: bool,
}

/// Where the cursor is in an attribute block.
#[derive(Clone, Copy)]
enum Attrs {
    /// No block: every attribute takes its default.
    Absent,
    /// After `{`.
    First,
    /// After an attribute.
    Rest,
}

/// Reads the text form. Ops read their attributes through it (each op file's
/// `parse_attrs`); every failure is a [`ParseError`] at the offending token.
pub struct Parser {
    toks: Vec<Token>,
    pos: usize,
    entries: HashMap<String, Entry>,
    in_entry: bool,
    /// List items read through references so far, and the most allowed: each
    /// reference re-reads its entry, so a short text could otherwise expand without bound.
    expanded: usize,
    budget: usize,
    attrs: Attrs,
    node_type: Option<crate::TensorType>,
}

type Result<T> = std::result::Result<T, ParseError>;

fn describe(tok: &Tok) -> String {
    match tok {
        Tok::Ident(s) | Tok::Number(s) => format!("`{s}`"),
        Tok::Str(_) => "a string".into(),
        Tok::Value(s) => format!("`%{s}`"),
        Tok::Ref(s) => format!("`@{s}`"),
        Tok::Punct(p) => format!("`{p}`"),
        Tok::Eof => "the end of the text".into(),
    }
}

impl Parser {
    /// Lexes `text` and finds its data entries.
    pub(crate) fn new(text: &str) -> Result<Parser> {
        let toks = lex(text)?;
        let budget = 16 * toks.len() + (1 << 20);
        let mut p = Parser {
            toks,
            pos: 0,
            entries: HashMap::new(),
            in_entry: false,
            expanded: 0,
            budget,
            attrs: Attrs::Absent,
            node_type: None,
        };
        p.find_entries()?;
        Ok(p)
    }

    /// Data entries start their line (`@name = [` in column 1), which no other text
    /// does, so a malformed list elsewhere cannot hide them.
    fn find_entries(&mut self) -> Result<()> {
        let mut i = 0;
        while i < self.toks.len() {
            let entry = match (&self.toks[i].tok, &self.tok_at(i + 1).tok, &self.tok_at(i + 2).tok) {
                (Tok::Ref(name), Tok::Punct("="), Tok::Punct("[")) if self.toks[i].col == 1 => Some(name.clone()),
                _ => None,
            };
            let Some(name) = entry else {
                i += 1;
                continue;
            };
            let start = i + 2;
            let mut d = 0i64;
            let mut end = start;
            while end < self.toks.len() {
                match self.toks[end].tok {
                    Tok::Punct("[") => d += 1,
                    Tok::Punct("]") => d -= 1,
                    Tok::Eof => break,
                    _ => {}
                }
                end += 1;
                if d == 0 {
                    break;
                }
            }
            if self.entries.contains_key(&name) {
                return Err(self.error_at(i, format!("data entry `@{name}` is defined twice")));
            }
            self.entries.insert(name, Entry { at: i, start, end, used: false });
            i = end;
        }
        Ok(())
    }

    /// Reads the data entries after the main block up to the end of the text, and
    /// checks the text refers to each.
    pub(crate) fn finish(&mut self) -> Result<()> {
        while self.peek() != &Tok::Eof {
            let end = match self.peek() {
                Tok::Ref(name) => self.entries.get(name).filter(|e| e.at == self.pos).map(|e| e.end),
                _ => None,
            };
            let Some(end) = end else {
                return Err(self.error(format!(
                    "expected a data entry `@name = [...]` or the end of the text, found {}",
                    describe(self.peek())
                )));
            };
            self.pos = end;
        }
        match self.entries.iter().filter(|(_, e)| !e.used).min_by_key(|(_, e)| e.at) {
            Some((name, e)) => Err(self.error_at(e.at, format!("data entry `@{name}` is not used"))),
            None => Ok(()),
        }
    }

    fn tok_at(&self, i: usize) -> &Token {
        &self.toks[i.min(self.toks.len() - 1)]
    }

    /// The next token.
    pub(crate) fn peek(&self) -> &Tok {
        &self.tok_at(self.pos).tok
    }

    fn bump(&mut self) -> Tok {
        let t = self.tok_at(self.pos).tok.clone();
        if self.pos < self.toks.len() - 1 {
            self.pos += 1;
        }
        t
    }

    /// An error at the next token.
    pub fn error(&self, message: impl Into<String>) -> ParseError {
        self.error_at(self.pos, message)
    }

    fn error_at(&self, i: usize, message: impl Into<String>) -> ParseError {
        let t = self.tok_at(i);
        ParseError { line: t.line, col: t.col, message: message.into() }
    }

    /// An error "expected `what`, found ..." at the next token.
    pub fn expected(&self, what: &str) -> ParseError {
        self.error(format!("expected {what}, found {}", describe(self.peek())))
    }

    /// Whether punctuation `p` comes next.
    pub fn at(&self, p: &str) -> bool {
        matches!(self.peek(), Tok::Punct(q) if *q == p)
    }

    /// Consumes punctuation `p` if it comes next.
    pub fn eat(&mut self, p: &str) -> bool {
        let hit = self.at(p);
        if hit {
            self.bump();
        }
        hit
    }

    /// Consumes punctuation `p`, or fails.
    pub fn expect(&mut self, p: &str) -> Result<()> {
        if self.eat(p) {
            Ok(())
        } else {
            Err(self.expected(&format!("`{p}`")))
        }
    }

    /// Whether the next token is the word `kw`.
    pub fn is_keyword(&self, kw: &str) -> bool {
        matches!(self.peek(), Tok::Ident(s) if s == kw)
    }

    /// Consumes the word `kw`, or fails.
    pub fn keyword(&mut self, kw: &str) -> Result<()> {
        if self.is_keyword(kw) {
            self.bump();
            Ok(())
        } else {
            Err(self.expected(&format!("`{kw}`")))
        }
    }

    /// Reads a word.
    pub fn ident(&mut self) -> Result<String> {
        match self.peek() {
            Tok::Ident(s) => {
                let s = s.clone();
                self.bump();
                Ok(s)
            }
            _ => Err(self.expected("a word")),
        }
    }

    /// Reads one of `words`, returning its index.
    pub fn one_of(&mut self, words: &[&str]) -> Result<usize> {
        match self.peek() {
            Tok::Ident(s) if words.contains(&s.as_str()) => {
                let i = words.iter().position(|w| w == s).expect("contained");
                self.bump();
                Ok(i)
            }
            _ => {
                let list: Vec<String> = words.iter().map(|w| format!("`{w}`")).collect();
                Err(self.expected(&format!("one of {}", list.join(", "))))
            }
        }
    }

    /// Reads a string literal.
    pub fn string(&mut self) -> Result<String> {
        match self.peek() {
            Tok::Str(s) => {
                let s = s.clone();
                self.bump();
                Ok(s)
            }
            _ => Err(self.expected("a string")),
        }
    }

    /// Takes the next token if `read` makes a `T` of it; otherwise an error expecting `what`.
    fn take<T>(&mut self, what: &str, read: impl FnOnce(&Tok) -> Option<T>) -> Result<T> {
        match read(self.peek()) {
            Some(v) => {
                self.bump();
                Ok(v)
            }
            None => Err(self.expected(what)),
        }
    }

    fn number<T: FromStr>(&mut self, what: &str) -> Result<T> {
        self.take(what, |t| match t {
            Tok::Number(s) => s.parse().ok(),
            _ => None,
        })
    }

    /// Reads an integer.
    pub fn i64(&mut self) -> Result<i64> {
        self.number("a 64-bit integer")
    }

    /// Reads a non-negative integer below 2^32.
    pub fn u32(&mut self) -> Result<u32> {
        self.number("an unsigned 32-bit integer")
    }

    /// Reads an integer from -2^31 to 2^31 − 1.
    pub fn i32(&mut self) -> Result<i32> {
        self.number("a 32-bit integer")
    }

    /// Reads a non-negative integer.
    pub fn usize(&mut self) -> Result<usize> {
        self.number("an unsigned integer")
    }

    /// Reads a float: a number, `inf` or `NaN`.
    pub fn f64(&mut self) -> Result<f64> {
        self.float()
    }

    /// Reads an `f32`: the nearest to the decimal written, as the printer's shortest
    /// digits intend (not the `f64` nearest, rounded again).
    pub fn f32(&mut self) -> Result<f32> {
        self.float()
    }

    fn float<T: FromStr>(&mut self) -> Result<T> {
        self.take("a number", |t| match t {
            Tok::Number(s) => s.parse().ok(),
            Tok::Ident(s) if s == "inf" || s == "NaN" => s.parse().ok(),
            _ => None,
        })
    }

    /// Reads `true` or `false`.
    pub fn bool(&mut self) -> Result<bool> {
        Ok(self.one_of(&["false", "true"])? == 1)
    }

    /// Reads a value `%N`.
    pub fn value(&mut self) -> Result<ValueId> {
        match self.peek() {
            Tok::Value(s) if s.bytes().all(|b| b.is_ascii_digit()) => match s.parse() {
                Ok(n) => {
                    self.bump();
                    Ok(ValueId(n))
                }
                Err(_) => Err(self.error(format!("value `%{s}` is out of range"))),
            },
            _ => Err(self.expected("a value `%N`")),
        }
    }

    /// Reads a `%<prefix>N` name (`%r3`), returning `N`.
    pub fn prefixed_value(&mut self, prefix: &str) -> Result<usize> {
        self.take(&format!("`%{prefix}N`"), |t| match t {
            Tok::Value(s) => numbered(s, prefix),
            _ => None,
        })
    }

    /// Reads a `<prefix>N` word (`w3`), returning `N`.
    pub fn prefixed_word(&mut self, prefix: &str) -> Result<usize> {
        self.take(&format!("`{prefix}N`"), |t| match t {
            Tok::Ident(s) => numbered(s, prefix),
            _ => None,
        })
    }

    /// Reads `[a, b, c]`, each item by `item`, or `@name`: the list of that data entry.
    pub fn list<T>(&mut self, mut item: impl FnMut(&mut Parser) -> Result<T>) -> Result<Vec<T>> {
        let Tok::Ref(name) = self.peek() else {
            return self.bracketed(&mut item);
        };
        let name = name.clone();
        if self.in_entry {
            return Err(self.error("a data entry cannot refer to another"));
        }
        let Some(entry) = self.entries.get_mut(&name) else {
            return Err(self.error(format!("no data entry `@{name}`")));
        };
        entry.used = true;
        let (start, resume) = (entry.start, self.pos + 1);
        self.pos = start;
        self.in_entry = true;
        let items = self.bracketed(&mut item)?;
        self.in_entry = false;
        self.pos = resume;
        Ok(items)
    }

    fn bracketed<T>(&mut self, item: &mut impl FnMut(&mut Parser) -> Result<T>) -> Result<Vec<T>> {
        self.expect("[")?;
        let mut items = Vec::new();
        if self.eat("]") {
            return Ok(items);
        }
        loop {
            if self.in_entry {
                self.expanded += 1;
                if self.expanded > self.budget {
                    return Err(self.error("data references expand to too many items"));
                }
            }
            items.push(item(self)?);
            if self.eat("]") {
                return Ok(items);
            }
            if !self.eat(",") {
                return Err(self.expected("`,` or `]`"));
            }
        }
    }

    /// Reads `open a, b close`: a range `[lo, hi]`, a decomposition `(level, base_log)`.
    pub fn pair<A, B>(
        &mut self,
        open: &str,
        a: impl FnOnce(&mut Parser) -> Result<A>,
        b: impl FnOnce(&mut Parser) -> Result<B>,
        close: &str,
    ) -> Result<(A, B)> {
        self.expect(open)?;
        let x = a(self)?;
        self.expect(",")?;
        let y = b(self)?;
        self.expect(close)?;
        Ok((x, y))
    }

    /// Reads an integer range `[lo, hi]`.
    pub fn range(&mut self) -> Result<(i64, i64)> {
        self.pair("[", Parser::i64, Parser::i64, "]")
    }

    /// Reads `[a,b,c]` of non-negative integers (shapes, strides).
    pub fn dims(&mut self) -> Result<Vec<usize>> {
        self.list(Parser::usize)
    }

    /// The type of the node whose attributes are being read (its `: type`).
    pub fn node_type(&self) -> Option<&crate::TensorType> {
        self.node_type.as_ref()
    }

    pub(crate) fn set_node_type(&mut self, ty: Option<crate::TensorType>) {
        self.node_type = ty;
    }

    /// Starts an attribute block: `{` if one comes next (else every attribute is absent).
    pub(crate) fn open_attrs(&mut self) {
        self.attrs = if self.eat("{") { Attrs::First } else { Attrs::Absent };
    }

    /// Ends an attribute block at its `}`.
    pub(crate) fn close_attrs(&mut self) -> Result<()> {
        let state = std::mem::replace(&mut self.attrs, Attrs::Absent);
        let stray = match (state, self.peek(), &self.tok_at(self.pos + 1).tok) {
            (Attrs::Absent, ..) => return Ok(()),
            (_, Tok::Punct("}"), _) => {
                self.bump();
                return Ok(());
            }
            (Attrs::First, Tok::Ident(name), _) | (Attrs::Rest, Tok::Punct(","), Tok::Ident(name)) => name.clone(),
            (Attrs::First, ..) => return Err(self.expected("an attribute or `}`")),
            (Attrs::Rest, ..) => return Err(self.expected("`,` or `}`")),
        };
        if let Attrs::Rest = state {
            self.bump();
        }
        Err(self.error(format!("unexpected attribute `{stray}` (attributes come in a fixed order)")))
    }

    /// Reads attribute `name` if it comes next in the block.
    pub fn opt_attr<T>(&mut self, name: &str, value: impl FnOnce(&mut Parser) -> Result<T>) -> Result<Option<T>> {
        let at = match self.attrs {
            Attrs::Absent => return Ok(None),
            Attrs::First => self.pos,
            Attrs::Rest if self.peek() == &Tok::Punct(",") => self.pos + 1,
            Attrs::Rest => return Ok(None),
        };
        if !matches!(&self.tok_at(at).tok, Tok::Ident(n) if n == name) {
            return Ok(None);
        }
        self.pos = at + 1;
        self.expect("=")?;
        let v = value(self)?;
        self.attrs = Attrs::Rest;
        Ok(Some(v))
    }

    /// Reads attribute `name`, which must come next in the block.
    pub fn attr<T>(&mut self, name: &str, value: impl FnOnce(&mut Parser) -> Result<T>) -> Result<T> {
        if let Some(v) = self.opt_attr(name, value)? {
            return Ok(v);
        }
        let found = match (self.attrs, self.peek(), &self.tok_at(self.pos + 1).tok) {
            (Attrs::Absent, ..) => {
                return Err(self.error(format!("missing attribute `{name}` (no `{{...}}` before here)")))
            }
            (Attrs::First, Tok::Ident(n), _) | (Attrs::Rest, Tok::Punct(","), Tok::Ident(n)) => format!("`{n}`"),
            (_, t, _) => describe(t),
        };
        if let (Attrs::Rest, Tok::Punct(",")) = (self.attrs, self.peek()) {
            self.bump();
        }
        Err(self.error(format!("expected attribute `{name}`, found {found}")))
    }

    /// Reads a record `{name=value, ...}`: `fields` reads the attributes in order.
    pub fn record<T>(&mut self, fields: impl FnOnce(&mut Parser) -> Result<T>) -> Result<T> {
        let saved = self.attrs;
        self.expect("{")?;
        self.attrs = Attrs::First;
        let v = fields(self)?;
        self.close_attrs()?;
        self.attrs = saved;
        Ok(v)
    }

    /// The name comment of the line the last token ended.
    pub(crate) fn line_name(&self) -> String {
        self.pos.checked_sub(1).and_then(|i| self.toks[i].name.clone()).unwrap_or_default()
    }

    /// The cursor position, to come back to.
    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    pub(crate) fn seek(&mut self, pos: usize) {
        self.pos = pos.min(self.toks.len() - 1);
    }

    /// Skips a balanced `{...}` block.
    pub(crate) fn skip_braces(&mut self) {
        let mut depth = 0i64;
        loop {
            match self.bump() {
                Tok::Punct("{") => depth += 1,
                Tok::Punct("}") => depth -= 1,
                Tok::Eof => return,
                _ => {}
            }
            if depth <= 0 {
                return;
            }
        }
    }

    /// The most elements a count in the text may ask for without writing them out
    /// (the values of a circuit): bounds what a short text makes the reader allocate.
    pub(crate) fn size_limit(&self) -> usize {
        self.budget
    }

    /// Whether a data reference `@name` comes next.
    pub fn at_ref(&self) -> bool {
        matches!(self.peek(), Tok::Ref(_))
    }

    /// Whether the next token is a value or register `%...`.
    pub(crate) fn at_value(&self) -> bool {
        matches!(self.peek(), Tok::Value(_))
    }
}

/// `N` of a name `<prefix>N` whose `N` is all digits.
fn numbered(name: &str, prefix: &str) -> Option<usize> {
    name.strip_prefix(prefix).filter(|d| d.bytes().all(|b| b.is_ascii_digit())).and_then(|d| d.parse().ok())
}
