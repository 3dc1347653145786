"""The trainer's settings (`STREAMOPS_TRAINER_*`, flags), defined once."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import ClassVar

from services.common.settings import CommonSettings
from services.trainer.training import ESTIMATORS, SEARCHES


@dataclasses.dataclass(frozen=True)
class TrainerSettings(CommonSettings):
    """How the trainer signs, reads stream slices, trains and gates retrained models."""

    service: ClassVar[str] = "trainer"

    group_id: str = "streamops-trainer"
    keys_dir: str = ""  # default: <var_dir>/keys (private key to sign, public keys to verify)
    trusted_keys_dir: str = ""  # extra public keys trusted when reading champions
    estimator: str = "hgb"
    search: str = "grid"
    trials: int = 4
    seed: int = 0
    cv_folds: int = 3
    last_n: int = 5000  # labelled events per retrain when the request does not say
    slice_max_scan: int = 1_000_000  # events read at most per slice, whatever N is
    gate_margin: float = 0.02  # how much worse than the champion a retrained model may be
    gate_metric: str = "roc_auc"  # classification; regression always compares rmse
    retrain_attempts: int = 3  # tries per retrain when reading or training fails transiently
    retrain_backoff_s: float = 2.0  # first wait between tries; doubles, at most 30 s
    replay_timeout_s: float = 60.0
    max_poll_interval_ms: int = 900_000  # one retrain may take minutes between polls
    metrics_port: int = 9101

    def __post_init__(self) -> None:
        if self.estimator not in ESTIMATORS:
            raise ValueError(f"estimator must be one of {ESTIMATORS}, not {self.estimator!r}")
        if self.search not in SEARCHES:
            raise ValueError(f"search must be one of {SEARCHES}, not {self.search!r}")
        if self.last_n < 1 or self.trials < 1 or self.cv_folds < 2:
            raise ValueError("last_n and trials must be >= 1, cv_folds >= 2")
        if not 0 <= self.gate_margin < 1:
            raise ValueError("gate_margin must be in [0, 1)")
        if self.retrain_attempts < 1 or self.retrain_backoff_s < 0:
            raise ValueError("retrain_attempts must be >= 1, retrain_backoff_s >= 0")

    def private_keys_dir(self) -> Path:
        """Where the signing key pair lives (`streamops keys init` writes it)."""
        return Path(self.keys_dir or Path(self.var_dir) / "keys")

    def public_key_dirs(self) -> list[Path]:
        """Directories whose `*.pub` files the trainer trusts when it reads models."""
        dirs = [self.private_keys_dir()]
        if self.trusted_keys_dir:
            dirs.append(Path(self.trusted_keys_dir))
        return dirs
