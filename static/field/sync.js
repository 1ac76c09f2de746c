// Sends the queue through the public API, oldest first; run by the page (load, focus, coming
// back online, a timer) and by the service worker (Background Sync), one at a time (a Web Lock).
// At-least-once delivery, exactly-once effect: a registration goes to participants/bulk/ with
// its client id as the Idempotency-Key (a resend replays the stored answer); a payment goes to
// payments/ with its receipt number as the reference (the API's replay rule) and
// on_conflict=suspense, so cash the server cannot apply as asked is held, never lost.

import * as store from "./store.js";

const FINAL = ["sent", "suspense"];

const TIMEOUT_MS = 30000; // a request the network swallows must not hold the queue forever

async function api(sess, method, path, body, key) {
  const headers = { Authorization: `Token ${sess.token}`, Accept: "application/json" };
  // The server's messages in the app's language (the service worker has no cookie to send).
  headers["Accept-Language"] = (await store.get("meta", "lang")) || "id";
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (key) headers["Idempotency-Key"] = key;
  return fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "omit",
    signal: AbortSignal.timeout(TIMEOUT_MS),
  });
}

async function json(response) {
  try {
    return await response.json();
  } catch (_e) {
    return {};
  }
}

function refusal(body) {
  const errors = Array.isArray(body.errors) ? body.errors : [];
  return { message: body.message || "", code: body.code || "", errors };
}

async function sendRegistration(sess, item) {
  // on_existing "refuse": a NIK registered meanwhile (even by this agent, on another phone) is
  // refused duplicate_nik, never silently updated from this form.
  const body0 = { rows: [item.payload], on_existing: "refuse" };
  const response = await api(sess, "POST", "/api/v1/participants/bulk/", body0, `${item.id}:${item.attempt}`);
  const body = await json(response);
  if (response.status === 200 && Array.isArray(body.results)) {
    const row = body.results[0];
    if (row.result === "error") return { status: "refused", answer: { ...refusal({ errors: row.errors }), message: row.errors[0] ? row.errors[0].message : "" } };
    return { status: "sent", answer: { result: row.result, participant: row.id, kpj: row.kpj_number } };
  }
  return outcome(response, body);
}

async function sendPayment(sess, item, byId) {
  const { _show, ...p } = item.payload;
  if (item.depends_on) {
    const reg = byId.get(item.depends_on);
    const duplicate = reg && reg.status === "refused" && (reg.answer.errors || []).some((e) => e.code === "duplicate_nik");
    if (reg && reg.status === "sent") {
      p.kpj_number = reg.answer.kpj;
      delete p.nik;
    } else if (!duplicate) {
      // waiting for its registration (held while that is refused and not yet fixed)
      return { status: reg && reg.status === "refused" ? "held" : item.status, skip: true };
    }
    // The worker was registered already: the cash goes to that participant by NIK (refused
    // participant_unknown when the agent may not pay for them - the cash stays on the phone).
  }
  p.on_conflict = "suspense";
  const response = await api(sess, "POST", "/api/v1/payments/", p, item.payload.reference);
  const body = await json(response);
  if (response.status === 201 || response.status === 200) return { status: "sent", answer: { payment: body.id, kpj: body.kpj_number, period_start: body.period_start } };
  if (response.status === 202) return { status: "suspense", answer: refusal(body) };
  return outcome(response, body);
}

function outcome(response, body) {
  if (response.status === 401) return { stop: "login_again" };
  if (response.status === 429 || response.status >= 500) return { stop: "later" };
  return { status: "refused", answer: refusal(body) };
}

async function run(onChange) {
  const sess = await store.session();
  if (!sess) return { state: "logged_out" };
  let { mine } = await store.items(sess);
  const byId = new Map(mine.map((i) => [i.id, i]));
  let sent = 0;
  let registered = false;
  for (let item of mine) {
    if (!["waiting", "sending", "held"].includes(item.status)) continue;
    let res;
    try {
      // "sending" first: a tab killed now resends with the same key, and the server replays.
      item = await store.update(sess, item, { status: "sending" });
      byId.set(item.id, item);
      res = item.kind === "register" ? await sendRegistration(sess, item) : await sendPayment(sess, item, byId);
    } catch (_e) {
      await store.update(sess, item, { status: "waiting" });
      return { state: "offline", sent };
    }
    if (res.stop) {
      await store.update(sess, item, { status: "waiting" });
      return { state: res.stop, sent };
    }
    item = await store.update(sess, item, { status: res.status, answer: res.skip ? item.answer : res.answer });
    byId.set(item.id, item);
    if (FINAL.includes(item.status)) sent += 1;
    if (item.kind === "register" && item.status === "sent") registered = true;
    if (onChange) onChange();
  }
  // The list again after new registrations, else at most every ten minutes (2G).
  const last = Date.parse((await store.get("meta", `people-at:${sess.user_id}`)) || 0) || 0;
  if (registered || (sent && Date.now() - last > 6e5)) await refreshPeople(sess).catch(() => null);
  await store.put("meta", `synced:${sess.user_id}`, new Date().toISOString());
  return { state: "done", sent };
}

export async function refreshPeople(sess) {
  const response = await api(sess, "GET", "/field/data/participants.json");
  if (!response.ok) return false;
  const body = await response.json();
  await store.savePeople(sess, body.participants);
  await store.put("meta", `people-at:${sess.user_id}`, new Date().toISOString());
  return true;
}

export function syncAll(onChange) {
  if (globalThis.navigator && navigator.locks) {
    return navigator.locks.request("bpu-field-sync", { ifAvailable: true }, (lock) => (lock ? run(onChange) : { state: "busy" }));
  }
  return run(onChange);
}
