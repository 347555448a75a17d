// The clerk's console: one page over the gateway's own /graphql, with the caller's credentials (same origin).
//
// At load it asks which forms are configured (`forms`). For the service item picked (the purpose case's, at first)
// it shows the item's form prefilled (`prefill`) when one is configured, and otherwise the person's own fields (their
// selection built from introspection when it is on); either way the item's materials and which are held
// (`materials`), or the person's electronic licences for an item without a materials list. Every value carries its
// badges (status, department, age, stale, masked, each department's value in conflict, refusal and its reason) and
// the applicant's cases show their timeline. Each row's data-field is the unified field (the last part of a form
// field's path, which is also in data-path). Nothing is built: this file is served as it is.
"use strict";

const ENDPOINT = "/graphql";
const ACCEPT = "application/graphql-response+json, application/json";
// Entities are not expanded in the person's fields: each would be a read of its own, for its own purpose.
const ENTITIES = new Set(["Person", "LegalEntity", "Case"]);
const ID_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const ID_CHECK = "10X98765432";

const SCHEMA_QUERY = `query ConsoleSchema {
  __schema {
    types { name kind enumValues { name } fields { name args { name } type { ...Ref } } }
  }
}
fragment Ref on __Type { kind name ofType { kind name ofType { kind name ofType { kind name } } } }`;

const PROVENANCE = "provenance { field source department fetchedAt stale age masked }";
const CASES = `cases(applicant: $applicant, purpose: $purpose, first: 20) {
  edges { node {
    caseNumber status submittedAt deadline closedAt warningState
    serviceItem { code name department promisedDays }
    events { type at handler note }
  } }
}`;

/** Why `value` is not a citizen ID number (GB 11643), or null when it is one. */
export function idNumberProblem(value) {
  if (!/^\d{17}[\dX]$/.test(value)) {
    return "An ID number is 17 digits and a check character (a digit or X).";
  }
  const [year, month, day] = [value.slice(6, 10), value.slice(10, 12), value.slice(12, 14)].map(Number);
  const born = new Date(Date.UTC(year, month - 1, day));
  if (born.getUTCFullYear() !== year || born.getUTCMonth() !== month - 1 || born.getUTCDate() !== day) {
    return `The birth date in this ID number (${value.slice(6, 14)}) is not a date.`;
  }
  const sum = ID_WEIGHTS.reduce((total, weight, i) => total + weight * Number(value[i]), 0);
  const check = ID_CHECK[sum % 11];
  if (value[17] !== check) {
    return `The check character of this ID number is wrong: a mistyped digit? (expected ${check} for these 17 digits)`;
  }
  return null;
}

async function ask(query, variables = {}) {
  const response = await fetch(ENDPOINT, {
    method: "POST",
    credentials: "same-origin",
    headers: { "content-type": "application/json", accept: ACCEPT },
    body: JSON.stringify({ query, variables }),
  });
  let body;
  try {
    body = await response.json();
  } catch {
    throw new Error(`The gateway answered ${response.status} ${response.statusText}, not GraphQL.`);
  }
  if (!body.data && body.errors) {
    throw new Error(body.errors.map((e) => e.message).join(" "));
  }
  return body;
}

// ---- the schema: what the gateway offers, and selections built from it

class Schema {
  constructor(introspected) {
    this.types = new Map(introspected.types.map((t) => [t.name, t]));
  }

  /** Every leaf of `name`, and of the objects under it to `depth`, leaving out entities and fields with arguments. */
  selection(name, depth) {
    const parts = [];
    for (const field of this.types.get(name).fields || []) {
      const ref = named(field.type);
      if (field.args.length > 0 || ENTITIES.has(ref.name)) continue;
      if (ref.kind === "SCALAR" || ref.kind === "ENUM") {
        parts.push(field.name);
      } else if (ref.kind === "OBJECT" && depth > 0) {
        const inner = this.selection(ref.name, depth - 1);
        if (inner) parts.push(`${field.name} ${inner}`);
      }
    }
    return parts.length ? `{ ${parts.join(" ")} }` : "";
  }
}

function named(ref) {
  while (ref.kind === "NON_NULL" || ref.kind === "LIST") ref = ref.ofType;
  return ref;
}

// ---- the page

const $ = (id) => document.getElementById(id);

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value !== undefined && value !== null && value !== false) node.setAttribute(name, value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

function badge(kind, text, title) {
  return el("span", { class: `badge ${kind}`, title }, text);
}

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = !message;
}

function plain(value) {
  if (value === null || value === undefined) return "—";
  if (Array.isArray(value)) return value.length ? value.map(plain).join("; ") : "(none)";
  if (typeof value === "object") {
    return Object.entries(value)
      .filter(([key, v]) => key !== "provenance" && v !== null && v !== undefined)
      .map(([key, v]) => `${key}: ${plain(v)}`)
      .join(", ");
  }
  return String(value);
}

