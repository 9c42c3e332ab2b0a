-- Retention (issue 14): the ledger's retention job (services/ledger/store_retention.py) deletes request records and
-- unused FX quotes past their retention in bounded batches; these indexes let each batch find its oldest rows across
-- tenants without scanning the table. Financial records are never purged (docs/retention.md).

CREATE INDEX account_requests_by_time ON account_requests (created_at);
CREATE INDEX transfer_batches_by_time ON transfer_batches (created_at);
CREATE INDEX fx_quotes_unused_by_expiry ON fx_quotes (expires_at) WHERE exchange_id IS NULL;
