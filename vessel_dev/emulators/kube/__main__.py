"""Run a Kubernetes API emulator in the foreground until SIGTERM or SIGINT.

python -m vessel_dev.emulators.kube --port 6443 --kubeconfig /tmp/kubeconfig
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from vessel_dev.emulators.kube.emulator import KubeEmulator


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m vessel_dev.emulators.kube", description=__doc__
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--kubeconfig", required=True, help="written once the port is bound")
    parser.add_argument("--context", default="emulator")
    parser.add_argument("--token", default=None, help="default: a random token")
    parser.add_argument(
        "--allow-exec", action="store_true", help="serve pods/exec by running commands here"
    )
    parser.add_argument("--history", type=int, default=10_000)
    parser.add_argument("--no-controllers", action="store_true")
    parser.add_argument(
        "--plain-http", action="store_true", help="serve HTTP (kubectl sends no token over it)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    stopping = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    emulator = KubeEmulator(
        token=args.token,
        controllers=not args.no_controllers,
        history=args.history,
        allow_exec=args.allow_exec,
        tls=not args.plain_http,
    )
    url = emulator.start(args.host, args.port)
    try:
        emulator.write_kubeconfig(args.kubeconfig, context=args.context)
        print(f"kube emulator serving {url}; kubeconfig {args.kubeconfig}", flush=True)
        # Waiting with a timeout keeps the main thread responsive to signals.
        while not stopping.wait(0.5):
            pass
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
