"""Each fault benchmark's results judged against its target (R2, R4, R8): pure, no broker.

A check is one row of the verdict table in BENCHMARKS.md: id, figure, target, measured, met.
"""

from __future__ import annotations

from typing import Any

from loadtest import fault_timing as timing

SWAP_LIMIT_S = 1.0


def check(rid: str, figure: str, target: str, measured: Any, met: bool) -> dict[str, Any]:
    """One judged figure."""
    return {"id": rid, "figure": figure, "target": target, "measured": measured, "met": met}


def seconds(values: list[float | None]) -> str:
    """Measured durations for a table cell ("never" for one that did not happen)."""
    return ", ".join("never" if v is None else f"{v:g} s" for v in values)


def r2_checks(r: dict[str, Any]) -> list[dict[str, Any]]:
    """R2's judged figures."""
    bound = r["bound_s"]
    how = (
        f"<= {bound:g} s (session {r['session_timeout_s']:g} s + transaction "
        f"{r['transaction_timeout_s']:g} s + 5 s)"
    )
    return [
        check(
            "R2",
            f"kill -9 to the restarted scorer's first committed transaction ({r['kills']} kills)",
            how,
            seconds(r["kill_to_first_commit_s"]),
            timing.within(r["kill_to_first_commit_s"], bound),
        ),
        check(
            "R2",
            "kill -9 to the first prediction committed after it",
            how,
            seconds(r["kill_to_predictions_s"]),
            timing.within(r["kill_to_predictions_s"], bound),
        ),
        check(
            "R2",
            "read_committed output: duplicates, missing, unexpected",
            "0, 0, 0",
            f"{r['duplicates']}, {r['lost']}, {r['unexpected']} ({r['events']} events)",
            r["duplicates"] == 0 and r["lost"] == 0 and r["unexpected"] == 0,
        ),
    ]


def r4_checks(r: dict[str, Any]) -> list[dict[str, Any]]:
    """R4's judged figures."""
    times = [c["back_under_s"] for c in r["changes"]]
    clean = all(code == 0 for code, _ in r["bounces_exit_code_and_s"])
    return [
        check(
            "R4",
            f"membership change to lag back under {r['lag_limit']:,} "
            f"({len(times)} changes every {r['change_every_s']:g} s, {r['rate_per_s']:,} events/s)",
            f"<= {r['horizon_s']:g} s after each change",
            ", ".join(
                f"{c['change']} {c['back_under_s']} s (peak {c['peak_lag']})" for c in r["changes"]
            ),
            timing.within(times, r["horizon_s"]),
        ),
        check(
            "R4",
            "lost; duplicates after clean bounces",
            "0; 0",
            f"{r['lost']}; {r['duplicates']} ({r['events']} events, bounces clean: {clean})",
            clean and r["lost"] == 0 and r["unexpected"] == 0 and r["duplicates"] == 0,
        ),
    ]


def r8_checks(r: dict[str, Any]) -> list[dict[str, Any]]:
    """R8's judged figures."""
    s = r["swap_s_summary"]
    return [
        check(
            "R8",
            f"Deployment append to first prediction by the new version ({s['of']} swaps at 1/s)",
            f"<= {SWAP_LIMIT_S:g} s each",
            f"p50 {s['p50']} s, max {s['max']} s ({s['measured']} of {s['of']} served)",
            timing.within(r["swap_s"].values(), SWAP_LIMIT_S),
        ),
        check(
            "R8",
            "predictions not tagged with a deployed version; by unapproved versions",
            "0; 0",
            f"{r['version_not_deployed']}; {r['from_unapproved']} ({r['predictions']} predictions)",
            r["version_not_deployed"] == 0 and r["from_unapproved"] == 0,
        ),
        check(
            "R8",
            "lost; duplicates (no crash)",
            "0; 0",
            f"{r['lost']}; {r['duplicates']} ({r['events']} events)",
            r["lost"] == 0 and r["duplicates"] == 0 and r["unexpected"] == 0,
        ),
    ]
