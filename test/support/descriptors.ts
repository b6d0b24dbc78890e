import { FieldDescriptorProto_Label, type FieldDescriptorProto_Type } from "@bufbuild/protobuf/wkt";

/** A singular field for a `FileDescriptorProto` built at run time in a test (`extra`: oneofIndex, typeName, …). */
export function descriptorField(name: string, number: number, type: FieldDescriptorProto_Type, extra: Record<string, unknown> = {}) {
  return { name, number, type, label: FieldDescriptorProto_Label.OPTIONAL, jsonName: name, ...extra };
}
