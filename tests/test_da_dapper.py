"""Our analysis against DAPPER's ``EnKF_analysis`` ('PertObs' and 'Sqrt') on identical inputs and perturbations.

``import dapper`` caps every BLAS/OpenMP thread pool (torch's included) at one thread for the rest of the process,
so DAPPER runs in a child process that writes its inputs and results to a file; our side runs here.
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

CASES = {  # name: (N, n, m)
    "small": (20, 30, 12),
    "more_members_than_state": (40, 25, 10),  # DAPPER switches 'Sqrt' to its SVD form when N > n
    "paper_size": (50, 613, 112),
}

DAPPER_SCRIPT = textwrap.dedent(
    """
    import sys, warnings
    import numpy as np
    warnings.filterwarnings("ignore")
    from dapper.da_methods.ensemble import EnKF_analysis
    from dapper.stats import mean0
    from dapper.tools.localization import dist2coeff
    from dapper.tools.randvars import GaussRV
    from dapper.tools.seeding import set_seed

    out = {}
    for seed, (name, (N, n, m)) in enumerate(%(cases)r.items()):
        rng = np.random.default_rng(seed)
        mix = rng.standard_normal((n, n)) / np.sqrt(n)
        E = rng.standard_normal((N, n)) @ mix + rng.standard_normal(n)
        y = rng.standard_normal(m)
        R = rng.uniform(0.1, 0.5, m)
        noise = GaussRV(C=R, M=m)
        set_seed(7)
        D = mean0(noise.sample(N))  # what PertObs draws (centred, rescaled by sqrt(N/(N-1)))
        set_seed(7)
        out[name + "/pertobs"] = EnKF_analysis(E.copy(), E[:, -m:].copy(), noise, y, "PertObs")
        out[name + "/sqrt"] = EnKF_analysis(E.copy(), E[:, -m:].copy(), noise, y, "Sqrt")
        out[name + "/E"], out[name + "/y"], out[name + "/R"], out[name + "/D"] = E, y, R, D
    d = np.linspace(0, 5, 501)
    out["gc/distance"] = d
    out["gc/radius_1.3"] = dist2coeff(d, 1.3, "GC")
    np.savez(sys.argv[1], **out)
    """
)


@pytest.fixture(scope="module")
def dapper_results(tmp_path_factory):
    path = tmp_path_factory.mktemp("dapper") / "dapper.npz"
    proc = subprocess.run(
        [sys.executable, "-c", DAPPER_SCRIPT % {"cases": CASES}, str(path)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    return dict(np.load(path))


def _rel_to_increment(ours, theirs, prior):
    return float(np.abs(ours - theirs).max() / np.abs(theirs - prior).max())


@pytest.mark.parametrize("case", CASES)
def test_stochastic_matches_dapper_pertobs(dapper_results, case):
    r = {k.split("/")[1]: v for k, v in dapper_results.items() if k.startswith(case + "/")}
    t = lambda a: torch.tensor(a, dtype=torch.float64)  # noqa: E731
    # DAPPER assimilates y − D_j; ours assimilates y + ε_j, so ε = −D.
    ours = analysis(t(r["E"]), t(r["y"]), t(r["R"]), method="stochastic", obs_perturbations=t(-r["D"])).numpy()
    assert _rel_to_increment(ours, r["pertobs"], r["E"]) < 1e-10
    # The localized (projected observation-space) code path with a taper of ones is the same filter.
    m = r["y"].size
    ours_tapered = analysis(
        t(r["E"]), t(r["y"]), t(r["R"]), obs_perturbations=t(-r["D"]), obs_taper=torch.ones(m, m, dtype=torch.float64)
    ).numpy()
    assert _rel_to_increment(ours_tapered, r["pertobs"], r["E"]) < 1e-10


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("sqrt_method", ["eigh", "newton_schulz"])
def test_etkf_matches_dapper_sqrt(dapper_results, case, sqrt_method):
    r = {k.split("/")[1]: v for k, v in dapper_results.items() if k.startswith(case + "/")}
    t = lambda a: torch.tensor(a, dtype=torch.float64)  # noqa: E731
    m = r["y"].size
    for taper in (None, torch.ones(m, m, dtype=torch.float64)):
        ours = analysis(
            t(r["E"]), t(r["y"]), t(r["R"]), method="etkf", obs_taper=taper, sqrt_method=sqrt_method
        ).numpy()
        assert _rel_to_increment(ours, r["sqrt"], r["E"]) < 1e-10


def test_gaspari_cohn_matches_dapper_with_its_radius_convention(dapper_results):
    """DAPPER's 'GC' radius r is our half-width c = 1.82·r (it rounds √(10/3) = 1.826 to 1.82 in the code)."""
    d = dapper_results["gc/distance"]
    np.testing.assert_allclose(gaspari_cohn(d, 1.3 * 1.82), dapper_results["gc/radius_1.3"], atol=1e-12)
