"""The LLM example plugin: text generation with a pluggable backend.

::

    from actorlog.actors import ActorSystem
    from actorlog.actors.examples.llm import Generate, LLMPlugin

    with ActorSystem("app.db") as system:
        system.register("llm", LLMPlugin, config={"backend": "offline", "failure_rate": 0.1})
        system.start()
        completion = system.ask("llm", Generate(prompt="write code to sort a list"), timeout=5)
        print(completion.text)

Two backends ship with it, chosen by the ``backend`` key of the plugin's config:

- ``"offline"`` (the default): a deterministic model that needs no network. The same
  prompt and seed always give the same text (short Python code for programming
  requests). ``failure_rate`` makes it fail on purpose, for demonstrations of
  supervision and reproduction; whether a request fails is drawn from the same seeded
  randomness, so a reproduced failure fails again.
- ``"openai"``: any OpenAI-compatible chat-completions endpoint (``base_url``,
  ``model``). The API key is read from the environment variable *named* by
  ``api_key_env``: the config is logged, so the key itself never goes in it (a value
  there that looks like a key is refused when the plugin is registered). The key is read
  through ``self.context.getenv``, so reproducing a log of unknown origin reads it as
  unset; it is held in a `Secret`, whose ``repr`` and ``str`` are masked, and is removed
  from any text redacted in this process. Server text quoted in an error is redacted
  before it is cut (`actorlog.actors.redaction.excerpt`), so no part of a key survives.

A message without a ``seed`` gets one drawn from ``self.context.random()``, which is
seeded from the seed recorded with the message in the log: reproduction draws the same
one. Every generation is timed as the operation ``llm.generate`` (tags ``backend`` and
``model``), failures included.

Config keys (all optional except where noted), checked when the plugin starts; an
unknown key or a wrong type fails the start with a message naming the key:

=============== ===================== =====================================================
key             default               meaning
=============== ===================== =====================================================
backend         ``"offline"``         ``"offline"`` or ``"openai"``
model           backend's default     model name (required for ``"openai"``)
failure_rate    ``0.0``               offline: probability (0..1) that a generation fails
connection_     ``0.0``               offline: probability (0..1) that a request's connection
error_rate                            drops (`BackendUnavailable`, retried; see ``retries``)
context_chars   none                  offline: longest prompt the model holds; a longer one
                                      crashes it (`ModelCrashed`, a MemoryError: by default
                                      the supervisor restarts the plugin)
retries         ``3``                 retries of a request whose connection failed, with
                                      exponential backoff and full jitter
retry_delay     ``0.5``               seconds: the backoff's base delay
base_url        none                  openai: e.g. ``"https://api.openai.com/v1"`` (required)
api_key_env     ``"OPENAI_API_KEY"``  openai: NAME of the environment variable holding the
                                      key; null sends no ``Authorization`` header
timeout         ``30.0``              openai: seconds allowed to connect and for each read
=============== ===================== =====================================================

A request whose connection fails (`BackendUnavailable`, a ``ConnectionError``) is
retried inside the handler through ``self.context.retry``: each failed attempt is a
``failure.raised`` event of the task ``llm.connection`` and a question to the error
handler, each retry a ``retry.scheduled`` event, and ``task.succeeded`` means the model
was reached (what it answered, a completion or an error, is the handler's outcome).
Other errors are not retried here: they are the handler's failure, reported once.

Subclasses can plug in another backend by overriding `LLMPlugin.make_backend`.
"""

from __future__ import annotations

import hashlib
import http.client
import itertools
import os
import random
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from typing import Annotated, Any, ClassVar, Literal, Protocol

import msgspec

from actorlog.actors.plugin import Health, Plugin, handler
from actorlog.actors.redaction import excerpt, redact_text, remember_secret
from actorlog.events import ActorlogError, Message, register

