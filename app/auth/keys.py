"""The access keys file: load, reload on change or SIGHUP, look up, and append new keys.

Format (``COMPAREFACES_ACCESS_KEYS_FILE``)::

    {"keys": [{"AccessKeyId": "...", "AccessKeySecret": "...", "Enabled": true, "Actions": ["CompareFaces"]}],
     "sts":  [{"AccessKeyId": "...", "AccessKeySecret": "...", "SecurityToken": "...",
               "Expiration": "2026-11-25T08:00:00Z", "Enabled": true, "Actions": ["*"]}]}

Secrets never reach a log line or a ``repr``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
import stat
import string
import tempfile
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path
from typing import Any

from app.watched_file import file_stamp, permission_problem

log = logging.getLogger("comparefaces.auth")

BASE62 = string.ascii_letters + string.digits
ALL_ACTIONS = frozenset({"*"})


class KeysFileError(ValueError):
    """The keys file is missing, not JSON, or not in the documented format."""


@dataclass(frozen=True)
class Credential:
    access_key_id: str
    secret: str = field(repr=False)
    enabled: bool = True
    actions: frozenset[str] = ALL_ACTIONS
    security_token: str = field(default="", repr=False)  # STS credentials only
    expires_at: float | None = None  # epoch seconds, STS credentials only

    def allows(self, action: str) -> bool:
        return self.enabled and ("*" in self.actions or action in self.actions)


@dataclass(frozen=True)
class KeySet:
    keys: dict[str, Credential]
    sts: dict[str, list[Credential]]

    def find(self, access_key_id: str, security_token: str) -> Credential | None:
        """A permanent key when no token is sent; an STS credential whose token matches otherwise."""
        if not security_token:
            return self.keys.get(access_key_id)
        for credential in self.sts.get(access_key_id, []):
            if hmac.compare_digest(credential.security_token.encode(), security_token.encode()):
                return credential
        return None

    def known(self, access_key_id: str) -> bool:
        return access_key_id in self.keys or access_key_id in self.sts

    def token_owner(self, security_token: str) -> str | None:
        """The AccessKeyId whose STS credential carries this token, or None."""
        return self._token_owners.get(hashlib.sha256(security_token.encode()).digest())

    @cached_property
    def _token_owners(self) -> dict[bytes, str]:
        # Keyed by the token's digest: a dict lookup on the token itself would compare secrets byte by byte.
        return {
            hashlib.sha256(c.security_token.encode()).digest(): key_id
            for key_id, credentials in self.sts.items()
            for c in credentials
        }


def parse_iso8601(text: str) -> float:
    """``2026-11-25T06:26:05Z`` (fractions and offsets tolerated; naive times are UTC) -> epoch seconds."""
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def _credential(entry: Any, *, sts: bool) -> Credential:
    if not isinstance(entry, dict):
        raise KeysFileError("each key must be a JSON object")
    key_id, secret = entry.get("AccessKeyId"), entry.get("AccessKeySecret")
    if not isinstance(key_id, str) or not key_id or not isinstance(secret, str) or not secret:
        raise KeysFileError("each key needs a non-empty AccessKeyId and AccessKeySecret")
    enabled = entry.get("Enabled", True)
    actions = entry.get("Actions", ["*"])
    if not isinstance(enabled, bool) or not isinstance(actions, list) or not all(isinstance(a, str) for a in actions):
        raise KeysFileError(f"key {key_id}: Enabled must be a boolean and Actions a list of action names")
    if not sts:
        return Credential(key_id, secret, enabled, frozenset(actions))
    token, expiration = entry.get("SecurityToken"), entry.get("Expiration")
    if not isinstance(token, str) or not token or not isinstance(expiration, str):
        raise KeysFileError(f"STS credential {key_id}: needs SecurityToken and Expiration (ISO 8601)")
    try:
        expires_at = parse_iso8601(expiration)
    except ValueError as exc:
        raise KeysFileError(f"STS credential {key_id}: Expiration is not ISO 8601") from exc
    return Credential(key_id, secret, enabled, frozenset(actions), token, expires_at)


def parse_keys(document: Any) -> KeySet:
    """The keys of a document in the documented format; raises ``KeysFileError`` at the first slip."""
    keys, problems = parse_keys_leniently(document)
    if problems:
        raise KeysFileError(problems[0])
    return keys


def parse_keys_leniently(document: Any) -> tuple[KeySet, list[str]]:
    """The entries of a document that are exactly right, and what is wrong with the others.

    Fail closed: an entry with any slip (``"Enabled": "false"`` as a string, a missing secret...)
    is left out, so its key stops working rather than keeping whatever it had; an AccessKeyId listed
    twice among the permanent keys is left out whole.
    """
    if not isinstance(document, dict):
        return KeySet({}, {}), ['expected {"keys": [...], "sts": [...]}']
    problems: list[str] = []
    sections = {}
    for section in ("keys", "sts"):
        entries = document.get(section, [])
        if not isinstance(entries, list):
            problems.append(f'"{section}" must be a list')
            entries = []
        sections[section] = entries
    permanent = _credentials(sections["keys"], sts=False, problems=problems)
    keys: dict[str, Credential] = {}
    duplicated: set[str] = set()
    for credential in permanent:
        if credential.access_key_id in keys:
            duplicated.add(credential.access_key_id)
            problems.append(f"duplicate AccessKeyId {credential.access_key_id}")
        keys[credential.access_key_id] = credential
    for key_id in duplicated:
        del keys[key_id]
    sts: dict[str, list[Credential]] = {}
    for credential in _credentials(sections["sts"], sts=True, problems=problems):
        sts.setdefault(credential.access_key_id, []).append(credential)
    return KeySet(keys, sts), problems


def check_permissions(path: Path) -> None:
    """A file of secrets readable by others, or writable by anyone but its owner, is refused; a
    group-readable one is accepted with a warning (Kubernetes mounts Secrets so with ``fsGroup``)."""
    problem = permission_problem(path, "access keys file")
    if problem:
        raise KeysFileError(problem)
    if os.name == "posix" and path.exists() and (mode := path.stat().st_mode) & stat.S_IRGRP:
        log.warning("access keys file %s is readable by its group (mode %o)", path, stat.S_IMODE(mode))


def _credentials(entries: list[Any], *, sts: bool, problems: list[str]) -> list[Credential]:
    """The entries that are exactly right; what is wrong with the others goes to ``problems``."""
    credentials = []
    for entry in entries:
        try:
            credentials.append(_credential(entry, sts=sts))
        except KeysFileError as exc:
            problems.append(str(exc))
    return credentials


def load_keys(path: Path) -> KeySet:
    check_permissions(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise KeysFileError(f"access keys file {path} does not exist (create one: comparefaces keys create)") from exc
    except PermissionError as exc:
        raise KeysFileError(
            f"access keys file {path} cannot be read by this process (uid {os.getuid()}): uid {os.getuid()} "
            f"must be able to read it (chown {os.getuid()} {path}; chmod 600 {path})"
        ) from exc
    except (OSError, ValueError) as exc:
        raise KeysFileError(f"access keys file {path} is not readable JSON: {type(exc).__name__}") from exc
    return parse_keys(document)


class KeyStore:
    """The keys of one file, reloaded when its mtime/size/inode change or ``request_reload()`` is called.

    The file must be right at start-up (``KeysFileError`` otherwise). A later edit fails closed: a
    deleted or unreadable file leaves no key working; a file with slips keeps only its entries that
    are exactly right (see :func:`parse_keys_leniently`). Never does a key the new file disables,
    removes or garbles keep working. Until a clean file is read, ``problem`` says what is wrong
    (``/readyz`` answers 503 with it) and each reload logs it.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp = file_stamp(self.path)
        self._keys = load_keys(path)
        self._reload_requested = False
        self.problem: str | None = None
        log.info("access keys: %s", self._summary())

    def _summary(self) -> str:
        return f"{len(self._keys.keys)} keys, {sum(len(v) for v in self._keys.sts.values())} STS credentials"

    def request_reload(self) -> None:
        """Safe from a signal handler: the next lookup re-reads the file."""
        self._reload_requested = True

    def current(self) -> KeySet:
        stamp = file_stamp(self.path)
        if stamp == self._stamp and not self._reload_requested:
            return self._keys
        with self._lock:
            stamp = file_stamp(self.path)
            if stamp != self._stamp or self._reload_requested:
                self._reload_requested = False
                self._stamp = stamp
                self._reload()
            return self._keys

    def _reload(self) -> None:
        try:
            check_permissions(self.path)
            document = json.loads(self.path.read_text(encoding="utf-8"))
        except KeysFileError as exc:
            self._keys, problems = KeySet({}, {}), [str(exc)]
        except (OSError, ValueError) as exc:
            self._keys, problems = (
                KeySet({}, {}),
                [f"{self.path} is missing or not readable JSON ({type(exc).__name__})"],
            )
        else:
            self._keys, problems = parse_keys_leniently(document)
        self.problem = "; ".join(problems) or None
        if self.problem:
            log.error(
                "access keys file has errors; only its correct entries are in use (%s): %s",
                self._summary(),
                self.problem,
            )
        else:
            log.info("access keys reloaded from %s: %s", self.path, self._summary())


def new_key_pair() -> tuple[str, str]:
    """``LTAI5t`` + 18 base62 characters, and a 30-character base62 secret."""
    key_id = "LTAI5t" + "".join(secrets.choice(BASE62) for _ in range(18))
    secret = "".join(secrets.choice(BASE62) for _ in range(30))
    return key_id, secret


def append_key(path: Path, key_id: str, secret: str, actions: list[str] | None = None) -> None:
    """Add a permanent key to ``path`` (created if missing), atomically and readable by the owner only."""
    document: dict[str, Any] = {"keys": []}
    if path.exists():
        document = json.loads(path.read_text(encoding="utf-8"))
        parse_keys(document)  # refuse to rewrite a file we do not understand
    entry: dict[str, Any] = {"AccessKeyId": key_id, "AccessKeySecret": secret, "Enabled": True}
    if actions:
        entry["Actions"] = actions
    document.setdefault("keys", []).append(entry)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(document, out, indent=2)
            out.write("\n")
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
