-- GET /api/v1/tasks/{id} without the cache: the caller, then the task with its
-- checklist in one statement.
BEGIN;
SELECT set_config('app.tenant_id', :tenant, true);
SELECT "users"."id", "users"."tenant_id", "users"."email", "users"."username", "users"."password_hash", "users"."role", "users"."is_active", "users"."version", "users"."created_at", "users"."updated_at", "users"."deleted_at" FROM "users" WHERE "users"."id" = :user AND "users"."tenant_id" = :tenant LIMIT 1;
COMMIT;
BEGIN;
SELECT set_config('app.tenant_id', :tenant, true);
SELECT "tasks"."id", "tasks"."tenant_id", "tasks"."title", "tasks"."description", "tasks"."status", "tasks"."priority", "tasks"."due_date", "tasks"."assignee_id", "tasks"."creator_id", "tasks"."version", "tasks"."created_at", "tasks"."updated_at", "tasks"."completed_at", "tasks"."deleted_at", (SELECT COALESCE(json_agg(json_build_object('id', i.id, 'position', i.position, 'text', i.text, 'done', i.done)), '[]')::text FROM task_checklist_items i WHERE i.tenant_id = tasks.tenant_id AND i.task_id = tasks.id) AS "checklist" FROM "tasks" WHERE "tasks"."id" = :task AND "tasks"."tenant_id" = :tenant LIMIT 1;
COMMIT;
