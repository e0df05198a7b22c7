// The candidate side of a JavaScript test run: the same protocol as py_candidate.py, so the Python judge
// (py_judge.py) runs its test statements against JavaScript functions. Run as
// `node js_candidate.js REQUESTS_FD RESPONSES_FD` inside the sandbox. The program is evaluated in its own vm
// context; it only ever answers calls with values encoded in the codec's tagged JSON (see codec.py), and its
// console goes nowhere. Whatever it does in this process, it only chooses the values the judge receives.
"use strict";
const fs = require("fs");
const vm = require("vm");

const [requests, responses] = process.argv.slice(2).map(Number);

function readExactly(size) {
  const buffer = Buffer.alloc(size);
  let at = 0;
  while (at < size) {
    let n;
    try {
      n = fs.readSync(requests, buffer, at, size - at, null);
    } catch (error) {
      if (error.code === "EAGAIN") continue;
      throw error;
    }
    if (n === 0) return null;
    at += n;
  }
  return buffer;
}

function receive() {
  const header = readExactly(4);
  if (header === null) return null;
  const body = readExactly(header.readUInt32BE(0));
  return body === null ? null : JSON.parse(body.toString("utf8"));
}

function send(message) {
  const body = Buffer.from(JSON.stringify(message), "utf8");
  const header = Buffer.alloc(4);
  header.writeUInt32BE(body.length, 0);
  const frame = Buffer.concat([header, body]);
  let at = 0;
  while (at < frame.length) at += fs.writeSync(responses, frame, at, frame.length - at);
}

function encodeFloat(x) {
  if (Number.isNaN(x)) return { float: "nan" };
  if (!Number.isFinite(x)) return { float: x > 0 ? "inf" : "-inf" };
  return { float: String(x) };
}

function encode(value, depth = 0) {
  if (depth > 64) throw new TypeError("value is nested too deeply");
  if (value === null || value === undefined) return null;
  switch (typeof value) {
    case "boolean":
    case "string":
      return value;
    case "bigint":
      return { int: value.toString() };
    case "number":
      return Number.isSafeInteger(value) ? { int: String(value) } : encodeFloat(value);
  }
  // The program's values come from its own vm context (another realm): test kinds by tag, not instanceof.
  const kind = Object.prototype.toString.call(value);
  if (Array.isArray(value)) return { list: value.map((item) => encode(item, depth + 1)) };
  if (kind === "[object Set]") return { set: [...value].map((item) => encode(item, depth + 1)) };
  if (kind === "[object Map]") {
    return { dict: [...value].map(([k, v]) => [encode(k, depth + 1), encode(v, depth + 1)]) };
  }
  if (Buffer.isBuffer(value)) return { bytes: value.toString("hex") };
  const proto = Object.getPrototypeOf(value);
  if (kind === "[object Object]" && (proto === null || Object.getPrototypeOf(proto) === null)) {
    return { dict: Object.entries(value).map(([k, v]) => [k, encode(v, depth + 1)]) };
  }
  throw new TypeError(`a ${value.constructor ? value.constructor.name : "object"} is not a plain value`);
}

function decode(tree, depth = 0) {
  if (depth > 64) throw new TypeError("frame is nested too deeply");
  if (tree === null || typeof tree === "boolean" || typeof tree === "string") return tree;
  const [[tag, body]] = Object.entries(tree);
  switch (tag) {
    case "int": {
      const big = BigInt(body);
      return big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big;
    }
    case "float":
      if (body === "nan") return NaN;
      if (body === "inf" || body === "-inf") return body === "inf" ? Infinity : -Infinity;
      return body.includes("0x") ? hexFloat(body) : Number(body);
    case "list":
    case "tuple":
      return body.map((item) => decode(item, depth + 1));
    case "set":
    case "frozenset":
      return new Set(body.map((item) => decode(item, depth + 1)));
    case "dict": {
      const pairs = body.map(([k, v]) => [decode(k, depth + 1), decode(v, depth + 1)]);
      return pairs.every(([k]) => typeof k === "string") ? Object.fromEntries(pairs) : new Map(pairs);
    }
    case "bytes":
      return Buffer.from(body, "hex");
  }
  throw new TypeError(`no JavaScript value for a ${tag}`);
}

function hexFloat(text) {
  // Python's float.hex(): [-]0x1.<hex digits>p<exponent>
  const match = /^(-?)0x([0-9a-f]+)(?:\.([0-9a-f]*))?p([+-]?\d+)$/i.exec(text);
  if (!match) throw new TypeError(`bad float ${text}`);
  const [, sign, whole, fraction = "", exponent] = match;
  const mantissa = parseInt(whole + fraction || "0", 16) / 16 ** fraction.length;
  return (sign ? -1 : 1) * mantissa * 2 ** Number(exponent);
}

function describe(error) {
  const type = error && error.constructor && error.constructor.name ? error.constructor.name : "Error";
  return { type, message: String(error && error.message).slice(0, 300) };
}

function main() {
  const setup = receive();
  const silent = () => {};
  const quiet = { log: silent, error: silent, warn: silent, info: silent, debug: silent };
  const module = { exports: {} };
  const context = vm.createContext({ require, module, exports: module.exports, console: quiet, Buffer, process });
  try {
    vm.runInContext(setup.program, context, { filename: "program.js" });
  } catch (error) {
    send({ loaded: false, error: describe(error) });
    return;
  }
  const exported = typeof module.exports === "function" ? {} : module.exports;
  const functions = new Map();
  for (const [name, value] of [...Object.entries(exported), ...Object.entries(context)]) {
    if (typeof value === "function" && name !== "require") functions.set(name, value);
  }
  send({ loaded: true, callables: [...functions.keys()].sort() });
  for (let request = receive(); request !== null; request = receive()) {
    let answer;
    try {
      const fn = functions.get(request.name);
      if (fn === undefined) throw new ReferenceError(`${request.name} is not defined`);
      if (decode(request.kwargs) instanceof Map || Object.keys(decode(request.kwargs)).length) {
        throw new TypeError("JavaScript functions take no keyword arguments");
      }
      answer = { value: encode(fn(...decode(request.args))) };
    } catch (error) {
      answer = { raised: describe(error) };
    }
    send(answer);
  }
}

main();
