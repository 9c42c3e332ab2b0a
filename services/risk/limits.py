"""Every bound the risk service enforces, with its unit. Import-time asserts check how they relate."""

from __future__ import annotations

# --- Assess ---
AMOUNT_MINOR_MAX = 10**15
ID_LENGTH_MAX = 128
IP_ADDRESS_LENGTH_MAX = 64
# Assessment ids replayed within this window return the first decision. The ledger retries within its gate deadline
# (tens of ms) and keeps the decision on the transfer afterwards, so an hour is ample; memory is what bounds it
# (~250 bytes a key: 1,000 Assess/s for an hour is ~0.9 GB).
ASSESSMENT_IDEMPOTENCY_TTL_S = 3600

# --- Feature windows (bucketed sliding windows: a window covers the last N whole buckets) ---
WINDOW_1M_BUCKET_S = 10
WINDOW_1H_BUCKET_S = 300
WINDOW_24H_BUCKET_S = 3600
# Ring sizes: more slots than buckets per window, so the oldest slot in use is never overwritten.
WINDOW_1M_SLOTS = 8
WINDOW_1H_SLOTS = 14
WINDOW_24H_SLOTS = 26
DAY_S = 24 * 3600
# Per-entity feature keys live this long after the last write (dormancy needs long memory).
FEATURE_KEY_TTL_S = 400 * DAY_S
# Event dedup keys: longer than any realistic redelivery (claims after 60 s, a relay republishing after a crash),
# short enough that one key per posted transfer stays affordable.
EVENT_DEDUP_TTL_S = 6 * 3600
# The amount z-score needs this many earlier outflows before it means anything.
ZSCORE_HISTORY_MIN = 5

# --- Rules ---
RULES_DOCUMENT_BYTES_MAX = 256 * 1024
RULES_COUNT_MAX = 200
RULE_CONDITION_DEPTH_MAX = 6
RULE_CONDITIONS_PER_GROUP_MAX = 50
RULE_LIST_VALUES_MAX = 10_000
RULE_ID_LENGTH_MAX = 64
REASON_CODE_LENGTH_MAX = 64
SCORE_MAX = 100
# How long a replica trusts its cached rule set and lists without seeing the version key in Redis.
RULES_CACHE_TTL_S = 30.0
VERSION_KEY_TTL_S = DAY_S
COMMENT_LENGTH_MAX = 1000

# --- DryRun ---
DRY_RUN_ASSESSMENTS_MAX = 100_000
# Small pages: decoding snapshots is CPU work, and Assess calls run between pages.
DRY_RUN_PAGE_ROWS = 1_000
DRY_RUN_FLIPPED_SHOWN_MAX = 100

# --- Lists ---
LIST_VALUE_LENGTH_MAX = 128
LIST_REASON_LENGTH_MAX = 500
LIST_ENTRIES_CACHED_MAX = 100_000

# --- Assessment recorder (asynchronous batched INSERTs) ---
RECORDER_QUEUE_MAX = 10_000
RECORDER_BATCH_MAX = 500
RECORDER_FLUSH_INTERVAL_S = 0.05
RECORDER_RETRY_BACKOFF_MAX_S = 2.0

# --- Cases ---
CASE_NOTE_LENGTH_MAX = 2000
LEDGER_CALL_DEADLINE_S = 2.0
LEDGER_CALL_ATTEMPTS_MAX = 3

# --- Complaints ---
COMPLAINT_DESCRIPTION_LENGTH_MIN = 10
# Descriptions, notes, reasons and requests for information.
COMPLAINT_TEXT_LENGTH_MAX = 4000
COMPLAINT_ATTACHMENTS_MAX = 10
COMPLAINT_ATTACHMENT_REFERENCE_LENGTH_MAX = 256
# Notes kept on one complaint (the whole thread is returned by GetComplaint).
COMPLAINT_NOTES_MAX = 200
COMPLAINT_SLA_DAYS_MAX = 90
COMPLAINT_REPORT_PERIOD_MAX_S = 366 * DAY_S
# 9999-12-31T23:59:59Z: later instants do not fit a timestamp.
TIMESTAMP_S_MAX = 253_402_300_799
# The vault takes template values of at most 200 characters; longer messages are cut (the note keeps all of it).
NOTIFICATION_PARAM_LENGTH_MAX = 200
# Pending customer notifications handed to the vault per job round, and how often the job runs (it also refreshes
# the open/breached gauges).
COMPLAINT_NOTIFICATIONS_BATCH = 100
COMPLAINT_JOB_INTERVAL_S = 30.0
# A notification the vault keeps refusing is given up after this many attempts (visible in the table).
COMPLAINT_NOTIFICATION_ATTEMPTS_MAX = 20
CONTACTS_CALL_DEADLINE_S = 2.0

# --- Event consumer ---
CONSUMER_BATCH_MAX = 200
CONSUMER_BLOCK_MS = 1000
# Entries another consumer took but did not acknowledge for this long are claimed (it probably died).
CONSUMER_CLAIM_IDLE_MS = 60_000
CONSUMER_BACKOFF_MAX_S = 5.0
# An event that failed this many deliveries goes to the dead-letter stream instead of being retried forever.
CONSUMER_DELIVERIES_MAX = 5

# --- Devices (first seen, from the auth event stream) ---
# A device is "new" for this long after the principal was first seen on it (RISK_NEW_DEVICE_HOURS overrides).
NEW_DEVICE_HOURS_DEFAULT = 24
NEW_DEVICE_HOURS_MAX = 24 * 90
# A device hash holds its ring buckets plus one first-seen field per principal seen on it; past this many fields
# no further principal is recorded (an installation id shared by many principals is itself suspicious, and the
# hash stays bounded).
DEVICE_HASH_FIELDS_MAX = 128

# --- Online model ---
ANOMALY_MODELS_MAX = 1_000
ANOMALY_WARMUP_SAMPLES = 50

assert WINDOW_1M_SLOTS > 60 // WINDOW_1M_BUCKET_S
assert WINDOW_1H_SLOTS > 3600 // WINDOW_1H_BUCKET_S
assert WINDOW_24H_SLOTS > DAY_S // WINDOW_24H_BUCKET_S
assert DRY_RUN_FLIPPED_SHOWN_MAX <= DRY_RUN_ASSESSMENTS_MAX
assert DEVICE_HASH_FIELDS_MAX > WINDOW_1M_SLOTS + WINDOW_1H_SLOTS + WINDOW_24H_SLOTS
assert 0 < NEW_DEVICE_HOURS_DEFAULT <= NEW_DEVICE_HOURS_MAX
assert RECORDER_BATCH_MAX <= RECORDER_QUEUE_MAX
assert COMPLAINT_DESCRIPTION_LENGTH_MIN < COMPLAINT_TEXT_LENGTH_MAX
