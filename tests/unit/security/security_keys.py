"""Key-file helpers for the security unit tests (a module of its own, so tests can
import ``KeyFiles`` without importing a ``conftest``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa


@dataclass(frozen=True)
class KeyFiles:
    private_pem: bytes
    public_pem: bytes
    private_file: Path
    public_file: Path


def write_key_files(
    directory: Path, private: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
) -> KeyFiles:
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "private.pem").write_bytes(private_pem)
    (directory / "public.pem").write_bytes(public_pem)
    return KeyFiles(private_pem, public_pem, directory / "private.pem", directory / "public.pem")
