//! One command-line parser for every [`Named`] set of the library, so the
//! library needs no `clap` derive: the accepted spellings and the help for
//! each value come from the set itself.

use std::ffi::OsStr;
use std::marker::PhantomData;

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};

use crate::names::Named;

/// Parses a value of `T` by its one name.
#[derive(Clone)]
pub(crate) struct NamedParser<T>(PhantomData<T>);

/// The parser for `value_parser = named::<T>()`.
pub(crate) fn named<T: Named>() -> NamedParser<T> {
    NamedParser(PhantomData)
}

fn possible_values<T: Named>() -> impl Iterator<Item = PossibleValue> {
    T::ALL.iter().map(|value| match value.help() {
        "" => PossibleValue::new(value.as_str()),
        help => PossibleValue::new(value.as_str()).help(help),
    })
}

impl<T: Named> TypedValueParser for NamedParser<T> {
    type Value = T;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<T, clap::Error> {
        // clap's own parser gives clap's own message for a wrong value.
        let name = PossibleValuesParser::new(possible_values::<T>()).parse_ref(cmd, arg, value)?;
        T::from_name(&name)
            .ok_or_else(|| clap::Error::new(clap::error::ErrorKind::InvalidValue).with_cmd(cmd))
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        Some(Box::new(possible_values::<T>()))
    }
}
