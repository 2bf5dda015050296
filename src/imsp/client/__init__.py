"""The hospital-side SDK of the data exchange service (医院端接入 SDK).

Small and strict: a :class:`Client` (token lifecycle, retry, batching, streamed uploads, typed
receipts), a durable :class:`Outbox` with its :class:`Sender`, offline validation against the same
Data Standard the platform uses, and one error tree rooted at :class:`ClientError`. It depends only
on httpx, orjson and ``imsp.standard`` — never on the server's packages.

>>> from imsp.client import Client, ClientError  # doctest: +SKIP
>>> with Client("http://10.1.109.89:8888", "app-…", "secret-…") as client:  # doctest: +SKIP
...     receipt = client.upload("uploadPrescriptionInfo", records)
"""

from imsp.client.client import Client
from imsp.client.errors import (
    AuthError,
    ClientError,
    ConfigurationError,
    InputError,
    ProtocolError,
    RateLimited,
    RequestRejected,
    ServerError,
    TokenError,
    TransportError,
    UnknownDataset,
    ValidationFailed,
)
from imsp.client.offline import check as validate
from imsp.client.outbox import Outbox, OutboxStatus, ParkedRecord
from imsp.client.receipt import FieldError, Receipt, RecordResult, Token
from imsp.client.records import read_records
from imsp.client.sender import DrainReport, Sender

__all__ = [
    "AuthError",
    "Client",
    "ClientError",
    "ConfigurationError",
    "DrainReport",
    "FieldError",
    "InputError",
    "Outbox",
    "OutboxStatus",
    "ParkedRecord",
    "ProtocolError",
    "RateLimited",
    "Receipt",
    "RecordResult",
    "RequestRejected",
    "Sender",
    "ServerError",
    "Token",
    "TokenError",
    "TransportError",
    "UnknownDataset",
    "ValidationFailed",
    "read_records",
    "validate",
]
