"""Notification templates: which collection purposes each needs, their parameters, and the message text."""

from __future__ import annotations

import enum
from collections.abc import Mapping

from services.contacts.domain import Purpose
from services.contacts.limits import NOTIFICATION_PARAM_CHARS_MAX, NOTIFICATION_PARAMS_MAX
from services.kit.errors import FieldViolation
from services.kit.redaction import redact


class NotificationTemplate(enum.IntEnum):
    TRANSACTION_ALERT = 1
    LOGIN_OTP = 2
    LOCKOUT_ALERT = 3
    NEW_DEVICE_ALERT = 4
    CARD_REVEAL_ALERT = 5
    DEVICE_RESET_ALERT = 6
    COMPLAINT_UPDATE = 7


class NotificationStatus(enum.IntEnum):
    SENT = 1
    SUPPRESSED = 2
    FAILED = 3


_ALERTS_OR_OTP = frozenset({Purpose.TRANSACTION_ALERTS, Purpose.LOGIN_OTP})

TEMPLATE_PURPOSES: dict[NotificationTemplate, frozenset[Purpose]] = {
    NotificationTemplate.TRANSACTION_ALERT: frozenset({Purpose.TRANSACTION_ALERTS}),
    NotificationTemplate.LOGIN_OTP: frozenset({Purpose.LOGIN_OTP}),
    NotificationTemplate.LOCKOUT_ALERT: _ALERTS_OR_OTP,
    NotificationTemplate.NEW_DEVICE_ALERT: _ALERTS_OR_OTP,
    NotificationTemplate.CARD_REVEAL_ALERT: frozenset({Purpose.TRANSACTION_ALERTS}),
    NotificationTemplate.DEVICE_RESET_ALERT: _ALERTS_OR_OTP,
    NotificationTemplate.COMPLAINT_UPDATE: frozenset({Purpose.SUPPORT, Purpose.TRANSACTION_ALERTS}),
}

TEMPLATE_TEXT: dict[NotificationTemplate, str] = {
    NotificationTemplate.TRANSACTION_ALERT: "Wallet: {direction} {amount} {currency} ({reference}).",
    NotificationTemplate.LOGIN_OTP: "Wallet: your code is {code}. It expires in {expires_in_s} s.",
    NotificationTemplate.LOCKOUT_ALERT: "Wallet: sign-in is locked until {locked_until}.",
    NotificationTemplate.NEW_DEVICE_ALERT: "Wallet: new sign-in from {platform} at {time}.",
    NotificationTemplate.CARD_REVEAL_ALERT: "Wallet: the number of card ending {last_four} was shown at {time}.",
    NotificationTemplate.DEVICE_RESET_ALERT: "Wallet: your devices were reset at {time}.",
    NotificationTemplate.COMPLAINT_UPDATE: "Wallet: complaint {reference_number} is {status}. {message}",
}

TEMPLATE_PARAMS: dict[NotificationTemplate, frozenset[str]] = {
    template: frozenset(part.split("}", 1)[0] for part in text.split("{")[1:])
    for template, text in TEMPLATE_TEXT.items()
}


def validate_params(
    template: NotificationTemplate, params: Mapping[str, str], violations: list[FieldViolation]
) -> None:
    if len(params) > NOTIFICATION_PARAMS_MAX:
        violations.append(FieldViolation("params", f"at most {NOTIFICATION_PARAMS_MAX} parameters"))
    expected = TEMPLATE_PARAMS[template]
    for name in sorted(expected - params.keys()):
        violations.append(FieldViolation(f"params[{name}]", "is required by the template"))
    for name in sorted(params.keys() - expected):
        violations.append(FieldViolation(f"params[{name}]", "is not a parameter of the template"))
    for name, value in sorted(params.items()):
        if len(value) > NOTIFICATION_PARAM_CHARS_MAX:
            violations.append(FieldViolation(f"params[{name}]", f"at most {NOTIFICATION_PARAM_CHARS_MAX} characters"))
        elif redact(value) != value:
            # The redaction filter recognises phone numbers, card numbers and secrets: none belongs in an SMS param.
            violations.append(FieldViolation(f"params[{name}]", "must not contain a phone number, card or secret"))


def render(template: NotificationTemplate, params: Mapping[str, str]) -> str:
    return TEMPLATE_TEXT[template].format_map(dict(params))
