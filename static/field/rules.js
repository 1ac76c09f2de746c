// Offline copy of the portal's rules: an ES module without DOM or dependencies. It mirrors
// nik.py parse_nik; services.py _checked_participant (_validate_identity, _clean_*,
// normalize_phone, _NAME_RE, age_on, Django's validate_email); rates.py quote_contribution,
// check_declared_income; due_dates.py due_date; coverage.py status_for, first_month_to_pay,
// months_due_now; quotes.py quote_payment. `data` is contributions.field.reference.rules_data().
// tests/field/vectors.json keeps the two equal (pytest and node --test). Dates: "YYYY-MM-DD".

const PROVINCES = ("11 12 13 14 15 16 17 18 19 21 31 32 33 34 35 36 51 52 53 61 62 63 64 65 " +
  "71 72 73 74 75 76 81 82 91 92 93 94 95 96").split(" "); // nik.py PROVINCE_CODES
const PROGRAMMES = ["JKK", "JKM", "JHT"];

// --- dates
const ymd = (s) => (/^\d{4}-\d{2}-\d{2}$/.test(s) ? s.split("-").map(Number) : null);
const leap = (y) => y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0);
const monthDays = (y, m) => (m === 2 ? 28 + leap(y) : 30 + ((m + (m > 7)) % 2));
const real = (y, m, d) => y > 0 && m > 0 && m < 13 && d > 0 && d <= monthDays(y, m);
const p2 = (n) => String(n).padStart(2, "0");
const iso = (y, m, d) => `${String(y).padStart(4, "0")}-${p2(m)}-${p2(d)}`;
const mi = (s) => { const [y, m] = ymd(s); return y * 12 + m - 1; }; // month index
const monthIso = (i) => iso(Math.floor(i / 12), (i % 12) + 1, 1);
const weekday = (y, m, d) => { // ISO 1 (Monday) .. 7 (Sunday)
  if (m < 3) y -= 1;
  const t = [0, 3, 2, 5, 0, 3, 5, 1, 4, 6, 2, 4][m - 1];
  return (y + Math.floor(y / 4) - Math.floor(y / 100) + Math.floor(y / 400) + t + d) % 7 || 7;
};
const cp = (s) => [...s].length; // Python's len()
// " ".join(str(v).split()): Python's whitespace is JS's \s and \x1c-\x1f \x85, not \ufeff
const squash = (v) => String(v || "").split(/(?:(?!\ufeff)[\s\x1c-\x1f\x85])+/).filter(Boolean).join(" ");

// --- NIK
export function parseNik(nik, today) {
  const fail = (code) => ({ ok: false, code });
  if (nik == null || nik === "") return fail("nik_empty");
  if (typeof nik !== "string" || !/^[0-9]{16}$/.test(nik)) return fail("nik_format");
  const pr = nik.slice(0, 2), rg = nik.slice(2, 4), ds = nik.slice(4, 6);
  if (!PROVINCES.includes(pr) || rg === "00" || ds === "00") return fail("nik_region");
  let day = +nik.slice(6, 8), sex = "M", year = 2000 + +nik.slice(10, 12);
  const month = +nik.slice(8, 10);
  if (day > 40) { day -= 40; sex = "F"; }
  if (year > ymd(today)[0]) year -= 100;
  // the other century, once: for a day that does not exist (29 Feb) or is to come
  if (!real(year, month, day) || iso(year, month, day) > today) {
    year -= 100;
    if (!real(year, month, day) || iso(year, month, day) > today) return fail("nik_birth_date");
  }
  if (nik.slice(12) === "0000") return fail("nik_serial");
  return { ok: true, nik, prefix6: nik.slice(0, 6), province_code: pr, regency_code: `${pr}.${rg}`,
    district_code: `${pr}.${rg}.${ds}`, birth_date: iso(year, month, day), sex, serial: nik.slice(12) };
}

