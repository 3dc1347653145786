"""`streamops apply -f FILE`: make a deployment what its file declares, through governance.

The file becomes one `apply` change request: approved at once where the deployment's policy
auto-approves, otherwise pending until an owner approves it (`--wait` waits for that). A file
identical to what is in force files nothing. An error in the file, found here or by the
registry, is printed at its line.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from services.cli.api_client import ApiClient, add_client_arguments, print_json, url_part
from services.cli.deployment_file import DeploymentFile, parse
from services.common.api_client import ApiError
from services.common.errors import ConfigError, StreamopsError

POLL_S = 1.0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `apply`."""
    p = sub.add_parser("apply", help="create or change a deployment from a YAML file")
    p.add_argument("-f", "--file", required=True, help="deployment file (see examples/)")
    p.add_argument("--reason", help="why (recorded in the audit trail; default names the file)")
    p.add_argument(
        "--wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="wait up to this long for an owner's approval (default: do not wait)",
    )
    add_client_arguments(p)
    p.set_defaults(func=run)


def _file(path: str) -> DeploymentFile:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    return parse(text, path)


def _wait(client: ApiClient, request_id: str, seconds: float) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while True:
        found = client.get(f"/requests/{url_part(request_id)}")
        if found["status"] != "pending" or time.monotonic() >= deadline:
            return found
        time.sleep(POLL_S)


def run(args: argparse.Namespace, environ: dict[str, str]) -> int:
    """Parse the file, file the request, report (and wait for) the outcome."""
    doc = _file(args.file)
    body = {**doc.body, "reason": args.reason or f"applied {Path(args.file).name}"}
    client = ApiClient.registry(args, environ)
    try:
        answer = client.post(f"/deployments/{url_part(doc.name)}/requests", body)
    except ApiError as exc:
        if exc.field:
            raise ConfigError(f"{doc.where(exc.field)}: {exc}") from None
        raise
    if answer["status"] == "pending" and args.wait > 0:
        print(f"request {answer['request_id']} on {doc.name}: waiting for an owner's approval")
        answer = _wait(client, answer["request_id"], args.wait)
    if args.json:
        print_json(answer)
    status = answer["status"]
    if status == "unchanged":
        print(f"{doc.name} is already as {args.file} declares (revision {answer['revision']})")
    elif status == "pending":
        print(
            f"request {answer['request_id']} on {doc.name}: pending; an owner approves it with "
            f"`streamops deploy approve {answer['request_id']}`"
        )
    elif status == "approved":
        print(f"request {answer['request_id']} on {doc.name}: approved, {doc.name} is as declared")
    else:
        raise StreamopsError(f"request {answer['request_id']} on {doc.name} was {status}")
    return 0 if status != "pending" or args.wait <= 0 else 1
