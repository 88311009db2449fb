"""What may enter the log: secrets never do.

A secret that reaches the append-only, hash-chained log cannot be removed without
breaking the chain, so everything the actor system writes passes through one function,
`redact`, before it is encoded:

- **configs**, at any depth (mappings, lists, tuples): a value under a key whose last word
  names a secret (``api_key``, ``token``, ``password``, ``client_secret``, ``keys``,
  ``Authorization``, ``Cookie``, ``X-Api-Key``...) becomes ``"***"``, whatever it holds;
  every other string is redacted as text (below);
- **texts** (error messages, tracebacks, reasons, health details, output excerpts):
  credentials inside URLs (``https://user:KEY@host``, query parameters named like secrets),
  ``Authorization``/``Cookie``/``*-Key`` header lines, ``name=value`` and ``'name': 'value'``
  pairs whose name says secret, ``Bearer``/``Basic`` credentials, token shapes with a known
  prefix (``sk-...``, ``ghp_...``, ``github_pat_...``, ``xox?-...``, ``AKIA...``, ``AIza...``,
  ``hf_...``, JWTs), PEM private keys, and every secret value this process has seen (a
  config value masked above, a key the LLM plugin read from the environment:
  `remember_secret`) become ``***``. Long hex and base64 strings are left alone in texts
  (they are digests and ids as often as keys); an unrecognisable secret under a key that
  does not say so is not found: name such keys like secrets.

Texts are redacted *before* they are cut to a size (`excerpt`), so a cut never leaves the
first characters of a secret behind.

`check_config` refuses, before anything is logged, a value that looks like a credential
under a key that says it holds a *name* (``*_env``, ``*_var``): the mistake of pasting a key
where the name of its environment variable belongs. The refusal never echoes the value.

`redact_event` is what the actor system installs on its `EventStore`
(`EventStore.redact_with`): the text fields of the built-in events that carry error texts
or outside text, and ``plugin.registered``'s config, are redacted as each event is
appended. Other event types opt in with a class attribute naming their text fields::

    class MyEvent(Event, tag="my.event", frozen=True):
        redact_fields: ClassVar[tuple[str, ...]] = ("detail",)
        detail: str

Message payloads (``message.received``) are *not* redacted: a handler is given exactly
what its logged message decodes to, and reproduction replays the same, so a message is
logged as sent. Keep secrets out of messages (or register the plugin with
``log_messages=False``).
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable, Mapping
from typing import Any, Final, TypeVar

import msgspec

from actorlog.events import (
    Escalated,
    FailureAssessed,
    FailureRaised,
    MessageRefused,
    PluginFailed,
    PluginHealthChecked,
    PluginRegistered,
    PluginRestarted,
    RecoveryDecided,
    RegistrationError,
    RunStopped,
    TaskGaveUp,
)

__all__ = [
    "MASK",
    "check_config",
    "excerpt",
    "looks_like_credential",
    "redact",
    "redact_event",
    "redact_text",
    "redacted",
    "remember_secret",
]

MASK: Final = "***"
"""What a secret is replaced with."""

T = TypeVar("T")

# -- key names ------------------------------------------------------------------------------------

_SECRET_WORDS = frozenset({
    "key", "keys", "apikey", "token", "secret", "secrets", "password", "passwords", "passwd", "pwd",
    "passphrase", "credential", "credentials", "auth", "authorization", "cookie", "cookies", "bearer",
})
"""A key whose last word is one of these holds a secret (``api_key``, ``X-Auth-Token``, ``Cookie``)."""

_NAME_WORDS = frozenset({"env", "var", "envvar"})
"""A key whose last word is one of these holds the *name* of an environment variable."""

_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+")


def _last_word(key: str) -> str:
    words = _WORDS.findall(key)
    return words[-1].lower() if words else ""


def _names_secret(key: str) -> bool:
    return _last_word(key) in _SECRET_WORDS


def _names_a_name(key: str) -> bool:
    return _last_word(key) in _NAME_WORDS or key.lower() in ("env", "environ", "environment_variable")


# -- known secrets --------------------------------------------------------------------------------

_MIN_KNOWN = 6
"""Shorter values are masked in configs but not searched for in texts (they would match everywhere)."""

_known_lock = threading.Lock()
_known: set[str] = set()
_known_ordered: tuple[str, ...] = ()


def remember_secret(value: str) -> None:
    """From now on, ``value`` is replaced by ``***`` in every text this process redacts."""
    global _known_ordered
    if not isinstance(value, str) or len(value) < _MIN_KNOWN or value == MASK:
        return
    with _known_lock:
        if value in _known:
            return
        _known.add(value)
        _known_ordered = tuple(sorted(_known, key=len, reverse=True))  # the longest first: one may hold another


# -- texts ----------------------------------------------------------------------------------------


_VALUE: Final = re.compile(
    r"[ \t]*+(?:\"[^\"\r\n]*+\"|'[^'\r\n]*+'"  # quoted
    r"|(?:Bearer|Basic|Token|Digest|bearer|basic|token)[ \t]++[^\s\"',;&}\])]++"  # a scheme and its credential
    r"|[^\s\"',;&}\])]++)"  # or a bare word
)
_SEPARATOR: Final = re.compile(r"[\"']?[ \t]*[:=]")
_STEMS: Final = ("key", "token", "secret", "passw", "pwd", "passphrase", "credential", "auth", "cookie", "bearer")
_PEM: Final = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)", re.DOTALL)
_HEADER: Final = re.compile(r"(?i)\b((?:proxy-)?authorization|(?:set-)?cookie)[ \t]*:[ \t]*[^\r\n]+")
_USERINFO: Final = re.compile(r"://[^\s/?#\"'<>]+@")
_SCHEME: Final = re.compile(
    r"(\b(?:Bearer|bearer)[ \t]+|\bToken[ \t]+(?=\S*[0-9])|\bBasic[ \t]+(?=[A-Za-z0-9+/]*+[0-9+/=]))"
    r"[A-Za-z0-9._~+/=\-]{8,}+"
)
_TOKEN: Final = re.compile(
    r"\bsk-[A-Za-z0-9_\-]{16,}+"
    r"|\b(?:sk|pk|rk)_(?:live|test)_[A-Za-z0-9]{12,}+"
    r"|\bgh[pousr]_[A-Za-z0-9]{20,}+|\bgithub_pat_[A-Za-z0-9_]{20,}+|\bglpat-[A-Za-z0-9_\-]{20,}+"
    r"|\bxox[abposr]-[A-Za-z0-9\-]{11,}+|\bAKIA[0-9A-Z]{16}\b|\bAIza[0-9A-Za-z_\-]{30,}+"
    r"|\bhf_[A-Za-z0-9]{30,}+|\bnpm_[A-Za-z0-9]{30,}+"
    r"|\beyJ[A-Za-z0-9_\-]{8,}+\.[A-Za-z0-9_\-]{8,}+\.[A-Za-z0-9_\-]*+"
)
"""Token shapes with a recognisable prefix (each at least 16 characters of ``[A-Za-z0-9_+=-]``)."""
_OPAQUE: Final = re.compile(
    r"(?=[0-9]{0,200}[a-fA-F])(?=[a-fA-F]{0,200}[0-9])[0-9a-fA-F]{32,}"
    r"|(?P<blob>[A-Za-z0-9+/_\-]{32,}={0,2})"
)
"""Long hex, long base64: the shape of many keys, but also of digests and ids, so these are
refused where a *name* is expected (`looks_like_credential`) but not masked in texts."""
_RUN_CHARS: Final = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_+=-"
_RUN_TABLE: Final = bytes(97 if byte in _RUN_CHARS else 32 for byte in range(256))
_LONG_RUN: Final = re.compile(b"a{16,}")
_LONG_TEXT_RUN: Final = re.compile(r"[A-Za-z0-9_+=\-]{16,}")
_REGION_CHARS: Final = frozenset((_RUN_CHARS + b"./").decode())
_PREFIXES: Final = ("sk-", "sk_", "pk_", "rk_", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "glpat-", "xox", "AKIA", "AIza", "hf_", "npm_", "eyJ")


def _high_entropy(run: str) -> bool:
    """Whether a long base64-like run looks random (a key) rather than a word, path or identifier."""
    if max(map(len, run.split("/"))) < 20:  # a path: short components
        return False
    if not (any(c.islower() for c in run) and any(c.isupper() for c in run) and any(c.isdigit() for c in run)):
        return False
    counts: dict[str, int] = {}
    for char in run:
        counts[char] = counts.get(char, 0) + 1
    size = len(run)
    return -sum(n / size * math.log2(n / size) for n in counts.values()) >= 4.0


def _pairs(text: str, lowered: str) -> str:
    """Mask the value of every ``name=value``, ``name: value`` or ``'name': 'value'`` whose name's
    last word names a secret (``password=...``, ``?api_key=...``, ``"X-Api-Key": "..."``)."""
    spans: list[tuple[int, int]] = []
    for stem in _STEMS:
        at = lowered.find(stem)
        while at >= 0:
            end, longest = at + len(stem), min(len(text), at + 20)  # no secret word is longer
            while end < longest and text[end].isalpha():
                end += 1
            word = lowered[at:end]
            before = text[at - 1] if at else " "
            boundary = not before.isalnum() or (before.islower() and text[at].isupper())
            if boundary and word in _SECRET_WORDS and (end >= len(text) or not (text[end].isalnum() or text[end] in "_.-")):
                separator = _SEPARATOR.match(text, end)
                if separator is not None:
                    value = _VALUE.match(text, separator.end())
                    if value is not None:
                        spans.append((separator.end(), value.end()))
                        end = value.end()  # what the value holds is masked: no need to look inside it
            at = lowered.find(stem, end)
    if not spans:
        return text
    pieces: list[str] = []
    position = 0
    for start, end in sorted(spans):
        if start < position:
            continue
        found = text[start:end]
        stripped = found.lstrip(" \t")
        quote = stripped[0] if stripped[:1] in ("'", '"') and len(stripped) > 1 and stripped[-1] == stripped[0] else ""
        pieces += (text[position:start], found[: len(found) - len(stripped)], quote, MASK, quote)
        position = end
    pieces.append(text[position:])
    return "".join(pieces)


def _tokens(text: str) -> str:
    """Mask token shapes, looking only at the runs of text long enough to hold one (at least 16
    characters of ``[A-Za-z0-9_+=-]``) and holding a token's prefix."""
    raw = text.encode("utf-8", "surrogatepass")
    if _LONG_RUN.search(raw.translate(_RUN_TABLE)) is None:
        return text
    if text.isascii():
        spans = [run.span() for run in _LONG_RUN.finditer(raw.translate(_RUN_TABLE))]
    else:  # positions in the bytes are not positions in the text: find them in the text
        spans = [run.span() for run in _LONG_TEXT_RUN.finditer(text)]
    pieces: list[str] = []
    position = 0
    for start, end in spans:
        if start < position:
            continue
        while start > position and text[start - 1] in _REGION_CHARS:
            start -= 1
        while end < len(text) and text[end] in _REGION_CHARS:
            end += 1
        region = text[start:end]
        if any(prefix in region for prefix in _PREFIXES):
            pieces += (text[position:start], _TOKEN.sub(MASK, region))
            position = end
    if not pieces:
        return text
    pieces.append(text[position:])
    return "".join(pieces)


