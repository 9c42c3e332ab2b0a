-- Baseline of the risk database: marks the start of its schema history in schema_migrations (created by the kit's
-- runner). The service's own tables arrive with migration 0002 in the risk service issue.
SELECT 1;