__all__ = [
    "BackendHTTPError",
    "BackendUnavailable",
    "Completion",
    "Generate",
    "GenerationError",
    "GenerationTimeout",
    "InvalidResponseError",
    "LLMBackend",
    "LLMConfig",
    "LLMConfigError",
    "LLMError",
    "LLMPlugin",
    "ModelCrashed",
    "OfflineBackend",
    "OpenAICompatibleBackend",
    "Secret",
    "parse_config",
]

OPERATION = "llm.generate"
"""The name under which every generation is timed by the performance monitor."""

OFFLINE_MODEL = "offline-coder-1"
"""The offline backend's model name when the config gives none."""

# -- messages and replies ----------------------------------------------------------------------


@register
class Generate(Message, tag="llm.generate", frozen=True):
    """Ask for a completion of ``prompt``; the reply is a `Completion`.

    ``seed`` pins the offline model's output (and is passed on to OpenAI-compatible
    servers, which may honour it); without one, a seed is drawn from the plugin's
    recorded randomness, so the log still determines the result.
    """

    prompt: str
    max_tokens: int = 256
    seed: int | None = None


class Completion(msgspec.Struct, frozen=True, kw_only=True):
    """The reply to `Generate`."""

    text: str
    model: str
    backend: str
    tokens: int
    """Tokens generated (the offline model counts whitespace-separated words)."""
    finish_reason: str = "stop"
    """``"stop"``, or ``"length"`` when ``max_tokens`` cut the text short."""
    seed: int | None = None
    """The seed the offline model used (give it back in `Generate` to get the same text)."""


# -- errors -----------------------------------------------------------------------------------


class LLMError(ActorlogError):
    """Base class of the LLM plugin's errors."""


class LLMConfigError(LLMError, ValueError):
    """The plugin's config is invalid, or the environment variable of the API key is not set."""


class GenerationError(LLMError, RuntimeError):
    """A generation failed: a (simulated) model failure, an unreachable server, a bad answer."""


class GenerationTimeout(GenerationError, TimeoutError):
    """The backend did not answer within the configured ``timeout``."""


class BackendUnavailable(GenerationError, ConnectionError):
    """The backend could not be reached (connection refused, reset or dropped): worth a retry."""


class ModelCrashed(GenerationError, MemoryError):
    """The model ran out of memory and crashed (the offline model, on a prompt longer than
    its ``context_chars``). A ``MemoryError``, so the default error policy restarts the plugin."""


class BackendHTTPError(GenerationError):
    """The endpoint answered with an HTTP error status (4xx or 5xx)."""

    def __init__(self, message: str, *, status: int, endpoint: str) -> None:
        super().__init__(message)
        self.status = status
        self.endpoint = endpoint


class InvalidResponseError(GenerationError):
    """The endpoint's answer is not valid JSON or has no ``choices[0].message.content``."""


# -- secrets ------------------------------------------------------------------------------------


class Secret:
    """A string that is never shown: ``repr`` and ``str`` print ``***``, pickling is refused.

    `reveal` returns the value, for the one place that must send it.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value
        remember_secret(value)  # every text this process redacts (errors, the log) loses it

    def reveal(self) -> str:
        """The secret value itself."""
        return self._value

    def redact(self, text: str) -> str:
        """``text`` with every occurrence of the secret replaced by ``***``."""
        return text.replace(self._value, "***") if self._value else text

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("a Secret cannot be pickled")

    def __bool__(self) -> bool:
        return bool(self._value)


# -- config ------------------------------------------------------------------------------------

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class LLMConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The plugin's config, decoded from the mapping given to ``ActorSystem.register``.

    It holds no secret: ``api_key_env`` is the name of the environment variable that
    holds the key, so the config can be logged and shown.
    """

    backend: Literal["offline", "openai"] = "offline"
    model: str | None = None
    failure_rate: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)] = 0.0
    connection_error_rate: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)] = 0.0
    context_chars: Annotated[int, msgspec.Meta(ge=1)] | None = None
    retries: Annotated[int, msgspec.Meta(ge=0)] = 3
    retry_delay: Annotated[float, msgspec.Meta(ge=0.0)] = 0.5
    base_url: str | None = None
    api_key_env: str | None = "OPENAI_API_KEY"
    timeout: Annotated[float, msgspec.Meta(gt=0.0)] = 30.0


