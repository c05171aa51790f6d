"""Provenance errors: subclasses of registry.errors.ProvenanceError (HTTP 422 through its mapping).

ProvenanceError
  ManifestInvalid            (registry.errors) a manifest we cannot accept
  SigningKeyError            a signing certificate or key that cannot sign C2PA manifests
  CertificateInvalid         a certificate chain that is malformed, expired or badly signed
    CertificateUntrusted     a well-formed chain that does not reach a configured trust anchor
  SigningFailed              the C2PA library refused to sign (the reason is in the message)
InvalidInput
  InvalidSoftBinding         a soft-binding query with an unknown algorithm or a malformed value
                             (the Soft Binding Resolution API answers 400 for these)
"""

from __future__ import annotations

from registry.errors import InvalidInput, ProvenanceError


class SigningKeyError(ProvenanceError):
    code = "signing_key_invalid"


class CertificateInvalid(ProvenanceError):
    code = "certificate_invalid"


class CertificateUntrusted(CertificateInvalid):
    code = "certificate_untrusted"


class SigningFailed(ProvenanceError):
    code = "signing_failed"


class InvalidSoftBinding(InvalidInput):
    code = "invalid_soft_binding"
