//! One page of a list, for every list of the API: `{items, next_cursor}`.
//!
//! The schema is written here by hand rather than derived: poem-openapi names a generic
//! object after its parameters (`Page_Task`), while generated clients know each list's page
//! by its own name (`TaskPage`, `TeamPage`, …) and description. [`PageItem`] gives those, and
//! the schema comes out exactly as `#[derive(Object)]` made it for the per-list structs this
//! replaces (the committed spec checks that).

use std::borrow::Cow;

use poem_openapi::registry::{MetaSchema, MetaSchemaRef, Registry};
use poem_openapi::types::{IsObjectType, ToJSON, Type};
use serde_json::Value;

use crate::domain::page as domain;

/// The usual description of `next_cursor`.
pub const NEXT_PAGE: &str = "Pass as `cursor` for the next page; null on the last page.";

/// An item of a listed page: names that page's schema.
pub trait PageItem: Type + ToJSON {
    /// The page's schema name, e.g. `TaskPage`.
    const PAGE_NAME: &'static str;
    /// The page schema's description.
    const PAGE_DESCRIPTION: Option<&'static str>;
    /// The description of the page's `next_cursor`.
    const CURSOR_DESCRIPTION: Option<&'static str> = Some(NEXT_PAGE);
}

/// A page of `T`, in the list's order.
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// The service's page, each item turned into its API body.
    pub fn map<S>(page: domain::Page<S>, item: impl FnMut(S) -> T) -> Self {
        Self {
            next_cursor: page.next_cursor.map(|c| c.encode()),
            items: page.items.into_iter().map(item).collect(),
        }
    }
}

/// One property's schema, as `#[derive(Object)]` builds it.
fn property(
    original: MetaSchemaRef,
    nullable: bool,
    description: Option<&'static str>,
) -> MetaSchemaRef {
    let mut patch = MetaSchema::ANY;
    patch.nullable = nullable;
    patch.description = description;
    original.merge(patch)
}

impl<T: PageItem> Type for Page<T> {
    const IS_REQUIRED: bool = true;

    type RawValueType = Self;

    type RawElementValueType = Self;

    fn name() -> Cow<'static, str> {
        Cow::Borrowed(T::PAGE_NAME)
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Reference(T::PAGE_NAME.to_string())
    }

    fn register(registry: &mut Registry) {
        registry.create_schema::<Self, _>(T::PAGE_NAME.to_string(), |registry| {
            <Vec<T> as Type>::register(registry);
            <Option<String> as Type>::register(registry);
            MetaSchema {
                title: Some(T::PAGE_NAME.to_string()),
                description: T::PAGE_DESCRIPTION,
                required: vec!["items"],
                properties: vec![
                    (
                        "items",
                        property(<Vec<T> as Type>::schema_ref(), false, None),
                    ),
                    (
                        "next_cursor",
                        property(
                            <Option<String> as Type>::schema_ref(),
                            true,
                            T::CURSOR_DESCRIPTION,
                        ),
                    ),
                ],
                ..MetaSchema::new("object")
            }
        })
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        Some(self)
    }

    fn raw_element_iter<'a>(
        &'a self,
    ) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        Box::new(self.as_raw_value().into_iter())
    }
}

impl<T: PageItem> IsObjectType for Page<T> {}

impl<T: PageItem> ToJSON for Page<T> {
    fn to_json(&self) -> Option<Value> {
        let mut object = serde_json::Map::new();
        if let Some(items) = self.items.to_json() {
            object.insert("items".to_string(), items);
        }
        if let Some(cursor) = self.next_cursor.to_json() {
            object.insert("next_cursor".to_string(), cursor);
        }
        Some(Value::Object(object))
    }
}
