"""``walletctl risk rules publish|dry-run``: a tenant's risk rule set, with a rule-by-rule diff against the active
version, and (dry-run) how recorded decisions would change under the draft."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
from google.protobuf import timestamp_pb2
from rich.table import Table

from cli.output import JsonFlag, OrganizationOption, as_dict, console, execute, fail, print_json
from cli.rules_diff import Change, diff_documents
from cli.session import CliError, Session
from services.kit.config import Env
from wallet.risk.v1 import risk_assessments_pb2, risk_rules_pb2

app = typer.Typer(help="Risk engine administration.", no_args_is_help=True)
rules_app = typer.Typer(help="The tenant's rule set.", no_args_is_help=True)
app.add_typer(rules_app, name="rules")

DRY_RUN_WINDOW_H_DEFAULT = 24.0
CHANGE_CELL_CHARS_MAX = 80


def _read_draft(path: Path) -> tuple[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise fail(f"cannot read {path}: {err.strerror}") from None
    try:
        return text, json.loads(text)
    except ValueError as err:
        raise fail(f"{path} is not JSON (rule sets are JSON documents): {err}") from None


def _cell(text: str) -> str:
    return text if len(text) <= CHANGE_CELL_CHARS_MAX else text[:CHANGE_CELL_CHARS_MAX] + "…"


def _diff_table(changes: list[Change], title: str) -> Table:
    table = Table("what", "change", "active", "draft", title=title)
    colours = {"added": "green", "removed": "red", "changed": "yellow"}
    for change in changes:
        colour = colours[change.change]
        table.add_row(change.what, f"[{colour}]{change.change}[/{colour}]", _cell(change.before), _cell(change.after))
    return table


async def _active(session: Session) -> risk_rules_pb2.RuleSet:
    return (await session.call("risk", session.risk.GetRules, risk_rules_pb2.GetRulesRequest())).rule_set


def _parsed_active(rule_set: risk_rules_pb2.RuleSet) -> Any:
    try:
        return json.loads(rule_set.document) if rule_set.document else {}
    except ValueError:
        raise CliError(f"active rule set v{rule_set.version} is not JSON") from None


async def _publish(
    organization_id: str | None, document: str, draft: Any, comment: str
) -> tuple[list[Change], risk_rules_pb2.RuleSet]:
    async with Session(Env(), organization_id=organization_id) as session:
        active = await _active(session)
        changes = diff_documents(_parsed_active(active), draft)
        request = risk_rules_pb2.PublishRulesRequest(
            document=document,
            format=risk_rules_pb2.RULE_FORMAT_JSON,
            expected_active_version=active.version,
            comment=comment,
            request_id=str(uuid.uuid4()),
        )
        published = (await session.call("risk", session.risk.PublishRules, request)).rule_set
        return changes, published


@rules_app.command("publish")
def publish(
    rules_file: Annotated[Path, typer.Argument(help="the rule set, JSON")],
    comment: Annotated[str, typer.Option("--comment", help="note for the version history")] = "",
    organization_id: OrganizationOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Publish a rule set as the tenant's next version (fails if someone published since the active one was read)."""
    document, draft = _read_draft(rules_file)
    changes, published = execute(_publish(organization_id, document, draft, comment))
    if as_json:
        print_json({"changes": [asdict(change) for change in changes], "rule_set": as_dict(published)})
        return
    console.print(_diff_table(changes, f"changes published as v{published.version}"))
    console.print(f"rule set v{published.version} is active (checksum {published.checksum[:12]})")


async def _dry_run(
    organization_id: str | None, document: str, draft: Any, window_h: float
) -> tuple[list[Change], risk_rules_pb2.DryRunResponse]:
    async with Session(Env(), organization_id=organization_id) as session:
        changes = diff_documents(_parsed_active(await _active(session)), draft)
        end = timestamp_pb2.Timestamp()
        end.FromNanoseconds(time.time_ns())
        start = timestamp_pb2.Timestamp()
        start.FromNanoseconds(time.time_ns() - int(window_h * 3600 * 1e9))
        request = risk_rules_pb2.DryRunRequest(
            document=document, format=risk_rules_pb2.RULE_FORMAT_JSON, start_time=start, end_time=end
        )
        return changes, await session.call("risk", session.risk.DryRun, request)


def _decision(value: risk_assessments_pb2.Decision.ValueType) -> str:
    return risk_assessments_pb2.Decision.Name(value).removeprefix("DECISION_")


@rules_app.command("dry-run")
def dry_run(
    rules_file: Annotated[Path, typer.Argument(help="the draft rule set, JSON")],
    window_h: Annotated[
        float, typer.Option("--hours", help="replay the assessments of the last N hours")
    ] = DRY_RUN_WINDOW_H_DEFAULT,
    organization_id: OrganizationOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Replay recorded assessments through a draft and show what would change; publishes nothing."""
    document, draft = _read_draft(rules_file)
    changes, report = execute(_dry_run(organization_id, document, draft, window_h))
    if as_json:
        print_json({"changes": [asdict(change) for change in changes], "report": as_dict(report)})
        return
    console.print(_diff_table(changes, "draft vs active"))
    moved = Table("recorded", "draft", "assessments", title=f"{report.assessments_replayed} assessments replayed")
    for row in report.changes:
        moved.add_row(_decision(row.recorded_decision), _decision(row.draft_decision), str(row.count))
    console.print(moved)
    console.print(f"{report.flipped_total} decisions would change")