_KNOWN_KEYS = ", ".join(LLMConfig.__struct_fields__)
_SECRET_LOOKING = re.compile(r"key|token|secret|password", re.IGNORECASE)


def parse_config(config: Mapping[str, Any]) -> LLMConfig:
    """Decode and check the plugin's config; `LLMConfigError` names the offending key."""
    try:
        parsed = msgspec.convert(dict(config), LLMConfig)
    except msgspec.ValidationError as exc:
        raise LLMConfigError(_config_problem(str(exc))) from None
    if parsed.api_key_env is not None and not _ENV_NAME.match(parsed.api_key_env):
        # Never echo the value: a key pasted here by mistake must not reach the error text.
        raise LLMConfigError(
            "config key 'api_key_env' must be the NAME of an environment variable (letters, digits and "
            "underscores, e.g. 'OPENAI_API_KEY'), not the key itself"
        )
    if parsed.backend == "openai":
        if not parsed.base_url:
            raise LLMConfigError("config key 'base_url' is required for backend 'openai' (e.g. 'https://api.openai.com/v1')")
        parts = urllib.parse.urlsplit(parsed.base_url)
        if parts.scheme not in ("http", "https"):
            raise LLMConfigError(f"config key 'base_url' must be an http or https URL, got scheme {parts.scheme!r}")
        if "@" in parts.netloc:  # never echoed: it holds a credential
            raise LLMConfigError(
                "config key 'base_url' must not hold credentials (user:password@host): the config is logged; "
                "put the key in an environment variable and give its name as 'api_key_env'"
            )
        if not parsed.model:
            raise LLMConfigError("config key 'model' is required for backend 'openai'")
    return parsed


def _config_problem(text: str) -> str:
    unknown = re.match(r"Object contains unknown field `(.+)`", text)
    if unknown:
        key = unknown.group(1)
        hint = ""
        if _SECRET_LOOKING.search(key):
            hint = (
                "; secrets never go in the config (it is logged): put the key in an environment variable "
                "and give that variable's name as 'api_key_env'"
            )
        return f"unknown config key {key!r} for the LLM plugin (known keys: {_KNOWN_KEYS}){hint}"
    located = re.match(r"(.*) - at `\$\.([^`\[]+)", text)
    if located:
        return f"config key {located.group(2)!r} of the LLM plugin is invalid: {located.group(1)}"
    return f"invalid LLM plugin config: {text} (known keys: {_KNOWN_KEYS})"


# -- backends -----------------------------------------------------------------------------------


class LLMBackend(Protocol):
    """What the plugin needs of a backend."""

    name: str
    """The backend's name (the ``backend`` tag of timings and replies)."""
    model: str
    """The model it asks for."""

    def generate(self, request: Generate, seed: int, attempt: int = 1) -> Completion:
        """Complete ``request``; ``seed`` is its seed or the one drawn for it, ``attempt``
        counts the tries of this request (1 for the first). Raises `GenerationError`,
        `BackendUnavailable` when the connection failed."""
        ...

    def health(self) -> Health:
        """Report whether it can serve requests, without calling the network."""
        ...


