"""Every bound the ledger enforces, with its unit. Import-time asserts check how they relate."""

from __future__ import annotations

# Largest amount of one transfer: 2^53 - 1 keeps every amount exact in JSON clients too (int64 on the wire).
TRANSFER_AMOUNT_MINOR_MAX = 2**53 - 1
# Largest balance figure an account may reach (Postgres bigint).
BALANCE_MINOR_MAX = 2**63 - 1
HOLD_TIMEOUT_S_DEFAULT = 24 * 3600
HOLD_TIMEOUT_S_MAX = 30 * 24 * 3600
REFERENCE_CHARS_MAX = 140
LABEL_CHARS_MAX = 100
REASON_CHARS_MAX = 500
ASSET_DISPLAY_NAME_CHARS_MAX = 100
ASSET_SCALE_MAX = 18
BATCH_TRANSFERS_MAX = 1_000

# Group commit: how long the first transfer of a group waits for company, and how many transfers one transaction
# takes at most.
GROUP_COMMIT_WINDOW_S = 0.001
GROUP_COMMIT_SIZE_MAX = 256
# Groups committing at once per process. One: a group of a tenant ends on the tenant's chain head anyway, and a
# second group mostly waits on the first one's row locks (measured: about a fifth more transfers/s with 1 than 2).
GROUP_COMMIT_CONCURRENCY = 1
# A group that hits a unique violation (two replicas racing on one transfer id) is retried this often.
GROUP_COMMIT_ATTEMPTS_MAX = 3

# Background jobs.
EXPIRY_SWEEP_INTERVAL_S = 1.0
EXPIRY_SWEEP_BATCH_MAX = 200
# The hold-expiry backlog gauge counts at most this many (enough to page; bounded work per sweep).
HOLD_BACKLOG_COUNT_MAX = 100_000
SEAL_INTERVAL_S = 2.0
SEAL_BLOCK_ENTRIES_MAX = 1_024
INVARIANT_CHECK_INTERVAL_S = 60.0
VERIFY_CHAIN_ENTRIES_MAX = 100_000

# Compliance exports: configured pseudonym key names (LEDGER_EXPORT_KEY_NAMES) and their length.
EXPORT_KEY_NAMES_MAX = 32
EXPORT_KEY_NAME_CHARS_MAX = 40

# FX.
FX_QUOTE_TTL_S_DEFAULT = 30
FX_QUOTE_TTL_S_MAX = 300
FX_RATE_CHARS_MAX = 40

assert HOLD_TIMEOUT_S_DEFAULT <= HOLD_TIMEOUT_S_MAX
assert TRANSFER_AMOUNT_MINOR_MAX < BALANCE_MINOR_MAX
assert 0 < GROUP_COMMIT_SIZE_MAX <= BATCH_TRANSFERS_MAX
assert FX_QUOTE_TTL_S_DEFAULT <= FX_QUOTE_TTL_S_MAX

# Invoices.
INVOICE_LINE_ITEMS_MAX = 100
INVOICE_LINE_DESCRIPTION_CHARS_MAX = 200
# How far ahead an invoice may fall due.
INVOICE_DUE_S_MAX = 366 * 24 * 3600

# Maker-checker.
APPROVAL_RULES_MAX = 100
# How long a process reuses a tenant's approval policy before reading it again. SetApprovalPolicy refreshes its own
# process at once; other replicas follow within this time.
APPROVAL_POLICY_CACHE_S = 1.0
APPROVAL_POLICY_CACHE_TENANTS_MAX = 10_000
NOTE_CHARS_MAX = 500
APPROVAL_EXPIRY_SWEEP_INTERVAL_S = 1.0

assert APPROVAL_POLICY_CACHE_S <= 5.0, "a policy change must reach every replica quickly"

# Loyalty points.
EARN_RULES_MAX = 100

# Cards.
CARD_LABEL_CHARS_MAX = 100
CARD_VAULT_DEADLINE_S = 2.0
