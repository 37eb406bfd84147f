"""The exception tree: every error the agent reports on purpose derives from SceneAgentError."""


class SceneAgentError(Exception):
    """Base of all errors raised on purpose by scene-agent."""


class ConfigError(SceneAgentError):
    """The configuration is invalid; the message names the field and the reason."""


class SourceError(SceneAgentError):
    """A camera source cannot be opened or read (missing file, bad URL, no frames)."""


class StoreError(SceneAgentError):
    """The data directory or the event index refused an operation."""


class UnsafePathError(StoreError):
    """A path or id would lead outside the data directory."""
