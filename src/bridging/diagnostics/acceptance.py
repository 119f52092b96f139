"""Acceptance criteria of a bridging model, two-sided: a criterion whose inputs exist always applies.

For each reference (the idealized long run, the reanalysis), index (Niño 3, Niño 4) and statistic (std, skewness,
Hellinger distance), at the common record length of the comparison (:mod:`bridging.diagnostics.compare`):

* **no move away**: the bridging model's distance to the reference may not exceed the operational model's by more
  than ``significance_se`` standard errors of the difference (block-bootstrap SEs of both values); a degradation
  fails whether or not the operational model was off;
* **improvement where needed**: where the operational model lies outside the reference's null band (it is
  distinguishable from the reference at that length), the bridging model must be closer than it.

For a moment the distance is |value − reference value|, for the Hellinger distance the value itself. Besides:

* the filter's goal, at the bridging run's own length: the bridging model's Niño 3 and Niño 4 skewness and Hellinger
  distance lie inside the null band of the idealized long run;
* the EP/CP ratio, two-sided in the same way (bootstrap SEs over winters);
* the residual std maps (SST, thermocline depth) poleward of ``residual_min_abs_lat``: pattern correlation with the
  operational model's ≥ ``residual_pattern_correlation`` and RMS amplitude ratio ≥ ``residual_amplitude_ratio``
  (the bridge keeps the operational model's own variability away from the observed equator).
"""

from __future__ import annotations

import math

from ..settings import AcceptanceSection

REFERENCES = ("idealized", "reanalysis")
ACCEPTANCE_INDICES = ("nino3", "nino4")
CLOSENESS_STATISTICS = ("std", "skewness", "hellinger")
GOAL_STATISTICS = ("skewness", "hellinger")
MAP_FIELDS = ("sst", "thermocline_depth")


def find_test(
    result: dict, source: str, reference: str, index: str, statistic: str, kind: str = "common"
) -> dict | None:
    """The test entry of (source, reference, index, statistic) at the common length (``kind="common"``) or at the
    pair's own length (``"pair"``); a source tested at one length only has that one."""
    key = (source, reference, index, statistic)
    rows = [t for t in result["tests"] if (t["source"], t["reference"], t["index"], t["statistic"]) == key]
    return next((t for t in rows if t["length_kind"] == kind), rows[0] if rows else None)


def _test(result: dict, source: str, reference: str, index: str, statistic: str, kind: str = "common") -> dict:
    entry = find_test(result, source, reference, index, statistic, kind)
    if entry is None:
        raise ValueError(f"the comparison has no test of {source} against {reference} ({index} {statistic})")
    return entry


def _distance(entry: dict) -> float:
    if entry["two_sided"]:
        return abs(entry["value"] - entry["reference_value"])
    return entry["value"]


def closeness_criterion(op: dict, br: dict, significance_se: float) -> dict:
    """The two-sided criterion of one (reference, index, statistic) from the two test entries."""
    d_op, d_br = _distance(op), _distance(br)
    se = math.hypot(op.get("se", float("nan")), br.get("se", float("nan")))
    moved_away = d_br - d_op
    degraded = bool(moved_away > significance_se * se) if math.isfinite(se) else bool(moved_away > 0)
    needs_improvement = not op["inside_null_band"]
    improved = bool(d_br < d_op)
    passed = (not degraded) and (improved or not needs_improvement)
    name = f"{op['statistic']}_{op['index']}_vs_{op['reference']}"
    description = (
        f"{op['statistic']} of {op['index']} vs {op['reference']} at {op['record_months'] // 12}-year chunks: the bridging "
        f"model does not move away by more than {significance_se:g} SE, and is closer where the operational model lies "
        "outside the reference's null band"
    )
    return {
        "name": name,
        "description": description,
        "applies": True,
        "passed": bool(passed),
        "value": d_br,
        "threshold": d_op,
        "operational": d_op,
        "difference": moved_away,
        "se": se,
        "degraded": degraded,
        "operational_outside_null_band": needs_improvement,
        "improved": improved,
        "record_months": op["record_months"],
    }


def goal_criterion(entry: dict) -> dict:
    """The filter's goal for one statistic: the bridging model inside the idealized model's null band."""
    return {
        "name": f"indistinguishable_{entry['statistic']}_{entry['index']}_from_idealized",
        "description": (
            f"{entry['statistic']} of {entry['index']} at {entry['record_months'] // 12}-year chunks inside the 5–95 % band "
            "of the idealized long run's own chunks"
        ),
        "applies": True,
        "passed": bool(entry["inside_null_band"]),
        "value": entry["value"],
        "threshold": [entry["null_low"], entry["null_high"]],
        "p_value": entry["p_value"],
        "record_months": entry["record_months"],
    }


