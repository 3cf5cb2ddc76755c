-- GET /api/v1/tasks?limit=20 (the caller from the cache): a page and its checklists in
-- one statement.
BEGIN;
SELECT set_config('app.tenant_id', :tenant, true);
SELECT "tasks"."id", "tasks"."tenant_id", "tasks"."title", "tasks"."description", "tasks"."status", "tasks"."priority", "tasks"."due_date", "tasks"."assignee_id", "tasks"."creator_id", "tasks"."version", "tasks"."created_at", "tasks"."updated_at", "tasks"."completed_at", "tasks"."deleted_at", (SELECT COALESCE(json_agg(json_build_object('id', i.id, 'position', i.position, 'text', i.text, 'done', i.done)), '[]')::text FROM task_checklist_items i WHERE i.tenant_id = tasks.tenant_id AND i.task_id = tasks.id) AS "checklist" FROM "tasks" WHERE "tasks"."tenant_id" = :tenant AND "tasks"."deleted_at" IS NULL ORDER BY "tasks"."created_at" DESC, "tasks"."id" DESC LIMIT 21;
COMMIT;
