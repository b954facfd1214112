"""The stub kubectl's port-forward: listens on 127.0.0.1 (the given local port, or one the
system picks), says so the way kubectl does, and relays every connection to a local gateway
port. Runs until killed."""

import socket
import sys
import threading


def relay(src, dst):
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def serve(local_port, target_port):
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind(("127.0.0.1", local_port))
    except OSError as err:
        print(f"Unable to listen on port {local_port}: {err}", file=sys.stderr, flush=True)
        sys.exit(1)
    listener.listen(64)
    print(f"Forwarding from 127.0.0.1:{listener.getsockname()[1]} -> 9091", flush=True)
    while True:
        client, _ = listener.accept()
        upstream = socket.create_connection(("127.0.0.1", target_port))
        for a, b in ((client, upstream), (upstream, client)):
            threading.Thread(target=relay, args=(a, b), daemon=True).start()


if __name__ == "__main__":
    serve(int(sys.argv[1] or 0), int(sys.argv[2]))
