"""Webhooks go only where the check allowed, and survive a worker dying mid-delivery."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from cdat.settings import Settings
from mobile_api.queues.webhooks import WebhookRejected, check_destination
from mobile_api.runtime import Runtime
from mobile_api.storage import models
from mobile_api.worker.celery_app import EVENTS_QUEUE, celery
from mobile_api.worker.tasks import _attempt, assess_claim, deliver_webhook, sweep_stale_jobs
from tests import images
from tests.api.webhook_receiver import Receiver
from tests.conftest import claim_body, make_settings, serving, submit, upload


@pytest.mark.parametrize(
    "url",
    [
        "http://[::127.0.0.1]/hook",  # IPv4-compatible loopback
        "http://[::ffff:10.0.0.8]/hook",  # IPv4-mapped private
        "http://[64:ff9b::a9fe:a9fe]/hook",  # NAT64 of 169.254.169.254
        "http://[64:ff9b::7f00:1]/hook",  # NAT64 of 127.0.0.1
        "http://[2002:7f00:1::1]/hook",  # 6to4 of 127.0.0.1
        "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/hook",  # Teredo
    ],
)
def test_ipv6_forms_of_internal_ipv4_addresses_are_refused(url: str) -> None:
    with pytest.raises(WebhookRejected, match="not allowed"):
        check_destination(url, allow_private=False)


def test_delivery_connects_to_the_address_that_was_checked(
    settings: Settings,
    receiver: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given a name that resolves to a public address when checked, then to loopback
    # (DNS rebinding: the attacker's DNS server answers differently the second time)
    port = int(receiver.rsplit(":", 1)[1].split("/")[0])
    real = socket.getaddrinfo
    answers = iter(["93.184.216.34"])

    def rebinding(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host != "rebind.example":
            return real(host, *args, **kwargs)
        address = next(answers, "127.0.0.1")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    production = settings.model_copy(
        update={"environment": "production", "webhook_timeout_seconds": 0.5}
    )
    Receiver.answers, Receiver.received = [], []
    # when the delivery is attempted
    error = _attempt(f"http://rebind.example:{port}/hook", "s", {"event": "x"}, production)
    # then it went to the checked public address (unreachable here), never to loopback
    assert Receiver.received == []
    assert error is not None


def events_queued() -> list[Any]:
    with celery.connection_for_read() as connection:
        queue = connection.SimpleQueue(EVENTS_QUEUE)
        try:
            messages = []
            while queue.qsize():
                message = queue.get(timeout=1)
                messages.append(message.payload)
                message.ack()
            return messages
        finally:
            queue.close()


class WorkerKilled(BaseException):
    """A SIGKILL, as far as the code under test can tell: nothing after it runs."""


def test_a_delivery_whose_worker_died_is_sent_again_once(
    tmp_path: Path,
    receiver: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with serving(make_settings(tmp_path, webhook_lease_seconds=0.3)) as client:
        runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
        created = client.post("/v1/claims", json=claim_body(webhook_url=receiver)).json()
        headers = {"Authorization": f"Bearer {created['access_token']}"}
        upload(client, created["id"], headers, images.jpeg())
        assess_claim.run(submit(client, created["id"], headers))
        with runtime.sessions() as session:
            delivery_id = session.scalars(select(models.WebhookDelivery.id)).one()
        events_queued()  # the first message: its worker is the one that dies
        # given a worker killed in the middle of the delivery

        def killed(*_: Any, **__: Any) -> int:
            raise WorkerKilled

        monkeypatch.setattr("mobile_api.worker.tasks.deliver", killed)
        with pytest.raises(WorkerKilled):
            deliver_webhook.run(delivery_id)
        monkeypatch.undo()
        # when its lease runs out and the sweep runs twice
        time.sleep(0.4)
        sweep_stale_jobs.run()
        sweep_stale_jobs.run()
        # then the delivery was sent again exactly once
        resent = events_queued()
        assert [args for args, _, _ in resent] == [[delivery_id]], resent
        # and that message delivers it
        Receiver.answers, Receiver.received = [], []
        assert deliver_webhook.run(delivery_id) == "delivered"
        assert len(Receiver.received) == 1
