import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from devstack.children import Child, ChildSpec
from devstack.errors import DevstackError
from devstack.readiness import Probe
from devstack.supervisor import FAILURE_LOG_LINES, Supervisor, child_failure


def _spec(tmp_path: Path, name: str, code: str = "pass", *, one_shot: bool = False) -> ChildSpec:
    return ChildSpec(
        name=name,
        argv=(sys.executable, "-c", code),
        env={},
        log_path=tmp_path / f"{name}.log",
        cwd=tmp_path,
        one_shot=one_shot,
    )


class ExitedChild(Child):
    """A child that has already exited with ``code`` (no process behind it)."""

    def __init__(self, spec: ChildSpec, code: int) -> None:
        super().__init__(spec)
        self.code = code

    def exit_code(self) -> int | None:
        return self.code


class CountingProbe:
    def __init__(self, ready_after: int | None) -> None:
        self.ready_after = ready_after
        self.calls = 0

    def ready(self) -> bool:
        self.calls += 1
        return self.ready_after is not None and self.calls >= self.ready_after

    def close(self) -> None:
        pass


def test_child_failure_is_one_line_with_the_log_tail_as_details(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "auth")
    spec.log_path.write_text("".join(f"l{number}\n" for number in range(50)))
    error = child_failure(Child(spec), "auth failed with exit code 3")
    assert str(error) == "auth failed with exit code 3; see its log below"
    assert error.details[0] == f"--- last lines of {spec.log_path} ---"
    assert list(error.details[1:]) == [f"l{number}" for number in range(50 - FAILURE_LOG_LINES, 50)]


def test_wait_ready_returns_once_every_probe_is_ready(tmp_path: Path) -> None:
    first, second = CountingProbe(ready_after=1), CountingProbe(ready_after=2)
    probes: list[tuple[Child, Probe]] = [
        (Child(_spec(tmp_path, "auth")), first),
        (Child(_spec(tmp_path, "risk")), second),
    ]
    Supervisor().wait_ready(probes, timeout_s=60)
    assert (first.calls, second.calls) == (1, 2)  # a ready probe is not asked again


def test_wait_ready_fails_when_a_child_dies_first(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "ledger")
    spec.log_path.write_text("FATAL: database wallet_ledger does not exist\n")
    probe = CountingProbe(ready_after=None)
    with pytest.raises(
        DevstackError, match=r"^ledger exited with code 2 before it was ready; see its log below$"
    ) as caught:
        Supervisor().wait_ready([(ExitedChild(spec, 2), probe)], timeout_s=60)
    assert caught.value.details[-1] == "FATAL: database wallet_ledger does not exist"
    assert probe.calls == 0


def test_wait_ready_names_every_component_still_waiting_at_the_deadline(tmp_path: Path) -> None:
    probes: list[tuple[Child, Probe]] = [
        (Child(_spec(tmp_path, "auth")), CountingProbe(ready_after=None)),
        (Child(_spec(tmp_path, "ledger")), CountingProbe(ready_after=1)),
        (Child(_spec(tmp_path, "gateway")), CountingProbe(ready_after=None)),
    ]
    with pytest.raises(DevstackError, match=r"^not ready after 0 s: auth, gateway; see its log below$"):
        Supervisor().wait_ready(probes, timeout_s=0)


def test_first_exited_ignores_one_shot_jobs(tmp_path: Path) -> None:
    supervisor = Supervisor()
    migration = ExitedChild(_spec(tmp_path, "auth-migrate", one_shot=True), 0)
    server = ExitedChild(_spec(tmp_path, "auth"), 1)
    supervisor._tiers = [[migration], [Child(_spec(tmp_path, "risk"))]]
    assert supervisor.first_exited() is None
    supervisor._tiers.append([server])
    assert supervisor.first_exited() is server


def test_run_to_completion_reports_the_failing_job_and_its_log(tmp_path: Path) -> None:
    guarded: list[str] = []

    @contextmanager
    def guard() -> Iterator[None]:
        guarded.append("start")
        yield
        guarded.append("end")

    supervisor = Supervisor(start_guard=guard)
    specs = [
        _spec(tmp_path, "auth-migrate", one_shot=True),
        _spec(tmp_path, "ledger-migrate", "import sys; print('relation already exists'); sys.exit(3)", one_shot=True),
    ]
    try:
        with pytest.raises(DevstackError, match=r"^ledger-migrate failed with exit code 3") as caught:
            supervisor.run_to_completion(specs, timeout_s=60)
        assert caught.value.details[-1] == "relation already exists"
        assert guarded == ["start", "end"]
    finally:
        assert supervisor.stop_all(timeout_s=10) == []
    assert supervisor._tiers == []


def test_run_to_completion_returns_when_all_succeed(tmp_path: Path) -> None:
    supervisor = Supervisor()
    supervisor.run_to_completion(
        [_spec(tmp_path, "a", one_shot=True), _spec(tmp_path, "b", one_shot=True)], timeout_s=60
    )
    assert supervisor.first_exited() is None
    assert supervisor.stop_all(timeout_s=10) == []
