// Runs the compiled tour against a server and checks what it got back.
//   node run.mjs BUILD_DIR BASE_URL EMAIL PASSWORD
import { pathToFileURL } from "node:url";

const [build, base, email, password] = process.argv.slice(2);
const { tour } = await import(pathToFileURL(`${build}/typescript/tour.js`).href);
const got = await tour(base, email, password);
const failures = [];
if (got.signedInAs !== email) failures.push(`signed in as ${got.signedInAs}`);
if (!got.patients.some((p) => p.name === "Ana Typed")) failures.push("the new patient is not on the list");
if (got.total < 1) failures.push(`total ${got.total}`);
const pt = got.report.rows.find((r) => r.country === "PT");
if (got.report.report !== "patients-by-country" || !pt) failures.push(`report: ${JSON.stringify(got.report)}`);
if (got.portugal.patients < 1 || typeof got.portugal.completion_rate !== "number") failures.push(`PT row: ${JSON.stringify(got.portugal)}`);
if (failures.length) {
  for (const f of failures) console.error(`typescript client: FAIL: ${f}`);
  process.exit(1);
}
console.log(`typescript client: signed in, listed ${got.total} patient(s) from PT, read ${got.report.report} (${got.report.rows.length} rows)`);