class OfflineBackend:
    """A deterministic model: the text depends only on the prompt and the seed.

    Prompts that ask for code get a short, runnable Python program; others get a short
    answer. With ``failure_rate`` > 0 a generation fails (`GenerationError`) when the
    first draw of the same seeded generator falls below the rate. With
    ``connection_error_rate`` > 0 a request's connection drops (`BackendUnavailable`)
    when a draw seeded by the seed, the prompt and the attempt number falls below it, so
    a retry may get through. A prompt longer than ``context_chars`` crashes the model
    (`ModelCrashed`). Prompts that ask for misbehaving programs (ones that run
    forever, wait, flood the output or allocate gigabytes) get them, for demonstrations
    of the Sandbox plugin's limits.
    """

    name = "offline"

    def __init__(
        self,
        model: str = OFFLINE_MODEL,
        failure_rate: float = 0.0,
        *,
        connection_error_rate: float = 0.0,
        context_chars: int | None = None,
    ) -> None:
        for name, rate in (("failure_rate", failure_rate), ("connection_error_rate", connection_error_rate)):
            if not 0.0 <= rate <= 1.0:
                raise LLMConfigError(f"{name} must be between 0 and 1, got {rate!r}")
        self.model = model
        self.failure_rate = failure_rate
        self.connection_error_rate = connection_error_rate
        self.context_chars = context_chars

    def __repr__(self) -> str:
        return (
            f"OfflineBackend(model={self.model!r}, failure_rate={self.failure_rate!r}, "
            f"connection_error_rate={self.connection_error_rate!r}, context_chars={self.context_chars!r})"
        )

    def generate(self, request: Generate, seed: int, attempt: int = 1) -> Completion:
        if self.connection_error_rate:
            link = hashlib.sha256(f"{seed}\x00{attempt}\x00{request.prompt}".encode()).digest()
            if random.Random(int.from_bytes(link[:16], "big")).random() < self.connection_error_rate:
                raise BackendUnavailable(
                    f"the connection to offline model {self.model!r} dropped (simulated: "
                    f"connection_error_rate={self.connection_error_rate}, attempt {attempt})"
                )
        if self.context_chars is not None and len(request.prompt) > self.context_chars:
            raise ModelCrashed(
                f"offline model {self.model!r} ran out of memory on a {len(request.prompt):,}-character prompt "
                f"(its context holds {self.context_chars:,}) and crashed"
            )
        digest = hashlib.sha256(f"{seed}\x00{request.prompt}".encode()).digest()
        rng = random.Random(int.from_bytes(digest[:16], "big"))
        if rng.random() < self.failure_rate:
            raise GenerationError(
                f"offline model {self.model!r} failed to generate (simulated failure: "
                f"failure_rate={self.failure_rate}, seed={seed})"
            )
        text = offline_text(request.prompt, rng)
        text, tokens, finish = _truncate(text, request.max_tokens)
        return Completion(
            text=text, model=self.model, backend=self.name, tokens=tokens, finish_reason=finish, seed=seed
        )

    def health(self) -> Health:
        return Health(True, f"offline model {self.model!r}")