// --- contact details
// phonenumbers.parse(raw, "ID") less letters and extensions (x, #, ~): a mobile is
// 8[1-35-9] and 7-10 more digits, in ASCII or full-width digits and phonenumbers' punctuation
export function normalizePhone(value) {
  let raw = String(value || "").trim();
  if (raw.startsWith("62")) raw = "+" + raw;
  raw = raw.replace(/^[^+\uff0b0-9\uff10-\uff19]+/, "").replace(/[^0-9\uff10-\uff19A-Za-z#]+$/, "")
    .replace(/[\uff10-\uff19]/g, (c) => c.charCodeAt(0) - 0xff10).replace(/^[+\uff0b]+/, "+");
  if (!/^\+?[0-9 \-./()[\]\xa0\xad\u200b\u2010-\u2015\u2060\u2212\u2053\u223c\u3000\u30fc\uff08\uff09\uff0d-\uff0f\uff3b\uff3d]+$/.test(raw)) return null;
  let n = raw.replace(/\D/g, "");
  if (raw[0] === "+") {
    if (!n.startsWith("62")) return null;
    n = n.slice(2);
  }
  if (n[0] === "0") n = n.slice(1); // the national prefix
  return /^8[1-35-9]\d{7,10}$/.test(n) ? "+62" + n : null;
}

const ATOM = "[-!#$%&'*+/=?^_`{}|~0-9a-z\\u0130\\u0131]+", U = "a-z\\u00a1-\\uffff0-9";
const USER_RE = new RegExp(`^${ATOM}(?:\\.${ATOM})*$|^"(?:[\\x01-\\x08\\x0b\\x0c\\x0e-\\x1f!#-\\[\\]-\\x7f]|\\\\[\\x01-\\x09\\x0b\\x0c\\x0e-\\x7f])*"$`, "iu");
const DOMAIN_RE = new RegExp(`^[${U}](?:[${U}-]{0,61}[${U}])?(?:\\.(?!-)[${U}-]{1,63}(?<!-))*\\.(?!-)(?:[a-z\\u00a1-\\uffff-]{2,63}|xn--[a-z0-9]{1,59})(?<!-)$`, "iu");
const O = "(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)", IPV4 = new RegExp(`^\\[${O}(\\.${O}){3}\\]$`);

function emailOk(email) { // Django's validate_email, less IPv6 literals
  const at = email.lastIndexOf("@"), domain = email.slice(at + 1);
  return at >= 0 && cp(email) <= 320 && USER_RE.test(email.slice(0, at)) &&
    (domain === "localhost" || DOMAIN_RE.test(domain) || IPV4.test(domain));
}

// services._NAME_RE: Python's [^\W\d_] is letters and numbers but decimal digits
const L = "[\\p{L}\\p{Nl}\\p{No}]";
const NAME_RE = new RegExp(`^${L}+(?:[ '.,\\-]{1,2}${L}+)*\\.?$`, "u");

// --- registration
const rupiah = (n) => (n < 0 ? "-" : "") + String(Math.abs(n)).replace(/\B(?=(\d{3})+$)/g, ".");
const scheduleOn = (data, day) => data.schedules.filter((s) => s.effective_from <= day).pop();

function incomeError(data, amount, on) { // rates.check_declared_income
  const levels = scheduleOn(data, on)?.levels;
  if (!levels) return { code: "no_rate_schedule", params: {} };
  if (levels.includes(amount)) return null;
  const i = levels.filter((l) => l < amount).length; // bisect_left
  const near = levels.slice(Math.max(0, i - 1), i + 1).map((n) => "Rp " + rupiah(n));
  return { code: "income_not_level", params: { amount: rupiah(amount), near: near.join(", ") } };
}

export function checkRegistration(data, ref, f, today) {
  const errors = [];
  const add = (field, code, params = {}) => errors.push({ field, code, params });
  const name = squash(f.full_name);
  if (!name) add("full_name", "name_required");
  else if (cp(name) > data.name_max) add("full_name", "name_too_long");
  else if (!NAME_RE.test(name)) add("full_name", "name_invalid");
  const sexOk = f.sex === "M" || f.sex === "F";
  if (!sexOk) add("sex", "sex_invalid");
  const born = real(...(ymd(f.birth_date) || [])) ? f.birth_date : null; // forms refuse others
  if (!born) add("birth_date", "birth_date_invalid");
  else if (born > today) add("birth_date", "birth_date_future");
  else {
    const [by, bm, bd] = ymd(born), [ty, tm, td] = ymd(today);
    const age = ty - by - (tm < bm || (tm === bm && td < bd));
    if (age < data.min_age || age > data.max_age) {
      add("birth_date", "age_out_of_range", { min: data.min_age, max: data.max_age, age });
    }
  }
  const nik = parseNik(typeof f.nik === "string" ? f.nik : "", today);
  if (!nik.ok) add("nik", nik.code);
  else {
    if (!ref.prefixKnown(nik.prefix6)) add("nik", "nik_region_unknown", { prefix: nik.prefix6 });
    if (born && nik.birth_date !== born) {
      add("nik", "nik_birth_date_mismatch", { nik_date: nik.birth_date.split("-").reverse().join("-") });
    }
    if (sexOk && nik.sex !== f.sex) add("nik", "nik_sex_mismatch");
  }
  if (normalizePhone(f.phone) === null) add("phone", "phone_invalid");
  const email = String(f.email || "").trim();
  if (email && !emailOk(email)) add("email", "email_invalid");
  const v = f.village, known = typeof v === "string" && cp(v) <= 13 && ref.village(v);
  if (!known) add("village", "village_unknown");
  const address = squash(f.address);
  if (!address) add("address", "address_required");
  else if (cp(address) > data.address_max) add("address", "address_too_long");
  if (!ref.occupation(String(f.occupation))) add("occupation", "occupation_unknown");
  let income = f.declared_income; // a whole number, or a string of digits from a form
  if (typeof income === "string" && /^[0-9]+$/.test(income.trim())) income = Number(income.trim());
  const bad = Number.isSafeInteger(income) ? incomeError(data, income, today) : { code: "income_invalid" };
  if (bad) add("declared_income", bad.code, bad.params);
  if (f.consent_data !== true) add("consent_data", "consent_required");
  return errors;
}

export function message(data, lang, code, params = {}) {
  const all = data.messages, text = (all[lang] || all.id)[code] ?? all.id[code] ?? code;
  if (!Object.keys(params || {}).length) return text; // Python formats only with params
  return text.replace(/%\((\w+)\)s|%%/g, (m, k) => (k ? String(params[k]) : "%"));
}

// --- quotes
const halfUp = (n, d) => Math.floor((2 * n + d) / (2 * d));

export function quote(data, { income, programmes, months, firstMonth, sector = "other",
  payerType = "self", history = [], applyDiscounts = true }) {
  const fail = (code, params = {}) => ({ error: { code, params } });
  const asked = new Set(programmes || []);
  if ([...asked].some((p) => !PROGRAMMES.includes(p)) || !asked.has("JKK") || !asked.has("JKM")) {
    return fail("programmes_invalid");
  }
  if (!Number.isInteger(months) || months < 1 || months > data.max_months) return fail("months_out_of_range");
  const first = monthIso(mi(firstMonth)), last = monthIso(mi(firstMonth) + months - 1);
  const bad = incomeError(data, income, first);
  if (bad) return fail(bad.code, bad.params);
  const discounts = data.discounts.filter((d) => applyDiscounts && d.first_month <= last &&
    d.last_month >= first && !d.excluded_payer_types.includes(payerType));
  const chosen = PROGRAMMES.filter((p) => asked.has(p));
  const out = { months: [], per_programme: Object.fromEntries(chosen.map((p) => [p, 0])), total: 0 };
  for (let i = 0; i < months; i++) {
    const month = monthIso(mi(first) + i), s = scheduleOn(data, month);
    const amounts = { JKK: halfUp(income * s.jkk_rate_bp, 10000), JKM: s.jkm_monthly };
    if (asked.has("JHT")) amounts.JHT = halfUp(income * s.jht_rate_bp, 10000);
    const held = (history.find(([until]) => month < until) || [0, sector])[1];
    for (const d of discounts) {
      if (d.first_month > month || month > d.last_month || (d.sector && d.sector !== held)) continue;
      for (const p of d.programmes) if (p in amounts) amounts[p] = halfUp(amounts[p] * (100 - d.percent), 100);
    }
    let total = 0;
    for (const p in amounts) { out.per_programme[p] += amounts[p]; total += amounts[p]; }
    out.months.push({ month, amounts, total });
    out.total += total;
  }
  out.monthly = out.months[0].total;
  return out;
}

// --- due dates, coverage status
export function dueDate(data, month) {
  let [y, m] = ymd(month), d = data.due_day;
  for (let i = 0; i < 31; i++) {
    const day = iso(y, m, d);
    if (!(data.due_skips_weekends && weekday(y, m, d) >= 6) && !data.holidays.includes(day)) return day;
    if (++d > monthDays(y, m)) [y, m, d] = m === 12 ? [y + 1, 1, 1] : [y, m + 1, 1];
  }
  throw new Error(`no working day within 31 days of the due day of ${month.slice(0, 7)}`);
}

const nextUnpaid = (o) => (o.paidThrough ? mi(o.paidThrough) + 1 : mi(o.startMonth));

export function statusFor(data, o) { // o: {paidThrough, startMonth, asOf}
  const first = nextUnpaid(o);
  if (first > mi(o.asOf)) return "active";
  let overdue = mi(o.asOf); // coverage.last_overdue_month
  while (o.asOf <= dueDate(data, monthIso(overdue))) overdue -= 1;
  return first <= overdue - data.grace_months ? "lapsed" : "grace";
}

export function firstMonthToPay(data, o) {
  return monthIso(statusFor(data, o) === "lapsed" ? mi(o.asOf) : nextUnpaid(o));
}

export function monthsDueNow(data, o) {
  return Math.max(0, mi(o.asOf) - mi(firstMonthToPay(data, o)) + 1);
}

export function quotePayment(data, p, { months, asOf, payerType = "self" }) { // p: a participant
  const o = { paidThrough: p.paid_through, startMonth: p.start_month || asOf, asOf };
  const reactivation = statusFor(data, o) === "lapsed";
  const first = firstMonthToPay(data, o);
  const q = quote(data, { income: p.income, programmes: p.programmes, months, firstMonth: first,
    sector: p.sector, payerType, history: mi(first) < mi(asOf) ? p.history || [] : [] });
  if (q.error) return q;
  const onAccount = payerType === "self" ? p.credit || 0 : 0;
  const credit = onAccount > 0 && onAccount < q.total ? onAccount : 0; // not all of it
  return { first_month: first, months, amount: q.total - credit, credit, reactivation };
}
