-- PATCH /api/v1/tasks/{id} with If-Match (the caller from the cache): the task locked
-- with its checklist, the update, the checklist read again to see whether it changed,
-- and the event. A task of the tenant's at random, as the endpoint's run takes them.
\set n random(1, :tasks)
BEGIN;
SELECT set_config('app.tenant_id', :tenant, true);
SELECT "tasks"."id", "tasks"."tenant_id", "tasks"."title", "tasks"."description", "tasks"."status", "tasks"."priority", "tasks"."due_date", "tasks"."assignee_id", "tasks"."creator_id", "tasks"."version", "tasks"."created_at", "tasks"."updated_at", "tasks"."completed_at", "tasks"."deleted_at" FROM "tasks" WHERE "tasks"."id" = (SELECT id FROM bench_tasks WHERE n = :n) AND "tasks"."tenant_id" = :tenant LIMIT 1 FOR NO KEY UPDATE;
SELECT "task_checklist_items"."id", "task_checklist_items"."task_id", "task_checklist_items"."tenant_id", "task_checklist_items"."position", "task_checklist_items"."text", "task_checklist_items"."done" FROM "task_checklist_items" WHERE "task_checklist_items"."tenant_id" = :tenant AND "task_checklist_items"."task_id" IN ((SELECT id FROM bench_tasks WHERE n = :n)) ORDER BY "task_checklist_items"."task_id" ASC, "task_checklist_items"."position" ASC;
UPDATE "tasks" SET "title" = 'Benchmarked', "updated_at" = now(), "version" = "version" + 1 WHERE "tasks"."id" = (SELECT id FROM bench_tasks WHERE n = :n) AND "tasks"."tenant_id" = :tenant;
SELECT "task_checklist_items"."id", "task_checklist_items"."task_id", "task_checklist_items"."tenant_id", "task_checklist_items"."position", "task_checklist_items"."text", "task_checklist_items"."done" FROM "task_checklist_items" WHERE "task_checklist_items"."tenant_id" = :tenant AND "task_checklist_items"."task_id" IN ((SELECT id FROM bench_tasks WHERE n = :n)) ORDER BY "task_checklist_items"."task_id" ASC, "task_checklist_items"."position" ASC;
INSERT INTO "outbox" ("id", "tenant_id", "aggregate_type", "aggregate_id", "event_type", "payload", "occurred_at", "published_at", "aggregate_version") VALUES (gen_random_uuid(), :tenant, 'task', (SELECT id FROM bench_tasks WHERE n = :n), 'task.edited', repeat('x', 500), now(), NULL, 1);
COMMIT;
