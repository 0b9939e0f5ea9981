// Receipt and checkpoint verification in the browser: the same checks, in the same order and
// with the same check names, as `ainfera receipt verify` (domain/receipt.py, domain/checkpoint.py,
// domain/merkle.py, domain/hashchain.py, adapters/jcs.py, adapters/signer.py).
//
// Everything is recomputed here from the receipt's bytes and the verifier key: RFC 8785 canonical
// JSON of each event, SHA-256 leaf hashes, the hash chain links, RFC 9162 inclusion proofs to the
// checkpoint's root, and the checkpoint's Ed25519 signature (WebCrypto). Nothing the server says
// about the result is trusted. A test holds this file to the Python verifier's verdicts.

export const FORMAT = "ainfera-receipt/v1";
const ED25519 = 0x01;
const MAX_SIGNATURES = 100;
const SIGNATURE_PREFIX = "\u2014 ";
const CONTROL = /[\x00-\x09\x0b-\x1f]/;
const MAX_SAFE = 2n ** 53n - 1n;
const GENESIS = new Uint8Array(32);

export class VerificationError extends Error {
  constructor(check, leafIndex, message) {
    const where = leafIndex === null || leafIndex === undefined ? "" : ` at leaf ${leafIndex}`;
    super(`${check}${where}: ${message}`);
    this.check = check;
    this.leafIndex = leafIndex ?? null;
    this.detail = message;
  }
}

class CheckpointError extends Error {
  constructor(kind, message) {
    super(message);
    this.kind = kind; // "malformed" | "unknown_key" | "bad_signature" | "vkey"
  }
}

class MerkleError extends Error {}
class JsonFloat {
  constructor(lexeme) { this.lexeme = lexeme; }
}

// ---------------------------------------------------------------- strict JSON
// JSON.parse would keep the last of two duplicate keys and turn 1.0 into 1; the Python verifier
// refuses the first and keeps the second a float (which no event may hold). This parser does the
// same: a duplicate key is an error, a number with a fraction or exponent stays a JsonFloat, an
// integer beyond 2**53 a BigInt.
export function parseStrictJson(text) {
  let i = 0;
  const fail = (what) => { throw new SyntaxError(`${what} at character ${i}`); };
  const ws = () => { while (i < text.length && " \t\n\r".includes(text[i])) i++; };
  const value = () => {
    ws();
    const c = text[i];
    if (c === "{") return object();
    if (c === "[") return array();
    if (c === '"') return string();
    if (c === "-" || (c >= "0" && c <= "9")) return number();
    for (const [word, v] of [["true", true], ["false", false], ["null", null]]) {
      if (text.startsWith(word, i)) { i += word.length; return v; }
    }
    return fail("unexpected input");
  };
  const object = () => {
    i++;
    const out = Object.create(null);
    ws();
    if (text[i] === "}") { i++; return out; }
    for (;;) {
      ws();
      if (text[i] !== '"') fail("expected a key");
      const key = string();
      if (Object.prototype.hasOwnProperty.call(out, key)) fail(`duplicate key ${JSON.stringify(key)}`);
      ws();
      if (text[i] !== ":") fail("expected ':'");
      i++;
      out[key] = value();
      ws();
      if (text[i] === ",") { i++; continue; }
      if (text[i] === "}") { i++; return out; }
      fail("expected ',' or '}'");
    }
  };
  const array = () => {
    i++;
    const out = [];
    ws();
    if (text[i] === "]") { i++; return out; }
    for (;;) {
      out.push(value());
      ws();
      if (text[i] === ",") { i++; continue; }
      if (text[i] === "]") { i++; return out; }
      fail("expected ',' or ']'");
    }
  };
  const string = () => {
    i++;
    let out = "";
    for (;;) {
      if (i >= text.length) fail("unterminated string");
      const c = text[i++];
      if (c === '"') return out;
      if (c < " ") fail("control character in string");
      if (c !== "\\") { out += c; continue; }
      const e = text[i++];
      const simple = { '"': '"', "\\": "\\", "/": "/", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" };
      if (e in simple) { out += simple[e]; continue; }
      if (e !== "u") fail("bad escape");
      const hex = text.slice(i, i + 4);
      if (!/^[0-9a-fA-F]{4}$/.test(hex)) fail("bad \\u escape");
      out += String.fromCharCode(parseInt(hex, 16));
      i += 4;
    }
  };
  const number = () => {
    const m = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(text.slice(i));
    if (!m) fail("bad number");
    i += m[0].length;
    if (m[2] || m[3]) return new JsonFloat(m[0]);
    const n = BigInt(m[0]);
    return n > MAX_SAFE || n < -MAX_SAFE ? n : Number(n);
  };
  const result = value();
  ws();
  if (i !== text.length) fail("trailing data");
  return result;
}

const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v) &&
  !(v instanceof JsonFloat);
