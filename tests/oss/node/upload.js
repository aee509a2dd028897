#!/usr/bin/env node
// The upload flow from Node for tests/oss: one JSON call on stdin, one JSON outcome on stdout.
// Nothing here touches the wire: the official SDKs build, sign and parse everything.
//
// call:    {"cloudauth"?: {"endpoint", "keyId", "secret"},          // token from @alicloud/cloudauth20190307
//           "token"?: {Bucket, EndPoint, Path, Key, Secret, Token},    // or one given by the test
//           "v4": bool, "bucket"?, "key": "<name under Path>" or "/<absolute key>", "file", "secret"?}
// outcome: {"ok": true, "status", "etag", "requestId", "token"}
//          {"ok": false, "status", "code", "message", "requestId", "hostId", "token"}
'use strict';

const fs = require('fs');
const https = require('https');
const path = require('path');
const OSS = require('ali-oss');

async function describeToken(call) {
  // The Tea client is installed beside the conformance driver (scripts/install-node-sdks.sh).
  const modules = path.join(__dirname, '..', '..', 'conformance', 'node', 'node_modules');
  const Cloudauth = require(path.join(modules, '@alicloud', 'cloudauth20190307'));
  const OpenApi = require(path.join(modules, '@alicloud', 'openapi-core'));
  const client = new Cloudauth.default(new OpenApi.$OpenApiUtil.Config({
    accessKeyId: call.keyId, accessKeySecret: call.secret, endpoint: call.endpoint, protocol: call.protocol || 'http',
  }));
  const { body } = await client.describeOssUploadToken();
  const t = body.ossUploadToken;
  return { Bucket: t.bucket, EndPoint: t.endPoint, Path: t.path, Key: t.key, Secret: t.secret, Token: t.token, Expired: t.expired };
}

// Names from the test (e.g. {"localhost": "127.0.0.1"}), never the system resolver.
function injectedLookup(names) {
  return (hostname, options, callback) => {
    const address = names[hostname];
    if (!address) return callback(new Error(`no injected address for ${hostname}`));
    return options && options.all ? callback(null, [{ address, family: 4 }]) : callback(null, address, 4);
  };
}

async function main() {
  const call = JSON.parse(fs.readFileSync(0, 'utf8'));
  const token = call.token || await describeToken(call.cloudauth);
  const client = new OSS({
    endpoint: token.EndPoint,
    region: 'oss-cn-hangzhou',
    accessKeyId: token.Key,
    accessKeySecret: call.secret || token.Secret,
    stsToken: token.Token,
    bucket: call.bucket || token.Bucket,
    authorizationV4: Boolean(call.v4),
    timeout: 30000,
    sldEnable: Boolean(call.pathStyle), // /<bucket>/<key> to a host name endpoint (HTTPS: the name the certificate has)
    ...(call.resolve ? { httpsAgent: new https.Agent({ lookup: injectedLookup(call.resolve) }) } : {}),
  });
  const name = call.key.startsWith('/') ? call.key.slice(1) : `${token.Path}/${call.key}`;
  try {
    const result = await client.put(name, fs.readFileSync(call.file));
    return { ok: true, status: result.res.status, etag: result.res.headers.etag, requestId: result.res.headers['x-oss-request-id'], token };
  } catch (err) {
    if (!err.status) throw err;
    return { ok: false, status: err.status, code: err.code, message: err.message, requestId: err.requestId, hostId: err.hostId, token };
  }
}

main().then(
  outcome => process.stdout.write(JSON.stringify(outcome) + '\n'),
  err => { process.stdout.write(JSON.stringify({ ok: false, status: 0, code: 'ClientError', message: String(err && err.stack || err) }) + '\n'); },
);
