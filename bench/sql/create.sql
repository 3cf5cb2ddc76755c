-- POST /api/v1/tasks with two checklist items (the caller from the cache): the task,
-- its checklist and its event, in one transaction. The ids the service makes in
-- memory are made here from a random number, without a round trip.
\set r random(1, 9223372036854775806)
BEGIN;
SELECT set_config('app.tenant_id', :tenant, true);
INSERT INTO "tasks" ("id", "tenant_id", "title", "description", "status", "priority", "due_date", "assignee_id", "creator_id", "version", "created_at", "updated_at", "completed_at", "deleted_at") VALUES (md5(:r::text)::uuid, :tenant, 'Benchmark', '', 'todo', 1, NULL, NULL, :user, 0, now(), now(), NULL, NULL);
INSERT INTO "task_checklist_items" ("id", "task_id", "tenant_id", "position", "text", "done") VALUES (md5(:r::text || 'a')::uuid, md5(:r::text)::uuid, :tenant, 0, 'one', false), (md5(:r::text || 'b')::uuid, md5(:r::text)::uuid, :tenant, 1, 'two', false);
INSERT INTO "outbox" ("id", "tenant_id", "aggregate_type", "aggregate_id", "event_type", "payload", "occurred_at", "published_at", "aggregate_version") VALUES (md5(:r::text || 'e')::uuid, :tenant, 'task', md5(:r::text)::uuid, 'task.created', repeat('x', 700), now(), NULL, 0);
COMMIT;
