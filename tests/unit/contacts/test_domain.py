"""Pure rules of the vault: normalisation, masking across regions, validation, reveal purposes, card numbers,
notification params and the access-log hash chain."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import phonenumbers
import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.contacts.domain import (
    AlertThreshold,
    ConsentMissing,
    Contact,
    PhoneNumberInvalid,
    Purpose,
    PurposeNotAllowed,
    RevealPurpose,
    StoreContactInput,
    UpdateContactInput,
    apply_update,
    check_reveal_purpose,
    mask_national_number,
    parse_phone_number,
    validate_store_contact,
    validate_update,
)
from services.contacts.domain_access_log import GENESIS_HASH, AccessAction, AccessLogEntry, chain_hash, verify_chain
from services.contacts.domain_cards import generate_card, luhn_check_digit, luhn_valid, validate_provided_card
from services.contacts.domain_keys import next_key_version
from services.contacts.domain_notifications import NotificationTemplate, render, validate_params
from services.contacts.limits import RETENTION_S_MAX
from services.kit.errors import FieldViolation, InvalidArgument

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "region", "e164", "masked"),
    [
        ("138 1234 5678", "CN", "+8613812345678", "+86 138****5678"),
        ("+86 138-1234-5678", "", "+8613812345678", "+86 138****5678"),
        ("(202) 555-0101", "US", "+12025550101", "+1 20****0101"),
        ("07911 123456", "GB", "+447911123456", "+44 79****3456"),
        ("06 12 34 56 78", "FR", "+33612345678", "+33 6****5678"),
        ("8123 4567", "SG", "+6581234567", "+65 ****4567"),
        ("01512 3456789", "DE", "+4915123456789", "+49 151****6789"),
    ],
)
def test_normalises_and_masks_across_regions(raw: str, region: str, e164: str, masked: str) -> None:
    violations: list[FieldViolation] = []
    phone = parse_phone_number(raw, region, violations)
    assert violations == []
    assert phone is not None
    assert (phone.e164, phone.masked) == (e164, masked)
    assert e164 not in repr(phone)


@pytest.mark.parametrize(
    ("raw", "region"),
    [("12", "CN"), ("not a number", "US"), ("5550101", ""), ("+1 555 0100 99999", ""), ("1" * 70, "US")],
)
def test_invalid_numbers_are_violations_without_the_number(raw: str, region: str) -> None:
    violations: list[FieldViolation] = []
    assert parse_phone_number(raw, region, violations) is None
    assert [v.field for v in violations] == ["phone_number"]
    assert raw not in violations[0].description


def test_bad_region_hint_is_its_own_violation() -> None:
    violations: list[FieldViolation] = []
    assert parse_phone_number("138 1234 5678", "CHN", violations) is None
    assert [v.field for v in violations] == ["region_hint"]


@given(st.integers(min_value=1, max_value=999), st.text(alphabet="0123456789", min_size=5, max_size=17))
def test_mask_hides_at_least_four_digits_and_keeps_the_length(country_code: int, national: str) -> None:
    masked = mask_national_number(country_code, national)
    prefix, _, body = masked.partition(" ")
    assert prefix == f"+{country_code}"
    assert len(body) == len(national)
    assert body.count("*") >= 4
    assert all(c == "*" or c == n for c, n in zip(body, national, strict=True))
    assert sum(c != "*" for c in body) <= 7


@given(st.sampled_from(sorted(phonenumbers.SUPPORTED_REGIONS)))
def test_every_region_example_number_normalises_and_masks(region: str) -> None:
    example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
    if example is None:
        return
    national = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.NATIONAL)
    violations: list[FieldViolation] = []
    phone = parse_phone_number(national, region, violations)
    assert phone is not None, violations
    assert phone.e164 == phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
    assert phone.masked.count("*") >= 4


def store_input(**overrides: object) -> StoreContactInput:
    base = StoreContactInput(
        contact_id=str(uuid.uuid4()),
        customer_id=str(uuid.uuid4()),
        phone_number="+8613812345678",
        region_hint="",
        purposes=(1,),
        consent_reference="consent-1",
        retention_s=3600,
        alert_thresholds=(),
    )
    return replace(base, **overrides)  # type: ignore[arg-type]


def test_valid_store_request_becomes_a_draft() -> None:
    draft = validate_store_contact(store_input(purposes=(1, 4, 1), alert_thresholds=(("CNY", 100),)))
    assert draft.purposes == frozenset({Purpose.TRANSACTION_ALERTS, Purpose.SUPPORT})
    assert draft.phone.e164 == "+8613812345678"


def test_every_violation_is_collected() -> None:
    with pytest.raises(PhoneNumberInvalid) as caught:
        validate_store_contact(
            store_input(
                contact_id="x",
                phone_number="1",
                purposes=(9,),
                consent_reference=" ",
                retention_s=None,
                alert_thresholds=(("cny", -1),),
            )
        )
    fields = [v.field for v in caught.value.field_violations]
    assert fields == [
        "contact_id",
        "phone_number",
        "purposes[0]",
        "consent_reference",
        "retention",
        "alert_thresholds[0].currency",
        "alert_thresholds[0].amount_minor",
        "alert_thresholds",
    ]


@pytest.mark.parametrize(
    ("retention_s", "ok"), [(1, True), (RETENTION_S_MAX, True), (RETENTION_S_MAX + 1, False), (0, False)]
)
def test_retention_bounds(retention_s: int, ok: bool) -> None:
    if ok:
        assert validate_store_contact(store_input(retention_s=retention_s)).retention_s == retention_s
    else:
        with pytest.raises(InvalidArgument) as caught:
            validate_store_contact(store_input(retention_s=retention_s))
        assert [v.field for v in caught.value.field_violations] == ["retention"]


def test_missing_consent_alone_is_consent_missing() -> None:
    with pytest.raises(ConsentMissing):
        validate_store_contact(store_input(consent_reference=""))


def test_no_purpose_is_a_violation() -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate_store_contact(store_input(purposes=()))
    assert [v.field for v in caught.value.field_violations] == ["purposes"]


@pytest.mark.parametrize(
    ("reveal", "collected", "allowed"),
    [
        (RevealPurpose.SUPPORT_CALL, {Purpose.SUPPORT}, True),
        (RevealPurpose.SUPPORT_CALL, {Purpose.LOGIN_OTP}, False),
        (RevealPurpose.FRAUD_INVESTIGATION, {Purpose.PAYEE_LOOKUP}, True),
        (RevealPurpose.FRAUD_INVESTIGATION, {Purpose.SUPPORT}, False),
        (RevealPurpose.LEGAL_REQUEST, {Purpose.LOGIN_OTP}, True),
        (RevealPurpose.SUBJECT_REQUEST, {Purpose.SUPPORT}, True),
    ],
)
def test_reveal_purposes_follow_collection_purposes(
    reveal: RevealPurpose, collected: set[Purpose], allowed: bool
) -> None:
    if allowed:
        check_reveal_purpose(reveal, frozenset(collected))
    else:
        with pytest.raises(PurposeNotAllowed):
            check_reveal_purpose(reveal, frozenset(collected))


@given(st.binary(min_size=19, max_size=19), st.sampled_from(["424242", "40000000"]), st.integers(0, 120))
def test_generated_cards_are_luhn_valid_on_the_bin(random_bytes: bytes, bin_prefix: str, months: int) -> None:
    violations: list[FieldViolation] = []
    card = generate_card(bin_prefix, months, NOW, random_bytes, violations)
    assert card is not None
    assert card.card_number.startswith(bin_prefix)
    assert len(card.card_number) == 16
    assert luhn_valid(card.card_number)
    assert len(card.cvv) == 3
    assert 1 <= card.expiry_month <= 12
    assert card.card_number not in repr(card)


def test_luhn_known_values() -> None:
    assert luhn_valid("4111111111111111")
    assert not luhn_valid("4111111111111112")
    assert luhn_check_digit("411111111111111") == "1"


def test_provided_card_and_bin_violations() -> None:
    violations: list[FieldViolation] = []
    assert validate_provided_card("4111111111111111", "123", 12, 2030, violations) is not None
    assert generate_card("42", 200, NOW, bytes(19), violations) is None
    assert [v.field for v in violations] == ["generate.bin", "generate.validity_months"]


def test_notification_params_must_match_and_hold_no_number() -> None:
    violations: list[FieldViolation] = []
    validate_params(NotificationTemplate.LOGIN_OTP, {"code": "+86 138 1234 5678", "extra": "x"}, violations)
    assert sorted(v.field for v in violations) == ["params[code]", "params[expires_in_s]", "params[extra]"]
    assert render(NotificationTemplate.LOGIN_OTP, {"code": "123456", "expires_in_s": "300"}).startswith(
        "Wallet: your code"
    )


def entries(count: int) -> list[AccessLogEntry]:
    organization_id = uuid.uuid4()
    built = []
    previous = GENESIS_HASH
    for sequence in range(1, count + 1):
        entry = AccessLogEntry(
            organization_id,
            uuid.uuid4(),
            uuid.uuid4(),
            None,
            None,
            AccessAction.REVEAL,
            "actor",
            "",
            1,
            "because",
            "trace",
            NOW,
        )
        previous = chain_hash(previous, entry, sequence)
        built.append(replace(entry, sequence=sequence, entry_hash=previous))
    return built


def test_chain_verifies_and_names_the_first_broken_entry() -> None:
    chain = entries(5)
    assert verify_chain(GENESIS_HASH, 1, chain).intact
    tampered = list(chain)
    tampered[2] = replace(chain[2], justification="edited")
    verdict = verify_chain(GENESIS_HASH, 1, tampered)
    assert (verdict.intact, verdict.first_broken_sequence) == (False, 3)
    missing = chain[:2] + chain[3:]
    assert verify_chain(GENESIS_HASH, 1, missing).first_broken_sequence == 3
    assert verify_chain(chain[1].entry_hash or b"", 3, chain[2:]).intact


def test_next_key_version() -> None:
    assert next_key_version(1, frozenset({1, 2, 3})) == 3
    assert next_key_version(3, frozenset({1, 2, 3})) is None


def stored_contact(**overrides: object) -> Contact:
    base = Contact(
        organization_id=uuid.uuid4(),
        contact_id=uuid.uuid4(),
        customer_id=uuid.uuid4(),
        phone_ciphertext=b"x",
        region_code="CN",
        purposes=frozenset({Purpose.PAYEE_LOOKUP, Purpose.TRANSACTION_ALERTS}),
        consent_reference="c-1",
        retention_s=3600,
        retain_until=NOW,
        alert_thresholds=(AlertThreshold("CNY", 100),),
        discoverable=True,
        default_account_id=uuid.uuid4(),
        discoverable_account_ids=(uuid.uuid4(),),
        request_digest=b"",
        created_at=NOW,
        updated_at=NOW,
        deleted_at=None,
        erased=False,
    )
    return replace(base, **overrides)  # type: ignore[arg-type]


def update_input(paths: tuple[str, ...], **overrides: object) -> UpdateContactInput:
    base = UpdateContactInput(
        contact_id=str(uuid.uuid4()),
        request_id=str(uuid.uuid4()),
        paths=paths,
        phone_number="",
        region_hint="",
        purposes=(),
        consent_reference="",
        retention_s=None,
        alert_thresholds=(),
    )
    return replace(base, **overrides)  # type: ignore[arg-type]


def test_update_validates_only_masked_fields() -> None:
    update = validate_update(update_input(("consent_reference",), consent_reference="c-2"))
    assert (update.phone, update.purposes, update.consent_reference) == (None, None, "c-2")
    with pytest.raises(InvalidArgument) as caught:
        validate_update(update_input(("customer_id", "purposes")))
    assert [v.field for v in caught.value.field_violations] == ["update_mask", "purposes"]


def test_removing_payee_lookup_ends_discoverability_and_keeps_the_rest() -> None:
    contact = stored_contact()
    update = validate_update(update_input(("purposes",), purposes=(1,)))
    updated = apply_update(contact, update, NOW)
    assert updated.purposes == frozenset({Purpose.TRANSACTION_ALERTS})
    assert (updated.discoverable, updated.default_account_id, updated.discoverable_account_ids) == (False, None, ())
    assert (updated.consent_reference, updated.retain_until) == ("c-1", NOW)


def test_thresholds_need_the_alert_purpose_after_the_update() -> None:
    update = validate_update(update_input(("purposes",), purposes=(4,)))
    with pytest.raises(InvalidArgument) as caught:
        apply_update(stored_contact(), update, NOW)
    assert [v.field for v in caught.value.field_violations] == ["alert_thresholds"]


def test_retention_update_counts_from_now() -> None:
    update = validate_update(update_input(("retention",), retention_s=60))
    assert apply_update(stored_contact(), update, NOW).retain_until == NOW + timedelta(seconds=60)
