// A small program written against the client generated from the served
// OpenAPI document (openapi-typescript types, openapi-fetch calls). `tsc`
// type-checks it against the document: a renamed field, a removed route or
// a changed parameter type breaks this build. scripts/e2e.sh then runs it.
import createClient from "openapi-fetch";
import type { components, paths } from "../generated/api.js";

type Patient = components["schemas"]["PatientResponse"];
type Report = components["schemas"]["ReportResponse"];
type CountryRow = components["schemas"]["PatientsByCountryReportRow"];

export interface Tour {
  signedInAs: string;
  patients: Patient[];
  total: number;
  report: Report;
  /** PT's row of the report, typed by its row schema. */
  portugal: CountryRow;
}

export async function tour(baseUrl: string, email: string, password: string): Promise<Tour> {
  const anonymous = createClient<paths>({ baseUrl });
  const login = await anonymous.POST("/api/v1/auth/login", { body: { email, password } });
  if (!login.data) throw new Error(`sign-in answered ${login.response.status}`);
  const token: string = login.data.access_token;

  const api = createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${token}` } });

  const created = await api.POST("/api/v1/patients", {
    body: { name: "Ana Typed", country: "PT", medical_history: ["cataract"] },
  });
  if (!created.data) throw new Error(`registering a patient answered ${created.response.status}`);

  const page = await api.GET("/api/v1/patients", {
    params: { query: { country: "PT", page: 1, per_page: 10 } },
  });
  if (!page.data) throw new Error(`the patient list answered ${page.response.status}`);

  const report = await api.GET("/api/v1/reports/{name}", {
    params: { path: { name: "patients-by-country" }, query: { format: "json" } },
  });
  // The operation also serves `text/csv`; `format: "json"` asked for JSON.
  if (!report.data || typeof report.data === "string") {
    throw new Error(`the report answered ${report.response.status}`);
  }
  // Rows are one of the reports' row schemas (`report` tells which); a
  // column of this one narrows to it.
  const portugal = report.data.rows
    .flatMap((r) => ("completion_rate" in r ? [r] : []))
    .find((r) => r.country === "PT");
  if (!portugal) throw new Error("the report has no row for PT");
  const completed: number = portugal.completed;
  if (completed > portugal.patients) throw new Error(`PT: ${JSON.stringify(portugal)}`);

  return {
    signedInAs: login.data.user.email,
    patients: page.data.data,
    total: page.data.total,
    report: report.data,
    portugal,
  };
}
