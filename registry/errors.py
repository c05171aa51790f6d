"""Every error the domain core raises on purpose, as one tree.

RegistryError
  NotFound
  AlreadyExists
  Conflict
  InvalidInput
    UnsupportedMedia        unknown format, text posing as an image
    MediaTooLarge           over the byte or pixel limit (decompression bombs)
    CorruptMedia            truncated or undecodable
    InvalidPolicy           policy file errors (file, line, field)
    InvalidFingerprint
    UnknownSignal
  StorageError              our own files could not be written (disk full): nothing half-written
  Unauthorized              missing or unknown credentials
  Forbidden                 known caller, wrong role
  ProvenanceError
    ManifestInvalid
    SigningKeyError         (registry/provenance/errors.py) a configured chain or key is unusable
    CertificateInvalid      (registry/provenance/errors.py) a chain that does not verify
      CertificateUntrusted  ... or does not reach a trust anchor
    SigningFailed           (registry/provenance/errors.py) c2pa refused to sign

Only api/errors.py maps these to HTTP statuses; the core knows nothing about HTTP.
"""

from __future__ import annotations


class RegistryError(Exception):
    """Base for every error the domain core raises on purpose."""

    code = "registry_error"

    def __init__(self, message: str, *, detail: object = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


class NotFound(RegistryError):
    code = "not_found"

    def __init__(self, kind: str, key: object) -> None:
        super().__init__(f"{kind} {key!r} not found", detail={"kind": kind, "key": str(key)})
        self.kind, self.key = kind, key


class AlreadyExists(RegistryError):
    code = "already_exists"

    def __init__(self, kind: str, key: object) -> None:
        super().__init__(f"{kind} {key!r} already exists", detail={"kind": kind, "key": str(key)})
        self.kind, self.key = kind, key


class Conflict(RegistryError):
    code = "conflict"


class InvalidInput(RegistryError):
    code = "invalid_input"


class UnsupportedMedia(InvalidInput):
    code = "unsupported_media"


class MediaTooLarge(InvalidInput):
    code = "media_too_large"


class CorruptMedia(InvalidInput):
    code = "corrupt_media"


class InvalidPolicy(InvalidInput):
    code = "invalid_policy"


class InvalidFingerprint(InvalidInput):
    code = "invalid_fingerprint"


class UnknownSignal(InvalidInput):
    code = "unknown_signal"


class StorageError(RegistryError):
    """The registry could not write its own files (disk full, quota, read-only)."""

    code = "storage_error"


class Unauthorized(RegistryError):
    code = "unauthorized"


class Forbidden(RegistryError):
    code = "forbidden"


class ProvenanceError(RegistryError):
    code = "provenance_error"


class ManifestInvalid(ProvenanceError):
    code = "manifest_invalid"
