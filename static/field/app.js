// The field app's page: screens, forms and the queue view (docs/field-app.md). The rules are in
// rules.js (the server's, kept equal by tests/field/vectors.json); storage in store.js; sending
// in sync.js.

import * as rules from "./rules.js";
import * as store from "./store.js";
import { refreshPeople, syncAll } from "./sync.js";

const T = JSON.parse(document.getElementById("texts").textContent);
const LANG = document.body.dataset.lang === "en" ? "en" : "id";
const $ = (sel) => document.querySelector(sel);
const state = { sess: null, ref: null, prefixes: new Set(), people: [], villages: new Map(), timer: null };

// --- small helpers ----------------------------------------------------------------------------
function fmt(template, params = {}) {
  return template.replace(/%\((\w+)\)s/g, (_m, k) => (k in params ? String(params[k]) : ""));
}
function rupiah(n) {
  return "Rp " + String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ".");
}
function today() {
  // The portal's day (Asia/Jakarta), as the server's timezone.localdate().
  return new Intl.DateTimeFormat("en-CA", { timeZone: "Asia/Jakarta" }).format(new Date());
}
function monthName(iso) {
  return new Date(iso + "T00:00:00Z").toLocaleDateString(LANG === "en" ? "en-GB" : "id-ID", { month: "short", year: "numeric", timeZone: "UTC" });
}
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== null && v !== undefined && v !== false) node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c) node.append(c);
  return node;
}
function flash(text) {
  const f = $("#flash");
  f.textContent = text;
  f.hidden = !text;
}
function show(id) {
  for (const s of document.querySelectorAll("main > section")) s.hidden = s.id !== id;
  window.scrollTo(0, 0);
}
function online() {
  return navigator.onLine;
}
async function getJson(path) {
  const r = await fetch(path, { headers: { Authorization: `Token ${state.sess.token}`, Accept: "application/json" }, credentials: "omit" });
  if (r.status === 401) throw new Error("login_again");
  if (!r.ok) throw new Error(String(r.status));
  return r.json();
}

// --- reference data ---------------------------------------------------------------------------
async function loadLocal() {
  const saved = await store.get("meta", "reference");
  state.ref = saved ? saved.data : null;
  const prefixes = await store.get("meta", "prefixes");
  state.prefixes = new Set(prefixes ? prefixes.codes : []);
  state.people = await store.people(state.sess);
  for (const r of await store.all("regions")) indexVillages(r);
  markStale(saved);
}
function indexVillages(region) {
  for (const d of region.districts) for (const [code] of d.villages) state.villages.set(code, region.regency.code);
}
function markStale(saved) {
  const hours = saved ? (Date.now() - Date.parse(saved.fetched_at)) / 3.6e6 : Infinity;
  $("#stale").hidden = Boolean(saved) && hours <= saved.data.max_age_hours;
}
async function refreshReference() {
  const data = await getJson("/field/data/reference.json");
  const saved = { data, fetched_at: new Date().toISOString() };
  await store.put("meta", "reference", saved);
  state.ref = data;
  markStale(saved);
}
async function refreshPrefixes() {
  const prefixes = await store.get("meta", "prefixes");
  if (prefixes && Date.now() - Date.parse(prefixes.fetched_at) < 864e5) return;
  const p = await getJson("/field/data/nik-prefixes.json");
  await store.put("meta", "prefixes", { codes: p.codes, fetched_at: new Date().toISOString() });
  state.prefixes = new Set(p.codes);
}
async function loadRegency(code) {
  const have = await store.get("regions", code);
  if (have) return have;
  if (!online()) return null;
  const data = await getJson(`/field/data/regions/${encodeURIComponent(code)}.json`);
  await store.put("regions", code, data);
  indexVillages(data);
  return data;
}
async function prefetchArea() {
  // The NIK prefixes and the villages of the agent's area, behind the first screen.
  await refreshPrefixes().catch(() => null);
  for (const r of state.ref.area.regencies) {
    if (!online()) return;
    await loadRegency(r.code).catch(() => null);
  }
  document.body.dataset.area = "ready";
}

