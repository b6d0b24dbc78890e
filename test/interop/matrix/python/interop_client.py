#!/usr/bin/python3
"""The gRPC interop client cases on Python grpcio (gRPC C-core), as a peer for Rill's matrix.

Standard flags: --server_host=H --server_port=N --test_case=NAME|all [--use_tls=false]
[--use_test_ca=false --ca_file=PATH] [--server_host_override=NAME]
[--server_host_override=NAME]. Exit 0 when every case passed, 1 on a failure (printed).

What grpcio cannot do, and what this client does instead:
- It cannot send one message of a compressed call uncompressed, so in
  client_compressed_streaming the second message goes compressed with expect_compressed
  left unset (the field is nullable for exactly this) instead of uncompressed with false.
- It cannot see a response's compressed flag: server_compressed_* assert the sizes only.
- cacheable_unary is sent as a plain POST (no caching proxy): both calls must succeed.
"""
import argparse
import os
import queue
import sys
import threading
import time
from concurrent import futures

sys.path.insert(0, os.environ.get("RILL_PYTHON_STUBS", os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", ".tmp", "python-stubs")))

import grpc  # noqa: E402
from rill_testing.grpc.testing import empty_pb2, messages_pb2, test_pb2_grpc  # noqa: E402

ECHO_INITIAL = "x-grpc-test-echo-initial"
ECHO_TRAILING = "x-grpc-test-echo-trailing-bin"
SPECIAL_MESSAGE = "\t\ntest with whitespace\r\nand Unicode BMP \u263a and non-BMP \U0001f608\t\n"


class CaseFailure(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise CaseFailure(msg)


def zeros(n):
    return messages_pb2.Payload(body=b"\0" * n)


def check_payload(payload, size, what):
    check(len(payload.body) == size, "%s: payload body is %d bytes, want %d" % (what, len(payload.body), size))
    check(payload.body == b"\0" * size, "%s: payload body is not all zeros" % what)


def large_request(**extra):
    return messages_pb2.SimpleRequest(response_size=314159, payload=zeros(271828), **extra)


def expect_failure(fn, what):
    try:
        fn()
    except grpc.RpcError as e:
        return e
    raise CaseFailure("%s: succeeded, but it had to fail" % what)


def check_code(err, code, what):
    check(err.code() == code, "%s: status %s (%r), want %s" % (what, err.code(), err.details(), code))


class Requests:
    """A request iterator fed from another thread; `close()` half-closes."""

    _END = object()

    def __init__(self):
        self._q = queue.Queue()

    def push(self, item):
        self._q.put(item)

    def close(self):
        self._q.put(self._END)

    def __iter__(self):
        return self

    def __next__(self):
        item = self._q.get()
        if item is self._END:
            raise StopIteration
        return item


def empty_unary(stub, _):
    res = stub.EmptyCall(empty_pb2.Empty())
    check(res is not None, "empty_unary: no response")


def cacheable_unary(stub, _):
    req = messages_pb2.SimpleRequest(payload=messages_pb2.Payload(body=str(time.time_ns()).encode()))
    md = (("x-user-ip", "1.2.3.4"),)
    a = stub.CacheableUnaryCall(req, metadata=md)
    b = stub.CacheableUnaryCall(req, metadata=md)
    check(a.HasField("payload") and b.HasField("payload"), "cacheable_unary: a response without payload")


def large_unary(stub, _):
    check_payload(stub.UnaryCall(large_request()).payload, 314159, "large_unary")


def client_compressed_unary(stub, _):
    probe = expect_failure(
        lambda: stub.UnaryCall(large_request(expect_compressed=messages_pb2.BoolValue(value=True))),
        "client_compressed_unary probe (uncompressed request with expect_compressed=true)",
    )
    check_code(probe, grpc.StatusCode.INVALID_ARGUMENT, "client_compressed_unary probe")
    res = stub.UnaryCall(large_request(expect_compressed=messages_pb2.BoolValue(value=True)), compression=grpc.Compression.Gzip)
    check_payload(res.payload, 314159, "client_compressed_unary (compressed request)")
    res = stub.UnaryCall(large_request(expect_compressed=messages_pb2.BoolValue(value=False)), compression=grpc.Compression.NoCompression)
    check_payload(res.payload, 314159, "client_compressed_unary (uncompressed request)")


def server_compressed_unary(stub, _):
    for value in (True, False):
        res = stub.UnaryCall(large_request(response_compressed=messages_pb2.BoolValue(value=value)))
        check_payload(res.payload, 314159, "server_compressed_unary (response_compressed=%s)" % value)


def client_streaming(stub, _):
    sizes = [27182, 8, 1828, 45904]
    res = stub.StreamingInputCall(iter([messages_pb2.StreamingInputCallRequest(payload=zeros(n)) for n in sizes]))
    check(res.aggregated_payload_size == 74922, "client_streaming: aggregated_payload_size %d, want 74922" % res.aggregated_payload_size)


def client_compressed_streaming(stub, _):
    probe = expect_failure(
        lambda: stub.StreamingInputCall(
            iter([messages_pb2.StreamingInputCallRequest(expect_compressed=messages_pb2.BoolValue(value=True), payload=zeros(27182))])
        ),
        "client_compressed_streaming probe (uncompressed message with expect_compressed=true)",
    )
    check_code(probe, grpc.StatusCode.INVALID_ARGUMENT, "client_compressed_streaming probe")
    # grpcio cannot mark one message of a gzip call uncompressed: the second message is sent
    # compressed, with expect_compressed unset.
    requests = [
        messages_pb2.StreamingInputCallRequest(expect_compressed=messages_pb2.BoolValue(value=True), payload=zeros(27182)),
        messages_pb2.StreamingInputCallRequest(payload=zeros(45904)),
    ]
    res = stub.StreamingInputCall(iter(requests), compression=grpc.Compression.Gzip)
    check(res.aggregated_payload_size == 73086, "client_compressed_streaming: aggregated_payload_size %d, want 73086" % res.aggregated_payload_size)


def server_streaming(stub, _):
    sizes = [31415, 9, 2653, 58979]
    req = messages_pb2.StreamingOutputCallRequest(response_parameters=[messages_pb2.ResponseParameters(size=s) for s in sizes])
    responses = list(stub.StreamingOutputCall(req))
    check(len(responses) == 4, "server_streaming: %d responses, want 4" % len(responses))
    for i, (r, s) in enumerate(zip(responses, sizes)):
        check_payload(r.payload, s, "server_streaming response %d" % (i + 1))


def server_compressed_streaming(stub, _):
    req = messages_pb2.StreamingOutputCallRequest(
        response_parameters=[
            messages_pb2.ResponseParameters(compressed=messages_pb2.BoolValue(value=True), size=31415),
            messages_pb2.ResponseParameters(compressed=messages_pb2.BoolValue(value=False), size=92653),
        ]
    )
    responses = list(stub.StreamingOutputCall(req))
    check(len(responses) == 2, "server_compressed_streaming: %d responses, want 2" % len(responses))
    check_payload(responses[0].payload, 31415, "server_compressed_streaming response 1")
    check_payload(responses[1].payload, 92653, "server_compressed_streaming response 2")


def ping_pong(stub, _):
    steps = [(31415, 27182), (9, 8), (2653, 1828), (58979, 45904)]
    requests = Requests()
    call = stub.FullDuplexCall(requests)
    try:
        for i, (size, body) in enumerate(steps):
            requests.push(
                messages_pb2.StreamingOutputCallRequest(response_parameters=[messages_pb2.ResponseParameters(size=size)], payload=zeros(body))
            )
            r = next(call, None)
            check(r is not None, "ping_pong: the stream ended after %d responses, want 4" % i)
            check_payload(r.payload, size, "ping_pong response %d" % (i + 1))
        requests.close()
        check(next(call, None) is None, "ping_pong: more than 4 responses")
    finally:
        requests.close()


def empty_stream(stub, _):
    responses = list(stub.FullDuplexCall(iter([])))
    check(len(responses) == 0, "empty_stream: %d responses, want 0" % len(responses))


def custom_metadata(stub, _):
    trailing = b"\xab\xab\xab"
    md = ((ECHO_INITIAL, "test_initial_metadata_value"), (ECHO_TRAILING, trailing))

    def check_md(what, initial, trailer):
        check((ECHO_INITIAL, "test_initial_metadata_value") in list(initial), "%s: %s missing from the response headers (%r)" % (what, ECHO_INITIAL, initial))
        check((ECHO_TRAILING, trailing) in list(trailer), "%s: %s missing from the trailers (%r)" % (what, ECHO_TRAILING, trailer))

    res, call = stub.UnaryCall.with_call(large_request(), metadata=md)
    check_payload(res.payload, 314159, "custom_metadata (UnaryCall)")
    check_md("custom_metadata (UnaryCall)", call.initial_metadata(), call.trailing_metadata())

    req = messages_pb2.StreamingOutputCallRequest(response_parameters=[messages_pb2.ResponseParameters(size=314159)], payload=zeros(271828))
    call = stub.FullDuplexCall(iter([req]), metadata=md)
    responses = list(call)
    check(len(responses) == 1, "custom_metadata (FullDuplexCall): %d responses, want 1" % len(responses))
    check_payload(responses[0].payload, 314159, "custom_metadata (FullDuplexCall)")
    check_md("custom_metadata (FullDuplexCall)", call.initial_metadata(), call.trailing_metadata())


def _check_status(err, code, message, what):
    check_code(err, code, what)
    check(err.details() == message, "%s: status message %r, want %r" % (what, err.details(), message))


def status_code_and_message(stub, _):
    status = messages_pb2.EchoStatus(code=2, message="test status message")
    err = expect_failure(lambda: stub.UnaryCall(messages_pb2.SimpleRequest(response_status=status)), "status_code_and_message (UnaryCall)")
    _check_status(err, grpc.StatusCode.UNKNOWN, "test status message", "status_code_and_message (UnaryCall)")
    err = expect_failure(
        lambda: list(stub.FullDuplexCall(iter([messages_pb2.StreamingOutputCallRequest(response_status=status)]))),
        "status_code_and_message (FullDuplexCall)",
    )
    _check_status(err, grpc.StatusCode.UNKNOWN, "test status message", "status_code_and_message (FullDuplexCall)")


def special_status_message(stub, _):
    status = messages_pb2.EchoStatus(code=2, message=SPECIAL_MESSAGE)
    err = expect_failure(lambda: stub.UnaryCall(messages_pb2.SimpleRequest(response_status=status)), "special_status_message")
    _check_status(err, grpc.StatusCode.UNKNOWN, SPECIAL_MESSAGE, "special_status_message")


def unimplemented_method(stub, _):
    err = expect_failure(lambda: stub.UnimplementedCall(empty_pb2.Empty()), "unimplemented_method")
    check_code(err, grpc.StatusCode.UNIMPLEMENTED, "unimplemented_method")


def unimplemented_service(_, channel):
    stub = test_pb2_grpc.UnimplementedServiceStub(channel)
    err = expect_failure(lambda: stub.UnimplementedCall(empty_pb2.Empty()), "unimplemented_service")
    check_code(err, grpc.StatusCode.UNIMPLEMENTED, "unimplemented_service")


def cancel_after_begin(stub, _):
    requests = Requests()
    future = stub.StreamingInputCall.future(requests)
    time.sleep(0.01)  # let the headers go out; no message is ever sent
    future.cancel()
    requests.close()
    check(future.cancelled(), "cancel_after_begin: the call did not end as cancelled")
    check(future.code() == grpc.StatusCode.CANCELLED, "cancel_after_begin: status %s, want CANCELLED" % future.code())


def cancel_after_first_response(stub, _):
    requests = Requests()
    call = stub.FullDuplexCall(requests)
    try:
        requests.push(messages_pb2.StreamingOutputCallRequest(response_parameters=[messages_pb2.ResponseParameters(size=31415)], payload=zeros(27182)))
        first = next(call)
        check_payload(first.payload, 31415, "cancel_after_first_response")
        call.cancel()
        err = expect_failure(lambda: next(call), "cancel_after_first_response")
        check_code(err, grpc.StatusCode.CANCELLED, "cancel_after_first_response")
    finally:
        requests.close()


def timeout_on_sleeping_server(stub, _):
    requests = Requests()
    requests.push(messages_pb2.StreamingOutputCallRequest(payload=zeros(27182)))
    try:
        err = expect_failure(lambda: list(stub.FullDuplexCall(requests, timeout=0.001)), "timeout_on_sleeping_server")
        check_code(err, grpc.StatusCode.DEADLINE_EXCEEDED, "timeout_on_sleeping_server")
    finally:
        requests.close()


def max_streams(stub, _):
    check_payload(stub.UnaryCall(large_request()).payload, 314159, "max_streams (initial call)")
    calls = [stub.UnaryCall.future(large_request()) for _ in range(10)]
    for i, f in enumerate(calls):
        check_payload(f.result().payload, 314159, "max_streams (concurrent call %d)" % (i + 1))


CASES = [
    empty_unary, cacheable_unary, large_unary, client_compressed_unary, server_compressed_unary,
    client_streaming, client_compressed_streaming, server_streaming, server_compressed_streaming,
    ping_pong, empty_stream, custom_metadata, status_code_and_message, special_status_message,
    unimplemented_method, unimplemented_service, cancel_after_begin, cancel_after_first_response,
    timeout_on_sleeping_server, max_streams,
]
CASES_BY_NAME = {c.__name__: c for c in CASES}


def _bool_flag(value):
    v = value.lower()
    if v in ("true", "1", "yes"):
        return True
    if v in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError("expected true or false, got %r" % value)


def main():
    parser = argparse.ArgumentParser(description="gRPC interop client cases on Python grpcio")
    parser.add_argument("--server_host", default="localhost")
    parser.add_argument("--server_port", type=int, required=True)
    parser.add_argument("--server_host_override", default=None)
    parser.add_argument("--test_case", required=True, choices=["all"] + list(CASES_BY_NAME))
    parser.add_argument("--use_tls", type=_bool_flag, default=False)
    parser.add_argument("--use_test_ca", type=_bool_flag, default=False)
    # Where the test CA is (grpc's own interop clients bundle theirs; ours are made at test time).
    parser.add_argument("--ca_file", default=None)
    args = parser.parse_args()
    target = "%s:%d" % (args.server_host, args.server_port)
    credentials = None
    options = []
    if args.use_tls:
        root = None
        if args.use_test_ca:
            if not args.ca_file:
                sys.exit("interop_client.py: --use_test_ca=true needs --ca_file=PATH (the test CA)")
            with open(args.ca_file, "rb") as f:
                root = f.read()
        credentials = grpc.ssl_channel_credentials(root_certificates=root)
        if args.server_host_override:
            options.append(("grpc.ssl_target_name_override", args.server_host_override))
    if args.server_host_override:
        options.append(("grpc.default_authority", args.server_host_override))
    names = list(CASES_BY_NAME) if args.test_case == "all" else [args.test_case]
    failed = 0
    for name in names:
        started = time.monotonic()
        # Channels are left open on purpose: grpcio's channel close and interpreter shutdown can
        # hang on a loaded machine after a case has already passed or failed (its poller threads),
        # so the verdict is printed and the process ends with os._exit below.
        channel = grpc.secure_channel(target, credentials, options=options) if credentials else grpc.insecure_channel(target, options=options)
        stub = test_pb2_grpc.TestServiceStub(channel)
        pool = futures.ThreadPoolExecutor(max_workers=1)
        try:
            pool.submit(CASES_BY_NAME[name], stub, channel).result(timeout=30)
            print("PASS %s (%d ms)" % (name, (time.monotonic() - started) * 1000), flush=True)
        except Exception as e:  # noqa: BLE001 - every failure is reported the same way
            failed += 1
            print("FAIL %s: %s: %s" % (name, type(e).__name__, e), file=sys.stderr, flush=True)
        finally:
            pool.shutdown(wait=False)  # a case stuck past its timeout must not hold the verdict
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(1 if failed else 0)


if __name__ == "__main__":
    main()
