import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  Code,
  codeName,
  decodeStatusMessage,
  encodeStatusMessage,
  httpStatusToCode,
  parseStatus,
  rstCodeToCode,
  statusHeaders,
} from "../../src/protocol/index.js";

const allCodes = Array.from({ length: 17 }, (_, i) => i as Code);

// The interop suite's special_status_message case.
const specialMessage = "\t\ntest with whitespace\r\nand Unicode BMP ☺ and non-BMP 😈\t\n";

describe("encodeStatusMessage", () => {
  const cases: Array<[string, string]> = [
    ["", ""],
    ["plain ASCII stays as it is ~!", "plain ASCII stays as it is ~!"],
    ["100%", "100%25"],
    ["%%", "%25%25"],
    ["tab\there", "tab%09here"],
    ["\r\n", "%0D%0A"],
    ["\x7f", "%7F"],
    ["é", "%C3%A9"],
    ["☺", "%E2%98%BA"],
    ["😈", "%F0%9F%98%88"],
    [specialMessage, "%09%0Atest with whitespace%0D%0Aand Unicode BMP %E2%98%BA and non-BMP %F0%9F%98%88%09%0A"],
  ];
  for (const [input, encoded] of cases) {
    test(`encodes ${JSON.stringify(input)} as ${JSON.stringify(encoded)}`, () => {
      assert.equal(encodeStatusMessage(input), encoded);
    });
  }

  test("sends a lone surrogate as U+FFFD", () => {
    assert.equal(encodeStatusMessage("a\ud800b"), "a%EF%BF%BDb");
  });

  test("produces only printable ASCII", () => {
    assert.match(encodeStatusMessage(specialMessage), /^[\x20-\x7e]*$/);
  });
});

describe("decodeStatusMessage", () => {
  const cases: Array<[string, string]> = [
    ["", ""],
    ["no escapes", "no escapes"],
    ["100%25", "100%"],
    ["%e2%98%ba lower-case hex", "☺ lower-case hex"],
    ["%F0%9F%98%88", "😈"],
    // Malformed sequences are kept literally.
    ["%", "%"],
    ["%4", "%4"],
    ["50%", "50%"],
    ["%zz", "%zz"],
    ["%G0", "%G0"],
    ["a%2", "a%2"],
    ["%%41", "%A"],
    // Unencoded characters a lenient peer sent are taken as they are.
    ["☺ raw %21", "☺ raw !"],
    ["😈%20", "😈 "],
  ];
  for (const [input, decoded] of cases) {
    test(`decodes ${JSON.stringify(input)} as ${JSON.stringify(decoded)}`, () => {
      assert.equal(decodeStatusMessage(input), decoded);
    });
  }

  test("replaces invalid UTF-8 with U+FFFD instead of throwing", () => {
    assert.equal(decodeStatusMessage("%FF%FE"), "\ufffd\ufffd");
    assert.equal(decodeStatusMessage("%E2%98"), "\ufffd");
  });

  test("round-trips the interop special status message", () => {
    assert.equal(decodeStatusMessage(encodeStatusMessage(specialMessage)), specialMessage);
  });
});