class OpenAICompatibleBackend:
    """Calls ``POST {base_url}/chat/completions`` of an OpenAI-compatible server.

    The key is read from the environment variable ``api_key_env`` at every request (a
    rotated key is picked up) and sent as ``Authorization: Bearer``; it never appears
    in this object's ``repr``, in errors or in the log. ``timeout`` bounds connecting
    and each read from the socket.
    """

    name = "openai"
    max_response_bytes: ClassVar[int] = 10 * 1024 * 1024

    def __init__(
        self, base_url: str, model: str, api_key_env: str | None = "OPENAI_API_KEY", timeout: float = 30.0,
        *, getenv: Callable[[str], str | None] = os.environ.get,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key_env = api_key_env
        self.timeout = timeout
        self.getenv = getenv
        """How the key's variable is read: the plugin's ``context.getenv`` (unset during reproduction unless allowed)."""
        self.url = f"{self.base_url}/chat/completions"
        """Where requests go."""
        self.endpoint = redact_text(self.url)
        """The endpoint as shown in errors, health and ``repr`` (any credential in it masked)."""
        self.api_key()  # a missing variable fails now, at start, rather than at the first request

    def __repr__(self) -> str:
        key = f"${self.api_key_env} (***)" if self.api_key_env else "none"
        return f"OpenAICompatibleBackend(endpoint={self.endpoint!r}, model={self.model!r}, key={key}, timeout={self.timeout})"

    def api_key(self) -> Secret | None:
        """The key from the environment; `LLMConfigError` naming the variable if it is unset or empty."""
        if self.api_key_env is None:
            return None
        value = self.getenv(self.api_key_env)
        if not value:
            raise LLMConfigError(
                f"environment variable {self.api_key_env!r} (config key 'api_key_env') is not set or empty: "
                f"it must hold the API key for {self.endpoint}"
            )
        return Secret(value)

    def health(self) -> Health:
        try:
            key = self.api_key()
        except LLMConfigError as exc:
            return Health(False, str(exc))
        found = f"key found in ${self.api_key_env}" if key is not None else "no API key configured"
        return Health(True, f"{self.endpoint} ({self.model}): {found}")

    def generate(self, request: Generate, seed: int, attempt: int = 1) -> Completion:
        key = self.api_key()
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": "user", "content": request.prompt}],
            "max_tokens": request.max_tokens,
        }
        if request.seed is not None:
            body["seed"] = request.seed
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if key is not None:
            headers["Authorization"] = "Bearer " + key.reveal()
        http_request = urllib.request.Request(
            self.url, data=msgspec.json.encode(body), headers=headers, method="POST"
        )
        raw = self._send(http_request, key)
        return self._parse(raw, key)

    def _send(self, http_request: urllib.request.Request, key: Secret | None) -> bytes:
        redact = _cleaner(key)
        try:
            with urllib.request.urlopen(http_request, timeout=self.timeout) as response:  # noqa: S310 - http(s) only, checked
                raw: bytes = response.read(self.max_response_bytes + 1)
        except urllib.error.HTTPError as exc:
            status, reason = exc.code, exc.reason
            try:
                body = exc.read(_QUOTED_READ + 1)
            except (OSError, http.client.HTTPException):
                body = b""
            finally:
                exc.close()
            # redact the whole answer read, then cut it: a key quoted across the cut leaves nothing behind
            detail = excerpt(
                key.redact(body[:_QUOTED_READ].decode("utf-8", "replace")) if key is not None
                else body[:_QUOTED_READ].decode("utf-8", "replace"),
                _DETAIL_CHARS, complete=len(body) <= _QUOTED_READ,
            ).strip()
            message = f"{self.endpoint} answered HTTP {status} {reason}"
            if status in (401, 403):
                message += f" (check the API key in ${self.api_key_env})" if self.api_key_env else " (no API key was sent)"
            if detail:
                message += f": {detail}"
            raise BackendHTTPError(redact(message), status=status, endpoint=self.endpoint) from None
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError):
                raise self._timeout() from None
            raise BackendUnavailable(redact(f"cannot reach {self.endpoint}: {exc.reason}")) from None
        except TimeoutError:
            raise self._timeout() from None
        except OSError as exc:
            raise BackendUnavailable(
                redact(f"the connection to {self.endpoint} failed: {type(exc).__name__}: {exc}")
            ) from None
        except http.client.HTTPException as exc:
            raise GenerationError(
                redact(f"the connection to {self.endpoint} failed: {type(exc).__name__}: {exc}")
            ) from None
        if len(raw) > self.max_response_bytes:
            raise InvalidResponseError(f"{self.endpoint} answered more than {self.max_response_bytes} bytes")
        return raw

    def _timeout(self) -> GenerationTimeout:
        return GenerationTimeout(f"{self.endpoint} did not answer within the timeout of {self.timeout} s")

    def _parse(self, raw: bytes, key: Secret | None) -> Completion:
        redact = _cleaner(key)
        try:
            answer = msgspec.json.decode(raw, type=_ChatResponse)
        except msgspec.ValidationError as exc:
            raise InvalidResponseError(
                redact(f"{self.endpoint} answered JSON of an unexpected shape ({exc}); expected choices[0].message.content")
            ) from None
        except msgspec.DecodeError:
            text = raw[:_QUOTED_READ].decode("utf-8", "replace")
            quoted = excerpt(redact(text), _EXCERPT_CHARS, complete=len(raw) <= _QUOTED_READ)
            raise InvalidResponseError(
                redact(f"{self.endpoint} answered something that is not valid JSON: {quoted!r}")
            ) from None
        if not answer.choices or answer.choices[0].message.content is None:
            raise InvalidResponseError(f"{self.endpoint} answered without choices[0].message.content")
        choice = answer.choices[0]
        text = choice.message.content or ""
        tokens = answer.usage.completion_tokens if answer.usage and answer.usage.completion_tokens is not None else len(text.split())
        return Completion(
            text=text, model=answer.model or self.model, backend=self.name, tokens=tokens,
            finish_reason=choice.finish_reason or "stop",
        )


