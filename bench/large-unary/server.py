#!/usr/bin/python3
"""grpc.testing.TestService/UnaryCall on Python grpcio (gRPC C-core) for bench/large-unary.ts.

Answers every UnaryCall with `response_size` bytes (built once per size and reused, so the
server measures its stack, not Python filling buffers), whatever the request carried. No
message size limit either way. Prints {"type":"ready","port":N} on stdout once listening on
127.0.0.1 and runs until killed. The stubs come from scripts/setup-peers.mjs
(.tmp/python-stubs, package rill_testing).
"""
import json
import os
import sys
import threading
from concurrent import futures

sys.path.insert(0, os.environ.get("RILL_PYTHON_STUBS", os.path.join(os.path.dirname(__file__), "..", "..", ".tmp", "python-stubs")))

import grpc  # noqa: E402
from rill_testing.grpc.testing import messages_pb2, test_pb2_grpc  # noqa: E402

_bodies = {}
_lock = threading.Lock()


def _body(size):
    with _lock:
        b = _bodies.get(size)
        if b is None:
            b = _bodies[size] = bytes(size)
        return b


class Service(test_pb2_grpc.TestServiceServicer):
    def UnaryCall(self, request, context):
        return messages_pb2.SimpleResponse(payload=messages_pb2.Payload(body=_body(request.response_size)))


def main():
    unlimited = [("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), options=unlimited)
    test_pb2_grpc.add_TestServiceServicer_to_server(Service(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(json.dumps({"type": "ready", "port": port}), flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    main()
