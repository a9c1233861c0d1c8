//! Text that is shown to people: what may never be in it raw. A name with
//! terminal escapes and a newline once printed a fake "Result: ERASED" line,
//! and a device can report any bytes as its serial or model; so certwipe
//! refuses hidden characters in the records it writes, writes the ones a
//! device reports as visible escapes, and shows those in a document made
//! elsewhere escaped too.

use std::borrow::Cow;

/// Characters that change how text is shown, or show as nothing, rather than
/// being shown, so that `Li Wei` and a disguised `Li Wei` can never pass for
/// one person: by Unicode general category, controls (Cc: escape sequences,
/// newlines, carriage returns, DEL), format characters (Cf: zero-width spaces
/// and joiners, word joiners, the byte-order mark, soft hyphens, bidi marks
/// and overrides, tag characters, Egyptian and shorthand format controls),
/// line and paragraph separators (Zl, Zp), unassigned code points (Cn),
/// private-use code points (Co: a font may draw them as anything, or nothing),
/// and
/// spaces other than the plain and the ideographic one (Zs); and the
/// characters that draw nothing though their category says otherwise (Hangul
/// fillers, the Braille blank, combining grapheme joiner, Khmer inherent
/// vowels, Mongolian and other variation selectors, the Khitan filler, the
/// musical null notehead, and the whole tag and variation-selector plane
/// block U+E0000–U+E0FFF that Unicode reserves as default-ignorable).
pub fn is_hidden(c: char) -> bool {
    use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
    let blank_by_sight = matches!(
        c,
        '\u{034F}'
            | '\u{115F}'
            | '\u{1160}'
            | '\u{17B4}'
            | '\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{2800}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FFA0}'
            | '\u{16FE4}'
            | '\u{1D159}'
            | '\u{E0000}'..='\u{E0FFF}'
    );
    blank_by_sight
        || match c.general_category() {
            GeneralCategory::Control
            | GeneralCategory::Format
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
            | GeneralCategory::PrivateUse
            | GeneralCategory::Unassigned => true,
            GeneralCategory::SpaceSeparator => c != ' ' && c != '\u{3000}',
            _ => false,
        }
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

/// The longest device-reported string kept (model, serial, firmware, WWN):
/// real ones are at most 40 characters (ATA's model field).
pub const MAX_DEVICE_TEXT: usize = 128;

/// A string a device reported (sysfs, IDENTIFY, VPD), fit for a record: its
/// hidden characters escaped, surrounding blanks trimmed, cut at
/// [`MAX_DEVICE_TEXT`] characters, and `None` when nothing visible is left. A
/// hostile device's serial then can neither forge a line of a printout nor
/// pass a record check that refuses hidden characters.
pub fn from_device(raw: &str) -> Option<String> {
    let escaped = escape(raw.trim());
    let kept: String = escaped.chars().take(MAX_DEVICE_TEXT).collect();
    (!kept.is_empty()).then_some(kept)
}

/// Whether two names are one person's, as a reader of a register would see
/// them: letter case, runs of blanks and look-alike letters from another
/// script (a Cyrillic `е` for a Latin `e`, Unicode's confusables) do not make
/// another person.
pub fn same_person(a: &str, b: &str) -> bool {
    let seen = |name: &str| -> String {
        let spaced = name.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase();
        unicode_security::confusable_detection::skeleton(&spaced).collect::<String>().to_lowercase()
    };
    seen(a) == seen(b)
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
        for invisible in [
            '\u{200b}',
            '\u{2060}',
            '\u{feff}',
            '\u{3164}',
            '\u{00ad}',
            '\u{e0041}',
            '\u{2800}',
            '\u{1bca1}',
            '\u{13430}',
            '\u{0890}',
            '\u{2003}',
            '\u{00a0}',
            '\u{202e}',
            '\u{fe0f}',
            '\u{10ffff}',
            '\u{e000}',
            '\u{f0000}',
            '\u{16fe4}',
            '\u{1d159}',
            '\u{e0fff}',
        ] {
            assert!(is_hidden(invisible), "U+{:04X}", invisible as u32);
        }
        assert!(!is_hidden('\u{3000}') && !is_hidden('王') && !is_hidden('é'));
    }

    #[test]
    fn device_strings_are_escaped_trimmed_and_bounded() {
        assert_eq!(from_device("  WD-WCC4N1234567  ").as_deref(), Some("WD-WCC4N1234567"));
        assert_eq!(
            from_device("S1\u{1b}[2J\nResult: ERASED").as_deref(),
            Some("S1\\u{001b}[2J\\u{000a}Result: ERASED")
        );
        assert_eq!(from_device("   "), None);
        assert_eq!(from_device(&"x".repeat(1000)).map(|s| s.chars().count()), Some(MAX_DEVICE_TEXT));
    }
}
