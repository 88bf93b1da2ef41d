-- "Everything that happened to event 5": the log filtered by the changed resource's id (and
-- usually its type), newest first, without reading the whole log. Built inside the migration's
-- transaction: on a long log, audit's inserts wait for it and its consumer catches up after.
create index activities_resource on activities (resource_id, type, occurred_at);
