//! Identifier newtypes, so a `UserId` can never be passed where a `TenantId` is expected.

/// Declares a UUID-backed identifier type. Ids are made outside the domain (an id
/// generator port hands out `UUIDv7`s, whose time order makes keyset pagination cheap).
/// An id is stored and sent as its UUID, and knows nothing else of serialisation.
macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord,
            serde::Serialize, serde::Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(uuid::Uuid);

        impl $name {
            #[must_use]
            pub const fn from_uuid(id: uuid::Uuid) -> Self {
                Self(id)
            }

            #[must_use]
            pub const fn as_uuid(self) -> uuid::Uuid {
                self.0
            }
        }

        impl $crate::aggregate::AggregateId for $name {
            fn from_uuid(id: uuid::Uuid) -> Self {
                Self(id)
            }

            fn as_uuid(self) -> uuid::Uuid {
                self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

pub(crate) use id_type;

#[cfg(test)]
mod tests {
    id_type!(SampleId);

    #[test]
    fn an_id_round_trips_through_its_uuid_and_displays_as_it() {
        let uuid = uuid::Uuid::now_v7();
        let id = SampleId::from_uuid(uuid);
        assert_eq!(id.as_uuid(), uuid);
        assert_eq!(id.to_string(), uuid.to_string());
    }
}
