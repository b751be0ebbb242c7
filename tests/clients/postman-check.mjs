// Checks a collection written by postman.mjs the way Postman would use it:
// every request addressed through {{baseUrl}}, protected requests inheriting
// the collection's {{token}} bearer auth, and two requests replayed with
// the variables filled in (sign-in without auth; GET /api/v1/auth/me with).
//
//   node postman-check.mjs COLLECTION EXPECTED_REQUESTS EMAIL PASSWORD
import { readFileSync } from "node:fs";

const [file, expected, email, password] = process.argv.slice(2);
const c = JSON.parse(readFileSync(file, "utf8"));
const failures = [];
const vars = Object.fromEntries(c.variable.map((v) => [v.key, v.value]));
if (!c.info.schema.includes("v2.1.0")) failures.push(`schema ${c.info.schema}`);
if (c.auth?.type !== "bearer" || c.auth.bearer[0].value !== "{{token}}") failures.push(`collection auth ${JSON.stringify(c.auth)}`);
if (!("baseUrl" in vars) || !("token" in vars)) failures.push(`variables ${JSON.stringify(c.variable)}`);

const requests = [];
const walk = (items) => items.forEach((i) => (i.item ? walk(i.item) : i.request && requests.push(i.request)));
walk(c.item);
if (requests.length !== Number(expected)) failures.push(`${requests.length} requests, the document has ${expected} operations`);
for (const r of requests) {
  if (r.url.host.join("") !== "{{baseUrl}}") failures.push(`${r.method} ${r.url.path.join("/")} is not on {{baseUrl}}`);
}
const find = (method, path) => requests.find((r) => r.method === method && r.url.path.join("/") === path);
const fill = (s) => s.replace(/\{\{(\w+)\}\}/g, (_, k) => vars[k]);
const send = async (r, token, body) => {
  const headers = Object.fromEntries(r.header.map((h) => [h.key, fill(h.value)]));
  const inherits = r.auth === undefined;
  if (inherits && token) headers.Authorization = `Bearer ${token}`;
  const url = `${vars.baseUrl}/${r.url.path.join("/")}`;
  return fetch(url, { method: r.method, headers, body });
};

const metrics = find("GET", "metrics");
if (metrics?.auth?.bearer?.[0]?.value !== "{{metricsToken}}") failures.push(`GET /metrics auth ${JSON.stringify(metrics?.auth)}`);
const login = find("POST", "api/v1/auth/login");
const me = find("GET", "api/v1/auth/me");
if (!login || login.auth?.type !== "noauth") failures.push("sign-in is missing or would send a token");
if (!me || me.auth !== undefined) failures.push("GET /api/v1/auth/me is missing or does not inherit the collection's auth");
if (login && me) {
  const signedIn = await send(login, null, JSON.stringify({ email, password }));
  if (signedIn.status !== 200) failures.push(`the collection's sign-in answered ${signedIn.status}`);
  else {
    vars.token = (await signedIn.json()).access_token;
    const answered = await send(me, vars.token);
    if (answered.status !== 200) failures.push(`the collection's GET /api/v1/auth/me answered ${answered.status}`);
  }
}
if (failures.length) {
  for (const f of failures) console.error(`postman collection: FAIL: ${f}`);
  process.exit(1);
}
console.log(`postman collection: ${requests.length} requests on {{baseUrl}}; sign-in and GET /api/v1/auth/me replayed with {{token}}: 200`);
