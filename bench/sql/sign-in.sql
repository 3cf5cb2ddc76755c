-- POST /api/v1/auth/login: the user by email (across tenants, before the tenant is
-- known), then a new refresh token in the user's tenant. The Argon2id check between
-- them is no SQL, and is most of the endpoint's cost.
\set r random(1, 9223372036854775806)
BEGIN;
SELECT set_config('app.all_tenants', 'on', true);
SELECT "users"."id", "users"."tenant_id", "users"."email", "users"."username", "users"."password_hash", "users"."role", "users"."is_active", "users"."version", "users"."created_at", "users"."updated_at", "users"."deleted_at" FROM "users" WHERE "users"."email" = :email LIMIT 1;
COMMIT;
BEGIN;
SELECT set_config('app.tenant_id', :tenant, true);
INSERT INTO "refresh_tokens" ("id", "tenant_id", "user_id", "session_id", "token_hash", "expires_at", "created_at", "used_at", "revoked_at", "session_expires_at") VALUES (md5(:r::text)::uuid, :tenant, :user, md5(:r::text || 's')::uuid, md5(:r::text) || md5(:r::text || 'h'), now() + interval '14 days', now(), NULL, NULL, now() + interval '30 days');
COMMIT;
