import pytest

from services.kit.errors import InvalidArgument
from services.kit.paging import (
    PAGE_SIZE_DEFAULT,
    PAGE_SIZE_MAX,
    PageTokenInvalid,
    decode_page_token,
    encode_page_token,
    next_page,
    page_size,
)


def test_page_size_rules() -> None:
    assert page_size(0) == PAGE_SIZE_DEFAULT
    assert page_size(7) == 7
    assert page_size(PAGE_SIZE_MAX + 1) == PAGE_SIZE_MAX
    with pytest.raises(InvalidArgument) as caught:
        page_size(-1)
    assert caught.value.field_violations[0].field == "page_size"


def test_token_round_trip_with_same_filters() -> None:
    filters = {"account_id": "a", "since": "2026-01-01"}
    token = encode_page_token({"seq": 42, "id": "x"}, filters)
    assert decode_page_token(token, dict(reversed(list(filters.items())))) == {"seq": 42, "id": "x"}


def test_empty_token_is_first_page() -> None:
    assert decode_page_token("", {}) is None


def test_token_for_other_filters_is_refused() -> None:
    token = encode_page_token({"seq": 1}, {"account_id": "a"})
    with pytest.raises(PageTokenInvalid, match="different filters"):
        decode_page_token(token, {"account_id": "b"})


@pytest.mark.parametrize("garbage", ["%%%", "bm90IGpzb24", "W10", "x" * 5000])
def test_garbage_tokens_are_invalid_argument(garbage: str) -> None:
    with pytest.raises(PageTokenInvalid) as caught:
        decode_page_token(garbage, {})
    assert caught.value.reason == "PAGE_TOKEN_INVALID"


def test_next_page_trims_the_extra_row_and_points_after_the_last_returned() -> None:
    filters = {"kind": "customer"}
    page, token = next_page([1, 2, 3, 4], 3, lambda last: {"after": last}, filters)
    assert page == [1, 2, 3]
    assert decode_page_token(token, filters) == {"after": 3}


@pytest.mark.parametrize("rows", [[], [1], [1, 2, 3]])
def test_next_page_is_the_last_page_when_no_extra_row_came_back(rows: list[int]) -> None:
    page, token = next_page(rows, 3, lambda last: {"after": last}, {})
    assert page == rows
    assert token == ""