const isInt = (v) => (typeof v === "number" && Number.isInteger(v)) || typeof v === "bigint";

// ---------------------------------------------------------------- RFC 8785 (JCS)
export function canonicalJson(value, path = "$") {
  if (value === null) return "null";
  if (value === true) return "true";
  if (value === false) return "false";
  if (value instanceof JsonFloat) {
    throw new Error(`${path} is a float (${value.lexeme}); ledger events carry decimals as strings`);
  }
  if (typeof value === "bigint") throw new Error(`${path} = ${value} is beyond 2**53`);
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value)) throw new Error(`${path} is not a safe integer`);
    return String(value);
  }
  if (typeof value === "string") {
    if (!value.isWellFormed()) throw new Error(`${path} is not valid Unicode text`);
    return JSON.stringify(value); // ES string serialisation is RFC 8785's
  }
  if (Array.isArray(value)) {
    return `[${value.map((v, n) => canonicalJson(v, `${path}[${n}]`)).join(",")}]`;
  }
  if (isObject(value)) {
    // Default sort compares UTF-16 code units, which is what RFC 8785 orders keys by.
    const keys = Object.keys(value).sort();
    for (const k of keys) {
      if (!k.isWellFormed()) throw new Error(`${path} has a key that is not valid Unicode text`);
    }
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k], `${path}.${k}`)}`).join(",")}}`;
  }
  throw new Error(`${path} is not a JSON value`);
}

// ---------------------------------------------------------------- bytes and hashes
const utf8 = new TextEncoder();

export function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

export function equalBytes(a, b) {
  if (a.length !== b.length) return false;
  for (let n = 0; n < a.length; n++) if (a[n] !== b[n]) return false;
  return true;
}

export const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

export async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

const leafHash = (data) => sha256(concat(Uint8Array.of(0), data));
const nodeHash = (left, right) => sha256(concat(Uint8Array.of(1), left, right));
const chainHash = (prev, leaf) => sha256(concat(prev, leaf));

export function b64encode(bytes) {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

// Standard base64 with padding, only the one canonical spelling of each value.
export function b64decodeStrict(text, what) {
  if (typeof text !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4) {
    throw new Error(`${what} is not standard base64`);
  }
  const raw = atob(text);
  const bytes = Uint8Array.from(raw, (c) => c.charCodeAt(0));
  if (b64encode(bytes) !== text) throw new Error(`${what} is not canonical base64`);
  return bytes;
}

// ---------------------------------------------------------------- signed notes and keys
function checkKeyName(name, kind = "malformed") {
  if (!name || name.includes("+") || /\s/.test(name) || CONTROL.test(name)) {
    throw new CheckpointError(kind, `${JSON.stringify(name)} is not a valid key name`);
  }
}

export async function keyId(name, type, publicKey) {
  const digest = await sha256(concat(utf8.encode(name), Uint8Array.of(0x0a, type), publicKey));
  return digest.slice(0, 4);
}

// `<name>+<hex key id>+<base64(0x01 || key)>`, key id checked, Ed25519 only.
export async function parseVkey(text) {
  const t = String(text).trim();
  const first = t.indexOf("+");
  const second = first < 0 ? -1 : t.indexOf("+", first + 1);
  if (first < 0 || second < 0) {
    throw new CheckpointError("vkey", "a verifier key is <name>+<hex key id>+<base64 key>");
  }
  const name = t.slice(0, first);
  const idHex = t.slice(first + 1, second);
  const encoded = t.slice(second + 1);
  checkKeyName(name, "vkey");
  if (!/^[0-9a-f]{8}$/.test(idHex)) {
    throw new CheckpointError("vkey", `verifier key id '${idHex}' is not 8 lowercase hex digits`);
  }
  let raw;
  try { raw = b64decodeStrict(encoded, "verifier key"); } catch (e) {
    throw new CheckpointError("vkey", e.message);
  }
  if (raw.length < 2) throw new CheckpointError("vkey", "verifier key has no public key after its type byte");
  const type = raw[0];
  const publicKey = raw.slice(1);
  if (hex(await keyId(name, type, publicKey)) !== idHex) {
    throw new CheckpointError("vkey", `verifier key id ${idHex} does not match its name and key`);
  }
  if (type !== ED25519 || publicKey.length !== 32) {
    throw new CheckpointError("vkey", `verifier key ${name} is not a 32-byte Ed25519 key (type 0x01)`);
  }
  const key = await crypto.subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, ["verify"]);
  return { name, keyId: idHex, publicKey, key, text: t };
}

