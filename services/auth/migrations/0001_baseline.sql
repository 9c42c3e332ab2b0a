-- Baseline of the auth database: marks the start of its schema history in schema_migrations (created by the kit's
-- runner). The service's own tables arrive with migration 0002 in the auth service issue.
SELECT 1;
