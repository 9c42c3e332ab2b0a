-- Expired passkey ceremonies are swept a few at a time by every new ceremony (as device challenges are): the sweep
-- finds them by expiry.
CREATE INDEX passkey_ceremonies_by_expiry ON passkey_ceremonies (expires_at);