function checkNoteText(text) {
  if (!text.isWellFormed()) throw new CheckpointError("malformed", "note is not valid UTF-8");
  if (CONTROL.test(text)) {
    throw new CheckpointError("malformed", "note contains a control character other than newline");
  }
}

export function parseNote(note) {
  checkNoteText(note);
  const split = note.lastIndexOf("\n\n");
  if (split < 0) throw new CheckpointError("malformed", "note has no blank line before its signatures");
  const text = note.slice(0, split + 1);
  const block = note.slice(split + 2);
  if (!block.endsWith("\n")) {
    throw new CheckpointError("malformed",
      "note has no signature lines, or they do not end with a newline");
  }
  const signatures = [];
  for (const line of block.slice(0, -1).split("\n")) {
    if (!line.startsWith(SIGNATURE_PREFIX)) {
      throw new CheckpointError("malformed",
        `signature line ${JSON.stringify(line.slice(0, 40))} does not start with an em dash`);
    }
    const rest = line.slice(SIGNATURE_PREFIX.length);
    const space = rest.indexOf(" ");
    const name = space < 0 ? rest : rest.slice(0, space);
    const encoded = space < 0 ? "" : rest.slice(space + 1);
    checkKeyName(name);
    let raw;
    try { raw = b64decodeStrict(encoded, `signature by ${name}`); } catch (e) {
      throw new CheckpointError("malformed", e.message);
    }
    if (raw.length < 5) {
      throw new CheckpointError("malformed", `signature by ${name} is too short to hold a key id`);
    }
    signatures.push({ name, keyId: hex(raw.slice(0, 4)), signature: raw.slice(4) });
  }
  if (signatures.length > MAX_SIGNATURES) {
    throw new CheckpointError("malformed", `note has ${signatures.length} signatures, over ${MAX_SIGNATURES}`);
  }
  return { text, signatures };
}

export function parseCheckpoint(text) {
  if (!text.endsWith("\n")) throw new CheckpointError("malformed", "checkpoint body does not end with a newline");
  const lines = text.slice(0, -1).split("\n");
  if (lines.length < 3) throw new CheckpointError("malformed", `checkpoint body has ${lines.length} lines, needs 3`);
  const [origin, sizeText, rootText, ...extensions] = lines;
  if (!origin) throw new CheckpointError("malformed", "checkpoint origin is empty");
  if (!/^(0|[1-9][0-9]*)$/.test(sizeText) || BigInt(sizeText) >= 2n ** 64n) {
    throw new CheckpointError("malformed", `checkpoint tree size '${sizeText}' is not a decimal`);
  }
  let root;
  try { root = b64decodeStrict(rootText, "checkpoint root"); } catch (e) {
    throw new CheckpointError("malformed", e.message);
  }
  if (root.length !== 32) throw new CheckpointError("malformed", `checkpoint root is ${root.length} bytes, not 32`);
  if (extensions.some((l) => !l)) throw new CheckpointError("malformed", "checkpoint has an empty extension line");
  return { origin, size: BigInt(sizeText), root, extensions };
}

