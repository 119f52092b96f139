"""Lorenz-96 twin experiment (Sakov & Oke 2008 set-up): 40 variables, F = 8, every variable observed every 0.05
time units with R = I. DAPPER generates the truth and observations and runs its own stochastic EnKF in a child
process (``import dapper`` caps thread pools); our filter cycles on the same truth and observations here.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from bridging.da.analysis import analysis
from bridging.da.localization import gaspari_cohn

pytestmark = pytest.mark.slow

N_OBS_TIMES = 3000
BURN_IN_TIME = 20.0  # DAPPER's sakov2008 BurnIn (2 × Tplot): the time mean skips the spin-up
INFLATION = 1.05
DT = 0.05

DAPPER_SCRIPT = textwrap.dedent(
    """
    import sys, warnings
    import numpy as np
    warnings.filterwarnings("ignore")
    import dapper as dpr
    import dapper.da_methods as da
    from dapper.mods.Lorenz96.sakov2008 import HMM

    HMM.tseq.Ko = int(sys.argv[2])
    dpr.set_seed(3000)
    xx, yy = HMM.simulate()
    xp = da.EnKF("PertObs", N=40, infl=float(sys.argv[3]))
    xp.assimilate(HMM, xx, yy, liveplots=False)
    xp.stats.average_in_time()
    np.savez(sys.argv[1], xx=xx, yy=np.array([np.asarray(v, float) for v in yy]), kko=HMM.tseq.kko,
             rmse_a=xp.avrgs.err.rms.a.val, burn_in=HMM.tseq.BurnIn, dt=HMM.tseq.dt)
    """
)


@pytest.fixture(scope="module")
def twin(tmp_path_factory):
    path = tmp_path_factory.mktemp("l96") / "l96.npz"
    proc = subprocess.run(
        [sys.executable, "-c", DAPPER_SCRIPT, str(path), str(N_OBS_TIMES), str(INFLATION)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = dict(np.load(path))
    assert float(data["burn_in"]) == BURN_IN_TIME and float(data["dt"]) == DT
    return data


def _tendency(x):
    return (torch.roll(x, -1, -1) - torch.roll(x, 2, -1)) * torch.roll(x, 1, -1) - x + 8.0


def _rk4(x, dt=DT):
    k1 = _tendency(x)
    k2 = _tendency(x + dt / 2 * k1)
    k3 = _tendency(x + dt / 2 * k2)
    k4 = _tendency(x + dt * k3)
    return x + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)


def _periodic_taper(half_width: float) -> torch.Tensor:
    idx = np.arange(40)
    d = np.abs(idx[:, None] - idx[None, :])
    return torch.tensor(gaspari_cohn(np.minimum(d, 40 - d), half_width))


def _time_mean_rmse(twin, n_members: int, taper, seed: int = 0) -> float:
    """Cycle our stochastic EnKF (prior inflation) from DAPPER's initial distribution N(x0, 0.001 I)."""
    g = torch.Generator().manual_seed(seed)
    x0 = torch.zeros(40, dtype=torch.float64)
    x0[0] = 1.0
    E = x0 + np.sqrt(0.001) * torch.randn(n_members, 40, generator=g, dtype=torch.float64)
    R = torch.ones(40, dtype=torch.float64)
    obs = torch.tensor(twin["yy"])
    truth = twin["xx"]
    errors = []
    for ko, k in enumerate(twin["kko"]):
        E = _rk4(E)
        E = analysis(E, obs[ko], R, inflation=INFLATION, obs_taper=taper, generator=g)
        errors.append(np.sqrt(np.mean((E.mean(0).numpy() - truth[k]) ** 2)))
    errors = np.asarray(errors)
    assessed = twin["kko"] * DT > BURN_IN_TIME
    return float(np.nanmean(np.where(np.isfinite(errors), errors, np.inf)[assessed]))


def test_unlocalized_enkf_matches_dapper(twin):
    ours = _time_mean_rmse(twin, 40, None)
    theirs = float(twin["rmse_a"])
    assert theirs < 0.3, f"DAPPER's reference run itself is off ({theirs:.3f})"
    assert ours < 0.3
    assert abs(ours - theirs) < 0.1 * theirs, f"ours {ours:.3f} vs DAPPER {theirs:.3f}"


def test_localization_rescues_a_small_ensemble(twin):
    localized = _time_mean_rmse(twin, 20, _periodic_taper(5.0))
    unlocalized = _time_mean_rmse(twin, 20, None)
    assert localized < 0.3
    assert unlocalized > 2 * localized, f"N = 20 without localization: {unlocalized:.3f} vs {localized:.3f}"
