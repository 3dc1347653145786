"""The probe server: runs each probe inference in a fork of itself, under a memory limit.

Started once per scorer by `model_probe` (``python -m services.scorer.probe_server``), it imports
onnxruntime and then serves requests on stdin, one at a time: a JSON header line (the limits
and the model's size), then the model's bytes. For each, it forks; the child limits its own
address space, creates a session, runs it on one synthetic row and writes what it saw to a pipe;
the server waits at most the timeout, kills a child that overruns, and answers one JSON line on
stdout. The server never creates a session itself and runs nothing while a child lives (the
threads its imports start sit idle; OpenBLAS is held to none), so forking it is safe and takes
milliseconds; a child that dies takes nothing else with it.

Why RLIMIT_AS, set by the child on itself: it is the one memory limit Linux enforces on an
unprivileged process (RLIMIT_RSS is ignored, cgroups need privileges), and a refused mapping makes
onnxruntime raise instead of the kernel's OOM killer picking a victim. Importing onnxruntime and
numpy already maps a lot of address space, so the child measures its own (VmSize) and allows
the limit on top of that; a normal model's session and one-row run need a small fraction of
the default.
"""

from __future__ import annotations

import json
import math
import os
import resource
import select
import signal
import sys
import time
from typing import Any, BinaryIO

import numpy as np
import onnxruntime as ort

from services.scorer.sessions import new_session

_DTYPES: dict[str, Any] = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(bool)": np.bool_,
    "tensor(string)": object,
}


class ProbeRefused(Exception):
    """The model cannot be run on a synthetic row."""


def synthetic_row(session: ort.InferenceSession, max_elements: int) -> dict[str, np.ndarray]:
    """One row for every declared input: zeros, or the "missing" category for strings."""
    feeds = {}
    for arg in session.get_inputs():
        dtype = _DTYPES.get(arg.type)
        if dtype is None:
            raise ProbeRefused(f"input {arg.name!r} has type {arg.type}, which is not served")
        shape = [d if isinstance(d, int) and d > 0 else 1 for d in (arg.shape or [])]
        if math.prod(shape) > max_elements:
            raise ProbeRefused(f"input {arg.name!r} declares shape {shape}")
        if dtype is object:
            feeds[arg.name] = np.full(shape, "missing", dtype=object)
        else:
            feeds[arg.name] = np.zeros(shape, dtype=dtype)
    return feeds


def _elements(output: Any) -> int:
    if isinstance(output, np.ndarray):
        return int(output.size)
    if isinstance(output, list):  # a sequence of maps (ZipMap)
        return sum(len(x) if isinstance(x, dict) else 1 for x in output)
    return 1


def _address_space() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise ProbeRefused("no VmSize in /proc/self/status")


def run_limited(data: bytes, limits: dict[str, Any]) -> dict[str, Any]:
    """In the forked child: limit the address space, create a session, run one row."""
    hard = resource.getrlimit(resource.RLIMIT_AS)[1]
    soft = _address_space() + int(limits["memory_bytes"])
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    session = new_session(data)
    outputs = session.run(None, synthetic_row(session, int(limits["max_input_elements"])))
    return {"ok": True, "outputs": [_elements(o) for o in outputs]}


def _child(data: bytes, limits: dict[str, Any], out: int) -> None:
    try:
        result = run_limited(data, limits)
    except BaseException as exc:  # everything here is the model's fault: report it
        result = {"ok": False, "detail": f"{type(exc).__name__}: {exc}"[:300]}
    try:
        os.write(out, json.dumps(result).encode())
    finally:
        os._exit(0)


def probe_forked(data: bytes, limits: dict[str, Any]) -> dict[str, Any]:
    """Run one probe in a fork of this process; a verdict even if the child dies or hangs."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        _child(data, limits, write_end)
    os.close(write_end)
    timeout_s = float(limits["timeout_s"])
    deadline = time.monotonic() + timeout_s
    chunks: list[bytes] = []
    timed_out = False
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            timed_out = True
            os.kill(pid, signal.SIGKILL)
            break
        ready, _, _ = select.select([read_end], [], [], remaining)
        if ready:
            chunk = os.read(read_end, 65536)
            if not chunk:
                break
            chunks.append(chunk)
    os.close(read_end)
    _, status = os.waitpid(pid, 0)
    if timed_out:
        return {"ok": False, "detail": f"did not finish in {timeout_s:g} s"}
    if not chunks:
        how = (
            f"signal {os.WTERMSIG(status)}"
            if os.WIFSIGNALED(status)
            else f"exit code {os.waitstatus_to_exitcode(status)}"
        )
        return {"ok": False, "detail": f"the probe process died ({how})"}
    return json.loads(b"".join(chunks))


def serve(requests: BinaryIO, replies: BinaryIO) -> None:
    """Answer probe requests until `requests` ends."""
    while True:
        line = requests.readline()
        if not line:
            return
        header = json.loads(line)
        data = requests.read(int(header["size"]))
        replies.write(json.dumps(probe_forked(data, header["limits"])).encode() + b"\n")
        replies.flush()


def main() -> None:
    """Serve on stdin/stdout; anything else that writes to stdout goes to stderr instead."""
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # onnxruntime or a child must never corrupt the reply channel
    serve(sys.stdin.buffer, replies)


if __name__ == "__main__":
    main()
