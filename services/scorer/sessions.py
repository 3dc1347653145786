"""onnxruntime sessions as the scorer creates them: from bytes, CPU only, one thread each."""

from __future__ import annotations

import onnxruntime as ort


def new_session(data: bytes) -> ort.InferenceSession:
    """A session over ONNX bytes (already guard-checked by the caller)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # many scorer processes share few cores
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(data, sess_options=options, providers=["CPUExecutionProvider"])
