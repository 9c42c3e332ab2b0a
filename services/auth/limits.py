"""Auth's bounds and defaults, as named constants with their units (defaults of the settings in config.py)."""

from __future__ import annotations

ACCESS_TOKEN_TTL_S_MIN = 300
ACCESS_TOKEN_TTL_S_MAX = 900
ACCESS_TOKEN_TTL_S_DEFAULT = 600
# A step-up token is only good for the kit's step-up freshness window (services.kit.tokens.STEP_UP_MAX_AGE_S).
STEP_UP_TOKEN_TTL_S = 300
SERVICE_TOKEN_TTL_S = 600

PASSWORD_LENGTH_MIN = 12
PASSWORD_LENGTH_MAX = 128
# argon2id floor (OWASP): 19 MiB, 2 passes, 1 lane.
ARGON2_MEMORY_KIB_MIN = 19 * 1024
ARGON2_TIME_COST_MIN = 2
ARGON2_PARALLELISM_MIN = 1

REFRESH_GRACE_S_DEFAULT = 30
MFA_CHALLENGE_TTL_S = 300
MFA_CHALLENGE_ATTEMPTS_MAX = 5
TOTP_ENROLMENT_TTL_S = 600
TOTP_STEP_S = 30
# Accepted clock drift of an authenticator: one step either side.
TOTP_DRIFT_STEPS = 1
RECOVERY_CODE_COUNT = 10
INVITATION_TTL_S = 7 * 24 * 3600

BRUTE_FORCE_DELAY_FROM_FAILURES = 5
BRUTE_FORCE_LOCK_AT_FAILURES = 10
BRUTE_FORCE_LOCK_S = 15 * 60
# Failures are forgotten this long after the last one.
BRUTE_FORCE_WINDOW_S = 15 * 60
BRUTE_FORCE_DELAY_S_BASE = 1
BRUTE_FORCE_DELAY_S_MAX = 60
# A source (an office NAT) carries many users: its thresholds are higher.
SOURCE_DELAY_FROM_FAILURES = 50
SOURCE_LOCK_AT_FAILURES = 100

SERVICE_ACCOUNT_SECRET_OVERLAP_S = 3600
SESSION_MAX_LIFETIME_S_MIN = 3600
SESSION_MAX_LIFETIME_S_MAX = 90 * 24 * 3600
SESSION_IDLE_TIMEOUT_S_MIN = 300
SESSION_IDLE_TIMEOUT_S_MAX = 30 * 24 * 3600
SESSION_MAX_LIFETIME_S_DEFAULT = 30 * 24 * 3600
SESSION_IDLE_TIMEOUT_S_DEFAULT = 14 * 24 * 3600

SLUG_LENGTH_MIN = 3
SLUG_LENGTH_MAX = 40
DISPLAY_NAME_LENGTH_MAX = 200
EMAIL_LENGTH_MAX = 254
USER_AGENT_LENGTH_MAX = 200
EXTERNAL_REFERENCE_LENGTH_MAX = 100
SCOPES_MAX = 100
# Trusted devices (issue 13).
DEVICES_PER_PRINCIPAL_MAX = 20
DEVICE_PUBLIC_KEY_BYTES_MAX = 512
DEVICE_SIGNATURE_BYTES_MAX = 256
DEVICE_TEXT_LENGTH_MAX = 100
DEVICE_RESOURCE_ID_LENGTH_MAX = 200
DEVICE_CHALLENGE_NONCE_BYTES = 32
# An Android Key Attestation chain is leaf + one to three intermediates + root, each about 1 KiB.
DEVICE_ATTESTATION_CERTIFICATES_MAX = 8
DEVICE_ATTESTATION_BYTES_MAX = 16_384
# "About a minute": long enough for a biometric prompt, short enough that a stolen challenge goes stale.
DEVICE_CHALLENGE_TTL_S = 60
# A device step-up approves one operation, so its token lives only as long as the call needs.
DEVICE_STEP_UP_TOKEN_TTL_S = 120
# Passkeys (issue 13).
PASSKEYS_PER_PRINCIPAL_MAX = 20
PASSKEY_CEREMONY_TTL_S = 300
PASSKEY_CHALLENGE_BYTES = 32
# WebAuthn credential ids are at most 1023 bytes: 1364 base64url characters.
PASSKEY_CREDENTIAL_ID_LENGTH_MAX = 1364
PASSKEY_CREDENTIAL_JSON_LENGTH_MAX = 16_384
# Expired device challenges and passkey ceremonies are kept this long (a late replay still finds "used/expired"
# rather than "unknown" — both are refused alike), then swept by later inserts.
EXPIRED_CHALLENGE_KEEP_S = 3600
# How often a replica re-reads which signing key is active (another replica may have rotated).
ACTIVE_KEY_CACHE_S = 5.0

assert ACCESS_TOKEN_TTL_S_MIN <= ACCESS_TOKEN_TTL_S_DEFAULT <= ACCESS_TOKEN_TTL_S_MAX
assert DEVICE_STEP_UP_TOKEN_TTL_S <= STEP_UP_TOKEN_TTL_S
assert BRUTE_FORCE_DELAY_FROM_FAILURES < BRUTE_FORCE_LOCK_AT_FAILURES
assert SOURCE_DELAY_FROM_FAILURES < SOURCE_LOCK_AT_FAILURES
assert SESSION_MAX_LIFETIME_S_MIN <= SESSION_MAX_LIFETIME_S_DEFAULT <= SESSION_MAX_LIFETIME_S_MAX
assert SESSION_IDLE_TIMEOUT_S_MIN <= SESSION_IDLE_TIMEOUT_S_DEFAULT <= SESSION_IDLE_TIMEOUT_S_MAX
