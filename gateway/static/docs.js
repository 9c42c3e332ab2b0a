// A tiny, dependency-free OpenAPI viewer: lists every operation of /openapi.json grouped by tag.
"use strict";

function element(tag, attributes, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) node.setAttribute(name, value);
  for (const child of children) node.append(child);
  return node;
}

function parameterTable(parameters) {
  const table = element("table", {}, element("tr", {}, element("th", {}, "name"), element("th", {}, "in"),
    element("th", {}, "type"), element("th", {}, "description")));
  for (const parameter of parameters) {
    const schema = parameter.schema || {};
    const type = schema.type === "array" ? `array of ${(schema.items || {}).type || "value"}` : (schema.type || "");
    table.append(element("tr", {}, element("td", {}, parameter.name), element("td", {}, parameter.in),
      element("td", {}, String(type)), element("td", {}, parameter.description || "")));
  }
  return table;
}

function operationView(path, verb, operation) {
  const locked = (operation.security || []).length > 0;
  const summary = element("summary", {},
    element("span", { class: `verb ${verb}` }, verb.toUpperCase()),
    element("span", { class: "path" }, path),
    element("span", { class: "lock" }, locked ? "bearer" : "anonymous"),
    element("span", { class: "summary" }, operation.summary || ""));
  const view = element("details", { class: "operation", "data-operation-id": operation.operationId }, summary);
  view.append(element("pre", { class: "description" }, operation.description || ""));
  if ((operation.parameters || []).length > 0) view.append(parameterTable(operation.parameters));
  if (operation.requestBody) view.append(element("p", {}, "Body: application/json"));
  return view;
}

function render(spec) {
  document.getElementById("title").textContent = spec.info.title;
  document.getElementById("description").textContent = spec.info.description || "";
  const byTag = new Map();
  for (const [path, item] of Object.entries(spec.paths)) {
    for (const [verb, operation] of Object.entries(item)) {
      const tag = (operation.tags || ["other"])[0];
      if (!byTag.has(tag)) byTag.set(tag, []);
      byTag.get(tag).push(operationView(path, verb, operation));
    }
  }
  const container = document.getElementById("operations");
  container.replaceChildren();
  for (const [tag, views] of [...byTag.entries()].sort()) {
    container.append(element("section", { class: "tag" }, element("h2", {}, tag), ...views));
  }
  container.setAttribute("aria-busy", "false");
  container.setAttribute("data-operation-count", String(container.querySelectorAll("details.operation").length));
}

function applyFilter(text) {
  const needle = text.trim().toLowerCase();
  for (const view of document.querySelectorAll("details.operation")) {
    view.hidden = needle !== "" && !view.textContent.toLowerCase().includes(needle);
  }
}

async function main() {
  try {
    const response = await fetch("/openapi.json");
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    render(await response.json());
  } catch (error) {
    document.getElementById("status").textContent = `Could not load /openapi.json: ${error.message}`;
  }
  document.getElementById("filter").addEventListener("input", (event) => applyFilter(event.target.value));
}

main();
