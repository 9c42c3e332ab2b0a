-- Retention (issue 14): risk's retention job (services/risk/store_retention.py) deletes records past their retention
-- in bounded batches; these indexes let each batch find its oldest rows across tenants without scanning the table.

CREATE INDEX assessments_by_assessed_at ON assessments (assessed_at);
CREATE INDEX review_cases_by_closed_at ON review_cases (closed_at) WHERE closed_at IS NOT NULL;
CREATE INDEX aml_reports_by_created_at ON aml_reports (created_at);
CREATE INDEX audit_events_by_occurred_at ON audit_events (occurred_at);
