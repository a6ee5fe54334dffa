//! Reading the `validate` payload. Only what the policy uses is read. The object is
//! read as `O`: raw JSON text, kept so that it is parsed no more than needed, or
//! directly as what the policy looks for in it, in the same pass as the payload.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

#[derive(Deserialize)]
#[serde(bound(deserialize = "O: Deserialize<'de>, 'de: 'a"))]
pub struct Payload<'a, O = &'a RawValue> {
    pub request: AdmissionRequest<'a, O>,
    pub settings: Option<&'a RawValue>,
}

/// The request, read by [`RequestVisitor`]: as serde's derive would (unknown fields
/// skipped, a repeated field refused), and keeping the keys around the object, which bound
/// its text in the payload.
pub struct AdmissionRequest<'a, O = &'a RawValue> {
    pub kind: GroupVersionKind,
    pub sub_resource: Option<String>,
    pub operation: Option<String>,
    pub object: Option<O>,
    pub old_object: Option<&'a RawValue>,
    /// The key `object` and the key after it, as they sit in the payload; `None` when one is
    /// absent or was written with escapes.
    object_bounds: Option<(&'a str, &'a str)>,
}

#[derive(Deserialize)]
pub struct GroupVersionKind {
    /// `""` for the core group, and when the request leaves it out.
    #[serde(default)]
    pub group: String,
    pub kind: String,
}

impl<'a, O: Deserialize<'a>> Payload<'a, O> {
    pub fn parse(payload: &'a [u8]) -> Result<Self, String> {
        serde_json::from_slice(payload)
            .map_err(|e| format!("cannot read the admission request: {e}"))
    }
}

impl<'a> AdmissionRequest<'a> {
    /// The object, unless absent or `null` (as on DELETE).
    pub fn object(&self) -> Option<&'a RawValue> {
        self.object.filter(|o| o.get() != "null")
    }
}

impl<O> AdmissionRequest<'_, O> {
    /// The object before an UPDATE, unless absent or `null`.
    pub fn old_object(&self) -> Option<&RawValue> {
        self.old_object.filter(|o| o.get() != "null")
    }

    /// Whether the request is for the `pods/ephemeralcontainers` subresource, on which
    /// only ephemeral containers can change.
    pub fn is_ephemeral_containers(&self) -> bool {
        self.sub_resource.as_deref() == Some("ephemeralcontainers")
    }
}

impl<'a, O> AdmissionRequest<'a, O> {
    /// The object's text within `payload`, the text this request was read from, found from the
    /// keys around it without reading it again: `None` when they do not bound it (the object
    /// is the request's last field, or a key was written with escapes).
    pub fn object_text(&self, payload: &'a [u8]) -> Option<&'a str> {
        let (key, next) = self.object_bounds?;
        let offset = |text: &str| (text.as_ptr() as usize).checked_sub(payload.as_ptr() as usize);
        // Between a key and its value lie only `"`, `:` and whitespace; between a value and
        // the next key only `,`, `"` and whitespace.
        let after_key = offset(key)? + key.len();
        let start = after_key
            + payload[after_key..]
                .iter()
                .position(|b| !matches!(b, b'"' | b':') && !b.is_ascii_whitespace())?;
        let before_next = offset(next)?;
        let end = payload[..before_next]
            .iter()
            .rposition(|b| !matches!(b, b'"' | b',') && !b.is_ascii_whitespace())?;
        let text = payload.get(start..=end)?;
        if text.first() != Some(&b'{') || text.last() != Some(&b'}') {
            return None;
        }
        std::str::from_utf8(text).ok()
    }
}

/// A key of the request as written: borrowed from the payload unless it holds escapes.
enum Key<'a> {
    Borrowed(&'a str),
    Owned(String),
}

impl Key<'_> {
    fn as_str(&self) -> &str {
        match self {
            Key::Borrowed(key) => key,
            Key::Owned(key) => key,
        }
    }
}

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_borrowed_str<E: de::Error>(self, key: &'de str) -> Result<Key<'de>, E> {
                Ok(Key::Borrowed(key))
            }
            fn visit_str<E: de::Error>(self, key: &str) -> Result<Key<'de>, E> {
                Ok(Key::Owned(key.to_owned()))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

impl<'de: 'a, 'a, O: Deserialize<'de>> Deserialize<'de> for AdmissionRequest<'a, O> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(RequestVisitor(PhantomData))
    }
}

struct RequestVisitor<'a, O>(PhantomData<(&'a (), O)>);

