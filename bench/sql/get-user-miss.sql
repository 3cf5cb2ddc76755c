-- GET /api/v1/users/{id} without the cache: the caller, then the user, each read in a
-- transaction that names the tenant (database::Scope).
BEGIN;
SELECT set_config('app.tenant_id', :tenant, true);
SELECT "users"."id", "users"."tenant_id", "users"."email", "users"."username", "users"."password_hash", "users"."role", "users"."is_active", "users"."version", "users"."created_at", "users"."updated_at", "users"."deleted_at" FROM "users" WHERE "users"."id" = :user AND "users"."tenant_id" = :tenant LIMIT 1;
COMMIT;
BEGIN;
SELECT set_config('app.tenant_id', :tenant, true);
SELECT "users"."id", "users"."tenant_id", "users"."email", "users"."username", "users"."password_hash", "users"."role", "users"."is_active", "users"."version", "users"."created_at", "users"."updated_at", "users"."deleted_at" FROM "users" WHERE "users"."id" = :user AND "users"."tenant_id" = :tenant LIMIT 1;
COMMIT;
