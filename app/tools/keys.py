"""``comparefaces keys``: create (permanent or STS), list, disable, enable, rotate and delete access keys.

Every change rewrites the keys file (the format of ``app.auth.keys``) atomically: the new document
goes to a temporary file in the same folder, mode 0600, which then replaces the file, so that a
running server that re-reads it on change never sees half a file. The new file keeps the old one's
owner, group and group-read bit (the server may run as that owner, or read it through its group);
a user who cannot give it those (another user than root or the owner) is refused before anything
is written, rather than leave a file the server can no longer read. A file that does not parse is
never rewritten. Entries keep any field they had. Secrets and tokens are printed once, at creation,
and never listed.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import re
import secrets
import stat
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from app.auth.keys import BASE62, KeysFileError, new_key_pair, parse_iso8601, parse_keys
from app.settings import Settings

SECTIONS = ("keys", "sts")
DURATION = re.compile(r"(\d+)([smhd]?)")
UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
DEFAULT_STS_LIFETIME = "1h"  # AssumeRole's default DurationSeconds


def random_text(alphabet: str, length: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def new_sts_credential() -> tuple[str, str, str]:
    """An STS-shaped id (``STS.NU...``), secret and security token (``CAIS...``)."""
    return "STS.NU" + random_text(BASE62, 22), random_text(BASE62, 44), "CAIS" + random_text(BASE62, 120)


def parse_duration(text: str) -> int:
    """``3600``, ``90m``, ``12h``, ``7d`` -> seconds (at least one)."""
    match = DURATION.fullmatch(text.strip())
    if match is None or int(match.group(1)) <= 0:
        raise ValueError(f"not a duration: {text!r} (e.g. 3600, 90m, 12h, 7d)")
    return int(match.group(1)) * UNIT_SECONDS[match.group(2)]


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def read_document(path: Path) -> dict[str, Any]:
    """The keys file as JSON (an empty document when it does not exist); refuses one it cannot parse."""
    if not path.exists():
        return {"keys": [], "sts": []}
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise KeysFileError(f"{path} is not JSON: {exc}") from exc
    except OSError as exc:
        raise KeysFileError(f"{path} cannot be read: {exc.strerror}") from exc
    parse_keys(document)  # refuse to rewrite a file the server would not read as it is
    assert isinstance(document, dict)
    for section in SECTIONS:
        document.setdefault(section, [])
    return document


def keep_ownership(fd: int, path: Path) -> None:
    """Give the new file ``fd`` the owner, group and group-read bit of ``path`` (if it exists), or
    raise ``KeysFileError`` when this user may not."""
    try:
        old = path.stat()
    except FileNotFoundError:
        os.fchmod(fd, 0o600)
        return
    new = os.fstat(fd)
    if (new.st_uid, new.st_gid) != (old.st_uid, old.st_gid):
        try:
            os.fchown(fd, old.st_uid, old.st_gid)
        except PermissionError as exc:
            raise KeysFileError(
                f"{path} belongs to uid {old.st_uid}, gid {old.st_gid}: rewritten by uid {os.geteuid()} it would "
                "no longer be theirs and the server could not read it; run this as its owner (or root)"
            ) from exc
    os.fchmod(fd, 0o600 | (old.st_mode & stat.S_IRGRP))


def write_document(path: Path, document: dict[str, Any]) -> None:
    """Replace ``path`` by ``document`` in one rename, with the old file's owner, group and group-read."""
    parse_keys(document)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        keep_ownership(fd, path)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(document, out, indent=2)
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def editing(path: Path) -> Iterator[dict[str, Any]]:
    """Read, let the caller change, write; one editor at a time (a lock file beside the keys file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # Read-only, so that another user may lock a lock file that someone else created (it holds nothing).
    with os.fdopen(os.open(path.parent / f".{path.name}.lock", os.O_RDONLY | os.O_CREAT, 0o644)) as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        document = read_document(path)
        yield document
        write_document(path, document)


def entries(document: dict[str, Any], key_id: str) -> list[dict[str, Any]]:
    """Every entry (permanent or STS) with this AccessKeyId."""
    return [entry for section in SECTIONS for entry in document[section] if entry.get("AccessKeyId") == key_id]


class UsageError(Exception):
    pass


def create(path: Path, actions: list[str], *, sts: bool, expires: str | None, expires_in: str | None) -> str:
    if not sts and (expires or expires_in):
        raise UsageError("--expires/--expires-in are for STS credentials: add --sts")
    with editing(path) as document:
        if not sts:
            key_id, secret = new_key_pair()
            entry: dict[str, Any] = {"AccessKeyId": key_id, "AccessKeySecret": secret, "Enabled": True}
            if actions:
                entry["Actions"] = actions
            document["keys"].append(entry)
            return f"AccessKeyId: {key_id}\nAccessKeySecret: {secret}\n(appended to {path}; shown only once)"
        if expires:
            try:
                expiration = iso(datetime.fromtimestamp(parse_iso8601(expires), timezone.utc))
            except ValueError as exc:
                raise UsageError(f"--expires: not an ISO 8601 time: {expires!r}") from exc
        else:
            try:
                seconds = parse_duration(expires_in or DEFAULT_STS_LIFETIME)
            except ValueError as exc:
                raise UsageError(f"--expires-in: {exc}") from exc
            expiration = iso(datetime.now(timezone.utc) + timedelta(seconds=seconds))
        if parse_iso8601(expiration) <= time.time():
            raise UsageError(f"expiration {expiration} is in the past")
        key_id, secret, token = new_sts_credential()
        entry = {
            "AccessKeyId": key_id,
            "AccessKeySecret": secret,
            "SecurityToken": token,
            "Expiration": expiration,
            "Enabled": True,
        }
        if actions:
            entry["Actions"] = actions
        document["sts"].append(entry)
        return (
            f"AccessKeyId: {key_id}\nAccessKeySecret: {secret}\nSecurityToken: {token}\nExpiration: {expiration}\n"
            f"(appended to {path}; shown only once)"
        )


def listing(path: Path) -> list[dict[str, Any]]:
    """One row per entry, without secrets or tokens."""
    document = read_document(path)
    now = time.time()
    rows = []
    for section in SECTIONS:
        for entry in document[section]:
            row: dict[str, Any] = {
                "Type": "sts" if section == "sts" else "key",
                "AccessKeyId": entry["AccessKeyId"],
                "Enabled": entry.get("Enabled", True),
                "Actions": entry.get("Actions", ["*"]),
            }
            if section == "sts":
                row["Expiration"] = entry["Expiration"]
                row["Expired"] = parse_iso8601(entry["Expiration"]) <= now
            rows.append(row)
    return rows


def format_rows(rows: list[dict[str, Any]]) -> str:
    header = ("TYPE", "ACCESS KEY ID", "ENABLED", "ACTIONS", "EXPIRATION")
    table = [header] + [
        (
            row["Type"],
            row["AccessKeyId"],
            "yes" if row["Enabled"] else "no",
            ",".join(row["Actions"]),
            row.get("Expiration", "-") + (" (expired)" if row.get("Expired") else ""),
        )
        for row in rows
    ]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip() for line in table
    )


def set_enabled(path: Path, key_id: str, enabled: bool) -> str:
    with editing(path) as document:
        found = entries(document, key_id)
        if not found:
            raise UsageError(f"no key {key_id} in {path}")
        for entry in found:
            entry["Enabled"] = enabled
    return f"{key_id}: {'enabled' if enabled else 'disabled'} ({len(found)} entr{'y' if len(found) == 1 else 'ies'})"


def rotate(path: Path, key_id: str, *, keep_old: bool) -> str:
    """A new permanent key with the old one's actions; the old one is disabled unless ``keep_old``."""
    with editing(path) as document:
        old = [entry for entry in document["keys"] if entry.get("AccessKeyId") == key_id]
        if not old:
            if entries(document, key_id):
                raise UsageError(f"{key_id} is an STS credential: they expire; create a new one (create --sts)")
            raise UsageError(f"no key {key_id} in {path}")
        new_id, secret = new_key_pair()
        entry: dict[str, Any] = {"AccessKeyId": new_id, "AccessKeySecret": secret, "Enabled": True}
        if "Actions" in old[0]:
            entry["Actions"] = list(old[0]["Actions"])
        document["keys"].append(entry)
        if not keep_old:
            old[0]["Enabled"] = False
    state = "still enabled: disable it once clients have moved" if keep_old else "disabled"
    return f"AccessKeyId: {new_id}\nAccessKeySecret: {secret}\n(replaces {key_id}, now {state}; shown only once)"


