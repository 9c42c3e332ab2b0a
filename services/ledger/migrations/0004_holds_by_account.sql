-- GetBalanceAt's pending figures at a past instant: the holds of an account open at that instant (created at or
-- before it, finalized after it or not yet). Holds are the transfers made with pending = true; these partial indexes
-- hold only them, so the lookup costs O(the account's holds), not O(its transfers).
CREATE INDEX transfers_holds_by_debit ON transfers (organization_id, debit_account_id, created_at) WHERE pending;
CREATE INDEX transfers_holds_by_credit ON transfers (organization_id, credit_account_id, created_at) WHERE pending;