// The checkpoint a signed note carries, once a signature by `vkey` verifies (C2SP signed-note:
// lines by other keys are ignored, a failing line by this key rejects the note).
export async function openCheckpoint(note, vkey) {
  const parsed = parseNote(note);
  let verified = 0;
  for (const sig of parsed.signatures) {
    if (sig.name !== vkey.name || sig.keyId !== vkey.keyId) continue;
    const ok = await crypto.subtle.verify({ name: "Ed25519" }, vkey.key, sig.signature,
      utf8.encode(parsed.text));
    if (!ok) {
      throw new CheckpointError("bad_signature", `signature by ${sig.name}+${sig.keyId} does not verify`);
    }
    verified++;
  }
  if (!verified) {
    const present = parsed.signatures.map((s) => `${s.name}+${s.keyId}`).join(", ");
    throw new CheckpointError("unknown_key",
      `note is signed by ${present}; no signature by a known key (${vkey.name}+${vkey.keyId})`);
  }
  return parseCheckpoint(parsed.text);
}

// ---------------------------------------------------------------- RFC 9162 proofs
const bitLength = (n) => (n === 0n ? 0 : n.toString(2).length);
const bitCount = (n) => [...n.toString(2)].filter((c) => c === "1").length;

function inclusionProofLength(index, size) {
  const inner = bitLength(index ^ (size - 1n));
  return inner + bitCount(index >> BigInt(inner));
}

function checkHash(what, value) {
  if (value.length !== 32) throw new MerkleError(`${what} is ${value.length} bytes, not 32`);
}

export async function rootFromInclusionProof(leaf, leafIndex, treeSize, proof) {
  const index = BigInt(leafIndex);
  const size = BigInt(treeSize);
  if (!(index >= 0n && index < size)) {
    throw new MerkleError(`leaf index ${index} is not in a tree of size ${size}`);
  }
  checkHash("leaf hash", leaf);
  const want = inclusionProofLength(index, size);
  if (proof.length !== want) {
    throw new MerkleError(`inclusion proof for leaf ${index} in a tree of ${size} has ` +
      `${proof.length} hashes, needs ${want}`);
  }
  let fn = index;
  let sn = size - 1n;
  let r = leaf;
  for (let n = 0; n < proof.length; n++) {
    const p = proof[n];
    checkHash(`inclusion proof hash ${n}`, p);
    if (fn & 1n || fn === sn) {
      r = await nodeHash(p, r);
      while (!(fn & 1n) && fn !== 0n) { fn >>= 1n; sn >>= 1n; }
    } else {
      r = await nodeHash(r, p);
    }
    fn >>= 1n; sn >>= 1n;
  }
  return r;
}

export async function verifyInclusion(leaf, leafIndex, treeSize, proof, root) {
  const computed = await rootFromInclusionProof(leaf, leafIndex, treeSize, proof);
  if (!equalBytes(computed, root)) {
    throw new MerkleError(`inclusion proof for leaf ${leafIndex} leads to root ${hex(computed)}, ` +
      `the tree head of size ${treeSize} says ${hex(root)}`);
  }
}

const EMPTY_ROOT_HEX = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

export async function verifyConsistency(oldSize, newSize, oldRoot, newRoot, proof) {
  const m = BigInt(oldSize);
  const n = BigInt(newSize);
  if (m < 0n || n < m) throw new MerkleError(`old size ${m} is not between 0 and new size ${n}`);
  if (m === n) {
    if (proof.length) throw new MerkleError(`trees of equal size ${m} need an empty proof`);
    if (m === 0n && hex(oldRoot) !== EMPTY_ROOT_HEX) throw new MerkleError("a tree of size 0 must have the empty root");
    if (!equalBytes(oldRoot, newRoot)) throw new MerkleError(`two tree heads of size ${m} have different roots`);
    return;
  }
  if (m === 0n) throw new MerkleError("a consistency proof from the empty tree is meaningless");
  checkHash("old root", oldRoot);
  const shift = BigInt(bitLength(m & -m) - 1);
  const seeded = m === 1n << shift;
  let want = inclusionProofLength((m - 1n) >> shift, ((n - 1n) >> shift) + 1n);
  want += seeded ? 0 : 1;
  if (proof.length !== want) {
    throw new MerkleError(`consistency proof from ${m} to ${n} has ${proof.length} hashes, needs ${want}`);
  }
  proof.forEach((p, k) => checkHash(`consistency proof hash ${k}`, p));
  const path = seeded ? [oldRoot, ...proof] : [...proof];
  let fn = m - 1n;
  let sn = n - 1n;
  while (fn & 1n) { fn >>= 1n; sn >>= 1n; }
  let fr = path[0];
  let sr = path[0];
  for (const c of path.slice(1)) {
    if (fn & 1n || fn === sn) {
      fr = await nodeHash(c, fr);
      sr = await nodeHash(c, sr);
      while (!(fn & 1n) && fn !== 0n) { fn >>= 1n; sn >>= 1n; }
    } else {
      sr = await nodeHash(sr, c);
    }
    fn >>= 1n; sn >>= 1n;
  }
  if (!equalBytes(fr, oldRoot)) {
    throw new MerkleError(`consistency proof from ${m} to ${n} leads to old root ${hex(fr)}, ` +
      `the tree head says ${hex(oldRoot)}`);
  }
  if (!equalBytes(sr, newRoot)) {
    throw new MerkleError(`consistency proof from ${m} to ${n} leads to new root ${hex(sr)}, ` +
      `the tree head says ${hex(newRoot)}`);
  }
}