function seconds(age) {
  if (age < 60) return `${Math.round(age)} s`;
  if (age < 3600) return `${Math.round(age / 60)} min`;
  return `${Math.round(age / 3600)} h`;
}

/** The badges of one value: where it came from and how old it is, and what was done to it. */
function provenanceBadges(provenance, status) {
  const badges = [];
  if (status) badges.push(badge(status, status));
  for (const p of provenance) {
    const short = p.department.split(" (")[0];
    badges.push(badge("department", short, `${p.department} — source ${p.source}`));
    const at = new Date(p.fetchedAt).toLocaleTimeString();
    badges.push(badge("age", p.age > 0 ? `cached ${seconds(p.age)} old` : `live ${at}`, `fetched ${p.fetchedAt}`));
    if (p.stale) badges.push(badge("stale", "stale", "the department failed; a cached value stands in"));
    if (p.masked) badges.push(badge("masked", "masked", "masked for this caller"));
    if (p.conflict) badges.push(badge("conflict", "conflict", "departments disagree"));
  }
  return badges;
}

function refusal(error) {
  const extensions = error.extensions || {};
  const code = extensions.reason || extensions.code || "ERROR";
  return badge("refused", `refused: ${code}`, error.message);
}

function fieldErrors(errors, root) {
  const byField = new Map();
  for (const error of errors || []) {
    if (error.path && error.path[0] === root && error.path.length > 1) {
      byField.set(String(error.path[1]), error);
    }
  }
  return byField;
}

function valueRow(field, label, value, badges) {
  return el(
    "tr",
    { "data-field": field },
    el("th", { scope: "row" }, label),
    el("td", { class: "value" }, plain(value)),
    el("td", { class: "badges" }, badges),
  );
}

function renderPerson(person, errors) {
  const body = $("values").tBodies[0];
  body.replaceChildren();
  $("form-title").textContent = "Applicant 申请人 (no form for this service item: the person's fields)";
  if (!person) {
    showError(errors && errors.length ? errors[0].message : "No person with this ID number.");
    return;
  }
  const refused = fieldErrors(errors, "person");
  for (const [field, value] of Object.entries(person)) {
    if (field === "provenance" || field === "licences") continue;
    const provenance = (person.provenance || []).filter((p) => p.field === field);
    const badges = refused.has(field) ? [refusal(refused.get(field))] : provenanceBadges(provenance);
    body.append(valueRow(field, field, value, badges));
  }
  const list = $("materials");
  list.replaceChildren();
  const licences = person.licences || [];
  const provenance = (person.provenance || []).filter((p) => p.field === "licences");
  if (refused.has("licences")) list.append(el("li", {}, refusal(refused.get("licences"))));
  for (const licence of licences) {
    list.append(
      el(
        "li",
        { "data-material": licence.type },
        `${licence.type || "licence"} ${licence.number || ""} `,
        badge(licence.status || "NO_RECORD", licence.status || "?"),
        licence.validUntil ? el("span", { class: "muted" }, ` valid until ${licence.validUntil} `) : null,
        provenanceBadges(provenance),
      ),
    );
  }
  if (!licences.length && !refused.has("licences")) list.append(el("li", { class: "muted" }, "No licence held."));
}

/** The unified field a form row fills: the last part of its path (Person.spouse.name -> name). */
function fieldOf(path) {
  return path.split(".").pop();
}

function age(fetchedAt) {
  return Math.max(0, (Date.now() - new Date(fetchedAt).getTime()) / 1000);
}

/** The badges of one prefilled field: its status (and why), each department read, and each one's value in conflict. */
function prefillBadges(row) {
  const badges = [badge(row.status, row.status, row.detail || undefined)];
  if (row.reason) badges.push(el("span", { class: "muted" }, ` ${row.reason} `));
  for (const p of row.provenance) {
    const short = p.department.split(" (")[0];
    badges.push(badge("department", short, `${p.department} — source ${p.source} (${p.field})`));
    const at = new Date(p.fetchedAt).toLocaleTimeString();
    badges.push(badge("age", `fetched ${seconds(age(p.fetchedAt))} ago`, `fetched ${p.fetchedAt} (${at})`));
    if (p.stale) badges.push(badge("stale", "stale", "the department failed; a cached value stands in"));
  }
  if (row.masked) badges.push(badge("masked", "masked", "masked for this caller"));
  if (row.status === "NO_RECORD" && row.sources.length) {
    badges.push(el("span", { class: "muted" }, ` asked: ${row.sources.join(", ")} `));
  }
  if (row.values.length) {
    badges.push(
      el(
        "ul",
        { class: "values" },
        row.values.map((v) =>
          el("li", { "data-source": v.source }, badge("department", v.department.split(" (")[0], v.department),
            plain(v.value)),
        ),
      ),
    );
  }
  return badges;
}

