"""Fault injection: make the server answer a chosen error, delay, or fixed score for the requests
that match a rule, so app teams can test their error handling against a real wire.

Off unless both ``COMPAREFACES_FAULTS_FILE`` and ``COMPAREFACES_FAULTS_ENABLED=true`` are set (a
file without the switch, or the switch without a file, refuses to start). When on, it says so at
start-up, on every reload and every injected fault in the log, and on ``/readyz``. The file is JSON::

    {"rules": [
      {"name": "key X sees no face",                     # required, unique: in logs and on /readyz
       "match": {"access_key_id": "LTAI5tQA",            # one id or a list: the key that signed the request
                 "image_value": "^oss://qa:noface/",     # regex searched in SourceImageValue or TargetImageValue
                 "share": 0.25},                         # this fraction of the requests the rest matches
       "delay_ms": 1500,                                 # wait first (at most 600000)
       "error": "Error.NoFaceDetected",                  # then answer this error (any code of the contract),
       "message": "optional other message",
       "retry_after_ms": 2000,                           # Throttling.User: its x-acs-retry-after (default 1000)
       "score": 42.5}                                    # or answer success with this score (images not loaded)
    ]}

The first rule that matches applies; ``match`` may be empty (every request). A rule needs an effect:
``delay_ms`` alone (then the request runs normally), ``error``, or ``score``. The file is re-read when
it changes; a version that does not parse is refused and the previous rules stay.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app import errors
from app.engine.calibration import Calibration
from app.engine.types import Comparison, pair_type
from app.errors import ApiError
from app.settings import Settings
from app.watched_file import file_stamp, permission_problem
from app.wire.compare_faces import comparison_data, image_values, parse_image_types
from app.wire.request import RpcRequest

log = logging.getLogger("comparefaces.faults")

MAX_DELAY_MS = 600_000
MATCHED_VALUE_CHARS = 4096  # image_value patterns see the start of a value (addresses, data URL headers)
DEFAULT_RETRY_AFTER_MS = 1000
RULE_NAME = re.compile(r"[\w .:/#@+-]{1,80}")
V3_CREDENTIAL = re.compile(r"Credential=([^,\s]+)")
LOGGABLE_KEY_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")  # a claimed id is caller input: logged only when plain
RULE_KEYS = {"name", "match", "delay_ms", "error", "message", "retry_after_ms", "score"}
MATCH_KEYS = {"access_key_id", "image_value", "share"}


class FaultsConfigError(ValueError):
    """Fault injection asked for without the switch, or a rules file that is missing or invalid."""


def error_catalog() -> dict[str, Callable[[], ApiError]]:
    """Every error code of the contract (``app.errors``) -> a function making that error."""
    catalog: dict[str, Callable[[], ApiError]] = {}
    for value in vars(errors).values():
        if isinstance(value, type) and issubclass(value, ApiError) and value is not ApiError:
            try:
                value()
            except TypeError:  # needs arguments: only those listed below
                continue
            catalog[value.code] = value
    # The gateway's errors that quote the request: an injected one quotes nothing of it.
    catalog[errors.SignatureDoesNotMatch.code] = lambda: errors.SignatureDoesNotMatch("")
    catalog[errors.IncompleteSignature.code] = lambda: errors.IncompleteSignature("")
    catalog[errors.MissingParameter.code] = lambda: errors.MissingParameter("Signature")
    return catalog


@dataclass(frozen=True)
class FaultRule:
    name: str
    access_key_ids: frozenset[str] | None
    image_value: re.Pattern[str] | None
    share: float
    delay_ms: float
    error: str | None
    message: str | None
    retry_after_ms: int
    score: float | None

    def matches(self, key_id: str, values: tuple[str, str], draw: Callable[[], float]) -> bool:
        if self.access_key_ids is not None and key_id not in self.access_key_ids:
            return False
        if self.image_value is not None and not any(
            self.image_value.search(value[:MATCHED_VALUE_CHARS]) for value in values
        ):
            return False
        return self.share >= 1.0 or draw() < self.share

    def effect(self) -> str:
        parts = [f"delay {self.delay_ms:g} ms"] if self.delay_ms else []
        if self.error:
            parts.append(f"error {self.error}")
        if self.score is not None:
            parts.append(f"score {self.score:g}")
        return ", ".join(parts)

    def make_error(self, catalog: dict[str, Callable[[], ApiError]]) -> ApiError:
        assert self.error is not None
        error = catalog[self.error]()
        if self.message is not None:
            error.message = self.message
        if isinstance(error, errors.Throttled):
            error.headers = {**error.headers, "x-acs-retry-after": str(self.retry_after_ms)}
        return error


def _number(rule: str, key: str, value: Any, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise FaultsConfigError(f"rule {rule!r}: {key} must be a number")
    if not low <= value <= high:
        raise FaultsConfigError(f"rule {rule!r}: {key} must be between {low:g} and {high:g}")
    return float(value)


def parse_rule(entry: Any, catalog: dict[str, Callable[[], ApiError]]) -> FaultRule:
    if not isinstance(entry, dict):
        raise FaultsConfigError("each rule must be a JSON object")
    name = entry.get("name")
    if not isinstance(name, str) or not RULE_NAME.fullmatch(name):
        raise FaultsConfigError(f"each rule needs a name (1-80 letters, digits, spaces, .:/#@+-_): {name!r}")
    unknown = set(entry) - RULE_KEYS
    if unknown:
        raise FaultsConfigError(f"rule {name!r}: unknown keys {sorted(unknown)}")
    match = entry.get("match", {})
    if not isinstance(match, dict) or set(match) - MATCH_KEYS:
        raise FaultsConfigError(f"rule {name!r}: match takes only {sorted(MATCH_KEYS)}")
    ids = match.get("access_key_id")
    if isinstance(ids, str):
        ids = [ids]
    if ids is not None and (not isinstance(ids, list) or not all(isinstance(i, str) and i for i in ids)):
        raise FaultsConfigError(f"rule {name!r}: access_key_id must be an id or a list of ids")
    pattern = match.get("image_value")
    try:
        compiled = re.compile(pattern) if pattern is not None else None
    except (re.error, TypeError) as exc:
        raise FaultsConfigError(f"rule {name!r}: image_value is not a regular expression: {exc}") from exc
    error, score = entry.get("error"), entry.get("score")
    if error is not None and error not in catalog:
        raise FaultsConfigError(f"rule {name!r}: unknown error code {error!r} (known: {', '.join(sorted(catalog))})")
    if error is not None and score is not None:
        raise FaultsConfigError(f"rule {name!r}: error and score exclude each other")
    message = entry.get("message")
    if message is not None and (not isinstance(message, str) or error is None):
        raise FaultsConfigError(f"rule {name!r}: message must be a string, with error")
    delay = _number(name, "delay_ms", entry.get("delay_ms", 0), 0, MAX_DELAY_MS)
    if error is None and score is None and not delay:
        raise FaultsConfigError(f"rule {name!r}: needs an effect: delay_ms, error or score")
    return FaultRule(
        name=name,
        access_key_ids=frozenset(ids) if ids is not None else None,
        image_value=compiled,
        share=_number(name, "share", match.get("share", 1.0), 0, 1),
        delay_ms=delay,
        error=error,
        message=message,
        retry_after_ms=int(
            _number(name, "retry_after_ms", entry.get("retry_after_ms", DEFAULT_RETRY_AFTER_MS), 0, 86_400_000)
        ),
        score=_number(name, "score", score, 0, 100) if score is not None else None,
    )


def parse_rules(document: Any, catalog: dict[str, Callable[[], ApiError]]) -> list[FaultRule]:
    if not isinstance(document, dict) or not isinstance(document.get("rules"), list) or set(document) - {"rules"}:
        raise FaultsConfigError('expected {"rules": [...]}')
    rules = [parse_rule(entry, catalog) for entry in document["rules"]]
    names = [rule.name for rule in rules]
    if len(set(names)) != len(names):
        raise FaultsConfigError("rule names must be unique")
    return rules


def load_rules(path: Path, catalog: dict[str, Callable[[], ApiError]]) -> list[FaultRule]:
    """The rules of ``path``, refused (as the keys file) when anyone but its owner could rewrite it:
    rules decide answers, a fixed score among them."""
    problem = permission_problem(path, "faults file")
    if problem:
        raise FaultsConfigError(problem)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise FaultsConfigError(f"faults file {path} does not exist") from exc
    except (OSError, ValueError) as exc:
        raise FaultsConfigError(f"faults file {path} is not readable JSON: {type(exc).__name__}") from exc
    return parse_rules(document, catalog)


def claimed_key_id(rpc: RpcRequest) -> str:
    """The AccessKeyId the request names (RPC parameter or V3 credential), unverified: what rules
    match in open mode only, where nothing is authenticated and any caller may claim any key.
    ``""`` when it names none."""
    if rpc.params.get("AccessKeyId"):
        return rpc.params["AccessKeyId"]
    found = V3_CREDENTIAL.search(rpc.headers.get("authorization", ""))
    return found.group(1) if found else ""


def fixed_score_data(params: dict[str, str], calibration: Calibration, score: float) -> dict[str, Any]:
    """What the API answers with this score for this request's types (parameters checked as usual)."""
    source, target = parse_image_types(params)
    image_values(params)
    kind = pair_type(source, target)
    return comparison_data(Comparison(score, math.nan, calibration.all_pairs_thresholds(kind), kind))


