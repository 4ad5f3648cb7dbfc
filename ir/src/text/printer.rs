//! The printing half of the text form. Callers write a line as text; lists are
//! gathered as small documents so that a list too long for its line can move to a
//! data entry at the end of the text (`@4.tables = [...]`), laid out over several
//! lines, and the line refers to it by name. Identical long lists share one entry.

use super::escape;
use std::collections::{HashMap, HashSet};
use std::fmt::Display;

/// A list longer than this (printed inline) moves to a data entry.
const INLINE_MAX: usize = 80;
/// Data entries wrap at this column.
const WIDTH: usize = 100;

/// A piece of a list under construction.
enum Doc {
    Text(String),
    /// Items, each a sequence of pieces.
    List(Vec<Vec<Doc>>),
}

fn inline(seq: &[Doc], out: &mut String) {
    for d in seq {
        match d {
            Doc::Text(s) => out.push_str(s),
            Doc::List(items) => inline_list(items, out),
        }
    }
}

fn inline_list(items: &[Vec<Doc>], out: &mut String) {
    out.push('[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        inline(item, out);
    }
    out.push(']');
}

fn inline_string(seq: &[Doc]) -> String {
    let mut s = String::new();
    inline(seq, &mut s);
    s
}

/// Lays out a list starting at column `col` (indented by `indent`): inline when it
/// fits; else one item per line when items are lists, or items packed into lines.
fn layout(items: &[Vec<Doc>], col: usize, indent: usize, out: &mut String) {
    let mut flat = String::new();
    inline_list(items, &mut flat);
    if col + flat.len() <= WIDTH {
        out.push_str(&flat);
        return;
    }
    let pad = " ".repeat(indent + 2);
    out.push('[');
    if items.iter().any(|it| matches!(it.as_slice(), [Doc::List(_)])) {
        for (i, item) in items.iter().enumerate() {
            out.push('\n');
            out.push_str(&pad);
            match item.as_slice() {
                [Doc::List(inner)] => layout(inner, indent + 2, indent + 2, out),
                _ => inline(item, out),
            }
            if i + 1 < items.len() {
                out.push(',');
            }
        }
    } else {
        let mut line = 0;
        for (i, item) in items.iter().enumerate() {
            let s = inline_string(item);
            if i == 0 || line + 2 + s.len() > WIDTH {
                out.push_str(if i == 0 { "\n" } else { ",\n" });
                out.push_str(&pad);
                line = pad.len();
            } else {
                out.push_str(", ");
                line += 2;
            }
            out.push_str(&s);
            line += s.len();
        }
    }
    out.push('\n');
    out.push_str(&" ".repeat(indent));
    out.push(']');
}

/// The data entries of a text, in order of first use.
#[derive(Default)]
struct Data {
    entries: Vec<(String, Vec<Vec<Doc>>)>,
    by_text: HashMap<String, String>,
    names: HashSet<String>,
}

impl Data {
    fn add(&mut self, hint: String, text: String, items: Vec<Vec<Doc>>) -> String {
        if let Some(name) = self.by_text.get(&text) {
            return name.clone();
        }
        let mut name = hint.clone();
        let mut k = 2;
        while self.names.contains(&name) {
            name = format!("{hint}_{k}");
            k += 1;
        }
        self.names.insert(name.clone());
        self.by_text.insert(text, name.clone());
        self.entries.push((name.clone(), items));
        name
    }
}

/// Writes the text form. Ops print their attributes through it
/// ([`crate::OpSpec::print_attrs`]), each with the helpers for shared shapes of values.
pub struct Printer {
    out: String,
    /// The items of the lists being built, innermost last.
    stack: Vec<Vec<Doc>>,
    data: Option<Data>,
    /// Names data entries: `<context>.<field>`.
    context: String,
    field: String,
    /// Attributes written in the current block, and whether its `{` is still to come.
    attrs: usize,
    lazy_brace: bool,
    node_type: Option<crate::TensorType>,
}

impl Printer {
    /// A printer that keeps every list inline (for one value on its own).
    pub(crate) fn inline() -> Printer {
        Printer {
            out: String::new(),
            stack: Vec::new(),
            data: None,
            context: String::new(),
            field: String::new(),
            attrs: 0,
            lazy_brace: false,
            node_type: None,
        }
    }

    /// A printer for a whole document, which moves long lists to data entries.
    pub(crate) fn document() -> Printer {
        Printer { data: Some(Data::default()), ..Printer::inline() }
    }

    /// The text, then the data entries.
    pub(crate) fn finish(mut self) -> String {
        for (name, items) in self.data.take().map(|d| d.entries).unwrap_or_default() {
            self.out.push_str(&format!("\n\n@{name} = "));
            layout(&items, name.len() + 4, 0, &mut self.out);
        }
        self.out
    }

