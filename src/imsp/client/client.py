"""``Client``: the hospital side of the data exchange service, on httpx.

One ``httpx.Client`` with two layers of policy, each in one place:

* :class:`~imsp.client.auth.TokenAuth` (``httpx.Auth``) — the access token, refreshed ahead of its
  expiry and, on a token error, refreshed and resent once;
* :class:`~imsp.client.transport.RetryTransport` — backoff and jitter on connection failures,
  429 and 5xx, honouring ``Retry-After``.

Every httpx exception becomes an :mod:`imsp.client.errors` error in :meth:`Client._request`, the
one boundary. Large inputs are cut into batches (at most ``batch_size`` records, and never two
records with the same business key in one batch, so the platform applies them in input order);
each batch is streamed as a chunked JSON array.
"""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import httpx

from imsp import __version__
from imsp.client import offline
from imsp.client.auth import (
    TOKEN_PATH,
    Clock,
    SystemClock,
    TokenAuth,
    TokenManager,
    decode_json,
    error_of,
)
from imsp.client.errors import (
    ClientError,
    ConfigurationError,
    ProtocolError,
    RequestRejected,
    ValidationFailed,
    from_transport,
)
from imsp.client.receipt import Receipt, Token, parse_receipt
from imsp.client.records import JsonArrayBody, business_key
from imsp.client.records import dataset as resolve
from imsp.client.transport import RetryPolicy, RetryTransport
from imsp.standard.model import Dataset

log = logging.getLogger("imsp.client")

#: Gateway codes meaning "the batch is too big": the SDK halves it and carries on.
TOO_BIG = frozenset({41300, 41301})


def _verify(ca_file: str | None) -> ssl.SSLContext | bool:
    """How HTTPS certificates are checked: against ``ca_file`` (the platform's own CA, PEM) when
    given, else against the system's CAs."""
    if not ca_file:
        return True
    try:
        return ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigurationError(f"CA 证书文件无法读取：{ca_file}（{exc}）") from None


