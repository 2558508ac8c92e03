"""calsync.store.secrets: SecretBox (Fernet keys, rotation) and the redacting Secret."""

from __future__ import annotations

import copy
import logging
import pickle

import pytest
from cryptography.fernet import Fernet
from hypothesis import given
from hypothesis import strategies as st

from calsync.store.secrets import REDACTED, Secret, SecretBox, SecretConfigError, SecretDecryptError

OLD = Fernet.generate_key().decode()
NEW = Fernet.generate_key().decode()
STRANGER = Fernet.generate_key().decode()


def test_round_trip_under_a_single_key() -> None:
    box = SecretBox.from_setting(NEW)
    token = box.encrypt("ya29.refresh-token")
    assert token != b"ya29.refresh-token"
    assert b"refresh" not in token
    assert box.decrypt(token) == "ya29.refresh-token"


@given(st.text())
def test_any_text_round_trips(plaintext: str) -> None:
    box = SecretBox([NEW])
    assert box.decrypt(box.encrypt(plaintext)) == plaintext


def test_encryption_uses_the_newest_key() -> None:
    # Given keys listed newest first, as CALSYNC_ENCRYPTION_KEYS gives them
    box = SecretBox.from_setting(f"{NEW},{OLD}")
    # When a secret is encrypted, Then only the newest key is needed to read it
    assert Fernet(NEW).decrypt(box.encrypt("x")) == b"x"


def test_rotation_moves_an_old_ciphertext_to_the_newest_key() -> None:
    # Given a secret stored while OLD was the only key
    stored = SecretBox.from_setting(OLD).encrypt("refresh-token")
    box = SecretBox.from_setting(f" {NEW} , {OLD} ,")
    assert box.decrypt(stored) == "refresh-token"
    assert not box.is_current(stored)
    # When it is rotated
    rotated = box.rotate(stored)
    # Then it is current, and readable once OLD is retired
    assert box.is_current(rotated)
    assert SecretBox([NEW]).decrypt(rotated) == "refresh-token"


def test_rotating_a_current_ciphertext_is_harmless() -> None:
    box = SecretBox([NEW, OLD])
    token = box.encrypt("v")
    assert box.decrypt(box.rotate(token)) == "v"


def test_a_retired_key_cannot_decrypt() -> None:
    stored = SecretBox([OLD]).encrypt("refresh-token")
    box = SecretBox([NEW])
    with pytest.raises(SecretDecryptError) as caught:
        box.decrypt(stored)
    with pytest.raises(SecretDecryptError):
        box.rotate(stored)
    assert not box.is_current(stored)
    assert "refresh-token" not in str(caught.value)
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


@pytest.mark.parametrize(
    "token",
    [
        b"",
        b"garbage",
        b"\xff\xfe",
        "not-bytes",
        None,
    ],
)
def test_malformed_ciphertexts_raise_only_secret_decrypt_error(token: object) -> None:
    box = SecretBox([NEW])
    with pytest.raises(SecretDecryptError):
        box.decrypt(token)  # type: ignore[arg-type]
    with pytest.raises(SecretDecryptError):
        box.rotate(token)  # type: ignore[arg-type]
    assert box.is_current(token) is False  # type: ignore[arg-type]


def test_tampered_ciphertext_is_refused() -> None:
    box = SecretBox([NEW])
    token = bytearray(box.encrypt("secret"))
    token[40] = ord("A") if token[40] != ord("A") else ord("B")
    with pytest.raises(SecretDecryptError):
        box.decrypt(bytes(token))


def test_non_utf8_plaintext_is_a_decrypt_error() -> None:
    token = Fernet(NEW).encrypt(b"\xff\xfe\xfd")
    with pytest.raises(SecretDecryptError):
        SecretBox([NEW]).decrypt(token)


@pytest.mark.parametrize("value", ["", " ", ",", " , ,"])
def test_empty_setting_names_the_variable(value: str) -> None:
    with pytest.raises(SecretConfigError, match="CALSYNC_ENCRYPTION_KEYS is empty"):
        SecretBox.from_setting(value)


@pytest.mark.parametrize(
    ("value", "position"),
    [
        ("not-a-key-but-secret-looking", "key 1 of 1"),
        (f"{NEW},short-secret-material", "key 2 of 2"),
        (f"{NEW},{NEW[:-4]}", "key 2 of 2"),
        (f"{NEW},{OLD},@@@@", "key 3 of 3"),
    ],
)
def test_bad_key_is_located_without_echoing_it(value: str, position: str) -> None:
    with pytest.raises(SecretConfigError) as caught:
        SecretBox.from_setting(value)
    message = str(caught.value)
    assert message.startswith("CALSYNC_ENCRYPTION_KEYS: ")
    assert position in message
    for part in value.split(","):
        assert part not in message
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


def test_constructor_refuses_no_keys_and_a_bare_string() -> None:
    with pytest.raises(SecretConfigError):
        SecretBox([])
    with pytest.raises(TypeError):
        SecretBox(NEW)


def test_generated_keys_are_usable_and_distinct() -> None:
    a, b = SecretBox.generate_key(), SecretBox.generate_key()
    assert a != b
    assert SecretBox.from_setting(f"{a},{b}").decrypt(SecretBox([b]).encrypt("x")) == "x"


def test_box_repr_redacts_keys() -> None:
    box = SecretBox([NEW, OLD])
    assert NEW not in repr(box)
    assert OLD not in repr(box)
    assert REDACTED in repr(box)


class TestSecret:
    def test_reveal_returns_the_value(self) -> None:
        assert Secret("hunter2-token").reveal() == "hunter2-token"

    def test_repr_str_and_format_are_redacted(self, caplog: pytest.LogCaptureFixture) -> None:
        s = Secret("hunter2-token")
        logging.getLogger("test").warning("token %s %r", s, s)
        rendered = [
            repr(s),
            str(s),
            f"{s}",
            f"{s!r}",
            "%s" % s,  # noqa: UP031 - %-formatting is what logging does
            caplog.text,
            repr([s]),
            repr({"t": s}),
        ]
        for text in rendered:
            assert "hunter2" not in text
        assert str(s) == REDACTED
        assert repr(s) == f"Secret('{REDACTED}')"

    def test_equality_and_hash(self) -> None:
        assert Secret("a") == Secret("a")
        assert Secret("a") != Secret("b")
        assert Secret("a") != "a"
        assert len({Secret("a"), Secret("a"), Secret("b")}) == 2

    def test_truthiness_follows_the_value(self) -> None:
        assert Secret("x")
        assert not Secret("")

    def test_copy_is_fine_but_pickle_is_refused(self) -> None:
        s = Secret("hunter2-token")
        assert copy.deepcopy(s) == s
        assert copy.copy(s) is s
        with pytest.raises(TypeError, match="not picklable"):
            pickle.dumps(s)

    def test_only_wraps_strings(self) -> None:
        with pytest.raises(TypeError):
            Secret(b"bytes")  # type: ignore[arg-type]

    def test_has_no_instance_dict_to_leak_through(self) -> None:
        s = Secret("hunter2-token")
        assert not hasattr(s, "__dict__")
        with pytest.raises(AttributeError):
            s.other = 1  # type: ignore[attr-defined]
