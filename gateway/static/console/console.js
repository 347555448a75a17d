// The clerk's console: one page over the gateway's own /graphql, with the caller's credentials (same origin).
//
// At load it asks the schema what it has (introspection). With `prefill` and `materials` it shows the prefilled
// form of the chosen service item and the materials already held; without them, the person's fields and their
// electronic licences. Either way each value carries its badges (department, age, stale, masked, conflict or
// refusal) and the applicant's cases show their timeline. Nothing is built: this file is served as it is.
"use strict";

const ENDPOINT = "/graphql";
const ACCEPT = "application/graphql-response+json, application/json";
// Entities are not expanded inside a form or a material: each would be a read of its own, for its own purpose.
const ENTITIES = new Set(["Person", "LegalEntity", "Case"]);
const ID_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const ID_CHECK = "10X98765432";

const SCHEMA_QUERY = `query ConsoleSchema {
  __schema {
    queryType { fields { name args { name type { ...Ref } } type { ...Ref } } }
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
    this.roots = new Map(introspected.queryType.fields.map((f) => [f.name, f]));
  }

  has(root, ...args) {
    const field = this.roots.get(root);
    return Boolean(field) && args.every((name) => field.args.some((a) => a.name === name));
  }

  argType(root, name) {
    return typeName(this.roots.get(root).args.find((a) => a.name === name).type);
  }

  /** The enum values of a root field's argument, or null when it takes free text. */
  argChoices(root, name) {
    const ref = named(this.roots.get(root).args.find((a) => a.name === name).type);
    const type = this.types.get(ref.name);
    return type && type.kind === "ENUM" ? type.enumValues.map((v) => v.name) : null;
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

  rootSelection(root, depth) {
    const ref = named(this.roots.get(root).type);
    return ref.kind === "OBJECT" ? this.selection(ref.name, depth) : "";
  }
}

function named(ref) {
  while (ref.kind === "NON_NULL" || ref.kind === "LIST") ref = ref.ofType;
  return ref;
}

function typeName(ref) {
  if (ref.kind === "NON_NULL") return `${typeName(ref.ofType)}!`;
  if (ref.kind === "LIST") return `[${typeName(ref.ofType)}]`;
  return ref.name;
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
  $("form-title").textContent = "Applicant 申请人 (the form service is not on this gateway yet: the person's fields)";
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

/** The per-field rows of a prefill answer, whatever it is called: a list, or the first list inside an object. */
function prefillItems(answer) {
  if (Array.isArray(answer)) return answer;
  for (const value of Object.values(answer || {})) {
    if (Array.isArray(value) && value.length && typeof value[0] === "object") return value;
  }
  return [];
}

function provenanceOf(item, root) {
  if (Array.isArray(item.provenance)) return item.provenance;
  if (item.provenance) return [item.provenance];
  const field = item.field || item.name;
  return ((root && root.provenance) || []).filter((p) => p.field === field);
}

function renderPrefill(answer, item) {
  const body = $("values").tBodies[0];
  body.replaceChildren();
  $("form-title").textContent = `Form 表单: ${item ? item.name || item.code : ""}`;
  for (const row of prefillItems(answer)) {
    const field = row.field || row.name || row.key;
    const label = row.label || row.name || field;
    const value = row.value !== undefined ? row.value : row.summary;
    const badges = provenanceBadges(provenanceOf(row, answer), row.status);
    if (row.reason) badges.push(el("span", { class: "muted" }, ` ${row.reason}`));
    body.append(valueRow(field, label, value, badges));
  }
}

function renderMaterials(materials) {
  const list = $("materials");
  list.replaceChildren();
  for (const material of prefillItems(materials)) {
    const provenance = provenanceOf(material);
    list.append(
      el(
        "li",
        { "data-material": material.name },
        `${material.name} `,
        badge(material.status || "NO_RECORD", material.status || "?"),
        material.summary || material.licence ? el("span", {}, ` ${plain(material.summary || material.licence)} `) : null,
        material.reason ? el("span", { class: "muted" }, ` ${material.reason} `) : null,
        provenanceBadges(provenance),
      ),
    );
  }
  if (!list.children.length) list.append(el("li", { class: "muted" }, "No material listed for this service item."));
}

function renderTimeline(cases, purpose, item) {
  const box = $("timeline");
  box.replaceChildren();
  const shown = cases.filter((c) => !item || !c.serviceItem || c.serviceItem.code === item);
  for (const c of shown) {
    const events = (c.events || []).map((e) =>
      el("li", {}, `${e.at ? new Date(e.at).toLocaleString() : ""} ${e.type || ""} `,
        el("span", { class: "muted" }, [e.handler, e.note].filter(Boolean).join(" · "))),
    );
    box.append(
      el(
        "div",
        { class: c.caseNumber === purpose ? "case purpose" : "case", "data-case": c.caseNumber },
        el("strong", {}, `${c.caseNumber} `),
        c.serviceItem ? `${c.serviceItem.name} (${c.serviceItem.department}) ` : "",
        badge(c.status || "NO_RECORD", c.status || "?"),
        badge(c.warningState || "NO_RECORD", c.warningState || "?", "deadline warning"),
        c.deadline ? el("span", { class: "muted" }, ` deadline ${new Date(c.deadline).toLocaleDateString()}`) : null,
        el("ol", {}, events),
      ),
    );
  }
  if (!shown.length) box.append(el("p", { class: "muted" }, "No case of this applicant."));
}

// ---- the clerk's flow

const state = { schema: null, cases: [], items: new Map(), lookup: null };

function pickerItems(cases) {
  const items = new Map();
  const choices = state.schema && state.schema.has("prefill") ? state.schema.argChoices("prefill", "form") : null;
  for (const code of choices || []) items.set(code, { code, name: code });
  if (!choices) {
    for (const c of cases) if (c.serviceItem) items.set(c.serviceItem.code, c.serviceItem);
  }
  return items;
}

function fillPicker(purpose) {
  const picker = $("service-item");
  const purposeCase = state.cases.find((c) => c.caseNumber === purpose);
  const chosen = purposeCase && purposeCase.serviceItem ? purposeCase.serviceItem.code : null;
  picker.replaceChildren();
  for (const item of state.items.values()) {
    picker.append(el("option", { value: item.code, selected: item.code === chosen }, `${item.name} · ${item.code}`));
  }
  picker.disabled = state.items.size === 0;
}

function prefillMode() {
  const s = state.schema;
  return Boolean(s && s.has("prefill", "form", "applicant") && s.has("materials", "serviceItem", "applicant"));
}

async function showItem() {
  const { idNumber, purpose } = state.lookup;
  const code = $("service-item").value || null;
  renderTimeline(state.cases, purpose, prefillMode() ? code : null);
  if (!prefillMode() || !code) return;
  const s = state.schema;
  const query = `query ConsoleForm($form: ${s.argType("prefill", "form")}, $item: ${s.argType("materials", "serviceItem")},
      $applicant: ${s.argType("prefill", "applicant")}, $purpose: PurposeInput) {
    prefill(form: $form, applicant: $applicant, purpose: $purpose) ${s.rootSelection("prefill", 3)}
    materials(serviceItem: $item, applicant: $applicant, purpose: $purpose) ${s.rootSelection("materials", 2)}
  }`;
  const variables = { form: code, item: code, applicant: idNumber, purpose: { caseNumber: purpose } };
  const answer = await ask(query, variables);
  const errors = (answer.errors || []).filter((e) => !e.path || e.path.length === 1);
  showError(errors.map((e) => e.message).join(" "));
  renderPrefill(answer.data.prefill, state.items.get(code));
  renderMaterials(answer.data.materials);
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
  $("submit").disabled = true;
  try {
    const person = prefillMode()
      ? ""
      : `person(idNumber: $id, purpose: $purpose) ${state.schema ? state.schema.selection("Person", 1) : `{ name gender birthDate maritalStatus phone licences { type number validUntil status } ${PROVENANCE} }`}`;
    const query = `query ConsoleApplicant($id: IdNumber!, $applicant: String, $purpose: PurposeInput) {
      ${CASES}
      ${person}
    }`;
    const answer = await ask(query, { id: idNumber, applicant: idNumber, purpose: { caseNumber: purpose } });
    state.cases = (answer.data.cases ? answer.data.cases.edges : []).map((edge) => edge.node);
    state.items = pickerItems(state.cases);
    fillPicker(purpose);
    $("results").hidden = false;
    if (!prefillMode()) renderPerson(answer.data.person, answer.errors);
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
    state.schema = null; // introspection is off (production): the person's fields, which need no schema
  }
  $("mode").textContent = prefillMode()
    ? "Prefilled forms and materials held, from the form and materials services."
    : "The form and materials services are not on this gateway: the applicant's own fields and licences.";
  document.body.dataset.ready = prefillMode() ? "prefill" : "person";
}

start();
