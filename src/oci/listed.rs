//! An image index's entries read in place: strings borrowed from the
//! index's bytes wherever JSON allows (no escapes), rather than copied.
//!
//! Selection reads every entry of an index to judge it, and an index can
//! list thousands. Copying each entry's media type, digest and platform
//! into fresh strings, only to keep a few of them, was half the cost of a
//! selection; judging borrowed entries and copying what the report keeps
//! halves it. [`Descriptor`] stays the owned form everything else uses.

use super::artifact::Descriptor;
use crate::platform::Platform;
use serde::Deserialize;
use std::borrow::Cow;
use std::collections::BTreeMap;

/// An image index, as far as walking its entries needs. Like
/// [`super::layout::Index`], it requires `schemaVersion` and `manifests`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListedIndex<'a> {
    /// Always 2 (required, as in the owned form; not checked further).
    #[allow(dead_code)]
    schema_version: u32,
    /// The entries.
    #[serde(borrow)]
    pub manifests: Vec<Listed<'a>>,
}

/// One entry of an index: a [`Descriptor`] that borrows.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Listed<'a> {
    /// The media type of the referenced content.
    #[serde(borrow)]
    pub media_type: Cow<'a, str>,
    /// `sha256:<hex>` of the content.
    #[serde(borrow)]
    pub digest: Cow<'a, str>,
    /// The size of the content in bytes.
    pub size: u64,
    /// The platform.
    #[serde(borrow, default)]
    pub platform: Option<ListedPlatform<'a>>,
    /// Annotations (rare on entries; owned).
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

/// A [`Platform`] that borrows.
#[derive(Debug, Clone, Deserialize)]
pub struct ListedPlatform<'a> {
    /// The CPU architecture (`wasm` for wasm builds).
    #[serde(borrow)]
    pub architecture: Cow<'a, str>,
    /// The OS (`wasip1`, `wasip2`, `wasip3` for wasm builds).
    #[serde(borrow)]
    pub os: Cow<'a, str>,
    /// The OS version.
    #[serde(rename = "os.version", borrow, default)]
    pub os_version: Option<Cow<'a, str>>,
    /// The required features (serde copies elements of a list: owned).
    #[serde(rename = "os.features", default)]
    pub os_features: Vec<String>,
    /// The CPU variant.
    #[serde(borrow, default)]
    pub variant: Option<Cow<'a, str>>,
}

impl ListedPlatform<'_> {
    /// The owned platform.
    pub fn to_platform(&self) -> Platform {
        Platform {
            architecture: self.architecture.to_string(),
            os: self.os.to_string(),
            os_version: self.os_version.as_deref().map(str::to_string),
            os_features: self.os_features.clone(),
            variant: self.variant.as_deref().map(str::to_string),
        }
    }

    /// The owned platform, moving what is already owned.
    pub fn into_platform(self) -> Platform {
        Platform {
            architecture: self.architecture.into_owned(),
            os: self.os.into_owned(),
            os_version: self.os_version.map(Cow::into_owned),
            os_features: self.os_features,
            variant: self.variant.map(Cow::into_owned),
        }
    }
}

impl Listed<'_> {
    /// The owned descriptor.
    pub fn into_descriptor(self) -> Descriptor {
        Descriptor {
            media_type: self.media_type.into_owned(),
            digest: self.digest.into_owned(),
            size: self.size,
            platform: self.platform.map(ListedPlatform::into_platform),
            annotations: self.annotations,
        }
    }

    /// The same entry owning its strings, to outlive the bytes it was read from.
    pub fn into_static(self) -> Listed<'static> {
        let own = |c: Cow<'_, str>| Cow::Owned(c.into_owned());
        Listed {
            media_type: own(self.media_type),
            digest: own(self.digest),
            size: self.size,
            platform: self.platform.map(|p| ListedPlatform {
                architecture: own(p.architecture),
                os: own(p.os),
                os_version: p.os_version.map(own),
                os_features: p.os_features,
                variant: p.variant.map(own),
            }),
            annotations: self.annotations,
        }
    }
}

impl From<&Descriptor> for Listed<'static> {
    fn from(d: &Descriptor) -> Self {
        Listed {
            media_type: Cow::Owned(d.media_type.clone()),
            digest: Cow::Owned(d.digest.clone()),
            size: d.size,
            platform: d.platform.as_ref().map(|p| ListedPlatform {
                architecture: Cow::Owned(p.architecture.clone()),
                os: Cow::Owned(p.os.clone()),
                os_version: p.os_version.clone().map(Cow::Owned),
                os_features: p.os_features.clone(),
                variant: p.variant.clone().map(Cow::Owned),
            }),
            annotations: d.annotations.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::layout::Index;

    /// Every index the owned form reads, the listed form reads the same.
    #[test]
    fn reads_what_the_owned_form_reads() {
        let json = br#"{"schemaVersion":2,"manifests":[
            {"mediaType":"application/vnd.oci.image.manifest.v1+json",
             "digest":"sha256:0000000000000000000000000000000000000000000000000000000000000001",
             "size":7,
             "platform":{"architecture":"wasm","os":"wasip2","os.features":["wasi:cli/command@0.2.0"]},
             "annotations":{"a":"b"}},
            {"mediaType":"application/vnd.oci.image.manifest.v1+json",
             "digest":"sha256:0000000000000000000000000000000000000000000000000000000000000002",
             "size":8,
             "platform":{"architecture":"arm64","os":"linux","variant":"v\u0038","os.version":"1"}},
            {"mediaType":"text/plain","digest":"sha256:x","size":0}
        ]}"#;
        let owned: Index = serde_json::from_slice(json).unwrap();
        let listed: ListedIndex = serde_json::from_slice(json).unwrap();
        let converted: Vec<Descriptor> = listed
            .manifests
            .into_iter()
            .map(|l| l.into_static().into_descriptor())
            .collect();
        assert_eq!(converted, owned.manifests);
        // Plain strings are borrowed; an escaped one can't be.
        let listed: ListedIndex = serde_json::from_slice(json).unwrap();
        assert!(matches!(listed.manifests[0].digest, Cow::Borrowed(_)));
        let p = listed.manifests[1].platform.as_ref().unwrap();
        assert!(matches!(p.variant, Some(Cow::Owned(_))));
        assert_eq!(
            p.to_platform(),
            owned.manifests[1].platform.clone().unwrap()
        );
        // What the owned form refuses, so does this one.
        for bad in [
            &br#"{"manifests":[]}"#[..],
            br#"{"schemaVersion":2}"#,
            br#"{"schemaVersion":2,"manifests":[{"digest":"sha256:x","size":1}]}"#,
        ] {
            assert!(serde_json::from_slice::<Index>(bad).is_err());
            assert!(serde_json::from_slice::<ListedIndex>(bad).is_err());
        }
    }
}
