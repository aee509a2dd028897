// The demo page: pick two photos, send the real CompareFaces call to POST / (its answer is shown
// as received) and the same request to POST /demo/analysis (faces, landmarks, crops), draw both.
// No dependencies, no build step; nothing leaves this server.
"use strict";

const API_VERSION = "2019-03-07";
const SIDES = ["source", "target"];
const FAR_LABELS = { "0.01": "1 in 100", "0.001": "1 in 1,000", "0.0001": "1 in 10,000" };
const state = { source: null, target: null, config: null, running: false, again: false };

const $ = (id) => document.getElementById(id);

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// ---- RPC v1 signatures (HMAC-SHA1), for servers that check them ----

function sha1(bytes) {
  const length = bytes.length;
  const padded = ((length + 9 + 63) >> 6) << 6;
  const message = new Uint8Array(padded);
  message.set(bytes);
  message[length] = 0x80;
  const view = new DataView(message.buffer);
  view.setUint32(padded - 4, (length * 8) >>> 0);
  view.setUint32(padded - 8, Math.floor((length * 8) / 2 ** 32));
  const h = [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0];
  const w = new Uint32Array(80);
  for (let offset = 0; offset < padded; offset += 64) {
    for (let i = 0; i < 16; i++) w[i] = view.getUint32(offset + i * 4);
    for (let i = 16; i < 80; i++) {
      const x = w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16];
      w[i] = (x << 1) | (x >>> 31);
    }
    let [a, b, c, d, e] = h;
    for (let i = 0; i < 80; i++) {
      let f, k;
      if (i < 20) { f = (b & c) | (~b & d); k = 0x5a827999; }
      else if (i < 40) { f = b ^ c ^ d; k = 0x6ed9eba1; }
      else if (i < 60) { f = (b & c) | (b & d) | (c & d); k = 0x8f1bbcdc; }
      else { f = b ^ c ^ d; k = 0xca62c1d6; }
      const t = (((a << 5) | (a >>> 27)) + f + e + k + w[i]) >>> 0;
      e = d; d = c; c = ((b << 30) | (b >>> 2)) >>> 0; b = a; a = t;
    }
    h[0] = (h[0] + a) >>> 0; h[1] = (h[1] + b) >>> 0; h[2] = (h[2] + c) >>> 0;
    h[3] = (h[3] + d) >>> 0; h[4] = (h[4] + e) >>> 0;
  }
  const out = new Uint8Array(20);
  const outView = new DataView(out.buffer);
  h.forEach((value, i) => outView.setUint32(i * 4, value));
  return out;
}

function concat(a, b) {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

function hmacSha1(key, message) {
  const block = new Uint8Array(64);
  block.set(key.length > 64 ? sha1(key) : key);
  const inner = sha1(concat(block.map((x) => x ^ 0x36), message));
  return sha1(concat(block.map((x) => x ^ 0x5c), inner));
}

function pct(text) {  // RFC 3986: only A-Z a-z 0-9 - _ . ~ stay
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase());
}

function signRpc(params, keyId, secret) {
  const nonce = Array.from(crypto.getRandomValues(new Uint8Array(16)), (x) => x.toString(16).padStart(2, "0")).join("");
  const signed = {
    ...params,
    AccessKeyId: keyId,
    SignatureMethod: "HMAC-SHA1",
    SignatureVersion: "1.0",
    SignatureNonce: nonce,
    Timestamp: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
  };
  const canonical = Object.keys(signed).sort().map((k) => pct(k) + "=" + pct(signed[k])).join("&");
  const encoder = new TextEncoder();
  const digest = hmacSha1(encoder.encode(secret + "&"), encoder.encode("POST&%2F&" + pct(canonical)));
  signed.Signature = btoa(String.fromCharCode(...digest));
  return signed;
}

// ---- requests ----

async function post(path, params) {
  let body = params;
  if (state.config && state.config.signatures) body = signRpc(params, $("key-id").value.trim(), $("key-secret").value);
  const response = await fetch(path, { method: "POST", body: new URLSearchParams(body) });
  return {
    status: response.status,
    text: await response.text(),
    requestId: response.headers.get("x-acs-request-id"),
    retryAfter: response.headers.get("x-acs-retry-after"),
  };
}

function requestParams() {
  return {
    Action: "CompareFaces",
    Version: API_VERSION,
    Format: "JSON",
    SourceImageType: $("type-source").value,
    SourceImageValue: state.source.value,
    TargetImageType: $("type-target").value,
    TargetImageValue: state.target.value,
  };
}

function parseJson(text) {
  try { return JSON.parse(text); } catch (error) { return null; }
}

