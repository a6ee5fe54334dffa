//! The keys the settings accept, read from the parser's own types, so that what documents
//! the settings (questions-ui.yml, the README) is checked against what is accepted, without
//! a second list to keep in step.

use std::collections::BTreeSet;
use std::fmt;

use serde::de::{Deserialize, Deserializer, Visitor};

use super::wire::{
    WireGithubActions, WireImageLocation, WireKeyless, WireKeylessPrefix, WireRule, WireSettings,
};

/// Every key of the settings at any depth (top level, entries and `anyOf` alternatives, the
/// items of each kind, and `imageLocations` entries), aliases such as `url_prefix` included.
pub fn accepted_keys() -> BTreeSet<&'static str> {
    [
        fields::<WireSettings>(),
        fields::<WireRule>(),
        fields::<WireKeyless>(),
        fields::<WireKeylessPrefix>(),
        fields::<WireGithubActions>(),
        fields::<WireImageLocation>(),
    ]
    .into_iter()
    .flatten()
    .copied()
    .collect()
}

/// The field names a derived `Deserialize` passes to `deserialize_struct`.
fn fields<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    match T::deserialize(Probe) {
        Err(Fields(fields)) => fields,
        Ok(_) => &[],
    }
}

/// A deserializer that only records the field names it is asked for.
struct Probe;

/// Carries the recorded names out of the probe, as its error.
#[derive(Debug)]
struct Fields(&'static [&'static str]);

impl fmt::Display for Fields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "fields {:?}", self.0)
    }
}

impl std::error::Error for Fields {}

impl serde::de::Error for Fields {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Fields(&[])
    }
}

impl<'de> Deserializer<'de> for Probe {
    type Error = Fields;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Fields> {
        Err(Fields(&[]))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Fields> {
        Err(Fields(fields))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}
