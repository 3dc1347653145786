"""`streamops keys init`: create the Ed25519 key pair that signs models.

The private key is written with mode 0600 and never printed or logged; the command prints the
key id and the public key's path (give that file to scorers and the registry). An existing
private key is kept unless `--force`, which replaces it but leaves the old public keys in place
so models signed before the rotation still verify.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from services.cli.cli_settings import cli_settings
from services.common import signing


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `keys init`."""
    p = sub.add_parser("keys", help="manage the model signing key pair")
    actions = p.add_subparsers(dest="keys_action", metavar="ACTION", required=True)
    init = actions.add_parser("init", help="create a key pair (default under <var_dir>/keys)")
    init.add_argument("--dir", help="key directory (default: <var_dir>/keys)")
    init.add_argument("--force", action="store_true", help="replace an existing private key")
    init.set_defaults(func=run)


def run(args: argparse.Namespace, environ: dict[str, str]) -> int:
    """Create the key pair; 1 if a private key exists and --force was not given."""
    folder = Path(args.dir) if args.dir else Path(cli_settings(environ).var_dir) / "keys"
    existing = sorted(folder.glob("*.key")) if folder.is_dir() else []
    if existing and not args.force:
        ids = ", ".join(p.stem for p in existing)
        print(
            f"streamops: a signing key already exists in {folder} (key id {ids}); "
            "pass --force to replace it",
            file=sys.stderr,
        )
        return 1
    for old in existing:
        old.unlink()
    key_id = signing.generate_keypair(folder)
    print(f"key id      {key_id}")
    print(f"public key  {folder / (key_id + '.pub')}")
    if existing:
        print(
            f"replaced    {', '.join(p.stem for p in existing)} (public keys kept for old models)"
        )
    return 0
