"""OmegaConf resolvers our configs use, the launch facts they read from the environment,
and :func:`literal`, which keeps a user's string out of their reach.

They sit with the configuration because `conf/config.yaml` names them
(``${simclr_rank_zero:...}``) and composition needs them before any run starts.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from omegaconf import OmegaConf


def external_rank(env: Mapping[str, str] = os.environ) -> int | None:
    """Global rank when torchrun or SLURM (several tasks) started this process, else None."""
    if "TORCHELASTIC_RUN_ID" in env and "RANK" in env:
        return int(env["RANK"])
    if int(env.get("SLURM_NTASKS", "1")) > 1 and "SLURM_PROCID" in env:
        return int(env["SLURM_PROCID"])
    return None


def launched_as_rank_zero(env: Mapping[str, str] = os.environ) -> bool:
    """False in a process some launcher started as a rank other than global rank 0.

    Read from the environment, so it is known before Hydra sets up the run: torchrun's
    RANK, SLURM's SLURM_PROCID, or Lightning's LOCAL_RANK/NODE_RANK for its children.
    """
    rank = external_rank(env)
    if rank is not None:
        return rank == 0
    return int(env.get("LOCAL_RANK", "0")) == 0 and int(env.get("NODE_RANK", "0")) == 0


def rank_zero_only(value: Any) -> Any:
    """Resolver ``${simclr_rank_zero:X}``: X on global rank 0, null on the other ranks.

    conf/config.yaml sets ``hydra.output_subdir: ${simclr_rank_zero:.hydra}``, so only
    rank 0 writes ``.hydra/``, whoever started the ranks (SLURM tasks of the submitit
    launcher run the Hydra job without going through our command line).
    """
    return value if launched_as_rank_zero() else None


def register_resolvers() -> None:
    """Register the OmegaConf resolvers our configs use (idempotent)."""
    OmegaConf.register_new_resolver("simclr_rank_zero", rank_zero_only, replace=True)


_INTERPOLATION = re.compile(r"(\\*)\$\{")


def literal(value: Any) -> Any:
    """`value` (plain data: dicts, lists, scalars) with every string kept as data.

    A saved config holds resolved values: a path or name that contains `${` (a
    folder named `${oc.env:X}`) is text, not an interpolation. OmegaConf reads `\\${`
    as a literal `${` and `\\\\` before it as one backslash, so each `${` gets one
    backslash more than twice those before it.
    """
    if isinstance(value, str):
        if "${" not in value:
            return value
        return _INTERPOLATION.sub(lambda m: m.group(1) * 2 + "\\${", value)
    if isinstance(value, dict):
        return {k: literal(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [literal(v) for v in value]
    return value
