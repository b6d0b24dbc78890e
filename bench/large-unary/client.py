#!/usr/bin/python3
"""grpcio's own client for bench/large-unary.ts: `client.py PORT upload|download SIZE CALLS WARMUP`.

Upload sends SIZE bytes and asks for 8 back; download sends 8 and asks for SIZE. The request
message is built before the clock starts (its serialisation is inside the call, as for the
other clients). Makes WARMUP calls, then CALLS timed ones one after another on one channel,
checks every response's size, and prints {"type":"result","ms":[...]} on stdout.
"""
import json
import os
import sys
import time

sys.path.insert(0, os.environ.get("RILL_PYTHON_STUBS", os.path.join(os.path.dirname(__file__), "..", "..", ".tmp", "python-stubs")))

import grpc  # noqa: E402
from rill_testing.grpc.testing import messages_pb2, test_pb2_grpc  # noqa: E402

SMALL = 8


def main():
    port, direction, size, calls, warmup = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    up = direction == "upload"
    unlimited = [("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)]
    channel = grpc.insecure_channel("127.0.0.1:%s" % port, options=unlimited)
    grpc.channel_ready_future(channel).result(timeout=10)
    stub = test_pb2_grpc.TestServiceStub(channel)
    request = messages_pb2.SimpleRequest(
        response_size=SMALL if up else size,
        payload=messages_pb2.Payload(body=bytes(size if up else SMALL)),
    )
    want = SMALL if up else size
    ms = []
    for i in range(warmup + calls):
        t0 = time.perf_counter()
        response = stub.UnaryCall(request, timeout=120)
        dt = (time.perf_counter() - t0) * 1000
        if len(response.payload.body) != want:
            raise SystemExit("response of %d bytes, expected %d" % (len(response.payload.body), want))
        if i >= warmup:
            ms.append(dt)
    channel.close()
    print(json.dumps({"type": "result", "ms": ms}), flush=True)


if __name__ == "__main__":
    main()
