// The field app's storage on the phone (IndexedDB), shared by the page and the service worker.
// Personal data (the queue's payloads and answers, the participant list, the device token) is
// sealed with AES-GCM under a non-extractable WebCrypto key that the server derives for this
// device and login (contributions/field/devices.py): logging out forgets the key, so the
// sealed items stay on the phone, unreadable, until the same agent logs in again.

const DB_NAME = "bpu-field";
const DB_VERSION = 1;
let dbPromise = null;

export function db() {
  if (!dbPromise) {
    dbPromise = new Promise((resolve, reject) => {
      const req = indexedDB.open(DB_NAME, DB_VERSION);
      req.onupgradeneeded = () => {
        const d = req.result;
        d.createObjectStore("meta");
        const q = d.createObjectStore("queue", { keyPath: "id" });
        q.createIndex("user", "user_id");
        d.createObjectStore("regions");
      };
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
  }
  return dbPromise;
}

function done(tx) {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error);
  });
}

function result(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

export async function get(store, key) {
  const d = await db();
  return result(d.transaction(store).objectStore(store).get(key));
}

export async function put(store, key, value) {
  const d = await db();
  const tx = d.transaction(store, "readwrite");
  if (key === null) tx.objectStore(store).put(value);
  else tx.objectStore(store).put(value, key);
  return done(tx);
}

export async function del(store, key) {
  const d = await db();
  const tx = d.transaction(store, "readwrite");
  tx.objectStore(store).delete(key);
  return done(tx);
}

export async function all(store) {
  const d = await db();
  return result(d.transaction(store).objectStore(store).getAll());
}

// --- sealing ----------------------------------------------------------------------------------
function fromB64url(text) {
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4);
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

export function importKey(b64url) {
  return crypto.subtle.importKey("raw", fromB64url(b64url), "AES-GCM", false, ["encrypt", "decrypt"]);
}

export async function seal(key, value) {
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const data = new TextEncoder().encode(JSON.stringify(value));
  return { iv, data: new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv }, key, data)) };
}

export async function unseal(key, sealed) {
  const plain = await crypto.subtle.decrypt({ name: "AES-GCM", iv: sealed.iv }, key, sealed.data);
  return JSON.parse(new TextDecoder().decode(plain));
}

// --- the login on this phone ------------------------------------------------------------------
// meta "current": {user_id} of the agent logged in here; "key:<user>": the CryptoKey;
// "device:<user>": {device_id, receipt_prefix, agent}; "token:<user>": the sealed API token.

export async function session() {
  const current = await get("meta", "current");
  if (!current) return null;
  const key = await get("meta", `key:${current.user_id}`);
  const device = await get("meta", `device:${current.user_id}`);
  const sealedToken = await get("meta", `token:${current.user_id}`);
  if (!key || !device || !sealedToken) return null;
  const token = await unseal(key, sealedToken);
  return { user_id: current.user_id, key, token, ...device };
}

export async function deviceFor(userId) {
  return get("meta", `device:${userId}`);
}

export async function saveLogin(enrolment) {
  const key = await importKey(enrolment.queue_key);
  const user = enrolment.user_id;
  await put("meta", `key:${user}`, key);
  await put("meta", `token:${user}`, await seal(key, enrolment.token));
  await put("meta", `device:${user}`, {
    device_id: enrolment.device_id,
    receipt_prefix: enrolment.receipt_prefix,
    agent: enrolment.agent,
  });
  await put("meta", "current", { user_id: user });
}

export async function forgetLogin(userId) {
  // The queue stays (sealed); only the key and the token go.
  await del("meta", `key:${userId}`);
  await del("meta", `token:${userId}`);
  await del("meta", "current");
}

// --- receipt numbers: <prefix>-<sequence>, the sequence kept per device ------------------------
export async function nextReceipt(prefix) {
  const d = await db();
  const tx = d.transaction("meta", "readwrite");
  const store = tx.objectStore("meta");
  const n = ((await result(store.get(`seq:${prefix}`))) || 0) + 1;
  store.put(n, `seq:${prefix}`);
  await done(tx);
  return `${prefix}-${String(n).padStart(6, "0")}`;
}

// --- the queue --------------------------------------------------------------------------------
// Row: {id (UUID: the client id), user_id, kind: "register"|"payment", status, attempt,
// created_at, depends_on, sealed: {payload, answer}}. Only the status and the ids are clear.

export async function enqueue(sess, kind, payload, { id, dependsOn = null } = {}) {
  const item = {
    id: id || crypto.randomUUID(),
    user_id: sess.user_id,
    kind,
    status: "waiting",
    attempt: 0,
    created_at: new Date().toISOString(),
    depends_on: dependsOn,
    sealed: await seal(sess.key, { payload, answer: null }),
  };
  await put("queue", null, item);
  return item.id;
}

export async function items(sess) {
  const rows = await all("queue");
  const mine = [];
  let others = 0;
  let unreadable = 0;
  for (const row of rows) {
    if (row.user_id !== sess.user_id) {
      if (row.status === "waiting" || row.status === "sending") others += 1;
      continue;
    }
    let opened;
    try {
      opened = await unseal(sess.key, row.sealed);
    } catch (_e) {
      unreadable += 1; // sealed under a key this login does not hold: kept, never dropped
      continue;
    }
    mine.push({ ...row, payload: opened.payload, answer: opened.answer });
  }
  mine.sort((a, b) => (a.created_at < b.created_at ? -1 : a.created_at > b.created_at ? 1 : 0));
  return { mine, others, unreadable };
}

export async function update(sess, item, changes) {
  const next = { ...item, ...changes };
  const row = {
    id: next.id,
    user_id: next.user_id,
    kind: next.kind,
    status: next.status,
    attempt: next.attempt,
    created_at: next.created_at,
    depends_on: next.depends_on,
    sealed: await seal(sess.key, { payload: next.payload, answer: next.answer }),
  };
  await put("queue", null, row);
  return next;
}

export async function unsentCount(userId) {
  const rows = await all("queue");
  return rows.filter((r) => r.user_id === userId && ["waiting", "sending", "refused", "held"].includes(r.status)).length;
}

// --- data kept for offline work ---------------------------------------------------------------
export async function savePeople(sess, people) {
  await put("meta", `people:${sess.user_id}`, { at: new Date().toISOString(), sealed: await seal(sess.key, people) });
}

export async function people(sess) {
  const row = await get("meta", `people:${sess.user_id}`);
  if (!row) return [];
  try {
    return await unseal(sess.key, row.sealed);
  } catch (_e) {
    return []; // sealed under an older key: the next sync brings the list again
  }
}
