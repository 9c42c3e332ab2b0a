import pytest

from gateway.path_template import TemplateError, parse_template


def test_literal_and_variable() -> None:
    template = parse_template("/v1/accounts/{account_id}")
    assert template.variables == ("account_id",)
    assert template.match("/v1/accounts/abc") is not None
    assert template.match("/v1/accounts/abc").variables == {"account_id": "abc"}  # type: ignore[union-attr]
    assert template.match("/v1/accounts") is None
    assert template.match("/v1/accounts/abc/more") is None
    assert template.match("/v1/accounts/") is None
    assert template.match("/v2/accounts/abc") is None


def test_custom_verb_is_required_and_stripped() -> None:
    template = parse_template("/v1/transfers/{transfer_id}:post")
    assert template.verb == "post"
    found = template.match("/v1/transfers/t-1:post")
    assert found is not None
    assert found.variables == {"transfer_id": "t-1"}
    assert template.match("/v1/transfers/t-1") is None
    assert template.match("/v1/transfers/t-1:void") is None


def test_verb_on_a_literal_segment() -> None:
    template = parse_template("/v1/sessions:login")
    assert template.match("/v1/sessions:login") is not None
    assert template.match("/v1/sessions") is None


def test_nested_field_variable() -> None:
    template = parse_template("/v1/things/{filter.owner_id}/items")
    found = template.match("/v1/things/o-9/items")
    assert found is not None
    assert found.variables == {"filter.owner_id": "o-9"}


def test_variable_with_segments_and_double_wildcard() -> None:
    template = parse_template("/v1/{name=shelves/*/books/*}")
    found = template.match("/v1/shelves/s1/books/b2")
    assert found is not None
    assert found.variables == {"name": "shelves/s1/books/b2"}
    assert template.match("/v1/shelves/s1/cups/b2") is None
    rest = parse_template("/v1/files/{path=**}")
    found = rest.match("/v1/files/a/b/c")
    assert found is not None
    assert found.variables == {"path": "a/b/c"}


def test_percent_encoded_slash_stays_inside_the_variable() -> None:
    found = parse_template("/v1/accounts/{account_id}").match("/v1/accounts/a%2Fb")
    assert found is not None
    assert found.variables == {"account_id": "a/b"}


def test_openapi_path() -> None:
    assert parse_template("/v1/transfers/{transfer_id}:post").openapi_path() == "/v1/transfers/{transfer_id}:post"
    assert parse_template("/v1/{name=shelves/*}").openapi_path() == "/v1/{name}"


@pytest.mark.parametrize(
    "bad", ["v1/no-slash", "/v1/{unclosed", "/v1/{a}/{a}", "/v1/**/tail", "/v1/{1bad}", "/v1/x:bad verb"]
)
def test_malformed_templates_are_refused(bad: str) -> None:
    with pytest.raises(TemplateError):
        parse_template(bad)
