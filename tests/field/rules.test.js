// The shared vectors (tests/field/vectors.json) through the offline rules (static/field/rules.js).
// Run by tests/field/test_shared_vectors.py, which evaluates the same vectors with the server's
// functions and hands over, through environment variables:
//   FIELD_RULES_DATA       contributions.field.reference.rules_data(), as the phone gets it
//   FIELD_SERVER_OUTCOMES  {reference: {nik_prefixes, villages}, cases: {id: {result, messages}}}
// Each vector must give its `expect`, and each refusal must read, in Indonesian and English,
// exactly as the server's message for that case.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import * as rules from "../../static/field/rules.js";

const vectors = JSON.parse(readFileSync(new URL("./vectors.json", import.meta.url), "utf8"));

function load(name) {
  const path = process.env[name];
  if (!path) {
    throw new Error(
      `${name} is not set: run this through pytest (tests/field/test_shared_vectors.py), ` +
        "which writes the server's data and outcomes and points this variable at them",
    );
  }
  return JSON.parse(readFileSync(path, "utf8"));
}

const data = load("FIELD_RULES_DATA");
const server = load("FIELD_SERVER_OUTCOMES");

const prefixes = new Set(server.reference.nik_prefixes);
const villages = new Set(server.reference.villages);
const ref = {
  prefixKnown: (p6) => prefixes.has(p6),
  village: (code) => (villages.has(code) ? { code } : null),
  occupation: (code) => {
    const o = data.occupations.find((x) => x.code === code);
    return o ? { code: o.code, sector: o.sector } : null;
  },
};

const quoteResult = (q) => (q.error ? { error: { code: q.error.code } } : q);

// Each kind: [the result to compare with `expect`, the errors ({code, params}) to render].
const kinds = {
  nik: (i) => {
    const r = rules.parseNik(i.nik, i.today);
    return [r, r.ok ? [] : [{ code: r.code, params: {} }]];
  },
  registration: (i) => {
    const fields = { ...vectors.registration_defaults, ...i.fields };
    const errors = rules.checkRegistration(data, ref, fields, i.today);
    return [{ errors: errors.map(({ field, code }) => ({ field, code })) }, errors];
  },
  quote: (i) => {
    const q = rules.quote(data, {
      income: i.income,
      programmes: i.programmes,
      months: i.months,
      firstMonth: i.first_month,
      ...(i.sector !== undefined && { sector: i.sector }),
      ...(i.payer_type !== undefined && { payerType: i.payer_type }),
      ...(i.history !== undefined && { history: i.history }),
      ...(i.apply_discounts !== undefined && { applyDiscounts: i.apply_discounts }),
    });
    return [quoteResult(q), q.error ? [q.error] : []];
  },
  due_date: (i) => [{ due_date: rules.dueDate(data, i.month) }, []],
  status: (i) => {
    const o = { paidThrough: i.paid_through, startMonth: i.start_month, asOf: i.as_of };
    const result = {
      status: rules.statusFor(data, o),
      first_month_to_pay: rules.firstMonthToPay(data, o),
      months_due_now: rules.monthsDueNow(data, o),
    };
    return [result, []];
  },
  payment_quote: (i) => {
    const q = rules.quotePayment(data, i.participant, {
      months: i.months,
      asOf: i.as_of,
      ...(i.payer_type !== undefined && { payerType: i.payer_type }),
    });
    return [quoteResult(q), q.error ? [q.error] : []];
  },
};

test("every vector has a server outcome", () => {
  const missing = vectors.cases.filter((c) => !(c.id in server.cases)).map((c) => c.id);
  assert.deepEqual(missing, []);
});

test("the NIK province codes of rules.js are the server's", () => {
  // parseNik carries its own copy (it takes no data): every code 00-99 must be judged as
  // rules_data().province_codes says.
  for (let n = 0; n < 100; n++) {
    const code = String(n).padStart(2, "0");
    const r = rules.parseNik(`${code}73051705900001`, "2026-06-15");
    assert.equal(r.code !== "nik_region", data.province_codes.includes(code), code);
  }
});

test("dueDate moves into the next month and year (a due day of 28: BPU_DUE_DAY)", () => {
  // Not reachable with the default due day (15), so not a shared vector: due_dates.due_date
  // steps a day at a time (timedelta) across the month's end, as this must.
  const late = { ...data, due_day: 28 };
  assert.equal(rules.dueDate(late, "2026-02-01"), "2026-03-02"); // Sat 28 Feb, Sun 1 Mar
  const yearEnd = { ...late, holidays: [...data.holidays, "2025-12-29", "2025-12-30", "2025-12-31"] };
  assert.equal(rules.dueDate(yearEnd, "2025-12-01"), "2026-01-02"); // Sun 28, 29-31, 1 Jan
});

for (const c of vectors.cases) {
  test(`${c.kind}: ${c.id}`, () => {
    const [result, errors] = kinds[c.kind](c.input);
    assert.deepEqual(result, c.expect, "rules.js differs from vectors.json");
    const expected = server.cases[c.id].messages;
    assert.deepEqual(
      errors.map((e) => e.code),
      expected.map((m) => m.code),
      "rules.js refuses with other codes than the server",
    );
    errors.forEach((e, n) => {
      for (const lang of ["id", "en"]) {
        assert.equal(rules.message(data, lang, e.code, e.params), expected[n][lang], `${e.code} (${lang})`);
      }
    });
  });
}
