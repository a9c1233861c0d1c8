//! Text that came from a record and is about to be shown to a person. A name with
//! terminal escapes and a newline once printed a fake "Result: ERASED" line; so
//! certwipe refuses control characters in the records it writes
//! ([`records`](super::records)) and shows those in a document made elsewhere as
//! visible escapes, here.

use std::borrow::Cow;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

pub use crate::text::{escape, is_hidden};

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
