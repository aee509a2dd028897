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
      box.title = "the detector is " + Math.round(100 * face.score) + "% sure this is a face";
      // A label on a box in the right half hangs leftwards, so that it stays on the photo.
      const label = el("span", x1 > image.width / 2 ? "label right" : "label",
        index === image.compared ? "compared (largest)" : "other face");
      box.append(label);
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
    const sure = image.faces.map((face) => Math.round(100 * face.score) + "%").join(", ");
    caption.append(el("span", "muted detector", " The detector is " + sure + " sure " +
      (count === 1 ? "it is a face." : "these are faces.")));
  }
  if (image.error) {
    const words = image.error.Code === "InvalidParam.ImageValuePatternError"
      ? "this file is not a photo this server can read (JPEG, PNG, BMP or WebP)." : image.error.Message;
    caption.append(el("span", "error-code", " " + image.error.Code), " " + words);
  }
  const crop = $("crop-" + side);
  if (image.crop) crop.src = image.crop; else crop.removeAttribute("src");
  crop.closest("figure").hidden = !image.crop;
}

function showError(code, message) {
  $("error").hidden = false;
  $("error-code").textContent = code;
  $("error-message").textContent = shorten(message);
  const why = explainError(code);
  $("error-why").hidden = !why;
  $("error-why").textContent = why;
}

// A signature error quotes the whole string to sign (images included): show its start only.
function shorten(message) {
  return message.length > 300
    ? message.slice(0, 300) + "… (" + message.length + " characters: all of it in the API response below)"
    : message;
}

// What a score means, in words: how many pairs of strangers score at least this high.
function verdictWords(score, thresholds) {
  const t = (far) => Number(thresholds[far]);
  if (score >= t("0.0001")) return { level: "strict", text: "Same person: fewer than 1 in 10,000 pairs of strangers score this high." };
  if (score >= t("0.001")) return { level: "same", text: "Same person: fewer than 1 in 1,000 pairs of strangers score this high (not enough for 1 in 10,000)." };
  if (score >= t("0.01")) return { level: "unsure", text: "Unsure: up to 1 in 100 pairs of strangers score this high; most apps would not accept it." };
  return { level: "different", text: "Different people: more than 1 in 100 pairs of strangers score this high." };
}

function drawScale(score, thresholds) {
  $("score").textContent = score.toFixed(2);
  $("score-marker").style.left = Math.max(0, Math.min(100, score)) + "%";
  const ticks = $("ticks");
  ticks.replaceChildren();
  const rows = $("verdicts").querySelector("tbody");
  rows.replaceChildren();
  const fars = Object.keys(thresholds).sort((a, b) => Number(b) - Number(a));
  for (const far of fars) {
    const threshold = Number(thresholds[far]);
    const tick = el("div", "tick");
    tick.dataset.far = far;
    tick.style.left = threshold + "%";
    tick.title = (FAR_LABELS[far] || far) + " strangers score " + thresholds[far] + " or more";
    tick.append(el("span", "", thresholds[far]));
    ticks.append(tick);
    const same = score >= threshold;
    const row = el("tr");
    row.dataset.far = far;
    row.append(el("td", "", (FAR_LABELS[far] || far) + " strangers"), el("td", "", thresholds[far]),
      el("td", same ? "same" : "different", same ? "same person" : "different people"));
    rows.append(row);
  }
  // The bar's colours are the thresholds' meaning: red below 1 in 100, amber up to 1 in 1,000, greens above.
  const [loose, middle, strict] = ["0.01", "0.001", "0.0001"].map((far) => Number(thresholds[far]) + "%");
  $("bar").style.background = "linear-gradient(to right, #f04438 0 " + loose + ", #fdb022 " + loose + " " + middle +
    ", #6ce9a6 " + middle + " " + strict + ", #12b76a " + strict + " 100%)";
  const words = verdictWords(score, thresholds);
  $("verdict").textContent = words.text;
  $("verdict").dataset.level = words.level;
}

