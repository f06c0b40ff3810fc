-- Decisions made through /api/decide have no task, and every one of them
-- was an entry in this index. Only Gate requests need it: index those.
DROP INDEX decisions_task;
CREATE INDEX decisions_task ON decisions (task_id, id) WHERE task_id IS NOT NULL;
