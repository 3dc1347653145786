"""The built-in credit-approval stream: river's Agrawal generator with a fixed seed.

Features salary, commission, age, hvalue, hyears and loan are floats; elevel, car and zipcode
are categories (strings); the label "approved" is "0" or "1". The same seed always gives the
same rows, so demos, tests and load generators need no download.

>>> x, y = next(credit_rows(1, seed=42))
>>> sorted(x) == sorted(CREDIT_FEATURES), y in ("0", "1"), type(x["car"]).__name__
(True, True, 'str')
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

BUILTIN_CREDIT = "builtin:credit"
CREDIT_FEATURES = (
    "salary",
    "commission",
    "age",
    "elevel",
    "car",
    "zipcode",
    "hvalue",
    "hyears",
    "loan",
)
CREDIT_CATEGORICAL = frozenset({"elevel", "car", "zipcode"})
CREDIT_LABEL = "approved"
CREDIT_DEFAULTS = {"rows": 20_000, "seed": 42, "function": 0}


def credit_rows(
    n: int, seed: int, function: int = 0, start: int = 0
) -> Iterator[tuple[dict[str, Any], str]]:
    """Rows ``start .. start+n`` of the Agrawal credit stream as (features, label "0"/"1").

    With perturbation 0 the features depend only on the seed, so switching ``function`` at some
    ``start`` keeps the inputs and changes the labelling rule: concept drift on demand.
    """
    from river.datasets.synth import Agrawal

    generator = Agrawal(classification_function=function, seed=seed, perturbation=0.0)
    for x, y in itertools.islice(generator, start, start + n):
        features = {
            k: str(x[k]) if k in CREDIT_CATEGORICAL else float(x[k]) for k in CREDIT_FEATURES
        }
        yield features, str(y)
