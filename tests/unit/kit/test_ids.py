import uuid

from hypothesis import given
from hypothesis import strategies as st

from services.kit.errors import FieldViolation
from services.kit.ids import fast_uuid, parse_uuid, uuid7


@given(st.integers(min_value=0, max_value=(1 << 48) - 1), st.binary(min_size=10, max_size=10))
def test_uuid7_layout(now_ms: int, rand: bytes) -> None:
    value = uuid7(now_ms, rand)
    assert value.version == 7
    assert value.variant == uuid.RFC_4122
    assert value.int >> 80 == now_ms


def test_uuid7_sorts_by_time() -> None:
    earlier, later = uuid7(1_000), uuid7(1_001)
    assert str(earlier) < str(later)


def test_parse_uuid_collects_violations() -> None:
    violations: list[FieldViolation] = []
    assert parse_uuid("", "transfer_id", violations) is None
    assert parse_uuid("nope", "account_id", violations) is None
    assert parse_uuid("{12345678-1234-5678-1234-567812345678}", "x", violations) is None
    assert [v.field for v in violations] == ["transfer_id", "account_id", "x"]
    good = str(uuid.uuid4())
    assert parse_uuid(good, "y", violations) == uuid.UUID(good)


def _canonical_by_formatting(value: str) -> bool:
    """The definition the fast path must agree with: the value is what the UUID formats back to."""
    try:
        return str(uuid.UUID(value)) == value.lower()
    except ValueError:
        return False


@given(st.uuids(), st.booleans())
def test_parse_uuid_accepts_canonical_forms(value: uuid.UUID, upper: bool) -> None:
    text = str(value).upper() if upper else str(value)
    violations: list[FieldViolation] = []
    assert parse_uuid(text, "id", violations) == value
    assert violations == []


@given(st.one_of(st.text(max_size=40), st.uuids().map(lambda u: u.hex), st.uuids().map(lambda u: f"{{{u}}}")))
def test_parse_uuid_agrees_with_formatting_back(text: str) -> None:
    violations: list[FieldViolation] = []
    parsed = parse_uuid(text, "id", violations)
    if text == "":
        assert parsed is None
        return
    assert (parsed is not None) == _canonical_by_formatting(text)
    assert (parsed is None) == (len(violations) == 1)


@given(st.uuids(), st.uuids())
def test_parsed_uuids_behave_like_standard_ones(value: uuid.UUID, other: uuid.UUID) -> None:
    """The fast (C) UUID is interchangeable with ``uuid.UUID``: as dictionary keys, in order, as text and bytes."""
    parsed = parse_uuid(str(value), "id", [])
    assert isinstance(parsed, uuid.UUID)
    assert parsed == value
    assert value == parsed
    assert hash(parsed) == hash(value)
    assert {value: 1}[parsed] == 1
    assert {parsed: 1}[value] == 1
    assert (parsed < other) == (value < other)
    assert (other < parsed) == (other < value)
    assert str(parsed) == str(value)
    assert parsed.bytes == value.bytes
    assert parsed.int == value.int
    assert parsed.version == value.version


@given(st.integers(min_value=0, max_value=(1 << 48) - 1), st.binary(min_size=10, max_size=10))
def test_uuid7_equals_the_standard_uuid_of_its_bits(now_ms: int, rand: bytes) -> None:
    value = uuid7(now_ms, rand)
    standard = uuid.UUID(int=value.int)
    assert value == standard
    assert hash(value) == hash(standard)
    assert str(value) == str(standard)


@given(st.uuids())
def test_fast_uuid_is_the_same_uuid(value: uuid.UUID) -> None:
    fast = fast_uuid(value)
    assert fast == value
    assert hash(fast) == hash(value)
    assert str(fast) == str(value)
