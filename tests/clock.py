"""The tests' clock: "now" for the whole session, for one test, or for a worker subprocess.

- `BPU_TEST_CLOCK=2026-12-31T23:30:00Z pytest ...` runs the whole session (and every Celery
  worker it starts) at that instant, the clock ticking from there (tests/conftest.py);
- `@pytest.mark.clock("2026-11-25T23:30:00Z")` pins one test's clock at an instant;
- `@pytest.mark.two_clocks` runs a test twice, on the session's Jakarta day (or `day=`): at
  23:30 UTC the evening before (06:30 WIB) and at 00:30 WIB (17:30 UTC the day before) - the
  hours when the UTC date and the Jakarta date differ; without `day=` they also carry the
  marker `today`, the date-sensitive part `make test` runs again at 2026-12-31T23:30:00Z;
- `@pytest.mark.real_clock("why")` keeps the real time under BPU_TEST_CLOCK, for the rare test
  that compares a time Python stamped with one the database stamped;
- `python -m tests.clock -m celery -A bpjsportal worker ...` runs celery (or gunicorn, or
  manage.py) at the test's "now" (`subprocess_env()` hands it the offset): a worker never
  reads another clock than its test.

A pinned clock ticks (tick=True): timeouts and polling keep working, and a test lasts seconds,
far from midnight. PostgreSQL's now() is never moved: product code takes "today" from Python.
"""

from __future__ import annotations

import os
import runpy
import sys
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import time_machine

ENV = "BPU_TEST_CLOCK"
OFFSET_ENV = "BPU_TEST_CLOCK_OFFSET"
JAKARTA = ZoneInfo("Asia/Jakarta")
# parametrize ids of `two_clocks` -> the local time on the Jakarta day
TWO_CLOCKS = {"0630WIB-2330UTC": time(6, 30), "0030WIB-1730UTC": time(0, 30)}


def parse_instant(text: str) -> datetime:
    """An ISO 8601 instant with its offset (`Z` or `+07:00`); a naive one is refused."""
    instant = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if instant.tzinfo is None:
        raise ValueError(f"{ENV} needs an offset (Z, +07:00): {text!r}")
    return instant.astimezone(UTC)


def session_instant() -> datetime | None:
    value = os.environ.get(ENV, "").strip()
    return parse_instant(value) if value else None


def jakarta_day() -> date:
    """The Jakarta date of the (possibly travelled) clock now."""
    return datetime.now(JAKARTA).date()


def two_clocks_instant(day: date, clock_id: str) -> datetime:
    return datetime.combine(day, TWO_CLOCKS[clock_id], tzinfo=JAKARTA).astimezone(UTC)


def real_now() -> datetime:
    return datetime.fromtimestamp(time_machine.escape_hatch.time.time(), UTC)


def offset_seconds() -> float:
    """How far this process's clock is from the real one (0 when not travelling)."""
    if not time_machine.escape_hatch.is_travelling():
        return 0.0
    return datetime.now(UTC).timestamp() - time_machine.escape_hatch.time.time()


def subprocess_env() -> dict[str, str]:
    """Environment for a subprocess started through `python -m tests.clock`: the same now."""
    return {OFFSET_ENV: repr(offset_seconds())}


def _travel_from_env() -> None:
    offset = float(os.environ.get(OFFSET_ENV) or 0)
    if abs(offset) >= 1:
        real = datetime.now(UTC)
        time_machine.travel(real + timedelta(seconds=offset), tick=True).start()


def main() -> None:
    """`python -m tests.clock -m MODULE ARGS...` (or `... SCRIPT.py ARGS...`): run a program
    (celery, gunicorn, manage.py) as `python -m MODULE` would, at the offset's now."""
    _travel_from_env()
    args = sys.argv[1:]
    if args[:1] == ["-m"]:
        module, *rest = args[1:]
        sys.argv = [module, *rest]
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    else:
        script, *rest = args
        sys.argv = [script, *rest]
        runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
