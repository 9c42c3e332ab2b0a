-- A card's day is derived from its payments (captured part + open authorizations of that UTC day), never kept as a
-- counter: a counter missed the holds the expiry sweeper or VoidPendingTransfer finalized. The counter columns go;
-- this index makes the derivation O(the card's payments that day).
ALTER TABLE cards DROP COLUMN spent_day, DROP COLUMN spent_minor;
CREATE INDEX card_payments_by_card_day ON card_payments (organization_id, card_id, authorized_day);
