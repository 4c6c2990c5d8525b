"""Authenticated pickles: a run folder's pickles are trusted only when this user signed them.

Run folders live on shared file systems and are handed between people; unpickling a file
someone else could write runs their code. So every pickle a run writes (the fitted imputer
``models/<imputer>/fit/<key>/imputer.pkl``, the store of a run on an in-memory store ``work/store.pkl``) is
written by ``dump``: a header line, the HMAC-SHA256 of the payload under this user's secret
key (bound to what the file is for, ``purpose``), then the pickle. ``load`` checks the tag
before it unpickles anything; ``verify`` checks it without unpickling.

The key: 32 random bytes (hex) in ``$IMPBENCH_TRUST_KEY`` when set (a file path: tests, or a
cluster whose home folder the nodes do not share), else ``$XDG_CONFIG_HOME/impbench/trust.key``
(``~/.config/impbench/trust.key``), created on first use with mode 0600 in a 0700 folder. A
folder written by another user (another key) is therefore not trusted: its fits are
recomputed, never loaded.

File format (one owner: this module)::

    IMPBENCH-SIGNED-PICKLE 1 <purpose> <64 hex digits>\\n<pickle bytes>
"""

from __future__ import annotations

import hashlib
import hmac
import os
import pickle
import secrets
from pathlib import Path
from typing import Any

from impbench.errors import ImpbenchError
from impbench.files import atomic_write

#: Environment variable: the path of the key file (overrides the default location).
KEY_ENV = "IMPBENCH_TRUST_KEY"
MAGIC = b"IMPBENCH-SIGNED-PICKLE 1 "
#: The header is at most this long (magic, purpose, tag, newline).
_HEADER_MAX = 256
FIT = "fit"
INPUTS = "inputs"


class UntrustedPickle(Exception):
    """A pickle without a valid tag under this user's key (never unpickled)."""


def key_path() -> Path:
    """Where this user's key lives (see the module docstring)."""
    override = os.environ.get(KEY_ENV)
    if override:
        return Path(override).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base).expanduser() / "impbench" / "trust.key"


def secret_key() -> bytes:
    """This user's key, created (0600) on first use; ``ImpbenchError`` for a key file others
    may read or that holds no key, ``OSError`` when it cannot be read or made."""
    path = key_path()
    try:
        return _read_key(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first
        return _read_key(path)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_hex(32) + "\n")
    return _read_key(path)


def _read_key(path: Path) -> bytes:
    with open(path, "rb") as handle:
        mode = os.fstat(handle.fileno()).st_mode
        text = handle.read().decode(errors="replace").strip()
    if mode & 0o077:
        raise ImpbenchError(f"{path}: the impbench key is readable or writable by others; chmod 600 it "
                            "(or delete it: the fits it signed are then recomputed)")
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) < 16:
        raise ImpbenchError(f"{path}: not an impbench key (delete it to make a new one)")
    return key


def _tag(purpose: str, payload: bytes, key: bytes | None = None) -> str:
    message = purpose.encode() + b"\0" + payload
    return hmac.new(key if key is not None else secret_key(), message, hashlib.sha256).hexdigest()


def sign(payload: bytes, purpose: str) -> bytes:
    """``payload`` (pickle bytes) with its header and tag."""
    if not purpose.isidentifier():
        raise ValueError(f"purpose {purpose!r} must be a plain word")
    return MAGIC + purpose.encode() + b" " + _tag(purpose, payload).encode() + b"\n" + payload


def dumps(obj: Any, purpose: str) -> bytes:
    """``obj`` pickled and signed."""
    return sign(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL), purpose)


def dump(obj: Any, path: Path, purpose: str) -> Path:
    """Pickle ``obj`` to ``path``, signed, atomically."""
    return atomic_write(Path(path), dumps(obj, purpose))


def _payload(data: bytes, purpose: str, where: str) -> bytes:
    """The verified payload of signed bytes; ``UntrustedPickle`` saying why otherwise."""
    if not data.startswith(MAGIC):
        raise UntrustedPickle(f"{where}: not signed by impbench (no tag)")
    end = data.find(b"\n", 0, _HEADER_MAX)
    if end < 0:
        raise UntrustedPickle(f"{where}: malformed tag")
    fields = data[len(MAGIC):end].split(b" ")
    if len(fields) != 2 or fields[0].decode(errors="replace") != purpose:
        raise UntrustedPickle(f"{where}: not a signed {purpose} file")
    payload = data[end + 1:]
    expected = _tag(purpose, payload)
    if not hmac.compare_digest(expected.encode(), fields[1]):
        raise UntrustedPickle(f"{where}: its tag does not match this user's key (written by someone else, or altered)")
    return payload


def verify(path: Path, purpose: str) -> str | None:
    """None when ``path`` is a pickle this user signed for ``purpose``, else why not (one line).
    Nothing is unpickled."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        return f"{path}: cannot read it ({exc.strerror or exc})"
    try:
        _payload(data, purpose, str(path))
    except UntrustedPickle as exc:
        return str(exc)
    return None


def verified_bytes(path: Path, purpose: str) -> bytes:
    """The pickle bytes of ``path`` after checking its tag (for a caller with its own
    ``pickle.Unpickler``); ``UntrustedPickle`` otherwise."""
    return _payload(Path(path).read_bytes(), purpose, str(path))


def load(path: Path, purpose: str) -> Any:
    """Unpickle ``path`` after checking its tag; ``UntrustedPickle`` (nothing unpickled) otherwise."""
    return pickle.loads(verified_bytes(path, purpose))
