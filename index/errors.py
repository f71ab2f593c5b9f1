"""Domain errors. Only the API layer turns them into HTTP responses."""


class PolicyQAError(Exception):
    """Base class; ``code`` is the stable machine-readable name."""

    code = "error"


class ConfigurationError(PolicyQAError):
    code = "configuration_error"


class IndexNotFoundError(PolicyQAError):
    code = "index_not_found"


class IndexMismatchError(PolicyQAError):
    """The index on disk was built with another embedder than the one configured."""

    code = "index_mismatch"


class IndexFormatError(IndexMismatchError):
    """The index on disk was written by an older policyqa."""

    code = "index_format"


class UnknownDocumentError(PolicyQAError):
    code = "unknown_document"

    def __init__(self, doc_ids: list[str]) -> None:
        self.doc_ids = doc_ids
        super().__init__(f"unknown document id(s): {', '.join(doc_ids)}")


class NotFoundError(PolicyQAError):
    code = "not_found"


class InvalidInputError(PolicyQAError):
    code = "invalid_input"


# -- knowledge bases and keys (service/stores/registry.py, service/access.py) ---------
class ConflictError(PolicyQAError):
    """The thing to create exists already, or the change is not allowed in its state."""

    code = "conflict"


class AuthenticationError(PolicyQAError):
    """No credentials where some are needed, or credentials that match nothing."""

    code = "unauthorized"


class PermissionDeniedError(PolicyQAError):
    """Valid credentials that do not grant this."""

    code = "forbidden"


# -- the writer lock across replicas (index/stores/milvus/lock.py) ------------
class LockTimeoutError(PolicyQAError):
    """The writer lock was not free within the time allowed; nothing was changed."""

    code = "lock_timeout"


class LockLostError(PolicyQAError):
    """The writer lock's lease lapsed while held: stop writing, the change can be retried."""

    code = "lock_lost"