// --- login and enrolment ------------------------------------------------------------------------
async function boot() {
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/field/sw.js", { type: "module", scope: "/field/" }).catch(() => null);
  }
  setNet();
  // Ask the browser not to evict this origin's storage under pressure: unsent cash lives here.
  if (navigator.storage && navigator.storage.persist) navigator.storage.persist().catch(() => null);
  await store.put("meta", "lang", LANG);
  window.addEventListener("online", () => { setNet(); sync(); });
  window.addEventListener("offline", setNet);
  document.addEventListener("visibilitychange", () => { if (!document.hidden) sync(); });
  window.addEventListener("hashchange", route);
  // Offline first: with a login on this phone, the screens open from its own data at once;
  // the network (a new login in the browser, fresher reference data) is looked at behind them.
  state.sess = await store.session();
  if (state.sess) {
    await loadLocal();
    if (state.ref) start();
  }
  const before = state.sess && state.sess.user_id;
  if (online()) {
    try {
      await enrolIfNeeded();
    } catch (_e) {
      /* offline after all: work with what the phone has */
    }
  }
  if (!state.sess) return showLogin();
  if (state.sess.user_id !== before) await loadLocal();
  if (online()) {
    try {
      await refreshReference();
      if (!state.people.length) await refreshPeople(state.sess).then(async () => { state.people = await store.people(state.sess); });
    } catch (e) {
      if (e.message === "login_again") return relogin();
    }
  }
  if (!state.ref) return showLogin();
  if (!state.started || state.sess.user_id !== before) start();
  sync();
  if (online()) prefetchArea();
}
function start() {
  state.started = true;
  $("#who").textContent = state.sess.agent.name;
  clearInterval(state.timer);
  state.timer = setInterval(tick, 30000);
  route();
}
async function enrolIfNeeded() {
  const r = await fetch("/field/api/session/", { credentials: "same-origin", headers: { Accept: "application/json" } });
  const body = await r.json();
  if (r.status === 403) {
    $("#login-other").textContent = T.not_agent;
    $("#login-other").hidden = false;
    return;
  }
  if (!body.authenticated) return;
  if (state.sess && state.sess.user_id === body.user_id) return;
  const known = await store.deviceFor(body.user_id);
  const e = await fetch("/field/api/enrol/", {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRFToken": body.csrf, Accept: "application/json" },
    body: JSON.stringify({ device_id: known ? known.device_id : null }),
  });
  if (!e.ok) {
    // device_revoked: this phone's access was withdrawn; a fresh password login is needed
    const why = await e.json().catch(() => ({}));
    if (why.message) {
      $("#login-other").textContent = why.message;
      $("#login-other").hidden = false;
    }
    return;
  }
  await store.saveLogin(await e.json());
  state.sess = await store.session();
}
async function showLogin() {
  show("s-login");
  $("#login-offline").hidden = online();
  $("#login-link").hidden = !online();
  const rows = await store.all("queue");
  const waiting = rows.filter((r) => r.status !== "sent" && r.status !== "suspense").length;
  if (waiting) {
    $("#login-other").textContent = fmt(T.other_login, { n: waiting });
    $("#login-other").hidden = false;
  }
}
async function relogin() {
  // The token was refused. Another tab may have enrolled again meanwhile: take its token.
  const fresh = await store.session();
  if (fresh && state.sess && fresh.token !== state.sess.token) {
    state.sess = fresh;
    return null;
  }
  clearInterval(state.timer);
  state.started = false;
  if (state.sess) await store.forgetLogin(state.sess.user_id);
  state.sess = null;
  if (online()) {
    // Still logged in to the portal in this browser: enrol again (the items stay sealed under
    // the same key, which the server gives back).
    await enrolIfNeeded().catch(() => null);
    if (state.sess) {
      await loadLocal();
      if (state.ref) {
        start();
        return null;
      }
    }
  }
  flash(T.login_again);
  return showLogin();
}
async function logout() {
  const unsent = await store.unsentCount(state.sess.user_id);
  if (unsent && !window.confirm(fmt(T.logout_warn, { n: unsent }))) return;
  await store.forgetLogin(state.sess.user_id);
  state.sess = null;
  clearInterval(state.timer);
  if (online()) {
    try {
      const s = await (await fetch("/field/api/session/", { credentials: "same-origin" })).json();
      if (s.csrf) await fetch("/logout/", { method: "POST", credentials: "same-origin", headers: { "X-CSRFToken": s.csrf } });
    } catch (_e) {
      /* the server session ends on its own */
    }
  }
  showLogin();
}

