"""`seedswarm keys`: create and inspect a node's encrypted keystore.

The keystore (DIR/keystore.json) holds the Ed25519 node key (its peer id is the node's libp2p
identity) and the EVM account that stakes and receives rewards, both encrypted under one
password. Other commands load it with `load_keys`.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from protocol.errors import KeystoreError

if TYPE_CHECKING:
    from adapters.storage.keystore import KeyBundle

PASSWORD_ENV = "SEEDSWARM_PASSWORD"
DEFAULT_SCRYPT_LOG_N = 17

keys_app = typer.Typer(
    name="keys",
    help=(
        "Create and inspect node keys.\n\n"
        "A node has two keys, stored encrypted together in DIR/keystore.json: an Ed25519 node "
        "key (its libp2p peer id, which signs every protocol message) and an EVM account (which "
        f"stakes and receives rewards). The password comes from ${PASSWORD_ENV} or a prompt."
    ),
    no_args_is_help=True,
)


def keystore_path(directory: Path) -> Path:
    """Where the keystore of a key directory lives."""
    from adapters.storage.keystore import KEYSTORE_FILENAME

    return directory / KEYSTORE_FILENAME


def resolve_password(*, confirm: bool) -> str:
    """The password from $SEEDSWARM_PASSWORD (or the file $SEEDSWARM_PASSWORD_FILE names), else
    asked interactively (twice if `confirm`)."""
    from seedswarm.launch.settings import password_from

    from_env = password_from(os.environ)
    if from_env is not None:
        return from_env
    prompt = "Keystore password"
    password: str = typer.prompt(prompt, hide_input=True, confirmation_prompt=confirm)
    return password


def load_keys(directory: Path, password: str | None = None) -> KeyBundle:
    """Read and decrypt DIR/keystore.json; KeystoreError if missing, unreadable or locked."""
    from adapters.storage.keystore import decrypt_keystore

    path = keystore_path(directory)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise KeystoreError(
            f"no keystore at {path} (create one with `seedswarm keys new`)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise KeystoreError(f"cannot read {path}: {exc}") from None
    if password is None:
        password = resolve_password(confirm=False)
    return decrypt_keystore(text, password)


def write_keystore(directory: Path, text: str, *, force: bool) -> Path:
    """Write the keystore atomically, owner-readable only; refuses to overwrite unless `force`."""
    path = keystore_path(directory)
    if path.exists() and not force:
        raise KeystoreError(f"{path} already exists; pass --force to overwrite it")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=directory, prefix=".keystore-", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp_name, 0o600)
        os.replace(tmp_name, path)
    except OSError as exc:
        raise KeystoreError(f"cannot write {path}: {exc}") from None
    return path


def _summary(bundle: KeyBundle, path: Path) -> dict[str, str]:
    return {
        "peer_id": bundle.peer_id,
        "evm_address": bundle.evm_address,
        "node_public_key": bundle.node_key.public.raw.hex(),
        "keystore": str(path),
    }


def _print_summary(summary: dict[str, str], title: str) -> None:
    table = Table(title=title, show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for label, key in (
        ("peer id", "peer_id"),
        ("EVM address", "evm_address"),
        ("node public key", "node_public_key"),
        ("keystore", "keystore"),
    ):
        table.add_row(label, summary[key])
    Console().print(table)


def _fail(message: str) -> typer.Exit:
    Console(stderr=True).print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code=1)


@keys_app.command("new")
def new(
    out: Annotated[Path, typer.Option("--out", help="Directory to write keystore.json into.")],
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing keystore.")] = False,
    scrypt_log_n: Annotated[
        int, typer.Option(hidden=True, min=4, max=20, help="log2 of scrypt n (tests only).")
    ] = DEFAULT_SCRYPT_LOG_N,
) -> None:
    """Generate a node key and an EVM account and store them encrypted in OUT/keystore.json."""
    from adapters.storage.keystore import KeyBundle, ScryptParams, encrypt_keystore

    if keystore_path(out).exists() and not force:
        raise _fail(f"{keystore_path(out)} already exists; pass --force to overwrite it")
    password = resolve_password(confirm=True)
    bundle = KeyBundle.generate()
    try:
        text = encrypt_keystore(bundle, password, scrypt=ScryptParams(n=2**scrypt_log_n))
        path = write_keystore(out, text, force=force)
    except KeystoreError as exc:
        raise _fail(str(exc)) from None
    _print_summary(_summary(bundle, path), "new node keys")


@keys_app.command("show")
def show(
    directory: Annotated[Path, typer.Argument(help="Key directory (holding keystore.json).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Decrypt the keystore in DIRECTORY and print its peer id and EVM address."""
    try:
        bundle = load_keys(directory)
    except KeystoreError as exc:
        raise _fail(str(exc)) from None
    summary = _summary(bundle, keystore_path(directory))
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
    else:
        _print_summary(summary, "node keys")


def register(app: typer.Typer) -> None:
    """Add the `keys` command group to the top-level CLI."""
    app.add_typer(keys_app, name="keys")