_QUOTED_READ = 64 * 1024
"""Bytes of a server's answer read to quote from in an error (redacted whole, then cut)."""
_DETAIL_CHARS = 300
"""Characters of an HTTP error's body quoted in the error."""
_EXCERPT_CHARS = 80
"""Characters of a non-JSON answer quoted in the error."""


def _cleaner(key: Secret | None) -> Callable[[str], str]:
    """Redaction of a text about to go into an error: the key itself, then every credential shape."""
    if key is None:
        return redact_text
    return lambda text: redact_text(key.redact(text))


class _ChatMessage(msgspec.Struct):
    content: str | None = None


class _Choice(msgspec.Struct):
    message: _ChatMessage
    finish_reason: str | None = None


class _Usage(msgspec.Struct):
    completion_tokens: int | None = None


class _ChatResponse(msgspec.Struct):
    choices: list[_Choice]
    model: str | None = None
    usage: _Usage | None = None


# -- the plugin -----------------------------------------------------------------------------------


class LLMPlugin(Plugin):
    """Generates text for `Generate` messages with the backend its config names."""

    version = "1.0.0"

    settings: LLMConfig
    backend: LLMBackend

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> None:
        """Decode the config as `on_start` does (`parse_config`), without starting anything."""
        parse_config(config)

    def on_start(self) -> None:
        self.settings = parse_config(self.config)
        self.backend = self.make_backend(self.settings)

    def make_backend(self, config: LLMConfig) -> LLMBackend:
        """Build the backend the config asks for; override to plug in another one."""
        if config.backend == "openai":
            assert config.base_url is not None and config.model is not None  # checked by parse_config
            return OpenAICompatibleBackend(
                config.base_url, config.model, config.api_key_env, config.timeout, getenv=self.context.getenv
            )
        return OfflineBackend(
            config.model or OFFLINE_MODEL, config.failure_rate,
            connection_error_rate=config.connection_error_rate, context_chars=config.context_chars,
        )

    @handler
    def generate(self, message: Generate) -> Completion:
        if message.max_tokens < 1:
            raise ValueError(f"max_tokens must be at least 1, got {message.max_tokens}")
        seed = message.seed if message.seed is not None else self.context.random().getrandbits(63)
        backend = self.backend
        with self.context.monitor.time(OPERATION, tags={"backend": backend.name, "model": backend.model}):
            return self._request(backend, message, seed)

    def _request(self, backend: LLMBackend, message: Generate, seed: int) -> Completion:
        """Ask the backend, retrying only failed connections (other errors are raised once, here)."""
        attempts = itertools.count(1)

        def attempt() -> Completion | GenerationError:
            try:
                return backend.generate(message, seed, next(attempts))
            except ConnectionError:
                raise
            except GenerationError as exc:
                return exc

        retrying = self.context.retry(
            "llm.connection", max_retries=self.settings.retries, base=self.settings.retry_delay,
            retry_on=(ConnectionError,),
        )
        outcome = retrying.call(attempt)
        if isinstance(outcome, GenerationError):
            raise outcome
        return outcome

    def health_check(self) -> bool | Health:
        backend: LLMBackend | None = getattr(self, "backend", None)
        if backend is None:
            return Health(False, "not started")
        return backend.health()


# -- the offline model's text ----------------------------------------------------------------------


