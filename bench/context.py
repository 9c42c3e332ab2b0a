"""What every section gets: the Postgres (and, on demand, Redis) to measure on, the h2load binary if there is one,
and the figures measured so far in this run (ratio figures divide by the baseline measured in the same run)."""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from bench.errors import BenchError
from bench.figures import Figure
from devstack import start_embedded_redis


@dataclass(slots=True)
class BenchContext:
    repo_dir: Path
    # Bench state (embedded servers' data, load-generator logs): $WALLET_RUN_DIR/bench.
    work_dir: Path
    postgres_server_url: str
    # Where that Postgres comes from, for the report: "DATABASE_URL" or "embedded".
    postgres_source: str
    h2load: Path | None
    cleanup: ExitStack
    redis_url_given: str | None = None
    figures: dict[str, Figure] = field(default_factory=dict)
    _redis_url: str | None = None

    def redis_url(self) -> str:
        """REDIS_URL, or an embedded Redis started on first use and stopped when the bench ends."""
        if self._redis_url is None:
            if self.redis_url_given is not None:
                self._redis_url = self.redis_url_given
            else:
                redis = start_embedded_redis(self.work_dir / "redis")
                self.cleanup.callback(redis.stop)
                self._redis_url = redis.url
        return self._redis_url

    def figure(self, name: str) -> Figure:
        """A figure measured earlier in this run (sections declare what they need in ``requires``)."""
        try:
            return self.figures[name]
        except KeyError:
            raise BenchError(f"{name} was not measured in this run; its section must run first") from None

    def h2load_binary(self) -> Path:
        if self.h2load is None:
            raise BenchError("h2load is not available: apt-get install nghttp2-client")
        return self.h2load
