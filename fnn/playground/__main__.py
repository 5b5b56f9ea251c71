"""python -m fnn.playground [--port 8050] [--no-browser] [--data file.csv]: serve the playground on 127.0.0.1."""

from __future__ import annotations

import argparse


def main(argv=None) -> None:
    p = argparse.ArgumentParser(
        prog="python -m fnn.playground",
        description="Watch a network learn in the browser: a local server on 127.0.0.1 (never another interface).",
    )
    p.add_argument("--port", type=int, default=8050, help="the port on 127.0.0.1 (default: %(default)s; 0: any free)")
    p.add_argument("--no-browser", action="store_true", help="do not open the page in the web browser")
    p.add_argument("--data", metavar="FILE.csv", help="a CSV file to train on: one example a row, the label last")
    args = p.parse_args(argv)
    from fnn.errors import FnnError
    from fnn.playground import server  # after --help: jax loads here

    try:
        server.serve(port=args.port, data=args.data, open_browser=not args.no_browser)
    except (FnnError, OSError) as e:  # a bad --data file, a port in use: the message, not a traceback
        p.exit(2, f"{p.prog}: error: {e}\n")


if __name__ == "__main__":
    main()