def _lowered(text: str) -> str:
    """``text`` in lower case, character for character (``str.lower`` may lengthen some)."""
    lowered = text.lower()
    if len(lowered) == len(text):
        return lowered
    return "".join(char if len(low := char.lower()) != 1 else low for char in text)


def redact_text(text: str) -> str:
    """``text`` with every credential the rules recognise, and every remembered secret, as ``***``."""
    if not text:
        return text
    for secret in _known_ordered:
        if secret in text:
            text = text.replace(secret, MASK)
    if "PRIVATE KEY-----" in text:
        text = _PEM.sub(MASK, text)
    if ":" in text or "=" in text:
        lowered = _lowered(text)
        if "authorization" in lowered or "cookie" in lowered:
            text = _HEADER.sub(rf"\1: {MASK}", text)
            lowered = _lowered(text)
        if any(stem in lowered for stem in _STEMS):
            text = _pairs(text, lowered)
        if "://" in text:
            text = _USERINFO.sub(f"://{MASK}@", text)
    if "earer" in text or "Token" in text or "Basic" in text:
        text = _SCHEME.sub(rf"\1{MASK}", text)
    return _tokens(text)


_NAME_SHAPE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def looks_like_credential(value: str) -> bool:
    """Whether ``value`` has the shape of a credential rather than of a variable's name: a
    known token format, a JWT, long hex or high-entropy text, or a long mix of letters and
    digits with other characters."""
    value = value.strip()
    if not value:
        return False
    if redact_text(value) != value:
        return True
    opaque = _OPAQUE.fullmatch(value)
    if opaque is not None and (opaque.group("blob") is None or _high_entropy(value)):
        return True
    mixed = any(c.isdigit() for c in value) and any(c.isalpha() for c in value)
    if _NAME_SHAPE.fullmatch(value):
        return len(value) >= 20 and mixed and any(c.islower() for c in value) and any(c.isupper() for c in value)
    return len(value) >= 12 and mixed


