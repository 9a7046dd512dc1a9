"""The local SQS: moto's server speaking the SQS protocol over HTTP, minus its per-request log.

``python -m devstack.sqs_emulator --port 9324 [--queue NAME ...]``. Like ``moto_server -p 9324``,
but moto's access log (one line per long poll, several a second) would bury the shop's own
output, and ``--queue`` creates queues before the first request is served: a restarted emulator
then looks like SQS after an outage — the queues are there, the messages in flight are gone —
instead of a broker whose queues vanished, which real SQS never is.
"""

import argparse
import logging
import signal
import threading

from moto.core import DEFAULT_ACCOUNT_ID
from moto.server import ThreadedMotoServer
from moto.sqs.models import sqs_backends


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9324)
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument(
        "--queue", action="append", default=[], help="create this queue at start (repeatable)"
    )
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    for name in args.queue:
        sqs_backends[DEFAULT_ACCOUNT_ID][args.region].create_queue(name)
    server = ThreadedMotoServer(ip_address=args.host, port=args.port, verbose=False)
    server.start()
    print(f"SQS emulator (moto) on http://{args.host}:{args.port}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    server.stop()


if __name__ == "__main__":
    main()
