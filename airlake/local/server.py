"""`python -m airlake.local.server`: moto's server on loopback, with Airlake's moto patches."""

from __future__ import annotations

import argparse
import signal
import threading

from airlake.local import moto_patches
from airlake.local.endpoint import assert_loopback


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    assert_loopback(f"http://{args.host}:{args.port}")
    moto_patches.apply()
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address=args.host, port=args.port, verbose=False)
    server.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    server.stop()


if __name__ == "__main__":
    main()