// ---------------------------------------------------------------- receipts
function field(obj, key, kind, at) {
  const value = isObject(obj) ? obj[key] : undefined;
  const ok = kind === "str" ? typeof value === "string"
    : kind === "int" ? isInt(value)
      : kind === "list" ? Array.isArray(value)
        : isObject(value);
  if (!ok) {
    const name = { str: "str", int: "int", list: "list", dict: "dict" }[kind];
    throw new VerificationError("format", at, `${key} is missing or not a ${name}`);
  }
  return value;
}

function hashField(value, what, check, at) {
  if (typeof value !== "string") throw new VerificationError(check, at, `${what} is not a base64 string`);
  let digest;
  try { digest = b64decodeStrict(value, what); } catch (e) {
    throw new VerificationError(check, at, e.message);
  }
  if (digest.length !== 32) throw new VerificationError(check, at, `${what} is ${digest.length} bytes, not 32`);
  return digest;
}

function parseUuid(text) {
  let h = text.replaceAll("urn:", "").replaceAll("uuid:", "");
  h = h.replace(/^[{}]+|[{}]+$/g, "").replaceAll("-", "");
  if (!/^[0-9a-fA-F]{32}$/.test(h)) throw new Error("badly formed hexadecimal UUID string");
  return h.toLowerCase();
}

function parseInferenceId(publicId) {
  for (const prefix of ["msg_", "chatcmpl-"]) {
    if (publicId.startsWith(prefix)) return parseUuid(publicId.slice(prefix.length));
  }
  return parseUuid(publicId);
}

const pyRepr = (v) => (v instanceof JsonFloat ? v.lexeme : v === undefined ? "None"
  : typeof v === "string" ? `'${v}'`
  : v === null ? "None" : v === true ? "True" : v === false ? "False" : String(v));

async function openChecked(note, vkey, older) {
  try {
    return await openCheckpoint(note, vkey);
  } catch (e) {
    if (!(e instanceof CheckpointError)) throw e;
    const check = older ? "older_checkpoint"
      : e.kind === "unknown_key" || e.kind === "bad_signature" ? "signature" : "checkpoint";
    throw new VerificationError(check, null, e.message);
  }
}

function parseEntry(raw) {
  if (!isObject(raw)) throw new VerificationError("format", null, "an entry is not an object");
  const at0 = field(raw, "leaf_index", "int", null);
  const at = Number(at0);
  const proof = field(raw, "inclusion_proof", "list", at);
  const event = field(raw, "event", "dict", at);
  const leafHashValue = hashField(field(raw, "leaf_hash", "str", at), "leaf_hash", "format", at);
  const prev = hashField(field(raw, "prev_chain_hash", "str", at), "prev_chain_hash", "format", at);
  const chain = hashField(field(raw, "chain_hash", "str", at), "chain_hash", "format", at);
  const inclusion = proof.map((h) => hashField(h, "inclusion proof hash", "format", at));
  return { leafIndex: at, event, leafHash: leafHashValue, prevChainHash: prev, chainHash: chain, inclusion };
}