class _Recipe(msgspec.Struct, frozen=True):
    keywords: tuple[str, ...]
    names: tuple[str, ...]
    param: str  # "items", "n" or "text": what the function takes
    bodies: tuple[tuple[str, ...], ...]
    doc: str


_RECIPES: tuple[_Recipe, ...] = (
    _Recipe(("sort", "order"), ("sort_items", "sorted_copy", "in_order"), "items", (
        ("return sorted({p})",),
        ("result = list({p})", "result.sort()", "return result"),
    ), "Return the items in ascending order."),
    _Recipe(("reverse", "backwards"), ("reverse_items", "reversed_copy"), "items", (
        ("return list(reversed({p}))",),
        ("return {p}[::-1]",),
    ), "Return the items in reverse order."),
    _Recipe(("sum", "total", "add"), ("total_of", "sum_items", "add_up"), "items", (
        ("return sum({p})",),
        ("total = 0", "for value in {p}:", "    total += value", "return total"),
    ), "Return the sum of the items."),
    _Recipe(("max", "largest", "biggest", "maximum"), ("largest", "find_max"), "items", (
        ("return max({p})",),
        ("best = {p}[0]", "for value in {p}[1:]:", "    if value > best:", "        best = value", "return best"),
    ), "Return the largest item."),
    _Recipe(("even", "filter"), ("evens", "keep_even"), "items", (
        ("return [x for x in {p} if x % 2 == 0]",),
        ("return list(filter(lambda x: x % 2 == 0, {p}))",),
    ), "Return the even items."),
    _Recipe(("square",), ("squares", "square_all"), "items", (
        ("return [x * x for x in {p}]",),
        ("return list(map(lambda x: x ** 2, {p}))",),
    ), "Return the square of every item."),
    _Recipe(("unique", "duplicate", "dedupe", "deduplicate"), ("unique", "without_duplicates"), "items", (
        ("return list(dict.fromkeys({p}))",),
        ("seen = set()", "result = []", "for item in {p}:", "    if item not in seen:", "        seen.add(item)",
         "        result.append(item)", "return result"),
    ), "Return the items without duplicates, in their first order."),
    _Recipe(("fibonacci", "fib"), ("fibonacci", "fib_sequence"), "n", (
        ("a, b = 0, 1", "result = []", "for _ in range({p}):", "    result.append(a)", "    a, b = b, a + b",
         "return result"),
        ("result = [0, 1]", "while len(result) < {p}:", "    result.append(result[-1] + result[-2])",
         "return result[:{p}]"),
    ), "Return the first n Fibonacci numbers."),
    _Recipe(("factorial",), ("factorial", "fact"), "n", (
        ("result = 1", "for k in range(2, {p} + 1):", "    result *= k", "return result"),
        ("import math", "return math.factorial({p})"),
    ), "Return n factorial."),
    _Recipe(("prime",), ("primes_below", "find_primes"), "n", (
        ("return [k for k in range(2, {p}) if all(k % d for d in range(2, int(k ** 0.5) + 1))]",),
        ("sieve = [True] * {p}", "found = []", "for k in range(2, {p}):", "    if sieve[k]:", "        found.append(k)",
         "        for multiple in range(k * k, {p}, k):", "            sieve[multiple] = False", "return found"),
    ), "Return the prime numbers below n."),
    _Recipe(("palindrome",), ("is_palindrome", "reads_the_same_backwards"), "text", (
        ("cleaned = ''.join(c.lower() for c in {p} if c.isalnum())", "return cleaned == cleaned[::-1]"),
        ("cleaned = [c.lower() for c in {p} if c.isalnum()]", "return cleaned == list(reversed(cleaned))"),
    ), "Tell whether the text reads the same backwards."),
    _Recipe(("word", "count"), ("count_words", "word_count"), "text", (
        ("return len({p}.split())",),
        ("counts = {{}}", "for word in {p}.lower().split():", "    counts[word] = counts.get(word, 0) + 1",
         "return counts"),
    ), "Count the words of the text."),
)

