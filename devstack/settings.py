"""The runner's own settings, read once from the environment; a malformed one stops it with one line."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from devstack.errors import DevstackError
from devstack.topology import PORT_OFFSET_MAX

RUN_DIR_DEFAULT = ".run"


@dataclass(frozen=True, slots=True)
class Settings:
    repo_dir: Path
    run_dir: Path
    port_offset: int
    # Server URLs from the developer; None means "start an embedded one".
    database_url: str | None
    redis_url: str | None

    @property
    def logs_dir(self) -> Path:
        return self.run_dir / "logs"


def load_settings(environ: Mapping[str, str], repo_dir: Path) -> Settings:
    run_dir = Path(environ.get("WALLET_RUN_DIR") or RUN_DIR_DEFAULT)
    if not run_dir.is_absolute():
        run_dir = repo_dir / run_dir
    return Settings(
        repo_dir=repo_dir,
        run_dir=run_dir.resolve(),
        port_offset=_port_offset(environ.get("WALLET_PORT_OFFSET")),
        database_url=environ.get("DATABASE_URL") or None,
        redis_url=environ.get("REDIS_URL") or None,
    )


def _port_offset(raw: str | None) -> int:
    if raw is None or raw.strip() == "":
        return 0
    try:
        offset = int(raw)
    except ValueError:
        raise DevstackError(f"WALLET_PORT_OFFSET must be an integer, got {raw!r}") from None
    if not 0 <= offset <= PORT_OFFSET_MAX:
        raise DevstackError(f"WALLET_PORT_OFFSET must be between 0 and {PORT_OFFSET_MAX}, got {offset}")
    return offset
