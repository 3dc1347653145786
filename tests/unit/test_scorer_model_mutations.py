"""R10: a thousand byte mutations of a real model never crash the scorer's loading path.

Each mutated model goes through the guard and, when the guard lets it through, through session
creation and one prediction, exactly as the scorer would load it. Every outcome must be either
a clean refusal (PoisonMessage) or a contained onnxruntime error; the run happens in a child
process so that a crash in native code fails this test instead of killing pytest.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from tests.kafka_support import REPO

pytestmark = pytest.mark.unit

CHILD = textwrap.dedent("""
    import json, random, sys
    from collections import Counter
    from services.common.errors import PoisonMessage
    from services.scorer.inference import load_model, predict
    from services.trainer.credit import credit_rows
    from tests.model_factory import credit_content

    content = credit_content(1, estimator="logreg", rows=600)
    rows = [f for f, _ in credit_rows(5, seed=1)]
    rng = random.Random(7)
    outcomes = Counter()
    for i in range(int(sys.argv[1])):
        data = bytearray(content["onnx"])
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        try:
            model = load_model({**content, "onnx": bytes(data)})
            predict(model, rows)
            outcomes["served"] += 1
        except PoisonMessage as exc:
            outcomes["refused:" + exc.reason.value] += 1
        except Exception as exc:  # onnxruntime refused it: contained
            outcomes["contained:" + type(exc).__name__] += 1
    print(json.dumps(outcomes))
""")


def test_r10_byte_mutations_are_refused_or_contained_never_fatal(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", CHILD, "1000"],
        cwd=tmp_path,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"loading mutated models crashed the process:\n{done.stderr}"
    outcomes = json.loads(done.stdout.strip().splitlines()[-1])
    assert sum(outcomes.values()) == 1000
    refused = sum(n for k, n in outcomes.items() if not k.startswith("served"))
    assert refused > 0, outcomes  # the mutations do reach the refusal paths
    print(outcomes)