# -- the one function -----------------------------------------------------------------------------


def redact(value: T) -> T:
    """``value`` as it may be logged: strings redacted as text, mappings by their keys (a value
    under a secret-naming key masked whole), lists and tuples item by item, at any depth.
    Values of other types are returned as they are."""
    return _redact(value, None)  # type: ignore[no-any-return]


def _redact(value: Any, key: str | None) -> Any:
    if key is not None and _names_secret(key):
        return _mask(value)
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {
            (redact_text(k) if isinstance(k, str) else k): _redact(v, k if isinstance(k, str) else None)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_redact(item, None) for item in value]
    if isinstance(value, tuple):
        return tuple(_redact(item, None) for item in value)
    return value


def _mask(value: Any) -> Any:
    """Everything under a secret-naming key: strings and numbers masked (and remembered), containers item by item."""
    if isinstance(value, str):
        remember_secret(value)
        return MASK if value else value
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float)):
        return MASK  # masked, but not searched for in texts: a number is everywhere
    if isinstance(value, Mapping):
        return {k: _mask(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_mask(item) for item in value)
    return MASK


def redacted(config: Mapping[str, Any]) -> dict[str, Any]:
    """A plugin's ``config`` as logged (`redact` of it, as a dict)."""
    result: dict[str, Any] = redact(dict(config))
    return result


def check_config(plugin: str, config: Mapping[str, Any]) -> None:
    """Refuse (`RegistrationError`) a credential-looking value under a key that holds a *name*
    (``*_env``, ``*_var``), at any depth. The message names the key, never the value."""

    def visit(value: Any, path: str, name_key: bool) -> None:
        if isinstance(value, Mapping):
            for key, item in value.items():
                text = str(key)
                visit(item, f"{path}.{text}" if path else text, _names_a_name(text))
        elif isinstance(value, (list, tuple)):
            for index, item in enumerate(value):
                visit(item, f"{path}[{index}]", name_key)
        elif name_key and isinstance(value, str) and looks_like_credential(value):
            raise RegistrationError(
                f"config key {redact_text(path)!r} of plugin {plugin!r} must hold the NAME of an environment "
                f"variable, but its value looks like a credential (not shown); put the secret in an environment "
                f"variable and give that variable's name here"
            )

    visit(config, "", False)


# -- events ---------------------------------------------------------------------------------------

_BUILT_IN_FIELDS: Final[dict[type[Any], tuple[str, ...]]] = {
    FailureRaised: ("message", "traceback"),
    FailureAssessed: ("message",),
    RecoveryDecided: ("reason",),
    PluginFailed: ("reason",),
    PluginRestarted: ("reason",),
    PluginHealthChecked: ("detail",),
    Escalated: ("reason",),
    RunStopped: ("reason",),
    TaskGaveUp: ("message",),
    MessageRefused: ("reason",),
    PluginRegistered: ("config",),
}
_fields_of: dict[type[Any], tuple[str, ...]] = dict(_BUILT_IN_FIELDS)


def redact_event(event: T) -> T:
    """``event`` with its text fields redacted (`redact`): the built-in kinds that carry error
    or outside text, and any event type naming its own in a ``redact_fields`` class attribute."""
    cls = type(event)
    fields = _fields_of.get(cls)
    if fields is None:
        declared = getattr(cls, "redact_fields", ())
        fields = _fields_of[cls] = tuple(declared) if isinstance(declared, (tuple, list)) else ()
    if not fields or not isinstance(event, msgspec.Struct):
        return event
    known = _known_ordered  # read first: a secret remembered meanwhile makes this result stale
    recent: dict[int, Any] | None = getattr(_recent, "events", None)
    if recent is not None and _recent.known is known and recent.get(id(event)) is event:
        return event  # this thread's own result, redacted already (fit_texts, then the store's hook)
    changes: dict[str, Any] = {}
    for name in fields:
        value = getattr(event, name, None)
        if value is None:
            continue
        cleaned = _redact(value, None)
        if cleaned != value:
            changes[name] = cleaned
    result = msgspec.structs.replace(event, **changes) if changes else event
    if event.__struct_config__.frozen:  # a mutable event may be changed after it was redacted
        if recent is None or _recent.known is not known or len(recent) >= _RECENT_MAX:
            recent = _recent.events = {}
            _recent.known = known
        recent[id(result)] = result  # held, so its id cannot be another object's while it is here
    return result


_recent = threading.local()
"""Per thread: the frozen events `redact_event` returned lately (by id), and the remembered
secrets they were redacted against. An event passes through it twice on its way to the log
(cut to size by `fit_texts`, then the store's hook): the second time costs a lookup."""
_RECENT_MAX: Final = 32


# -- cutting --------------------------------------------------------------------------------------

_TRAILING_WORD = re.compile(r"\S+\Z")


def excerpt(text: str, limit: int, *, complete: bool = True, marker: str = "...") -> str:
    """``text`` redacted, then cut to at most ``limit`` characters (``marker`` at the cut).

    Redacting first means a cut cannot leave part of a secret behind. ``complete=False``
    says ``text`` itself was already cut (a read of at most N bytes): its last word may be the
    start of a secret the rules cannot recognise whole, so it is dropped before redacting.
    """
    if not complete:
        text = _TRAILING_WORD.sub("", text) + marker
    text = redact_text(text)
    if len(text) <= limit:
        return text
    room = max(limit - len(marker), 0)
    return text[:room] + marker