// --- sync ---------------------------------------------------------------------------------------
async function tick() {
  markStale(await store.get("meta", "reference")); // a phone left offline learns it is stale
  sync();
}
let syncing = false;
async function sync() {
  if (!state.sess || !online() || syncing) return;
  syncing = true;
  try {
    const res = await syncAll(refreshCounts);
    if (res && res.state === "login_again") return relogin();
    if (res && res.sent) state.people = await store.people(state.sess);
    const saved = await store.get("meta", "reference");
    if (!saved || Date.now() - Date.parse(saved.fetched_at) > 36e5) {
      await refreshReference().catch(() => null); // hourly while there is a signal
    }
  } finally {
    syncing = false;
  }
  await refreshCounts();
  if (location.hash.startsWith("#queue") || location.hash.startsWith("#people")) route();
}
function setNet() {
  const n = $("#net");
  n.textContent = online() ? T.online : T.offline;
  n.className = online() ? "net on" : "net off";
}
async function refreshCounts() {
  if (!state.sess) return;
  const { mine } = await store.items(state.sess);
  $("#queue-count").textContent = String(mine.filter((i) => !["sent", "suspense"].includes(i.status)).length);
  const at = await store.get("meta", `synced:${state.sess.user_id}`);
  $("#sync-state").textContent = at ? fmt(T.last_sync, { when: new Date(at).toLocaleString(LANG) }) : T.never_sync;
}
async function wantSync() {
  try {
    const reg = await navigator.serviceWorker.ready;
    if (reg.sync) await reg.sync.register("bpu-field-queue");
  } catch (_e) {
    /* no Background Sync here: the page sends on focus, on reconnect and every 30 s */
  }
  sync();
}

