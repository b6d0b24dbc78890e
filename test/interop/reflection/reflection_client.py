"""A grpcurl-style client in Python grpcio (gRPC C-core): it learns everything from server
reflection (grpc.reflection.v1alpha, as grpcio's own reflection tools speak it), builds a
descriptor pool from the FileDescriptorProtos it receives, and calls methods with messages
made from that pool. No .proto of the services is at hand.

Usage: reflection_client.py STUBS_DIR TARGET. Prints one JSON object with what it found.
"""
import json
import sys

sys.path.insert(0, sys.argv[1])
target = sys.argv[2]

import grpc  # noqa: E402
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory  # noqa: E402
from rill_reflection.grpc.reflection.v1alpha import reflection_pb2 as r  # noqa: E402
from rill_reflection.grpc.reflection.v1alpha import reflection_pb2_grpc as rg  # noqa: E402


def message_class(desc):
    if hasattr(message_factory, "GetMessageClass"):
        return message_factory.GetMessageClass(desc)
    return message_factory.MessageFactory(desc.file.pool).GetPrototype(desc)


channel = grpc.insecure_channel(target)
stub = rg.ServerReflectionStub(channel)
requests = [
    r.ServerReflectionRequest(list_services=""),
    r.ServerReflectionRequest(file_containing_symbol="video_service.VideoService"),
    r.ServerReflectionRequest(file_containing_symbol="grpc.testing.TestService"),
    r.ServerReflectionRequest(file_containing_symbol="no.such.Symbol"),
    r.ServerReflectionRequest(file_by_filename="grpc/health/v1/health.proto"),
]
answers = list(stub.ServerReflectionInfo(iter(requests), timeout=10))

out = {"answers": len(answers)}
out["services"] = sorted(s.name for s in answers[0].list_services_response.service)
out["not_found_code"] = answers[3].error_response.error_code

protos = {}
for a in (answers[1], answers[2], answers[4]):
    for raw in a.file_descriptor_response.file_descriptor_proto:
        fdp = descriptor_pb2.FileDescriptorProto.FromString(raw)
        protos.setdefault(fdp.name, fdp)
out["files"] = sorted(protos)

# Add files to a fresh pool imports first, as any reflection client must.
pool = descriptor_pool.DescriptorPool()
added = set()
while len(added) < len(protos):
    progress = False
    for name, fdp in protos.items():
        if name not in added and all(d in added for d in fdp.dependency):
            pool.Add(fdp)
            added.add(name)
            progress = True
    if not progress:
        raise SystemExit("reflection left imports unanswered: " + ", ".join(sorted(set(protos) - added)))

svc = pool.FindServiceByName("video_service.VideoService")
out["methods"] = [m.name for m in svc.methods]
add = svc.FindMethodByName("AddVideo")
lst = svc.FindMethodByName("ListVideos")
Video = message_class(add.input_type)
AddVideoResponse = message_class(add.output_type)
ListVideosRequest = message_class(lst.input_type)
VideoOut = message_class(lst.output_type)

call_add = channel.unary_unary("/video_service.VideoService/AddVideo", request_serializer=Video.SerializeToString, response_deserializer=AddVideoResponse.FromString)
added_id = call_add(Video(title="From Python", author="py", duration=42), timeout=10).id
out["added_id"] = added_id

call_list = channel.unary_stream("/video_service.VideoService/ListVideos", request_serializer=ListVideosRequest.SerializeToString, response_deserializer=VideoOut.FromString)
out["listed"] = [json_format.MessageToDict(v) for v in call_list(ListVideosRequest(author="py"), timeout=10)]

messages = pool.FindMessageTypeByName("grpc.testing.SimpleRequest")
out["simple_request_fields"] = [f.name for f in messages.fields][:3]
print(json.dumps(out))