class Client:
    """A connection to the platform's data exchange service for one appId. Thread-safe.

    >>> with Client("http://10.1.109.89:8888", app_id, app_secret) as c:  # doctest: +SKIP
    ...     receipt = c.upload("prescription", records)
    ...     for r in receipt.rejected:
    ...         print(r.index, r.msg, [e.field for e in r.errors])
    """

    def __init__(
        self,
        base_url: str,
        app_id: str,
        app_secret: str,
        *,
        timeout: float = 30.0,
        retries: int = 5,
        batch_size: int = 500,
        clock: Clock | None = None,
        transport: httpx.BaseTransport | None = None,
        refresh_margin: float = 300.0,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        max_retry_after: float = 120.0,
        sleep: Callable[[float], None] = time.sleep,
        ca_file: str | None = None,
    ) -> None:
        if not base_url:
            raise ConfigurationError("缺少平台地址 base_url（如 http://10.1.109.89:8888）")
        if not app_id or not app_secret:
            raise ConfigurationError("缺少 appId 或 appSecret（由平台实施方分配）")
        if batch_size < 1 or retries < 0 or timeout <= 0:
            raise ConfigurationError("batch_size ≥ 1、retries ≥ 0、timeout > 0")
        self.base_url = base_url.rstrip("/")
        self.app_id = app_id
        self.batch_size = batch_size
        self._secret = app_secret
        self._retry = RetryTransport(
            transport or httpx.HTTPTransport(verify=_verify(ca_file)),
            RetryPolicy(
                retries=retries, base=backoff, cap=max_backoff, max_retry_after=max_retry_after
            ),
            sleep=sleep,
        )
        self._http = httpx.Client(
            base_url=self.base_url,
            transport=self._retry,
            timeout=httpx.Timeout(timeout),
            headers={"User-Agent": f"imsp-client/{__version__}"},
            trust_env=False,  # the health private network: no surprise proxies from the env
        )
        self.tokens = TokenManager(
            self._fetch_token, clock=clock or SystemClock(), refresh_margin=refresh_margin
        )
        self._auth = TokenAuth(self.tokens)

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        self.tokens.stop_refresher()
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client({self.base_url!r}, app_id={self.app_id!r})"

    # ------------------------------------------------------------------ the one boundary

    def _request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        """Send through retry (and auth, when given); httpx's exceptions end here."""
        try:
            return self._http.request(method, path, **kw)
        except httpx.TransportError as exc:
            raise from_transport(exc) from None
        except httpx.HTTPError as exc:  # anything else httpx may raise (decoding, …)
            raise ProtocolError(f"与平台通信出错（{type(exc).__name__}）") from None

    def _fetch_token(self) -> httpx.Response:
        return self._request(
            "GET", TOKEN_PATH, params={"appId": self.app_id, "appSecret": self._secret}
        )

    # ------------------------------------------------------------------ token

    def token(self, *, refresh: bool = False) -> Token:
        """The current access token (fetched if needed; a new one with ``refresh``)."""
        return self.tokens.renew() if refresh else self.tokens.current()

    def start_token_refresher(self, *, poll: float = 30.0) -> None:
        """Keep the token fresh in a background thread (scheduled refresh). Stopped by close()."""
        self.tokens.start_refresher(poll=poll)

    # ------------------------------------------------------------------ acceptance

    def acceptance_status(self) -> dict[str, Any]:
        """The institution's acceptance board (接入确认看板) as the platform measures it: the
        three parts (HTTP interface, data, video), each item with its threshold, measured value,
        verdict and what is missing, and the confirmation state."""
        response = self._request("GET", "/acceptance/status", auth=self._auth)
        err = error_of(response)
        if err is not None:
            raise err
        data = decode_json(response)
        if not isinstance(data, dict) or not isinstance(data.get("data"), dict):
            raise ProtocolError("接入确认看板的应答不是预期的 JSON")
        board: dict[str, Any] = data["data"]
        return board

    # ------------------------------------------------------------------ uploads

    def upload(
        self,
        dataset: str,
        records: Iterable[Mapping[str, Any]],
        *,
        dry_run: bool = False,
        atomic: bool = False,
        validate: bool = False,
        progress: Callable[[int], None] | None = None,
    ) -> Receipt:
        """Upload ``records`` of ``dataset`` (short code or service name) in batches.

        Returns the merged :class:`Receipt`; rejected records are in ``receipt.rejected`` with
        their field errors (a rejection is an answer, not an exception). ``dry_run`` only
        validates on the platform; ``atomic`` makes the platform store all or nothing, which
        needs the records to fit one batch. With ``validate`` the records are first checked
        offline and :class:`ValidationFailed` is raised, sending nothing, if one fails.
        ``progress`` is called with the number of records sent after each batch. If a batch
        fails after others went through, the raised error's ``partial`` holds their receipt
        (re-running the whole upload is harmless: the platform stores by business key).
        """
        ds = resolve(dataset)
        if validate or atomic:
            records = list(records)
        if validate:
            checked = offline.check(ds.code, records)
            if not checked.ok:
                raise ValidationFailed(
                    f"{checked.fail} 条记录未通过离线校验，未上传", results=list(checked.results)
                )
        batches: Iterable[list[Any]] = self._batches(ds, records)
        if atomic:
            batches = list(batches)
            if len(batches) > 1:
                raise ConfigurationError(
                    f"atomic 上传要求全部记录在一个批次内（≤ {self.batch_size} 条、业务主键不重复）"
                )
        parts: list[Receipt] = []
        sent = 0
        try:
            for batch in batches:
                parts.extend(self._send_split(ds, batch, sent, dry_run=dry_run, atomic=atomic))
                sent += len(batch)
                if progress is not None:
                    progress(sent)
        except ClientError as exc:  # say what did get through before the failure
            exc.partial = Receipt.merge(ds.code, parts, dry_run=dry_run) if parts else None
            raise
        return Receipt.merge(ds.code, parts, dry_run=dry_run)

    def upload_batch(
        self,
        dataset: str | Dataset,
        records: list[Any],
        *,
        dry_run: bool = False,
        atomic: bool = False,
        offset: int = 0,
    ) -> Receipt:
        """Send ``records`` as exactly one request (no splitting). ``offset`` is added to the
        receipt's indexes. Raises the :mod:`imsp.client.errors` error of a refused request."""
        ds = dataset if isinstance(dataset, Dataset) else resolve(dataset)
        params = {}
        if dry_run:
            params["dryRun"] = "true"
        if atomic:
            params["atomic"] = "true"
        response = self._request(
            "POST",
            ds.path,
            content=JsonArrayBody(records),
            params=params,
            headers={"Content-Type": "application/json"},
            auth=self._auth,
        )
        err = error_of(response)
        if err is not None:
            raise err
        return parse_receipt(
            ds.code,
            decode_json(response).get("data"),
            offset=offset,
            size=len(records),
            dry_run=dry_run,
        )

    def _send_split(
        self, ds: Dataset, batch: list[Any], offset: int, *, dry_run: bool, atomic: bool
    ) -> list[Receipt]:
        """Send a batch; if the platform finds it too big, halve it (and later batches)."""
        try:
            return [self.upload_batch(ds, batch, dry_run=dry_run, atomic=atomic, offset=offset)]
        except RequestRejected as exc:
            if exc.code not in TOO_BIG or len(batch) < 2 or atomic:
                raise
        half = len(batch) // 2
        self.batch_size = max(1, min(self.batch_size, half))
        log.warning("batch of %d refused as too big, halving to %d", len(batch), half)
        return [
            *self._send_split(ds, batch[:half], offset, dry_run=dry_run, atomic=atomic),
            *self._send_split(ds, batch[half:], offset + half, dry_run=dry_run, atomic=atomic),
        ]

    def _batches(self, ds: Dataset, records: Iterable[Any]) -> Iterator[list[Any]]:
        """Lazily cut ``records`` into batches of at most ``batch_size``, starting a new batch
        rather than putting a business key twice into one (the platform refuses that, -92)."""
        batch: list[Any] = []
        keys: set[str] = set()
        for record in records:
            key = business_key(ds, record)
            if len(batch) >= self.batch_size or (key is not None and key in keys):
                yield batch
                batch, keys = [], set()
            batch.append(record)
            if key is not None:
                keys.add(key)
        if batch:
            yield batch
