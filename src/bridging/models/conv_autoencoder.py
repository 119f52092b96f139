"""The autoencoder's network: a convolutional encoder E mapping the standardised anomaly fields X (channels: SST,
thermocline depth, in ``stores.FIELDS`` order) on the target grid to a latent vector z = E(X), and a decoder D mapping
it back; loading a trained one, and encoding / decoding arrays in batches.

Land: the autoencoder's domain is the operational model's ocean. Inputs are 0 outside it (and where a source has no
data) and ``decode`` returns NaN over land. Odd grid sizes (41 × 161) are zero-padded to a multiple of
2^(number of blocks) before the strided convolutions and cropped back after the last transposed convolution.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .. import stores
from ..errors import InputDataError
from ..grid import TargetGrid
from ..observables import ObservationLayout
from .training import load_checkpoint

FIELD_NAMES = stores.FIELDS
CHECKPOINT_KIND = "autoencoder"


class ConvAutoencoder(nn.Module):
    """Strided-convolution encoder → linear latent; mirrored decoder with transposed convolutions.

    ``encode(x)`` takes standardised anomalies (B, n_fields, n_lat, n_lon) (NaN allowed: treated as missing, i.e. 0)
    and returns (B, latent_dim); ``decode(z)`` returns standardised anomalies with NaN over land.
    """

    def __init__(
        self, grid_shape: tuple[int, int], latent_dim: int, channels: list[int], n_fields: int = 2, ocean_mask=None
    ):
        super().__init__()
        n_lat, n_lon = (int(s) for s in grid_shape)
        self.grid_shape = (n_lat, n_lon)
        self.latent_dim = int(latent_dim)
        self.channels = [int(c) for c in channels]
        self.n_fields = int(n_fields)
        factor = 2 ** len(self.channels)
        padded = (math.ceil(n_lat / factor) * factor, math.ceil(n_lon / factor) * factor)
        extra_lat, extra_lon = padded[0] - n_lat, padded[1] - n_lon
        # (left, right, top, bottom): centre the domain in the padded frame.
        self.padding = (extra_lon // 2, extra_lon - extra_lon // 2, extra_lat // 2, extra_lat - extra_lat // 2)
        self.bottleneck = (self.channels[-1], padded[0] // factor, padded[1] // factor)

        layers: list[nn.Module] = []
        c_in = self.n_fields
        for c in self.channels:
            layers += [nn.Conv2d(c_in, c, kernel_size=3, stride=2, padding=1), nn.GELU()]
            c_in = c
        self.encoder = nn.Sequential(*layers)
        flat = int(np.prod(self.bottleneck))
        self.to_latent = nn.Linear(flat, self.latent_dim)
        self.from_latent = nn.Linear(self.latent_dim, flat)
        layers = []
        rev = self.channels[::-1]
        for i, c in enumerate(rev):
            c_out = rev[i + 1] if i + 1 < len(rev) else self.channels[0]
            # kernel 4 = 2 × stride: every output cell gets the same number of kernel taps (no checkerboard).
            layers += [nn.ConvTranspose2d(c, c_out, kernel_size=4, stride=2, padding=1), nn.GELU()]
        layers.append(nn.Conv2d(self.channels[0], self.n_fields, kernel_size=3, padding=1))
        self.decoder = nn.Sequential(*layers)
        mask = (
            torch.ones(self.grid_shape, dtype=torch.bool)
            if ocean_mask is None
            else torch.as_tensor(np.asarray(ocean_mask, bool))
        )
        if tuple(mask.shape) != self.grid_shape:
            raise ValueError(f"ocean mask shape {tuple(mask.shape)} differs from the grid {self.grid_shape}")
        self.register_buffer("ocean_mask", mask)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.where(self.ocean_mask & torch.isfinite(x), x, torch.zeros((), dtype=x.dtype, device=x.device))
        h = self.encoder(F.pad(x, self.padding))
        return self.to_latent(h.flatten(1))

    def decode_raw(self, z: torch.Tensor) -> torch.Tensor:
        """The decoder's output on every cell (land included): what the loss sees."""
        h = F.gelu(self.from_latent(z)).view(-1, *self.bottleneck)
        out = self.decoder(h)
        left, _, top, _ = self.padding
        return out[..., top : top + self.grid_shape[0], left : left + self.grid_shape[1]]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decode_raw(z).masked_fill(~self.ocean_mask, float("nan"))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encode(x)
        return self.decode_raw(z), z


@torch.no_grad()
def encode_array(model: ConvAutoencoder, fields: np.ndarray, *, batch_size: int = 256, device=None) -> np.ndarray:
    """z for standardised fields (n, n_fields, n_lat, n_lon) in batches; returns (n, latent_dim) float32."""
    device = device or next(model.parameters()).device
    out = np.empty((fields.shape[0], model.latent_dim), np.float32)
    for start in range(0, fields.shape[0], batch_size):
        batch = torch.as_tensor(fields[start : start + batch_size], device=device)
        out[start : start + batch.shape[0]] = model.encode(batch).cpu().numpy()
    return out


@torch.no_grad()
def decode_array(model: ConvAutoencoder, z: np.ndarray, *, batch_size: int = 256, device=None) -> np.ndarray:
    """Standardised fields (n, n_fields, n_lat, n_lon), NaN over land, for latents (n, latent_dim)."""
    device = device or next(model.parameters()).device
    out = np.empty((z.shape[0], model.n_fields, *model.grid_shape), np.float32)
    for start in range(0, z.shape[0], batch_size):
        batch = torch.as_tensor(np.asarray(z[start : start + batch_size], np.float32), device=device)
        out[start : start + batch.shape[0]] = model.decode(batch).cpu().numpy()
    return out


def load_autoencoder(path: str | Path, device="cpu") -> ConvAutoencoder:
    """The trained autoencoder in eval mode, gradients off; metadata (field_std, grid, observables, metrics) attached.

    ``ae.encode(x_std)`` / ``ae.decode(z)`` as documented in docs/architecture.md.
    """
    payload = load_checkpoint(path, kind=CHECKPOINT_KIND, device=device)
    meta = payload["metadata"]
    try:
        model = ConvAutoencoder(tuple(meta["grid_shape"]), meta["latent_dim"], meta["channels"], meta["n_fields"])
        model.load_state_dict(payload["state_dict"])
    except (KeyError, RuntimeError) as err:
        raise InputDataError(path, f"autoencoder checkpoint does not match its network ({err})") from None
    model.to(device).eval().requires_grad_(False)
    model.metadata = meta
    model.field_names = tuple(meta["field_names"])
    model.field_std = {k: float(v) for k, v in meta["field_std"].items()}
    model.layout = ObservationLayout(**{k: tuple(v) for k, v in meta["observables"].items()})
    model.grid = TargetGrid(**meta["grid"])
    return model
