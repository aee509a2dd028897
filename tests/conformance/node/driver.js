#!/usr/bin/env node
// Drives the official Node clients for tests/conformance: one JSON call per stdin line, one JSON
// outcome per stdout line. Nothing here touches the wire: the SDKs build, sign and parse everything.
//
// call:    {"client": "tea" | "popcore", "endpoint": "127.0.0.1:PORT", "keyId", "secret", "token"?,
//           "signatureAlgorithm"?: "v2", "nonce"?, "timestamp"?, "params": {"SourceImageType": ...}}
// outcome: {"ok": true, "status", "code", "score", "thresholds", "requestId", "model"}
//          {"ok": false, "status", "code", "errorType", "message", "requestId"}
'use strict';

const readline = require('readline');
const Cloudauth = require('@alicloud/cloudauth20190307');
const OpenApi = require('@alicloud/openapi-core');
const RPCClient = require('@alicloud/pop-core').RPCClient;

const TeaClient = Cloudauth.default;
const TeaUtils = OpenApi.$OpenApiUtil.default; // where the Tea client gets its nonce and timestamp
const realNonce = TeaUtils.getNonce;
const realTimestamp = TeaUtils.getTimestamp;

function camel(name) {
  return name.charAt(0).toLowerCase() + name.slice(1);
}

async function callTea(call) {
  const config = new OpenApi.$OpenApiUtil.Config({
    accessKeyId: call.keyId,
    accessKeySecret: call.secret,
    endpoint: call.endpoint,
    protocol: 'http',
  });
  if (call.token) config.securityToken = call.token;
  if (call.signatureAlgorithm) config.signatureAlgorithm = call.signatureAlgorithm;
  const client = new TeaClient(config);
  const fields = {};
  for (const [name, value] of Object.entries(call.params)) fields[camel(name)] = value;
  TeaUtils.getNonce = call.nonce ? () => call.nonce : realNonce;
  TeaUtils.getTimestamp = call.timestamp ? () => call.timestamp : realTimestamp;
  try {
    const response = await client.compareFaces(new Cloudauth.CompareFacesRequest(fields));
    const body = response.body;
    const typed = response instanceof Cloudauth.CompareFacesResponse
      && body instanceof Cloudauth.CompareFacesResponseBody
      && body.data instanceof Cloudauth.CompareFacesResponseBodyData;
    return {
      ok: true,
      status: response.statusCode,
      code: body.code,
      success: body.success,
      score: body.data.similarityScore,
      thresholds: body.data.confidenceThresholds,
      requestId: body.requestId,
      model: typed ? 'CompareFacesResponse' : 'untyped',
    };
  } catch (err) {
    if (!(err instanceof OpenApi.AlibabaCloudError)) throw err;
    return {
      ok: false,
      status: err.statusCode,
      code: err.code,
      errorType: err.constructor.name,
      message: err.message,
      requestId: err.requestId || (err.data && err.data.RequestId) || '',
    };
  } finally {
    TeaUtils.getNonce = realNonce;
    TeaUtils.getTimestamp = realTimestamp;
  }
}

async function callPopCore(call) {
  const client = new RPCClient({
    accessKeyId: call.keyId,
    accessKeySecret: call.secret,
    securityToken: call.token || undefined,
    endpoint: `http://${call.endpoint}`,
    apiVersion: '2019-03-07',
    codes: ['1'], // CompareFaces answers Code "1" on success
  }, true); // verbose: also return the HTTP exchange, for the status code
  const params = { ...call.params };
  // pop-core lets request parameters override its own Timestamp and SignatureNonce.
  if (call.nonce) params.SignatureNonce = call.nonce;
  if (call.timestamp) params.Timestamp = call.timestamp;
  try {
    const [body, entry] = await client.request('CompareFaces', params, { method: 'POST', timeout: 60000 });
    return {
      ok: true,
      status: entry.response.statusCode,
      code: body.Code,
      success: body.Success,
      score: body.Data.SimilarityScore,
      thresholds: body.Data.ConfidenceThresholds,
      requestId: body.RequestId,
      model: 'json',
    };
  } catch (err) {
    if (!err.entry) throw err;
    return {
      ok: false,
      status: err.entry.response.statusCode,
      code: err.code,
      errorType: err.name,
      message: err.message,
      requestId: (err.data && err.data.RequestId) || '',
    };
  }
}

async function handle(line) {
  const call = JSON.parse(line);
  try {
    return await (call.client === 'popcore' ? callPopCore(call) : callTea(call));
  } catch (err) {
    return { ok: false, status: 0, code: 'DriverError', errorType: err.constructor.name, message: String(err.stack || err) };
  }
}

const lines = readline.createInterface({ input: process.stdin, terminal: false });
let queue = Promise.resolve();
lines.on('line', (line) => {
  if (!line.trim()) return;
  queue = queue.then(async () => {
    process.stdout.write(JSON.stringify(await handle(line)) + '\n');
  });
});
