from shared.app import App
from tests.channels.conftest import RecordingQueue, post_whatsapp, whatsapp_text
from tests.fixtures.app import Client
from tests.fixtures.graph_server import GraphServer

def test_long(client: Client, app: App, queue: RecordingQueue, graph_server: GraphServer) -> None:
    text = ("Bonjour combien coûtent les sandales " * 200)[:4096]
    assert post_whatsapp(client, whatsapp_text(text)).status == 200
    queue.run(app, attempts=2)
    print(queue.failures)
    print(graph_server.sent)
    assert False
