"""Issue 12's leak search: everything a running suite wrote or holds — logs, span files, every /metrics scrape, every
Redis key and value, a ``pg_dump`` of every service database — searched for a phone number or a card number in every
format. Used by the end-to-end demo test and the in-process sweep over every flow."""

from __future__ import annotations

import re
import subprocess
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import phonenumbers
import redis

from devstack.databases import with_database
from devstack.postgres_server import bin_dir

SERVICE_DATABASES = ("wallet_auth", "wallet_ledger", "wallet_contacts", "wallet_risk")
PG_DUMP_TIMEOUT_S = 60
SCRAPE_TIMEOUT_S = 10.0
REDIS_SCAN_COUNT = 500


def phone_formats(number: str) -> list[str]:
    """The number as people and programs write it: E.164, international, national, digits only (with and without the
    country code), with spaces, dashes or dots between the national groups."""
    parsed = phonenumbers.parse(number, None)
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    international = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    national = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
    national_digits = str(parsed.national_number)
    groups = national.split()
    formats = {
        e164,
        e164.removeprefix("+"),
        international,
        national,
        national_digits,
        "-".join(groups),
        ".".join(groups),
        f"+{parsed.country_code}-{'-'.join(groups)}",
        f"00{parsed.country_code}{national_digits}",
    }
    return sorted(formats, key=len, reverse=True)


def loose_pattern(number: str) -> re.Pattern[bytes]:
    """The national digits with at most two separators (space, dash, dot, slash, parentheses) between any two:
    catches a grouping no format above thought of."""
    parsed = phonenumbers.parse(number, None)
    digits = str(parsed.national_number)
    return re.compile(r"[ \-./()]{0,2}".join(re.escape(d) for d in digits).encode())


def card_loose_pattern(card_number: str) -> re.Pattern[bytes]:
    """The card number's digits with at most two separators between any two: plain, grouped by four, dashed."""
    assert card_number.isdigit(), "a card number is digits only"
    return re.compile(r"[ \-./]{0,2}".join(re.escape(d) for d in card_number).encode())


@dataclass(frozen=True)
class Finding:
    where: str
    excerpt: str


def search(where: str, haystack: bytes, number: str) -> list[Finding]:
    findings: list[Finding] = []
    for match in loose_pattern(number).finditer(haystack):
        start = max(0, match.start() - 60)
        findings.append(Finding(where, haystack[start : match.end() + 60].decode("utf-8", "replace")))
    for text in phone_formats(number):
        if text.encode() in haystack and not any(text in f.excerpt for f in findings):
            findings.append(Finding(where, text))
    return findings


def search_card(where: str, haystack: bytes, card_number: str) -> list[Finding]:
    """The card number in any grouping, and as hex (bytes of it stored in a bytea column render as ``\\x...``)."""
    findings = [
        Finding(where, haystack[max(0, m.start() - 60) : m.end() + 60].decode("utf-8", "replace"))
        for m in card_loose_pattern(card_number).finditer(haystack)
    ]
    if card_number.encode().hex().encode() in haystack:
        findings.append(Finding(where, "hex of the card number"))
    return findings


def files_under(directory: Path) -> Iterator[tuple[str, bytes]]:
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            yield str(path), path.read_bytes()


def metrics_scrapes(urls: Iterable[str]) -> Iterator[tuple[str, bytes]]:
    for url in urls:
        response = httpx.get(url, timeout=SCRAPE_TIMEOUT_S)
        response.raise_for_status()
        yield url, response.content


def _raw(value: object) -> bytes:
    """redis-py types replies loosely (bytes or str); without decode_responses they are bytes."""
    if isinstance(value, bytes):
        return value
    return str(value).encode()


def _pairs(mapping: object) -> list[bytes]:
    items = mapping.items() if isinstance(mapping, dict) else []
    return [_raw(name) + b"=" + _raw(value) for name, value in items]


def redis_contents(url: str) -> Iterator[tuple[str, bytes]]:
    """Every key of the suite's Redis database: its name, its DUMP, and its value read the way its type is read."""
    client = redis.Redis.from_url(url)
    try:
        for key in client.scan_iter(count=REDIS_SCAN_COUNT):
            kind = _raw(client.type(key)).decode()
            parts: list[bytes] = [_raw(key), _raw(client.dump(key) or b"")]
            if kind == "string":
                parts.append(_raw(client.get(key) or b""))
            elif kind == "hash":
                parts.extend(_pairs(client.hgetall(key)))
            elif kind == "list":
                parts.extend(_raw(item) for item in client.lrange(key, 0, -1))
            elif kind == "set":
                parts.extend(_raw(member) for member in client.smembers(key))
            elif kind == "zset":
                parts.extend(_raw(member) for member in client.zrange(key, 0, -1))
            elif kind == "stream":
                for entry_id, fields in client.xrange(key) or []:
                    parts.append(_raw(entry_id))
                    parts.extend(_pairs(fields))
            yield f"redis {kind} {_raw(key).decode('utf-8', 'replace')}", b"\n".join(parts)
    finally:
        client.close()


def redis_key_count(url: str) -> int:
    client = redis.Redis.from_url(url)
    try:
        return int(client.dbsize())
    finally:
        client.close()


def _pg_dump() -> Path:
    # As in devstack: platformdirs warns at the wheel's import when XDG_RUNTIME_DIR is unset (root in a container);
    # under pytest's -W error that warning would fail the test, and it says nothing we can act on.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return bin_dir() / "pg_dump"


def database_dumps(socket_dir: str, databases: Iterable[str] = SERVICE_DATABASES) -> Iterator[tuple[str, bytes]]:
    pg_dump = _pg_dump()
    for database in databases:
        dumped = subprocess.run(
            [str(pg_dump), "-h", socket_dir, "-U", "postgres", "--no-owner", "-d", database],
            capture_output=True,
            timeout=PG_DUMP_TIMEOUT_S,
            check=True,
        )
        yield f"pg_dump {database}", dumped.stdout


def database_dumps_at(server_url: str, databases: Iterable[str]) -> Iterator[tuple[str, bytes]]:
    """``pg_dump`` (the embedded wheel's, which dumps older servers too) of each database on the server of this URL,
    whether a TCP address or the embedded server's unix socket."""
    pg_dump = _pg_dump()
    for database in databases:
        dumped = subprocess.run(
            [str(pg_dump), "--no-owner", f"--dbname={with_database(server_url, database)}"],
            capture_output=True,
            timeout=PG_DUMP_TIMEOUT_S,
            check=True,
        )
        yield f"pg_dump {database}", dumped.stdout
