"""Calendar-aware freshness: by when each asset family's data must have arrived, and checks for it.

Dagster's ``build_last_update_freshness_checks`` knows cron and a lag, not the NYSE calendar: it alarms on
Thanksgiving and after an early close. Here the expectation comes from the schedule table itself
(``trading_data.scheduling.SCHEDULE_SPECS``: the same ticks the schedules run, and each one's grace) and
the calendar:

- the *due tick* is the last scheduled tick of today's session with ``tick + grace <= now``;
- before today's first tick is due, and all day on a weekend or holiday, it is the last tick of the
  previous session: that session has closed, so it must be complete (health at 08:00, overnight or on
  a Saturday says when yesterday's data is missing instead of "no expectation");
- on an early-close session, collection ticks after the close never run (``decide_tick`` skips them), so
  the due tick stays the last tick at or before the close for the rest of the day;
- with ``market_hours_only``, collection ticks outside open..close are ignored as well.

The asset's latest materialization *of the due tick's session partition* must be at or after the due tick,
and must have stored rows if it ran after the open (before the open a feed may hold nothing yet).

=============  ====================================  ======
family         ticks (New York, sessions)            grace
=============  ====================================  ======
selection      09:35                                 10 min
sizing         09:45                                 10 min
prices         hourly at :05, 09:05-15:05            20 min
quotes         every 15 min, 09:00-15:45             10 min
trades         every 30 min, 09:00-15:30             15 min
options        09:15, 11:15, 13:15, 15:15            30 min
indicators     09:30, 13:30                          15 min
daily_report   16:30 (early closes included)         30 min
=============  ====================================  ======
"""

import datetime as dt
from dataclasses import dataclass
from typing import Any

from trading_data.calendar import NEW_YORK, Session, is_session, previous_sessions, session
from trading_data.scheduling import SCHEDULE_SPECS, SPECS_BY_NAME, ScheduleSpec


@dataclass(frozen=True)
class Family:
    name: str
    asset: str
    schedule: str
    grace: dt.timedelta


# One family per schedule of the table, in its order: the asset, the schedule and the grace come from there.
FAMILIES: dict[str, Family] = {
    spec.freshness.family: Family(
        spec.freshness.family, spec.freshness.asset, spec.name, spec.freshness.grace
    )
    for spec in SCHEDULE_SPECS
}
FAMILY_BY_ASSET: dict[str, Family] = {f.asset: f for f in FAMILIES.values()}


def family(name: str) -> Family:
    """A family by its name (``quotes``) or its asset's name (``options_flow``)."""
    found = FAMILIES.get(name) or FAMILY_BY_ASSET.get(name)
    if found is None:
        raise ValueError(f"unknown asset family {name!r}; known: {sorted(FAMILIES)}")
    return found


@dataclass(frozen=True)
class Expectation:
    """Data must have been materialized at or after ``due_tick`` (``deadline`` = tick + grace has passed)."""

    family: str
    asset: str
    session: str
    due_tick: dt.datetime
    deadline: dt.datetime
    schedule: str
    next_tick: dt.datetime | None = None
    """The session's next tick after ``now``, if one is left."""

    def describe(self) -> str:
        return (
            f"{self.asset}: the {self.due_tick.strftime('%H:%M')} ET {self.schedule} tick of {self.session} "
            f"was due by {self.deadline.strftime('%H:%M')} ET"
        )


def _session_ticks(spec: ScheduleSpec, sess: Session, market_hours_only: bool) -> list[dt.datetime]:
    """The ticks of ``spec`` that run on ``sess`` (collection ticks after an early close never run)."""
    ticks = spec.tick_times(sess.date)
    if spec.kind == "collection":
        ticks = [t for t in ticks if not (sess.is_early_close and t > sess.close)]
        if market_hours_only:
            ticks = [t for t in ticks if sess.open <= t <= sess.close]
    return ticks


def freshness_expectation(
    asset_family: str, now: dt.datetime, *, market_hours_only: bool = False
) -> Expectation | None:
    """The tick whose data must be present at ``now``: today's last due tick, else (before today's first
    tick is due, or on a day that is no session) the previous session's last tick. None only when the
    schedule has no tick at all on that session (``market_hours_only`` can filter every tick out)."""
    fam = family(asset_family)
    spec = SPECS_BY_NAME[fam.schedule]
    now_ny = now.replace(tzinfo=NEW_YORK) if now.tzinfo is None else now.astimezone(NEW_YORK)
    day = now_ny.date()
    due: list[dt.datetime] = []
    later: dt.datetime | None = None
    if is_session(day):
        sess = session(day)
        ticks = _session_ticks(spec, sess, market_hours_only)
        due = [t for t in ticks if t + fam.grace <= now_ny]
        later = next((t for t in ticks if t > now_ny), None)
    if not due:
        sess = session(previous_sessions(day, 1)[0])
        due = _session_ticks(spec, sess, market_hours_only)
        later = None  # a past session's ticks are all behind
        if not due:
            return None
    tick = due[-1]
    return Expectation(
        family=fam.name,
        asset=fam.asset,
        session=sess.key,
        due_tick=tick,
        deadline=tick + fam.grace,
        schedule=spec.name,
        next_tick=later,
    )


