//! Server-rendered HTML for the records office: every value from the ledger
//! or a certificate goes through [`text`] (or [`attr`]), so a stored
//! `<script>` is shown as those characters and never runs; pages carry no
//! JavaScript and a Content-Security-Policy that forbids it anyway.

use std::fmt::Write as _;

use crate::cert::display::escape;
use crate::cert::pdf::{Lang, both};

/// Text for an element's content: HTML-escaped, with hidden characters
/// (control, bidirectional) shown as visible escapes like everywhere else.
pub fn text(value: &str) -> String {
    html_escape::encode_text(&escape(value)).into_owned()
}

/// Text for a double-quoted attribute.
pub fn attr(value: &str) -> String {
    html_escape::encode_double_quoted_attribute(&escape(value)).into_owned()
}

/// A URL path segment: percent-encoded, so a ledger number with `/`, `?` or
/// `..` stays one segment.
pub fn segment(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// A label in the page's language(s), like the printed certificate.
pub fn label(lang: Lang, zh: &str, en: &str) -> String {
    text(&both(lang, zh, en))
}

/// The `?lang=` to keep on links.
pub fn lang_query(lang: Lang) -> &'static str {
    match lang {
        Lang::Zh => "lang=zh",
        Lang::En => "lang=en",
        Lang::Both => "lang=both",
    }
}

const STYLE: &str = "body{font-family:'Noto Sans CJK SC','Noto Sans',sans-serif;margin:2em auto;max-width:60em;color:#111}
table{border-collapse:collapse;width:100%}td,th{border:1px solid #bbb;padding:.3em .5em;text-align:left;vertical-align:top}
th{background:#eee;width:14em}.ok{color:#060;font-weight:bold}.bad{color:#b00;font-weight:bold}
.note{color:#555}form{margin:1em 0}input[type=text]{width:32em}nav a{margin-right:1em}";

/// A whole page around `body`.
pub fn page(lang: Lang, title: &str, body: &str) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html><html lang=\"{}\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body>",
        if lang == Lang::En { "en" } else { "zh" },
        text(title)
    );
    let _ = write!(
        out,
        "<nav><a href=\"/?{}\">{}</a><a href=\"?lang=zh\">中文</a><a href=\"?lang=en\">English</a><a href=\"?lang=both\">中文 / English</a></nav>",
        lang_query(lang),
        label(lang, "台帐查询", "Ledger search")
    );
    let _ = write!(out, "<h1>{}</h1>{body}</body></html>", text(title));
    out
}

/// A table of (label, already-escaped HTML) rows.
pub fn rows(rows: &[(String, String)]) -> String {
    let mut out = String::from("<table>");
    for (label, value) in rows {
        let _ = write!(out, "<tr><th>{label}</th><td>{value}</td></tr>");
    }
    out.push_str("</table>");
    out
}

/// The search form.
pub fn search_form(lang: Lang, query: &str) -> String {
    format!(
        "<form action=\"/search\" method=\"get\"><input type=\"hidden\" name=\"lang\" value=\"{}\"><input type=\"text\" name=\"q\" value=\"{}\" maxlength=\"300\" autofocus placeholder=\"{}\"> <button type=\"submit\">{}</button></form>",
        &lang_query(lang)[5..],
        attr(query),
        attr(&both(
            lang,
            "台帐编号、序列号、证书编号或二维码内容",
            "ledger number, serial, certificate id or QR text"
        )),
        label(lang, "查询", "Search")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_markup_is_shown_as_text() {
        assert_eq!(text("<script>alert(1)</script>"), "&lt;script&gt;alert(1)&lt;/script&gt;");
        assert_eq!(attr("\" onmouseover=\"x"), "&quot; onmouseover=&quot;x");
        assert_eq!(text("a\u{202e}b"), "a\\u{202e}b");
        assert_eq!(segment("../../etc/passwd"), "%2E%2E%2F%2E%2E%2Fetc%2Fpasswd");
        assert_eq!(text("机密"), "机密");
    }
}