async function checkEntry(entry, checkpoint) {
  const at = entry.leafIndex;
  const said = entry.event.leaf_index;
  // As in Python, 12.0 equals leaf 12 here (and fails hashing next); true does not.
  const numeric = isInt(said) ? Number(said) : said instanceof JsonFloat ? Number(said.lexeme) : NaN;
  if (numeric !== at) {
    throw new VerificationError("leaf_index", at, `event says leaf ${pyRepr(said)}, entry ${at}`);
  }
  let recomputed;
  try {
    recomputed = await leafHash(utf8.encode(canonicalJson(entry.event)));
  } catch (e) {
    throw new VerificationError("leaf_hash", at, `event cannot be hashed: ${e.message}`);
  }
  if (!equalBytes(recomputed, entry.leafHash)) {
    throw new VerificationError("leaf_hash", at,
      "leaf_hash is not SHA-256(0x00 || JCS(event)): the event or its hash was altered");
  }
  if (at === 0 && !equalBytes(entry.prevChainHash, GENESIS)) {
    throw new VerificationError("chain_link", at, "leaf 0 must chain from zero bytes");
  }
  if (!equalBytes(await chainHash(entry.prevChainHash, entry.leafHash), entry.chainHash)) {
    throw new VerificationError("chain_link", at, "chain_hash is not SHA-256(prev_chain_hash || leaf_hash)");
  }
  try {
    await verifyInclusion(entry.leafHash, at, checkpoint.size, entry.inclusion, checkpoint.root);
  } catch (e) {
    if (e instanceof MerkleError) throw new VerificationError("inclusion", at, e.message);
    throw e;
  }
}

function eventField(entry, key, kind) {
  return field(entry.event, key, kind, entry.leafIndex);
}

function checkSequence(entries, aggregateHex) {
  const tenantId = eventField(entries[0], "tenant_id", "str");
  for (const entry of entries) {
    const tenant = eventField(entry, "tenant_id", "str");
    if (tenant !== tenantId) {
      throw new VerificationError("tenant", entry.leafIndex,
        `event of tenant '${tenant}' in a receipt of tenant '${tenantId}'`);
    }
    const aggregate = eventField(entry, "aggregate_id", "str");
    let same = false;
    try { same = parseUuid(aggregate) === aggregateHex; } catch { same = false; }
    if (!same) {
      throw new VerificationError("aggregate", entry.leafIndex,
        `event of aggregate '${aggregate}' in the receipt of ${formatUuid(aggregateHex)}`);
    }
  }
  for (let n = 1; n < entries.length; n++) {
    if (entries[n].leafIndex <= entries[n - 1].leafIndex) {
      throw new VerificationError("order", entries[n].leafIndex,
        `leaf ${entries[n].leafIndex} is listed after leaf ${entries[n - 1].leafIndex}`);
    }
  }
  entries.forEach((entry, n) => {
    const version = eventField(entry, "version", "int");
    if (Number(version) !== n + 1) {
      throw new VerificationError("version", entry.leafIndex,
        `event is version ${version}, expected ${n + 1} (versions start at 1 with none missing)`);
    }
  });
  for (let n = 1; n < entries.length; n++) {
    const [prev, entry] = [entries[n - 1], entries[n]];
    if (entry.leafIndex === prev.leafIndex + 1 && !equalBytes(entry.prevChainHash, prev.chainHash)) {
      throw new VerificationError("chain_link", entry.leafIndex,
        `prev_chain_hash is not the chain hash of leaf ${prev.leafIndex}`);
    }
  }
  return tenantId;
}

