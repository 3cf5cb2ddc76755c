//! sea-orm entities, one per table, in the compact format `sea-orm-cli generate entity`
//! writes. Keep them that way (regenerate rather than hand-edit): mapping to and from the
//! domain lives in each aggregate's `Persisted` implementation, never here.

pub mod idempotency_keys;
pub mod outbox;
pub mod refresh_tokens;
pub mod task_checklist_items;
pub mod tasks;
pub mod tenants;
pub mod users;
