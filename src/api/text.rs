//! A strict string for request bodies.
//!
//! poem-openapi's `String` also accepts JSON numbers and booleans (`42` becomes `"42"`), so
//! a wrongly typed field would pass as valid data. `Text` accepts only a JSON string, so a
//! wrong type is a 400 like every other type error.
//!
//! `Text<MIN, MAX>` also documents `minLength`/`maxLength` in the spec, so clients and
//! generated forms know the limits. The limits are enforced by the domain parsers, not here,
//! so a violation is a 422 `validation_failed` naming the field, like every other rule.

use std::borrow::Cow;

use poem_openapi::registry::{MetaSchema, MetaSchemaRef};
use poem_openapi::types::{ParseError, ParseFromJSON, ParseResult, ToJSON, Type};
use serde_json::Value;

/// No length documented.
pub const UNBOUNDED: usize = usize::MAX;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text<const MIN: usize = 0, const MAX: usize = UNBOUNDED>(pub String);

impl<const MIN: usize, const MAX: usize> Type for Text<MIN, MAX> {
    const IS_REQUIRED: bool = true;

    type RawValueType = String;

    type RawElementValueType = String;

    fn name() -> Cow<'static, str> {
        // Shown in parse errors ("failed to parse \"string\""); the bounds are in the schema.
        "string".into()
    }

    fn schema_ref() -> MetaSchemaRef {
        let mut schema = MetaSchema::new("string");
        schema.min_length = (MIN > 0).then_some(MIN);
        schema.max_length = (MAX != UNBOUNDED).then_some(MAX);
        MetaSchemaRef::Inline(Box::new(schema))
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        Some(&self.0)
    }

    fn raw_element_iter<'a>(
        &'a self,
    ) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        Box::new(std::iter::once(&self.0))
    }
}

impl<const MIN: usize, const MAX: usize> ParseFromJSON for Text<MIN, MAX> {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        match value {
            Some(Value::String(text)) => Ok(Text(text)),
            other => Err(ParseError::expected_type(other.unwrap_or_default())),
        }
    }
}

impl<const MIN: usize, const MAX: usize> ToJSON for Text<MIN, MAX> {
    fn to_json(&self) -> Option<Value> {
        Some(Value::String(self.0.clone()))
    }
}

impl<const MIN: usize, const MAX: usize> From<Text<MIN, MAX>> for String {
    fn from(text: Text<MIN, MAX>) -> Self {
        text.0
    }
}