async function compare() {
  if (!state.source || !state.target) return;
  if (state.running) {  // a photo or type changed meanwhile: compare again when this one is done
    state.again = true;
    return;
  }
  state.running = true;
  state.again = false;
  $("compare").disabled = true;
  $("status").textContent = "comparing…";
  document.body.dataset.state = "running";
  try {
    const params = requestParams();
    const [api, analysis] = await Promise.all([post("/", params), post("/demo/analysis", params)]);
    render(api, analysis);
    $("status").textContent = "";
  } catch (error) {
    $("status").textContent = "request failed: " + error;
  } finally {
    state.running = false;
    $("compare").disabled = false;
    if (state.again) compare(); else document.body.dataset.state = "done";
  }
}

// ---- rendering ----

function clearOverlay(side) {
  $("overlay-" + side).replaceChildren();
  $("faces-" + side).replaceChildren();
}

function drawFaces(side, image) {
  const overlay = $("overlay-" + side);
  const caption = $("faces-" + side);
  clearOverlay(side);
  if (image.width > 0) {
    // The compared face last, so that it is drawn on top.
    const order = image.faces.map((_, i) => i).sort((a, b) => (a === image.compared) - (b === image.compared));
    for (const index of order) {
      const face = image.faces[index];
      const [x1, y1, x2, y2] = face.box;
      const box = el("div", index === image.compared ? "box compared" : "box other");
      box.style.left = (100 * x1) / image.width + "%";
      box.style.top = (100 * y1) / image.height + "%";
      box.style.width = (100 * (x2 - x1)) / image.width + "%";
      box.style.height = (100 * (y2 - y1)) / image.height + "%";
      box.dataset.score = face.score;
      box.append(el("span", "label", index === image.compared ? "compared (largest)" : "face " + face.score.toFixed(2)));
      overlay.append(box);
      face.landmarks.forEach(([x, y], i) => {
        const dot = el("i", "landmark l" + i);
        dot.style.left = (100 * x) / image.width + "%";
        dot.style.top = (100 * y) / image.height + "%";
        overlay.append(dot);
      });
    }
  }
  const count = image.faces.length;
  if (count) {
    caption.append(count === 1 ? "1 face found; it is compared." : count + " faces found; the largest (green) is compared.");
  }
  if (image.error) {
    caption.append(el("span", "error-code", " " + image.error.Code), " " + image.error.Message);
  }
  const crop = $("crop-" + side);
  if (image.crop) crop.src = image.crop; else crop.removeAttribute("src");
  crop.closest("figure").hidden = !image.crop;
}

function showError(code, message) {
  $("error").hidden = false;
  $("error-code").textContent = code;
  $("error-message").textContent = shorten(message);
}

// A signature error quotes the whole string to sign (images included): show its start only.
function shorten(message) {
  return message.length > 300
    ? message.slice(0, 300) + "… (" + message.length + " characters: all of it in the API response below)"
    : message;
}

function drawScale(score, thresholds) {
  $("score").textContent = score.toFixed(2);
  $("score-marker").style.left = Math.max(0, Math.min(100, score)) + "%";
  const ticks = $("ticks");
  ticks.replaceChildren();
  const rows = $("verdicts").querySelector("tbody");
  rows.replaceChildren();
  let strictest = null;
  const fars = Object.keys(thresholds).sort((a, b) => Number(b) - Number(a));
  for (const far of fars) {
    const threshold = Number(thresholds[far]);
    const tick = el("div", "tick");
    tick.dataset.far = far;
    tick.style.left = threshold + "%";
    tick.append(el("span", "", "FAR " + far + ": " + thresholds[far]));
    ticks.append(tick);
    const same = score >= threshold;
    if (same) strictest = far;
    const row = el("tr");
    row.dataset.far = far;
    row.append(el("td", "", far + " (" + (FAR_LABELS[far] || far) + ")"), el("td", "", thresholds[far]),
      el("td", same ? "same" : "different", same ? "same person" : "different people"));
    rows.append(row);
  }
  $("verdict").textContent = strictest ? "— same person at FAR " + strictest : "— not the same person at any FAR";
}

function render(api, analysis) {
  $("result").hidden = false;
  $("error").hidden = true;
  $("outcome").hidden = true;
  $("engine-note").hidden = true;
  $("analysis-error").hidden = true;
  $("thresholds-why").hidden = true;
  $("api-status").textContent = "(HTTP " + api.status + (api.requestId ? ", x-acs-request-id " + api.requestId : "") +
    (api.retryAfter ? ", x-acs-retry-after " + api.retryAfter : "") + ")";
  $("api-json").textContent = api.text;

  const answer = parseJson(api.text);
  let score = null;
  if (answer && answer.Success && answer.Data) {
    score = Number(answer.Data.SimilarityScore);
    drawScale(score, parseJson(answer.Data.ConfidenceThresholds) || {});
    $("outcome").hidden = false;
  } else if (answer && answer.Code) {
    showError(answer.Code, answer.Message || "");
  } else {
    showError("HTTP " + api.status, api.text.slice(0, 200));
  }

  const details = parseJson(analysis.text);
  if (analysis.status === 200 && details) {
    SIDES.forEach((side) => drawFaces(side, details[side]));
    const why = details.comparison ? details.comparison.thresholds_why : null;
    $("thresholds-why").hidden = !why;
    $("thresholds-why").textContent = why ? "Why these thresholds: " + why + "." : "";
    $("crops").hidden = !(details.source.crop || details.target.crop);
    const measured = details.comparison ? details.comparison.score : null;
    if (score !== null && measured !== null && Math.abs(measured - score) > 0.0001) {
      $("engine-note").hidden = false;
      $("engine-note").textContent = "The API answered " + score + "; the engine measured " + measured +
        " for these photos (a fault injection rule answered instead).";
    }
  } else {
    SIDES.forEach(clearOverlay);
    $("crops").hidden = true;
    $("analysis-error").hidden = false;
    $("analysis-error").textContent = "No face analysis: " + (details && details.Code ? details.Code + " " + shorten(details.Message) : "HTTP " + analysis.status);
  }
  renderSnippets();
}

