#!/usr/bin/env node
// Drives the official Node clients for tests/conformance: one JSON call per stdin line, one JSON
// outcome per stdout line. Nothing here touches the wire: the SDKs build, sign and parse everything.
//
// call:    {"client": "tea" | "openapi-client" | "popcore" | "popcore-1.5", "endpoint": "127.0.0.1:PORT",
//           "keyId", "secret", "token"?, "signatureAlgorithm"?: "v2" | "ACS3-HMAC-SM3" | ...,
//           "placement"?: "body" | "query", "format"?: "XML", "nonce"?, "timestamp"?,
//           "params": {"SourceImageType": ...}}
//          {"client": "versions"}
// outcome: {"ok": true, "status", "code", "score", "thresholds", "requestId", "model"}
//          {"ok": false, "status", "code", "errorType", "message", "requestId"}
'use strict';

const readline = require('readline');
const Cloudauth = require('@alicloud/cloudauth20190307');
const OpenApi = require('@alicloud/openapi-core');
const $dara = require('@darabonba/typescript');
const OpenApiClient = require('@alicloud/openapi-client');
const TeaUtilOfOpenApiClient = require('@alicloud/openapi-client/node_modules/@alicloud/tea-util');
const RPCClient = require('@alicloud/pop-core').RPCClient;
const RPCClientOld = require('pop-core-1.5').RPCClient; // 1.5: every parameter in the URL

const TeaClient = Cloudauth.default;
const TeaUtils = OpenApi.$OpenApiUtil.default; // where the Tea client gets its nonce and timestamp
const realNonce = TeaUtils.getNonce;
const realTimestamp = TeaUtils.getTimestamp;

function camel(name) {
  return name.charAt(0).toLowerCase() + name.slice(1);
}

function versions() {
  const names = ['@alicloud/cloudauth20190307', '@alicloud/openapi-core', '@alicloud/openapi-client',
    '@alicloud/pop-core', 'pop-core-1.5', '@alicloud/credentials'];
  const found = {};
  for (const name of names) {
    try { found[name] = require(`${name}/package.json`).version; } catch (err) { /* absent */ }
  }
  return { ok: true, versions: found };
}

function fromBody(body, status, model) {
  return {
    ok: true,
    status,
    code: body.Code,
    success: body.Success,
    score: body.Data.SimilarityScore,
    thresholds: body.Data.ConfidenceThresholds,
    requestId: body.RequestId,
    model,
  };
}

function teaFailure(err) {
  return {
    ok: false,
    status: err.statusCode || (err.data && err.data.statusCode) || 0,
    code: err.code || '',
    errorType: err.constructor.name,
    message: err.message,
    requestId: err.requestId || (err.data && (err.data.RequestId || err.data.requestId)) || '',
  };
}

function otherFailure(err) {
  // Not the SDK's own error (a body it could not parse, say): reported as it is.
  const type = (err && (err.name || (err.constructor && err.constructor.name))) || typeof err;
  return { ok: false, status: 0, code: '', errorType: type, message: String((err && err.message) || err), requestId: '' };
}

async function callTea(call) {
  const config = new OpenApi.$OpenApiUtil.Config({
    accessKeyId: call.keyId,
    accessKeySecret: call.secret,
    endpoint: call.endpoint,
    protocol: call.protocol || 'http', // https: the CA is trusted through NODE_EXTRA_CA_CERTS
  });
  if (call.token) config.securityToken = call.token;
  if (call.signatureAlgorithm) config.signatureAlgorithm = call.signatureAlgorithm;
  const client = new TeaClient(config);
  const fields = {};
  for (const [name, value] of Object.entries(call.params)) fields[camel(name)] = value;
  const runtime = new $dara.RuntimeOptions({});
  if (call.format) { // only through the runtime's extra query parameters
    runtime.extendsParameters = new $dara.ExtendsParameters({ queries: { Format: call.format } });
  }
  TeaUtils.getNonce = call.nonce ? () => call.nonce : realNonce;
  TeaUtils.getTimestamp = call.timestamp ? () => call.timestamp : realTimestamp;
  try {
    const response = await client.compareFacesWithOptions(new Cloudauth.CompareFacesRequest(fields), runtime);
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
    if (!(err instanceof OpenApi.AlibabaCloudError)) return otherFailure(err);
    return teaFailure(err);
  } finally {
    TeaUtils.getNonce = realNonce;
    TeaUtils.getTimestamp = realTimestamp;
  }
}

async function callOpenApiClient(call) {
  // @alicloud/openapi-client's generic callApi (RPC style), parameters in the body or the query string.
  const config = new OpenApiClient.Config({
    accessKeyId: call.keyId,
    accessKeySecret: call.secret,
    endpoint: call.endpoint,
    protocol: call.protocol || 'http', // https: the CA is trusted through NODE_EXTRA_CA_CERTS
  });
  if (call.token) config.securityToken = call.token;
  if (call.signatureAlgorithm) config.signatureAlgorithm = call.signatureAlgorithm;
  const client = new OpenApiClient.default(config);
  const params = new OpenApiClient.Params({
    action: 'CompareFaces',
    version: '2019-03-07',
    protocol: 'HTTPS',
    pathname: '/',
    method: 'POST',
    authType: 'AK',
    style: 'RPC',
    reqBodyType: 'formData',
    bodyType: call.format ? 'string' : 'json',
  });
  const query = call.format ? { Format: call.format } : {};
  const request = call.placement === 'query'
    ? new OpenApiClient.OpenApiRequest({ query: { ...query, ...call.params } })
    : new OpenApiClient.OpenApiRequest({ query, body: { ...call.params } });
  try {
    const result = await client.callApi(params, request, new TeaUtilOfOpenApiClient.RuntimeOptions({}));
    if (call.format) return { ok: true, status: result.statusCode, code: 'xml', model: 'string', body: result.body };
    return fromBody(result.body, result.statusCode, 'object');
  } catch (err) {
    if (err.code === undefined) return otherFailure(err);
    return teaFailure(err);
  }
}

async function callPopCore(call) {
  const Client = call.client === 'popcore-1.5' ? RPCClientOld : RPCClient;
  const client = new Client({
    accessKeyId: call.keyId,
    accessKeySecret: call.secret,
    securityToken: call.token || undefined,
    endpoint: `${call.protocol || 'http'}://${call.endpoint}`,
    apiVersion: '2019-03-07',
    codes: ['1'], // CompareFaces answers Code "1" on success
  }, true); // verbose: also return the HTTP exchange, for the status code
  const params = { ...call.params };
  if (call.format) params.Format = call.format; // pop-core lets parameters override its own
  // pop-core lets request parameters override its own Timestamp and SignatureNonce.
  if (call.nonce) params.SignatureNonce = call.nonce;
  if (call.timestamp) params.Timestamp = call.timestamp;
  try {
    const [body, entry] = await client.request('CompareFaces', params, { method: 'POST', timeout: 60000 });
    return fromBody(body, entry.response.statusCode, 'json');
  } catch (err) {
    if (!err.entry) return otherFailure(err);
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

const CLIENTS = {
  tea: callTea,
  'openapi-client': callOpenApiClient,
  popcore: callPopCore,
  'popcore-1.5': callPopCore,
};

async function handle(line) {
  const call = JSON.parse(line);
  if (call.client === 'versions') return versions();
  try {
    return await CLIENTS[call.client](call);
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
