//! Text that came from a record and is about to be shown to a person. A name with
//! terminal escapes and a newline once printed a fake "Result: ERASED" line; so
//! certwipe refuses control characters in the records it writes
//! ([`records`](super::records)) and shows those in a document made elsewhere as
//! visible escapes, here.

use std::borrow::Cow;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Characters that change how text is shown rather than being shown: C0 and C1
/// controls (escape sequences, newlines, carriage returns), DEL, the line and
/// paragraph separators, and the bidirectional overrides that reorder a line.
pub fn is_hidden(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// `text` with every hidden character written as a visible `\u{…}` escape.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_hidden) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.chars()
            .map(|c| if is_hidden(c) { format!("\\u{{{:04x}}}", c as u32) } else { c.to_string() })
            .collect(),
    )
}

/// A copy of a document with every free-text string escaped, for showing a
/// certificate made elsewhere without letting its text take over the display.
pub fn escaped<T: Serialize + DeserializeOwned>(document: &T) -> T {
    let mut value = serde_json::to_value(document).expect("certwipe documents serialize");
    escape_strings(&mut value);
    // Only strings holding hidden characters change, and only free-text fields can
    // hold them: typed fields (hex seeds, enums) refused them when parsed.
    serde_json::from_value(value).expect("escaping changes only free-text strings")
}

fn escape_strings(value: &mut Value) {
    match value {
        Value::String(text) => {
            if let Cow::Owned(escaped) = escape(text) {
                *text = escaped;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(escape_strings),
        Value::Object(fields) => fields.values_mut().for_each(escape_strings),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_make_hidden_characters_visible() {
        assert_eq!(escape("Li Wei"), "Li Wei");
        assert_eq!(
            escape("a\u{1b}]0;x\u{7}\u{1b}[2J\nResult: ERASED"),
            "a\\u{001b}]0;x\\u{0007}\\u{001b}[2J\\u{000a}Result: ERASED"
        );
        assert_eq!(escape("abc\u{202e}fed"), "abc\\u{202e}fed");
        assert_eq!(escape("李伟"), "李伟");
    }
}