describe("statusHeaders and parseStatus", () => {
  for (const code of allCodes) {
    test(`round-trips ${codeName(code)} with and without a message`, () => {
      assert.deepEqual(parseStatus(statusHeaders(code, "")), { code, message: "" });
      assert.deepEqual(parseStatus(statusHeaders(code, specialMessage)), { code, message: specialMessage });
    });
  }

  test("sends grpc-message only when there is a message", () => {
    assert.deepEqual(statusHeaders(Code.OK, ""), { "grpc-status": "0" });
    assert.deepEqual(statusHeaders(Code.NotFound, "100%"), { "grpc-status": "5", "grpc-message": "100%25" });
  });

  test("returns undefined when grpc-status is absent", () => {
    assert.equal(parseStatus({}), undefined);
    assert.equal(parseStatus({ "grpc-message": "orphan", ":status": 200 }), undefined);
  });

  const invalid = ["", "17", "-1", "abc", "1.0", " 1", "1 ", "0x1", "99999999999"];
  for (const value of invalid) {
    test(`maps grpc-status ${JSON.stringify(value)} to UNKNOWN saying it is invalid`, () => {
      assert.deepEqual(parseStatus({ "grpc-status": value, "grpc-message": "ignored" }), {
        code: Code.Unknown,
        message: `invalid grpc-status: ${JSON.stringify(value)}`,
      });
    });
  }

  test("accepts a leading zero as grpc-go does", () => {
    assert.equal(parseStatus({ "grpc-status": "05" })?.code, Code.NotFound);
  });

  test("uses the first value of a repeated header", () => {
    assert.deepEqual(parseStatus({ "grpc-status": ["3", "4"], "grpc-message": ["first", "second"] }), {
      code: Code.InvalidArgument,
      message: "first",
    });
  });

  test("accepts a numeric header value", () => {
    assert.equal(parseStatus({ "grpc-status": 14 })?.code, Code.Unavailable);
  });

  test("treats an empty array as absent", () => {
    assert.equal(parseStatus({ "grpc-status": [] }), undefined);
  });
});

describe("httpStatusToCode", () => {
  const table: Array<[number, Code]> = [
    [400, Code.Internal],
    [401, Code.Unauthenticated],
    [403, Code.PermissionDenied],
    [404, Code.Unimplemented],
    [429, Code.Unavailable],
    [502, Code.Unavailable],
    [503, Code.Unavailable],
    [504, Code.Unavailable],
    [200, Code.Unknown],
    [302, Code.Unknown],
    [405, Code.Unknown],
    [415, Code.Unknown],
    [500, Code.Unknown],
    [0, Code.Unknown],
  ];
  for (const [status, code] of table) {
    test(`maps HTTP ${status} to ${codeName(code)}`, () => {
      assert.equal(httpStatusToCode(status), code);
    });
  }
});

describe("rstCodeToCode", () => {
  const table: Array<[string, number, Code]> = [
    ["NO_ERROR", 0x0, Code.Internal],
    ["PROTOCOL_ERROR", 0x1, Code.Internal],
    ["INTERNAL_ERROR", 0x2, Code.Internal],
    ["FLOW_CONTROL_ERROR", 0x3, Code.Internal],
    ["SETTINGS_TIMEOUT", 0x4, Code.Internal],
    ["STREAM_CLOSED", 0x5, Code.Internal],
    ["FRAME_SIZE_ERROR", 0x6, Code.Internal],
    ["REFUSED_STREAM", 0x7, Code.Unavailable],
    ["CANCEL", 0x8, Code.Canceled],
    ["COMPRESSION_ERROR", 0x9, Code.Internal],
    ["CONNECT_ERROR", 0xa, Code.Internal],
    ["ENHANCE_YOUR_CALM", 0xb, Code.ResourceExhausted],
    ["INADEQUATE_SECURITY", 0xc, Code.PermissionDenied],
    ["HTTP_1_1_REQUIRED", 0xd, Code.Internal],
    ["an unknown code", 0x1234, Code.Internal],
  ];
  for (const [name, errorCode, code] of table) {
    test(`maps RST_STREAM ${name} to ${codeName(code)}`, () => {
      assert.equal(rstCodeToCode(errorCode), code);
    });
  }
});

test("encodes a leading or trailing space so HTTP/2 does not trim it, and decodes it back", async () => {
  const { encodeStatusMessage, decodeStatusMessage } = await import("../../src/protocol/status.js");
  for (const message of [" lead", "trail ", "  both  ", " ", "in side"]) {
    const encoded = encodeStatusMessage(message);
    assert.ok(!encoded.startsWith(" ") && !encoded.endsWith(" "), `"${encoded}" has an edge space`);
    assert.equal(decodeStatusMessage(encoded), message);
  }
  assert.equal(encodeStatusMessage("in side"), "in side");
});
