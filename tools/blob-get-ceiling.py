#!/usr/bin/env python3
"""The most any server can deliver to a client on this machine: answers every GET, on
keep-alive connections, with a 256 MiB body sent from one 1 MiB buffer in memory (no file,
no page cache, the bytes hot in the CPU's cache). See docs/BENCHMARKS.md, "Blob GET".

    python3 tools/blob-get-ceiling.py 18090 &
    wrk -t2 -c4 -d8s http://127.0.0.1:18090/x
"""
import socket
import sys
import threading

LENGTH = 256 << 20
CHUNK = memoryview(bytes(1 << 20))
HEAD = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % LENGTH


def serve(conn):
    requests = conn.makefile("rb")
    try:
        while requests.readline():
            while requests.readline() not in (b"\r\n", b""):
                pass
            conn.sendall(HEAD)
            for _ in range(LENGTH // len(CHUNK)):
                conn.sendall(CHUNK)
    except OSError:
        pass
    finally:
        conn.close()


def main():
    listener = socket.create_server(("127.0.0.1", int(sys.argv[1])))
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    main()
