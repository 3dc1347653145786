"""`streamops infra up|down|status`: the local Kafka broker and Redis, via infra/ scripts.

Prometheus (Debian's package) comes along when installed; without it, `up` says how to get it.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

from services.cli.cli_settings import cli_settings
from services.common import local_tokens, signing
from services.common.admin import ensure_topics, rotate_password
from services.common.errors import StreamopsError
from services.common.kafka_config import KafkaConfig
from services.common.settings import REPO_ROOT
from services.common.topics import TopicNamer

SCRIPTS = {
    "kafka": REPO_ROOT / "infra" / "kafka" / "kafka.sh",
    "redis": REPO_ROOT / "infra" / "redis" / "redis.sh",
    "prometheus": REPO_ROOT / "infra" / "prometheus" / "prometheus.sh",
}
PROMETHEUS_URL = "http://127.0.0.1:9090"


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `infra`."""
    p = sub.add_parser(
        "infra", help="start, stop or inspect the local Kafka and Redis (and Prometheus)"
    )
    p.add_argument("action", choices=("up", "down", "status", "rotate-password"))
    p.add_argument(
        "principal",
        nargs="?",
        help="`rotate-password`: whose Kafka password to change on the secured broker "
        "(a service's name, admin or client); restart its processes afterwards",
    )
    p.add_argument(
        "--brokers",
        type=int,
        choices=(1, 3),
        help="`up`: one Kafka node, or a three-node cluster with every topic replicated "
        "three times (default: STREAMOPS_KAFKA_BROKERS or 1)",
    )
    p.set_defaults(func=run)


def _script(part: str, action: str, environ: dict[str, str]) -> int:
    env = dict(environ)
    env.setdefault("PYTHON", sys.executable)
    return subprocess.call(["bash", str(SCRIPTS[part]), action], env=env)


def run(args: argparse.Namespace, environ: dict[str, str]) -> int:
    """Run the scripts for `up`, `down` or `status`; `up` also creates the topics."""
    if getattr(args, "brokers", None):
        environ = {**environ, "STREAMOPS_KAFKA_BROKERS": str(args.brokers)}
    if args.action == "up":
        for part in ("kafka", "redis"):
            if _script(part, "start", environ) != 0:
                raise StreamopsError(f"{part} did not start; see the messages above")
        settings = cli_settings(environ)
        namer = TopicNamer(settings.topic_prefix)
        status = ensure_topics(KafkaConfig.from_settings(settings, "streamops-cli").admin(), namer)
        created = sorted(n for n, s in status.items() if s == "created")
        print(f"topics: {len(status)} ready ({len(created)} created) under {namer.prefix!r}")
        print(
            "infra is up: Kafka on",
            settings.kafka_bootstrap,
            "and Redis on",
            f"{settings.redis_host}:{settings.redis_port}",
        )
        _prometheus_up(environ)
        _tokens(settings.var_dir)
        _registry_key(settings.deployment_keys())
        return 0
    if args.action == "rotate-password":
        return _rotate(args.principal, environ)
    if args.action == "down":
        codes = [_script(part, "stop", environ) for part in ("prometheus", "redis", "kafka")]
        return max(codes)
    codes = [_script(part, "status", environ) for part in ("kafka", "redis")]
    if _prometheus_installed(environ):
        _script("prometheus", "status", environ)  # optional: reported, not part of the verdict
    return 0 if all(c == 0 for c in codes) else 3


def _rotate(principal: str | None, environ: dict[str, str]) -> int:
    """A new SCRAM password for one principal, on the broker and in var/kafka-security."""
    if not principal:
        raise StreamopsError("say whose password: streamops infra rotate-password scorer")
    settings = cli_settings(environ)
    kafka = KafkaConfig.from_settings(settings, "streamops-cli")
    if not kafka.secured:
        raise StreamopsError(
            "the broker is the PLAINTEXT one (STREAMOPS_INSECURE=1): it has no passwords"
        )
    rotate_password(kafka.admin(), settings.var_dir, principal)
    where = Path(settings.var_dir) / "kafka-security" / "users" / principal
    print(f"new Kafka password for {principal} in {where} (mode 0600); restart its processes")
    return 0


def _tokens(var_dir: str) -> None:
    """The local registry's and alerting API's tokens: printed when made, afterwards only where
    they are."""
    tokens, created = local_tokens.ensure_registry(var_dir)
    where = local_tokens.registry_path(var_dir)
    if not created:
        print(f"registry tokens: {where} (name:role:token; the registry reads them by default)")
    else:
        print(f"registry tokens, made now into {where} (mode 0600); the registry reads them:")
        for role in local_tokens.ROLES:
            print(f"  {role:6}  {tokens[role]}")
        print(f"  e.g. export STREAMOPS_CLI_TOKEN={tokens['owner']}")
        print(f"  dashboard: http://127.0.0.1:8000/dashboard#token={tokens['viewer']}")
    alerting, created = local_tokens.ensure_alerting(var_dir)
    where = local_tokens.alerting_path(var_dir)
    if not created:
        print(f"alerting API token: {where} (the alerting service and `streamops silences|alerts`"
              " read it by default)")  # fmt: skip
    else:
        print(f"alerting API token, made now into {where} (mode 0600): {alerting}")
        print("  the alerting service and `streamops silences|alerts` read it by default")


def _registry_key(folder: Path) -> None:
    """The registry's Deployment signing key pair, made before any service needs its .pub."""
    key, made = signing.ensure_keypair(folder)
    state = "made now" if made else "kept"
    print(f"registry signing key {key.key_id} ({state}) in {folder}: it signs every Deployment;")
    print(f"  scorers and drift trust {folder}/*.pub (STREAMOPS_DEPLOYMENT_KEYS_DIR)")


def _prometheus_installed(environ: dict[str, str]) -> bool:
    return shutil.which("prometheus", path=environ.get("PATH")) is not None


def _prometheus_up(environ: dict[str, str]) -> None:
    """Monitoring is optional: a missing or failed Prometheus is reported, never fatal."""
    if not _prometheus_installed(environ):
        print("Prometheus: not installed (apt-get install prometheus, then make up again)")
    elif _script("prometheus", "start", environ) == 0:
        print(f"Prometheus: {PROMETHEUS_URL} (rules: infra/prometheus/rules.yml)")
    else:
        print("Prometheus: did not start (see above); Kafka and Redis are up without it")