// --- routing ------------------------------------------------------------------------------------
async function route() {
  if (!state.sess) return showLogin();
  const [name, arg] = location.hash.replace(/^#/, "").split("/");
  flash("");
  if (name === "register") return showRegister(null);
  if (name === "fix") return showRegister(arg);
  if (name === "cash") return showCash(arg);
  if (name === "receipt") return showReceipt(arg);
  if (name === "queue") return showQueue();
  if (name === "people") return showPeople();
  await refreshCounts();
  show("s-home");
}

// --- registration -------------------------------------------------------------------------------
function options(select, items, chosen) {
  select.replaceChildren(el("option", { value: "", text: T.choose }), ...items.map(([v, label]) => el("option", { value: v, text: label, selected: v === chosen })));
}
function currentLevels() {
  const t = today();
  const schedules = state.ref.rules.schedules.filter((s) => s.effective_from <= t);
  return schedules.length ? schedules[schedules.length - 1].levels : [];
}
function occupationName(o) {
  return LANG === "en" ? o.name_en : o.name_id;
}
async function fillVillages(regency, district, village) {
  const regionData = regency ? await loadRegency(regency).catch(() => null) : null;
  const err = document.querySelector('[data-for="village"]');
  err.textContent = regency && !regionData ? T.no_villages : "";
  const districts = regionData ? regionData.districts : [];
  options($("#r-district"), districts.map((d) => [d.code, d.name]), district);
  const d = districts.find((x) => x.code === $("#r-district").value);
  options($("#r-village"), d ? d.villages : [], village);
}
async function showRegister(fixId) {
  const f = $("#f-register");
  f.reset();
  for (const p of f.querySelectorAll(".err")) p.textContent = "";
  const r = state.ref.rules;
  options($("#r-regency"), state.ref.area.regencies.map((x) => [x.code, x.name]));
  options($("#r-occupation"), r.occupations.map((o) => [o.code, occupationName(o)]));
  options($("#r-income"), currentLevels().map((l) => [String(l), rupiah(l)]));
  await fillVillages("", "", "");
  f.dataset.fix = fixId || "";
  if (fixId) {
    const { mine } = await store.items(state.sess);
    const item = mine.find((i) => i.id === fixId);
    if (item) await prefill(item);
  }
  show("s-register");
}
async function prefill(item) {
  const p = item.payload;
  const f = $("#f-register");
  for (const k of ["nik", "full_name", "birth_date", "phone", "email", "address"]) f.elements[k].value = p[k] || "";
  f.querySelector(`input[name=sex][value="${p.sex}"]`).checked = true;
  const village = p.village || "";
  const regency = village.split(".").slice(0, 2).join(".");
  const district = village.split(".").slice(0, 3).join(".");
  $("#r-regency").value = regency;
  await fillVillages(regency, district, village);
  $("#r-occupation").value = p.occupation;
  $("#r-income").value = String(p.declared_income);
  $("#r-jht").checked = (p.programmes || []).includes("JHT");
  $("#r-consent").checked = p.consent_data;
  $("#r-reminders").checked = p.consent_reminders;
  showErrors(item.answer ? item.answer.errors : []);
}
function registrationFields() {
  const f = $("#f-register").elements;
  const sex = document.querySelector("input[name=sex]:checked");
  return {
    nik: f.nik.value.trim(),
    full_name: f.full_name.value,
    birth_date: f.birth_date.value,
    sex: sex ? sex.value : "",
    phone: f.phone.value,
    email: f.email.value.trim(),
    village: f.village.value,
    address: f.address.value,
    occupation: f.occupation.value,
    declared_income: f.declared_income.value === "" ? "" : Number(f.declared_income.value),
    consent_data: f.consent_data.checked,
  };
}
function lookup() {
  return {
    prefixKnown: (p6) => state.prefixes.has(p6),
    village: (code) => (state.villages.has(code) ? { code } : null),
    occupation: (code) => state.ref.rules.occupations.find((o) => o.code === code) || null,
  };
}
function showErrors(errors) {
  for (const p of document.querySelectorAll("#f-register .err")) p.textContent = "";
  for (const e of errors) {
    const slot = document.querySelector(`#f-register .err[data-for="${e.field}"]`) || document.querySelector('#f-register .err[data-for="nik"]');
    const text = e.message || rules.message(state.ref.rules, LANG, e.code, e.params || {});
    slot.textContent = slot.textContent ? `${slot.textContent} ${text}` : text;
  }
  const first = errors.length && document.querySelector(`#f-register [name="${errors[0].field}"]`);
  if (first) first.focus();
}
function registerQuote() {
  const f = registrationFields();
  const occupation = lookup().occupation(f.occupation);
  const out = $("#r-quote");
  out.textContent = "";
  if (!f.declared_income || !occupation) return;
  const q = rules.quote(state.ref.rules, { income: f.declared_income, programmes: $("#r-jht").checked ? ["JKK", "JKM", "JHT"] : ["JKK", "JKM"], months: 1, firstMonth: today(), sector: occupation.sector });
  if (!q.error) out.textContent = fmt(T.per_month, { amount: rupiah(q.total) });
}
async function saveRegistration(event) {
  event.preventDefault();
  const fields = registrationFields();
  const errors = rules.checkRegistration(state.ref.rules, lookup(), fields, today());
  if (errors.length) return showErrors(errors);
  const payload = {
    ...fields,
    programmes: $("#r-jht").checked ? ["JKK", "JKM", "JHT"] : ["JKK", "JKM"],
    consent_reminders: $("#r-reminders").checked,
    language: LANG,
  };
  const fixId = $("#f-register").dataset.fix;
  let id = fixId;
  if (fixId) {
    const { mine } = await store.items(state.sess);
    const item = mine.find((i) => i.id === fixId);
    await store.update(state.sess, item, { payload, status: "waiting", attempt: item.attempt + 1, answer: null });
  } else {
    id = await store.enqueue(state.sess, "register", payload);
  }
  flash(T.saved);
  wantSync();
  // A new worker: their cash next. A fixed one: back to the queue (their cash, if any, is
  // already waiting there for this registration).
  location.hash = fixId ? "#queue" : `#cash/q:${id}`;
}

// --- cash ---------------------------------------------------------------------------------------
function afterQueued(base, payments) {
  // What the phone has taken and not yet sent moves the next month to pay on, as the server
  // will once it arrives (and a credit it used is spent).
  let out = base;
  for (const p of payments) {
    const last = p.payload._show.last;
    if (!out.paid_through || last > out.paid_through) out = { ...out, paid_through: last, credit: 0 };
  }
  return out;
}
async function cashChoices() {
  const { mine } = await store.items(state.sess);
  const known = new Set(state.people.map((p) => p.kpj));
  // Cash the list does not show yet: unsent, or sent after the list was fetched.
  const listedAt = (await store.get("meta", `people-at:${state.sess.user_id}`)) || "";
  const unsentCash = mine.filter((i) => i.kind === "payment" && !["refused", "suspense"].includes(i.status) && (i.status !== "sent" || i.created_at > listedAt));
  const pending = mine
    .filter((i) => i.kind === "register" && i.status !== "refused" && !(i.answer && known.has(i.answer.kpj)))
    .map((i) => {
      const occupation = lookup().occupation(i.payload.occupation);
      return {
        key: `q:${i.id}`,
        label: `${i.payload.full_name} (${T.pending_person})`,
        name: i.payload.full_name,
        item: i,
        quoteWith: afterQueued(
          { income: i.payload.declared_income, programmes: i.payload.programmes, sector: occupation ? occupation.sector : "other", start_month: today().slice(0, 8) + "01", paid_through: null, credit: 0, history: [] },
          unsentCash.filter((c) => c.depends_on === i.id),
        ),
      };
    });
  const people = state.people.map((p) => ({
    key: `p:${p.kpj}`,
    label: `${p.name} · ${p.kpj}`,
    name: p.name,
    person: p,
    quoteWith: afterQueued(p, unsentCash.filter((c) => c.payload.kpj_number === p.kpj)),
  }));
  return [...pending, ...people];
}
async function showCash(chosen) {
  const choices = await cashChoices();
  state.choices = choices;
  const filter = $("#c-find").value.trim().toLowerCase();
  const list = choices.filter((c) => !filter || c.label.toLowerCase().includes(filter));
  options($("#c-who"), list.map((c) => [c.key, c.label]), chosen || $("#c-who").value);
  options($("#c-months"), Array.from({ length: state.ref.rules.max_months }, (_v, i) => [String(i + 1), String(i + 1)]), $("#c-months").value || "1");
  if (!choices.length) flash(T.no_people);
  cashQuote();
  show("s-cash");
}
function cashQuote() {
  const c = state.choices && state.choices.find((x) => x.key === $("#c-who").value);
  const out = $("#c-quote");
  out.textContent = "";
  if (!c) return null;
  const months = Number($("#c-months").value || 1);
  const q = rules.quotePayment(state.ref.rules, c.quoteWith, { months, asOf: today() });
  if (q.error) {
    out.textContent = rules.message(state.ref.rules, LANG, q.error.code, q.error.params || {});
    return null;
  }
  const parts = [fmt(T.total_for, { amount: rupiah(q.amount), n: months, first: monthName(q.first_month) })];
  if (q.credit) parts.push(fmt(T.credit_used, { amount: rupiah(q.credit) }));
  if (q.reactivation) parts.push(T.reactivation);
  out.textContent = parts.join(" · ");
  return { choice: c, quote: q, months };
}
async function saveCash(event) {
  event.preventDefault();
  const q = cashQuote();
  const err = document.querySelector('#f-cash .err[data-for="participant"]');
  err.textContent = q ? "" : T.choose_person;
  if (!q) return;
  const reference = await store.nextReceipt(state.sess.receipt_prefix);
  const last = addMonths(q.quote.first_month, q.months - 1);
  const payload = {
    amount: q.quote.amount,
    months: q.months,
    reference,
    paid_at: new Date().toISOString(),
    _show: { name: q.choice.name, kpj: q.choice.person ? q.choice.person.kpj : "", first: q.quote.first_month, last, agent: state.sess.agent },
  };
  if (q.choice.person) payload.kpj_number = q.choice.person.kpj;
  else payload.nik = q.choice.item.payload.nik;
  const id = await store.enqueue(state.sess, "payment", payload, { dependsOn: q.choice.item ? q.choice.item.id : null });
  wantSync();
  location.hash = `#receipt/${id}`;
}
function addMonths(iso, n) {
  const [y, m] = iso.split("-").map(Number);
  const t = y * 12 + (m - 1) + n;
  return `${Math.floor(t / 12)}-${String((t % 12) + 1).padStart(2, "0")}-01`;
}

// --- receipt ------------------------------------------------------------------------------------
async function showReceipt(id) {
  const { mine } = await store.items(state.sess);
  const item = mine.find((i) => i.id === id && i.kind === "payment");
  if (!item) return (location.hash = "#home");
  const p = item.payload;
  const s = p._show;
  const kpj = s.kpj || (item.answer && item.answer.kpj) || T.kpj_pending;
  // Once sent, the months the server posted (a registration that reached it in a later month
  // starts there); before, the phone's quote.
  const first = (item.status === "sent" && item.answer && item.answer.period_start) || s.first;
  const rows = [
    [T.receipt_no, p.reference],
    [T.collected_at, new Date(p.paid_at).toLocaleString(LANG === "en" ? "en-GB" : "id-ID", { timeZone: "Asia/Jakarta" })],
    [T.participant, s.name],
    [T.kpj, kpj],
    [T.months, `${p.months} · ${fmt(T.covers, { first: monthName(first), last: monthName(addMonths(first, p.months - 1)) })}`],
    [T.amount, rupiah(p.amount)],
    [T.agent, `${s.agent.name}${s.agent.code ? " (" + s.agent.code + ")" : ""}`],
  ];
  $("#receipt").replaceChildren(
    el("h1", { text: `${T.receipt} · BPJS Ketenagakerjaan` }),
    el("dl", {}, ...rows.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: v, "data-k": k })])),
    el("p", { class: "muted", text: T[item.status] || item.status, "data-testid": "receipt-status" }),
  );
  $("#receipt").dataset.reference = p.reference;
  const text = fmt(T.share_text, { no: p.reference, amount: rupiah(p.amount), name: s.name, months: p.months });
  $("#wa").href = `https://wa.me/?text=${encodeURIComponent(text)}`;
  $("#share").hidden = !navigator.share;
  $("#share").onclick = () => navigator.share({ title: T.receipt, text }).catch(() => null);
  show("s-receipt");
}

