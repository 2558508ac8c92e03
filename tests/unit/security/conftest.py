"""Shared key material for the security unit tests; generated, never committed."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from security_keys import KeyFiles, write_key_files


@pytest.fixture(scope="session")
def rsa_keys(tmp_path_factory: pytest.TempPathFactory) -> KeyFiles:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return write_key_files(tmp_path_factory.mktemp("rsa"), private)


@pytest.fixture(scope="session")
def other_rsa_keys(tmp_path_factory: pytest.TempPathFactory) -> KeyFiles:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return write_key_files(tmp_path_factory.mktemp("rsa-other"), private)


@pytest.fixture(scope="session")
def ed25519_keys(tmp_path_factory: pytest.TempPathFactory) -> KeyFiles:
    return write_key_files(tmp_path_factory.mktemp("ed25519"), ed25519.Ed25519PrivateKey.generate())