def expected_latest(
    asset_family: str, now: dt.datetime, *, market_hours_only: bool = False
) -> dt.datetime | None:
    """The time the family's latest materialization must be at or after, at ``now`` (see the module
    docstring); None when no data is expected."""
    exp = freshness_expectation(asset_family, now, market_hours_only=market_hours_only)
    return exp.due_tick if exp else None


@dataclass(frozen=True)
class Materialization:
    """What the instance knows of a partition's latest materialization."""

    at: dt.datetime
    rows: int | None = None
    """``dagster/row_count``: rows the partition holds after it (None when not reported)."""
    tickers: int | None = None
    """Active tickers the materialization collected for (None when not reported)."""

    @property
    def stored_nothing(self) -> bool:
        """It stored no row although the session had tickers to collect: an empty success."""
        return self.rows == 0 and self.tickers != 0


@dataclass(frozen=True)
class FreshnessVerdict:
    passed: bool
    reason: str
    expectation: Expectation | None
    last_materialized: dt.datetime | None
    failed_after_close: bool = False
    """Not fresh once the session has closed: nothing more will arrive today (FAIL, not WARN)."""

    @property
    def severity(self) -> str:
        return "ok" if self.passed else ("fail" if self.failed_after_close else "warn")

    def metadata(self) -> dict[str, Any]:
        exp = self.expectation
        return {
            "expectation": exp.describe() if exp else self.reason,
            "due_tick": exp.due_tick.isoformat() if exp else None,
            "deadline": exp.deadline.isoformat() if exp else None,
            "session": exp.session if exp else None,
            "last_materialized": self.last_materialized.isoformat() if self.last_materialized else None,
            "reason": self.reason,
        }


def evaluate_freshness(
    asset_family: str,
    now: dt.datetime,
    last: Materialization | dt.datetime | None,
    *,
    market_hours_only: bool = False,
) -> FreshnessVerdict:
    """Pass when nothing is expected, or the last materialization (of the due tick's session) is at or
    after the due tick and stored rows. One after the open that stored 0 rows while the session had
    active tickers is not fresh; before the open, nothing may have traded yet. A failure after the
    session's close is marked ``failed_after_close``."""
    latest = Materialization(last) if isinstance(last, dt.datetime) else last
    at = latest.at if latest else None
    exp = freshness_expectation(asset_family, now, market_hours_only=market_hours_only)
    if exp is None:
        return FreshnessVerdict(
            True, f"no expectation: no {family(asset_family).schedule} tick runs in market hours", None, at
        )
    closed = session(exp.session).has_closed(now)
    if latest is None:
        hint = (
            f" (no more ticks run for it: materialize partition {exp.session} from the UI or with `dagster asset "
            f"materialize -m trading_data.definitions --select '*' --partition {exp.session}`; a closed "
            "session is fetched whole)"
            if closed
            else f" (the next tick, {exp.next_tick:%H:%M} ET, collects the session so far)"
            if exp.next_tick
            else ""
        )
        return FreshnessVerdict(
            False, f"{exp.describe()}; no materialization of {exp.session} yet{hint}", exp, None, closed
        )
    when = f"{latest.at.astimezone(NEW_YORK):%H:%M} ET"
    if latest.at >= exp.due_tick and latest.stored_nothing:
        if latest.at < session(exp.session).open:
            # Before the open a feed may hold nothing yet: options and thin names do not trade pre-market,
            # and the offline simulator serves the regular session only. A tick after the open must store rows.
            return FreshnessVerdict(
                True, f"fresh: materialized {when} (no rows yet, before the open)", exp, latest.at
            )
        tickers = f" for {latest.tickers} active ticker(s)" if latest.tickers else ""
        return FreshnessVerdict(
            False,
            f"{exp.describe()}; the latest materialization at {when} stored 0 rows{tickers}: empty, not fresh",
            exp,
            latest.at,
            closed,
        )
    if latest.at >= exp.due_tick:
        return FreshnessVerdict(True, f"fresh: materialized {when}", exp, latest.at)
    age = now - latest.at
    return FreshnessVerdict(
        False,
        f"{exp.describe()}; latest materialization at {when} is {int(age.total_seconds() // 60)} minutes old",
        exp,
        latest.at,
        closed,
    )


def evaluate_past_session(
    asset_family: str, session_key: str, last: Materialization | None
) -> FreshnessVerdict:
    """A check run inside a run of a past session (a backfill) judges that session: it must have been
    materialized after its close, with rows (or with no active ticker to collect)."""
    fam = family(asset_family)
    close = session(session_key).close
    if last is None:
        return FreshnessVerdict(False, f"{fam.asset}: no materialization of {session_key}", None, None, True)
    if last.stored_nothing:
        return FreshnessVerdict(
            False, f"{fam.asset}: the materialization of {session_key} stored 0 rows", None, last.at, True
        )
    if last.at < close:
        return FreshnessVerdict(
            False,
            f"{fam.asset}: {session_key} was last materialized at {last.at.astimezone(NEW_YORK):%H:%M} ET, "
            f"before its close at {close:%H:%M} ET: the session is incomplete",
            None,
            last.at,
            True,
        )
    return FreshnessVerdict(True, f"complete: {session_key} materialized after its close", None, last.at)
