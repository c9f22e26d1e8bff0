//! Internally tagged enums (`#[serde(tag = "...")]`) read without serde's buffered `Content`.
//!
//! Serde's derived reader for an internally tagged enum cannot know the variant until it has
//! seen the tag, which may come last, so it first copies the whole value into its own
//! in-memory tree (`Content`), then reads the variant's fields from that tree: every type
//! inside a variant gets a second deserializer, for `Content`, besides serde_json's. Every
//! value the Worker reads is JSON text (docs/size.md, "Reads through JSON text"), so the
//! text itself can play that part: [`internally_tagged!`] keeps the derived `Serialize` and
//! reads the value as raw JSON text (serde_json's `RawValue`), takes the tag from it, then
//! reads the chosen variant's fields from the same text with serde_json, ignoring the tag
//! field as any unknown field is ignored. The JSON read and written is the same as with
//! `#[serde(tag = "...")]` (`tagged::tests` compares the two readers; docs/size.md,
//! "Internally tagged enums without `Content`", lists the few error messages that differ).
//!
//! Only for enums that do not deny unknown fields (the tag would be one), with unit, newtype
//! and struct variants, read from JSON: serde_json's text, `Value` or `&Value`. Any other
//! deserializer (serde's `Content`, i.e. such an enum inside a derived internally tagged
//! or untagged enum or a flattened field; serde_wasm_bindgen) fails ("unexpected raw
//! value", "expected any valid JSON value") rather than reading something else. The unit
//! tests alone read `Content` too (`tests::raw_text`), to compare with the derived readers.

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, IntoDeserializer, Visitor};
#[cfg(not(test))]
use serde_json::value::RawValue;
use std::fmt;

/// Declares an enum whose JSON is internally tagged with `tag`, as `#[serde(tag = ...)]` would,
/// with a derived `Serialize` and a `Deserialize` that does not buffer (module docs):
///
/// ```ignore
/// internally_tagged! {
///     tag = "phase";
///     /// The rollout's phase.
///     #[derive(Clone, Debug, PartialEq)]
///     #[serde(rename_all = "snake_case")]
///     pub enum Phase { Preflight, Ramping { step: usize } }
/// }
/// ```
///
/// Attributes other than the tag (docs, derives, `serde(rename_all)`, field attributes)
/// apply as written. The reader is serde's derive for an externally tagged copy of the enum
/// (`serde(remote)`), handed the tag as the variant's name.
macro_rules! internally_tagged {
    (
        tag = $tag:literal;
        $(#[$attr:meta])*
        $vis:vis enum $name:ident { $($variants:tt)* }
    ) => {
        #[derive(serde::Serialize)]
        #[serde(tag = $tag)]
        $(#[$attr])*
        $vis enum $name { $($variants)* }

        const _: () = {
            type Remote = $name;

            #[derive(serde::Deserialize)]
            #[serde(remote = "Remote")]
            #[allow(dead_code)]
            $(#[$attr])*
            enum Externally { $($variants)* }

            impl<'de> serde::Deserialize<'de> for $name {
                fn deserialize<D: serde::Deserializer<'de>>(json: D) -> Result<Self, D::Error> {
                    $crate::json::tagged::read(json, $tag, stringify!($name), |variant| {
                        Externally::deserialize(variant)
                    })
                }
            }

            /// The reader `#[serde(tag = ...)]` derives, for the tests to compare with.
            #[cfg(test)]
            impl $crate::json::tagged::tests::Derived for $name {
                const TAG: &'static str = $tag;

                fn derived(text: &str) -> Result<Self, serde_json::Error> {
                    #[derive(serde::Deserialize)]
                    #[serde(remote = "Remote", tag = $tag)]
                    #[allow(dead_code)]
                    $(#[$attr])*
                    enum Internally { $($variants)* }

                    let mut json = serde_json::Deserializer::from_str(text);
                    let value = Internally::deserialize(&mut json)?;
                    json.end().map(|()| value)
                }
            }
        };
    };
}
pub(crate) use internally_tagged;

/// Reads an internally tagged enum `name` from `json` (module docs): its text, then the tag,
/// then `variant` reads the fields for the tag's variant from the same text. Errors read as
/// the derived reader's do (but for the few in the module docs); their position is the end
/// of the value.
///
/// # Errors
/// Not JSON, not an object, no tag or a tag that is not a string, an unknown variant, or a
/// field that does not read.
pub fn read<'de, D, T>(
    json: D,
    tag: &'static str,
    name: &'static str,
    variant: impl FnOnce(Variant<'_>) -> Result<T, serde_json::Error>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    #[cfg(not(test))]
    let text = <Box<RawValue> as serde::Deserialize>::deserialize(json)?;
    #[cfg(test)]
    let text = tests::raw_text(json)?;
    let text = text.get();
    let mut reader = serde_json::Deserializer::from_str(text);
    reader
        .deserialize_any(TagOf { tag, name })
        .and_then(|tag| variant(Variant { tag, text }))
        .map_err(|e| de::Error::custom(without_position(&e)))
}

/// `e`'s message without serde_json's " at line L column C", which would be a position in
/// the enum's own text: the caller's deserializer adds its own.
fn without_position(e: &serde_json::Error) -> String {
    let message = e.to_string();
    let position = format!(" at line {} column {}", e.line(), e.column());
    match message.strip_suffix(&position) {
        Some(message) if e.line() != 0 => message.to_owned(),
        _ => message,
    }
}

/// Finds the tag's value in an object, as serde's derived reader does (`TaggedContentVisitor`).
struct TagOf {
    tag: &'static str,
    name: &'static str,
}

impl<'de> Visitor<'de> for TagOf {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "internally tagged enum {}", self.name)
    }

    fn visit_map<M: de::MapAccess<'de>>(self, mut map: M) -> Result<String, M::Error> {
        let mut found = None;
        while let Some(key) = map.next_key::<String>()? {
            if key != self.tag {
                map.next_value::<IgnoredAny>()?;
            } else if found.is_some() {
                return Err(de::Error::duplicate_field(self.tag));
            } else {
                found = Some(map.next_value_seed(VariantName)?);
            }
        }
        found.ok_or_else(|| de::Error::missing_field(self.tag))
    }
}