_HAZARDS: tuple[_Recipe, ...] = (
    _Recipe(("forever", "endless", "infinite"), ("keep_counting", "count_forever"), "n", (
        ("total = 0", "while True:", "    total += {p}", "return total"),
    ), "Count up by n, forever."),
    _Recipe(("wait", "sleep", "hang"), ("wait_for_answer", "wait_patiently"), "n", (
        ("import time", "time.sleep({p} * 3600)", "return {p}"),
    ), "Wait n hours for the answer."),
    _Recipe(("flood", "spam", "shout"), ("flood_output", "shout"), "text", (
        ("while True:", "    print({p} * 100)",),
    ), "Print the text, again and again."),
    _Recipe(("memory", "allocate", "gigabytes"), ("allocate_buffer", "reserve_memory"), "n", (
        ("buffer = bytearray({p} * 1024 ** 3)", "return len(buffer)"),
    ), "Allocate an n-gigabyte buffer."),
)
"""Programs that misbehave on purpose, only for prompts that ask for them (never drawn at random)."""

_CODE_WORDS = ("code", "function", "program", "script", "python", "implement", "write", "def ")
_PARAM_NAMES = {"items": ("items", "values", "numbers", "data"), "n": ("n", "count", "limit"), "text": ("text", "s", "phrase")}
_WORDS_TEXT = ("level", "Never odd or even", "actor systems log events", "hello world", "racecar")
_PROSE = ("Some thoughts on", "A short answer about", "Notes on", "On the subject of")
_PROSE_WORDS = (
    "events", "actors", "messages", "logs", "replay", "state", "failures", "supervision", "seeds", "time",
    "projections", "plugins", "records", "order", "history",
)


def offline_text(prompt: str, rng: random.Random) -> str:
    """The offline model's text for ``prompt``, drawn from ``rng`` (deterministic for a seeded one)."""
    lowered = prompt.lower()
    matching = [recipe for recipe in _RECIPES + _HAZARDS if any(_mentions(lowered, word) for word in recipe.keywords)]
    if not matching and not any(word in lowered for word in _CODE_WORDS):
        return _prose(prompt, rng)
    recipe = matching[0] if matching else rng.choice(_RECIPES)
    name = rng.choice(recipe.names)
    param = rng.choice(_PARAM_NAMES[recipe.param])
    body = rng.choice(recipe.bodies)
    if recipe.param == "items":
        example = repr([rng.randint(-9, 30) for _ in range(rng.randint(4, 7))])
    elif recipe.param == "n":
        example = str(rng.randint(5, 12))
    else:
        example = repr(rng.choice(_WORDS_TEXT))
    task = " ".join(prompt.split())[:100].replace('"""', "'''")
    lines = [
        f"# {task}" if task else "# generated by the offline model",
        f"def {name}({param}):",
        f'    """{recipe.doc}"""',
        *(f"    {line.format(p=param)}" for line in body),
        "",
        "",
        f"print({name}({example}))",
    ]
    return "\n".join(lines) + "\n"


def _mentions(text: str, word: str) -> bool:
    """Whether ``text`` has ``word`` as a word, possibly inflected ("sorting", "primes")."""
    return re.search(rf"\b{re.escape(word)}(s|es|d|ed|ing|ming)?\b", text) is not None


def _prose(prompt: str, rng: random.Random) -> str:
    topic = " ".join(prompt.split()[:8]) or "nothing"
    words = [rng.choice(_PROSE_WORDS) for _ in range(rng.randint(6, 14))]
    return f"{rng.choice(_PROSE)} {topic!r}: {' '.join(words)}."


def _truncate(text: str, max_tokens: int) -> tuple[str, int, str]:
    """Cut ``text`` after ``max_tokens`` whitespace-separated tokens: (text, tokens, finish_reason)."""
    tokens = list(re.finditer(r"\S+", text))
    if len(tokens) <= max_tokens:
        return text, len(tokens), "stop"
    return text[: tokens[max_tokens - 1].end()], max_tokens, "length"