function renderPrefill(answer) {
  const body = $("values").tBodies[0];
  body.replaceChildren();
  $("form-title").textContent = `Form 表单: ${answer.title || answer.form} (${answer.form} · ${answer.serviceItem})`;
  for (const row of answer.fields) {
    const label = row.required ? `${row.label} *` : row.label;
    const tr = valueRow(fieldOf(row.path), label, row.value, prefillBadges(row));
    tr.dataset.path = row.path;
    tr.dataset.status = row.status;
    body.append(tr);
  }
}

function renderMaterials(materials) {
  const list = $("materials");
  list.replaceChildren();
  for (const material of materials) {
    const licence = material.licence;
    const found = licence ? `${licence.type || "licence"} ${licence.number || ""}` : material.summary;
    list.append(
      el(
        "li",
        { "data-material": material.name, "data-status": material.status },
        `${material.name}${material.required ? "" : " (if applicable)"} `,
        badge(material.status, material.status),
        found ? el("span", {}, ` ${found} `) : null,
        licence && licence.validUntil ? el("span", { class: "muted" }, ` valid until ${licence.validUntil} `) : null,
        el("span", { class: "muted" }, ` ${material.reason} `),
        provenanceBadges(material.provenance ? [material.provenance] : []),
      ),
    );
  }
  if (!list.children.length) list.append(el("li", { class: "muted" }, "No material listed for this service item."));
}

function renderTimeline(cases, purpose, item) {
  const box = $("timeline");
  box.replaceChildren();
  for (const c of cases) {
    const events = (c.events || []).map((e) =>
      el("li", {}, `${e.at ? new Date(e.at).toLocaleString() : ""} ${e.type || ""} `,
        el("span", { class: "muted" }, [e.handler, e.note].filter(Boolean).join(" · "))),
    );
    const classes = ["case"];
    if (c.caseNumber === purpose) classes.push("purpose");
    if (item && c.serviceItem && c.serviceItem.code === item) classes.push("picked");
    box.append(
      el(
        "div",
        { class: classes.join(" "), "data-case": c.caseNumber },
        el("strong", {}, `${c.caseNumber} `),
        c.serviceItem ? `${c.serviceItem.name} (${c.serviceItem.department}) ` : "",
        badge(c.status || "NO_RECORD", c.status || "?"),
        badge(c.warningState || "NO_RECORD", c.warningState || "?", "deadline warning"),
        c.deadline ? el("span", { class: "muted" }, ` deadline ${new Date(c.deadline).toLocaleDateString()}`) : null,
        el("ol", {}, events),
      ),
    );
  }
  if (!cases.length) box.append(el("p", { class: "muted" }, "No case of this applicant."));
}

// ---- the clerk's flow

// forms: the configured forms of a person applicant, by service item code (the console looks up ID numbers).
const state = { schema: null, forms: new Map(), cases: [], items: new Map(), lookup: null, person: null, shown: 0 };

/** The service items to pick from: the applicant's cases', then those a form is configured for. */
function pickerItems(cases) {
  const items = new Map();
  for (const c of cases) if (c.serviceItem) items.set(c.serviceItem.code, c.serviceItem);
  for (const form of state.forms.values()) {
    if (!items.has(form.serviceItem)) items.set(form.serviceItem, { code: form.serviceItem, name: form.title });
  }
  return items;
}

function fillPicker(purpose) {
  const picker = $("service-item");
  const purposeCase = state.cases.find((c) => c.caseNumber === purpose);
  const chosen = purposeCase && purposeCase.serviceItem ? purposeCase.serviceItem.code : null;
  picker.replaceChildren();
  for (const item of state.items.values()) {
    const form = state.forms.has(item.code) ? " · 表单" : "";
    picker.append(el("option", { value: item.code, selected: item.code === chosen }, `${item.name} · ${item.code}${form}`));
  }
  picker.disabled = state.items.size === 0;
}

const PREFILL = `query ConsolePrefill($form: String!, $applicant: String!, $purpose: PurposeInput) {
  prefill(form: $form, applicant: $applicant, purpose: $purpose) {
    form title serviceItem applicant
    fields {
      label path required status value reason detail sources masked
      provenance { field source department fetchedAt stale }
      values { source department value }
    }
  }
}`;

const MATERIALS = `query ConsoleMaterials($item: String!, $applicant: String!, $purpose: PurposeInput) {
  materials(serviceItem: $item, applicant: $applicant, purpose: $purpose) {
    name required status reason field summary
    licence { type number validUntil status }
    ${PROVENANCE}
  }
}`;