// --- queue and people ---------------------------------------------------------------------------
async function showQueue() {
  const { mine } = await store.items(state.sess);
  const list = $("#queue");
  list.replaceChildren(
    ...mine
      .slice()
      .reverse()
      .map((i) => {
        const name = i.kind === "register" ? i.payload.full_name : i.payload._show.name;
        const what = i.kind === "register" ? T.registration : `${T.receipt} ${i.payload.reference} · ${rupiah(i.payload.amount)}`;
        const li = el("li", { "data-status": i.status, "data-kind": i.kind, "data-id": i.id }, el("strong", { text: name }), el("span", { text: ` ${what} ` }), el("em", { class: `st ${i.status}`, text: T[i.status] || i.status }));
        if (i.status === "sent" && i.kind === "register" && i.answer) li.append(el("div", { class: "muted", text: fmt(T.registered, { kpj: i.answer.kpj }) }));
        if (i.answer && i.answer.message && i.status !== "sent") li.append(el("div", { class: "msg", text: i.answer.message }));
        if (i.status === "refused" && i.kind === "register") li.append(el("a", { class: "btn", href: `#fix/${i.id}`, text: T.fix }));
        if (i.status === "refused" && i.kind === "payment") {
          li.append(el("button", { type: "button", text: T.resend, onclick: async () => { await store.update(state.sess, i, { status: "waiting", attempt: i.attempt + 1 }); wantSync(); showQueue(); } }));
        }
        if (i.kind === "payment") li.append(el("a", { href: `#receipt/${i.id}`, text: ` ${T.receipt}` }));
        return li;
      }),
  );
  show("s-queue");
}
async function showPeople() {
  const term = $("#p-find").value.trim().toLowerCase();
  const rows = state.people.filter((p) => !term || p.name.toLowerCase().includes(term) || p.kpj.includes(term));
  $("#people").replaceChildren(
    ...(rows.length ? rows.slice(0, 200).map((p) =>
      el("li", { "data-kpj": p.kpj }, el("strong", { text: p.name }), el("span", { text: ` ${p.kpj} · ${p.village} ` }), el("em", { class: `st ${p.status}`, text: T[`status_${p.status}`] || p.status }), el("a", { class: "btn", href: `#cash/p:${p.kpj}`, text: "Rp" })),
    ) : [el("li", { text: T.no_people })]),
  );
  show("s-people");
}

