"""The walk-through itself: one new tenant, its owner, an approver and two customers going through the platform's main
flows. Mobile-facing calls go through the gateway's HTTP API; the back-office ones (policy, members, FX rates, risk
rules and cases) go straight to the services over gRPC with the tenant's own tokens: no platform credentials."""

from __future__ import annotations

import asyncio
import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from google.protobuf.field_mask_pb2 import FieldMask
from rich.console import Console
from rich.table import Table

from cli.trace import read_trace, render
from cli.trace_tree import SpanNode, build_forest, count_spans, normalize_trace_id
from demo.api import DemoError, Gateway, Services, TotpCodes, new_id
from wallet.auth.v1 import auth_identity_pb2, auth_members_pb2, auth_organizations_pb2
from wallet.ledger.v1 import ledger_fx_pb2
from wallet.risk.v1 import risk_cases_pb2, risk_rules_pb2

# A distinctive number (China Mobile range) the privacy scan looks for afterwards in every format.
DEMO_PHONE_NUMBER = "+86 139 0721 4653"
TOP_UP_MINOR = 200_000  # 2,000.00 EUR per customer
PAY_BY_PHONE_MINOR = 1_250
EXCHANGE_SELL_MINOR = 10_000  # 100.00 EUR
EUR_JPY_RATE = "161.237"
REVIEW_FROM_MINOR = 50_000  # the demo tenant's rule: 500.00 EUR and more goes to a person
REVIEWED_MINOR = 75_000
STATEMENT_PAGE_SIZE = 5
TRACE_WAIT_S = 20.0  # spans are exported in batches every few seconds
TRACE_POLL_S = 0.5
# The services whose spans the payment's trace must hold before it is printed (risk: the ledger's risk gate assesses it).
PAYMENT_TRACE_SERVICES = frozenset({"wallet-gateway", "wallet-ledger", "wallet-contacts", "wallet-risk"})

DEMO_RULES = {
    "thresholds": {"challenge": 30, "review": 60, "deny": 90},
    "rules": [
        {
            "id": "demo_large_transfer",
            "reason": "UNUSUAL_AMOUNT",
            "weight": 0,
            "outcome": "REVIEW",
            "when": {"all": [{"feature": "payment.amount_minor", "op": ">=", "value": REVIEW_FROM_MINOR}]},
        }
    ],
}


def money(amount: dict[str, Any]) -> str:
    minor = int(amount.get("amountMinor", "0"))
    currency = str(amount.get("currency", ""))
    if currency == "JPY":
        return f"{minor:,} JPY"
    return f"{minor / 100:,.2f} {currency}"


def new_password() -> str:
    """A fresh password per person and run: nothing to leak from the source, nothing reused between runs."""
    return secrets.token_urlsafe(24)


@dataclass
class Person:
    principal_id: str
    token: str
    name: str


class Narrator:
    def __init__(self, console: Console, steps: int) -> None:
        self.console = console
        self._steps = steps
        self._step = 0

    def step(self, title: str) -> None:
        self._step += 1
        self.console.print()
        self.console.rule(f"[bold]{self._step}/{self._steps}  {title}", align="left")

    def done(self, line: str) -> None:
        self.console.print(f"[green]✔[/green] {line}", highlight=False)

    def say(self, line: str) -> None:
        self.console.print(f"  {line}", highlight=False, style="dim")