class FaultInjector:
    """The rules of one file, re-read when its mtime, size or inode changes. With access keys,
    ``access_key_id`` matches the key that signed the request, never an id the request merely
    names (V3 does not sign an ``AccessKeyId`` parameter); in open mode, the claimed id."""

    def __init__(self, path: Path, *, open_mode: bool = False, draw: Callable[[], float] = random.random) -> None:
        self.path = path
        self.open_mode = open_mode
        self.catalog = error_catalog()
        self._draw = draw
        self._lock = threading.Lock()
        self._stamp = file_stamp(self.path)
        self.rules = load_rules(path, self.catalog)
        self.reload_error: str | None = None
        log.warning("FAULT INJECTION ON: %s", self._summary())

    def _summary(self) -> str:
        names = "; ".join(f"{rule.name!r} -> {rule.effect()}" for rule in self.rules) or "none"
        return f"{len(self.rules)} rules from {self.path}: {names}"

    def current(self) -> list[FaultRule]:
        stamp = file_stamp(self.path)
        if stamp == self._stamp:
            return self.rules
        with self._lock:
            if stamp != self._stamp:
                self._stamp = stamp
                try:
                    self.rules = load_rules(self.path, self.catalog)
                    self.reload_error = None
                    log.warning("FAULT INJECTION reloaded: %s", self._summary())
                except FaultsConfigError as exc:
                    self.reload_error = str(exc)
                    log.error("faults file NOT reloaded, keeping the previous rules: %s", exc)
        return self.rules

    def describe(self) -> str:
        """For ``/readyz``: loud, so that it is never on by accident."""
        rules = self.current()
        text = f"INJECTING: {len(rules)} rules from {self.path} ({', '.join(rule.name for rule in rules) or 'none'})"
        if self.reload_error:
            text += f"; last edit refused: {self.reload_error}"
        return text

    def match(self, rpc: RpcRequest, authenticated: str | None) -> FaultRule | None:
        key_id = claimed_key_id(rpc) if self.open_mode else authenticated or ""
        values = (rpc.params.get("SourceImageValue", ""), rpc.params.get("TargetImageValue", ""))
        for rule in self.current():
            if rule.matches(key_id, values, self._draw):
                shown = key_id if LOGGABLE_KEY_ID.fullmatch(key_id) else "-"
                log.warning("fault injected: rule=%r %s key_id=%s", rule.name, rule.effect(), shown)
                return rule
        return None

    async def inject(
        self, rpc: RpcRequest, calibration: Calibration, authenticated: str | None = None
    ) -> dict[str, Any] | None:
        """Apply the first matching rule for the request signed by ``authenticated`` (None: open mode
        or unsigned): wait, then raise its error or return its score's ``Data``; ``None`` when no rule
        matches or its only effect was the delay (then serve as usual)."""
        rule = self.match(rpc, authenticated)
        if rule is None:
            return None
        if rule.delay_ms:
            await asyncio.sleep(rule.delay_ms / 1000)
        if rule.error is not None:
            raise rule.make_error(self.catalog)
        if rule.score is not None:
            return fixed_score_data(rpc.params, calibration, rule.score)
        return None


def check_fault_settings(settings: Settings) -> bool:
    """True when fault injection is on; raises ``FaultsConfigError`` for a half-configured one or
    a rules file that does not load (so ``serve`` can refuse in one line before binding)."""
    if settings.faults_file is None and not settings.faults_enabled:
        return False
    if settings.faults_file is None:
        raise FaultsConfigError("COMPAREFACES_FAULTS_ENABLED is set but COMPAREFACES_FAULTS_FILE is not")
    if not settings.faults_enabled:
        raise FaultsConfigError(
            f"COMPAREFACES_FAULTS_FILE={settings.faults_file} is set but fault injection is not enabled: "
            "refusing to start (set COMPAREFACES_FAULTS_ENABLED=true to inject faults on purpose)"
        )
    load_rules(settings.faults_file, error_catalog())
    return True


def create_fault_injector(settings: Settings) -> FaultInjector | None:
    """None when fault injection is off; refuses a half-configured one."""
    if not check_fault_settings(settings) or settings.faults_file is None:
        return None
    return FaultInjector(settings.faults_file, open_mode=settings.access_keys_file is None)
