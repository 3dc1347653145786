"""Drift statistics of one feature's window against its baseline, behind one small interface.

Numeric features: PSI, KS (p-value), Jensen-Shannon distance. Categorical features: PSI,
Jensen-Shannon distance, chi-square (p-value). ``for_feature`` picks the applicable ones.
"""

from services.drift.statistics.base import Statistic, Suggested
from services.drift.statistics.chi_square import ChiSquare
from services.drift.statistics.jensen_shannon import JensenShannon
from services.drift.statistics.ks import KS
from services.drift.statistics.psi import PSI
from services.drift.statistics.registry import for_feature, prediction_features

__all__ = [
    "KS",
    "PSI",
    "ChiSquare",
    "JensenShannon",
    "Statistic",
    "Suggested",
    "for_feature",
    "prediction_features",
]
