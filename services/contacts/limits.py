"""Every bound of the contacts vault, with its unit."""

from __future__ import annotations

RETENTION_S_MAX = 10 * 366 * 24 * 3600
CONSENT_REFERENCE_CHARS_MAX = 200
JUSTIFICATION_CHARS_MIN = 10
JUSTIFICATION_CHARS_MAX = 500
ERASURE_REASON_CHARS_MAX = 500
NOTIFICATION_PARAM_CHARS_MAX = 200
NOTIFICATION_PARAMS_MAX = 10
ALERT_THRESHOLDS_MAX = 20
DISCOVERABLE_ACCOUNTS_MAX = 20
PHONE_INPUT_CHARS_MAX = 64

# ResolvePhone: fixed one-minute windows in Redis, per caller (hashed) and per tenant.
RESOLVE_WINDOW_S = 60
RESOLVE_PER_CALLER_PER_WINDOW_DEFAULT = 120
RESOLVE_PER_TENANT_PER_WINDOW_DEFAULT = 6_000
# Concurrent ResolvePhone calls of one process share one Redis script call (rate limits) and one database statement
# (micro-batches): at most this many calls per batch and batches at a time; an idle batcher waits this long for
# company (0: the calls that arrived in the same event-loop turn).
RESOLVE_BATCH_SIZE_MAX = 128
RESOLVE_BATCH_CONCURRENCY = 1
RESOLVE_BATCH_WINDOW_S = 0.0

# Background jobs: batch sizes bound each transaction, intervals bound the idle polling.
KEY_JOB_BATCH_SIZE_DEFAULT = 200
KEY_JOB_POLL_INTERVAL_S = 1.0
ACCESS_LOG_CHAIN_BATCH_MAX = 1_000
ACCESS_LOG_CHAIN_INTERVAL_S = 0.5
VERIFY_ACCESS_LOG_ENTRIES_MAX = 100_000

# Key versions: CONTACTS_KEK is version 1, CONTACTS_KEK_V2 .. _V<max> further versions (same for the blind index).
KEY_VERSION_MAX = 16
KEY_BYTES = 32

CARD_VALIDITY_MONTHS_DEFAULT = 36
CARD_VALIDITY_MONTHS_MAX = 120
CARD_NUMBER_LENGTH_GENERATED = 16
CARD_TEST_BIN_DEFAULT = "424242"

assert JUSTIFICATION_CHARS_MIN <= JUSTIFICATION_CHARS_MAX
assert CARD_VALIDITY_MONTHS_DEFAULT <= CARD_VALIDITY_MONTHS_MAX
assert RESOLVE_PER_CALLER_PER_WINDOW_DEFAULT <= RESOLVE_PER_TENANT_PER_WINDOW_DEFAULT
