"""What each kind of component reads from its per-environment config, typed.

One pydantic model per component kind (``designer.models.ComponentKind``); a connector
reads its component's ``config`` through :func:`config_of`. Pure: imports only pydantic,
so the designer side may import it too.

The models accept every config the connectors ever accepted: validation never fails.
Unknown keys are kept (``extra='allow'``). A value the connector coerces the same way
wherever it reads it is coerced here (:data:`Text`, :data:`Obj`); a value whose
conversion can fail (a number, a duration) is kept as given (:data:`Raw`) and converted
where it is used, so a bad value still fails the step with the same error, at the same
point. Each field's default is the one the connector used.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field


def _text(value: Any) -> str:
    return str(value) if value else ""


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


Text = Annotated[str, BeforeValidator(_text)]
"""A string; a missing or empty value (None, "", 0, false) is ``""``."""

Obj = Annotated[dict[str, Any], BeforeValidator(_obj)]
"""An object; anything else counts as ``{}``."""

Raw = Any
"""A JSON value as given, converted (and so checked) where the connector uses it."""


class _Config(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


def _section(value: Any) -> Any:
    # A sub-section that is not an object counts as empty, as the connectors always did.
    return value if isinstance(value, dict | BaseModel) else {}


class AuthConfig(_Config):
    """How a provider's HTTP API is authenticated (``type``: none, bearer, basic, api_key,
    oauth2); the ``*_secret`` fields name secrets of the component."""

    type: Raw = None
    token_secret: Raw = None
    username: Raw = ""
    username_secret: Raw = None
    password_secret: Raw = None
    key_secret: Raw = None
    in_: Raw = Field(default=None, alias="in")  # "query" or a header (default)
    name: Raw = None  # the query parameter of an api_key
    header: Raw = None  # the header of an api_key
    prefix: Raw = ""
    token_url: Text = ""
    client_id: Raw = ""
    client_id_secret: Raw = None
    client_secret_secret: Raw = None
    scope: Raw = None
    audience: Raw = None


Auth = Annotated[AuthConfig, BeforeValidator(_section)]


class AppConfig(_Config):
    """An app (ACTION): where its API is and how it is called."""

    base_url: Text = ""
    headers: Raw = None
    query: Obj = Field(default_factory=dict)
    idempotency_header: Raw = "Idempotency-Key"
    max_response_bytes: Raw = None
    auth: Auth = Field(default_factory=AuthConfig)
    retry_on: Raw = Field(default_factory=list)  # extra HTTP statuses worth a retry
    timeout: Raw = None


class DatabaseConfig(_Config):
    """A database (DB_ACTION): its url (sqlite or postgresql) and password secret."""

    url: Text = ""
    password_secret: Raw = None
    timeout: Raw = None


class EmailChannelConfig(_Config):
    """A notifier's email channel: an SMTP server or a named Django mail backend (none:
    the project's own email settings)."""

    backend: Raw = None
    host: Raw = None
    port: Raw = 25
    username: Raw = ""
    password_secret: Raw = None
    use_tls: Raw = False
    use_ssl: Raw = False
    timeout: Raw = None
    from_: Raw = Field(default=None, alias="from")


class HttpChannelConfig(_Config):
    """A notifier's SMS or push channel: the provider's HTTP endpoint."""

    url: Text = ""
    from_: Raw = Field(default=None, alias="from")
    auth: Auth = Field(default_factory=AuthConfig)
    batch: Raw = None  # one request for every recipient


class NotifierConfig(_Config):
    """A notifier (NOTIFICATION): one section per channel."""

    email: Annotated[EmailChannelConfig, BeforeValidator(_section)] = Field(
        default_factory=EmailChannelConfig
    )
    sms: Annotated[HttpChannelConfig, BeforeValidator(_section)] = Field(
        default_factory=HttpChannelConfig
    )
    push: Annotated[HttpChannelConfig, BeforeValidator(_section)] = Field(
        default_factory=HttpChannelConfig
    )


class StorageConfig(_Config):
    """A file storage (STORAGE): the filesystem (default) or an S3 bucket."""

    backend: Text = ""  # "" is the filesystem
    max_bytes: Raw = None
    endpoint_url: Raw = None
    region: Raw = None
    bucket: Raw = None
    access_key_secret: Raw = None
    secret_key_secret: Raw = None
    prefix: Text = ""
    signed_urls: Raw = True
    url_expiry: Raw = 3600
    addressing_style: Raw = None


class BrokerConfig(_Config):
    """A message broker (PUBLISH): the built-in one (default) or Redis Streams."""

    backend: Text = ""  # "" is the built-in (database) broker
    url: Text = ""
    stream_prefix: Text = ""
    maxlen: Raw = 100_000


class QuotaConfig(_Config):
    """A quota component (QUOTA): its counter store, per-quota overrides and, when the
    event names the component itself, its own rule (``limit``, ``window``,
    ``on_exceeded``)."""

    backend: Text = ""  # "" is the database
    url: Text = ""
    key_prefix: Text = ""
    limits: Obj = Field(default_factory=dict)  # quota name -> rule overrides
    limit: Raw = None
    window: Raw = None
    on_exceeded: Raw = None

    def own_rule(self) -> dict[str, Any] | None:
        """The rule the config itself states (it sets ``limit``), else None."""
        if "limit" not in self.model_fields_set:
            return None
        rule = self.model_dump(include={"limit", "window", "on_exceeded"}, exclude_unset=True)
        return {**(self.model_extra or {}), **rule}


class FallbackConfig(_Config):
    """A fallback (FALLBACK): providers replacing the declared ones, a list (the
    component's only event) or a list per event."""

    providers: Raw = None


class GraphConfig(_Config):
    """A graph (GRAPH): its backend (``ladybug``, the default: LadybugDB, embedded), the
    database's ``path`` under the admin's graph root (TRELLIS_GRAPH_ROOT; default
    ``<product>/<environment>/<tag>.lbug``) and bounds that can only tighten the
    server's (``timeout``, ``max_rows``, ``max_result_bytes``)."""

    backend: Text = ""  # "" is ladybug
    path: Raw = None  # checked by runtime.cypher.graph_path_issue (400 on PUT, at run time)
    timeout: Raw = None
    max_rows: Raw = None
    max_result_bytes: Raw = None


ConfigT = TypeVar("ConfigT", bound=BaseModel)


def config_of(model: type[ConfigT], config: dict[str, Any]) -> ConfigT:
    """``config`` (a component's config for an environment) read as ``model``."""
    return model.model_validate(config)


CONFIGS: dict[str, type[BaseModel]] = {
    "app": AppConfig,
    "database": DatabaseConfig,
    "notification": NotifierConfig,
    "storage": StorageConfig,
    "broker": BrokerConfig,
    "quota": QuotaConfig,
    "fallback": FallbackConfig,
    "graph": GraphConfig,
}
"""The config model of each component kind."""