def delete(path: Path, key_id: str) -> str:
    with editing(path) as document:
        found = entries(document, key_id)
        if not found:
            raise UsageError(f"no key {key_id} in {path}")
        for section in SECTIONS:
            document[section] = [entry for entry in document[section] if entry.get("AccessKeyId") != key_id]
    return f"{key_id}: deleted ({len(found)} entr{'y' if len(found) == 1 else 'ies'})"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    verbs = parser.add_subparsers(dest="keys_command", required=True)

    def verb(name: str, help: str) -> argparse.ArgumentParser:
        sub = verbs.add_parser(name, help=help)
        sub.add_argument("--file", type=Path, default=None, help="keys file (default: COMPAREFACES_ACCESS_KEYS_FILE)")
        return sub

    create_parser = verb("create", help="append a new random key (or --sts credential) and print it once")
    create_parser.add_argument("--action", action="append", default=[], help="allow only this action (repeatable)")
    create_parser.add_argument("--sts", action="store_true", help="an STS credential (id, secret, token) that expires")
    create_parser.add_argument("--expires-in", default=None, help="STS lifetime: 3600, 90m, 12h, 7d (default 1h)")
    create_parser.add_argument("--expires", default=None, help="STS expiration, ISO 8601 (2026-12-01T08:00:00Z)")
    list_parser = verb("list", help="list keys and STS credentials (never their secrets)")
    list_parser.add_argument("--json", action="store_true", help="one JSON array")
    for name, help in (
        ("disable", "refuse a key's requests (InvalidAccessKeyId.Inactive) until it is enabled"),
        ("enable", "accept a disabled key again"),
        ("delete", "remove a key (every STS entry with that id)"),
    ):
        verb(name, help).add_argument("access_key_id")
    rotate_parser = verb("rotate", help="create a replacement key with the same actions and disable the old one")
    rotate_parser.add_argument("access_key_id")
    rotate_parser.add_argument("--keep-old", action="store_true", help="leave the old key enabled for a cutover")


def run_cli(args: argparse.Namespace, settings: Settings) -> int:
    path = args.file or settings.access_keys_file
    if path is None:
        print("no keys file: pass --file or set COMPAREFACES_ACCESS_KEYS_FILE", file=sys.stderr)
        return 2
    path = Path(path)
    command = args.keys_command
    try:
        if command == "create":
            print(create(path, args.action, sts=args.sts, expires=args.expires, expires_in=args.expires_in))
        elif command == "list":
            rows = listing(path)
            print(json.dumps(rows, indent=2) if args.json else format_rows(rows))
        elif command in ("disable", "enable"):
            print(set_enabled(path, args.access_key_id, command == "enable"))
        elif command == "rotate":
            print(rotate(path, args.access_key_id, keep_old=args.keep_old))
        elif command == "delete":
            print(delete(path, args.access_key_id))
    except (UsageError, KeysFileError) as error:
        print(f"comparefaces keys {command}: {error}", file=sys.stderr)
        return 2
    return 0
