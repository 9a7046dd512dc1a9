"""The local SQS: moto's server speaking the SQS protocol over HTTP, minus its per-request log.

``python -m config.sqs_emulator --port 9324``. Equivalent to ``moto_server -p 9324``, but moto's
access log (one line per long poll, several a second) would bury the shop's own output.
Its queues live in this process's memory: stopping it loses them, as an outage can.
"""

import argparse
import logging
import signal
import threading

from moto.server import ThreadedMotoServer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9324)
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
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
