import pytest

from services.kit.request_checks import (
    DURATION_SECONDS_MAX,
    TIMESTAMP_SECONDS_MAX,
    TIMESTAMP_SECONDS_MIN,
    request_violations,
)
from wallet.auth.v1 import auth_organizations_pb2
from wallet.ledger.v1 import ledger_integrity_pb2


def test_a_request_without_time_fields_set_is_clean() -> None:
    assert request_violations(ledger_integrity_pb2.ListAuditEventsRequest(page_size=3)) == []


@pytest.mark.parametrize(
    ("seconds", "nanos", "valid"),
    [
        (0, 0, True),
        (TIMESTAMP_SECONDS_MIN, 0, True),
        (TIMESTAMP_SECONDS_MAX, 999_999_999, True),
        (TIMESTAMP_SECONDS_MAX + 1, 0, False),
        (TIMESTAMP_SECONDS_MIN - 1, 0, False),
        (0, -1, False),
        (0, 1_000_000_000, False),
        (-(2**63), 0, False),
    ],
)
def test_timestamp_range(seconds: int, nanos: int, valid: bool) -> None:
    request = ledger_integrity_pb2.ListAuditEventsRequest()
    request.end_time.seconds, request.end_time.nanos = seconds, nanos
    violations = request_violations(request)
    assert (violations == []) is valid
    if not valid:
        assert [v.field for v in violations] == ["end_time"]
        # The check protects exactly what a handler would do next.
        with pytest.raises(ValueError, match="Timestamp is not valid"):
            request.end_time.ToDatetime()


@pytest.mark.parametrize(
    ("seconds", "nanos", "valid"),
    [
        (3600, 0, True),
        (-1, -5, True),
        (DURATION_SECONDS_MAX + 1, 0, False),
        (1, -1, False),
        (-1, 1, False),
    ],
)
def test_nested_duration_is_named_by_its_path(seconds: int, nanos: int, valid: bool) -> None:
    request = auth_organizations_pb2.UpdateOrganizationPolicyRequest()
    request.policy.session_idle_timeout.seconds = seconds
    request.policy.session_idle_timeout.nanos = nanos
    violations = request_violations(request)
    assert [v.field for v in violations] == ([] if valid else ["policy.session_idle_timeout"])


def test_open_enum_value_on_the_wire_is_refused() -> None:
    from wallet.ledger.v1 import ledger_accounts_pb2

    request = ledger_accounts_pb2.OpenAccountRequest(kind=9_999)
    violations = request_violations(request)
    assert [v.field for v in violations] == ["kind"]
    assert "AccountKind" in violations[0].description
    with pytest.raises(ValueError, match="no name defined"):
        ledger_accounts_pb2.AccountKind.Name(request.kind)


def test_nul_characters_in_strings_and_string_maps_are_refused() -> None:
    from wallet.contacts.v1 import contacts_notifications_pb2

    assert request_violations(ledger_integrity_pb2.ListAuditEventsRequest(resource_id="a\u00e9b")) == []
    violations = request_violations(ledger_integrity_pb2.ListAuditEventsRequest(resource_id="a\x00b"))
    assert [v.field for v in violations] == ["resource_id"]
    notification = contacts_notifications_pb2.SendNotificationRequest()
    notification.params["amount"] = "x\x00"
    assert [v.field for v in request_violations(notification)] == ["params"]
