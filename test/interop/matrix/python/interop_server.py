#!/usr/bin/python3
"""grpc.testing.TestService on Python grpcio (gRPC C-core), as a peer for Rill's interop matrix.

Flags are the standard interop server flags: --port=N [--use_tls=false]. One more, ours:
--max_concurrent_streams=N sets HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS (for max_streams).
The stubs come from scripts/setup-peers.mjs (.tmp/python-stubs, package rill_testing).

What grpcio cannot do: see whether a request message arrived compressed (see
`_check_expect_compressed`), so the CompressedRequest feature is missing.
"""
import argparse
import os
import sys
import time
from concurrent import futures

sys.path.insert(0, os.environ.get("RILL_PYTHON_STUBS", os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", ".tmp", "python-stubs")))

import grpc  # noqa: E402
from rill_testing.grpc.testing import empty_pb2, messages_pb2, test_pb2_grpc  # noqa: E402

ECHO_INITIAL = "x-grpc-test-echo-initial"
ECHO_TRAILING = "x-grpc-test-echo-trailing-bin"
STATUS_BY_CODE = {c.value[0]: c for c in grpc.StatusCode}


def _bool_flag(value):
    v = value.lower()
    if v in ("true", "1", "yes"):
        return True
    if v in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError("expected true or false, got %r" % value)


def _echo_metadata(context):
    """Echoes x-grpc-test-echo-initial into the headers and ...-trailing-bin into the trailers."""
    initial = []
    trailing = []
    for key, value in context.invocation_metadata():
        if key == ECHO_INITIAL:
            initial.append((key, value))
        elif key == ECHO_TRAILING:
            trailing.append((key, value))
    if initial:
        context.send_initial_metadata(tuple(initial))
    if trailing:
        context.set_trailing_metadata(tuple(trailing))


def _maybe_echo_status(request, context):
    """Ends the call with request.response_status when it is set to a non-OK code."""
    if request.HasField("response_status") and request.response_status.code != 0:
        context.abort(STATUS_BY_CODE[request.response_status.code], request.response_status.message)


def _check_expect_compressed(request, context):
    """CompressedRequest cannot be implemented on grpcio: C-core decompresses before the
    application sees a message, never exposes its compressed flag, and removes grpc-encoding
    from the invocation metadata. So `expect_compressed` is accepted and not checked, which
    a client's probe (an uncompressed message claiming to be compressed) detects as "this
    server does not support CompressedRequest". Official gRPC skips the compression cases for
    Python servers for the same reason."""
    del request, context


def _payload(size):
    return messages_pb2.Payload(type=messages_pb2.COMPRESSABLE, body=b"\0" * size)


class TestService(test_pb2_grpc.TestServiceServicer):
    def EmptyCall(self, request, context):
        _echo_metadata(context)
        return empty_pb2.Empty()

    def UnaryCall(self, request, context):
        _echo_metadata(context)
        _check_expect_compressed(request, context)
        if request.response_type != messages_pb2.COMPRESSABLE:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "unsupported response_type")
        if request.HasField("response_compressed") and request.response_compressed.value:
            context.set_compression(grpc.Compression.Gzip)
        _maybe_echo_status(request, context)
        return messages_pb2.SimpleResponse(payload=_payload(request.response_size))

    def CacheableUnaryCall(self, request, context):
        _echo_metadata(context)
        context.send_initial_metadata((("cache-control", "max-age=60, public"),))
        return messages_pb2.SimpleResponse(payload=messages_pb2.Payload(body=str(time.time_ns()).encode()))

    def _respond(self, request, context):
        for params in request.response_parameters:
            if params.interval_us > 0:
                time.sleep(params.interval_us / 1e6)
            if params.HasField("compressed"):
                if params.compressed.value:
                    context.set_compression(grpc.Compression.Gzip)
                else:
                    context.disable_next_message_compression()
            yield messages_pb2.StreamingOutputCallResponse(payload=_payload(params.size))

    def StreamingOutputCall(self, request, context):
        _echo_metadata(context)
        _maybe_echo_status(request, context)
        if any(p.HasField("compressed") and p.compressed.value for p in request.response_parameters):
            context.set_compression(grpc.Compression.Gzip)
        yield from self._respond(request, context)

    def StreamingInputCall(self, request_iterator, context):
        _echo_metadata(context)
        total = 0
        for request in request_iterator:
            _check_expect_compressed(request, context)
            total += len(request.payload.body)
        return messages_pb2.StreamingInputCallResponse(aggregated_payload_size=total)

    def FullDuplexCall(self, request_iterator, context):
        _echo_metadata(context)
        for request in request_iterator:
            _maybe_echo_status(request, context)
            yield from self._respond(request, context)

    def HalfDuplexCall(self, request_iterator, context):
        _echo_metadata(context)
        requests = list(request_iterator)
        for request in requests:
            _maybe_echo_status(request, context)
            yield from self._respond(request, context)

    # UnimplementedCall is left to the generated base class: it answers UNIMPLEMENTED.


def main():
    parser = argparse.ArgumentParser(description="grpc.testing interop server on Python grpcio")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--use_tls", type=_bool_flag, default=False)
    parser.add_argument("--max_concurrent_streams", type=int, default=0)
    # The server certificate and key for --use_tls (grpc's interop servers bundle server1.pem/.key).
    parser.add_argument("--cert_file", default=None)
    parser.add_argument("--key_file", default=None)
    args = parser.parse_args()
    if args.use_tls and not (args.cert_file and args.key_file):
        sys.exit("interop_server.py: --use_tls=true needs --cert_file=PATH and --key_file=PATH")
    options = [("grpc.max_concurrent_streams", args.max_concurrent_streams)] if args.max_concurrent_streams > 0 else []
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=32), options=options)
    test_pb2_grpc.add_TestServiceServicer_to_server(TestService(), server)
    if args.use_tls:
        with open(args.key_file, "rb") as k, open(args.cert_file, "rb") as c:
            credentials = grpc.ssl_server_credentials([(k.read(), c.read())])
        port = server.add_secure_port("127.0.0.1:%d" % args.port, credentials)
    else:
        port = server.add_insecure_port("127.0.0.1:%d" % args.port)
    server.start()
    # The matrix waits for this line to learn the port (the flag may be 0).
    print("listening on 127.0.0.1:%d" % port, flush=True)
    try:
        server.wait_for_termination()
    except KeyboardInterrupt:
        pass
    server.stop(0)


if __name__ == "__main__":
    main()