function shellQuote(text) {
  return "'" + text.replace(/'/g, "'\\''") + "'";
}

function renderSnippets() {
  const origin = location.origin;
  const source = state.source.name, target = state.target.name;
  const st = $("type-source").value, tt = $("type-target").value;
  const signNote = state.config && state.config.signatures
    ? "# This server checks signatures: an unsigned curl call is refused (MissingParameter). Use an SDK.\n" : "";
  $("curl").textContent = signNote +
    "curl -s " + origin + "/ \\\n" +
    "  -d Action=CompareFaces -d Version=" + API_VERSION + " \\\n" +
    "  -d SourceImageType=" + st + " --data-urlencode \"SourceImageValue=base64://$(base64 -w0 " + shellQuote(source) + ")\" \\\n" +
    "  -d TargetImageType=" + tt + " --data-urlencode \"TargetImageValue=base64://$(base64 -w0 " + shellQuote(target) + ")\"";
  $("python").textContent = [
    "# pip install alibabacloud-cloudauth20190307",
    "import base64, json, os",
    "from alibabacloud_cloudauth20190307 import models",
    "from alibabacloud_cloudauth20190307.client import Client",
    "from alibabacloud_tea_openapi import models as open_api_models",
    "",
    "def image(path):",
    "    return \"base64://\" + base64.b64encode(open(path, \"rb\").read()).decode()",
    "",
    "client = Client(open_api_models.Config(",
    "    access_key_id=os.environ[\"ALIBABA_CLOUD_ACCESS_KEY_ID\"],  " + (state.config && state.config.signatures ? "# a key of this server" : "# any value: this server does not check signatures"),
    "    access_key_secret=os.environ[\"ALIBABA_CLOUD_ACCESS_KEY_SECRET\"],",
    "    endpoint=" + JSON.stringify(location.host) + ", protocol=" + JSON.stringify(location.protocol.replace(":", "")) + ",",
    "))",
    "response = client.compare_faces(models.CompareFacesRequest(",
    "    source_image_type=" + JSON.stringify(st) + ", source_image_value=image(" + JSON.stringify(source) + "),",
    "    target_image_type=" + JSON.stringify(tt) + ", target_image_value=image(" + JSON.stringify(target) + "),",
    "))",
    "print(response.body.data.similarity_score, json.loads(response.body.data.confidence_thresholds))",
  ].join("\n");
}

// ---- inputs ----

function pick(side, file) {
  if (!file) return;
  const reader = new FileReader();
  reader.onload = () => {
    const url = String(reader.result);
    state[side] = { name: file.name, value: "base64://" + url.slice(url.indexOf(",") + 1) };
    if (url.startsWith("data:image/")) $("img-" + side).src = url; else $("img-" + side).removeAttribute("src");
    clearOverlay(side);
    $("crop-" + side).removeAttribute("src");
    $("name-" + side).textContent = file.name + " (" + Math.round(file.size / 1024) + " KB)";
    $("compare").disabled = !(state.source && state.target);
    compare();
  };
  reader.readAsDataURL(file);
}

function wire(side) {
  const drop = $("drop-" + side);
  const input = $("file-" + side);
  input.addEventListener("change", () => pick(side, input.files[0]));
  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    pick(side, event.dataTransfer.files[0]);
  });
  $("type-" + side).addEventListener("change", compare);
}

async function start() {
  SIDES.forEach(wire);
  $("compare").addEventListener("click", compare);
  const response = await fetch("/demo/config");
  state.config = await response.json();
  $("server-info").textContent = "model " + state.config.model + " · signatures " +
    (state.config.signatures ? "checked (enter a key below)" : "not checked (open mode)");
  $("keys").hidden = !state.config.signatures;
  if (state.config.faults) {
    $("faults-banner").hidden = false;
    $("faults-banner").textContent = "Fault injection is on: " + state.config.faults;
  }
  document.body.dataset.state = "ready";
}

start();
