//! Typed ids for the values bound into associated data and row encodings, so that one
//! kind of id cannot be passed where another is bound. Each holds the database id as
//! stored and encodes exactly as that `i64` does.

use std::fmt;

macro_rules! ids {
    ($($(#[$doc:meta])* $name:ident;)*) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl From<$name> for i64 {
            fn from(id: $name) -> i64 {
                id.0
            }
        }
    )*};
}

ids! {
    /// A user's id (`users.id`; the owner of keys, records and identities).
    UserId;
    /// A named key's id (`keys.id`).
    KeyId;
    /// A version number of a named key (1, 2, ...).
    KeyVersion;
    /// A record's id (`records.id`).
    RecordId;
    /// A password identity's id (`password_identities.id`).
    IdentityId;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_show_and_convert_as_the_stored_integer() {
        assert_eq!(UserId(7).to_string(), "7");
        assert_eq!(format!("{:>3}", KeyVersion(2)), "  2");
        assert_eq!(i64::from(RecordId(-1)), -1);
        assert!(KeyId(1) < KeyId(2));
    }
}
