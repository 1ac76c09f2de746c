"""The daily rollups (DailyRollup, ProvinceRollup, DemographicRollup, AgentRollup), built
set-based from the participants, their coverage and the ledger.

`rebuild_rollups` (the command and the nightly beat task) builds a range of days event-based:
every day of the range in one pass over the ledger; `refresh_today` (the intraday beat task)
applies the delta of the entries added since the build. The modules, one job each:

- definitions  the dimensions, flows and figures; the local day; the build lock and marks;
               the province rows derived from the daily rows
- sql_changes  steps 1-2 below: the group's participants and entries, their status changes
- sql_money    step 4: the range's money and its programme split
- sql_rows     step 3: events per group and day, and the rows run from them
- group        one group of provinces' build (and the timed cursor the builds share)
- finish       the last steps of every build (agent and province rows, marks, cache version)
- parallel     the groups in several sessions on one snapshot
- build        the range a rebuild covers, and the range build (`rebuild_rollups`)
- sql_state    every participant's status at the end of a day (per-day build, delta refresh)
- refresh      the intraday delta (`refresh_day`, `refresh_today`)
- per_day      the per-day reference build, for the tests and the benchmarks only
- cohorts      the cohort retention and lapse/reactivation flow rollups (after every build)
- progress     what a build reports while it runs (phases, groups built)

The rules (coverage status, paid-through month, programme split) are the contributions app's,
as SQL fragments (contributions.rules_sql), proven equal to the Python rules there.

The per-day build (`per_day.build_day`) recomputes every participant's paid-through month from
the whole ledger for each day, so a year costs 365 scans of the ledger. Here, for a range of
days P = start - 1 .. E = end:

1. *Paid-through segments.* Per participant, the days on which the next unpaid month N changes:
   a payment entry is live from its payment's local day to its reversal's local day (or for
   ever); N = (latest live paid month) + 1 month, or the start month while nothing is live
   (`contributions.coverage.next_unpaid`). Without reversals this is a running max over the
   payment days (one window over the ledger); the few participants with a reversal get the
   exact max over live entries at each of their change days.
2. *Status changes.* For a constant N, the status only moves forward as days pass: active
   while D < grace_from(N), lapsed from lapsed_from(N), grace in between. Both days come from
   the contributions rule's calendar (`coverage.status_calendar`, read by
   `rules_sql.status_by_calendar`). Each segment gives a row only where the status
   changes (at its first day, against the day before, and on N's grace and lapse days inside
   it), in the same pass as step 1; a change into lapsed inside the range is a *lapse*, out of
   it a *reactivation*. The days a participant enters the next age band are segment starts too,
   so the demographic rows know that day's status.
3. *Counts per day.* Each change is -1 on the old status and +1 on the new one, per dimension
   group; a running sum over days gives every day's stocks; the day's flows and money are
   summed per day and run into year-to-date sums (chained from the stored rows of P when P is
   in the same year).
4. *Money.* Payment entries by their payment's local day, reversals and adjustments by their
   creation day, split per programme once per distinct (income, JHT, sector, first month,
   months) with the schedule and discounts in force (the rounding of `quote_contribution`).

Everything is set-based SQL, a group of provinces at a time, the groups in one transaction or
in several sessions at once (`build_parallel`); either way the range's old rows are replaced in
one transaction, so readers see the old range or the new one. The build records in
`RollupDay` the ledger and participant id marks it read up to; `refresh_day` then updates the
day's rows from the entries and participants added since (a delta, see there).
"""

from __future__ import annotations

from .build import rebuild_rollups
from .cohorts import rebuild_cohorts
from .definitions import BuildResult
from .refresh import refresh_today

__all__ = ["BuildResult", "rebuild_cohorts", "rebuild_rollups", "refresh_today"]