    /// What data entries made by the next lines are named after (a node number, a step).
    pub(crate) fn set_context(&mut self, context: impl Into<String>) {
        self.context = context.into();
        self.field.clear();
    }

    /// The type of the node whose attributes are being printed.
    pub fn node_type(&self) -> Option<&crate::TensorType> {
        self.node_type.as_ref()
    }

    pub(crate) fn set_node_type(&mut self, ty: Option<crate::TensorType>) {
        self.node_type = ty;
    }

    /// Names the data entry the next list would move to (after the context).
    pub fn field(&mut self, name: &str) {
        self.field.clear();
        self.field.push_str(name);
    }

    /// Writes text as it is.
    pub fn text(&mut self, s: &str) {
        match self.stack.last_mut() {
            None => self.out.push_str(s),
            Some(seq) => match seq.last_mut() {
                Some(Doc::Text(t)) => t.push_str(s),
                _ => seq.push(Doc::Text(s.to_string())),
            },
        }
    }

    /// Writes a value through its `Display` (integers, identifiers).
    pub fn display(&mut self, x: impl Display) {
        self.text(&x.to_string());
    }

    /// Writes a float with the fewest digits that read back to the same float
    /// (`0.1`, `1.0`, `1e-7`, `-0.0`, `inf`, `NaN`).
    pub fn f64(&mut self, x: f64) {
        self.text(&format!("{x:?}"));
    }

    /// Writes an `f32` with the fewest digits that read back to the same `f32`.
    pub fn f32(&mut self, x: f32) {
        self.text(&format!("{x:?}"));
    }

    /// Writes a string literal.
    pub fn string(&mut self, s: &str) {
        self.text(&escape(s));
    }

    /// Writes `[a,b,c]` (shapes, strides): short, never moved to a data entry.
    pub fn dims(&mut self, xs: &[usize]) {
        let parts: Vec<String> = xs.iter().map(|x| x.to_string()).collect();
        self.text(&format!("[{}]", parts.join(",")));
    }

    /// Writes `[a, b, c]`, each item by `item`. A list that is not inside another and
    /// is long moves to a data entry, and `@name` stands in its place.
    pub fn list<T>(&mut self, items: impl IntoIterator<Item = T>, mut item: impl FnMut(&mut Printer, T)) {
        let hint = match (self.context.is_empty(), self.field.is_empty()) {
            (_, true) => self.context.clone(),
            (true, false) => self.field.clone(),
            (false, false) => format!("{}.{}", self.context, self.field),
        };
        let mut docs = Vec::new();
        for x in items {
            self.stack.push(Vec::new());
            item(self, x);
            docs.push(self.stack.pop().expect("pushed above"));
        }
        if let Some(seq) = self.stack.last_mut() {
            seq.push(Doc::List(docs));
            return;
        }
        let mut text = String::new();
        inline_list(&docs, &mut text);
        match &mut self.data {
            Some(data) if text.len() > INLINE_MAX => {
                let name = data.add(hint, text, docs);
                self.text(&format!("@{name}"));
            }
            _ => self.text(&text),
        }
    }

    /// Writes one `name=value` attribute of the current block.
    pub fn attr(&mut self, name: &str, value: impl FnOnce(&mut Printer)) {
        if self.attrs > 0 {
            self.text(", ");
        } else if self.lazy_brace {
            self.text(" {");
        }
        self.attrs += 1;
        self.field(name);
        self.text(name);
        self.text("=");
        value(self);
    }

    /// Writes a `{...}` block of attributes, nothing when `attrs` writes none.
    pub(crate) fn attrs(&mut self, attrs: impl FnOnce(&mut Printer)) {
        let saved = (self.attrs, self.lazy_brace);
        (self.attrs, self.lazy_brace) = (0, true);
        attrs(self);
        if self.attrs > 0 {
            self.text("}");
        }
        (self.attrs, self.lazy_brace) = saved;
    }

    /// Writes a record `{name=value, ...}` (a list item with fields).
    pub fn record(&mut self, fields: impl FnOnce(&mut Printer)) {
        let saved = (self.attrs, self.lazy_brace);
        (self.attrs, self.lazy_brace) = (0, false);
        self.text("{");
        fields(self);
        self.text("}");
        (self.attrs, self.lazy_brace) = saved;
    }

    /// Ends a line with its name comment (`  ; "name"`), if it has a name.
    pub(crate) fn name(&mut self, name: &str) {
        if !name.is_empty() {
            self.text("  ; ");
            self.string(name);
        }
    }
}
