"""walletctl's operator commands against the real suite: bootstrap, status, key rotation (signing keys; the KEK
with its rewrap followed to the end), vault backup and restore, risk rule publish and dry-run, each with the
one-line error when its service is down."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import grpc
import pytest

from services.risk.service import DEFAULT_RULES_PATH
from tests.integration.auth.conftest import bearer, login, unique_slug
from tests.integration.cli.conftest import DOWN_ADDRESS, Suite, walletctl_run
from tests.integration.cli.test_ledger_commands import assert_one_line_error
from tests.integration.contacts.test_contacts import store_request
from wallet.auth.v1 import auth_keys_pb2
from wallet.contacts.v1 import contacts_service_pb2_grpc

pytestmark = pytest.mark.integration

DEFAULT_RULES_DOCUMENT = DEFAULT_RULES_PATH.read_text(encoding="utf-8")


async def test_bootstrap_creates_a_tenant_whose_owner_signs_in_with_the_printed_password(suite: Suite) -> None:
    slug = unique_slug("boot")
    email = f"owner@{slug}.example.com"
    args = ["bootstrap", "--slug", slug, "--name", "Boot Org", "--owner-email", email, "--json"]
    result = await walletctl_run(args, suite.environ())
    assert result.exit_code == 0, result.stderr
    printed = json.loads(result.stdout)
    assert printed["slug"] == slug
    assert len(printed["owner_password"]) >= 12
    signed_in = await login(suite.auth.stub, slug, email, printed["owner_password"])
    assert signed_in.tokens.access_token or signed_in.mfa_challenge_id

    replay = await walletctl_run([*args, "--organization-id", printed["organization_id"]], suite.environ())
    assert replay.exit_code == 0, replay.stderr
    assert json.loads(replay.stdout)["owner_password"] is None

    taken = await walletctl_run(["bootstrap", "--slug", slug, "--name", "X", "--owner-email", email], suite.environ())
    assert taken.exit_code == 2
    assert_one_line_error(taken.stderr, "auth answered ALREADY_EXISTS")

    down = await walletctl_run(args, suite.environ(AUTH_ADDR=DOWN_ADDRESS))
    assert down.exit_code == 2
    assert_one_line_error(down.stderr, "auth", "not reachable")


async def test_status_reports_every_service(suite: Suite) -> None:
    healthy = await walletctl_run(["status", "--json"], suite.environ())
    assert healthy.exit_code == 0, healthy.stdout
    assert {entry["status"] for entry in json.loads(healthy.stdout).values()} == {"SERVING"}

    one_down = await walletctl_run(["status", "--json"], suite.environ(RISK_ADDR=DOWN_ADDRESS))
    assert one_down.exit_code == 1
    assert json.loads(one_down.stdout)["risk"]["status"].startswith("DOWN")


async def test_signing_key_rotation(suite: Suite) -> None:
    before = await suite.auth.stub.GetJwks(auth_keys_pb2.GetJwksRequest())
    result = await walletctl_run(["keys", "rotate", "signing", "--json"], suite.environ())
    assert result.exit_code == 0, result.stderr
    rotated = json.loads(result.stdout)
    after = await suite.auth.stub.GetJwks(auth_keys_pb2.GetJwksRequest())
    assert rotated["active_key"]["key_id"] in {key.kid for key in after.keys}
    assert rotated["active_key"]["key_id"] not in {key.kid for key in before.keys}

    down = await walletctl_run(["keys", "rotate", "signing"], suite.environ(AUTH_ADDR=DOWN_ADDRESS))
    assert down.exit_code == 2
    assert_one_line_error(down.stderr, "not reachable")


async def test_kek_rotation_follows_the_rewrap_to_the_end(suite: Suite) -> None:
    tenant = await suite.tenant()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{suite.contacts.port}") as channel:
        stub = contacts_service_pb2_grpc.ContactsServiceStub(channel)
        for index in range(5):
            await stub.StoreContact(
                store_request(f"138 1234 56{index:02d}", customer_id=str(uuid.uuid4())),
                metadata=bearer(tenant.access_token),
            )
    result = await walletctl_run(["keys", "rotate", "kek"], suite.environ())
    assert result.exit_code == 0, result.stderr
    assert "COMPLETED" in result.stdout
    assert "5/5 data keys" in result.stdout

    down = await walletctl_run(["keys", "rotate", "kek"], suite.environ(CONTACTS_ADDR=DOWN_ADDRESS))
    assert down.exit_code == 2
    assert_one_line_error(down.stderr, "contacts", "not reachable")


async def test_vault_backup_then_restore_checks_the_hash(suite: Suite) -> None:
    backup = await walletctl_run(["vault", "backup", "--json"], suite.environ())
    assert backup.exit_code == 0, backup.stderr
    written = json.loads(backup.stdout)
    assert written["location"].startswith(str(suite.run_dir))

    wrong_hash = await walletctl_run(["vault", "restore", written["location"], "--sha256", "0" * 64], suite.environ())
    assert wrong_hash.exit_code == 2
    assert_one_line_error(wrong_hash.stderr, "contacts answered")

    # The vault holds the contacts of the KEK test (or none): either a restore or the documented refusal.
    restore = await walletctl_run(
        ["vault", "restore", written["location"], "--sha256", written["sha256"], "--json"], suite.environ()
    )
    if restore.exit_code == 0:
        assert json.loads(restore.stdout)["sha256"] == written["sha256"]
    else:
        assert_one_line_error(restore.stderr, "RESTORE_TARGET_NOT_EMPTY")

    down = await walletctl_run(["vault", "backup"], suite.environ(CONTACTS_ADDR=DOWN_ADDRESS))
    assert down.exit_code == 2
    assert_one_line_error(down.stderr, "contacts", "not reachable")


async def test_risk_rules_dry_run_then_publish_show_the_rule_diff(suite: Suite, tmp_path: Path) -> None:
    tenant = await suite.tenant()
    environ = suite.environ(WALLETCTL_ORGANIZATION_ID=tenant.organization_id)
    draft = json.loads(DEFAULT_RULES_DOCUMENT)
    changed_rule = draft["rules"][0]
    changed_rule["weight"] = changed_rule["weight"] + 5
    draft_file = tmp_path / "rules.json"
    draft_file.write_text(json.dumps(draft))

    dry = await walletctl_run(["risk", "rules", "dry-run", str(draft_file), "--json"], environ)
    assert dry.exit_code == 0, dry.stderr
    report = json.loads(dry.stdout)
    assert [(c["what"], c["change"]) for c in report["changes"]] == [(f"rule {changed_rule['id']}", "changed")]

    published = await walletctl_run(["risk", "rules", "publish", str(draft_file), "--comment", "heavier"], environ)
    assert published.exit_code == 0, published.stderr
    assert "v1 is active" in published.stdout
    assert changed_rule["id"] in published.stdout

    again = await walletctl_run(["risk", "rules", "publish", str(draft_file), "--json"], environ)
    assert again.exit_code == 0, again.stderr
    republished = json.loads(again.stdout)
    assert republished["changes"] == []
    assert int(republished["rule_set"]["version"]) == 2

    draft["thresholds"] = {"challenge": 90, "review": 60, "deny": 30}
    draft_file.write_text(json.dumps(draft))
    invalid = await walletctl_run(["risk", "rules", "publish", str(draft_file)], environ)
    assert invalid.exit_code == 2
    assert_one_line_error(invalid.stderr, "INVALID_ARGUMENT", "RULES_INVALID")

    down = await walletctl_run(["risk", "rules", "dry-run", str(draft_file)], suite.environ(RISK_ADDR=DOWN_ADDRESS))
    assert down.exit_code == 2
    assert_one_line_error(down.stderr, "risk", "not reachable")
