//! sea-orm entities, one per table, in the compact format `sea-orm-cli generate entity`
//! writes. Keep them that way (regenerate rather than hand-edit): mapping to and from the
//! domain lives in `mapping`, never here.

pub mod refresh_tokens;
pub mod tenants;
pub mod users;