def ep_cp_criterion(result: dict, ref: str, significance_se: float) -> dict:
    """EP/CP ratio, two-sided: no move away by more than ``significance_se`` SE, closer where the operational model is
    significantly off. An undefined ratio (no CP event) is infinitely far from a defined one."""
    events = result["event_statistics"]

    def ratio_and_se(role):
        ev = events[role]
        value = ev.get("ep_cp_ratio")
        value = float("nan") if value is None else float(value)
        se = ev.get("bootstrap", {}).get("ep_cp_ratio", {}).get("se")
        return value, (float("nan") if se is None else float(se))

    r_ref, se_ref = ratio_and_se(ref)
    r_op, se_op = ratio_and_se("operational")
    r_br, se_br = ratio_and_se("bridging")
    finite = math.isfinite(r_ref)
    d_op = abs(r_op - r_ref) if finite and math.isfinite(r_op) else math.inf
    d_br = abs(r_br - r_ref) if finite and math.isfinite(r_br) else math.inf
    se = math.hypot(se_op, se_br)
    applies, passed, note = finite, True, None
    if finite:
        tolerance = significance_se * se if math.isfinite(se) else 0.0
        degraded = math.isfinite(d_op) and d_br > d_op + tolerance
        off = not math.isfinite(d_op) or d_op > significance_se * math.hypot(se_op, se_ref)
        passed = (not degraded) and (d_br < d_op or not off)
    else:
        note = f"the {ref} has no CP El Niño: its EP/CP ratio is undefined and cannot be approached"
    return {
        "name": f"ep_cp_ratio_vs_{ref}",
        "description": f"EP/CP ratio vs {ref}: no move away by more than {significance_se:g} SE; closer where the operational model is significantly off",
        "applies": applies,
        "passed": bool(passed),
        "value": r_br,
        "threshold": r_op,
        "reference": r_ref,
        **({"note": note} if note else {}),
    }


def residual_criteria(result: dict, acceptance: AcceptanceSection) -> list[dict]:
    off = result["versus_operational"]["bridging"]["off_equator"]
    out = []
    for field in MAP_FIELDS:
        stats = off.get(f"{field}_residual_std")
        if stats is None:
            out.append(
                {
                    "name": f"residual_std_{field}",
                    "description": "residual std map missing",
                    "applies": True,
                    "passed": False,
                }
            )
            continue
        corr, ratio = stats["pattern_correlation"], stats["amplitude_ratio"]
        out.append(
            {
                "name": f"residual_std_{field}",
                "description": (
                    f"{field} residual std map poleward of {acceptance.residual_min_abs_lat:g}°: pattern correlation with "
                    f"the operational model ≥ {acceptance.residual_pattern_correlation:g} and amplitude ratio ≥ "
                    f"{acceptance.residual_amplitude_ratio:g}"
                ),
                "applies": True,
                "passed": bool(
                    corr >= acceptance.residual_pattern_correlation and ratio >= acceptance.residual_amplitude_ratio
                ),
                "value": {"pattern_correlation": corr, "amplitude_ratio": ratio},
                "threshold": {
                    "pattern_correlation": acceptance.residual_pattern_correlation,
                    "amplitude_ratio": acceptance.residual_amplitude_ratio,
                },
            }
        )
    return out


def check_acceptance(result: dict, acceptance: AcceptanceSection) -> dict:
    """Every criterion of the module docstring, pass or fail; ``passed`` when all pass."""
    criteria = []
    for ref in REFERENCES:
        for index in ACCEPTANCE_INDICES:
            for statistic in CLOSENESS_STATISTICS:
                op = _test(result, "operational", ref, index, statistic)
                br = _test(result, "bridging", ref, index, statistic)
                criterion = closeness_criterion(op, br, acceptance.significance_se)
                # the control beside it: what the same models reach without the analysis
                criterion["free_run"] = _distance(_test(result, "free_run", ref, index, statistic))
                criteria.append(criterion)
    for index in ACCEPTANCE_INDICES:
        for statistic in GOAL_STATISTICS:
            criteria.append(goal_criterion(_test(result, "bridging", "idealized", index, statistic, kind="pair")))
    for ref in REFERENCES:
        criteria.append(ep_cp_criterion(result, ref, acceptance.significance_se))
    criteria += residual_criteria(result, acceptance)
    return {"passed": all(c["passed"] for c in criteria), "criteria": criteria}
