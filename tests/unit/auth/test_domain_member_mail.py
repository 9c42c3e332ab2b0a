"""Member security notices: which fact makes which notice, the id it is sent once under, and its fixed text."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from services.auth.domain_member_mail import (
    PLATFORM_UNKNOWN,
    SIGN_OFF,
    DevicesReset,
    LockedOut,
    NewDeviceSignIn,
    NoticeKind,
    notice_for,
    notice_id,
)

ORGANIZATION = "0192f0aa-0000-7000-8000-000000000001"
MEMBER = "0192f0aa-0000-7000-8000-000000000002"
OTHER_MEMBER = "0192f0aa-0000-7000-8000-000000000003"
RESET_AT_NS = int(datetime(2026, 12, 8, 1, 30, 15, tzinfo=UTC).timestamp() * 1e9)


def test_a_reset_makes_one_notice_whatever_event_of_it_arrives() -> None:
    reset = DevicesReset(ORGANIZATION, MEMBER, RESET_AT_NS)
    assert notice_id(reset) == notice_id(DevicesReset(ORGANIZATION, MEMBER, RESET_AT_NS))
    assert notice_id(reset) != notice_id(DevicesReset(ORGANIZATION, OTHER_MEMBER, RESET_AT_NS))
    assert notice_id(reset) != notice_id(DevicesReset(ORGANIZATION, MEMBER, RESET_AT_NS + 1))
    notice = notice_for(reset)
    assert notice.kind is NoticeKind.DEVICES_RESET
    assert notice.subject == "Your devices and passkeys were reset"
    assert (
        "An administrator of your organization reset your trusted devices and passkeys at 2026-12-08 01:30 UTC."
        in (notice.body)
    )
    assert notice.body.endswith(SIGN_OFF)


def test_a_new_device_sign_in_names_the_platform_and_time_under_its_event_id() -> None:
    event_id = uuid.uuid4()
    at = datetime(2026, 12, 8, 9, 5, tzinfo=timezone(timedelta(hours=8)))
    notice = notice_for(NewDeviceSignIn(event_id, MEMBER, "Android", at))
    assert notice.notice_id == event_id
    assert notice.kind is NoticeKind.NEW_DEVICE_SIGN_IN
    assert "from a new device (Android) at 2026-12-08 01:05 UTC." in notice.body
    unregistered = notice_for(NewDeviceSignIn(event_id, MEMBER, None, at))
    assert f"({PLATFORM_UNKNOWN})" in unregistered.body


def test_a_lockout_says_how_many_failures_and_until_when() -> None:
    event_id = uuid.uuid4()
    notice = notice_for(LockedOut(event_id, MEMBER, datetime(2026, 12, 8, 2, 0, tzinfo=UTC), 10))
    assert notice.notice_id == event_id
    assert notice.kind is NoticeKind.LOCKED_OUT
    assert notice.subject == "Sign-in to your account is locked"
    assert "After 10 failed sign-in attempts, sign-in to your account is locked until 2026-12-08 02:00 UTC." in (
        notice.body
    )


@pytest.mark.parametrize(
    "fact",
    [
        DevicesReset(ORGANIZATION, MEMBER, RESET_AT_NS),
        NewDeviceSignIn(uuid.uuid4(), MEMBER, "iOS", datetime(2026, 12, 8, tzinfo=UTC)),
        LockedOut(uuid.uuid4(), MEMBER, datetime(2026, 12, 8, tzinfo=UTC), 5),
    ],
)
def test_no_notice_names_the_member_or_the_organization(fact: DevicesReset | NewDeviceSignIn | LockedOut) -> None:
    notice = notice_for(fact)
    for identifier in (MEMBER, ORGANIZATION):
        assert identifier not in notice.subject + notice.body
    assert "@" not in notice.subject + notice.body


def test_naive_times_are_a_programming_error() -> None:
    with pytest.raises(AssertionError):
        notice_for(LockedOut(uuid.uuid4(), MEMBER, datetime(2026, 12, 8), 5))
