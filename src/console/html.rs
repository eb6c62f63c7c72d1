//! A tiny HTML writer: text is escaped on the way in, markup is written as
//! is. Pages are built into one `String` (no template engine to compile).

use std::fmt::Write;

/// Escapes text for an element's content or a quoted attribute.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    push_esc(&mut out, s);
    out
}

fn push_esc(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

/// Percent-encodes a path segment or query value.
pub fn url(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[derive(Default)]
pub struct Html(pub String);

impl Html {
    pub fn new() -> Self {
        Self(String::with_capacity(16 * 1024))
    }

    /// Markup, written as is: never pass request data here.
    pub fn raw(&mut self, s: &str) -> &mut Self {
        self.0.push_str(s);
        self
    }

    /// Text, escaped.
    pub fn text(&mut self, s: &str) -> &mut Self {
        push_esc(&mut self.0, s);
        self
    }

    /// `<tag attrs>text</tag>` with the text escaped; `attrs` is markup.
    pub fn el(&mut self, tag: &str, attrs: &str, text: &str) -> &mut Self {
        let _ = write!(
            self.0,
            "<{tag}{}{attrs}>",
            if attrs.is_empty() { "" } else { " " }
        );
        self.text(text);
        let _ = write!(self.0, "</{tag}>");
        self
    }

    /// `<a href="…">text</a>`, both escaped.
    pub fn link(&mut self, href: &str, text: &str) -> &mut Self {
        self.0.push_str("<a href=\"");
        push_esc(&mut self.0, href);
        self.0.push_str("\">");
        self.text(text);
        self.0.push_str("</a>");
        self
    }

    /// A POST form with the session's CSRF token and a `next` page, and one
    /// submit button; `fields` are (name, value) hidden inputs.
    #[allow(clippy::too_many_arguments)]
    pub fn post_button(
        &mut self,
        action: &str,
        csrf: &str,
        fields: &[(&str, &str)],
        class: &str,
        label: &str,
        extra: &str,
    ) -> &mut Self {
        self.0
            .push_str("<form method=\"post\" class=\"inline\" action=\"");
        push_esc(&mut self.0, action);
        self.0.push_str("\">");
        self.hidden("csrf", csrf);
        for (name, value) in fields {
            self.hidden(name, value);
        }
        let _ = write!(self.0, "<button type=\"submit\" class=\"{class}\" {extra}>");
        self.text(label);
        self.0.push_str("</button></form>");
        self
    }

    pub fn hidden(&mut self, name: &str, value: &str) -> &mut Self {
        let _ = write!(self.0, "<input type=\"hidden\" name=\"{name}\" value=\"");
        push_esc(&mut self.0, value);
        self.0.push_str("\">");
        self
    }

    pub fn fmt(&mut self, args: std::fmt::Arguments<'_>) -> &mut Self {
        let _ = self.0.write_fmt(args);
        self
    }
}

/// `2025-01-31 09:30:12` (UTC).
pub fn time(ms: i64) -> String {
    let t = crate::clock::rfc3339(ms);
    t.get(..19).unwrap_or(&t).replace('T', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_attributes_are_escaped() {
        let mut h = Html::new();
        h.el("p", "class=\"x\"", "<script>\"'&")
            .link("/a?b=\"1\"", "<b>");
        assert_eq!(
            h.0,
            "<p class=\"x\">&lt;script&gt;&quot;&#39;&amp;</p><a href=\"/a?b=&quot;1&quot;\">&lt;b&gt;</a>"
        );
        assert_eq!(url("a b/c@d"), "a%20b%2Fc%40d");
    }
}
