"""The forecast gate's data: held-out operational months (latent state and true fields), the free run's warm-up,
and the reference Niño statistics of the training mixture, read once for every model the gate compares."""

from __future__ import annotations

import numpy as np

from ..errors import InputDataError
from ..grid import TargetGrid
from .conv_autoencoder import decode_array, load_autoencoder
from .field_records import load_field_record
from .gate import NINO_BOXES, GateData, box_indices, index_weights, mixture_skewness, skewness_se
from .latent_data import LatentRecord


def build_gate_data(
    autoencoder_checkpoint,
    operational_store,
    reanalysis_store,
    op: LatentRecord,
    rean: LatentRecord,
    op_split,
    rean_split,
    reanalysis_weight: float,
    grid,
    warmup: int,
    device,
    *,
    state_mean,
    state_std,
):
    """The operational held-out months (latent + true fields), the free run's warm-up and the reference Niño std."""
    ae = load_autoencoder(autoencoder_checkpoint, device)
    target_grid = TargetGrid.from_config(grid)
    records = {}
    for name, store, latent in (("operational", operational_store, op), ("reanalysis", reanalysis_store, rean)):
        if ae.latent_dim != latent.n_latent:
            raise InputDataError(
                latent.path,
                f"has {latent.n_latent} latents but the autoencoder {autoencoder_checkpoint} has {ae.latent_dim}; re-encode",
            )
        records[name] = load_field_record(store, grid=target_grid, layout=ae.layout, field_std=ae.field_std)
        if len(records[name]) != latent.x.shape[0]:
            raise InputDataError(
                latent.path, f"has {latent.x.shape[0]} months but the store {store} has {len(records[name])}; re-encode"
            )
    ae_mask = np.asarray(ae.ocean_mask.cpu().numpy(), bool)
    sst = list(ae.field_names).index("sst")
    variances, train_indices = {}, {}
    for name, split in (("operational", op_split), ("reanalysis", rean_split)):
        # Indices over cells that are ocean in the autoencoder's domain and in the source.
        mask = ae_mask & records[name].ocean
        train_sst = records[name].standardised[split.train, sst] * ae.field_std["sst"]
        train_indices[name] = box_indices(train_sst, index_weights(target_grid, mask))
        variances[name] = {box: float(train_indices[name][:, i].var()) for i, box in enumerate(NINO_BOXES)}
    w = float(reanalysis_weight)
    mixture = [(train_indices["operational"], 1 - w), (train_indices["reanalysis"], w)]
    mixture = [(indices, weight) for indices, weight in mixture if weight > 0]
    reference = {
        box: float(np.sqrt((1 - w) * variances["operational"][box] + w * variances["reanalysis"][box]))
        for box in NINO_BOXES
    }
    op_mask = ae_mask & records["operational"].ocean
    # The same indices from the decoded *true* latents: separates an autoencoder that loses ENSO amplitude from a
    # forecast model that does.
    decoded = decode_array(ae, op.x[op_split.train, : op.n_latent], device=device)[:, sst] * ae.field_std["sst"]
    decoded_indices = box_indices(decoded, index_weights(target_grid, op_mask))
    details = {
        "definition": "sqrt((1 - p_max) * var_operational + p_max * var_reanalysis), training months, true fields",
        "p_max": w,
        "std_by_source": {name: {box: float(np.sqrt(v)) for box, v in var.items()} for name, var in variances.items()},
        "decoded_operational_std": {box: float(decoded_indices[:, i].std()) for i, box in enumerate(NINO_BOXES)},
        "skewness": {
            box: mixture_skewness([x[:, i] for x, _ in mixture], [v for _, v in mixture])
            for i, box in enumerate(NINO_BOXES)
        },
        "skewness_se": {
            box: skewness_se([x[:, i] for x, _ in mixture], [v for _, v in mixture]) for i, box in enumerate(NINO_BOXES)
        },
    }
    layout = ae.layout

    def observe(fields_std: np.ndarray) -> np.ndarray:
        physical = {
            name: np.where(op_mask, fields_std[:, c] * ae.field_std[name], np.nan)
            for c, name in enumerate(ae.field_names)
        }
        return layout.extract(physical, target_grid)

    return GateData(
        observe=observe,
        x_heldout=op.x[op_split.validation],
        fields_heldout=records["operational"].standardised[op_split.validation],
        x_warmup=op.x[op_split.n_train - warmup : op_split.n_train],
        reference_index_std=reference,
        decode=lambda z: decode_array(ae, z, device=device),
        field_names=tuple(ae.field_names),
        field_std=dict(ae.field_std),
        ocean_mask=op_mask,
        grid=target_grid,
        n_latent=op.n_latent,
        state_mean=np.asarray(state_mean, np.float64),
        state_std=np.asarray(state_std, np.float64),
        warmup_months=warmup,
        x_heldout_reanalysis=rean.x[rean_split.validation] if w > 0 else None,
        reference_details=details,
    )
