"""Encryption at rest for OAuth tokens. Tokens are encrypted before they reach a model field and are
decrypted only to make a call; they are never logged or rendered."""

import base64
import hashlib
import json

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


def token_cipher() -> MultiFernet:
    keys = list(settings.XERO_TOKEN_KEYS)
    if not keys:
        # Embedded run only: a stable key derived from SECRET_KEY. Production sets XERO_TOKEN_KEY (a system
        # check insists), so rotating SECRET_KEY there does not lock the site out of its Xero tokens.
        digest = hashlib.sha256(f"xero-token-key:{settings.SECRET_KEY}".encode()).digest()
        keys = [base64.urlsafe_b64encode(digest).decode()]
    return MultiFernet([Fernet(key.encode() if isinstance(key, str) else key) for key in keys])


class TokenDecryptError(Exception):
    """The stored token cannot be read with the configured keys: a wrong XERO_TOKEN_KEY in this process (or
    one still on the old key during a rotation). A configuration error: the token itself is fine."""


class TokenKeyInvalid(TokenDecryptError):
    """XERO_TOKEN_KEY is not a Fernet key at all: nothing can be encrypted or decrypted with it."""


def _cipher() -> MultiFernet:
    try:
        return token_cipher()
    except (ValueError, TypeError) as error:
        raise TokenKeyInvalid(f"XERO_TOKEN_KEY is not a valid Fernet key ({error}).") from error


def encrypt_token(token: dict) -> bytes:
    return _cipher().encrypt(json.dumps(token, sort_keys=True).encode())


def decrypt_token(ciphertext: bytes | memoryview) -> dict:
    cipher = _cipher()
    try:
        return json.loads(cipher.decrypt(bytes(ciphertext)))
    except InvalidToken as error:
        raise TokenDecryptError("The stored Xero token cannot be decrypted with XERO_TOKEN_KEY.") from error