const formatUuid = (h) => `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;

async function checkConsistency(checkpoint, olderNote, proof, vkey) {
  const older = await openChecked(olderNote, vkey, true);
  if (older.origin !== checkpoint.origin) {
    throw new VerificationError("older_checkpoint", null, `older checkpoint is for log '${older.origin}'`);
  }
  const hashes = (proof || []).map((h) => hashField(h, "consistency proof hash", "consistency", null));
  try {
    await verifyConsistency(older.size, checkpoint.size, older.root, checkpoint.root, hashes);
  } catch (e) {
    if (e instanceof MerkleError) throw new VerificationError("consistency", null, e.message);
    throw e;
  }
  return older;
}

// Verifies a receipt given as the exact text it was served or saved as, against a verifier key
// text. Resolves to a summary; rejects with a VerificationError naming the failed check.
export async function verifyReceiptText(text, vkeyText) {
  if (!globalThis.crypto || !crypto.subtle) {
    throw new VerificationError("environment", null,
      "this page is not a secure context (HTTPS or localhost), so the browser offers no WebCrypto");
  }
  let vkey;
  try { vkey = await parseVkey(vkeyText); } catch (e) {
    if (e instanceof CheckpointError) throw new VerificationError("vkey", null, e.message);
    throw new VerificationError("vkey", null, `the browser cannot use this key: ${e.message}`);
  }
  let receipt;
  try { receipt = parseStrictJson(text); } catch (e) {
    throw new VerificationError("format", null, `the receipt is not JSON: ${e.message}`);
  }
  return verifyReceipt(receipt, vkey);
}

export async function verifyReceipt(receipt, vkey) {
  if (!isObject(receipt) || receipt.format !== FORMAT) {
    throw new VerificationError("format", null, `not an ${FORMAT} receipt`);
  }
  const inferenceId = field(receipt, "inference_id", "str", null);
  const origin = field(receipt, "origin", "str", null);
  const rawEntries = field(receipt, "entries", "list", null);
  if (!rawEntries.length) throw new VerificationError("format", null, "receipt has no entries");
  let aggregateHex;
  try { aggregateHex = parseInferenceId(inferenceId); } catch {
    throw new VerificationError("format", null, `inference_id '${inferenceId}' is not an inference id`);
  }
  const checkpoint = await openChecked(field(receipt, "checkpoint", "str", null), vkey, false);
  if (checkpoint.origin !== origin) {
    throw new VerificationError("origin", null,
      `checkpoint is for log '${checkpoint.origin}', receipt '${origin}'`);
  }
  const entries = rawEntries.map(parseEntry);
  for (const entry of entries) await checkEntry(entry, checkpoint);
  const tenantId = checkSequence(entries, aggregateHex);
  const consistency = receipt.consistency;
  if (consistency !== undefined && consistency !== null && !isObject(consistency)) {
    throw new VerificationError("format", null, "consistency is not an object");
  }
  let older = null;
  if (isObject(consistency)) {
    const note = field(consistency, "from_checkpoint", "str", null);
    const proof = field(consistency, "proof", "list", null);
    older = await checkConsistency(checkpoint, note, proof, vkey);
  }
  return {
    verified: true,
    inferenceId,
    tenantId,
    origin: checkpoint.origin,
    treeSize: Number(checkpoint.size),
    root: b64encode(checkpoint.root),
    keyId: vkey.keyId,
    keyName: vkey.name,
    leaves: entries.map((e) => e.leafIndex),
    events: entries.map((e) => e.event.type),
    olderSize: older ? Number(older.size) : null,
  };
}

// Two signed checkpoints and the proof that the newer log extends the older one, all checked
// here: both signatures by `vkeyText`, the same origin, and the RFC 9162 consistency proof.
export async function verifyCheckpointPair(olderNote, newerNote, proofB64, vkeyText) {
  let vkey;
  try { vkey = await parseVkey(vkeyText); } catch (e) {
    throw new VerificationError("vkey", null, e.message);
  }
  const newer = await openChecked(newerNote, vkey, false);
  const older = await checkConsistency(newer, olderNote, proofB64, vkey);
  return { olderSize: Number(older.size), newerSize: Number(newer.size), origin: newer.origin,
    olderRoot: b64encode(older.root), newerRoot: b64encode(newer.root), keyId: vkey.keyId };
}

// A signed checkpoint checked on its own: its signature by the key, then its body.
export async function verifyCheckpointNote(note, vkeyText) {
  let vkey;
  try { vkey = await parseVkey(vkeyText); } catch (e) {
    throw new VerificationError("vkey", null, e.message);
  }
  const checkpoint = await openChecked(note, vkey, false);
  return { origin: checkpoint.origin, size: Number(checkpoint.size), root: b64encode(checkpoint.root),
    rootHex: hex(checkpoint.root), keyId: vkey.keyId, keyName: vkey.name };
}
