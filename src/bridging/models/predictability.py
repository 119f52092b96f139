"""How predictable each source's observables are one month ahead, on equal footing: the yardstick for the forecast
model's error covariance Q, which is fitted on operational and reanalysis months but has to describe the idealized
model's pseudo-observations in the filter (docs/method.md, Filter: "Why the stored Q is too large").

Every source goes through the same operator: a least-squares VAR on the leading EOFs of its observables with the last
p months as predictors, fitted and scored in chunks of one common length (the shortest record's), in units of one
common standard deviation per observable. A source whose observables carry month-to-month variability no state
predicts has a larger one-step residual; the ratio of the idealized record's to the training mixture's is the factor
the observed part of Q would need. The fits are in-sample, so their level is lower than a held-out error (Q's): compare
sources with each other, not with Q.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ..atomic import write_text_atomic
from ..errors import InputDataError
from ..idealized.pseudo_obs import open_pseudo_obs
from ..observables import ObservationLayout
from .latent import open_latent_store
from .latent_data import load_latent_record


def one_step_residual_variance(y: np.ndarray, lags: int, n_eofs: int) -> np.ndarray:
    """Per-observable variance of y_{t+1} − ŷ_{t+1}, ŷ a least-squares fit (with intercept) on the leading ``n_eofs``
    principal components of y at months t, t − 1, …, t − lags + 1. ``y`` is (time, observables)."""
    y = np.asarray(y, dtype=np.float64)
    y = y - y.mean(0)
    _, _, vt = np.linalg.svd(y, full_matrices=False)
    pcs = y @ vt[:n_eofs].T
    T = len(y)
    predictors = np.concatenate([pcs[lags - 1 - j : T - 1 - j] for j in range(lags)] + [np.ones((T - lags, 1))], 1)
    target = y[lags:]
    coef, *_ = np.linalg.lstsq(predictors, target, rcond=None)
    return (target - predictors @ coef).var(0)


def equal_chunks(y: np.ndarray, length: int) -> list[np.ndarray]:
    """The consecutive, non-overlapping ``length``-month pieces of y (a shorter remainder is dropped)."""
    return [y[i : i + length] for i in range(0, len(y) - length + 1, length)]


def predictability(
    sources: Mapping[str, np.ndarray],
    std: np.ndarray,
    *,
    groups: Mapping[str, np.ndarray],
    lags: Sequence[int] = (1, 3, 6, 12),
    n_eofs: int = 10,
    length: int | None = None,
) -> dict:
    """One-step residual variance of each source's observables, in units of ``std`` (per observable), averaged over
    the observables of each group (a boolean mask per name, e.g. per variable, and ``all``); mean and spread over the
    source's equal-length chunks (``length`` months, default the shortest record)."""
    length = int(length or min(len(y) for y in sources.values()))
    need = max(lags) + 2 * (n_eofs * max(lags) + 1)
    if length < need:
        raise ValueError(f"records of {length} months are too short for {max(lags)} lags of {n_eofs} EOFs ({need})")
    out: dict = {"length_months": length, "n_eofs": n_eofs, "lags": list(lags), "sources": {}}
    for name, y in sources.items():
        chunks = equal_chunks(np.asarray(y, dtype=np.float64) / std, length)
        per_lag = {}
        for p in lags:
            residual = np.array([one_step_residual_variance(c, p, n_eofs) for c in chunks])  # (chunks, observables)
            per_lag[str(p)] = {
                group: {"mean": float(residual[:, mask].mean()), "spread": float(residual[:, mask].mean(1).std())}
                for group, mask in groups.items()
            }
        out["sources"][name] = {"chunks": len(chunks), "residual_variance": per_lag}
    return out


def idealized_to_training(study: dict, idealized: str, mixture: Mapping[str, float]) -> dict:
    """Per lag and group: the idealized record's residual variance over the training mixture's (weights ``mixture``,
    normalised), and its square root, the factor on the observed noise std that ratio implies."""
    total = float(sum(mixture.values()))
    out = {}
    for p, groups in study["sources"][idealized]["residual_variance"].items():
        out[p] = {}
        for group, value in groups.items():
            train = sum(
                w / total * study["sources"][s]["residual_variance"][p][group]["mean"] for s, w in mixture.items()
            )
            ratio = value["mean"] / train
            out[p][group] = {"ratio": ratio, "factor_on_std": float(np.sqrt(ratio))}
    return out