/// The tag's value: a string, refused as the derived reader refuses anything else.
struct VariantName;

impl<'de> DeserializeSeed<'de> for VariantName {
    type Value = String;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        d.deserialize_identifier(self)
    }
}

impl Visitor<'_> for VariantName {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("variant identifier")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<String, E> {
        Ok(name.to_owned())
    }
}

/// An internally tagged value seen as an externally tagged one: the tag is the variant's
/// name, and the whole object (tag included, ignored as an unknown field) its fields.
pub struct Variant<'de> {
    tag: String,
    text: &'de str,
}

impl<'de> Deserializer<'de> for Variant<'de> {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_enum(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct enum
        identifier ignored_any
    }
}

impl<'de> de::EnumAccess<'de> for Variant<'de> {
    type Error = serde_json::Error;
    type Variant = Fields<'de>;

    fn variant_seed<S: DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, Fields<'de>), Self::Error> {
        let name = seed.deserialize(self.tag.as_str().into_deserializer())?;
        Ok((name, Fields(self.text)))
    }
}

/// The chosen variant's fields: the object's text.
pub struct Fields<'de>(&'de str);

impl<'de> de::VariantAccess<'de> for Fields<'de> {
    type Error = serde_json::Error;

    /// Other fields are ignored, as the derived reader ignores them.
    fn unit_variant(self) -> Result<(), Self::Error> {
        Ok(())
    }

    fn newtype_variant_seed<S: DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<S::Value, Self::Error> {
        seed.deserialize(&mut serde_json::Deserializer::from_str(self.0))
    }

    /// Internally tagged enums have no tuple variants (serde's derive refuses them).
    fn tuple_variant<V: Visitor<'de>>(self, _: usize, _: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom(
            "tuple variants cannot be internally tagged",
        ))
    }

    /// Read as a map: the text is an object (it had the tag), and serde_json's
    /// `deserialize_struct` would also build each variant's reader from an array.
    fn struct_variant<V: Visitor<'de>>(
        self,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        serde_json::Deserializer::from_str(self.0).deserialize_map(visitor)
    }
}

#[cfg(test)]
pub(crate) mod tests;