/** The item's materials, or null when none are configured for it (or they could not be read: `problem` says). */
async function materialsOf(code, idNumber, purpose) {
  try {
    const answer = await ask(MATERIALS, { item: code, applicant: idNumber, purpose: { caseNumber: purpose } });
    return { materials: answer.data.materials, problem: null };
  } catch (error) {
    return { materials: null, problem: error.message };
  }
}

/** The person's own fields and licences (the fallback for an item without a form), read once per look-up. */
async function personOf(idNumber, purpose) {
  if (!state.person) {
    const selection = state.schema
      ? state.schema.selection("Person", 1)
      : `{ name gender birthDate maritalStatus phone licences { type number validUntil status } ${PROVENANCE} }`;
    const query = `query ConsolePerson($id: IdNumber!, $purpose: PurposeInput) {
      person(idNumber: $id, purpose: $purpose) ${selection}
    }`;
    state.person = await ask(query, { id: idNumber, purpose: { caseNumber: purpose } });
  }
  return state.person;
}

async function showItem() {
  const { idNumber, purpose } = state.lookup;
  const code = $("service-item").value || null;
  const shown = ++state.shown; // a later pick wins over an answer still on its way
  renderTimeline(state.cases, purpose, code);
  showError("");
  const form = code ? state.forms.get(code) : undefined;
  const materials = code ? materialsOf(code, idNumber, purpose) : Promise.resolve({ materials: null, problem: null });
  if (form) {
    const [answer, found] = await Promise.all([
      ask(PREFILL, { form: form.name, applicant: idNumber, purpose: { caseNumber: purpose } }),
      materials,
    ]);
    if (shown !== state.shown) return;
    showError((answer.errors || []).map((e) => e.message).join(" "));
    renderPrefill(answer.data.prefill);
    if (found.materials) renderMaterials(found.materials);
    else $("materials").replaceChildren(el("li", { class: "muted" }, found.problem || "No material listed."));
  } else {
    const [answer, found] = await Promise.all([personOf(idNumber, purpose), materials]);
    if (shown !== state.shown) return;
    renderPerson(answer.data.person, answer.errors);
    if (found.materials) renderMaterials(found.materials); // else the person's licences, as renderPerson listed them
  }
  document.body.dataset.shown = code || "";
}

async function lookUp(event) {
  event.preventDefault();
  const input = $("id-number");
  const idNumber = input.value.trim().toUpperCase();
  const purpose = $("purpose").value.trim();
  const problem = idNumberProblem(idNumber) || (purpose ? null : "Give the case number you are handling (the purpose).");
  input.setAttribute("aria-invalid", String(Boolean(idNumberProblem(idNumber))));
  showError(problem);
  if (problem) return; // nothing is asked of the gateway for a number that cannot be one
  state.lookup = { idNumber, purpose };
  state.person = null;
  $("submit").disabled = true;
  try {
    const query = `query ConsoleApplicant($applicant: String, $purpose: PurposeInput) { ${CASES} }`;
    const answer = await ask(query, { applicant: idNumber, purpose: { caseNumber: purpose } });
    state.cases = (answer.data.cases ? answer.data.cases.edges : []).map((edge) => edge.node);
    state.items = pickerItems(state.cases);
    fillPicker(purpose);
    $("results").hidden = false;
    await showItem();
  } catch (error) {
    showError(error.message);
  } finally {
    $("submit").disabled = false;
  }
}

async function start() {
  $("lookup").addEventListener("submit", lookUp);
  $("service-item").addEventListener("change", () => showItem().catch((error) => showError(error.message)));
  try {
    const { data } = await ask("{ viewer { subject department window } }");
    const v = data.viewer;
    $("viewer").textContent = [v.subject, v.department, v.window && `window ${v.window}`].filter(Boolean).join(" · ");
  } catch (error) {
    $("viewer").textContent = `not signed in: ${error.message}`;
  }
  try {
    state.schema = new Schema((await ask(SCHEMA_QUERY)).data.__schema);
  } catch {
    state.schema = null; // introspection is off (production): the person's fields from a fixed selection
  }
  try {
    const { data } = await ask("{ forms { name title serviceItem applicant } }");
    state.forms = new Map(data.forms.filter((f) => f.applicant === "Person").map((f) => [f.serviceItem, f]));
  } catch {
    state.forms = new Map(); // a gateway without forms: the person's fields for every item
  }
  $("mode").textContent = state.forms.size
    ? "A service item with a form (表单) shows it prefilled; any other, the applicant's own fields. Both with the materials held."
    : "No form is configured on this gateway: the applicant's own fields, and the materials held.";
  document.body.dataset.ready = state.forms.size ? "forms" : "person";
}

start();