@dataclass
class Walkthrough:
    gateway: Gateway
    services: Services
    narrator: Narrator
    run_dir: Path
    slug: str = ""
    owner_password: str = field(default_factory=new_password)

    STEPS: ClassVar[int] = 11

    async def run(self) -> None:
        owner = await self.sign_up_tenant()
        await self.enrol_mfa_and_log_in(owner)
        approver = await self.approver_member(owner)
        payer, payee = await self.customers()
        wallets = await self.open_wallets(owner, payer, payee)
        await self.top_up(owner, wallets)
        trace_id = await self.pay_by_phone(payer, payee, wallets)
        await self.exchange(owner, payer, wallets)
        await self.review_and_approve(owner, approver, payer, wallets)
        await self.statement(payer, wallets["payer_eur"])
        await self.who_read_my_data(payee)
        await self.print_trace(trace_id)

    # 1 ------------------------------------------------------------------------------------------------------------
    async def sign_up_tenant(self) -> Person:
        self.narrator.step("Sign up a tenant")
        self.slug = f"demo-{new_id()[:8]}"
        organization_id = new_id()
        reply = await self.gateway.post(
            "/v1/organizations:signUp",
            {
                "slug": self.slug,
                "displayName": "Demo Wallet Co",
                "ownerEmail": f"owner@{self.slug}.example.com",
                "ownerDisplayName": "Olive Owner",
                "ownerPassword": self.owner_password,
            },
            key=organization_id,
        )
        owner = Person(reply["ownerMemberId"], reply["tokens"]["accessToken"], "Olive Owner")
        self.narrator.done(f"tenant signed up: {self.slug} (organization {organization_id}), owner Olive")
        return owner

    # 2 ------------------------------------------------------------------------------------------------------------
    async def enrol_mfa_and_log_in(self, owner: Person) -> None:
        self.narrator.step("Enrol TOTP MFA and log in with it")
        await self._enrol_and_login(owner, f"owner@{self.slug}.example.com", self.owner_password)
        self.narrator.done("MFA enrolled; logged in with password + TOTP (token acr=mfa)")
        await self.services.call(
            "auth",
            self.services.auth.UpdateOrganizationPolicy,
            auth_organizations_pb2.UpdateOrganizationPolicyRequest(
                policy=auth_organizations_pb2.OrganizationPolicy(customer_self_sign_up=True),
                update_mask=FieldMask(paths=["customer_self_sign_up"]),
                request_id=new_id(),
            ),
            owner.token,
        )
        self.narrator.say("the owner turned on customer self sign-up for the tenant")

    async def _enrol_and_login(self, person: Person, login: str, password: str) -> None:
        enrolment = await self.gateway.post("/v1/me/totp:enroll", {}, token=person.token)
        codes = TotpCodes(enrolment["secretBase32"])  # what the authenticator app would show
        confirmed = await self.gateway.post("/v1/me/totp:confirm", {"totpCode": codes.next()}, token=person.token)
        self.narrator.say(f"{person.name}: TOTP confirmed, {len(confirmed['recoveryCodes'])} recovery codes issued")
        challenge = await self.gateway.post(
            "/v1/sessions:login", {"organizationSlug": self.slug, "login": login, "password": password}
        )
        if challenge.get("outcome") != "LOGIN_OUTCOME_MFA_REQUIRED":
            raise DemoError(f"login after enrolment did not ask for MFA: {challenge.get('outcome')}")
        self.narrator.say(f"{person.name}: password accepted, MFA required")
        verified = await self.gateway.post(
            "/v1/sessions:verifyMfa",
            {"mfaChallengeId": challenge["mfaChallenge"]["mfaChallengeId"], "totpCode": codes.next()},
        )
        person.token = verified["tokens"]["accessToken"]

    # 3 ------------------------------------------------------------------------------------------------------------
    async def approver_member(self, owner: Person) -> Person:
        self.narrator.step("Invite an approver (resolves transfers held for review)")
        member_id = new_id()
        email = f"approver@{self.slug}.example.com"
        approver_password = new_password()
        invited = await self.services.call(
            "auth",
            self.services.auth.InviteMember,
            auth_members_pb2.InviteMemberRequest(
                member_id=member_id, email=email, display_name="Abe Approver", roles=[auth_identity_pb2.ROLE_APPROVER]
            ),
            owner.token,
        )
        await self.gateway.post(
            "/v1/invitations:accept",
            {"invitationToken": invited.invitation.invitation_token, "password": approver_password},
        )
        login = await self.gateway.post(
            "/v1/sessions:login", {"organizationSlug": self.slug, "login": email, "password": approver_password}
        )
        approver = Person(member_id, login["tokens"]["accessToken"], "Abe Approver")
        # Resolving a case needs a fresh step-up: the approver signs in with MFA too.
        await self._enrol_and_login(approver, email, approver_password)
        self.narrator.done("approver Abe invited, accepted, and logged in with MFA")
        return approver

    # 4 ------------------------------------------------------------------------------------------------------------
    async def customers(self) -> tuple[Person, Person]:
        self.narrator.step("Customers sign up in the app")
        people = []
        for name in ("Paula Payer", "Quinn Payee"):
            customer_id = new_id()
            first = name.split()[0].lower()
            signed_up = await self.gateway.post(
                "/v1/customers:signUp",
                {
                    "organizationSlug": self.slug,
                    "email": f"{first}@{self.slug}.example.com",
                    "displayName": name,
                    "password": new_password(),
                },
                key=customer_id,
            )
            people.append(Person(customer_id, signed_up["tokens"]["accessToken"], name))
        self.narrator.done("customers signed up: Paula (payer) and Quinn (payee)")
        return people[0], people[1]

    # 5 ------------------------------------------------------------------------------------------------------------
    async def open_wallets(self, owner: Person, payer: Person, payee: Person) -> dict[str, str]:
        self.narrator.step("Open wallets in two currencies (EUR and JPY)")
        wanted = {
            "suspense": ("ACCOUNT_KIND_SUSPENSE", "EUR", ""),
            "fx_eur": ("ACCOUNT_KIND_FX_LIQUIDITY", "EUR", ""),
            "fx_jpy": ("ACCOUNT_KIND_FX_LIQUIDITY", "JPY", ""),
            "payer_eur": ("ACCOUNT_KIND_CUSTOMER_WALLET", "EUR", payer.principal_id),
            "payer_jpy": ("ACCOUNT_KIND_CUSTOMER_WALLET", "JPY", payer.principal_id),
            "payee_eur": ("ACCOUNT_KIND_CUSTOMER_WALLET", "EUR", payee.principal_id),
        }
        accounts: dict[str, str] = {}
        for name, (kind, currency, customer_id) in wanted.items():
            account_id = new_id()
            body = {"kind": kind, "currency": currency}
            if customer_id:
                body["customerId"] = customer_id
            await self.gateway.post("/v1/accounts", body, token=owner.token, key=account_id)
            accounts[name] = account_id
        self.narrator.done("wallets opened: Paula EUR + JPY, Quinn EUR; a suspense account and EUR/JPY FX liquidity")
        return accounts

    # 6 ------------------------------------------------------------------------------------------------------------
    async def top_up(self, owner: Person, wallets: dict[str, str]) -> None:
        self.narrator.step("Top up from the tenant's suspense account")
        reply = await self.gateway.post(
            "/v1/transfers",
            {
                "debitAccountId": wallets["suspense"],
                "creditAccountId": wallets["payer_eur"],
                "amount": {"currency": "EUR", "amountMinor": str(TOP_UP_MINOR)},
                "reference": "card top-up",
            },
            token=owner.token,
            key=new_id(),
        )
        self.narrator.done(f"topped up Paula's EUR wallet: {money(reply['transfer']['amount'])}")

    # 7 ------------------------------------------------------------------------------------------------------------
    async def pay_by_phone(self, payer: Person, payee: Person, wallets: dict[str, str]) -> str:
        self.narrator.step("Pay by phone number")
        contact_id = new_id()
        stored = await self.gateway.post(
            "/v1/contacts",
            {
                "phoneNumber": DEMO_PHONE_NUMBER,
                "purposes": ["PURPOSE_PAYEE_LOOKUP", "PURPOSE_TRANSACTION_ALERTS"],
                "consentReference": "demo-consent-1",
                "retention": "31536000s",
            },
            token=payee.token,
            key=contact_id,
        )
        masked = stored["contact"]["maskedPhoneNumber"]
        self.narrator.say(f"Quinn stored a phone number in the encrypted vault; the app shows it as {masked}")
        await self.gateway.post(
            f"/v1/contacts/{contact_id}:setDiscoverability",
            {"discoverable": True, "defaultAccountId": wallets["payee_eur"]},
            token=payee.token,
            key=new_id(),
        )
        self.narrator.say("Quinn opted in to be found by that number, paid into the EUR wallet")
        paid = await self.gateway.post(
            "/v1/transfers:payByPhone",
            {
                "debitAccountId": wallets["payer_eur"],
                "phoneNumber": DEMO_PHONE_NUMBER,
                "amount": {"currency": "EUR", "amountMinor": str(PAY_BY_PHONE_MINOR)},
                "reference": "lunch",
            },
            token=payer.token,
            key=new_id(),
        )
        traceparent = self.gateway.last_traceparent
        transfer = paid["transfer"]
        if transfer["creditAccountId"] != wallets["payee_eur"]:
            raise DemoError("the payment by phone did not reach the payee's wallet")
        self.narrator.done(
            f"paid by phone: {money(transfer['amount'])} to {paid['maskedPhoneNumber']} ({transfer['status']})"
        )
        self.narrator.say(f"traceparent: {traceparent}")
        return normalize_trace_id(traceparent)

    # 8 ------------------------------------------------------------------------------------------------------------
    async def exchange(self, owner: Person, payer: Person, wallets: dict[str, str]) -> None:
        self.narrator.step("Exchange EUR to JPY")
        await self.services.call(
            "ledger",
            self.services.ledger.SetFxRate,
            ledger_fx_pb2.SetFxRateRequest(
                base_currency="EUR", quote_currency="JPY", rate=EUR_JPY_RATE, request_id=new_id()
            ),
            owner.token,
        )
        self.narrator.say(f"finance set the EUR/JPY rate: {EUR_JPY_RATE}")
        quote_id = new_id()
        quote_reply = await self.gateway.post(
            "/v1/exchangeQuotes",
            {
                "quoteId": quote_id,
                "debitAccountId": wallets["payer_eur"],
                "creditAccountId": wallets["payer_jpy"],
                "sellAmount": {"currency": "EUR", "amountMinor": str(EXCHANGE_SELL_MINOR)},
            },
            token=payer.token,
            key=quote_id,
        )
        quoted = quote_reply["quote"]
        self.narrator.say(f"quote: sell {money(quoted['sellAmount'])}, buy {money(quoted['buyAmount'])}")
        exchange_id = new_id()
        await self.gateway.post(
            "/v1/exchanges", {"exchangeId": exchange_id, "quoteId": quote_id}, token=payer.token, key=exchange_id
        )
        yen = await self.gateway.get(f"/v1/accounts/{wallets['payer_jpy']}", token=payer.token)
        self.narrator.done(
            f"exchanged through the FX liquidity accounts: JPY wallet holds "
            f"{money(yen['account']['balance']['available'])}"
        )

    # 9 ------------------------------------------------------------------------------------------------------------
    async def review_and_approve(
        self, owner: Person, approver: Person, payer: Person, wallets: dict[str, str]
    ) -> None:
        self.narrator.step("A large transfer held for review, then approved")
        published = await self.services.call(
            "risk",
            self.services.risk.PublishRules,
            risk_rules_pb2.PublishRulesRequest(
                document=json.dumps(DEMO_RULES),
                format=risk_rules_pb2.RULE_FORMAT_JSON,
                expected_active_version=0,
                request_id=new_id(),
            ),
            owner.token,
        )
        self.narrator.say(
            f"risk rules v{published.rule_set.version} published: {REVIEW_FROM_MINOR / 100:,.2f} EUR and more → REVIEW"
        )
        held = (
            await self.gateway.post(
                "/v1/transfers",
                {
                    "debitAccountId": wallets["payer_eur"],
                    "creditAccountId": wallets["payee_eur"],
                    "amount": {"currency": "EUR", "amountMinor": str(REVIEWED_MINOR)},
                    "reference": "rent",
                },
                token=payer.token,
                key=new_id(),
            )
        )["transfer"]
        if held["status"] != "TRANSFER_STATUS_AWAITING_REVIEW":
            raise DemoError(f"the large transfer was not held for review: {held['status']}")
        case_id = held["risk"]["caseId"]
        self.narrator.done(f"transfer of {money(held['amount'])} held for review (risk case {case_id})")
        resolved = await self.services.call(
            "risk",
            self.services.risk.ResolveCase,
            risk_cases_pb2.ResolveCaseRequest(
                case_id=case_id,
                resolution=risk_cases_pb2.CASE_RESOLUTION_APPROVE,
                note="called the customer: rent for the new flat",
                request_id=new_id(),
            ),
            approver.token,
        )
        self.narrator.say(f"Abe approved the case: {risk_cases_pb2.CaseStatus.Name(resolved.review_case.status)}")
        posted = (await self.gateway.get(f"/v1/transfers/{held['transferId']}", token=payer.token))["transfer"]
        if posted["status"] != "TRANSFER_STATUS_POSTED":
            raise DemoError(f"the approved transfer is {posted['status']}, not posted")
        self.narrator.done("approved transfer posted: TRANSFER_STATUS_POSTED")

    # 10 -----------------------------------------------------------------------------------------------------------
    async def statement(self, payer: Person, account_id: str) -> None:
        self.narrator.step("Paula's EUR statement (first page)")
        page = await self.gateway.get(
            f"/v1/accounts/{account_id}/statement", token=payer.token, params={"pageSize": STATEMENT_PAGE_SIZE}
        )
        table = Table("#", "kind", "side", "amount", "running balance", "reference")
        lines = page.get("lines", [])
        for line in lines:
            table.add_row(
                str(line["sequence"]),
                str(line.get("kind", "")).removeprefix("TRANSFER_KIND_"),
                str(line.get("side", "")).removeprefix("ENTRY_SIDE_"),
                money(line["amount"]),
                money(line["runningBalance"]),
                str(line.get("reference", "")),
            )
        self.narrator.console.print(table)
        self.narrator.done(f"statement page: {len(lines)} lines")

    # 11 -----------------------------------------------------------------------------------------------------------
    async def who_read_my_data(self, payee: Person) -> None:
        self.narrator.step("Who read my data? (Quinn's access log in the vault)")
        log = await self.gateway.get(f"/v1/subjects/{payee.principal_id}/accessLog", token=payee.token)
        entries = log.get("entries", [])
        table = Table("when", "action", "by", "on behalf of")
        for entry in entries:
            table.add_row(
                str(entry.get("occurredAt", "")),
                str(entry.get("action", "")).removeprefix("ACCESS_ACTION_"),
                str(entry.get("actorPrincipalId", "")),
                str(entry.get("onBehalfOfPrincipalId", "")),
            )
        self.narrator.console.print(table)
        self.narrator.done(f"access log: {len(entries)} entry(ies) for Quinn's contact")

    # trace ---------------------------------------------------------------------------------------------------------
    async def print_trace(self, trace_id: str) -> None:
        self.narrator.console.print()
        self.narrator.console.rule("[bold]The payment by phone, as one trace", align="left")
        roots = await self._wait_for_trace(trace_id)
        self.narrator.console.print(render(trace_id, roots))
        services = sorted(_services(roots))
        self.narrator.done(f"trace {trace_id}: {count_spans(roots)} spans across {', '.join(services)}")

    async def _wait_for_trace(self, trace_id: str) -> list[SpanNode]:
        """The trace's span tree once it is whole: each process exports its spans in batches every few seconds, so
        a child can be on disk before its parent (which ends later). Whole = one root (every parent is there) and
        spans from every service the payment crosses."""
        directory = self.run_dir / "traces"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + TRACE_WAIT_S
        roots: list[SpanNode] = []
        while loop.time() < deadline:
            roots = build_forest(read_trace(directory, trace_id))
            if len(roots) == 1 and _services(roots) >= PAYMENT_TRACE_SERVICES:
                return roots
            await asyncio.sleep(TRACE_POLL_S)
        if not roots:
            raise DemoError(f"no spans of trace {trace_id} in {directory} within {TRACE_WAIT_S:.0f} s")
        return roots  # printed as far as it got (a service may run without the risk gate, or export elsewhere)


def _services(roots: list[SpanNode]) -> set[str]:
    found: set[str] = set()
    pending = list(roots)
    while pending:
        span = pending.pop()
        found.add(span.service)
        pending.extend(span.children)
    return found
