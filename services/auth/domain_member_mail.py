"""Security notices mailed to tenant members (staff), pure: which auth facts concern a member, the notice each one
makes, the id a notice is sent at most once under, and its fixed text.

Customers are told by the vault's SMS alerts (contacts), never here. A notice's text is fixed in code: it carries a
time, a platform name or a count, never a secret, an address, a device key or who the member is — the recipient
appears only in the sink's ``to`` field.

An admin's reset revokes every device (one ``DeviceRevoked`` each) and removes every passkey (one ``MfaChanged``
each) at one instant; all those events make one notice, whose id derives from the member and that instant, so a
reset mails the member once however many devices it revoked. Every other notice's id is its event's id.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum

# Namespace of the notice ids derived for admin resets (uuid5): fixed forever, or a replayed reset mails again.
RESET_NOTICE_NAMESPACE = uuid.UUID("6f1d2c4e-8a53-4c6b-9f0e-2b7d1a9c3e51")
SIGN_OFF = "This is an automatic security notice from your wallet's sign-in service; do not reply to it."
PLATFORM_UNKNOWN = "an unregistered device"


class NoticeKind(Enum):
    DEVICES_RESET = "devices_reset"
    NEW_DEVICE_SIGN_IN = "new_device_sign_in"
    LOCKED_OUT = "locked_out"


@dataclass(frozen=True, slots=True)
class DevicesReset:
    """A device revoked or a passkey removed by an administrator's ResetMemberDevices."""

    organization_id: str
    principal_id: str
    # The reset's instant, shared by all its events (nanoseconds since the epoch, as the envelope carries it).
    occurred_at_ns: int


@dataclass(frozen=True, slots=True)
class NewDeviceSignIn:
    event_id: uuid.UUID
    principal_id: str
    # Display name of the platform ("iOS"), or None when the device is not registered.
    platform_name: str | None
    occurred_at: datetime


@dataclass(frozen=True, slots=True)
class LockedOut:
    event_id: uuid.UUID
    principal_id: str
    locked_until: datetime
    failures: int


SecurityFact = DevicesReset | NewDeviceSignIn | LockedOut


@dataclass(frozen=True, slots=True)
class Notice:
    notice_id: uuid.UUID
    kind: NoticeKind
    subject: str
    body: str


def notice_id(fact: SecurityFact) -> uuid.UUID:
    """The id a notice is sent at most once under (see the module docstring)."""
    if isinstance(fact, DevicesReset):
        assert fact.occurred_at_ns > 0
        name = f"devices-reset:{fact.organization_id}:{fact.principal_id}:{fact.occurred_at_ns}"
        return uuid.uuid5(RESET_NOTICE_NAMESPACE, name)
    return fact.event_id


def _minute(moment: datetime) -> str:
    assert moment.tzinfo is not None, "notice times are aware datetimes"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def notice_for(fact: SecurityFact) -> Notice:
    """The notice a member receives for ``fact``."""
    if isinstance(fact, DevicesReset):
        reset_at = datetime.fromtimestamp(fact.occurred_at_ns / 1e9, UTC)
        return Notice(
            notice_id(fact),
            NoticeKind.DEVICES_RESET,
            "Your devices and passkeys were reset",
            f"An administrator of your organization reset your trusted devices and passkeys at {_minute(reset_at)}. "
            "The sessions opened from them were signed out. Sign in with your password and register your device "
            "again. If you did not ask for this, contact your organization's administrators.\n\n" + SIGN_OFF,
        )
    if isinstance(fact, NewDeviceSignIn):
        platform = fact.platform_name or PLATFORM_UNKNOWN
        return Notice(
            notice_id(fact),
            NoticeKind.NEW_DEVICE_SIGN_IN,
            "New sign-in to your account",
            f"Your account was signed in from a new device ({platform}) at {_minute(fact.occurred_at)}. "
            "If this was not you, change your password now and tell your organization's administrators.\n\n"
            + SIGN_OFF,
        )
    assert fact.failures >= 0
    return Notice(
        notice_id(fact),
        NoticeKind.LOCKED_OUT,
        "Sign-in to your account is locked",
        f"After {fact.failures} failed sign-in attempts, sign-in to your account is locked until "
        f"{_minute(fact.locked_until)}. If these attempts were not yours, tell your organization's administrators."
        "\n\n" + SIGN_OFF,
    )
