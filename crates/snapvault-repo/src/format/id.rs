//! Distinct 32-byte id types, so that a pack id can never be passed where a blob id is meant.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::RepoError;

/// A raw 32-byte identifier (a BLAKE3 output or random bytes).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Id(pub [u8; 32]);

impl Id {
    pub const LEN: usize = 32;

    pub fn random() -> Self {
        let mut b = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut b);
        Id(b)
    }

    /// Plain (unkeyed) BLAKE3 of `data`: the name of packs, index and snapshot files.
    pub fn hash_of(data: &[u8]) -> Self {
        Id(*blake3::hash(data).as_bytes())
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn short(&self) -> String {
        hex::encode(&self.0[..4])
    }

    pub fn from_slice(b: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(b).ok().map(Id)
    }
}

impl FromStr for Id {
    type Err = RepoError;
    fn from_str(s: &str) -> Result<Self, RepoError> {
        let mut b = [0u8; 32];
        hex::decode_to_slice(s, &mut b).map_err(|_| RepoError::NotAnId {
            text: s.to_string(),
        })?;
        Ok(Id(b))
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.short())
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl Serialize for Id {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <&str>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

macro_rules! typed_id {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Id);

        impl $name {
            pub fn to_hex(&self) -> String { self.0.to_hex() }
            pub fn short(&self) -> String { self.0.short() }
            pub fn as_bytes(&self) -> &[u8; 32] { &self.0 .0 }
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.0.short())
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { fmt::Display::fmt(&self.0, f) }
        }
        impl FromStr for $name {
            type Err = RepoError;
            fn from_str(s: &str) -> Result<Self, RepoError> { Ok($name(s.parse()?)) }
        }
    };
}

typed_id!(
    /// Id of a blob: keyed BLAKE3 of its plaintext (plain BLAKE3 in unencrypted repositories).
    BlobId
);
typed_id!(
    /// Name of a pack file: plain BLAKE3 of the whole pack as stored.
    PackId
);
typed_id!(
    /// Name of a snapshot file: plain BLAKE3 of the file as stored.
    SnapshotId
);
typed_id!(
    /// Name of an index file: plain BLAKE3 of the file as stored.
    IndexId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let id = Id::random();
        let back: Id = id.to_hex().parse().unwrap();
        assert_eq!(id, back);
        assert!("xyz".parse::<Id>().is_err());
        assert!("00".parse::<Id>().is_err());
    }

    #[test]
    fn json_round_trip() {
        let id = BlobId(Id::random());
        let s = serde_json::to_string(&id).unwrap();
        assert_eq!(s.len(), 66);
        let back: BlobId = serde_json::from_str(&s).unwrap();
        assert_eq!(id, back);
    }
}
