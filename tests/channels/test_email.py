"""The e-mail channel end to end: a signed post (the generic inbound endpoint, or SES through
SNS) -> the worker's turn -> one reply at a loopback SMTP server, in the customer's thread;
quoted history and signatures stripped; forged, stale and replayed posts refused or ignored;
SNS signatures checked against a local certificate on a loopback "SNS" host."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from shared import conversations
from shared.app import App
from shared.channels.email import mime, sns
from shared.channels.email.inbound import signature
from shared.channels.email.thread import ReplyTo
from shared.channels.exceptions import SignatureError
from shared.channels.receive import conversation_id
from shared.marketing import address_of
from shared.models import Conversation
from tests.channels.conftest import RecordingQueue
from tests.eventlib import load_event
from tests.fixtures.app import Client, Result
from tests.fixtures.mail_server import SmtpServer, SnsSigner

SHOP = "teranga"
SECRET = "email-inbound-secret-7c1d"
TOPIC = "arn:aws:sns:eu-west-1:123456789012:comptoir-mail"
ADDRESS = "boutique@teranga.example"
CUSTOMER = "awa.diop@example.sn"
ROOT = "<CAF1x2y3z4@mail.example.sn>"


@pytest.fixture
def app(
    make_app: Callable[..., App],
    smtp_server: SmtpServer,
    queue: RecordingQueue,
    sleeps: list[float],
) -> App:
    instance = make_app(
        EMAIL_ADDRESS=ADDRESS,
        EMAIL_INBOUND_SECRET=SECRET,
        EMAIL_SNS_TOPIC_ARN=TOPIC,
        EMAIL_SMTP_HOST=smtp_server.host,
        EMAIL_SMTP_PORT=str(smtp_server.port),
        EMAIL_SMTP_STARTTLS="false",
    )
    instance.queue = queue
    return instance


@pytest.fixture
def signer(sns_signer: SnsSigner, monkeypatch: pytest.MonkeyPatch) -> SnsSigner:
    """The loopback SNS host allowed, over http, in place of sns.<region>.amazonaws.com."""
    verifier = sns.SnsVerifier(host=re.compile(r"127\.0\.0\.1:[0-9]+"), schemes=frozenset({"http"}))
    monkeypatch.setattr(sns, "VERIFIER", verifier)
    return sns_signer


def post_inbound(
    client: Client, payload: Any, *, at: int | None = None, secret: str = SECRET
) -> Result:
    body = json.dumps(payload).encode()
    timestamp = str(at if at is not None else int(time.time()))
    headers = {
        "content-type": "application/json",
        "x-email-timestamp": timestamp,
        "x-email-signature": signature(body, timestamp, secret),
    }
    return client.request("POST", "/webhooks/email/inbound", headers=headers, body=body)


def post_ses(client: Client, message: dict[str, Any]) -> Result:
    body = json.dumps(message).encode()
    headers = {"content-type": "text/plain; charset=UTF-8", "x-amz-sns-message-type": "x"}
    return client.request("POST", "/webhooks/email/ses", headers=headers, body=body)


def ses_notification(signer: SnsSigner, version: str = "1", **changes: str) -> dict[str, Any]:
    event = load_event("email_ses_notification")
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return signer.sign({**event, "Timestamp": now, **changes}, version)


def stored(app: App, root: str = ROOT) -> Conversation:
    found = conversations.get(app.store, SHOP, conversation_id(SECRET, SHOP, "email", root))
    assert found is not None
    return found


def test_a_signed_mail_gets_exactly_one_threaded_reply(
    client: Client, app: App, queue: RecordingQueue, smtp_server: SmtpServer
) -> None:
    assert post_inbound(client, load_event("email_inbound")).status == 200
    queue.run(app)
    assert queue.failures == []
    [reply] = smtp_server.messages()
    assert reply["To"] == CUSTOMER
    assert ADDRESS in reply["From"] and "Maison Teranga" in reply["From"]
    assert reply["Subject"] == "Re: Sandales en cuir"
    assert reply["In-Reply-To"] == ROOT
    assert reply["References"] == ROOT
    assert reply["Auto-Submitted"] == "auto-replied"
    body = reply.get_content()
    assert body.strip()
    conversation = stored(app)
    assert conversation.channel == "email"
    said = [m.text for m in conversation.recent if m.role == "user"]
    # The signature never reaches the model.
    assert said == ["Bonjour, avez-vous les sandales en cuir en 40 ? Quel est le prix ?"]
    assert [m.role for m in conversation.recent] == ["user", "assistant"]
    assert address_of("email", conversation.channel_user) == f"email:{CUSTOMER}"
    sender = smtp_server.received[0][0]
    assert sender == ADDRESS


def test_a_replay_is_acknowledged_and_ignored(
    client: Client, app: App, queue: RecordingQueue, smtp_server: SmtpServer
) -> None:
    payload = load_event("email_inbound")
    assert post_inbound(client, payload).status == 200
    assert post_inbound(client, payload).status == 200  # the same Message-ID, signed anew
    queue.run(app)
    assert len(smtp_server.messages()) == 1
    assert len([m for m in stored(app).recent if m.role == "user"]) == 1


@pytest.mark.parametrize(
    "tamper", ["forged", "wrong_secret", "stale", "future", "missing", "not_digits"]
)
def test_forged_or_stale_posts_are_refused(
    client: Client, queue: RecordingQueue, tamper: str
) -> None:
    body = json.dumps(load_event("email_inbound")).encode()
    now = int(time.time())
    timestamp = str(now - 301 if tamper == "stale" else now + 301 if tamper == "future" else now)
    headers = {
        "x-email-timestamp": "soon" if tamper == "not_digits" else timestamp,
        "x-email-signature": signature(
            body, timestamp, "another-secret" if tamper == "wrong_secret" else SECRET
        ),
    }
    if tamper == "forged":
        body = body.replace(b"40", b"44")
    if tamper == "missing":
        del headers["x-email-signature"]
    result = client.request("POST", "/webhooks/email/inbound", headers=headers, body=body)
    assert result.status == (401 if tamper == "missing" else 403)
    assert queue.items == []


def test_a_reply_in_the_thread_joins_its_conversation_through_ses(
    client: Client, app: App, queue: RecordingQueue, smtp_server: SmtpServer, signer: SnsSigner
) -> None:
    assert post_inbound(client, load_event("email_inbound")).status == 200
    queue.run(app)
    # The customer answers (References: the root, then the shop's reply), through SES.
    assert post_ses(client, ses_notification(signer, "2")).status == 200
    queue.run(app)
    assert queue.failures == []
    conversation = stored(app)
    said = [m.text for m in conversation.recent if m.role == "user"]
    assert said[-1] == "Merci. Livrez-vous à Thiès ?"  # the quoted reply stripped
    _, second = smtp_server.messages()
    assert second["Subject"] == "Re: Sandales en cuir"
    assert second["In-Reply-To"] == "<CAF9q8r7s6@mail.example.sn>"
    assert second["References"].split() == [
        ROOT,
        "<reply-1@teranga.example>",
        "<CAF9q8r7s6@mail.example.sn>",
    ]
    assert signer.certificate_fetches == 1


@pytest.mark.parametrize("version", ["1", "2"])
def test_both_sns_signature_versions_are_accepted(
    client: Client, queue: RecordingQueue, signer: SnsSigner, version: str
) -> None:
    assert post_ses(client, ses_notification(signer, version)).status == 200
    assert [item.kind for item in queue.items] == ["channel_turn"]


@pytest.mark.parametrize("tamper", ["message", "signature", "certificate_host", "version"])
def test_a_bad_sns_signature_is_refused(
    client: Client, queue: RecordingQueue, signer: SnsSigner, tamper: str
) -> None:
    message = ses_notification(signer)
    if tamper == "message":
        message["Message"] = message["Message"].replace("PASS", "FAIL", 1)
    elif tamper == "signature":
        message["Signature"] = ses_notification(signer, "2")["Signature"]
    elif tamper == "certificate_host":
        message["SigningCertURL"] = "https://sns.evil.example/cert.pem"
    else:
        message["SignatureVersion"] = "3"
    assert post_ses(client, message).status == 403
    assert queue.items == []


def test_the_real_sns_hosts_only_over_https() -> None:
    verifier = sns.SnsVerifier()
    verifier.check_url("https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-x.pem")
    for url in (
        "http://sns.eu-west-1.amazonaws.com/x.pem",
        "https://sns.eu-west-1.amazonaws.com.evil.example/x.pem",
        "https://evil.example/sns.eu-west-1.amazonaws.com/x.pem",
        "https://user@sns.eu-west-1.amazonaws.com/x.pem",
    ):
        with pytest.raises(SignatureError):
            verifier.check_url(url)


def test_another_topic_is_refused_even_signed_by_sns(
    client: Client, queue: RecordingQueue, signer: SnsSigner
) -> None:
    message = ses_notification(signer, TopicArn=TOPIC.replace("comptoir-mail", "someone-else"))
    assert post_ses(client, message).status == 403
    assert queue.items == []


def test_the_subscription_is_confirmed_for_the_allowed_topic_only(
    client: Client, signer: SnsSigner
) -> None:
    confirm = f"{signer.root}/?Action=ConfirmSubscription&Token=2336"
    event = load_event("email_ses_subscription")
    foreign = signer.sign({**event, "TopicArn": TOPIC + "-other", "SubscribeURL": confirm})
    assert post_ses(client, foreign).status == 403
    assert signer.confirmations == []
    assert post_ses(client, signer.sign({**event, "SubscribeURL": confirm})).status == 200
    assert signer.confirmations == ["/?Action=ConfirmSubscription&Token=2336"]


def test_automatic_mail_gets_no_answer(
    client: Client, queue: RecordingQueue, smtp_server: SmtpServer
) -> None:
    payload = load_event("email_inbound")
    payload["mime"] = payload["mime"].replace(
        "MIME-Version", "Auto-Submitted: auto-replied\r\nMIME-Version"
    )
    assert post_inbound(client, payload).status == 200
    assert queue.items == []


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("Oui merci\n\nOn Mon, 6 Oct 2025 at 10:05, Shop <s@x.sn>\nwrote:\n> old\n", "Oui merci"),
        ("Oui\n\nLe lun. 6 oct. 2025 à 10:05, Shop <s@x.sn> a écrit :\n> ancien", "Oui"),
        ("Top\n> cité\n>> plus ancien\nfin", "Top\nfin"),
        ("Je prends.\n-- \nAwa\n+221 77 123 45 67", "Je prends."),
        ("A\n-----Original Message-----\nFrom: s@x.sn", "A"),
    ],
)
def test_quoted_history_and_signatures_are_stripped(text: str, kept: str) -> None:
    assert mime.strip_quoted(text) == kept


def test_the_thread_root_keys_the_conversation() -> None:
    raw = load_event("email_inbound")["mime"].encode()
    first = mime.parse(raw)
    assert first.root == ROOT and first.references == []
    reply = mime.parse(
        raw.replace(b"Message-ID: <CAF1x2y3z4", b"In-Reply-To: <x@y>\r\nMessage-ID: <later")
    )
    assert reply.root == "<x@y>"
    assert ReplyTo.decode(CUSTOMER).to == CUSTOMER  # a bare address: a new message