def noise_budget(
    y_operational: np.ndarray,
    y_reanalysis: np.ndarray,
    pseudo_obs: Mapping[str, np.ndarray],
    variables: np.ndarray,
    variable_names: Sequence[str],
    *,
    reanalysis_share: float,
    lags: Sequence[int] = (1, 3, 6, 12),
    n_eofs: int = 10,
) -> dict:
    """The study for one operational model: its operational and reanalysis observables (the forecast model's training
    records) and each idealized model's pseudo-observations, in units of the operational record's std (the filter's
    adaptive-noise units)."""
    std = np.asarray(y_operational, dtype=np.float64).std(0)
    groups = {"all": np.ones(len(std), bool)} | {name: variables == i for i, name in enumerate(variable_names)}
    sources = {"operational": y_operational, "reanalysis": y_reanalysis, **pseudo_obs}
    study = predictability(sources, std, groups=groups, lags=lags, n_eofs=n_eofs)
    study["groups"] = list(groups)
    mixture = {"operational": 1.0 - reanalysis_share, "reanalysis": reanalysis_share}
    study["training_mixture"] = mixture
    study["idealized_over_training"] = {name: idealized_to_training(study, name, mixture) for name in pseudo_obs}
    return study


def write_noise_budget(study: dict, out_dir: str | Path, title: str) -> Path:
    """noise_budget.json and noise_budget.md (one table per group) into ``out_dir``; returns the markdown path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(json.dumps(study, indent=2) + "\n", out / "noise_budget.json")
    idealized = list(study["idealized_over_training"])
    lines = [
        f"# {title}",
        "",
        f"One-step residual variance of each source's observables (VAR on the {study['n_eofs']} leading EOFs, the "
        f"last p months as predictors, {study['length_months']}-month chunks, units of the operational record's std; "
        f"mean ± spread over chunks; in-sample fits), and each idealized record over the training mixture "
        f"{study['training_mixture']} (ratio; its square root is the factor on the observed noise std it implies).",
    ]
    for group in study["groups"]:
        lines += ["", f"## {group}", ""]
        header = ["p"] + [f"{s} ({v['chunks']})" for s, v in study["sources"].items()]
        header += [f"{name} / training" for name in idealized]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for p in map(str, study["lags"]):
            cells = [p]
            for source in study["sources"].values():
                value = source["residual_variance"][p][group]
                spread = f" ± {value['spread']:.4f}" if source["chunks"] > 1 else ""
                cells.append(f"{value['mean']:.4f}{spread}")
            for name in idealized:
                r = study["idealized_over_training"][name][p][group]
                cells.append(f"{r['ratio']:.3f} (× {r['factor_on_std']:.2f} std)")
            lines.append("| " + " | ".join(cells) + " |")
    return write_text_atomic("\n".join(lines) + "\n", out / "noise_budget.md")


def noise_budget_stage(
    latent_operational,
    latent_reanalysis,
    pseudo_obs,
    out_dir,
    *,
    reanalysis_share: float,
    lags: Sequence[int] = (1, 3, 6, 12),
    n_eofs: int = 10,
) -> Path:
    """Read one model's training observables (its latent stores' y) and the pseudo-observations the filter
    assimilates; write the study (``write_noise_budget``); returns the markdown path."""
    paths = {"operational": latent_operational, "reanalysis": latent_reanalysis}
    records = {k: load_latent_record(path) for k, path in paths.items()}  # y checked finite
    obs = open_pseudo_obs(pseudo_obs)  # observations checked finite
    layout = ObservationLayout.from_dataset(open_latent_store(latent_operational))
    for path, ds in ((latent_reanalysis, open_latent_store(latent_reanalysis)), (pseudo_obs, obs)):
        if not layout.same_nodes(ObservationLayout.from_dataset(ds)):
            raise InputDataError([path, latent_operational], "the observables of the two stores differ")
    y = {k: r.x[:, r.n_latent :].astype(np.float64) for k, r in records.items()}
    if not (y["operational"].std(0) > 0).all():  # the unit of every source
        raise InputDataError(latent_operational, "an observable is constant in y")
    idealized = str(obs.attrs.get("model", Path(str(pseudo_obs)).name.split(".")[0]))
    pseudo = {idealized: obs["observations"].transpose("time", "obs").values.astype(np.float64)}
    names = sorted(set(layout.variable), key=layout.variable.index)
    variables = np.array([names.index(v) for v in layout.variable])
    try:
        study = noise_budget(
            y["operational"], y["reanalysis"], pseudo, variables, names,
            reanalysis_share=reanalysis_share, lags=lags, n_eofs=n_eofs,
        )  # fmt: skip
    except ValueError as err:  # a record too short for the VAR
        raise InputDataError([latent_operational, latent_reanalysis, pseudo_obs], str(err)) from None
    study["inputs"] = {k: str(v) for k, v in {**paths, "pseudo_obs": pseudo_obs}.items()}
    return write_noise_budget(
        study,
        out_dir,
        f"Noise budget of {records['operational'].source_id}: one-step predictability of the observables",
    )
