"""boto3 clients as every AWS backend builds them: lazily, with short timeouts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from botocore.client import BaseClient


def boto3_client(
    service: str,
    *,
    region: str | None,
    endpoint_url: str | None,
    connect_timeout: float,
    read_timeout: float,
    **config: Any,
) -> BaseClient:
    """A client whose timeouts fit a function's budget of seconds (botocore's default read
    timeout is 60 s), with standard retries and a pool for the threads of one process."""
    # Lazy: boto3 costs about 0.2 s of cold start, paid only by deployments that use AWS.
    import boto3
    from botocore.config import Config

    client: BaseClient = boto3.client(
        service,  # type: ignore[call-overload]
        region_name=region,
        endpoint_url=endpoint_url,
        config=Config(
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retries={"mode": "standard", "max_attempts": 3},
            max_pool_connections=50,
            **config,
        ),
    )
    return client


class AWSClientOwner:
    """A backend over one boto3 client: injected (its owner closes it) or built here (closed
    with the backend)."""

    client: BaseClient
    _owns_client: bool

    def _use_client(
        self,
        client: BaseClient | None,
        service: str,
        *,
        region: str | None,
        endpoint_url: str | None,
        connect_timeout: float,
        read_timeout: float,
        **config: Any,
    ) -> None:
        self._owns_client = client is None
        if client is None:
            client = boto3_client(
                service,
                region=region,
                endpoint_url=endpoint_url,
                connect_timeout=connect_timeout,
                read_timeout=read_timeout,
                **config,
            )
        self.client = client

    def close(self) -> None:
        if self._owns_client:  # an injected client belongs to its owner
            self.client.close()
