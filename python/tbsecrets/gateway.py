"""Resolve a ThingsBoard IoT Gateway configuration directory.

The gateway reads its main file (``tb_gateway.json``; older releases ``tb_gateway.yaml``) and
every connector file its ``connectors:`` list names in ``configuration:``, relative to the
configuration directory. This module resolves the ``${secret:NAME}`` placeholders of all of
them, strictly (one error naming every missing or malformed placeholder in every file):

* :func:`resolve_config_dir` in memory: ``{relative path: resolved text}``;
* :func:`render` into a runtime directory (mode 0700) that the gateway then uses as its
  configuration directory: every other file of the source directory is copied, TEXT_FILE
  secrets (certificates, keys) are written as files (0600) under ``OUT_DIR/.secrets/`` and
  their paths substituted. Rendering happens in a temporary directory beside ``OUT_DIR`` that
  replaces it only when complete (an atomic exchange where the kernel has ``renameat2``), so
  the gateway never sees a half-written configuration.

Command line::

    python -m tbsecrets.gateway render CONFIG_DIR OUT_DIR --store STORE \\
        --master-key-file KEYFILE --tenant TENANT
    python -m tbsecrets.gateway refs CONFIG_DIR
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

from . import (
    InvalidArgument,
    Reference,
    SecretStorage,
    SecretStorageError,
    Session,
    Unresolved,
)

#: Main file names the gateway reads, in the order it prefers them.
MAIN_FILES = ("tb_gateway.json", "tb_gateway.yaml", "tb_gateway.yml")
#: Where TEXT_FILE secrets go inside a rendered directory.
SECRETS_DIR = ".secrets"
#: Marks a directory as made by :func:`render` (only such a directory is ever replaced).
MARKER = ".tbsecrets-rendered"

Store = Union[SecretStorage, Session]
PathLike = Union[str, "os.PathLike[str]"]


def _syntax(path: str) -> str:
    lower = path.lower()
    if lower.endswith(".json"):
        return "json"
    if lower.endswith((".yaml", ".yml")):
        return "yaml"
    return "text"


def _invalid(message: str) -> InvalidArgument:
    err = InvalidArgument("INVALID_ARGUMENT: " + message)
    err.code, err.code_number, err.message, err.problems = "INVALID_ARGUMENT", 1, message, []
    return err


def main_file(config_dir: PathLike, main: Optional[str] = None) -> str:
    """The main file's name in ``config_dir`` (``main`` if given, else the first of
    :data:`MAIN_FILES` that exists)."""
    names = (main,) if main else MAIN_FILES
    for name in names:
        if name and (Path(config_dir) / name).is_file():
            return name
    raise _invalid(f"no {' or '.join(n for n in names if n)} in {config_dir}")


def _parse(text: str, syntax: str, name: str):
    try:
        if syntax == "yaml":
            import yaml  # the gateway's own dependency (PyYAML)

            return yaml.safe_load(text)
        return json.loads(text)
    except Exception as e:  # noqa: BLE001 - any parser error is the same refusal
        raise _invalid(f"{name} is not valid {syntax.upper()}: {e}") from None


def _safe_relative(name: str, config_dir: Path) -> str:
    rel = Path(name)
    if rel.is_absolute() or ".." in rel.parts or not rel.parts:
        raise _invalid(f"connector configuration '{name}' must be a path inside {config_dir}")
    return rel.as_posix()


def config_files(config_dir: PathLike, main: Optional[str] = None) -> List[str]:
    """The files the gateway reads from ``config_dir``: the main file, then each connector's
    ``configuration`` file (relative paths, each once, in the order of the main file)."""
    base = Path(config_dir)
    name = main_file(base, main)
    data = _parse((base / name).read_text(encoding="utf-8"), _syntax(name), name)
    files = [name]
    connectors = (data or {}).get("connectors") or [] if isinstance(data, dict) else []
    if not isinstance(connectors, list):
        raise _invalid(f"{name}: 'connectors' must be a list")
    for connector in connectors:
        if not isinstance(connector, dict) or not connector.get("configuration"):
            continue
        rel = _safe_relative(str(connector["configuration"]), base)
        if not (base / rel).is_file():
            raise _invalid(
                f"{name}: connector '{connector.get('name', '?')}' names {rel}, which is not in {base}"
            )
        if rel not in files:
            files.append(rel)
    return files


def references(config_dir: PathLike, main: Optional[str] = None) -> Dict[str, List[Reference]]:
    """The placeholders of every gateway file: ``{relative path: [Reference, ...]}``."""
    base = Path(config_dir)
    return {
        rel: SecretStorage.references((base / rel).read_text(encoding="utf-8"))
        for rel in config_files(base, main)
    }


def _combined(failures: List[Tuple[str, SecretStorageError]]) -> SecretStorageError:
    """One error naming every problem of every file (no value: the core's messages have none)."""
    lines = []
    problems = []
    for rel, err in failures:
        found = list(getattr(err, "problems", []) or [])
        problems.extend(found)
        if found:
            for p in found:
                lines.append(f"{rel}: {p.code} '{p.name}' at byte {p.offset}: {p.reason}")
        else:
            lines.append(f"{rel}: {err}")
    codes = {getattr(err, "code", "") for _, err in failures}
    cls = type(failures[0][1]) if len(codes) == 1 else Unresolved
    code = codes.pop() if len(codes) == 1 else "UNRESOLVED"
    message = f"{len(lines)} problem(s) in {len(failures)} file(s):\n  " + "\n  ".join(lines)
    combined = cls(f"{code}: {message}")
    combined.code = code
    combined.code_number = getattr(failures[0][1], "code_number", 9) if cls is not Unresolved else 9
    combined.message = message
    combined.problems = problems
    combined.files = {rel: err for rel, err in failures}
    return combined


def resolve_config_dir(
    store: Store, config_dir: PathLike, tenant: str, main: Optional[str] = None
) -> Dict[str, str]:
    """Resolves the main file and every connector file in memory (TEXT_FILE values inline).

    Strict: if any placeholder in any file fails, raises one error (the class of the failures'
    code, or :class:`Unresolved` when they differ) whose message and ``.problems`` name every
    one, and whose ``.files`` maps each failed file to its error.
    """
    base = Path(config_dir)
    resolved: Dict[str, str] = {}
    failures: List[Tuple[str, SecretStorageError]] = []
    for rel in config_files(base, main):
        text = (base / rel).read_text(encoding="utf-8")
        syntax = _syntax(rel)
        try:
            if syntax == "json":
                resolved[rel] = store.resolve_json(tenant, text)
            elif syntax == "yaml":
                resolved[rel] = store.resolve_yaml(tenant, text)
            else:
                resolved[rel] = store.resolve_text(tenant, text)
        except SecretStorageError as e:
            failures.append((rel, e))
    if failures:
        raise _combined(failures)
    return resolved


def _renameat2_exchange(a: str, b: str) -> bool:
    """Atomically swaps two paths (Linux renameat2 RENAME_EXCHANGE); False if unsupported."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


def render(
    store: Store,
    config_dir: PathLike,
    out_dir: PathLike,
    tenant: str,
    main: Optional[str] = None,
) -> List[str]:
    """Renders ``config_dir`` into ``out_dir`` (see the module's doc). Returns the relative
    paths of the files resolved. ``out_dir`` must be absent, empty, or an earlier render.

    Nothing is written at ``out_dir`` unless every file resolved: on any error the temporary
    directory is removed and ``out_dir`` is left as it was.
    """
    base = Path(config_dir).resolve()
    out = Path(os.path.abspath(out_dir))
    if out == base or base in out.parents:
        raise _invalid(f"the output directory {out} must be outside {base}")
    if out.exists():
        if not out.is_dir() or (any(out.iterdir()) and not (out / MARKER).exists()):
            raise _invalid(f"{out} exists and is not an earlier render (no {MARKER} in it); refusing to replace it")
    files = config_files(base, main)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.render-", dir=out.parent))  # mode 0700
    try:
        for entry in base.iterdir():
            target = tmp / entry.name
            if entry.is_dir():
                shutil.copytree(entry, target, symlinks=True)
            else:
                shutil.copy2(entry, target, follow_symlinks=False)
        secrets = tmp / SECRETS_DIR
        secrets.mkdir(mode=0o700)
        failures: List[Tuple[str, SecretStorageError]] = []
        for rel in files:
            text = (base / rel).read_text(encoding="utf-8")
            try:
                resolved, _ = store._resolve_to_files(
                    tenant, text, _syntax(rel), str(secrets), str(out / SECRETS_DIR)
                )
            except SecretStorageError as e:
                failures.append((rel, e))
                continue
            target = tmp / rel
            target.unlink()
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(resolved)
                f.flush()
                os.fsync(f.fileno())
            del resolved
        if failures:
            raise _combined(failures)
        (tmp / MARKER).write_text("rendered by tbsecrets.gateway; replaced on each render\n")
        os.chmod(tmp, 0o700)
        if out.exists() and _renameat2_exchange(str(tmp), str(out)):
            shutil.rmtree(tmp)  # now the previous render
        else:
            if out.exists():
                old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
                os.rename(out, old / "d")
                os.rename(tmp, out)
                shutil.rmtree(old)
            else:
                os.rename(tmp, out)
        return files
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _open_store(args: argparse.Namespace) -> SecretStorage:
    if not args.store:
        raise _invalid("--store (or TBS_STORE) is required")
    return SecretStorage.open(
        args.store,
        master_key_file=args.master_key_file or None,
        create_if_missing=False,
    )


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m tbsecrets.gateway``: ``render`` and ``refs``. Exit 0 on success, 1 on a
    tbsecrets error (printed without any value), 2 on bad usage."""
    parser = argparse.ArgumentParser(
        prog="python -m tbsecrets.gateway",
        description="Resolve ${secret:...} placeholders in a ThingsBoard IoT Gateway configuration directory.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("render", help="resolve CONFIG_DIR into the runtime directory OUT_DIR")
    r.add_argument("config_dir")
    r.add_argument("out_dir")
    r.add_argument("--store", default=os.environ.get("TBS_STORE"))
    r.add_argument("--master-key-file", default=os.environ.get("TBS_MASTER_KEY_FILE"))
    r.add_argument("--tenant", default=os.environ.get("TBS_TENANT"))
    r.add_argument("--main", help="main file name (default: tb_gateway.json, else tb_gateway.yaml)")
    f = sub.add_parser("refs", help="list the secrets each gateway file references")
    f.add_argument("config_dir")
    f.add_argument("--main")
    args = parser.parse_args(argv)
    try:
        if args.command == "refs":
            for rel, refs in references(args.config_dir, args.main).items():
                for ref in refs:
                    kind = f";type:{ref.secret_type}" if ref.secret_type else ""
                    print(f"{rel}\t{ref.name}{kind}")
            return 0
        if not args.tenant:
            parser.error("--tenant (or TBS_TENANT) is required")
        with _open_store(args) as store:
            files = render(store, args.config_dir, args.out_dir, args.tenant, args.main)
        print(f"rendered {len(files)} file(s) of {args.config_dir} into {args.out_dir}")
        return 0
    except SecretStorageError as e:
        print(f"tbsecrets.gateway: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"tbsecrets.gateway: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
