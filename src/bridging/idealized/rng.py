"""Per-member random streams usable inside numba-compiled step loops.

Each ensemble member owns an independent xoshiro256** generator (Blackman & Vigna 2018) whose 256-bit state is
drawn from ``numpy.random.SeedSequence(seed, spawn_key=(stream, member))``. Consequences the rest of the package
relies on:

* a member's trajectory depends only on (seed, stream, member index), not on how many members run together,
  how members are batched, how the run is chunked in time, or how many threads the kernel uses;
* different ``stream`` values give statistically independent noise for the same seed (e.g. the model dynamics and
  the demo data's spatial noise), so one config seed can feed several consumers.

Normals come from the Box–Muller transform; the second value of each pair is kept (``spare``) and used by the
next draw of that member, so no uniform is wasted and the stream stays sequential.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

_TWO_PI = 2.0 * np.pi
_INV_2_53 = 1.0 / 9007199254740992.0  # 2**-53: a 53-bit integer times this is a double in [0, 1)

STREAM_DYNAMICS = 0
"""Spawn key of the idealized models' own noise."""


@dataclass
class MemberStreams:
    """Generator states of n members: ``state`` (n, 4) uint64, ``spare`` (n,) float64, ``has_spare`` (n,) uint8."""

    state: np.ndarray
    spare: np.ndarray
    has_spare: np.ndarray

    @classmethod
    def from_seed(
        cls, seed: int, n_members: int, *, stream: int = STREAM_DYNAMICS, first_member: int = 0
    ) -> MemberStreams:
        if n_members < 1:
            raise ValueError(f"need at least one member, got {n_members}")
        state = np.empty((n_members, 4), dtype=np.uint64)
        for k in range(n_members):
            seq = np.random.SeedSequence(int(seed), spawn_key=(int(stream), first_member + k))
            state[k] = seq.generate_state(4, np.uint64)
            if not state[k].any():  # the one forbidden xoshiro state; probability 2**-256
                state[k, 0] = 1
        return cls(state, np.zeros(n_members), np.zeros(n_members, dtype=np.uint8))

    @property
    def n_members(self) -> int:
        return self.state.shape[0]

    def copy(self) -> MemberStreams:
        return MemberStreams(self.state.copy(), self.spare.copy(), self.has_spare.copy())

    def subset(self, members: slice) -> MemberStreams:
        """Views of some members' states (advancing them advances the parent)."""
        return MemberStreams(self.state[members], self.spare[members], self.has_spare[members])

    def standard_normal(self, member: int, count: int) -> np.ndarray:
        """The next ``count`` normals of one member (advances its state), exactly as a compiled kernel draws them."""
        return _normals(self.state, self.spare, self.has_spare, int(member), int(count))


@njit(inline="always")
def _rotl(x, k):
    return (x << np.uint64(k)) | (x >> np.uint64(64 - k))


@njit(inline="always")
def next_uint64(state, m):
    """xoshiro256** step of member m: returns a uint64 and advances state[m]."""
    s0 = state[m, 0]
    s1 = state[m, 1]
    s2 = state[m, 2]
    s3 = state[m, 3]
    result = _rotl(s1 * np.uint64(5), 7) * np.uint64(9)
    t = s1 << np.uint64(17)
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    s3 = _rotl(s3, 45)
    state[m, 0] = s0
    state[m, 1] = s1
    state[m, 2] = s2
    state[m, 3] = s3
    return result


@njit(inline="always")
def next_double(state, m):
    """Uniform double in [0, 1) from the top 53 bits."""
    return np.float64(next_uint64(state, m) >> np.uint64(11)) * _INV_2_53


@njit(inline="always")
def next_normal(state, spare, has_spare, m):
    """Standard normal of member m (Box–Muller, the pair's second value cached in spare[m])."""
    if has_spare[m]:
        has_spare[m] = 0
        return spare[m]
    u1 = 1.0 - next_double(state, m)  # (0, 1]: log is finite
    u2 = next_double(state, m)
    radius = np.sqrt(-2.0 * np.log(u1))
    angle = _TWO_PI * u2
    spare[m] = radius * np.sin(angle)
    has_spare[m] = 1
    return radius * np.cos(angle)


@njit(cache=True)
def _normals(state, spare, has_spare, m, count):
    out = np.empty(count)
    for k in range(count):
        out[k] = next_normal(state, spare, has_spare, m)
    return out


@njit(cache=True)
def _uint64s(state, m, count):
    out = np.empty(count, dtype=np.uint64)
    for k in range(count):
        out[k] = next_uint64(state, m)
    return out


def raw_uint64(streams: MemberStreams, member: int, count: int) -> np.ndarray:
    """The next raw 64-bit outputs of one member (for checking the generator against its definition)."""
    return _uint64s(streams.state, int(member), int(count))
