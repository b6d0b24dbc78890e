import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Code, contentTypeFor, parseContentType, parsePath, validateRequestHeaders } from "../../src/protocol/index.js";

describe("parseContentType", () => {
  const table: Array<[string | undefined, string | undefined]> = [
    ["application/grpc", "proto"],
    ["application/grpc+proto", "proto"],
    ["application/grpc+json", "json"],
    ["application/grpc+thrift", "thrift"],
    ["APPLICATION/GRPC+JSON", "json"],
    ["Application/Grpc", "proto"],
    ["application/grpc; charset=utf-8", "proto"],
    ["application/grpc+json;charset=utf-8", "json"],
    ["application/grpc+proto ; a=b", "proto"],
    [undefined, undefined],
    ["", undefined],
    ["application/json", undefined],
    ["application/grpc-web", undefined],
    ["application/grpc-web+proto", undefined],
    ["application/grpc-web-text", undefined],
    ["application/grpc+", undefined],
    ["application/grpc++json", undefined],
    ["application/grpc+json+x", undefined],
    ["application/grpcx", undefined],
    ["text/plain", undefined],
    [" application/grpc", undefined],
    ["application/grpc/json", undefined],
  ];
  for (const [value, codec] of table) {
    test(`reads ${JSON.stringify(value)} as ${codec === undefined ? "not gRPC" : `codec ${codec}`}`, () => {
      assert.deepEqual(parseContentType(value), codec === undefined ? undefined : { codec });
    });
  }
});

describe("contentTypeFor", () => {
  test("sends plain application/grpc for proto, which every peer accepts", () => {
    assert.equal(contentTypeFor("proto"), "application/grpc");
  });

  test("names any other codec in the suffix", () => {
    assert.equal(contentTypeFor("json"), "application/grpc+json");
    assert.equal(contentTypeFor("raw"), "application/grpc+raw");
  });

  test("round-trips through parseContentType", () => {
    for (const codec of ["proto", "json", "custom"]) assert.deepEqual(parseContentType(contentTypeFor(codec)), { codec });
  });
});

describe("parsePath", () => {
  const table: Array<[string | undefined, { service: string; method: string } | undefined]> = [
    ["/grpc.examples.echo.Echo/UnaryEcho", { service: "grpc.examples.echo.Echo", method: "UnaryEcho" }],
    ["/routeguide.RouteGuide/GetFeature", { service: "routeguide.RouteGuide", method: "GetFeature" }],
    ["/Service/Method", { service: "Service", method: "Method" }],
    ["/_pkg.v1_2.S_3/m_4", { service: "_pkg.v1_2.S_3", method: "m_4" }],
    [undefined, undefined],
    ["", undefined],
    ["/", undefined],
    ["//", undefined],
    ["/Service", undefined],
    ["/Service/", undefined],
    ["//Method", undefined],
    ["Service/Method", undefined],
    ["/a/b/c", undefined],
    ["/Service/Method?x=1", undefined],
    ["/pkg..Service/Method", undefined],
    ["/.Service/Method", undefined],
    ["/Service./Method", undefined],
    ["/1pkg.Service/Method", undefined],
    ["/pkg.Service/Me.thod", undefined],
    ["/pkg.Service/Method/", undefined],
    ["/pkg Service/Method", undefined],
    ["/pkg.Service/Method\n", undefined],
  ];
  for (const [path, parts] of table) {
    test(`reads ${JSON.stringify(path)} as ${parts === undefined ? "malformed" : `${parts.service} / ${parts.method}`}`, () => {
      assert.deepEqual(parsePath(path), parts);
    });
  }
});

describe("validateRequestHeaders", () => {
  const ok = { ":method": "POST", ":path": "/a.B/C", "content-type": "application/grpc", te: "trailers" };

  test("accepts a well-formed gRPC request", () => {
    assert.equal(validateRequestHeaders(ok), undefined);
  });

  test("does not require te: trailers", () => {
    const { te: _te, ...noTe } = ok;
    assert.equal(validateRequestHeaders(noTe), undefined);
    assert.equal(validateRequestHeaders({ ...ok, te: "gzip" }), undefined);
  });

  test("accepts any gRPC content-type", () => {
    assert.equal(validateRequestHeaders({ ...ok, "content-type": "application/grpc+json; charset=utf-8" }), undefined);
  });

  for (const method of ["GET", "PUT", "post", undefined]) {
    test(`answers :method ${String(method)} with HTTP 405`, () => {
      const problem = validateRequestHeaders({ ...ok, ":method": method });
      assert.equal(problem?.httpStatus, 405);
      assert.equal(problem?.code, Code.Internal);
      assert.match(problem?.message ?? "", /POST/);
    });
  }

  for (const contentType of [undefined, "application/json", "application/grpc-web", "text/html"]) {
    test(`answers content-type ${String(contentType)} with HTTP 415`, () => {
      const problem = validateRequestHeaders({ ...ok, "content-type": contentType });
      assert.equal(problem?.httpStatus, 415);
      assert.equal(problem?.code, Code.InvalidArgument);
      assert.match(problem?.message ?? "", /content-type/);
    });
  }

  test("checks the method before the content-type", () => {
    assert.equal(validateRequestHeaders({ ":method": "GET", "content-type": "text/html" })?.httpStatus, 405);
  });

  test("uses the first value of a repeated header", () => {
    assert.equal(validateRequestHeaders({ ...ok, "content-type": ["application/grpc", "text/html"] }), undefined);
  });
});