function sizeText(bytes) {
  if (bytes < 1024) return bytes + (bytes === 1 ? " byte" : " bytes");
  if (bytes < 1024 * 1024) return (bytes / 1024).toFixed(1) + " KB";
  return (bytes / (1024 * 1024)).toFixed(1) + " MB";
}

// The API's codes are terse ("pattern of value"): say in words what was wrong, and which setting decides.
function explainError(code) {
  if (code !== "InvalidParam.ImageValuePatternError") {
    if (code === "Error.NoFaceDetected") return "No face was found in one of the photos (see below which one).";
    return "";
  }
  const cap = state.config ? state.config.max_image_bytes : null;
  const big = SIDES.filter((side) => state[side] && cap && state[side].size > cap);
  if (big.length) {
    return big.map((side) => "The " + side + " photo is " + sizeText(state[side].size)).join("; ") +
      ": this server takes at most " + sizeText(cap) + " per image (COMPAREFACES_MAX_IMAGE_BYTES; the API advises 2 MB).";
  }
  const body = state.config && state.config.max_body_bytes;
  const sent = SIDES.reduce((sum, side) => sum + (state[side] ? state[side].value.length : 0), 0);
  if (body && sent > body * 0.95) {
    return "Both photos together make a request of about " + sizeText(sent) + ": requests are capped at " +
      sizeText(body) + " (COMPAREFACES_MAX_BODY_BYTES). Use smaller photos.";
  }
  return "One of the files is not a photo this server can read: it takes JPEG, PNG, BMP and WebP images.";
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
  // Each image goes through a file: one shell argument holds at most 128 KiB on Linux, and a photo's
  // base64 is more. `base64 < f | tr -d '\n'` is the same on Linux and macOS.
  $("curl").textContent = signNote +
    "for f in " + shellQuote(source) + " " + shellQuote(target) + "; do { printf 'base64://'; base64 < \"$f\" | tr -d '\\n'; } > \"$f.b64\"; done\n" +
    "curl -s " + origin + "/ \\\n" +
    "  -d Action=CompareFaces -d Version=" + API_VERSION + " \\\n" +
    "  -d SourceImageType=" + st + " --data-urlencode SourceImageValue@" + shellQuote(source + ".b64") + " \\\n" +
    "  -d TargetImageType=" + tt + " --data-urlencode TargetImageValue@" + shellQuote(target + ".b64");
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
    ...(state.config && state.config.signatures ? [
      "    access_key_id=os.environ[\"ALIBABA_CLOUD_ACCESS_KEY_ID\"],  # a key of this server",
      "    access_key_secret=os.environ[\"ALIBABA_CLOUD_ACCESS_KEY_SECRET\"],",
    ] : [
      "    access_key_id=\"any\", access_key_secret=\"any\",  # this server does not check signatures (open mode)",
    ]),
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
    state[side] = { name: file.name, size: file.size, value: "base64://" + url.slice(url.indexOf(",") + 1) };
    if (url.startsWith("data:image/")) $("img-" + side).src = url; else $("img-" + side).removeAttribute("src");
    clearOverlay(side);
    $("crop-" + side).removeAttribute("src");
    $("name-" + side).textContent = file.name + " (" + sizeText(file.size) + ")";
    $("compare").disabled = !(state.source && state.target);
    if (keysMissing()) {  // signing needs a key: wait for it rather than send a request bound to fail
      $("status").textContent = "enter the AccessKeyId and secret, then Compare";
      document.body.dataset.state = "waiting-for-key";
    } else {
      compare();
    }
  };
  reader.readAsDataURL(file);
}

function keysMissing() {
  return Boolean(state.config && state.config.signatures && !($("key-id").value.trim() && $("key-secret").value));
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
  $("type-" + side).addEventListener("change", () => { if (!keysMissing()) compare(); });
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