impl<'de: 'a, 'a, O: Deserialize<'de>> Visitor<'de> for RequestVisitor<'a, O> {
    type Value = AdmissionRequest<'a, O>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an admission request")
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
        fn once<T, E: de::Error>(
            slot: &mut Option<T>,
            value: T,
            name: &'static str,
        ) -> Result<(), E> {
            match slot.replace(value) {
                Some(_) => Err(E::duplicate_field(name)),
                None => Ok(()),
            }
        }
        let mut kind = None;
        let mut sub_resource = None;
        let mut operation = None;
        let mut object = None;
        let mut old_object = None;
        let mut object_key = None;
        let mut object_bounds = None;
        let mut after_object = false;
        while let Some(key) = map.next_key::<Key<'de>>()? {
            if after_object {
                after_object = false;
                if let (Some(object_key), Key::Borrowed(next)) = (object_key, &key) {
                    object_bounds = Some((object_key, *next));
                }
            }
            match key.as_str() {
                "kind" => once(&mut kind, map.next_value()?, "kind")?,
                "subResource" => once(&mut sub_resource, map.next_value()?, "subResource")?,
                "operation" => once(&mut operation, map.next_value()?, "operation")?,
                "object" => {
                    once(&mut object, map.next_value::<Option<O>>()?, "object")?;
                    object_key = match key {
                        Key::Borrowed(key) => Some(key),
                        Key::Owned(_) => None,
                    };
                    after_object = true;
                }
                "oldObject" => once(&mut old_object, map.next_value()?, "oldObject")?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(AdmissionRequest {
            kind: kind.ok_or_else(|| de::Error::missing_field("kind"))?,
            sub_resource: sub_resource.flatten(),
            operation: operation.flatten(),
            object: object.flatten(),
            old_object: old_object.flatten(),
            object_bounds,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The object's text as found from the keys around it, next to the general read's.
    fn both(payload: &str) -> (Option<&str>, Option<&str>) {
        let read: Payload = Payload::parse(payload.as_bytes()).unwrap();
        let bounded = read.request.object_text(payload.as_bytes());
        (bounded, read.request.object().map(RawValue::get))
    }

    #[test]
    fn the_keys_around_the_object_bound_its_text() {
        for payload in [
            r#"{"request":{"kind":{"kind":"Pod"},"object":{"a":"}\",","b":[{}]},"operation":"CREATE"}}"#,
            "{ \"request\" : { \"object\" :\n\t{ \"a\" : [1, {\"b\": \"\\\"}\"}] }\r\n ,\n \"kind\" : {\"kind\":\"Pod\"} } }",
            r#"{"request":{"object":{},"kind":{"kind":"Pod"}},"settings":{}}"#,
        ] {
            let (bounded, general) = both(payload);
            assert!(bounded.is_some(), "{payload}");
            assert_eq!(bounded, general, "{payload}");
        }
    }

    #[test]
    fn an_object_the_keys_do_not_bound_is_not_guessed() {
        for payload in [
            // The last field: no key after it.
            r#"{"request":{"kind":{"kind":"Pod"},"object":{"a":1}},"settings":{}}"#,
            // A key written with escapes is not where the payload holds it.
            r#"{"request":{"obj\u0065ct":{"a":1},"kind":{"kind":"Pod"}}}"#,
            r#"{"request":{"object":{"a":1},"oper\u0061tion":"x","kind":{"kind":"Pod"}},"x":1}"#,
            r#"{"request":{"object":{"a":1},"kind\u0000":1,"kind":{"kind":"Pod"}}}"#,
            // No object.
            r#"{"request":{"object":null,"kind":{"kind":"Pod"}}}"#,
        ] {
            let (bounded, general) = both(payload);
            assert_eq!(bounded, None, "{payload}");
            // The general read still finds it, so pinning falls back to that.
            assert!(general.is_some() || payload.contains("null"), "{payload}");
        }
    }

    #[test]
    fn the_request_is_read_as_the_derive_would() {
        let error = |payload: &str| {
            Payload::<&RawValue>::parse(payload.as_bytes())
                .err()
                .unwrap()
        };
        assert!(error(r#"{"request":{"object":{}}}"#).contains("missing field `kind`"));
        assert!(
            error(r#"{"request":{"kind":{"kind":"Pod"},"object":{},"object":{}}}"#)
                .contains("duplicate field `object`")
        );
        assert!(
            error(r#"{"request":{"kind":{"kind":"Pod"},"operation":"A","operation":"B"}}"#)
                .contains("duplicate field `operation`")
        );
        let read: Payload = Payload::parse(
            br#"{"request":{"uid":"u","kind":{"kind":"Pod"},"subResource":null,"operation":"UPDATE","oldObject":{"b":2},"dryRun":false}}"#,
        )
        .unwrap();
        assert_eq!(read.request.kind.kind, "Pod");
        assert_eq!(read.request.sub_resource, None);
        assert_eq!(read.request.operation.as_deref(), Some("UPDATE"));
        assert!(read.request.object.is_none());
        assert_eq!(
            read.request.old_object().map(RawValue::get),
            Some(r#"{"b":2}"#)
        );
    }
}
