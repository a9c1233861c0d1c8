//! Closed sets of named values (a verify mode, a destination, a role...): one
//! name per value, the same on the command line, in JSON, in the profile and
//! on every screen and page, written once with [`named!`]. The library stays
//! free of the command-line parser: `cli` reads any [`Named`] set through one
//! generic parser that lists [`Named::ALL`] with their help lines.

use thiserror::Error;

/// A closed set of values, each with one name.
pub trait Named: Copy + Send + Sync + 'static {
    /// Every value, in the order help lists them.
    const ALL: &'static [Self];
    /// What the set is called in a message ("verify mode").
    const WHAT: &'static str;
    /// The value's one name.
    fn as_str(self) -> &'static str;
    /// The value's doc line, for `--help`; empty when it has none.
    fn help(self) -> &'static str;

    /// The value named `name`, if any.
    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|value| value.as_str() == name)
    }
}

/// A name that is none of a set's values.
#[derive(Debug, Error)]
#[error("{given:?} is not a {what}; use one of: {}", known.join(", "))]
pub struct UnknownName {
    pub what: &'static str,
    pub given: String,
    pub known: Vec<&'static str>,
}

/// `text` as a value of `T`, or an error that lists `T`'s names.
pub fn parse<T: Named>(text: &str) -> Result<T, UnknownName> {
    T::from_name(text).ok_or_else(|| UnknownName {
        what: T::WHAT,
        given: text.to_string(),
        known: T::ALL.iter().map(|value| value.as_str()).collect(),
    })
}

/// Defines an enum whose values each have one name: its serde name, its
/// `Display`, its `FromStr`, its command-line spelling and its
/// [`Named::ALL`] entry are then the same by construction.
///
/// ```ignore
/// named! {
///     /// How much of a wipe is read back.
///     pub enum VerifyMode: "verify mode" {
///         /// No read-back.
///         Off = "off",
///         Last = "last",
///     }
/// }
/// ```
#[macro_export]
macro_rules! named {
    (
        $(#[$meta:meta])*
        $vis:vis enum $Name:ident : $what:literal {
            $( $(#[doc = $doc:literal])* $Variant:ident = $text:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        $vis enum $Name {
            $( $(#[doc = $doc])* #[serde(rename = $text)] $Variant ),+
        }

        impl $Name {
            /// Every value, in the order help lists them.
            pub const ALL: &'static [$Name] = &[$($Name::$Variant),+];

            /// The value's one name (as in JSON, on the command line, on screen).
            pub fn as_str(self) -> &'static str {
                match self {
                    $($Name::$Variant => $text),+
                }
            }

            /// The value named `name`, if any.
            pub fn from_name(name: &str) -> Option<$Name> {
                <$Name as $crate::names::Named>::from_name(name)
            }
        }

        impl $crate::names::Named for $Name {
            const ALL: &'static [$Name] = $Name::ALL;
            const WHAT: &'static str = $what;

            fn as_str(self) -> &'static str {
                $Name::as_str(self)
            }

            fn help(self) -> &'static str {
                match self {
                    $($Name::$Variant => concat!("" $(, $doc)*).trim_ascii()),+
                }
            }
        }

        impl std::fmt::Display for $Name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $Name {
            type Err = $crate::names::UnknownName;

            fn from_str(text: &str) -> Result<$Name, Self::Err> {
                $crate::names::parse(text)
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    named! {
        /// A set for the test.
        enum Colour: "colour" {
            /// The colour of the sky.
            /// On a clear day.
            SkyBlue = "sky-blue",
            Red = "red",
        }
    }

    #[test]
    fn one_name_everywhere() {
        assert_eq!(Colour::SkyBlue.to_string(), "sky-blue");
        assert_eq!(serde_json::to_string(&Colour::SkyBlue).unwrap(), "\"sky-blue\"");
        assert_eq!(serde_json::from_str::<Colour>("\"red\"").unwrap(), Colour::Red);
        assert_eq!("red".parse::<Colour>().unwrap(), Colour::Red);
        assert_eq!(Colour::from_name("sky-blue"), Some(Colour::SkyBlue));
        let error = "blue".parse::<Colour>().unwrap_err().to_string();
        assert_eq!(error, "\"blue\" is not a colour; use one of: sky-blue, red");
        assert_eq!(Named::help(Colour::SkyBlue), "The colour of the sky. On a clear day.");
        assert_eq!(Named::help(Colour::Red), "");
        assert_eq!(Colour::ALL, &[Colour::SkyBlue, Colour::Red]);
    }
}