// --- wiring -------------------------------------------------------------------------------------
window.addEventListener("unhandledrejection", (event) => {
  console.error("field app:", event.reason && event.reason.stack ? event.reason.stack : event.reason);
});
$("#f-register").addEventListener("submit", saveRegistration);
$("#f-register").addEventListener("change", registerQuote);
$("#r-regency").addEventListener("change", () => fillVillages($("#r-regency").value, "", ""));
$("#r-district").addEventListener("change", () => fillVillages($("#r-regency").value, $("#r-district").value, ""));
$("#f-cash").addEventListener("submit", saveCash);
$("#c-who").addEventListener("change", cashQuote);
$("#c-months").addEventListener("change", cashQuote);
$("#c-find").addEventListener("input", () => showCash());
$("#p-find").addEventListener("input", showPeople);
$("#sync-now").addEventListener("click", sync);
$("#logout").addEventListener("click", logout);
$("#print").addEventListener("click", () => window.print());
$("#lang").addEventListener("click", async () => {
  // The shell in the other language (both are on the phone) and the server's messages in it.
  const to = $("#lang").dataset.to;
  await store.put("meta", "lang", to);
  if (online()) {
    try {
      const s = await (await fetch("/field/api/session/", { credentials: "same-origin" })).json();
      if (s.csrf) {
        await fetch("/i18n/setlang/", { method: "POST", credentials: "same-origin", headers: { "X-CSRFToken": s.csrf, "Content-Type": "application/x-www-form-urlencoded" }, body: `language=${to}` });
      }
    } catch (_e) {
      /* the portal's own pages follow at the next online visit */
    }
  }
  location.reload();
});
boot();
